//! Turning an order-lifecycle event into a log record and appending it durably.

use oms_domain::events::{Envelope, Event};
use oms_domain::ids::Timestamp;
use oms_ports::event_log::{Appended, EventLog, NewRecord};
use oms_ports::{PortError, PortResult};

pub const HEADER_EVENT_TYPE: &str = "event-type";
pub const HEADER_EVENT_ID: &str = "event-id";
pub const HEADER_SCHEMA_VERSION: &str = "schema-version";

/// The record for an order-lifecycle event: keyed by the account's id as decimal text, so one
/// account's events stay in order on one partition.
pub fn order_event_record(envelope: &Envelope) -> PortResult<NewRecord> {
    let account = envelope.event.account().ok_or_else(|| {
        PortError::Invalid(format!("{} has no account", envelope.event.type_name()))
    })?;
    let value = serde_json::to_vec(envelope).map_err(|e| PortError::Invalid(e.to_string()))?;
    Ok(NewRecord {
        key: account.to_string().into_bytes(),
        value,
        headers: vec![
            (
                HEADER_EVENT_TYPE.to_string(),
                envelope.event.type_name().as_bytes().to_vec(),
            ),
            (
                HEADER_EVENT_ID.to_string(),
                envelope.id.0.as_bytes().to_vec(),
            ),
            (
                HEADER_SCHEMA_VERSION.to_string(),
                envelope.version.to_string().into_bytes(),
            ),
        ],
    })
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
