//! Files in the daemon's state directory (the snapshot, the overrides), treated as
//! hostile ground: another user may have planted a link or a FIFO there.
//!
//! - A read opens the file without following a link, only when it is a regular file,
//!   and reads at most the limit.
//! - A write goes to a temporary file of its own (a new name, created exclusively,
//!   never through a link, readable by the owner only), is synced, and is renamed
//!   over the file; the directory is synced after. A reader finds the old file or the
//!   new one whole, even across a crash or a full disk, and a planted link is replaced,
//!   never written through.
//! - Writers that read, change and write a file hold its lock ([`Lock`]) meanwhile, so
//!   that two at once cannot lose each other's change.
//! - [`unsafe_modes`] says which of the directory and its files anyone but their owner
//!   may write: whoever may write the store may set overrides.
//!
//! What it must not do: decide what the bytes mean.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Owner read and write only: the store says who may change capacity.
const FILE_MODE: u32 = 0o600;
/// How often, and how far apart, a writer tries to take the lock another holds: 10 s.
const LOCK_TRIES: u32 = 500;
const LOCK_PAUSE: Duration = Duration::from_millis(20);

/// Opens `path` for reading without following a link; `None` when there is none.
fn open_regular(path: &Path) -> Result<Option<File>, String> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            return Err(format!("{} is a link; it is not followed", path.display()));
        }
        Err(error) => return Err(format!("{}: {error}", path.display())),
    };
    let metadata = file
        .metadata()
        .map_err(|error| format!("{}: {error}", path.display()))?;
    if !metadata.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    Ok(Some(file))
}

/// The file's bytes; `None` when there is none yet. Reads at most `limit + 1` bytes,
/// so a caller can tell a file over its limit.
pub fn read_file(path: &Path, limit: usize) -> Result<Option<Vec<u8>>, String> {
    let Some(file) = open_regular(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(Some(bytes))
}

/// A temporary file of this write's own beside `path`, created exclusively and never
/// through a link. Made by root (an operator's `sudo pc-autoscaler override set`), it
/// is given to the directory's owner, the daemon's user, who must go on reading it.
fn create_temporary(path: &Path) -> std::io::Result<(PathBuf, File)> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    loop {
        let temporary = path.with_file_name(format!(
            ".{name}.{}.{:016x}.tmp",
            std::process::id(),
            fastrand::u64(..)
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)
        {
            Ok(file) => {
                give_to_directory_owner(&file, path)?;
                return Ok((temporary, file));
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
}

fn give_to_directory_owner(file: &File, path: &Path) -> std::io::Result<()> {
    // SAFETY: `geteuid` reads this process's effective user id; nothing is shared.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let directory = std::fs::metadata(path.parent().unwrap_or(Path::new(".")))?;
    let descriptor = std::os::fd::AsRawFd::as_raw_fd(file);
    // SAFETY: `fchown` on a descriptor this process owns; no memory is shared.
    match unsafe { libc::fchown(descriptor, directory.uid(), directory.gid()) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Writes `bytes` to `path` so that a reader finds the old file or the new one whole,
/// even across a crash or a full disk; a link at `path` is replaced, not followed.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let directory = path.parent().unwrap_or(Path::new("."));
    let (temporary, mut file) =
        create_temporary(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path))
        .and_then(|()| File::open(directory).and_then(|directory| directory.sync_all()));
    written.map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        format!("{}: {error}", path.display())
    })
}

/// A writer's exclusive lock on a file of the state directory, held until dropped:
/// `flock` on `NAME.lock` beside it, which no reader needs.
#[derive(Debug)]
pub struct Lock {
    // Held for its descriptor: the lock goes when it is closed.
    _file: File,
}

impl Lock {
    /// Takes the lock of `path`, waiting about 10 s at most for another writer. It
    /// blocks: call it from a blocking task.
    pub fn take(path: &Path) -> Result<Lock, String> {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let lock_path = path.with_file_name(name);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&lock_path)
            .map_err(|error| format!("{}: {error}", lock_path.display()))?;
        let regular = file.metadata().is_ok_and(|metadata| metadata.is_file());
        if !regular {
            return Err(format!("{} is not a regular file", lock_path.display()));
        }
        give_to_directory_owner(&file, &lock_path)
            .map_err(|error| format!("{}: {error}", lock_path.display()))?;
        for _ in 0..LOCK_TRIES {
            let descriptor = std::os::fd::AsRawFd::as_raw_fd(&file);
            // SAFETY: `flock` on a descriptor this function owns; no memory is shared.
            if unsafe { libc::flock(descriptor, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(Lock { _file: file });
            }
            std::thread::sleep(LOCK_PAUSE);
        }
        Err(format!(
            "{} is held by another writer; try again",
            lock_path.display()
        ))
    }
}

/// Why the daemon could not keep its state in `directory`, if it could not: `check`
/// asks where the daemon will run.
pub fn check_state_directory(directory: &Path) -> Result<(), String> {
    if !directory.is_dir() {
        return Err(format!("{} is not a directory", directory.display()));
    }
    let probe = directory.join(".pc-autoscaler-check");
    let (temporary, _) = create_temporary(&probe)
        .map_err(|error| format!("{} cannot be written: {error}", directory.display()))?;
    let _ = std::fs::remove_file(temporary);
    Ok(())
}

/// What anyone but the owner may write among `directory` and the files in it, each
/// with its mode: whoever may write the store may set overrides, or plant a file.
pub fn unsafe_modes(directory: &Path) -> Vec<String> {
    let writable_by_others = |mode: u32| mode & 0o022 != 0;
    let mut found = Vec::new();
    let Ok(metadata) = std::fs::symlink_metadata(directory) else {
        return found;
    };
    if writable_by_others(metadata.permissions().mode()) {
        found.push(format!(
            "{} (mode {:o})",
            directory.display(),
            metadata.permissions().mode() & 0o7777
        ));
    }
    let owner = metadata.uid();
    for entry in std::fs::read_dir(directory).into_iter().flatten().flatten() {
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        let mode = metadata.permissions().mode();
        if writable_by_others(mode) || metadata.uid() != owner {
            found.push(format!(
                "{} (mode {:o}, owner {})",
                entry.path().display(),
                mode & 0o7777,
                metadata.uid()
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_nothing_behind_and_a_good_one_replaces_the_file_whole() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("snapshot.json");
        write_file(&path, b"first").expect("written");
        write_file(&path, b"second").expect("written again");
        assert_eq!(read_file(&path, 100), Ok(Some(b"second".to_vec())));
        // A directory where the file goes: the rename fails after the temporary file
        // was written, which must not stay behind.
        let taken = dir.path().join("taken.json");
        std::fs::create_dir(&taken).expect("a directory");
        std::fs::write(taken.join("inside"), b"x").expect("not empty");
        assert!(write_file(&taken, b"third").is_err());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("readable")
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert_eq!(read_file(&dir.path().join("absent.json"), 100), Ok(None));
        assert!(
            read_file(dir.path(), 100).is_err(),
            "a directory is not a snapshot"
        );
    }

    #[test]
    fn a_link_is_neither_read_nor_written_through() {
        let dir = tempfile::tempdir().expect("a directory");
        let target = dir.path().join("secret");
        std::fs::write(&target, b"secret").expect("written");
        let path = dir.path().join("overrides.json");
        std::os::unix::fs::symlink(&target, &path).expect("a link");
        assert!(read_file(&path, 100).is_err(), "a link is not followed");
        write_file(&path, b"new").expect("the link is replaced");
        assert_eq!(std::fs::read(&target).expect("readable"), b"secret");
        let metadata = std::fs::symlink_metadata(&path).expect("there");
        assert!(metadata.is_file());
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    }
}
