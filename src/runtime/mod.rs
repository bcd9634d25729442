//! The runtime: everything that talks to AWS and carries out the policy's decisions,
//! laid out as rooms, lowest first; each imports only the rooms before it
//! (`tests/tidy.rs`):
//!
//! - [`plane`]: the only sender of Lambda requests, each within its account and
//!   Region's control-plane budget, by priority;
//! - [`state`]: what is kept beyond one decision: the journal of activities, the
//!   operators' overrides, the snapshot, and the state directory's files;
//! - [`knowing`]: what is known of each function and its metric series, up to the
//!   call of `policy::decide`;
//! - [`course`]: what a decision's write goes through: the one write course, its
//!   priority and the log line of a change;
//! - [`discovery`]: the targets a shard's selectors find;
//! - [`shard`]: one account and Region's targets as a sans-IO state machine;
//! - [`drivers`]: the daemon and the one-shot (`plan`, `run --once`), which carry the
//!   above out: the only tasks, timers and I/O loops.
//!
//! What the runtime must not do: decide capacity (`policy` does), or let a failed read
//! become a scale-in.

pub mod course;
pub mod discovery;
pub mod drivers;
pub mod knowing;
pub mod plane;
pub mod shard;
pub mod state;
