//! The command line's own room: argument handling and rendering. [`once`],
//! [`overrides`], [`audit`] and [`migrate`] wire the AWS-facing commands (`plan` and
//! `run --once`, `override`, `audit`, `migrate`) to the runtime; [`check`], [`plan`] and [`status`] render what
//! people read; [`args`] defines the arguments, from which [`manual`] renders the man
//! pages and completions.
//!
//! What it must not do: decide, read or write anything itself (the runtime and
//! `audit` do), or print: `main.rs` prints what these return.

pub mod args;
pub mod audit;
pub mod check;
pub mod leases;
pub mod manual;
pub mod migrate;
pub mod once;
pub mod overrides;
pub mod plan;
pub mod status;

/// Why a command that reads AWS could not run: bad input (exit 2), or AWS or a file
/// could not be read or written (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unreadable(String),
}
