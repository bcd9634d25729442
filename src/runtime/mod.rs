//! The runtime: everything that talks to AWS and carries out the policy's decisions.
//! The layout follows the flow of one decision:
//!
//! - [`budget`] (pure) and [`scheduler`]: the control-plane request budget, by priority;
//! - [`control`]: the only way Lambda requests are sent, each within that budget;
//! - [`known`]: what has been read or written, so it need not be asked again;
//! - [`series`] and [`evaluate`]: metrics in, `policy::decide` on what is known;
//! - [`course`] (pure): one target's write course, what a write's result means;
//! - [`shard`] (sans-IO): one account and Region's targets as a state machine;
//! - [`once`] (`plan`, `run --once`) and [`daemon`] (`run`, the shards' driver) carry
//!   all of the above out;
//! - [`elect`]: the leader lease task, when copies of the daemon share the work.
//!
//! `memory` holds in-memory AWS fakes for tests in virtual time; it is compiled for
//! tests only.

pub mod activity;
pub mod audit;
pub mod budget;
pub mod control;
pub mod course;
pub mod daemon;
pub mod discovery;
pub mod elect;
pub mod evaluate;
pub mod known;
#[cfg(test)]
pub mod memory;
pub mod once;
pub mod override_store;
pub mod overrides;
pub mod scheduler;
pub mod series;
pub mod shard;
pub mod snapshot;
pub mod state_file;
