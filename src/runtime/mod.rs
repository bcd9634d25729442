//! The runtime: everything that talks to AWS and carries out the policy's decisions.
//! The layout follows the flow of one decision:
//!
//! - [`budget`] (pure) and [`scheduler`]: the control-plane request budget, by priority;
//! - [`control`]: the only way Lambda requests are sent, each within that budget;
//! - [`known`]: what has been read or written, so it need not be asked again;
//! - [`series`] and [`evaluate`]: metrics in, `policy::decide` on what is known;
//! - [`actuator`] (pure): what a write's result means for the next one;
//! - [`once`] (`plan`, `run --once`) and [`daemon`] (`run`) drive all of the above;
//! - [`elect`]: the leader lease task, when copies of the daemon share the work.
//!
//! [`memory`] holds in-memory AWS fakes for tests in virtual time.

pub mod activity;
pub mod actuator;
pub mod budget;
pub mod control;
pub mod daemon;
pub mod elect;
pub mod evaluate;
pub mod known;
pub mod memory;
pub mod once;
pub mod scheduler;
pub mod series;
