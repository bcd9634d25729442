//! Where operators' overrides are kept, so that every copy of the daemon and the CLI
//! see the same list: with `[leader]`, one item of the lease table, replaced with a
//! condition on its version (a failover keeps them); otherwise `overrides.json` in
//! `daemon.state_directory`, written atomically. The CLI changes the list here; the
//! daemon reads it once a pass.
//!
//! What it must not do: decide what an override means (`policy::overrides`) or check
//! a request (`runtime::state::overrides`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::aws::OverrideTable;
use crate::config::Config;
use crate::runtime::state::files::{Lock, read_file, write_file};
use crate::runtime::state::overrides::{OverrideList, VERSION};

/// The overrides' file in the state directory.
const FILE_NAME: &str = "overrides.json";
/// The largest list read: far above [`crate::runtime::state::overrides::MAX_OVERRIDES`].
const MAX_BYTES: usize = 1024 * 1024;
/// How often a change is tried again from a fresh read when another writer came first.
const TRIES: usize = 5;

pub enum OverrideStore<T> {
    File(PathBuf),
    Table(Arc<T>),
}

impl<T: OverrideTable> OverrideStore<T> {
    /// The store `config` names, if any: `table` is `[leader]`'s (built by the caller,
    /// which knows how to connect).
    pub fn for_config(config: &Config, table: Option<Arc<T>>) -> Option<Self> {
        match (table, &config.daemon.state_directory) {
            (Some(table), _) => Some(OverrideStore::Table(table)),
            (None, Some(directory)) => Some(OverrideStore::File(directory.join(FILE_NAME))),
            (None, None) => None,
        }
    }

    /// The list kept (empty if none was ever written) and its version.
    pub async fn load(&self) -> Result<(OverrideList, Option<u64>), String> {
        let kept = match self {
            OverrideStore::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_file(&path, MAX_BYTES))
                    .await
                    .map_err(|error| error.to_string())??
                    .map(|bytes| (bytes, 0))
            }
            OverrideStore::Table(table) => table
                .load_overrides()
                .await
                .map_err(|error| format!("the overrides could not be read: {error}"))?,
        };
        match kept {
            None => Ok((
                OverrideList {
                    version: VERSION,
                    overrides: Vec::new(),
                },
                None,
            )),
            Some((bytes, version)) => Ok((OverrideList::decode(&bytes)?, Some(version))),
        }
    }

    /// Applies `change` to the list kept and keeps the result, from a fresh read again
    /// when another writer came first; returns what `change` returned. In the state
    /// directory, writers take the file's lock for the whole read, change and write.
    pub async fn change<R>(
        &self,
        mut change: impl FnMut(&mut OverrideList) -> Result<R, String>,
    ) -> Result<R, String> {
        if let OverrideStore::File(path) = self {
            let locked = path.clone();
            let _lock = tokio::task::spawn_blocking(move || Lock::take(&locked))
                .await
                .map_err(|error| error.to_string())??;
            let (mut list, _) = self.load().await?;
            let answer = change(&mut list)?;
            self.replace(list).await?;
            return Ok(answer);
        }
        for _ in 0..TRIES {
            let (mut list, version) = self.load().await?;
            let answer = change(&mut list)?;
            if self.replace_if(list, version).await? {
                return Ok(answer);
            }
        }
        Err(format!(
            "the overrides changed under this write {TRIES} times in a row; try again"
        ))
    }

    /// Keeps `list` in place of whatever is kept, without reading it first: how a
    /// store that cannot be read any more is emptied.
    pub async fn replace(&self, list: OverrideList) -> Result<(), String> {
        match self {
            OverrideStore::File(path) => {
                let (path, bytes) = (path.clone(), list.encode());
                tokio::task::spawn_blocking(move || write_file(&path, &bytes))
                    .await
                    .map_err(|error| error.to_string())?
            }
            OverrideStore::Table(table) => {
                let version = table
                    .load_overrides()
                    .await
                    .ok()
                    .flatten()
                    .map(|(_, version)| version);
                if save(table.as_ref(), list, version).await? {
                    Ok(())
                } else {
                    Err("the overrides changed under this write; try again".into())
                }
            }
        }
    }

    /// Keeps `list` if what is kept is still at `version` (the table's condition).
    async fn replace_if(&self, list: OverrideList, version: Option<u64>) -> Result<bool, String> {
        match self {
            OverrideStore::File(_) => self.replace(list).await.map(|()| true),
            OverrideStore::Table(table) => save(table.as_ref(), list, version).await,
        }
    }
}

/// Keeps `list` in the table if the version kept is still `version`.
async fn save<T: OverrideTable>(
    table: &T,
    list: OverrideList,
    version: Option<u64>,
) -> Result<bool, String> {
    table
        .save_overrides(list.encode(), version)
        .await
        .map_err(|error| format!("the overrides could not be written: {error}"))
}

impl<T> std::fmt::Display for OverrideStore<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverrideStore::File(path) => write!(f, "{}", path.display()),
            OverrideStore::Table(_) => f.write_str("the lease table"),
        }
    }
}
