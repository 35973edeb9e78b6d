//! Services.

pub mod api;
pub mod ingestion;
