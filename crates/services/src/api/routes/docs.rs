//! `/openapi.json` and the Swagger UI, served from files built into the binary (no CDN).

use crate::api::reply::Reply;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::IntoResponse;

pub const OPENAPI_JSON: &str = include_str!("../../../assets/openapi.json");
const SWAGGER_BUNDLE: &[u8] = include_bytes!("../../../assets/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("../../../assets/swagger-ui/swagger-ui.css");

const SWAGGER_HTML: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>crypto-oms API</title>
  <link rel="stylesheet" href="/swagger-ui/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/swagger-ui/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
  </script>
</body>
</html>
"##;

const CACHE: &str = "public, max-age=3600";

pub async fn openapi() -> Reply {
    Reply::new(
        StatusCode::OK,
        "application/json",
        OPENAPI_JSON.as_bytes().to_vec(),
    )
}

pub async fn swagger_ui() -> Reply {
    Reply::new(
        StatusCode::OK,
        "text/html; charset=utf-8",
        SWAGGER_HTML.as_bytes().to_vec(),
    )
}

// Served straight from the static bytes: no copy of 1.7 MB per request.
pub async fn swagger_bundle() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "application/javascript"),
            (CACHE_CONTROL, CACHE),
        ],
        SWAGGER_BUNDLE,
    )
}

pub async fn swagger_css() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/css"), (CACHE_CONTROL, CACHE)],
        SWAGGER_CSS,
    )
}
