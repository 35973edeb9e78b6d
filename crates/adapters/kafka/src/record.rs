//! Conversions between the port's records and Kafka messages.

use oms_ports::event_log::{Bytes, NewRecord, Record};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::Message;

/// The port's headers as Kafka headers, in order. Values are never null: an empty value is
/// sent as an empty value.
pub(crate) fn kafka_headers(record: &NewRecord) -> Option<OwnedHeaders> {
    if record.headers.is_empty() {
        return None;
    }
    let mut out = OwnedHeaders::new_with_capacity(record.headers.len());
    for (name, value) in &record.headers {
        out = out.insert(Header {
            key: name.as_str(),
            value: Some(value.as_slice()),
        });
    }
    Some(out)
}

/// A consumed message as the port's record. A null key, value or header value (which this
/// adapter never writes) reads as empty.
pub(crate) fn to_record(msg: &BorrowedMessage<'_>) -> Record {
    let headers: Vec<(String, Vec<u8>)> = msg
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    Record {
        topic: msg.topic().to_string(),
        partition: msg.partition() as u32,
        offset: msg.offset() as u64,
        key: Bytes::copy_from_slice(msg.key().unwrap_or_default()),
        value: Bytes::copy_from_slice(msg.payload().unwrap_or_default()),
        headers: headers.into(),
        timestamp_ms: msg.timestamp().to_millis().unwrap_or(0),
        decoded: Default::default(),
    }
}
