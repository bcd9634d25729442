//! Where the documents every copy of the daemon and the CLI share are kept: the
//! operators' overrides and the records of targets taken over from Application Auto
//! Scaling. With `[leader]`, each is one item of the lease table (`NAME#overrides`,
//! `NAME#handovers`), replaced with a condition on its version, so a failover keeps it
//! and two writers never lose each other's change; otherwise a file in
//! `daemon.state_directory`, changed under its lock and written atomically.
//!
//! What it must not do: decide what a document means: each kind says how it is
//! encoded ([`Document`]).

use std::path::PathBuf;
use std::sync::Arc;

use crate::aws::{Item, ItemTable};
use crate::config::Config;
use crate::runtime::state::files::{Lock, read_file, write_file};

/// The largest document read: far above what a document of either kind holds at its
/// own limits (500 overrides of at most 256-character reasons and setters).
const MAX_BYTES: usize = 1024 * 1024;
/// How often a change is tried again from a fresh read when another writer came first.
const TRIES: usize = 5;

/// A document kept in a [`Store`].
pub trait Document: Sized {
    /// Where it is kept: the lease table's item, and the state directory's file.
    const ITEM: Item;
    /// What nothing kept reads as.
    fn empty() -> Self;
    fn decode(bytes: &[u8]) -> Result<Self, String>;
    fn encode(&self) -> Vec<u8>;
}

pub enum Store<T> {
    File(PathBuf),
    Table(Arc<T>),
}

impl<T: ItemTable> Store<T> {
    /// Where `config` keeps documents of `D`'s kind, if anywhere: `table` is
    /// `[leader]`'s (built by the caller, which knows how to connect).
    pub fn for_config<D: Document>(config: &Config, table: Option<Arc<T>>) -> Option<Self> {
        match (table, &config.daemon.state_directory) {
            (Some(table), _) => Some(Store::Table(table)),
            (None, Some(directory)) => Some(Store::File(directory.join(D::ITEM.file_name()))),
            (None, None) => None,
        }
    }

    /// The document kept (empty if none was ever written) and its version.
    pub async fn load<D: Document>(&self) -> Result<(D, Option<u64>), String> {
        let kept = match self {
            Store::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_file(&path, MAX_BYTES))
                    .await
                    .map_err(|error| error.to_string())??
                    .map(|bytes| (bytes, 0))
            }
            Store::Table(table) => table
                .load_item(D::ITEM)
                .await
                .map_err(|error| format!("the {} could not be read: {error}", D::ITEM.key()))?,
        };
        match kept {
            None => Ok((D::empty(), None)),
            Some((bytes, _)) if bytes.len() > MAX_BYTES => Err(format!(
                "the {} kept are larger than {} MiB",
                D::ITEM.key(),
                MAX_BYTES / (1024 * 1024)
            )),
            Some((bytes, version)) => Ok((D::decode(&bytes)?, Some(version))),
        }
    }

    /// Applies `change` to the document kept and keeps the result, from a fresh read
    /// again when another writer came first; returns what `change` returned. In the
    /// state directory, writers take the file's lock for the whole read, change and
    /// write.
    pub async fn change<D: Document, R>(
        &self,
        mut change: impl FnMut(&mut D) -> Result<R, String>,
    ) -> Result<R, String> {
        if let Store::File(path) = self {
            let locked = path.clone();
            let _lock = tokio::task::spawn_blocking(move || Lock::take(&locked))
                .await
                .map_err(|error| error.to_string())??;
            let (mut document, _) = self.load::<D>().await?;
            let answer = change(&mut document)?;
            self.replace(&document).await?;
            return Ok(answer);
        }
        for _ in 0..TRIES {
            let (mut document, version) = self.load::<D>().await?;
            let answer = change(&mut document)?;
            if self.replace_if(&document, version).await? {
                return Ok(answer);
            }
        }
        Err(format!(
            "the {} changed under this write {TRIES} times in a row; try again",
            D::ITEM.key()
        ))
    }

    /// Keeps `document` in place of whatever is kept, without reading it first: how a
    /// store that cannot be read any more is emptied.
    pub async fn replace<D: Document>(&self, document: &D) -> Result<(), String> {
        match self {
            Store::File(path) => {
                let (path, bytes) = (path.clone(), document.encode());
                tokio::task::spawn_blocking(move || write_file(&path, &bytes))
                    .await
                    .map_err(|error| error.to_string())?
            }
            Store::Table(table) => {
                let version =
                    (table.load_item(D::ITEM).await.ok().flatten()).map(|(_, version)| version);
                if save(table.as_ref(), document, version).await? {
                    Ok(())
                } else {
                    Err(format!(
                        "the {} changed under this write; try again",
                        D::ITEM.key()
                    ))
                }
            }
        }
    }

    /// Keeps `document` if what is kept is still at `version` (the table's condition).
    async fn replace_if<D: Document>(
        &self,
        document: &D,
        version: Option<u64>,
    ) -> Result<bool, String> {
        match self {
            Store::File(_) => self.replace(document).await.map(|()| true),
            Store::Table(table) => save(table.as_ref(), document, version).await,
        }
    }
}

/// Keeps `document` in the table if the version kept is still `version`.
async fn save<T: ItemTable, D: Document>(
    table: &T,
    document: &D,
    version: Option<u64>,
) -> Result<bool, String> {
    table
        .save_item(D::ITEM, document.encode(), version)
        .await
        .map_err(|error| format!("the {} could not be written: {error}", D::ITEM.key()))
}

impl<T> std::fmt::Display for Store<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::File(path) => write!(f, "{}", path.display()),
            Store::Table(_) => f.write_str("the lease table"),
        }
    }
}
