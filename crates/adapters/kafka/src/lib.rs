//! The event log port on Apache Kafka (distributed mode), through librdkafka.
//!
//! [`KafkaLog`] implements [`oms_ports::event_log::EventLog`] and passes the same
//! conformance suite as the embedded log. See [`KafkaLog`] for how each operation maps onto
//! Kafka, and [`consumer`] for how rebalances reach the stages.

pub mod config;
pub mod consumer;
pub mod error;
mod log;
mod reader;
mod record;

pub use config::KafkaConfig;
pub use consumer::KafkaConsumer;
pub use error::{KafkaLogError, KafkaLogResult};
pub use log::KafkaLog;
