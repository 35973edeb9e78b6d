//! `GET /api/marketdata/candles|ticker|depth|trades`: public, no authentication.

use super::state::MarketData;
use super::views::{CandlesView, DepthView, TradesView};
use crate::api::routes::distinct_params;
use crate::ingestion::clock;
use crate::ingestion::field_error::{codes, FieldError};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use oms_domain::ids::Symbol;
use oms_domain::marketdata::{depth::MAX_SNAPSHOT_LEVELS, Interval};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;

/// Codes of this API beyond the shared validation codes.
pub mod md_codes {
    pub const INVALID_INTERVAL: &str = "INVALID_INTERVAL";
    pub const INVALID_RANGE: &str = super::codes::INVALID_RANGE;
    pub const INVALID_QUERY: &str = super::codes::INVALID_QUERY;
}

pub const MAX_LIMIT: usize = 1_000;

/// A 400 `application/problem+json`, shaped like the API's problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub field: String,
    pub detail: String,
    pub instance: &'static str,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = json!({
            "type": format!("https://crypto-oms.dev/problems/{}", self.code.to_ascii_lowercase().replace('_', "-")),
            "title": "Bad Request",
            "status": 400,
            "code": self.code,
            "detail": self.detail,
            "field": self.field,
            "instance": self.instance,
        });
        (
            StatusCode::BAD_REQUEST,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            )],
            body.to_string(),
        )
            .into_response()
    }
}

fn ok_json<T: Serialize>(value: &T) -> Response {
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        serde_json::to_vec(value).expect("market data serialises"),
    )
        .into_response()
}

/// The query string of one request, read field by field into problems.
struct Params<'a> {
    q: HashMap<String, String>,
    md: &'a MarketData,
    path: &'static str,
}

impl<'a> Params<'a> {
    /// Refuses a parameter not in `known` or given twice: a misspelt one would otherwise be
    /// ignored, and the answer would not be what was asked for.
    fn new(
        q: Result<Query<Vec<(String, String)>>, QueryRejection>,
        md: &'a MarketData,
        path: &'static str,
        known: &[&str],
    ) -> Result<Self, Problem> {
        let problem = |code, field: &str, detail: String| Problem {
            code,
            field: field.to_string(),
            detail,
            instance: path,
        };
        let Query(pairs) =
            q.map_err(|e| problem(md_codes::INVALID_QUERY, "query", e.body_text()))?;
        let mut errs = Vec::new();
        let mut params = HashMap::new();
        for (name, value) in distinct_params(&pairs, &mut errs) {
            if !known.contains(&name) {
                let detail = format!(
                    "unknown parameter {name:?}: this takes {}",
                    known.join(", ")
                );
                errs.push(FieldError::new(name, codes::UNKNOWN_FIELD, detail));
            }
            params.insert(name.to_string(), value.to_string());
        }
        // Market data problems name one field: the first at fault.
        if let Some(e) = errs.into_iter().next() {
            return Err(problem(e.code, &e.field, e.detail));
        }
        Ok(Params {
            q: params,
            md,
            path,
        })
    }

    fn problem(&self, code: &'static str, field: &str, detail: String) -> Problem {
        Problem {
            code,
            field: field.to_string(),
            detail,
            instance: self.path,
        }
    }

    fn symbol(&self) -> Result<Symbol, Problem> {
        let Some(s) = self.q.get("symbol").filter(|s| !s.is_empty()) else {
            return Err(self.problem(
                codes::MISSING_FIELD,
                "symbol",
                "symbol is required, e.g. symbol=BTC/USD".into(),
            ));
        };
        let symbol = Symbol::new(s.as_str());
        if !self.md.knows(&symbol) {
            return Err(self.problem(
                codes::UNKNOWN_SYMBOL,
                "symbol",
                format!("unknown symbol {s:?}"),
            ));
        }
        Ok(symbol)
    }

    fn interval(&self) -> Result<Interval, Problem> {
        match self.q.get("interval") {
            None => Ok(Interval::M1),
            Some(s) => s
                .parse()
                .map_err(|e: oms_domain::marketdata::ParseIntervalError| {
                    self.problem(md_codes::INVALID_INTERVAL, "interval", e.to_string())
                }),
        }
    }

    fn count(&self, field: &'static str, default: usize, max: usize) -> Result<usize, Problem> {
        let Some(s) = self.q.get(field) else {
            return Ok(default);
        };
        match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(self.problem(
                codes::INVALID_LIMIT,
                field,
                format!("{field} must be a whole number from 1 to {max}, not {s:?}"),
            )),
        }
    }

    fn millis(&self, field: &'static str) -> Result<Option<i64>, Problem> {
        let Some(s) = self.q.get(field) else {
            return Ok(None);
        };
        s.parse::<i64>().map(Some).map_err(|_| {
            self.problem(
                codes::INVALID_TIMESTAMP,
                field,
                format!("{field} must be epoch milliseconds, not {s:?}"),
            )
        })
    }
}

pub async fn candles(
    State(md): State<MarketData>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    let p = Params::new(
        q,
        &md,
        "/api/marketdata/candles",
        &["symbol", "interval", "from", "to", "limit"],
    )?;
    let symbol = p.symbol()?;
    let interval = p.interval()?;
    let from = p.millis("from")?;
    let to = p.millis("to")?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(p.problem(
                md_codes::INVALID_RANGE,
                "from",
                format!("from ({f}) is after to ({t})"),
            ));
        }
    }
    let limit = p.count("limit", 500, MAX_LIMIT)?;
    let candles = md.candles(&symbol, interval, from, to, limit);
    Ok(ok_json(&CandlesView {
        symbol: &symbol,
        interval,
        candles,
    }))
}

pub async fn ticker(
    State(md): State<MarketData>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    let p = Params::new(q, &md, "/api/marketdata/ticker", &["symbol"])?;
    let symbol = p.symbol()?;
    Ok(ok_json(&md.ticker(&symbol, clock::now())))
}

pub async fn depth(
    State(md): State<MarketData>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    let p = Params::new(q, &md, "/api/marketdata/depth", &["symbol", "levels"])?;
    let symbol = p.symbol()?;
    let levels = p.count("levels", 50, MAX_SNAPSHOT_LEVELS)?;
    let snap = md.depth(&symbol, levels);
    Ok(ok_json(&DepthView {
        symbol: &symbol,
        seq: snap.seq,
        bids: snap.bids,
        asks: snap.asks,
    }))
}

pub async fn trades(
    State(md): State<MarketData>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    let p = Params::new(q, &md, "/api/marketdata/trades", &["symbol", "limit"])?;
    let symbol = p.symbol()?;
    let limit = p.count("limit", 50, MAX_LIMIT)?;
    Ok(ok_json(&TradesView {
        trades: md.trades(&symbol, limit),
        symbol: &symbol,
    }))
}
