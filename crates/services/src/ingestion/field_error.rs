//! A problem with one field of a request, with a stable code clients can act on.

use serde::Serialize;

/// Stable error codes of request validation (see the OpenAPI document for the full list).
pub mod codes {
    pub const MALFORMED_JSON: &str = "MALFORMED_JSON";
    pub const UNKNOWN_FIELD: &str = "UNKNOWN_FIELD";
    pub const DUPLICATE_FIELD: &str = "DUPLICATE_FIELD";
    pub const UNEXPECTED_BODY: &str = "UNEXPECTED_BODY";
    pub const MISSING_FIELD: &str = "MISSING_FIELD";
    pub const INVALID_TYPE: &str = "INVALID_TYPE";
    pub const INVALID_ENUM: &str = "INVALID_ENUM";
    pub const UNKNOWN_SYMBOL: &str = "UNKNOWN_SYMBOL";
    pub const UNKNOWN_ASSET: &str = "UNKNOWN_ASSET";
    pub const AMOUNT_TOO_LARGE: &str = "AMOUNT_TOO_LARGE";
    pub const INVALID_NAME: &str = "INVALID_NAME";
    pub const INVALID_REFERENCE: &str = "INVALID_REFERENCE";
    pub const NON_POSITIVE: &str = "NON_POSITIVE";
    pub const INVALID_DECIMAL: &str = "INVALID_DECIMAL";
    pub const TOO_MANY_DECIMALS: &str = "TOO_MANY_DECIMALS";
    pub const PRICE_OFF_TICK: &str = "PRICE_OFF_TICK";
    pub const QUANTITY_OFF_STEP: &str = "QUANTITY_OFF_STEP";
    pub const QUANTITY_BELOW_MIN: &str = "QUANTITY_BELOW_MIN";
    pub const QUANTITY_ABOVE_MAX: &str = "QUANTITY_ABOVE_MAX";
    pub const PRICE_REQUIRED: &str = "PRICE_REQUIRED";
    pub const PRICE_NOT_ALLOWED: &str = "PRICE_NOT_ALLOWED";
    pub const STOP_PRICE_REQUIRED: &str = "STOP_PRICE_REQUIRED";
    pub const STOP_PRICE_NOT_ALLOWED: &str = "STOP_PRICE_NOT_ALLOWED";
    pub const EXPIRE_AT_REQUIRED: &str = "EXPIRE_AT_REQUIRED";
    pub const EXPIRE_AT_NOT_ALLOWED: &str = "EXPIRE_AT_NOT_ALLOWED";
    pub const EXPIRE_AT_IN_PAST: &str = "EXPIRE_AT_IN_PAST";
    pub const INVALID_TIMESTAMP: &str = "INVALID_TIMESTAMP";
    /// `from` after `to`.
    pub const INVALID_RANGE: &str = "INVALID_RANGE";
    /// The query string cannot be read (bad percent-encoding).
    pub const INVALID_QUERY: &str = "INVALID_QUERY";
    pub const POST_ONLY_NOT_ALLOWED: &str = "POST_ONLY_NOT_ALLOWED";
    pub const INVALID_CLIENT_ORDER_ID: &str = "INVALID_CLIENT_ORDER_ID";
    pub const INVALID_LIMIT: &str = "INVALID_LIMIT";
    pub const INVALID_CURSOR: &str = "INVALID_CURSOR";
    pub const INVALID_TIMEOUT: &str = "INVALID_TIMEOUT";
    pub const INVALID_BATCH_SIZE: &str = "INVALID_BATCH_SIZE";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub detail: String,
}

impl FieldError {
    pub fn new(field: &str, code: &'static str, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            code,
            detail: detail.into(),
        }
    }
}
