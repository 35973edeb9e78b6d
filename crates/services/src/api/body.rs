//! The raw JSON body of a request: content type checked (415), size limited (413), kept as
//! bytes so the idempotency fingerprint covers exactly what was sent; and the checks of small
//! bodies' shape that several routes share.

use super::duplicate_keys::first_duplicate_key;
use super::problem::{api_codes, Problem};
use crate::ingestion::{codes, FieldError};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::{Map, Value};

pub struct JsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(JsonBody(b)),
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Problem::body_too_large(None))
            }
            Err(rej) => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                crate::ingestion::codes::MALFORMED_JSON,
                format!("the body could not be read: {}", rej.body_text()),
            )
            .with_field("body")),
        }
    }
}

impl JsonBody {
    /// Parses the bytes. Numbers keep their text (`arbitrary_precision`) for exact decimals.
    pub fn parse(&self) -> Result<Value, Problem> {
        parse_json(&self.0)
    }
}

/// A JSON body, refused if it is not JSON or gives a key twice in one object.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, Problem> {
    let value = serde_json::from_slice(body).map_err(Problem::malformed_json)?;
    match first_duplicate_key(body) {
        None => Ok(value),
        Some(key) => Err(Problem::validation(vec![FieldError::new(
            &key,
            codes::DUPLICATE_FIELD,
            format!("{key} is given more than once"),
        )])),
    }
}

/// `415` unless the request says its body is JSON, and not encoded (compressed): the body is
/// read as it comes.
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    let encoded = headers.get_all(header::CONTENT_ENCODING).iter().any(|v| {
        !v.to_str()
            .is_ok_and(|e| e.trim().eq_ignore_ascii_case("identity"))
    });
    if encoded {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            api_codes::UNSUPPORTED_MEDIA_TYPE,
            "send the body without a Content-Encoding: compressed bodies are not accepted",
        )
        .with_field("Content-Encoding"));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if is_json_content_type(ct) {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            api_codes::UNSUPPORTED_MEDIA_TYPE,
            "send the body as application/json",
        )
        .with_field("Content-Type"))
    }
}

/// `application/json` or any `application/*+json`, with any parameters.
pub fn is_json_content_type(ct: &str) -> bool {
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// The body as an object whose keys are all in `allowed`.
pub(crate) fn object<'a>(
    body: &'a Value,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, FieldError> {
    let fields = body.as_object().ok_or_else(|| {
        FieldError::new(
            "body",
            codes::MALFORMED_JSON,
            "the body must be a JSON object",
        )
    })?;
    if let Some(other) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(FieldError::new(
            other,
            codes::UNKNOWN_FIELD,
            format!(
                "unknown field {other:?}: only {} accepted",
                allowed.join(", ")
            ),
        ));
    }
    Ok(fields)
}

/// A required string field; `None` and `null` are missing.
pub(crate) fn string_field<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, FieldError> {
    match fields.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(FieldError::new(
            name,
            codes::MISSING_FIELD,
            format!("{name} is required"),
        )),
        Some(_) => Err(FieldError::new(
            name,
            codes::INVALID_TYPE,
            format!("{name} must be a string"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(is_json_content_type("application/merge-patch+json"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type(""));
        assert!(!is_json_content_type("application/x-www-form-urlencoded"));
    }
}
