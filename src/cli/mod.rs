//! The command line's own room: argument handling and rendering. [`commands`] wires
//! the AWS-facing commands (`plan`, `run --once`, `override`, `audit`) to the runtime;
//! [`check`], [`plan`] and [`status`] render what people read.
//!
//! What it must not do: decide, read or write anything itself (the runtime and
//! `audit` do), or print: `main.rs` prints what these return.

pub mod check;
pub mod commands;
pub mod plan;
pub mod status;
