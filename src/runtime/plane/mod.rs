//! The control plane: the only way the runtime sends Lambda requests. Each request
//! waits for its turn in the budget of its account and Region ([`budget`], a pure
//! value; [`scheduler`], the task that hands out turns), is sent by [`control`], and a
//! throttle is reported back to that budget. [`listing`] walks `ListFunctions` for
//! everyone who needs the account's functions.
//!
//! What it must not do: decide what to read or write, or remember answers: that is
//! the shard's and `knowing`'s business.

pub mod budget;
pub mod control;
pub mod listing;
pub mod scheduler;
