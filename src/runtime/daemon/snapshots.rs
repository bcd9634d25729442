//! Where the leader keeps its snapshot (`runtime::snapshot`): in the lease table with
//! `[leader]`, so that whichever copy takes over finds it; otherwise in
//! `daemon.state_directory`, written atomically (a temporary file, fsync, rename, fsync
//! of the directory); or nowhere. Loading is bounded in time and size, and any failure
//! is logged and means a cold start, never a stop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::aws::{Connect, SnapshotStore};
use crate::config::Config;
use crate::runtime::snapshot::MAX_BYTES;

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
    pub async fn for_config<A: Connect<Snapshots = S>>(aws: &A, config: &Config) -> Self {
        match (&config.leader, &config.daemon.state_directory) {
            (Some(leader), _) => {
                Snapshots::Table(Arc::new(aws.snapshots(&config.aws, leader).await))
            }
            (None, Some(directory)) => Snapshots::File(directory.join(FILE_NAME)),
            (None, None) => Snapshots::Off,
        }
    }

    pub fn is_on(&self) -> bool {
        !matches!(self, Snapshots::Off)
    }

    /// The snapshot kept, if any could be read within [`LOAD_LIMIT`].
    pub async fn load(&self) -> Option<Vec<u8>> {
        let loaded = match self {
            Snapshots::Off => return None,
            Snapshots::File(path) => {
                let path = path.clone();
                let read = tokio::task::spawn_blocking(move || read_file(&path));
                tokio::time::timeout(LOAD_LIMIT, read)
                    .await
                    .map_err(|_| "it was not read within 10 s".to_owned())
                    .and_then(|joined| joined.map_err(|error| error.to_string()))
                    .and_then(|read| read)
            }
            Snapshots::Table(store) => tokio::time::timeout(LOAD_LIMIT, store.load())
                .await
                .map_err(|_| "it was not read within 10 s".to_owned())
                .and_then(|read| read.map_err(|error| error.to_string())),
        };
        match loaded {
            Ok(found) => found,
            Err(why) => {
                tracing::warn!(reason = %why, "the snapshot could not be read; the start is a cold one");
                None
            }
        }
    }

    /// Keeps `bytes` as the snapshot.
    pub async fn save(&self, bytes: Vec<u8>) -> Result<(), String> {
        match self {
            Snapshots::Off => Ok(()),
            Snapshots::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || write_file(&path, &bytes))
                    .await
                    .map_err(|error| error.to_string())?
            }
            Snapshots::Table(store) => store.save(bytes).await.map_err(|error| error.to_string()),
        }
    }
}

/// Why the daemon could not keep its snapshot in `directory`, if it could not: `check`
/// asks where the daemon will run.
pub fn check_state_directory(directory: &Path) -> Result<(), String> {
    if !directory.is_dir() {
        return Err(format!("{} is not a directory", directory.display()));
    }
    let probe = directory.join(format!(".pc-autoscaler-check-{}", std::process::id()));
    std::fs::File::create(&probe)
        .map(|_| {
            let _ = std::fs::remove_file(&probe);
        })
        .map_err(|error| format!("{} cannot be written: {error}", directory.display()))
}

/// The file's bytes; `None` when there is none yet.
fn read_file(path: &Path) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read as _;
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("{}: {error}", path.display())),
    };
    if !metadata.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(Some(bytes))
}

/// Writes `bytes` to `path` so that a reader finds the old file or the new one whole,
/// even across a crash or a full disk.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let directory = path.parent().unwrap_or(Path::new("."));
    let temporary = path.with_extension("json.tmp");
    let written = std::fs::File::create(&temporary)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temporary, path))
        .and_then(|()| std::fs::File::open(directory).and_then(|directory| directory.sync_all()));
    written.map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        format!("{}: {error}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_snapshot_before_it_whole() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join(FILE_NAME);
        write_file(&path, b"first").expect("written");
        // The temporary file's place is taken by a directory: the write fails, as on
        // a full disk, before anything replaces the snapshot.
        std::fs::create_dir(path.with_extension("json.tmp")).expect("a directory");
        assert!(write_file(&path, b"second").is_err());
        assert_eq!(read_file(&path), Ok(Some(b"first".to_vec())));
        assert_eq!(read_file(&dir.path().join("absent.json")), Ok(None));
        assert!(
            read_file(dir.path()).is_err(),
            "a directory is not a snapshot"
        );
    }
}
