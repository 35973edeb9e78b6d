//! What the journal holds: one framed record per change of a key.
//!
//! Frame: payload length (u32 LE), CRC-32 of the payload (u32 LE), payload. Every record names
//! its key and carries the key's whole state, so the newest record of a key is enough to
//! restore it: older segments can be deleted without reading them.

use oms_ports::idempotency::StoredResponse;

pub(super) const HEADER: usize = 8;
/// The largest record: far above any response the API stores (a cancel of every order of an
/// account lists them all, some hundreds of bytes each). Larger ones are refused when queued;
/// a length beyond it when reading is damage, not a record.
pub(super) const MAX_PAYLOAD: usize = 256 << 20;

const CLAIM: u8 = 1;
const DONE: u8 = 2;
const RELEASE: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Record {
    /// A claim in flight: locked until `lock_until`, kept until `expires_at` (ms since epoch).
    Claim {
        key: String,
        fingerprint: String,
        expires_at: i64,
        lock_until: i64,
        intent: Vec<u8>,
    },
    /// A completed key and the response it replays.
    Done {
        key: String,
        fingerprint: String,
        expires_at: i64,
        response: StoredResponse,
    },
    /// A claim given back before any effect: the key is free.
    Release { key: String },
}

impl Record {
    pub(super) fn key(&self) -> &str {
        match self {
            Record::Claim { key, .. } | Record::Done { key, .. } | Record::Release { key } => key,
        }
    }

    /// Appends the framed record to `out`.
    pub(super) fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER]);
        match self {
            Record::Claim {
                key,
                fingerprint,
                expires_at,
                lock_until,
                intent,
            } => {
                out.push(CLAIM);
                put_bytes(out, key.as_bytes());
                put_bytes(out, fingerprint.as_bytes());
                out.extend_from_slice(&expires_at.to_le_bytes());
                out.extend_from_slice(&lock_until.to_le_bytes());
                put_bytes(out, intent);
            }
            Record::Done {
                key,
                fingerprint,
                expires_at,
                response,
            } => {
                out.push(DONE);
                put_bytes(out, key.as_bytes());
                put_bytes(out, fingerprint.as_bytes());
                out.extend_from_slice(&expires_at.to_le_bytes());
                out.extend_from_slice(&response.status.to_le_bytes());
                out.extend_from_slice(&(response.headers.len() as u32).to_le_bytes());
                for (name, value) in &response.headers {
                    put_bytes(out, name.as_bytes());
                    put_bytes(out, value.as_bytes());
                }
                put_bytes(out, &response.body);
            }
            Record::Release { key } => {
                out.push(RELEASE);
                put_bytes(out, key.as_bytes());
            }
        }
        let payload = &out[start + HEADER..];
        let (len, crc) = (payload.len() as u32, crc32fast::hash(payload));
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
    }

    /// Reads the payload of a frame whose checksum was verified.
    pub(super) fn decode(payload: &[u8]) -> Result<Record, String> {
        let mut r = Reader(payload);
        let record = match r.u8()? {
            CLAIM => Record::Claim {
                key: r.string()?,
                fingerprint: r.string()?,
                expires_at: r.i64()?,
                lock_until: r.i64()?,
                intent: r.bytes()?.to_vec(),
            },
            DONE => {
                let (key, fingerprint, expires_at) = (r.string()?, r.string()?, r.i64()?);
                let status = u16::from_le_bytes(r.take(2)?.try_into().expect("two bytes"));
                let count = r.u32()? as usize;
                let mut headers = Vec::with_capacity(count.min(64));
                for _ in 0..count {
                    headers.push((r.string()?, r.string()?));
                }
                Record::Done {
                    key,
                    fingerprint,
                    expires_at,
                    response: StoredResponse {
                        status,
                        headers,
                        body: r.bytes()?.to_vec(),
                    },
                }
            }
            RELEASE => Record::Release { key: r.string()? },
            other => return Err(format!("unknown record kind {other}")),
        };
        if !r.0.is_empty() {
            return Err(format!("{} bytes after the record", r.0.len()));
        }
        Ok(record)
    }
}

/// The frame at the start of `buf`: `Ok(Some((payload, frame length)))`, `Ok(None)` if `buf`
/// ends before the frame does (a torn write), `Err` if the frame is damaged.
pub(super) fn frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, String> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len = u32::from_le_bytes(buf[..4].try_into().expect("four bytes")) as usize;
    let crc = u32::from_le_bytes(buf[4..HEADER].try_into().expect("four bytes"));
    if len == 0 || len > MAX_PAYLOAD {
        return Err(format!("record length {len}"));
    }
    let Some(payload) = buf.get(HEADER..HEADER + len) else {
        return Ok(None);
    };
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(Some((payload, HEADER + len)))
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("record ends early".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("four bytes"),
        ))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("eight bytes"),
        ))
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "text is not UTF-8".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Record> {
        vec![
            Record::Claim {
                key: "acct:k1".into(),
                fingerprint: "f".into(),
                expires_at: 10,
                lock_until: -5,
                intent: b"{\"orderId\":1}".to_vec(),
            },
            Record::Done {
                key: "acct:k1".into(),
                fingerprint: "f".into(),
                expires_at: 20,
                response: StoredResponse {
                    status: 202,
                    headers: vec![("location".into(), "/api/orders/1".into())],
                    body: b"{}".to_vec(),
                },
            },
            Record::Release { key: "ä".into() },
        ]
    }

    #[test]
    fn records_round_trip_through_frames() {
        let mut buf = Vec::new();
        for r in records() {
            r.encode_into(&mut buf);
        }
        let mut at = 0;
        let mut back = Vec::new();
        while let Some((payload, len)) = frame(&buf[at..]).unwrap() {
            back.push(Record::decode(payload).unwrap());
            at += len;
        }
        assert_eq!(back, records());
        assert_eq!(at, buf.len());
    }

    #[test]
    fn torn_and_damaged_frames_are_told_apart() {
        let mut buf = Vec::new();
        records()[1].encode_into(&mut buf);
        assert_eq!(frame(&buf[..buf.len() - 1]).unwrap(), None, "torn");
        assert_eq!(frame(&buf[..3]).unwrap(), None, "torn header");
        let last = buf.len() - 1;
        buf[last] ^= 1;
        assert!(frame(&buf).is_err(), "a flipped bit fails the checksum");
        assert!(frame(&[0; 8]).is_err(), "a zero length is damage");
        assert!(Record::decode(&[9]).is_err());
        assert!(
            Record::decode(&[RELEASE, 1, 0, 0, 0]).is_err(),
            "ends early"
        );
    }
}
