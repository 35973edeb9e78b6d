//! How events and venue commands travel on the log: JSON values, keys that pick the partition,
//! and headers carrying the event type, id and schema version for outside readers.

use oms_domain::events::{Envelope, Event, SCHEMA_VERSION};
use oms_domain::ids::AccountId;
use oms_domain::venue::VenueCommand;
use oms_ports::event_log::{partition_for, NewRecord, Record};
use std::sync::Arc;
use thiserror::Error;

/// Topic names, as in `DESIGN.md`.
pub mod topics {
    /// Order lifecycle, keyed by account (the seed's topic name).
    pub const ORDERS: &str = "orders";
    /// Commands to the venue, keyed by symbol.
    pub const VENUE: &str = "venue";
    /// Public trades and book changes, keyed by symbol.
    pub const MARKETDATA: &str = "marketdata";
}

/// The topic and consumer-group names a deployment uses: the ones in [`topics`] and the
/// stages' own group names unless configured otherwise (a shared Kafka cluster often
/// prescribes names; the seed names the processor's group `Kafka:ConsumerGroup`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LogNames {
    /// Topic of the order lifecycle (the seed's `Kafka:OrdersTopic`).
    pub orders_topic: String,
    pub venue_topic: String,
    pub marketdata_topic: String,
    pub risk_group: String,
    pub venue_group: String,
    /// The seed's `Kafka:ConsumerGroup`.
    pub processor_group: String,
    pub marketdata_group: String,
    /// The market data service's reader of the orders topic, for the private `orders`
    /// WebSocket channel when the processor runs in another process.
    pub marketdata_orders_group: String,
}

impl LogNames {
    /// The processor's ledger snapshots. Each stage's snapshots are stored under its group's
    /// name, so deployments with groups of their own sharing one store keep them apart.
    pub fn processor_snapshot(&self) -> String {
        format!("{}-ledger", self.processor_group)
    }
}

impl Default for LogNames {
    fn default() -> Self {
        LogNames {
            orders_topic: topics::ORDERS.into(),
            venue_topic: topics::VENUE.into(),
            marketdata_topic: topics::MARKETDATA.into(),
            risk_group: "risk".into(),
            venue_group: "venue".into(),
            processor_group: "processor".into(),
            marketdata_group: "marketdata".into(),
            marketdata_orders_group: "marketdata-orders".into(),
        }
    }
}

pub const HEADER_EVENT_TYPE: &str = "event-type";
pub const HEADER_EVENT_ID: &str = "event-id";
pub const HEADER_SCHEMA_VERSION: &str = "schema-version";

#[derive(Debug, Error)]
pub enum CodecError {
    #[error("record {topic}/{partition}@{offset} is not a valid {what}: {source}")]
    Malformed {
        topic: String,
        partition: u32,
        offset: u64,
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("record {topic}/{partition}@{offset} has schema version {version}, newer than {SCHEMA_VERSION}")]
    UnknownVersion {
        topic: String,
        partition: u32,
        offset: u64,
        version: u16,
    },
}

/// The partition key of an event: the account for order-lifecycle events, else the symbol.
pub fn event_key(event: &Event) -> Vec<u8> {
    match event {
        Event::Trade { symbol, .. }
        | Event::BookChanged { symbol, .. }
        | Event::TradingStatusChanged { symbol, .. } => symbol.as_str().as_bytes().to_vec(),
        other => other.account().map(account_key).unwrap_or_default(),
    }
}

/// A key that [`partition_for`] places on `partition` of a topic of `partitions`: for the
/// events every partition gets a copy of. The first of `partition-0`, `partition-1`, ... that
/// lands there, so it never changes for a given partition count.
pub fn key_for_partition(partition: u32, partitions: u32) -> Vec<u8> {
    // murmur2 spreads these evenly: a partition count of n needs about n ln n tries in all.
    (0u64..10_000_000)
        .map(|i| format!("partition-{i}").into_bytes())
        .find(|k| partition_for(k, partitions) == partition % partitions.max(1))
        .expect("some key lands on every partition")
}

/// The key of an account's order-lifecycle events: its id as decimal text.
pub fn account_key(account: AccountId) -> Vec<u8> {
    account.to_string().into_bytes()
}

pub fn encode_event(env: &Envelope) -> NewRecord {
    NewRecord {
        key: event_key(&env.event),
        value: serde_json::to_vec(env).expect("events always serialise"),
        headers: vec![
            (
                HEADER_EVENT_TYPE.into(),
                env.event.type_name().as_bytes().to_vec(),
            ),
            (HEADER_EVENT_ID.into(), env.id.0.as_bytes().to_vec()),
            (
                HEADER_SCHEMA_VERSION.into(),
                env.version.to_string().into_bytes(),
            ),
        ],
    }
}

/// The event in a record. Decoded once per stored record in a process: the first reader keeps
/// it in the record's memo and later readers (the other stages) share it.
pub fn decode_event(rec: &Record) -> Result<Arc<Envelope>, CodecError> {
    if let Some(env) = rec.decoded.get::<Envelope>() {
        return Ok(env);
    }
    let env: Envelope =
        serde_json::from_slice(&rec.value).map_err(|source| CodecError::Malformed {
            topic: rec.topic.clone(),
            partition: rec.partition,
            offset: rec.offset,
            what: "event",
            source,
        })?;
    if env.version > SCHEMA_VERSION {
        return Err(CodecError::UnknownVersion {
            topic: rec.topic.clone(),
            partition: rec.partition,
            offset: rec.offset,
            version: env.version,
        });
    }
    let env = Arc::new(env);
    rec.decoded.keep(env.clone());
    Ok(env)
}

pub fn encode_command(cmd: &VenueCommand) -> NewRecord {
    let kind = match cmd {
        VenueCommand::Submit { .. } => "Submit",
        VenueCommand::Cancel { .. } => "Cancel",
        VenueCommand::Amend { .. } => "Amend",
        VenueCommand::Tick { .. } => "Tick",
        VenueCommand::SetStatus { .. } => "SetStatus",
        VenueCommand::Configure { .. } => "Configure",
    };
    NewRecord {
        key: cmd.symbol().as_str().as_bytes().to_vec(),
        value: serde_json::to_vec(cmd).expect("commands always serialise"),
        headers: vec![
            (HEADER_EVENT_TYPE.into(), kind.as_bytes().to_vec()),
            (
                HEADER_SCHEMA_VERSION.into(),
                SCHEMA_VERSION.to_string().into_bytes(),
            ),
        ],
    }
}

pub fn decode_command(rec: &Record) -> Result<VenueCommand, CodecError> {
    serde_json::from_slice(&rec.value).map_err(|source| CodecError::Malformed {
        topic: rec.topic.clone(),
        partition: rec.partition,
        offset: rec.offset,
        what: "venue command",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_domain::ids::{AccountId, OrderId, Timestamp};

    #[test]
    fn a_key_for_each_partition_lands_on_it() {
        for n in [1, 2, 3, 4, 8, 32, 100] {
            let keys: std::collections::HashSet<Vec<u8>> = (0..n)
                .map(|p| {
                    let key = key_for_partition(p, n);
                    assert_eq!(partition_for(&key, n), p, "partition {p} of {n}");
                    key
                })
                .collect();
            assert_eq!(keys.len(), n as usize);
        }
        assert_eq!(key_for_partition(3, 8), key_for_partition(3, 8));
    }

    fn record(topic: &str, r: NewRecord) -> Record {
        Record {
            topic: topic.into(),
            partition: 0,
            offset: 3,
            key: r.key.into(),
            value: r.value.into(),
            headers: r.headers.into(),
            timestamp_ms: 0,
            decoded: Default::default(),
        }
    }

    #[test]
    fn lifecycle_events_are_keyed_by_account_with_headers() {
        let env = Envelope::new(
            Timestamp(1),
            Event::CancelRequested {
                account: AccountId(42),
                order_id: OrderId(7),
                reason: None,
            },
        );
        let rec = record(topics::ORDERS, encode_event(&env));
        assert_eq!(&rec.key[..], b"42");
        assert_eq!(rec.header(HEADER_EVENT_TYPE), Some(&b"CancelRequested"[..]));
        assert_eq!(rec.header(HEADER_EVENT_ID), Some(&b"o:7:cancel-req"[..]));
        assert_eq!(*decode_event(&rec).unwrap(), env);
    }

    #[test]
    fn newer_schema_versions_are_refused() {
        let mut env = Envelope::new(
            Timestamp(1),
            Event::CancelRequested {
                account: AccountId(1),
                order_id: OrderId(1),
                reason: None,
            },
        );
        env.version = SCHEMA_VERSION + 1;
        let rec = record(topics::ORDERS, encode_event(&env));
        assert!(matches!(
            decode_event(&rec),
            Err(CodecError::UnknownVersion { .. })
        ));
    }
}
