//! Where the leader keeps its snapshot (`runtime::state::snapshot`): in the lease table with
//! `[leader]`, so that whichever copy takes over finds it; otherwise in
//! `daemon.state_directory`, written atomically (a temporary file, fsync, rename, fsync
//! of the directory); or nowhere. Loading is bounded in time and size, and any failure
//! is logged and means a cold start, never a stop.
//!
//! What it must not do: decide what a snapshot means, or stop the daemon when one
//! cannot be read.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::aws::SnapshotStore;
use crate::config::Config;
use crate::runtime::state::files::{read_file, write_file};
use crate::runtime::state::snapshot::MAX_BYTES;

/// How long a start waits for the snapshot before it goes on without it.
const LOAD_LIMIT: Duration = Duration::from_secs(10);
/// The snapshot's file in the state directory.
const FILE_NAME: &str = "snapshot.json";

pub enum Snapshots<S> {
    Off,
    File(PathBuf),
    Table(Arc<S>),
}

impl<S: SnapshotStore> Snapshots<S> {
    /// The store `config` names: `table` is `[leader]`'s, if there is one.
    pub fn for_config(table: Option<Arc<S>>, config: &Config) -> Self {
        match (table, &config.daemon.state_directory) {
            (Some(table), _) => Snapshots::Table(table),
            (None, Some(directory)) => Snapshots::File(directory.join(FILE_NAME)),
            (None, None) => Snapshots::Off,
        }
    }

    pub fn is_on(&self) -> bool {
        !matches!(self, Snapshots::Off)
    }

    /// The snapshot kept in `slot` (`""`: the base shard's; `account/region`), if any
    /// could be read within [`LOAD_LIMIT`].
    pub async fn load(&self, slot: &str) -> Option<Vec<u8>> {
        let loaded = match self {
            Snapshots::Off => return None,
            Snapshots::File(path) => {
                let path = file_of(path, slot);
                let read = tokio::task::spawn_blocking(move || read_file(&path, MAX_BYTES));
                tokio::time::timeout(LOAD_LIMIT, read)
                    .await
                    .map_err(|_| "it was not read within 10 s".to_owned())
                    .and_then(|joined| joined.map_err(|error| error.to_string()))
                    .and_then(|read| read)
            }
            Snapshots::Table(store) => tokio::time::timeout(LOAD_LIMIT, store.load(slot))
                .await
                .map_err(|_| "it was not read within 10 s".to_owned())
                .and_then(|read| read.map_err(|error| error.to_string())),
        };
        match loaded {
            Ok(found) => found,
            Err(why) => {
                tracing::warn!(slot, reason = %why, "the snapshot could not be read; the start is a cold one");
                None
            }
        }
    }

    /// Keeps `bytes` as `slot`'s snapshot.
    pub async fn save(&self, slot: &str, bytes: Vec<u8>) -> Result<(), String> {
        match self {
            Snapshots::Off => Ok(()),
            Snapshots::File(path) => {
                let path = file_of(path, slot);
                tokio::task::spawn_blocking(move || write_file(&path, &bytes))
                    .await
                    .map_err(|error| error.to_string())?
            }
            Snapshots::Table(store) => store
                .save(slot, bytes)
                .await
                .map_err(|error| error.to_string()),
        }
    }
}

/// The file of `slot` beside the base shard's `snapshot.json`:
/// `snapshot-ACCOUNT-REGION.json` (account names and Regions hold no `/`).
fn file_of(base: &Path, slot: &str) -> PathBuf {
    if slot.is_empty() {
        return base.to_path_buf();
    }
    base.with_file_name(format!("snapshot-{}.json", slot.replace('/', "-")))
}
