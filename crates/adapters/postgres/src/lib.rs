//! The PostgreSQL order store of crypto-oms (distributed mode): [`PgStore`] implements the
//! `OrderStore` port on a pool of `tokio-postgres` connections.
//!
//! ```no_run
//! # async fn wire() -> Result<(), oms_ports::PortError> {
//! let store = oms_postgres::PgStore::connect("postgres://oms@db:5432/oms", 16).await?;
//! store.migrate().await?;
//! # Ok(()) }
//! ```
//!
//! Connections are plain TCP (no TLS in this build): use it on loopback, inside a cluster
//! network, or through a TLS-terminating proxy. A URL asking for `sslmode=require` is refused
//! at connect.

mod batch;
mod error;
mod fills_query;
mod migrations;
mod orders_query;
mod store;

pub use migrations::latest_schema_version;
pub use store::{PgOptions, PgStore};
