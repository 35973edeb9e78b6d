//! Services.

pub mod api;
pub mod codec;
pub mod demo;
pub mod ingestion;
pub mod marketdata;
pub mod pipeline;
