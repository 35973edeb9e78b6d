//! The Redis idempotency store of crypto-oms (distributed mode): [`RedisIdempotency`]
//! implements the `IdempotencyStore` port with `SET NX PX`, and [`RedisRequestLimits`] (from
//! the same connection) the accounts' request limits shared by every API instance.
//!
//! ```no_run
//! # async fn wire() -> Result<(), oms_ports::PortError> {
//! use oms_redis::{RedisIdempotency, RedisOptions};
//! let keys = RedisIdempotency::connect("redis://cache:6379/", RedisOptions::default()).await?;
//! # Ok(()) }
//! ```
//!
//! Redis keeps the keys for their TTL; it is not the only guard against duplicates: the order
//! store's permanent (account, client order id) claim stays behind it. When Redis cannot be
//! reached every call fails with `PortError::Unavailable` within [`RedisOptions::timeout`], so
//! the API fails closed (503 with Retry-After) rather than running a request unguarded.
//!
//! Connections are plain TCP (`rediss://` is refused): use it on loopback, inside a cluster
//! network, or through a TLS-terminating proxy.

mod limits;
mod record;
mod store;

pub use limits::RedisRequestLimits;
pub use store::{RedisIdempotency, RedisOptions};
