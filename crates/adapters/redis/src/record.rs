//! The value stored under an idempotency key: the state, the request's fingerprint and, once
//! completed, the response. One tag byte, so a claim and its state are one atomic string:
//!
//! - `P` + lock expiry (20 digits, ms since the epoch by Redis's clock) + fingerprint length
//!   (10 digits) + fingerprint + intent: a request in flight, resumable once the lock expires;
//!   the claim script reads and rewrites the expiry in place;
//! - `R` + such a `P` record: the claim script's answer when it resumed that request;
//! - `F` + fingerprint: a request in flight, from before intents (read only);
//! - `C` + JSON `{fingerprint, status, headers}` + `\n` + body bytes: completed. Compact JSON
//!   escapes every newline, so the first `\n` ends it, and the body stays raw binary.

use oms_ports::idempotency::{Claim, StoredResponse};
use serde::{Deserialize, Serialize};

const IN_FLIGHT: u8 = b'F';
const PENDING: u8 = b'P';
const RESUMED: u8 = b'R';
const COMPLETED: u8 = b'C';

/// The tag bytes of a claim in flight, for the release script.
pub(crate) const IN_FLIGHT_TAGS: [char; 2] = [IN_FLIGHT as char, PENDING as char];
/// Digits of the lock expiry and of the fingerprint length in a `P` record.
pub(crate) const LOCK_DIGITS: usize = 20;
pub(crate) const LEN_DIGITS: usize = 10;

#[derive(Serialize, Deserialize)]
struct Meta {
    fingerprint: String,
    status: u16,
    headers: Vec<(String, String)>,
}

/// The part of a `P` record after its lock expiry: the script puts the expiry in front.
pub(crate) fn pending_tail(fingerprint: &str, intent: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(LEN_DIGITS + fingerprint.len() + intent.len());
    v.extend_from_slice(format!("{:0LEN_DIGITS$}", fingerprint.len()).as_bytes());
    v.extend_from_slice(fingerprint.as_bytes());
    v.extend_from_slice(intent);
    v
}

/// Fingerprint and intent of a `P` record (without its tag).
fn pending(rest: &[u8]) -> Result<(String, Vec<u8>), String> {
    let tail = rest.get(LOCK_DIGITS..).ok_or("pending record too short")?;
    let len: usize = std::str::from_utf8(tail.get(..LEN_DIGITS).ok_or("pending record too short")?)
        .ok()
        .and_then(|n| n.parse().ok())
        .ok_or("pending record: bad fingerprint length")?;
    let fp = tail
        .get(LEN_DIGITS..LEN_DIGITS + len)
        .ok_or("pending record: fingerprint cut short")?;
    let fp =
        String::from_utf8(fp.to_vec()).map_err(|e| format!("fingerprint is not UTF-8: {e}"))?;
    Ok((fp, tail[LEN_DIGITS + len..].to_vec()))
}

pub(crate) fn completed(fingerprint: &str, response: &StoredResponse) -> Vec<u8> {
    let meta = serde_json::to_vec(&Meta {
        fingerprint: fingerprint.to_string(),
        status: response.status,
        headers: response.headers.clone(),
    })
    .expect("strings and integers always serialise");
    let mut v = Vec::with_capacity(2 + meta.len() + response.body.len());
    v.push(COMPLETED);
    v.extend_from_slice(&meta);
    v.push(b'\n');
    v.extend_from_slice(&response.body);
    v
}

/// What a stored value says to a new claim.
pub(crate) fn decode(value: &[u8]) -> Result<Claim, String> {
    match value.split_first() {
        Some((&IN_FLIGHT, fp)) => Ok(Claim::InFlight {
            fingerprint: String::from_utf8(fp.to_vec())
                .map_err(|e| format!("fingerprint is not UTF-8: {e}"))?,
        }),
        Some((&PENDING, rest)) => Ok(Claim::InFlight {
            fingerprint: pending(rest)?.0,
        }),
        Some((&RESUMED, record)) => match record.split_first() {
            Some((&PENDING, rest)) => Ok(Claim::Resumed {
                intent: pending(rest)?.1,
            }),
            _ => Err("resumed record without its pending record".into()),
        },
        Some((&COMPLETED, rest)) => {
            let end = rest
                .iter()
                .position(|b| *b == b'\n')
                .ok_or("completed record without a body separator")?;
            let meta: Meta = serde_json::from_slice(&rest[..end])
                .map_err(|e| format!("completed record: {e}"))?;
            Ok(Claim::Completed {
                fingerprint: meta.fingerprint,
                response: StoredResponse {
                    status: meta.status,
                    headers: meta.headers,
                    body: rest[end + 1..].to_vec(),
                },
            })
        }
        Some((tag, _)) => Err(format!("unknown record tag {tag:#04x}")),
        None => Err("empty record".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_binary_bodies_and_newlines_in_headers() {
        assert_eq!(
            decode(b"Fabc").unwrap(),
            Claim::InFlight {
                fingerprint: "abc".into()
            },
            "an in-flight record from before intents"
        );
        let mut p = b"P".to_vec();
        p.extend_from_slice(format!("{:020}", 1_764_540_000_000u64).as_bytes());
        p.extend_from_slice(&pending_tail("fp\n2", &[0, b'\n', 255]));
        assert_eq!(
            decode(&p).unwrap(),
            Claim::InFlight {
                fingerprint: "fp\n2".into()
            }
        );
        let mut r = b"R".to_vec();
        r.extend_from_slice(&p);
        assert_eq!(
            decode(&r).unwrap(),
            Claim::Resumed {
                intent: vec![0, b'\n', 255]
            }
        );
        let response = StoredResponse {
            status: 201,
            headers: vec![("x-note".into(), "line\nbreak".into())],
            body: vec![b'\n', 0, 255, b'{', b'\n'],
        };
        assert_eq!(
            decode(&completed("fp\n", &response)).unwrap(),
            Claim::Completed {
                fingerprint: "fp\n".into(),
                response
            }
        );
        let empty = StoredResponse {
            status: 204,
            headers: vec![],
            body: vec![],
        };
        assert_eq!(
            decode(&completed("", &empty)).unwrap(),
            Claim::Completed {
                fingerprint: String::new(),
                response: empty
            }
        );
    }

    #[test]
    fn damaged_records_are_errors() {
        assert!(decode(b"").is_err());
        assert!(decode(b"Xwhat").is_err());
        assert!(decode(b"C{\"fingerprint\":\"a\"}").is_err(), "no separator");
        assert!(decode(b"C{not json}\nbody").is_err());
        assert!(decode(b"P0001").is_err(), "pending record too short");
        assert!(decode(b"R").is_err());
        assert!(
            decode(b"P00000000000000000001000000009abc").is_err(),
            "fingerprint longer than the record"
        );
        assert!(
            decode(&[b'F', 0xff, 0xfe]).is_err(),
            "fingerprint not UTF-8"
        );
    }
}
