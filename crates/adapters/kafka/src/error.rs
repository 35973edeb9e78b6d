//! Errors of the Kafka adapter, and their mapping onto the ports' error type.

use oms_ports::PortError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum KafkaLogError {
    /// A librdkafka call failed; `context` says which.
    #[error("{context}: {source}")]
    Client {
        context: String,
        #[source]
        source: KafkaError,
    },
    /// The broker answered, with an error code.
    #[error("{context}: {code}")]
    Broker {
        context: String,
        code: RDKafkaErrorCode,
    },
    /// A record the producer took failed to be delivered. It may have been written all the
    /// same (a broker can time out after writing), so this is never [`PortError::Invalid`],
    /// which callers read as "surely not written".
    #[error("{context}: {source}")]
    Undelivered {
        context: String,
        #[source]
        source: KafkaError,
    },
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A blocking client call ran on a thread that panicked or was cancelled.
    #[error("{0}: background task failed")]
    Task(&'static str),
}

impl KafkaLogError {
    pub(crate) fn client(context: impl Into<String>, source: KafkaError) -> Self {
        KafkaLogError::Client {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn broker(context: impl Into<String>, code: RDKafkaErrorCode) -> Self {
        KafkaLogError::Broker {
            context: context.into(),
            code,
        }
    }
}

/// Codes that mean "the cluster cannot do it now, the same call may work later".
fn transient(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::MessageTimedOut
            | C::OperationTimedOut
            | C::RequestTimedOut
            | C::QueueFull
            | C::NetworkException
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::CoordinatorLoadInProgress
            | C::CoordinatorNotAvailable
            | C::NotCoordinator
            | C::RebalanceInProgress
            | C::IllegalGeneration
            | C::UnknownMemberId
            | C::Resolve
            | C::PreviousInProgress
            | C::ThrottlingQuotaExceeded
    )
}

impl From<KafkaLogError> for PortError {
    fn from(e: KafkaLogError) -> Self {
        let code = match &e {
            KafkaLogError::Client { source, .. } => source.rdkafka_error_code(),
            KafkaLogError::Broker { code, .. } => Some(*code),
            KafkaLogError::UnknownTopic(_) | KafkaLogError::Invalid(_) => {
                return PortError::Invalid(e.to_string())
            }
            KafkaLogError::Task(_) => return PortError::Other(e.to_string()),
            KafkaLogError::Undelivered { source, .. } => {
                return match source.rdkafka_error_code() {
                    Some(c) if !transient(c) => PortError::Other(e.to_string()),
                    _ => PortError::Unavailable(e.to_string()),
                }
            }
        };
        match code {
            Some(c) if transient(c) => PortError::Unavailable(e.to_string()),
            Some(RDKafkaErrorCode::InvalidPartitions)
            | Some(RDKafkaErrorCode::InvalidReplicationFactor)
            | Some(RDKafkaErrorCode::InvalidTopic)
            | Some(RDKafkaErrorCode::UnknownTopicOrPartition)
            | Some(RDKafkaErrorCode::UnknownPartition)
            | Some(RDKafkaErrorCode::UnknownTopic)
            | Some(RDKafkaErrorCode::OffsetOutOfRange)
            | Some(RDKafkaErrorCode::InvalidArgument) => PortError::Invalid(e.to_string()),
            Some(RDKafkaErrorCode::InvalidMessage) | Some(RDKafkaErrorCode::BadMessage) => {
                PortError::Corrupt(e.to_string())
            }
            _ => PortError::Other(e.to_string()),
        }
    }
}

pub type KafkaLogResult<T> = Result<T, KafkaLogError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn undelivered(code: RDKafkaErrorCode) -> PortError {
        KafkaLogError::Undelivered {
            context: "append to orders".into(),
            source: KafkaError::MessageProduction(code),
        }
        .into()
    }

    #[test]
    fn a_failed_delivery_is_never_read_as_surely_not_written() {
        assert!(matches!(
            undelivered(RDKafkaErrorCode::MessageTimedOut),
            PortError::Unavailable(_)
        ));
        // Refused as invalid when asked before the send; after it, perhaps written.
        assert!(matches!(
            undelivered(RDKafkaErrorCode::UnknownTopicOrPartition),
            PortError::Other(_)
        ));
        let refused: PortError = KafkaLogError::client(
            "append to orders",
            KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition),
        )
        .into();
        assert!(matches!(refused, PortError::Invalid(_)));
    }
}
