//! The on-disk frame of one record.
//!
//! ```text
//! len u32 | crc32 u32 | body (len bytes)
//! body = offset u64 | timestamp_ms i64 | key_len u32 | key | value_len u32 | value
//!        | header_count u32 | (name_len u32 | name | value_len u32 | value)*
//! ```
//! All integers little-endian. The CRC covers the body, so a frame torn by a crash (short, or
//! with bytes that never reached the disk) is recognised and never read as a record.

use oms_ports::event_log::{Bytes, Headers, Memo, NewRecord};

/// Bytes before the body: length and CRC.
pub(crate) const FRAME_HEADER: usize = 8;
/// The smallest valid body: offset, timestamp and three empty lengths.
const MIN_BODY: usize = 8 + 8 + 4 + 4 + 4;
/// Largest body accepted. A larger length in a frame header can only be garbage.
pub(crate) const MAX_BODY: usize = 16 * 1024 * 1024;

/// A record as stored in a partition (topic and partition are implied by the file). Its parts
/// are shared with every `Record` read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredRecord {
    pub offset: u64,
    pub timestamp_ms: i64,
    pub key: Bytes,
    pub value: Bytes,
    pub headers: Headers,
    /// Shared by every `Record` read from this one: its first reader's decoded value.
    pub memo: Memo,
}

/// A record on its way to the writer, its parts already in the shared form reads hand out.
#[derive(Debug, Clone)]
pub(crate) struct SharedRecord {
    pub key: Bytes,
    pub value: Bytes,
    pub headers: Headers,
}

impl From<NewRecord> for SharedRecord {
    fn from(r: NewRecord) -> Self {
        SharedRecord {
            key: r.key.into(),
            value: r.value.into(),
            headers: r.headers.into(),
        }
    }
}

impl StoredRecord {
    /// Memory held by the record, for the tail cache's budget.
    pub fn footprint(&self) -> usize {
        // The value counts three times: once as bytes, twice for what a reader may keep in
        // the memo (a decoded event holds its strings and more).
        64 + self.key.len()
            + 3 * self.value.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| 48 + k.len() + v.len())
                .sum::<usize>()
    }
}

/// The encoded size of a body, to reject oversized records before they reach the writer.
pub(crate) fn body_len(key: &[u8], value: &[u8], headers: &[(String, Vec<u8>)]) -> usize {
    MIN_BODY
        + key.len()
        + value.len()
        + headers
            .iter()
            .map(|(k, v)| 8 + k.len() + v.len())
            .sum::<usize>()
}

/// Appends one frame to `out`; returns the frame's length.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    offset: u64,
    timestamp_ms: i64,
    key: &[u8],
    value: &[u8],
    headers: &[(String, Vec<u8>)],
) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER]);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    put_bytes(out, key);
    put_bytes(out, value);
    out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    for (name, v) in headers {
        put_bytes(out, name.as_bytes());
        put_bytes(out, v);
    }
    let body_len = out.len() - start - FRAME_HEADER;
    let crc = crc32fast::hash(&out[start + FRAME_HEADER..]);
    out[start..start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    out.len() - start
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// What the start of a buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole, valid record and the frame's length.
    Record(StoredRecord, usize),
    /// The buffer ends inside a frame; `Some(n)` when the whole frame is known to be n bytes.
    Incomplete(Option<usize>),
    /// Bytes that are not a valid frame (torn write or damage).
    Invalid(&'static str),
}

/// The frame length announced by a frame header, if it is plausible.
pub(crate) fn frame_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < FRAME_HEADER {
        return None;
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
    (MIN_BODY..=MAX_BODY)
        .contains(&len)
        .then_some(FRAME_HEADER + len)
}

/// The offset of the frame at the start of `buf`, without checking or decoding the rest.
pub(crate) fn peek_offset(buf: &[u8]) -> Option<u64> {
    buf.get(FRAME_HEADER..FRAME_HEADER + 8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
}

pub(crate) fn decode(buf: &[u8]) -> Frame {
    if buf.len() < FRAME_HEADER {
        return Frame::Incomplete(None);
    }
    let Some(total) = frame_len(buf) else {
        return Frame::Invalid("frame length out of range");
    };
    if buf.len() < total {
        return Frame::Incomplete(Some(total));
    }
    let crc = u32::from_le_bytes(buf[4..8].try_into().unwrap());
    let body = &buf[FRAME_HEADER..total];
    if crc32fast::hash(body) != crc {
        return Frame::Invalid("checksum mismatch");
    }
    match decode_body(body) {
        Some(r) => Frame::Record(r, total),
        None => Frame::Invalid("malformed body"),
    }
}

fn decode_body(body: &[u8]) -> Option<StoredRecord> {
    let mut r = Reader { buf: body };
    let offset = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let timestamp_ms = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let key = Bytes::copy_from_slice(r.bytes()?);
    let value = Bytes::copy_from_slice(r.bytes()?);
    let n = r.u32()? as usize;
    // Each header needs at least 8 bytes, so a huge count in a short body is rejected here.
    if n > r.buf.len() / 8 {
        return None;
    }
    let mut headers = Vec::with_capacity(n);
    for _ in 0..n {
        let name = String::from_utf8(r.bytes()?.to_vec()).ok()?;
        headers.push((name, r.bytes()?.to_vec()));
    }
    r.buf.is_empty().then(|| StoredRecord {
        offset,
        timestamp_ms,
        key,
        value,
        headers: headers.into(),
        memo: Memo::default(),
    })
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredRecord {
        StoredRecord {
            offset: 42,
            timestamp_ms: 1_700_000_000_123,
            key: Bytes::from_static(b"acct-7"),
            value: Bytes::from_static(&[0, 1, 2, 255]),
            headers: vec![
                ("type".into(), b"OrderCreated".to_vec()),
                ("e".into(), vec![]),
            ]
            .into(),
            memo: Memo::default(),
        }
    }

    fn encoded(r: &StoredRecord) -> Vec<u8> {
        let mut out = Vec::new();
        let n = encode(
            &mut out,
            r.offset,
            r.timestamp_ms,
            &r.key,
            &r.value,
            &r.headers,
        );
        assert_eq!(n, out.len());
        assert_eq!(n, FRAME_HEADER + body_len(&r.key, &r.value, &r.headers));
        out
    }

    #[test]
    fn frame_round_trips() {
        let r = sample();
        let buf = encoded(&r);
        assert_eq!(decode(&buf), Frame::Record(r.clone(), buf.len()));
        assert_eq!(peek_offset(&buf), Some(42));
        assert_eq!(frame_len(&buf), Some(buf.len()));
    }

    #[test]
    fn every_truncation_is_incomplete_never_a_record() {
        let buf = encoded(&sample());
        for cut in 0..buf.len() {
            match decode(&buf[..cut]) {
                Frame::Incomplete(_) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let buf = encoded(&sample());
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x5a;
            assert!(
                !matches!(decode(&bad), Frame::Record(..)),
                "flip at {i} decoded as a record"
            );
        }
    }

    #[test]
    fn zeroed_tail_is_invalid() {
        assert_eq!(
            decode(&[0u8; 64]),
            Frame::Invalid("frame length out of range")
        );
    }
}
