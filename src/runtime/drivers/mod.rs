//! The drivers: what carries decisions out in time. [`daemon`] is the long-running
//! `run` (the HTTP listener, the leader lease, the loop that takes every timer and
//! task result to its shard and carries out what the shard asks for); [`once`] is
//! `plan` and `run --once` (read everything once, decide, write within a deadline);
//! [`handing`] is what both do with Application Auto Scaling (read it, take over);
//! [`history`] reads the forecast's history within CloudWatch's quotas.
//!
//! They are the only part of the runtime that spawns tasks, sleeps or reads a clock.
//! What they must not do: decide. A driver carries out what the shard, `knowing` and
//! `course` say, and reports every result back.

pub mod daemon;
pub mod handing;
pub mod history;
pub mod once;
