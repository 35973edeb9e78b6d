//! Turning an order-lifecycle event into a log record and appending it durably.

use oms_domain::events::{Envelope, Event};
use oms_domain::ids::{Asset, Timestamp};
use oms_ports::event_log::{Appended, EventLog, NewRecord};
use oms_ports::{PortError, PortResult};

/// The record for an order-lifecycle event: the codec's encoding (keyed by the account's id as
/// decimal text, so one account's events stay in order on one partition). An event without an
/// account cannot be placed and is refused.
pub fn order_event_record(envelope: &Envelope) -> PortResult<NewRecord> {
    if envelope.event.account().is_none() {
        return Err(PortError::Invalid(format!(
            "{} has no account",
            envelope.event.type_name()
        )));
    }
    Ok(crate::codec::encode_event(envelope))
}

/// The reference a deposit is recorded under: the caller's reference and the asset. The ledger
/// credits a reference once per account, so one transfer reference may fund several assets
/// (as a configured account's opening deposits do), and the same reference and asset sent
/// through `oms accounts deposit` and the admin API are one deposit.
pub fn deposit_reference(reference: &str, asset: &Asset) -> String {
    format!("{reference}:{asset}")
}

/// Appends one order-lifecycle event; returns once it is durable.
pub async fn publish_order_event(
    log: &dyn EventLog,
    topic: &str,
    at: Timestamp,
    event: Event,
) -> PortResult<Appended> {
    let record = order_event_record(&Envelope::new(at, event))?;
    let mut appended = log.append(topic, vec![record]).await?;
    appended
        .pop()
        .ok_or_else(|| PortError::Other("append returned no position".into()))
}

/// Appends `event(p)` to every partition `p` of `topic` in one append, each copy keyed to
/// land on its partition; returns once all are durable. For what every partition's consumers
/// must see in order with that partition's events (the global kill switch).
pub async fn publish_to_every_partition(
    log: &dyn EventLog,
    topic: &str,
    at: Timestamp,
    event: impl Fn(u32) -> Event,
) -> PortResult<Vec<Appended>> {
    let partitions = log.partition_count(topic).await?;
    let records = (0..partitions)
        .map(|p| NewRecord {
            key: crate::codec::key_for_partition(p, partitions),
            ..crate::codec::encode_event(&Envelope::new(at, event(p)))
        })
        .collect();
    log.append(topic, records).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_domain::ids::{AccountId, OrderId};

    #[test]
    fn record_is_keyed_by_account_with_headers() {
        let env = Envelope::new(
            Timestamp(9),
            Event::CancelRequested {
                account: AccountId(42),
                order_id: OrderId(7),
                reason: None,
            },
        );
        let r = order_event_record(&env).unwrap();
        assert_eq!(r.key, b"42");
        let h = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(h("event-type").unwrap(), b"CancelRequested");
        assert_eq!(h("event-id").unwrap(), b"o:7:cancel-req");
        assert_eq!(h("schema-version").unwrap(), b"1");
        let back: Envelope = serde_json::from_slice(&r.value).unwrap();
        assert_eq!(back, env);
    }
}
