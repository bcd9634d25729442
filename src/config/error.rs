//! Located configuration errors.
//!
//! Every error carries the file, the 1-based line and column, the dotted key path
//! (`target[2].schedule[0].cron`) and a reason a person can act on. Errors are
//! collected, never thrown one at a time: validation reports all of them at once.
//!
//! What it must not do: print: the command line does.

use std::fmt;
use std::path::PathBuf;

use crate::escape::Printable;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `target[0].tracking.target`; empty for the whole file.
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    /// One line, whatever the file held: the key and the reason quote its text, so
    /// they are escaped ([`crate::escape`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display().to_string();
        write!(f, "{}:{}:{}: ", Printable(&file), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", Printable(&self.key))?;
        }
        write!(f, "{}", Printable(&self.reason))
    }
}

/// The problems found in one configuration file, in file order: the first
/// [`MAX_REPORTED`] in full, and how many more there were.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
    /// Errors past the first [`MAX_REPORTED`], only counted: a file with a million
    /// mistakes must not cost memory in proportion.
    pub more: usize,
}

/// The largest config file read: far above any real one (5,000 targets are about
/// 600 KiB), far below what would exhaust memory parsing it.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Errors reported in full per file.
pub const MAX_REPORTED: usize = 1_000;

impl ConfigErrors {
    pub fn one(error: ConfigError) -> Self {
        ConfigErrors {
            errors: vec![error],
            more: 0,
        }
    }

    /// How many errors were found in all.
    pub fn count(&self) -> usize {
        self.errors.len() + self.more
    }

    /// The last line of the report: how many errors, and how many are not shown.
    pub fn summary(&self) -> String {
        let count = self.count();
        let plural = if count == 1 { "" } else { "s" };
        match self.more {
            0 => format!("{count} error{plural} in the configuration"),
            more => format!(
                "{count} error{plural} in the configuration; the first {} are shown, {more} more are not",
                self.errors.len()
            ),
        }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in &self.errors {
            writeln!(f, "error: {error}")?;
        }
        f.write_str(&self.summary())
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {} is not a regular file ({kind}); refusing to read it", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("config file {} is larger than {} MiB ({size} bytes); refusing to read it", path.display(), MAX_FILE_BYTES / (1024 * 1024))]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{0}")]
    Invalid(ConfigErrors),
}
