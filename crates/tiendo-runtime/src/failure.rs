//! Why handling a message failed, in the three kinds that decide what happens to it.

use std::time::Duration;

use tiendo_bus::Decision;

/// Delay before a message that failed is delivered again (doubled for each earlier failed attempt).
pub const RETRY_DELAY: Duration = Duration::from_millis(500);

/// Delay before a message held during an outage is delivered again.
pub const OUTAGE_DELAY: Duration = Duration::from_secs(2);

/// What kind of failure it is, and so what happens to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The message itself is at fault (it does not decode, it breaks a rule no sender of
    /// tiendo's could break): retried with backoff in case a fix is deployed, and moved to the
    /// dead letters once it has failed `pipeline.max_deliver` times.
    Poison,
    /// A passing fault of this attempt (a serialization conflict, a busy database, a
    /// timeout): retried with backoff. A message whose failures never pass is poison in
    /// effect: it too is dead-lettered after `pipeline.max_deliver` deliveries.
    Transient,
    /// A dependency is down (the database, the bus): not the message's fault. Held and
    /// delivered again until the dependency is back, never dead-lettered, and never counted
    /// as a failed attempt.
    Outage,
}

/// A failure to handle a message, with its kind and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("{error:#}")]
pub struct Failure {
    pub kind: FailureKind,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(kind: FailureKind, error: impl Into<anyhow::Error>) -> Self {
        Failure { kind, error: error.into() }
    }

    /// The message is at fault.
    pub fn poison(error: impl Into<anyhow::Error>) -> Self {
        Self::new(FailureKind::Poison, error)
    }

    /// This attempt failed; another may not.
    pub fn transient(error: impl Into<anyhow::Error>) -> Self {
        Self::new(FailureKind::Transient, error)
    }

    /// A dependency is down.
    pub fn outage(error: impl Into<anyhow::Error>) -> Self {
        Self::new(FailureKind::Outage, error)
    }

    /// What the consumer does with the message.
    pub fn decision(&self) -> Decision {
        match self.kind {
            FailureKind::Poison | FailureKind::Transient => {
                Decision::Retry { delay: RETRY_DELAY, reason: format!("{:#}", self.error) }
            }
            FailureKind::Outage => Decision::Hold(OUTAGE_DELAY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_maps_to_its_own_outcome() {
        let poison = Failure::poison(anyhow::anyhow!("not a ValidBatch"));
        assert_eq!(poison.decision(), Decision::Retry { delay: RETRY_DELAY, reason: "not a ValidBatch".into() });
        assert!(matches!(Failure::transient(anyhow::anyhow!("conflict")).decision(), Decision::Retry { .. }));
        assert_eq!(Failure::outage(anyhow::anyhow!("down")).decision(), Decision::Hold(OUTAGE_DELAY));
    }
}
