//! The command line's own room: argument handling and rendering. [`once`],
//! [`overrides`] and [`audit`] wire the AWS-facing commands (`plan` and `run --once`,
//! `override`, `audit`) to the runtime; [`check`], [`plan`] and [`status`] render what
//! people read; [`args`] defines the arguments, from which [`manual`] renders the man
//! pages and completions.
//!
//! What it must not do: decide, read or write anything itself (the runtime and
//! `audit` do), or print: `main.rs` prints what these return.

pub mod args;
pub mod audit;
pub mod check;
pub mod manual;
pub mod once;
pub mod overrides;
pub mod plan;
pub mod status;
