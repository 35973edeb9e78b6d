//! The value stored under an idempotency key: the state, the request's fingerprint and, once
//! completed, the response. One tag byte, so a claim and its state are one atomic string:
//!
//! - `F` + fingerprint: a request in flight;
//! - `C` + JSON `{fingerprint, status, headers}` + `\n` + body bytes: completed. Compact JSON
//!   escapes every newline, so the first `\n` ends it, and the body stays raw binary.

use oms_ports::idempotency::{Claim, StoredResponse};
use serde::{Deserialize, Serialize};

const IN_FLIGHT: u8 = b'F';
const COMPLETED: u8 = b'C';

/// The tag byte of a claim in flight, for the release script.
pub(crate) const IN_FLIGHT_TAG: char = IN_FLIGHT as char;

#[derive(Serialize, Deserialize)]
struct Meta {
    fingerprint: String,
    status: u16,
    headers: Vec<(String, String)>,
}

pub(crate) fn in_flight(fingerprint: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + fingerprint.len());
    v.push(IN_FLIGHT);
    v.extend_from_slice(fingerprint.as_bytes());
    v
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
            decode(&in_flight("abc")).unwrap(),
            Claim::InFlight {
                fingerprint: "abc".into()
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
        assert!(
            decode(&[b'F', 0xff, 0xfe]).is_err(),
            "fingerprint not UTF-8"
        );
    }
}
