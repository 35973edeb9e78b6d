//! The value stored under an idempotency key: the state, the request's fingerprint and, once
//! completed, the response. One tag byte, so a claim and its state are one atomic string:
//!
//! - `L` + lock floor (20 digits) + fingerprint length (10 digits) + fingerprint + intent: a
//!   request in flight. Its lock has expired once the key's remaining time to live (`PTTL`) is
//!   at or below the floor, so the lock runs on Redis's clock although the record is written by
//!   one plain `SET NX PX GET`; a claim with the same fingerprint may then resume it;
//! - `P` + lock expiry (20 digits, ms since the epoch by Redis's clock) + the same tail: a
//!   request in flight as earlier versions wrote it (read, and resumed, only);
//! - `R` + such an `L` or `P` record: the resume script's answer when it resumed that request;
//! - `F` + fingerprint: a request in flight, from before intents (read only);
//! - `C` + JSON `{fingerprint, status, headers}` + `\n` + body bytes: completed. Compact JSON
//!   escapes every newline, so the first `\n` ends it, and the body stays raw binary.

use oms_ports::idempotency::{Claim, StoredResponse};
use serde::{Deserialize, Serialize};

const IN_FLIGHT: u8 = b'F';
const LOCKED: u8 = b'L';
const PENDING: u8 = b'P';
const RESUMED: u8 = b'R';
const COMPLETED: u8 = b'C';

/// The tag bytes of a claim in flight, for the release script.
pub(crate) const IN_FLIGHT_TAGS: [char; 3] = [IN_FLIGHT as char, LOCKED as char, PENDING as char];
/// Digits of the lock floor (expiry) and of the fingerprint length in an `L` (`P`) record.
pub(crate) const LOCK_DIGITS: usize = 20;
pub(crate) const LEN_DIGITS: usize = 10;

#[derive(Serialize, Deserialize)]
struct Meta {
    fingerprint: String,
    status: u16,
    headers: Vec<(String, String)>,
}

/// A new claim's `L` record: locked until the key's `PTTL` falls to `floor` ms.
pub(crate) fn locked(floor: u64, fingerprint: &str, intent: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + LOCK_DIGITS + LEN_DIGITS + fingerprint.len() + intent.len());
    v.push(LOCKED);
    v.extend_from_slice(format!("{floor:0LOCK_DIGITS$}").as_bytes());
    v.extend_from_slice(format!("{:0LEN_DIGITS$}", fingerprint.len()).as_bytes());
    v.extend_from_slice(fingerprint.as_bytes());
    v.extend_from_slice(intent);
    v
}

/// Whether `value` is a claim in flight that a request with `fingerprint` might resume, which
/// only the resume script can decide (it needs the key's lock and time to live).
pub(crate) fn may_resume(value: &[u8], fingerprint: &str) -> bool {
    matches!(value.first(), Some(&LOCKED | &PENDING))
        && value
            .get(1..=LOCK_DIGITS)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
        && pending(&value[1..]).is_ok_and(|(fp, _)| fp == fingerprint)
}

/// Fingerprint and intent of an `L` or `P` record (without its tag).
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
        Some((&LOCKED | &PENDING, rest)) => Ok(Claim::InFlight {
            fingerprint: pending(rest)?.0,
        }),
        Some((&RESUMED, record)) => match record.split_first() {
            Some((&LOCKED | &PENDING, rest)) => Ok(Claim::Resumed {
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
        let l = locked(86_390_000, "fp\n2", &[0, b'\n', 255]);
        assert_eq!(&l[..21], b"L00000000000086390000");
        // An earlier version's record: the same tail behind an absolute lock expiry.
        let mut p = b"P".to_vec();
        p.extend_from_slice(format!("{:020}", 1_764_540_000_000u64).as_bytes());
        p.extend_from_slice(&l[21..]);
        for record in [&l, &p] {
            assert_eq!(
                decode(record).unwrap(),
                Claim::InFlight {
                    fingerprint: "fp\n2".into()
                }
            );
            let mut r = b"R".to_vec();
            r.extend_from_slice(record);
            assert_eq!(
                decode(&r).unwrap(),
                Claim::Resumed {
                    intent: vec![0, b'\n', 255]
                }
            );
            assert!(may_resume(record, "fp\n2"));
            assert!(!may_resume(record, "fp"), "another body never resumes");
        }
        assert!(!may_resume(b"Ffp\n2", "fp\n2"), "no lock to check");
        assert!(!may_resume(
            &completed(
                "fp",
                &StoredResponse {
                    status: 200,
                    headers: vec![],
                    body: vec![],
                }
            ),
            "fp"
        ));
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
        assert!(decode(b"L0001").is_err(), "locked record too short");
        assert!(!may_resume(b"L0001", ""));
        let mut bad_lock = locked(5, "fp", b"");
        bad_lock[3] = b'x';
        assert!(
            !may_resume(&bad_lock, "fp"),
            "a damaged lock is not for the script"
        );
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
