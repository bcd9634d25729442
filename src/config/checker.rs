//! The `Checker`: collects every error of one file with the span of the offending
//! value, and locates them all at once; and the checks of one value that every
//! section shares (durations, counts, rates, choices), with ranges and defaults from
//! [`super::keys`]. What it must not do: stop at the first error.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use chrono::TimeDelta;
use toml::Spanned;
use toml::de::DeTable;

use super::error::{ConfigError, MAX_REPORTED};
use super::function_ref::is_invisible;
use super::keys::{Key, MAX_COUNT, MAX_RATE, MIN_RATE};
use super::schema::{KeyIndex, LineCursor};

/// Collects errors for one file.
///
/// Errors are kept as byte offsets and located once, in [`Checker::finish`]: the key
/// path by binary search over a [`KeyIndex`], line and column by one forward scan over
/// the sorted offsets. Locating each error as it comes was quadratic (20,000 errors
/// took 99 s).
pub struct Checker<'a> {
    file: &'a Path,
    source: &'a str,
    root: &'a DeTable<'a>,
    pending: Vec<PendingError>,
    /// Errors past the first [`MAX_REPORTED`] by position, only counted.
    dropped: usize,
}

#[derive(PartialEq, Eq)]
struct PendingError {
    offset: usize,
    /// `None`: derived from the offset in `finish`.
    key: Option<String>,
    reason: String,
}

impl<'a> Checker<'a> {
    pub fn new(file: &'a Path, source: &'a str, root: &'a DeTable<'a>) -> Self {
        Self {
            file,
            source,
            root,
            pending: Vec::new(),
            dropped: 0,
        }
    }

    /// An error at `span`, its key path derived from the position.
    pub fn error(&mut self, span: Range<usize>, reason: impl Into<String>) {
        self.push(PendingError {
            offset: span.start,
            key: None,
            reason: reason.into(),
        });
    }

    pub fn error_at_path(&mut self, span: Range<usize>, key: String, reason: impl Into<String>) {
        self.push(PendingError {
            offset: span.start,
            key: Some(key),
            reason: reason.into(),
        });
    }

    /// Keeps at most a few times [`MAX_REPORTED`] errors waiting: past that, only the
    /// earliest are kept and the rest counted, so memory stays bounded whatever the file.
    fn push(&mut self, error: PendingError) {
        self.pending.push(error);
        if self.pending.len() >= 4 * MAX_REPORTED {
            self.compact();
        }
    }

    /// Sorts by position, drops exact repeats (an inherited value checked once per
    /// target) and keeps the first [`MAX_REPORTED`].
    fn compact(&mut self) {
        self.pending.sort_by_key(|pending| pending.offset);
        self.pending.dedup();
        if self.pending.len() > MAX_REPORTED {
            self.dropped += self.pending.len() - MAX_REPORTED;
            self.pending.truncate(MAX_REPORTED);
        }
    }

    /// Every error kept, located, in file order, and how many more were only counted.
    pub fn finish(mut self) -> (Vec<ConfigError>, usize) {
        self.compact();
        let index = KeyIndex::new(self.root);
        let mut cursor = LineCursor::new(self.source);
        let mut errors: Vec<ConfigError> = self
            .pending
            .into_iter()
            .map(|pending| {
                let (line, column) = cursor.advance_to(pending.offset);
                ConfigError {
                    file: self.file.to_path_buf(),
                    line,
                    column,
                    key: pending
                        .key
                        .or_else(|| index.path_at(pending.offset))
                        .unwrap_or_default(),
                    reason: pending.reason,
                }
            })
            .collect();
        // Stable: errors at one position keep the order they were found in.
        errors.sort_by(|a, b| (a.line, a.column, &a.key).cmp(&(b.line, b.column, &b.key)));
        // An inherited `[defaults]` value is checked once per target; report it once.
        errors.dedup();
        (errors, self.dropped)
    }

    /// A humantime duration; `None` when absent or invalid (invalid is reported).
    pub fn duration(&mut self, value: &Option<Spanned<String>>) -> Option<TimeDelta> {
        let value = value.as_ref()?;
        match humantime::parse_duration(value.get_ref()) {
            Ok(parsed) => match TimeDelta::from_std(parsed) {
                Ok(delta) if parsed <= super::keys::YEAR => Some(delta),
                _ => {
                    self.error(value.span(), "duration is longer than a year");
                    None
                }
            },
            Err(error) => {
                self.error(
                    value.span(),
                    format!(
                        "`{}` is not a duration ({error}); write e.g. \"90s\", \"15m\" or \"1h 30m\"",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// A duration within `key`'s range; `None` when absent or wrong (wrong is
    /// reported).
    pub fn within(&mut self, value: &Option<Spanned<String>>, key: &Key) -> Option<TimeDelta> {
        let parsed = self.duration(value)?;
        let raw = value.as_ref()?;
        let (min, max) = key.duration_range();
        let in_range = parsed
            .to_std()
            .is_ok_and(|parsed| (min..=max).contains(&parsed));
        if !in_range {
            self.error(
                raw.span(),
                format!(
                    "`{}` is out of range: from {} to {}",
                    raw.get_ref(),
                    humantime::format_duration(min),
                    humantime::format_duration(max),
                ),
            );
            return None;
        }
        Some(parsed)
    }

    /// [`Checker::within`], or `key`'s default when absent or wrong.
    pub fn duration_or_default(&mut self, value: &Option<Spanned<String>>, key: &Key) -> Duration {
        self.within(value, key)
            .and_then(|delta| delta.to_std().ok())
            .unwrap_or(key.duration())
    }

    /// [`Checker::within`] as a `TimeDelta`, or `key`'s default.
    pub fn delta_or_default(&mut self, value: &Option<Spanned<String>>, key: &Key) -> TimeDelta {
        self.within(value, key)
            .unwrap_or_else(|| TimeDelta::from_std(key.duration()).unwrap_or(TimeDelta::MAX))
    }

    /// A non-negative count that Lambda accepts: its API takes a 32-bit signed integer.
    pub fn count(&mut self, value: &Spanned<i64>, what: &str) -> Option<u32> {
        match u32::try_from(*value.get_ref()) {
            Ok(count) if count <= MAX_COUNT => Some(count),
            _ => {
                self.error(
                    value.span(),
                    format!("{what} must be a whole number from 0 to {MAX_COUNT}"),
                );
                None
            }
        }
    }

    /// A count within `key`'s range, or its default when absent or wrong.
    pub fn count_or_default(&mut self, value: &Option<Spanned<i64>>, key: &Key) -> u32 {
        let Some(value) = value else {
            return key.count();
        };
        let (min, max) = key.count_range();
        match u32::try_from(*value.get_ref()) {
            Ok(count) if (min..=max).contains(&count) => count,
            _ => {
                self.error(
                    value.span(),
                    format!("{} must be a whole number from {min} to {max}", key.name()),
                );
                key.count()
            }
        }
    }

    /// Requests a second, or `key`'s default when absent or out of range.
    pub fn rate(&mut self, value: &Option<Spanned<f64>>, key: &Key) -> f64 {
        match value {
            Some(rate) if !(MIN_RATE..=MAX_RATE).contains(rate.get_ref()) => {
                self.error(
                    rate.span(),
                    format!(
                        "must be a number of requests per second from {MIN_RATE} to {MAX_RATE}"
                    ),
                );
                key.rate()
            }
            Some(rate) => *rate.get_ref(),
            None => key.rate(),
        }
    }

    pub fn one_of<T: Copy>(&mut self, value: &Spanned<String>, choices: &[(&str, T)]) -> Option<T> {
        let found = choices
            .iter()
            .find(|(name, _)| *name == value.get_ref().as_str());
        if found.is_none() {
            let names: Vec<String> = choices
                .iter()
                .map(|(name, _)| format!("\"{name}\""))
                .collect();
            self.error(
                value.span(),
                format!("`{}` is not one of {}", value.get_ref(), names.join(", ")),
            );
        }
        found.map(|(_, choice)| *choice)
    }
}

/// Longest target or rule name: it becomes a metric label and a log field.
const MAX_LABEL_CHARS: usize = 128;

/// Target and rule names end up in logs, metric labels and terminals: they must be
/// visible text, so a name cannot forge a log line or reorder what a person reads.
/// Reports and returns false when `name` is not acceptable.
pub(super) fn check_label(checker: &mut Checker<'_>, name: &Spanned<String>, key: &str) -> bool {
    let text = name.get_ref();
    let reason = if text.trim().is_empty() {
        Some(format!(
            "{key} must not be empty (leave it out for the default)"
        ))
    } else if text.chars().count() > MAX_LABEL_CHARS {
        Some(format!("{key} is longer than {MAX_LABEL_CHARS} characters"))
    } else {
        text.chars().find(|c| is_invisible(*c)).map(|c| {
            format!(
                "{key} contains the control or formatting character U+{:04X}; use visible characters only",
                u32::from(c)
            )
        })
    };
    match reason {
        Some(reason) => {
            checker.error(name.span(), reason);
            false
        }
        None => true,
    }
}
