//! The route handlers, one module per resource.

pub mod account;
pub mod admin;
pub mod batch;
pub mod cancel_all;
pub mod docs;
pub mod fills;
pub mod funds;
pub mod ops;
pub mod orders;
pub mod session;

use crate::ingestion::{codes, FieldError};
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use std::collections::HashSet;

/// A query string's `(name, value)` pairs, as the routes that check every parameter take them;
/// a query string that cannot be read is a 400 naming `query`.
pub(crate) fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, FieldError> {
    query.map(|Query(pairs)| pairs).map_err(|e| {
        FieldError::new(
            "query",
            codes::INVALID_QUERY,
            format!("bad query string: {}", e.body_text()),
        )
    })
}

/// The query parameters of a request that gives each at most once: a repeated one is an error
/// (which of the two was meant is unknown) and is left out.
pub(crate) fn distinct_params<'a>(
    pairs: &'a [(String, String)],
    errs: &mut Vec<FieldError>,
) -> Vec<(&'a str, &'a str)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (name, value) in pairs {
        if seen.insert(name.as_str()) {
            out.push((name.as_str(), value.as_str()));
        } else {
            errs.push(FieldError::new(
                name,
                codes::DUPLICATE_FIELD,
                format!("{name} is given more than once"),
            ));
        }
    }
    out
}

/// A time range whose `from` is after its `to` selects nothing by mistake, not by intent.
pub(crate) fn check_range(
    from: Option<oms_domain::ids::Timestamp>,
    to: Option<oms_domain::ids::Timestamp>,
    errs: &mut Vec<FieldError>,
) {
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            errs.push(FieldError::new(
                "from",
                codes::INVALID_RANGE,
                "from is after to",
            ));
        }
    }
}
