//! The course of one target's writes, as a pure value: whether a write may go now,
//! what a write's or a read-back's result means, and what comes next. The daemon
//! and `run --once` both drive it, so a throttle, a conflict, a refusal or an
//! allocation in progress mean the same in each.
//!
//! No clock and no I/O here: times come in as `now` (an `Instant` value), randomness
//! as a number in [0, 1). What it must not do: send anything, or decide capacity; it
//! only says what the result of a write or a read means for the next step.
//!
//! What a **permanent refusal** (Lambda's `InvalidParameterValueException`) means:
//! the same value under the same caps is not sent again for [`REFUSAL_MEMORY`]
//! ([`Next::Refused`]). The daemon decides the target again when that memory ends
//! (or sooner, with another value); `run --once`, which never waits that long, reports
//! the target as failed and exits non-zero.
//!
//! The room also holds what every driver says of a write: its priority in the budget
//! ([`write_priority`]) and the one log line of a change ([`log_change`]).

mod outcome;
mod schedules;
mod write_course;

pub use outcome::{Next, Outcome, WriteBlocked};
pub use schedules::*;
pub use write_course::{Following, Settled, WriteCourse};

use crate::config::TargetConfig;
use crate::policy::Reason;
use crate::runtime::plane::budget::Priority;

/// Writes that raise capacity go first; lowering can wait. `have` is what serves now
/// ([`crate::policy::Observation::usable`]): writing a `FAILED` config again is a raise.
pub fn write_priority(have: u32, to: u32) -> Priority {
    if to > have {
        Priority::Raise
    } else {
        Priority::Lower
    }
}

/// The one log line of an accepted capacity change, for `run --once` and the daemon.
/// `epoch` is the leader lease's fencing epoch; 0 without leader election.
pub fn log_change(target: &TargetConfig, from: u32, to: u32, reason: &Reason, epoch: u64) {
    tracing::info!(
        target = %target.name,
        from,
        to,
        epoch,
        reason = %reason,
        trigger = reason.label(),
        "capacity changed"
    );
}
