//! A fully buffered response: what handlers return, so an idempotent request's first answer
//! can be stored and replayed byte for byte.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use oms_ports::idempotency::StoredResponse;
use serde::Serialize;

/// Headers kept with a stored idempotent response.
pub const REPLAYED_HEADERS: [&str; 2] = ["location", "content-type"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// A failure after which the request's effect may or may not have happened (an append
    /// that reported an error can still have landed): its idempotency key is neither freed
    /// nor left locked, but handed to the next retry to resume (`IdempotencyStore::abandon`).
    pub effect_unknown: bool,
}

impl Reply {
    pub fn new(status: StatusCode, content_type: &str, body: Vec<u8>) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body,
            effect_unknown: false,
        }
    }

    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Self {
        Reply::new(
            status,
            "application/json",
            serde_json::to_vec(value).expect("views serialise"),
        )
    }

    pub fn empty(status: StatusCode) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            effect_unknown: false,
        }
    }

    /// Marks the reply as [`Reply::effect_unknown`].
    pub fn effect_unknown(mut self) -> Self {
        self.effect_unknown = true;
        self
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn to_stored(&self) -> StoredResponse {
        StoredResponse {
            status: self.status.as_u16(),
            headers: self
                .headers
                .iter()
                .filter(|(k, _)| REPLAYED_HEADERS.contains(&k.as_str()))
                .cloned()
                .collect(),
            body: self.body.clone(),
        }
    }

    pub fn from_stored(s: &StoredResponse) -> Self {
        Reply {
            status: StatusCode::from_u16(s.status).unwrap_or(StatusCode::OK),
            headers: s.headers.clone(),
            body: s.body.clone(),
            effect_unknown: false,
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut resp = Response::new(Body::from(self.body));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        for (k, v) in self.headers {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                h.append(k, v);
            }
        }
        resp
    }
}

/// Lets handlers use `?` on problems and return a [`Reply`] either way.
pub type ReplyResult = Result<Reply, super::problem::Problem>;
