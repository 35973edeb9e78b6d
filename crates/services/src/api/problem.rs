//! RFC 9457 problem details: every error the API returns is one of these.

use super::reply::Reply;
use super::request_ctx;
use crate::ingestion::field_error::{codes, FieldError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use oms_ports::PortError;
use serde_json::{json, Map, Value};

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
pub const PROBLEM_TYPE_BASE: &str = "https://crypto-oms.dev/problems/";

/// API-level error codes (field-level validation codes live in [`codes`]).
pub mod api_codes {
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    /// The admin API is off: no operator key is configured.
    pub const ADMIN_DISABLED: &str = "ADMIN_DISABLED";
    /// A read-only API key (or its session) asked to trade.
    pub const READ_ONLY_KEY: &str = "READ_ONLY_KEY";
    /// An account's requests came faster than the configured rate (429).
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const ACCOUNT_NOT_FOUND: &str = "ACCOUNT_NOT_FOUND";
    pub const API_KEY_NOT_FOUND: &str = "API_KEY_NOT_FOUND";
    /// No credit of a deposit with that reference and asset is recorded (yet).
    pub const DEPOSIT_NOT_FOUND: &str = "DEPOSIT_NOT_FOUND";
    /// No decision on a withdrawal with that reference is recorded (yet).
    pub const WITHDRAWAL_NOT_FOUND: &str = "WITHDRAWAL_NOT_FOUND";
    /// A deposit's reference (and asset) credited already with another amount.
    pub const DEPOSIT_REFERENCE_REUSED: &str = "DEPOSIT_REFERENCE_REUSED";
    /// A withdrawal's reference decided already for another asset or amount.
    pub const WITHDRAWAL_REFERENCE_REUSED: &str = "WITHDRAWAL_REFERENCE_REUSED";
    /// A withdrawal from the fee account, whose balance no single partition holds.
    pub const FEE_ACCOUNT_WITHDRAWAL: &str = "FEE_ACCOUNT_WITHDRAWAL";
    pub const DUPLICATE_ACCOUNT_NAME: &str = "DUPLICATE_ACCOUNT_NAME";
    /// `X-Idempotency-Key` on a request whose response holds a secret, which is never stored.
    pub const IDEMPOTENCY_NOT_SUPPORTED: &str = "IDEMPOTENCY_NOT_SUPPORTED";
    pub const BODY_TOO_LARGE: &str = "BODY_TOO_LARGE";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
    pub const ORDER_NOT_FOUND: &str = "ORDER_NOT_FOUND";
    pub const ORDER_NOT_LIVE: &str = "ORDER_NOT_LIVE";
    pub const DUPLICATE_CLIENT_ORDER_ID: &str = "DUPLICATE_CLIENT_ORDER_ID";
    pub const INVALID_IDEMPOTENCY_KEY: &str = "INVALID_IDEMPOTENCY_KEY";
    pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
    pub const IDEMPOTENCY_REQUEST_IN_FLIGHT: &str = "IDEMPOTENCY_REQUEST_IN_FLIGHT";
    pub const IDEMPOTENCY_UNAVAILABLE: &str = "IDEMPOTENCY_UNAVAILABLE";
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub const VALIDATION_FAILED: &str = "VALIDATION_FAILED";
}
use api_codes::*;

/// The most field errors one problem lists; how many more there were is in `errorsOmitted`.
pub const MAX_LISTED_ERRORS: usize = 50;

#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub field: Option<String>,
    pub errors: Vec<FieldError>,
    /// Extension members, such as `existingOrderId` (boxed: most problems have none).
    pub extra: Option<Box<Map<String, Value>>>,
    pub retry_after_secs: Option<u32>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
            field: None,
            errors: Vec::new(),
            extra: None,
            retry_after_secs: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_extra(mut self, key: &str, value: Value) -> Self {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(key.to_string(), value);
        self
    }

    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// 400 from field errors: the first one is the headline; all are listed under `errors`
    /// when there are several.
    pub fn validation(mut errors: Vec<FieldError>) -> Self {
        if errors.is_empty() {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                VALIDATION_FAILED,
                "invalid request",
            );
        }
        let first = errors[0].clone();
        let mut p =
            Problem::new(StatusCode::BAD_REQUEST, first.code, first.detail).with_field(first.field);
        if errors.len() > 1 {
            // A body of thousands of unknown fields is not answered with thousands of errors.
            if errors.len() > MAX_LISTED_ERRORS {
                p = p.with_extra("errorsOmitted", json!(errors.len() - MAX_LISTED_ERRORS));
                errors.truncate(MAX_LISTED_ERRORS);
            }
            p.errors = std::mem::take(&mut errors);
        }
        p
    }

    pub fn malformed_json(detail: impl std::fmt::Display) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            codes::MALFORMED_JSON,
            format!("the body is not valid JSON: {detail}"),
        )
        .with_field("body")
    }

    /// 413: the body is over the limit (`limit` bytes, when known).
    pub fn body_too_large(limit: Option<usize>) -> Self {
        let detail = match limit {
            Some(n) => format!("the body is larger than the limit of {n} bytes"),
            None => "the body is larger than the limit".to_string(),
        };
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, BODY_TOO_LARGE, detail).with_field("body")
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, UNAUTHORIZED, detail)
    }

    pub fn order_not_found() -> Self {
        Problem::new(StatusCode::NOT_FOUND, ORDER_NOT_FOUND, "no such order").with_field("orderId")
    }

    /// A dependency failed. Unavailable stores are 503 with `Retry-After`; anything else is 500.
    /// The detail stays generic: internal messages are logged, not sent.
    pub fn from_port(what: &str, err: &PortError) -> Self {
        match err {
            PortError::Unavailable(_) => {
                tracing::warn!(error = %err, "{what} unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    SERVICE_UNAVAILABLE,
                    format!("the {what} is unavailable; retry shortly"),
                )
                .retry_after(1)
            }
            _ => {
                tracing::error!(error = %err, "{what} failed");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    INTERNAL_ERROR,
                    format!("the {what} failed"),
                )
            }
        }
    }

    pub fn title(&self) -> &'static str {
        if self.errors.len() > 1 {
            "Bad Request: several fields are invalid"
        } else {
            self.status.canonical_reason().unwrap_or("Error")
        }
    }

    pub fn body(&self) -> Value {
        let ctx = request_ctx::current();
        let mut body = json!({
            "type": format!("{PROBLEM_TYPE_BASE}{}", self.code.to_ascii_lowercase().replace('_', "-")),
            "title": self.title(),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        let obj = body.as_object_mut().expect("object");
        if let Some(f) = &self.field {
            obj.insert("field".into(), json!(f));
        }
        if let Some(ctx) = ctx {
            obj.insert("instance".into(), json!(ctx.path));
            obj.insert("requestId".into(), json!(ctx.id));
        }
        if !self.errors.is_empty() {
            obj.insert("errors".into(), json!(self.errors));
        }
        // Extension members never replace the standard ones.
        for (k, v) in self.extra.iter().flat_map(|m| m.iter()) {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
        body
    }

    pub fn into_reply(self) -> Reply {
        let body = serde_json::to_vec(&self.body()).expect("problem serialises");
        let mut r = Reply::new(self.status, PROBLEM_CONTENT_TYPE, body);
        if let Some(s) = self.retry_after_secs {
            r = r.header("retry-after", s.to_string());
        }
        r
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.into_reply().into_response()
    }
}

impl From<Problem> for Reply {
    fn from(p: Problem) -> Reply {
        p.into_reply()
    }
}
