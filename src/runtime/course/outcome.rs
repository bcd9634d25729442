//! What a write's or a read-back's result means, in words shared by every driver:
//! [`Next`] (what comes after it), [`Outcome`] (how the write ended, for the journal,
//! the log and `run --once`) and [`WriteBlocked`] (why a write does not go). What it
//! must not do: decide what comes next; [`super::WriteCourse`] does.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::aws::{AwsError, ProvisionedConfig, RefusalCause};
use crate::policy::AllocationStatus;

/// What comes after a write's or a read-back's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Decide again (the daemon) or send the same write again (`run --once`) at this
    /// instant.
    RetryAt(Instant),
    /// Another operation on the config is under way: read what is there now, then
    /// decide again.
    ScanThenDecide,
    /// Lambda refused the value; it is not sent again before `until`.
    Refused { until: Instant },
    /// One kind of failure persisted: the target is blocked as failing, and tried
    /// again at the slowest pace, at `until`.
    BackedOff { until: Instant },
    /// The allocation is followed: read the config back at this instant.
    ReadBackAt(Instant),
    /// The course is over.
    Done,
}

/// How a write ended, or where it stands: one text for the journal, the log and
/// `run --once`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Sent, no answer yet.
    Sent,
    /// Accepted; the allocation is under way.
    InProgress,
    Ready {
        after: Duration,
    },
    /// The config is gone: a delete, or someone removed it.
    Deleted,
    /// Lambda gave up on the allocation (`StatusReason`, when it gave one).
    Failed {
        reason: Option<String>,
    },
    Throttled,
    Conflict,
    /// Not sent: the leader lease was not fresh.
    Fenced,
    Refused {
        message: String,
    },
    /// Any other failure: the error's own text, bounded.
    Error {
        message: String,
    },
}

/// The longest error text an outcome carries: outcomes are shown in tables and kept
/// 20,000 at a time.
const MAX_OUTCOME_CHARS: usize = 300;

impl Outcome {
    /// What a failed write's error means for its activity.
    pub fn of_error(error: &AwsError) -> Self {
        let bounded = |text: String| text.chars().take(MAX_OUTCOME_CHARS).collect();
        match error {
            AwsError::Throttled { .. } => Outcome::Throttled,
            AwsError::Conflict { .. } => Outcome::Conflict,
            AwsError::Fenced { .. } => Outcome::Fenced,
            AwsError::InvalidParameter { message } => Outcome::Refused {
                message: bounded(message.clone()),
            },
            other => Outcome::Error {
                message: bounded(other.to_string()),
            },
        }
    }

    /// What a config read back (or found by a scan) says about the allocation a
    /// write started `sent` ago; `None` while it is still in progress.
    pub fn of_config(config: Option<&ProvisionedConfig>, since_sent: Duration) -> Option<Self> {
        let Some(config) = config else {
            return Some(Outcome::Deleted);
        };
        match config.status {
            AllocationStatus::InProgress => None,
            AllocationStatus::Ready | AllocationStatus::None => {
                Some(Outcome::Ready { after: since_sent })
            }
            AllocationStatus::Failed => Some(Outcome::Failed {
                reason: config.status_reason.clone(),
            }),
        }
    }

    /// Whether the write did not end with the capacity asked for.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            Outcome::Sent | Outcome::InProgress | Outcome::Ready { .. } | Outcome::Deleted
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Sent => f.write_str("sent"),
            Outcome::InProgress => f.write_str("IN_PROGRESS"),
            Outcome::Ready { after } => write!(f, "READY after {} s", after.as_secs()),
            Outcome::Deleted => f.write_str("deleted"),
            Outcome::Failed { reason } => write!(
                f,
                "FAILED: {}",
                reason.as_deref().unwrap_or("no reason given")
            ),
            Outcome::Throttled => f.write_str("throttled"),
            Outcome::Conflict => f.write_str("conflict"),
            Outcome::Fenced => f.write_str("not sent: the leader lease was not fresh"),
            Outcome::Refused { message } => match RefusalCause::of(message).remedy() {
                Some(remedy) => write!(f, "refused: {message}; {remedy}"),
                None => write!(f, "refused: {message}"),
            },
            Outcome::Error { message } => f.write_str(message),
        }
    }
}

/// Why a target's decision is not being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteBlocked {
    /// Lambda refused the value as invalid, for this cause; it is not sent again for a
    /// while.
    Refused(RefusalCause),
    /// Writes kept failing (throttled, conflicting, 5xx, transient 4xx); they are
    /// retried with capped backoff.
    Failing,
}

impl WriteBlocked {
    /// A bounded label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            WriteBlocked::Refused(_) => "refused",
            WriteBlocked::Failing => "failing",
        }
    }
}

impl fmt::Display for WriteBlocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteBlocked::Refused(cause) => {
                f.write_str("refused: Lambda refused the value; it is not sent again for a while")?;
                match cause.remedy() {
                    Some(remedy) => write!(f, " ({remedy})"),
                    None => Ok(()),
                }
            }
            WriteBlocked::Failing => {
                f.write_str("failing: writes keep failing; retried with capped backoff")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_says_what_to_do() {
        let refused = Outcome::Refused {
            message: "SnapStart is enabled".into(),
        };
        assert!(
            refused.to_string().contains("turn SnapStart off"),
            "{refused}"
        );
        assert!(
            WriteBlocked::Refused(RefusalCause::SnapStart)
                .to_string()
                .contains("publish a new version")
        );
    }
}
