//! What is kept beyond one decision: the journal of activities ([`activity`]), the
//! operators' overrides ([`overrides`]), the targets taken over from Application Auto
//! Scaling ([`handover`]), where those two are kept ([`store`]), the snapshot a restart
//! or a takeover starts from ([`snapshot`]), and the files of `daemon.state_directory`
//! ([`files`]).
//!
//! What it must not do: decide anything. What is kept is read by the shard and the
//! drivers; only the stores (`store`, `snapshot::store`) and the activity
//! log's writer touch files or the lease table.

pub mod activity;
pub mod files;
pub mod handover;
pub mod overrides;
pub mod snapshot;
pub mod store;
