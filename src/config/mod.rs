//! Configuration: one TOML file in, a validated [`Config`] or every error in it out.
//!
//! The pipeline: TOML syntax (spanned tree) → unknown keys, all of them, with
//! suggestions → each section deserialized on its own into `raw` structs (so one
//! broken target does not hide the next one's errors) → typed validation, a file per
//! job: the [`checker`] that collects errors, [`function_ref`], the process-wide
//! [`settings`], [`target`], [`tracking`] and [`schedule`], each key's default and
//! range from the one table in [`keys`]. This module reads the file and nothing else:
//! no clock, no AWS.
//!
//! What it must not do: read the clock, the environment or AWS, or stop at the first
//! error.

mod checker;
mod error;
mod fleet;
mod function_ref;
pub mod keys;
mod model;
mod raw;
mod schedule;
mod schema;
mod settings;
mod target;
mod tracking;

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::IntoDeserializer;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub use error::{ConfigError, ConfigErrors, LoadError, MAX_FILE_BYTES, MAX_REPORTED};
pub use fleet::{TEMPLATE_FUNCTION, default_name as default_target_name, is_region};
pub use function_ref::FunctionRef;
pub use model::*;

/// The range every request rate in the configuration (and `--read-rate`) must be in.
pub const RATE_RANGE: (f64, f64) = (keys::MIN_RATE, keys::MAX_RATE);

use checker::Checker;

/// Reads and validates the configuration file at `path`. A path that is not a
/// regular file (links followed: a FIFO, a device), or a file larger than
/// [`MAX_FILE_BYTES`], is refused before anything is read.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let source = read_bounded(path)?;
    parse(&source, path).map_err(LoadError::Invalid)
}

/// As [`load`], for the commands that come before any target (`audit`, `migrate`): a
/// file with only `[aws]`, `[daemon]` or `[[account]]` is valid for them.
pub fn load_for_survey(path: &Path) -> Result<Config, LoadError> {
    let source = read_bounded(path)?;
    parse_checked(&source, path, false).map_err(LoadError::Invalid)
}

fn read_bounded(path: &Path) -> Result<String, LoadError> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    let kind = metadata.file_type();
    if !kind.is_file() {
        let kind = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(LoadError::NotAFile {
            path: path.to_path_buf(),
            kind,
        });
    }
    let too_large = |size| LoadError::TooLarge {
        path: path.to_path_buf(),
        size,
    };
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large(metadata.len()));
    }
    // Read with the limit too: the file may grow between the two looks.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|error| {
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("it is not UTF-8 text ({error})"),
        ))
    })
}

/// Validates configuration text; `file` is only used in messages.
pub fn parse(source: &str, file: &Path) -> Result<Config, ConfigErrors> {
    parse_checked(source, file, true)
}

/// Parses `source`; `needs_targets`: a config without a target or selector is refused.
fn parse_checked(source: &str, file: &Path, needs_targets: bool) -> Result<Config, ConfigErrors> {
    let root = match DeTable::parse(source) {
        Ok(root) => root,
        Err(error) => {
            let (line, column) = schema::LineCursor::new(source)
                .advance_to(error.span().map_or(0, |span| span.start));
            return Err(ConfigErrors::one(ConfigError {
                file: file.to_path_buf(),
                line,
                column,
                key: String::new(),
                reason: format!("invalid TOML: {}", error.message().trim()),
            }));
        }
    };
    let root_table = root.get_ref();
    let mut checker = Checker::new(file, source, root_table);
    report_unknown_keys(&mut checker, root_table);
    // Unknown keys are reported above; the rest is checked without them.
    let known = schema::without_unknown_keys(root_table, schema::Section::File);
    let section = |name: &str| {
        known
            .iter()
            .find(|(key, _)| key.get_ref() == name)
            .map(|(_, value)| value.clone())
    };
    let aws = section("aws")
        .and_then(|value| deserialize::<raw::RawAws>(&mut checker, value))
        .map(|raw| settings::aws(&mut checker, raw))
        .unwrap_or_default();
    let daemon = section("daemon")
        .and_then(|value| deserialize::<raw::RawDaemon>(&mut checker, value))
        .map(|raw| settings::daemon(&mut checker, raw))
        .unwrap_or_default();
    let leader = section("leader").and_then(|value| {
        let span = value.span();
        deserialize::<raw::RawLeader>(&mut checker, value)
            .and_then(|raw| settings::leader(&mut checker, raw, span))
    });
    let events = section("events")
        .and_then(|value| deserialize::<raw::RawEvents>(&mut checker, value))
        .map(|raw| settings::events(&mut checker, raw));
    let accounts = array_of::<raw::RawAccount>(&mut checker, section("account"), "account");
    let accounts = fleet::accounts(&mut checker, accounts);
    let fleet = fleet::Fleet {
        region: aws.region.as_deref(),
        accounts: &accounts,
        keeps_records: leader.is_some() || daemon.state_directory.is_some(),
    };
    let defaults = defaults_table(&mut checker, section("defaults"));
    // A selector written, valid or not, is something to manage.
    let selected = section("selector").is_some() || !needs_targets;
    let selectors = selectors(&mut checker, &defaults, section("selector"), &fleet);
    let targets = targets(
        &mut checker,
        (&defaults, section("target")),
        (source.len(), selected),
        &fleet,
    );
    let (errors, more) = checker.finish();
    if errors.is_empty() {
        Ok(Config {
            source: file.to_path_buf(),
            aws,
            daemon,
            leader,
            events,
            accounts,
            selectors,
            targets,
        })
    } else {
        Err(ConfigErrors { errors, more })
    }
}

/// Reports every unknown key, with a likely one when it looks like a typo.
fn report_unknown_keys(checker: &mut Checker<'_>, root: &DeTable<'_>) {
    for unknown in schema::unknown_keys(root) {
        let mut reason = format!(
            "unknown key `{}`",
            unknown.path.rsplit('.').next().unwrap_or_default()
        );
        match unknown.suggestion {
            Some(suggestion) => reason.push_str(&format!("; did you mean `{suggestion}`?")),
            None if !unknown.known.is_empty() => {
                reason.push_str(&format!("; expected one of: {}", unknown.known.join(", ")));
            }
            None => {}
        }
        checker.error_at_path(unknown.span, unknown.path, reason);
    }
}

type Section<'a> = Option<Spanned<DeValue<'a>>>;

fn defaults_table<'a>(checker: &mut Checker<'_>, defaults: Section<'a>) -> DeTable<'a> {
    match defaults {
        Some(value) => match value.get_ref() {
            DeValue::Table(table) => table.clone(),
            _ => {
                checker.error(value.span(), "`defaults` must be a table: [defaults]");
                DeTable::default()
            }
        },
        None => DeTable::default(),
    }
}

/// The tables of an array of tables (`[[name]]`), each with its span.
fn tables_of<'a>(
    checker: &mut Checker<'_>,
    items: Section<'a>,
    name: &str,
) -> Vec<(Range<usize>, DeTable<'a>)> {
    let items = match items {
        Some(value) => match value.into_inner() {
            DeValue::Array(items) => items.into_iter().collect::<Vec<_>>(),
            _ => {
                let reason = format!("`{name}` must be an array of tables: [[{name}]]");
                checker.error_at_path(0..0, name.into(), reason);
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let mut tables = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let span = item.span();
        match item.into_inner() {
            DeValue::Table(table) => tables.push((span, table)),
            _ => {
                let reason = format!("each {name} must be a table: [[{name}]]");
                checker.error_at_path(span, format!("{name}[{index}]"), reason);
            }
        }
    }
    tables
}

/// An array of tables, each deserialized on its own.
fn array_of<'a, T: Deserialize<'a>>(
    checker: &mut Checker<'_>,
    items: Section<'a>,
    name: &str,
) -> Vec<(Range<usize>, T)> {
    tables_of(checker, items, name)
        .into_iter()
        .filter_map(|(span, table)| {
            let value = Spanned::new(span.clone(), DeValue::Table(table));
            deserialize::<T>(checker, value).map(|raw| (span, raw))
        })
        .collect()
}

/// Every `[[selector]]`, with the template keys of `[defaults]` merged under it.
fn selectors(
    checker: &mut Checker<'_>,
    defaults: &DeTable<'_>,
    items: Section<'_>,
    fleet: &fleet::Fleet<'_>,
) -> Vec<SelectorConfig> {
    const TEMPLATE_KEYS: [&str; 4] = ["min", "max", "tracking", "schedule"];
    let mut template_defaults = DeTable::default();
    for (key, value) in defaults {
        if TEMPLATE_KEYS.contains(&&**key.get_ref()) {
            template_defaults.insert(key.clone(), value.clone());
        }
    }
    let items: Vec<_> = tables_of(checker, items, "selector")
        .into_iter()
        .filter_map(|(span, table)| {
            let merged = schema::merge_under(&template_defaults, &table);
            let value = Spanned::new(span.clone(), DeValue::Table(merged));
            deserialize::<raw::RawSelector>(checker, value).map(|raw| (span, raw))
        })
        .collect();
    let template_fleet = fleet::Fleet {
        region: None,
        accounts: &[],
        keeps_records: fleet.keeps_records,
    };
    fleet::selectors(
        checker,
        items,
        fleet.accounts,
        |checker, raw, span, path| target::target(checker, raw, span, path, &template_fleet),
    )
}

/// Every `[[target]]`, each with `[defaults]` merged under it, validated one by one.
/// With a selector, none is needed.
fn targets(
    checker: &mut Checker<'_>,
    (defaults, items): (&DeTable<'_>, Section<'_>),
    (end, selected): (usize, bool),
    fleet: &fleet::Fleet<'_>,
) -> Vec<TargetConfig> {
    let items = tables_of(checker, items, "target");
    if items.is_empty() && !selected {
        let reason = "no [[target]] or [[selector]] is configured: there is nothing to manage";
        checker.error_at_path(end..end, "target".into(), reason);
    }
    let mut targets = Vec::new();
    let mut spans = Vec::new();
    for (index, (span, table)) in items.into_iter().enumerate() {
        let path = format!("target[{index}]");
        let merged = Spanned::new(
            span.clone(),
            DeValue::Table(schema::merge_under(defaults, &table)),
        );
        let Some(raw) = deserialize::<raw::RawTarget>(checker, merged) else {
            continue;
        };
        let function_span = raw.function.as_ref().map(Spanned::span);
        let name_span = raw.name.as_ref().map(Spanned::span);
        if let Some(target) = target::target(checker, raw, span.clone(), &path, fleet) {
            spans.push((
                function_span.unwrap_or(span.clone()),
                name_span.unwrap_or(span),
            ));
            targets.push(target);
        }
    }
    check_duplicates(checker, &targets, &spans);
    targets
}

/// Deserializes one section, reporting a type error at its position.
fn deserialize<'de, T: Deserialize<'de>>(
    checker: &mut Checker<'_>,
    value: Spanned<DeValue<'de>>,
) -> Option<T> {
    let whole = value.span();
    match T::deserialize(value.into_deserializer()) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            let message = error
                .message()
                .trim()
                .replace("expected i64", "expected a whole number")
                .replace("expected f64", "expected a number")
                .replace("expected a boolean", "expected true or false");
            checker.error(error.span().unwrap_or(whole), message);
            None
        }
    }
}

fn check_duplicates(
    checker: &mut Checker<'_>,
    targets: &[TargetConfig],
    spans: &[(Range<usize>, Range<usize>)],
) {
    let mut functions: HashMap<(&ShardKey, &str, &str), usize> = HashMap::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (index, target) in targets.iter().enumerate() {
        let key = (
            &target.shard,
            target.function.name.as_str(),
            target.qualifier.as_str(),
        );
        if let Some(first) = functions.insert(key, index) {
            functions.insert(key, first);
            // The default names of the two targets collide too; one error says it.
            names.entry(&target.name).or_insert(index);
            checker.error(
                spans[index].0.clone(),
                format!(
                    "`{}:{}` is already managed by target `{}`; each function and qualifier may be configured once",
                    key.1, key.2, targets[first].name
                ),
            );
            continue;
        }
        if let Some(first) = names.insert(&target.name, index) {
            names.insert(&targets[first].name, first);
            checker.error(
                spans[index].1.clone(),
                format!(
                    "another target is already named `{}`; names label metrics and must be unique",
                    target.name
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const EXAMPLE: &str = include_str!("../../config/example.toml");

    #[test]
    fn the_example_is_valid() {
        let config = parse(EXAMPLE, Path::new("example.toml")).expect("the example is valid");
        assert_eq!(config.targets.len(), 3);
        assert_eq!(config.targets[1].name, "orders-worker:7");
        assert_eq!(config.daemon.max_write_rate, 5.0);
    }

    #[test]
    fn defaults_merge_under_targets_key_by_key() {
        let text = "[defaults]\nmin = 2\ntracking = { metric = \"concurrency\", target = 0.7, scale_in_window = \"30m\" }\n\
                    [[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmax = 9\n[target.tracking]\ntarget = 0.5\n";
        let config = parse(text, Path::new("t.toml")).expect("valid");
        let target = &config.targets[0];
        let tracking = target.tracking.as_ref().expect("inherited tracking");
        assert_eq!((target.min, target.max, tracking.target), (2, 9, 0.5));
        assert_eq!(tracking.scale_in_window, chrono::TimeDelta::minutes(30));
    }

    proptest! {
        /// Any text at all, and any one-character corruption of the example, gives a
        /// config or located errors: never a panic.
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,400}") {
            let _ = parse(&text, Path::new("fuzz.toml"));
        }

        #[test]
        fn corrupted_examples_never_panic(position in 0usize..EXAMPLE.len(), replacement in prop::char::any()) {
            let mut text: Vec<char> = EXAMPLE.chars().collect();
            let index = position.min(text.len() - 1);
            text[index] = replacement;
            let text: String = text.into_iter().collect();
            if let Err(errors) = parse(&text, Path::new("fuzz.toml")) {
                prop_assert!(errors.errors.iter().all(|error| error.line >= 1 && error.column >= 1));
            }
        }
    }
}
