//! The spanned TOML tree: which keys each table may hold, where a byte offset sits
//! (line, column, key path), and how `[defaults]` is merged under each target.
//!
//! Key names come from the serde structs in `raw` themselves (by asking their
//! derived `Deserialize` which fields it expects), so the list is never written twice.
//!
//! What it must not do: validate values (the sections do) or stop at the first unknown
//! key.

use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::raw;

/// The kinds of table in a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    File,
    Aws,
    Daemon,
    Leader,
    Events,
    Target,
    Account,
    Selector,
    Tracking,
    Custom,
    Schedule,
    /// Free-form keys (custom metric dimensions).
    Free,
}

impl Section {
    fn fields(self) -> &'static [&'static str] {
        match self {
            Section::File => fields_of::<raw::RawFile>(),
            Section::Aws => fields_of::<raw::RawAws>(),
            Section::Daemon => fields_of::<raw::RawDaemon>(),
            Section::Leader => fields_of::<raw::RawLeader>(),
            Section::Events => fields_of::<raw::RawEvents>(),
            Section::Target => fields_of::<raw::RawTarget>(),
            Section::Account => fields_of::<raw::RawAccount>(),
            Section::Selector => fields_of::<raw::RawSelector>(),
            Section::Tracking => fields_of::<raw::RawTracking>(),
            Section::Custom => fields_of::<raw::RawCustomMetric>(),
            Section::Schedule => fields_of::<raw::RawSchedule>(),
            Section::Free => &[],
        }
    }

    /// The section a key of this section opens, if its value is a table (or array of tables).
    fn child(self, key: &str) -> Option<Section> {
        match (self, key) {
            (Section::File, "aws") => Some(Section::Aws),
            (Section::File, "daemon") => Some(Section::Daemon),
            (Section::File, "leader") => Some(Section::Leader),
            (Section::File, "events") => Some(Section::Events),
            (Section::File, "defaults" | "target") => Some(Section::Target),
            (Section::File, "account") => Some(Section::Account),
            (Section::File, "selector") => Some(Section::Selector),
            (Section::Target | Section::Selector, "tracking") => Some(Section::Tracking),
            (Section::Target | Section::Selector, "schedule") => Some(Section::Schedule),
            (Section::Selector, "tags") => Some(Section::Free),
            (Section::Tracking, "custom") => Some(Section::Custom),
            (Section::Custom, "dimensions") => Some(Section::Free),
            _ => None,
        }
    }
}

/// Every key a file may hold, as `section.key` paths (`daemon.interval`,
/// `target.tracking.target`); `[defaults]` holds the target keys.
#[cfg(test)]
pub fn every_key_path() -> Vec<String> {
    fn walk(section: Section, prefix: &str, found: &mut Vec<String>) {
        for field in section.fields() {
            if section == Section::File && *field == "defaults" {
                continue;
            }
            let path = join(prefix, field);
            match section.child(field) {
                Some(Section::Free) | None => found.push(path),
                Some(child) => walk(child, &path, found),
            }
        }
    }
    let mut found = Vec::new();
    walk(Section::File, "", &mut found);
    found
}

/// An unknown key: where it is, its path, and a close known key if there is one.
pub struct UnknownKey {
    pub span: Range<usize>,
    pub path: String,
    pub suggestion: Option<&'static str>,
    pub known: &'static [&'static str],
}

/// Every unknown key in the tree, in file order.
pub fn unknown_keys(root: &DeTable<'_>) -> Vec<UnknownKey> {
    let mut found = Vec::new();
    walk_table(root, Section::File, "", &mut found);
    found.sort_by_key(|unknown| unknown.span.start);
    found
}

fn walk_table(table: &DeTable<'_>, section: Section, prefix: &str, found: &mut Vec<UnknownKey>) {
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        let path = join(prefix, name);
        if section != Section::Free && !section.fields().contains(&name) {
            found.push(UnknownKey {
                span: key.span(),
                path,
                suggestion: closest(name, section.fields()),
                known: section.fields(),
            });
            continue;
        }
        let Some(child) = section.child(name) else {
            continue;
        };
        match value.get_ref() {
            DeValue::Table(inner) => walk_table(inner, child, &path, found),
            DeValue::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    if let DeValue::Table(inner) = item.get_ref() {
                        walk_table(inner, child, &format!("{path}[{index}]"), found);
                    }
                }
            }
            _ => {}
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The known key most like `name`, if it is close enough to be a likely typo.
fn closest(name: &str, known: &'static [&'static str]) -> Option<&'static str> {
    known
        .iter()
        .map(|candidate| (strsim::jaro_winkler(name, candidate), *candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// A copy of `table` without the keys `unknown_keys` reports, so that serde, which
/// stops at the first unknown field, still checks everything else in the section.
pub fn without_unknown_keys<'i>(table: &DeTable<'i>, section: Section) -> DeTable<'i> {
    let mut kept = DeTable::default();
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        if section != Section::Free && !section.fields().contains(&name) {
            continue;
        }
        let value = match (section.child(name), value.get_ref()) {
            (Some(child), DeValue::Table(inner)) => Spanned::new(
                value.span(),
                DeValue::Table(without_unknown_keys(inner, child)),
            ),
            (Some(child), DeValue::Array(items)) => {
                let mut cleaned = toml::de::DeArray::new();
                for item in items.iter() {
                    cleaned.push(match item.get_ref() {
                        DeValue::Table(inner) => Spanned::new(
                            item.span(),
                            DeValue::Table(without_unknown_keys(inner, child)),
                        ),
                        _ => item.clone(),
                    });
                }
                Spanned::new(value.span(), DeValue::Array(cleaned))
            }
            _ => value.clone(),
        };
        kept.insert(key.clone(), value);
    }
    kept
}

/// The dotted path of the innermost key whose value contains `offset`, below `prefix`.
pub fn key_path_at(table: &DeTable<'_>, prefix: &str, offset: usize) -> Option<String> {
    for (key, value) in table.iter() {
        let path = join(prefix, key.get_ref());
        if key.span().contains(&offset) {
            return Some(path);
        }
        match value.get_ref() {
            DeValue::Table(inner) => {
                if let Some(found) = key_path_at(inner, &path, offset) {
                    return Some(found);
                }
            }
            DeValue::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{index}]");
                    if let DeValue::Table(inner) = item.get_ref()
                        && let Some(found) = key_path_at(inner, &item_path, offset)
                    {
                        return Some(found);
                    }
                    if item.span().contains(&offset) {
                        return Some(item_path);
                    }
                }
            }
            _ => {}
        }
        if value.span().contains(&offset) {
            return Some(path);
        }
    }
    None
}

/// Key paths of every leaf (a key, a scalar value, a scalar array item), sorted by
/// position, so that each error finds its path by binary search instead of a walk
/// over the whole tree: reporting 20,000 errors stays linear in the file's size.
pub struct KeyIndex<'t> {
    root: &'t DeTable<'t>,
    leaves: Vec<(Range<usize>, String)>,
}

impl<'t> KeyIndex<'t> {
    pub fn new(root: &'t DeTable<'t>) -> Self {
        let mut leaves = Vec::new();
        collect_leaves(root, "", &mut leaves);
        leaves.sort_by_key(|(span, _)| span.start);
        Self { root, leaves }
    }

    /// The same answer as [`key_path_at`] from the root.
    pub fn path_at(&self, offset: usize) -> Option<String> {
        let after = self
            .leaves
            .partition_point(|(span, _)| span.start <= offset);
        match after.checked_sub(1).map(|index| &self.leaves[index]) {
            Some((span, path)) if span.contains(&offset) => Some(path.clone()),
            // Not inside a leaf (a table's brace or header): rare, walk the tree.
            _ => key_path_at(self.root, "", offset),
        }
    }
}

fn collect_leaves(table: &DeTable<'_>, prefix: &str, leaves: &mut Vec<(Range<usize>, String)>) {
    for (key, value) in table.iter() {
        let path = join(prefix, key.get_ref());
        leaves.push((key.span(), path.clone()));
        match value.get_ref() {
            DeValue::Table(inner) => collect_leaves(inner, &path, leaves),
            DeValue::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{index}]");
                    match item.get_ref() {
                        DeValue::Table(inner) => collect_leaves(inner, &item_path, leaves),
                        DeValue::Array(_) => {}
                        _ => leaves.push((item.span(), item_path)),
                    }
                }
            }
            _ => leaves.push((value.span(), path)),
        }
    }
}

/// `target` with `defaults` beneath it: tables merge key by key (the target wins),
/// any other value (arrays included) is replaced whole.
pub fn merge_under<'i>(defaults: &DeTable<'i>, target: &DeTable<'i>) -> DeTable<'i> {
    let find = |table: &DeTable<'i>, name: &str| {
        table
            .iter()
            .find(|(key, _)| key.get_ref() == name)
            .map(|(_, value)| value.clone())
    };
    let mut merged = DeTable::default();
    for (key, base) in defaults.iter() {
        let value = match find(target, key.get_ref()) {
            None => base.clone(),
            Some(over) => match (base.get_ref(), over.get_ref()) {
                (DeValue::Table(base_table), DeValue::Table(over_table)) => Spanned::new(
                    over.span(),
                    DeValue::Table(merge_under(base_table, over_table)),
                ),
                _ => over,
            },
        };
        merged.insert(key.clone(), value);
    }
    for (key, value) in target.iter() {
        if find(defaults, key.get_ref()).is_none() {
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}

/// Line and column of increasing offsets in one forward pass: each character is
/// counted once however many errors share a long line.
pub struct LineCursor<'s> {
    source: &'s str,
    offset: usize,
    line: usize,
    column: usize,
}

impl<'s> LineCursor<'s> {
    pub fn new(source: &'s str) -> Self {
        Self {
            source,
            offset: 0,
            line: 1,
            column: 1,
        }
    }

    /// The 1-based line and column (in characters) of `offset`. Offsets must not
    /// decrease between calls; a smaller one answers for the current position.
    pub fn advance_to(&mut self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        if offset > self.offset {
            // Offsets inside a multi-byte character are rounded down to its start.
            let end = (0..=offset)
                .rev()
                .find(|end| self.source.is_char_boundary(*end))
                .unwrap_or(0)
                .max(self.offset);
            for character in self.source[self.offset..end].chars() {
                if character == '\n' {
                    self.line += 1;
                    self.column = 1;
                } else {
                    self.column += 1;
                }
            }
            self.offset = end;
        }
        (self.line, self.column)
    }
}

/// The field names a serde-derived struct expects, read from its `Deserialize` impl.
///
/// Derived impls call `deserialize_struct(name, FIELDS, visitor)`; this deserializer
/// records `FIELDS` and stops there.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct FieldRecorder<'a>(&'a mut &'static [&'static str]);

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names recorded")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }

    impl<'de> de::Deserializer<'de> for FieldRecorder<'_> {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            *self.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    // The error is the expected way out: the recorder never produces a value.
    let _ = T::deserialize(FieldRecorder(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_the_raw_structs() {
        assert_eq!(
            Section::Aws.fields(),
            &["region", "profile", "endpoint_url", "timeout"]
        );
        assert!(Section::Schedule.fields().contains(&"lead"));
        assert_eq!(
            Section::File.fields(),
            &[
                "aws", "daemon", "leader", "events", "defaults", "account", "selector", "target"
            ]
        );
    }

    #[test]
    fn suggests_a_close_key_only() {
        assert_eq!(
            closest("qualifer", Section::Target.fields()),
            Some("qualifier")
        );
        assert_eq!(closest("zzzz", Section::Target.fields()), None);
    }

    #[test]
    fn locates_lines_and_columns() {
        let mut locator = LineCursor::new("a = 1\nbé = 2\n");
        assert_eq!(locator.advance_to(0), (1, 1));
        assert_eq!(locator.advance_to(6), (2, 1));
        assert_eq!(locator.advance_to(10), (2, 4));
        assert_eq!(
            locator.advance_to(8),
            (2, 4),
            "an offset behind answers where it is"
        );
    }

    #[test]
    fn the_key_index_answers_as_the_tree_walk_does_at_every_offset() {
        let source = format!(
            "{}\n[extra]\nlist = [1, \"two\", [3]]\ninline = {{ a = {{ b = 1 }}, c = [{{ d = 2 }}] }}\n",
            include_str!("../../config/example.toml")
        );
        let root = DeTable::parse(&source).expect("valid TOML");
        let index = KeyIndex::new(root.get_ref());
        for offset in 0..=source.len() {
            assert_eq!(
                index.path_at(offset),
                key_path_at(root.get_ref(), "", offset),
                "offset {offset}"
            );
        }
    }
}
