//! The dashboard's built files, served at `/` next to the API. They are added as routes, not as
//! a fallback, so unknown paths still get the API's 404 problem.

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use std::path::Path;
use tower_http::services::{ServeDir, ServeFile};

pub fn routes(dir: &Path) -> Router {
    let index = dir.join("index.html");
    if index.exists() {
        Router::new()
            .route_service("/", ServeFile::new(&index))
            .route_service("/index.html", ServeFile::new(&index))
            .nest_service("/assets", ServeDir::new(dir.join("assets")))
            // Top-level files of the build (icons); API paths are more specific and win.
            .route_service("/{file}", ServeDir::new(dir))
    } else {
        tracing::warn!(dir = %dir.display(), "dashboard not built; `/` shows how to build it");
        Router::new().route(
            "/",
            get(|| async {
                Html(
                    "<!doctype html><title>crypto-oms</title><h1>crypto-oms</h1><p>The API is running. \
                     The dashboard is not built: run <code>scripts/run.sh</code> (or \
                     <code>npm ci &amp;&amp; npm run build</code> in <code>frontend/</code>).</p>\
                     <p><a href=\"/swagger-ui\">API documentation</a></p>",
                )
            }),
        )
    }
}
