//! Structured logs with `tracing`: human-readable or JSON, filtered by `server.logLevel`
//! (`RUST_LOG` wins when set).

use crate::config::{LogFormat, ServerConfig};
use anyhow::{anyhow, Result};
use tracing_subscriber::EnvFilter;

pub fn init(server: &ServerConfig) -> Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&server.log_level))
        .map_err(|e| anyhow!("server.logLevel: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match server.log_format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Human => builder.try_init(),
    };
    result.map_err(|e| anyhow!("logging: {e}"))
}
