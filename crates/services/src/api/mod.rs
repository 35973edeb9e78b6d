//! The ingestion HTTP API (axum): orders, session, account, instruments, health, readiness,
//! metrics, the OpenAPI document and the Swagger UI. The contract is in
//! `crates/services/assets/openapi.json`.
//!
//! Wiring: build an [`ApiState`] from the ports, then serve [`router`] (or [`router_with`] to
//! add more routes, such as market data, behind the same request id, metrics and error shape).

pub mod auth;
pub mod body;
pub mod duplicate_keys;
pub mod hooks;
pub mod idempotency;
pub mod metrics;
pub mod pending;
pub mod problem;
pub mod rate_limit;
pub mod reply;
pub mod request_ctx;
pub mod routes;
pub mod state;
pub mod views;

pub use auth::{authenticate, hash_api_key, Caller};
pub use hooks::{MetricsSource, NoExtraChecks, NoExtraMetrics, Readiness};
pub use pending::PendingResponses;
pub use problem::Problem;
pub use state::{ApiConfig, ApiState, IDEMPOTENCY_LOCK_TTL};

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use problem::api_codes;
use routes::{account, admin, batch, cancel_all, docs, fills, funds, ops, orders, session};
use std::any::Any;

/// Every route of the API, with request ids, metrics, body limit and problem-shaped errors.
pub fn router(state: ApiState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] plus `extra` routes (already given their state), which get the same request id,
/// tracing span, metrics, panic handling and 404/405 problems.
pub fn router_with(state: ApiState, extra: Router) -> Router {
    let api = Router::new()
        .route(
            "/api/session",
            get(session::get)
                .post(session::create)
                .delete(session::delete),
        )
        .route(
            "/api/orders",
            get(orders::list)
                .post(orders::create)
                .delete(cancel_all::cancel_all),
        )
        .route("/api/orders/batch", axum::routing::post(batch::create))
        .route(
            "/api/orders/{order_id}",
            get(orders::get).delete(orders::cancel).patch(orders::amend),
        )
        .route("/api/orders/{order_id}/fills", get(orders::fills))
        .route("/api/fills", get(fills::list))
        .route("/api/fills/export", get(fills::export))
        .route("/api/accounts/me", get(account::me))
        .route(
            "/api/accounts/me/kill-switch",
            axum::routing::put(account::set_kill_switch),
        )
        .route(
            "/api/accounts/me/cancel-after",
            axum::routing::put(account::set_cancel_after),
        )
        .route("/api/instruments", get(account::instruments))
        .route(
            "/api/admin/instruments/status",
            axum::routing::put(admin::set_instrument_status),
        )
        .route(
            "/api/admin/kill-switch",
            get(admin::global_kill_switch).put(admin::set_global_kill_switch),
        )
        .route(
            "/api/admin/accounts",
            get(admin::list_accounts).post(admin::create_account),
        )
        .route("/api/admin/accounts/{account_id}", get(admin::get_account))
        .route(
            "/api/admin/accounts/{account_id}/api-keys",
            get(admin::list_api_keys).post(admin::issue_api_key),
        )
        .route(
            "/api/admin/accounts/{account_id}/api-keys/{key_id}",
            axum::routing::delete(admin::revoke_api_key),
        )
        .route(
            "/api/admin/accounts/{account_id}/deposits",
            get(funds::deposit).post(admin::deposit),
        )
        .route(
            "/api/admin/accounts/{account_id}/withdrawals",
            get(funds::withdrawal).post(funds::withdraw),
        )
        .route(
            "/api/admin/accounts/{account_id}/orders",
            axum::routing::delete(admin::cancel_all),
        )
        .route(
            "/api/admin/accounts/{account_id}/kill-switch",
            axum::routing::put(admin::set_kill_switch),
        )
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(docs::openapi))
        .route("/swagger-ui", get(docs::swagger_ui))
        .route("/swagger-ui/", get(docs::swagger_ui))
        .route(
            "/swagger-ui/assets/swagger-ui-bundle.js",
            get(docs::swagger_bundle),
        )
        .route("/swagger-ui/assets/swagger-ui.css", get(docs::swagger_css))
        .with_state(state.clone());
    with_common_layers(state, api.merge(extra))
}

/// Only `/health`, `/ready` and `/metrics` plus `extra`, for processes that take no orders
/// (risk, venue, processor, market data), with the same layers as [`router_with`].
pub fn ops_router_with(state: ApiState, extra: Router) -> Router {
    let ops = Router::new()
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .with_state(state.clone());
    with_common_layers(state, ops.merge(extra))
}

fn with_common_layers(state: ApiState, routes: Router) -> Router {
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_problem,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state,
            request_ctx::middleware,
        ))
}

async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        api_codes::NOT_FOUND,
        "no such resource",
    )
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        api_codes::METHOD_NOT_ALLOWED,
        "this method is not allowed on this resource",
    )
}

fn panic_problem(_: Box<dyn Any + Send + 'static>) -> axum::response::Response {
    tracing::error!("handler panicked");
    axum::response::IntoResponse::into_response(Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        api_codes::INTERNAL_ERROR,
        "internal error",
    ))
}
