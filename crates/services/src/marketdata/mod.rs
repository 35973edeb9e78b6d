//! The market data service: candles, ticker, depth and trades over REST and WebSocket, built
//! from topic `marketdata`, plus each account's private order updates from topic `orders`.
//!
//! Wiring (what `oms serve` does):
//!
//! ```ignore
//! let resolver = Arc::new(ApiAccounts(api_state.clone()));
//! let md = MarketData::new(MarketDataConfig::default(), store.clone(), resolver);
//! tokio::spawn(run_marketdata_consumer(md.clone(), log.clone(), shutdown.clone()));
//! tokio::spawn(run_orders_feed(md.clone(), log.clone(), shutdown.clone()));
//! let app = api::router_with(api_state, marketdata_router(md.clone()));
//! ```

pub mod auth;
pub mod consumer;
pub mod hub;
pub mod orders_feed;
pub mod protocol;
pub mod rest;
pub mod state;
pub mod views;
pub mod ws;

pub use auth::{
    AccountResolver, AccountsUnavailable, ApiAccounts, NoAccounts, Resolved, SESSION_COOKIE,
};
pub use consumer::run_marketdata_consumer;
pub use orders_feed::{run_orders_feed, run_processor_updates, OrdersFeed};
pub use state::{MarketData, MarketDataConfig};

use axum::routing::get;
use axum::Router;
use oms_ports::PortError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum MarketDataError {
    #[error("event log: {0}")]
    Log(#[from] PortError),
}

/// `GET /api/marketdata/{candles,ticker,depth,trades}` and `GET /ws`. Public market data: no
/// authentication (the WebSocket's private channel authenticates itself).
pub fn marketdata_router(md: MarketData) -> Router {
    Router::new()
        .route("/api/marketdata/candles", get(rest::candles))
        .route("/api/marketdata/ticker", get(rest::ticker))
        .route("/api/marketdata/depth", get(rest::depth))
        .route("/api/marketdata/trades", get(rest::trades))
        .route("/ws", get(ws::ws_handler))
        .with_state(md)
}
