//! Files in the daemon's state directory (the snapshot, the overrides): read with a
//! size limit, only when regular, and written atomically (a temporary file beside it,
//! fsync, rename, fsync of the directory), so that a reader finds the old file or the
//! new one whole, even across a crash or a full disk. What it must not do: decide what
//! the bytes mean.

use std::path::{Path, PathBuf};

/// Where `path` is written before it is renamed into place.
pub fn temporary_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// The file's bytes; `None` when there is none yet.
pub fn read_file(path: &Path, limit: usize) -> Result<Option<Vec<u8>>, String> {
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
        .and_then(|file| file.take(limit as u64 + 1).read_to_end(&mut bytes))
        .map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(Some(bytes))
}

/// Writes `bytes` to `path` so that a reader finds the old file or the new one whole,
/// even across a crash or a full disk.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let directory = path.parent().unwrap_or(Path::new("."));
    let temporary = temporary_of(path);
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
        let path = dir.path().join("snapshot.json");
        write_file(&path, b"first").expect("written");
        // The temporary file's place is taken by a directory: the write fails, as on
        // a full disk, before anything replaces the snapshot.
        std::fs::create_dir(temporary_of(&path)).expect("a directory");
        assert!(write_file(&path, b"second").is_err());
        assert_eq!(read_file(&path, 100), Ok(Some(b"first".to_vec())));
        assert_eq!(read_file(&dir.path().join("absent.json"), 100), Ok(None));
        assert!(
            read_file(dir.path(), 100).is_err(),
            "a directory is not a snapshot"
        );
    }
}
