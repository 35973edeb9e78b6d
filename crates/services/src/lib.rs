//! Services.

pub mod ingestion;
