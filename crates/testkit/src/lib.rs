//! Real servers for tests, started on loopback ports in temporary directories and stopped when
//! dropped. A missing server binary is an error that says how to install it, never a skip:
//! `scripts/install-test-deps.sh` installs every one of them.

pub mod net;
pub mod postgres;
pub mod redis;
pub mod tansu;
