//! The manual against the code: README.md, CHANGELOG.md and the book in `docs/src`.
//!
//! - The references rendered from the code (every configuration key, every command and
//!   argument, every metric) are what the code says now. `BLESS_DOCS=1 cargo test
//!   --test docs` writes them anew after a change.
//! - Every complete TOML config passes `check`'s validation; every fragment (a block
//!   marked `toml fragment`) is still TOML.
//! - Every `pc-autoscaler …` command line parses with the real command line.
//! - Every relative link and `#anchor` resolves.
//! - The `simulate` samples have the rows and the header the command prints now.
//!
//! None of this needs mdBook: `mdbook build docs` turns the same files into a site.

#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Parser as _;
use clap::error::ErrorKind;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every Markdown file of the manual.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md"), root().join("CHANGELOG.md")];
    let mut stack = vec![root().join("docs/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("docs/src is readable") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                pages.push(path);
            }
        }
    }
    pages.sort();
    pages
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A fenced code block: its info string, first line number and text.
struct Block {
    info: String,
    line: usize,
    text: String,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match (&mut open, trimmed.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.trim().to_owned(),
                    line: number + 1,
                    text: String::new(),
                })
            }
            (Some(_), Some(_)) => found.extend(open.take()),
            (Some(block), None) => {
                // Blocks indented under a list item keep their indentation out.
                let indent = line.len() - trimmed.len();
                block.text.push_str(if indent > 0 { trimmed } else { line });
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    found
}

/// A generated section: `<!-- BEGIN generated: NAME -->` … `<!-- END generated: NAME -->`.
fn check_generated(file: &str, name: &str, generated: &str, failures: &mut Vec<String>) {
    let path = root().join(file);
    let text = read(&path);
    let begin = format!("<!-- BEGIN generated: {name} -->\n");
    let end = format!("<!-- END generated: {name} -->");
    let (Some(start), Some(stop)) = (text.find(&begin), text.find(&end)) else {
        failures.push(format!("{file}: no generated section `{name}`"));
        return;
    };
    let current = &text[start + begin.len()..stop];
    if current == generated {
        return;
    }
    if std::env::var_os("BLESS_DOCS").is_some() {
        let renewed = format!(
            "{}{generated}{}",
            &text[..start + begin.len()],
            &text[stop..]
        );
        std::fs::write(&path, renewed).expect("the page is written");
        return;
    }
    failures.push(format!(
        "{file}: `{name}` differs from what the code says; run `BLESS_DOCS=1 cargo test --test docs` and review the diff"
    ));
}

#[test]
fn the_references_say_what_the_code_says() {
    let mut failures = Vec::new();
    check_generated(
        "docs/src/reference/configuration.md",
        "configuration keys",
        &pc_autoscaler::config::keys::reference_table(),
        &mut failures,
    );
    check_generated(
        "docs/src/reference/cli.md",
        "command line",
        &pc_autoscaler::cli::manual::markdown(),
        &mut failures,
    );
    check_generated(
        "docs/src/reference/metrics.md",
        "metrics",
        &pc_autoscaler::metrics::reference::markdown(),
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_toml_example_is_a_valid_config_or_a_marked_fragment() {
    let mut failures = Vec::new();
    let mut complete = 0;
    for page in pages() {
        for block in blocks(&read(&page)) {
            let mut words = block.info.split_whitespace();
            if words.next() != Some("toml") {
                continue;
            }
            let place = format!("{}:{}", shown(&page), block.line);
            if words.any(|word| word == "fragment") {
                if let Err(error) = block.text.parse::<toml::Table>() {
                    failures.push(format!("{place}: a fragment that is not TOML: {error}"));
                }
                continue;
            }
            complete += 1;
            if let Err(errors) = pc_autoscaler::config::parse(&block.text, Path::new(&place)) {
                failures.push(format!(
                    "{place}: not a valid config (mark a part of one `toml fragment`):\n{errors}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(complete > 0, "no complete config was checked");
}

/// The words of a shell command line, quotes removed; `None` past a comment, pipe or
/// redirection.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (None, '#' | '|' | '>' | ';') if word.is_empty() && !started => break,
            (None, '&') if word.is_empty() => break,
            (None, c) => word.push(c),
        }
    }
    if started || !word.is_empty() {
        words.push(word);
    }
    words
}

/// A block's lines with shell continuations (`\` at the end) joined, each with the offset
/// of its first line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines: Vec<(usize, String)> = Vec::new();
    let mut continued = false;
    for (offset, line) in text.lines().enumerate() {
        let (body, continues) = match line.trim_end().strip_suffix('\\') {
            Some(body) => (body, true),
            None => (line, false),
        };
        match lines.last_mut() {
            Some((_, last)) if continued => {
                last.push(' ');
                last.push_str(body.trim_start());
            }
            _ => lines.push((offset, body.to_owned())),
        }
        continued = continues;
    }
    lines
}

#[test]
fn every_command_line_parses_with_the_real_cli() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for page in pages() {
        // Output and synopses (plain or `text` blocks) are not command lines.
        for block in blocks(&read(&page))
            .into_iter()
            .filter(|block| !matches!(block.info.as_str(), "" | "text"))
        {
            // A block that exports the config's variable runs its commands with it.
            let exported = block
                .text
                .lines()
                .find_map(|line| line.strip_prefix("export PC_AUTOSCALER_CONFIG="));
            for (offset, line) in logical_lines(&block.text) {
                let line = line.trim_start_matches("$ ").trim_start_matches("sudo ");
                let command = if let Some(rest) = line.strip_prefix("cargo run --release -- ") {
                    format!("pc-autoscaler {rest}")
                } else if line.starts_with("pc-autoscaler ") {
                    line.to_owned()
                } else {
                    continue;
                };
                checked += 1;
                let mut args = words(&command);
                if let Some(config) = exported.filter(|_| !args.iter().any(|arg| arg == "--config"))
                {
                    args.extend(["--config".to_owned(), config.to_owned()]);
                }
                let failed = match pc_autoscaler::cli::args::Cli::try_parse_from(&args) {
                    Ok(_) => None,
                    // `--version` and `--help` parse; clap reports them as errors to exit early.
                    Err(error)
                        if matches!(
                            error.kind(),
                            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
                        ) =>
                    {
                        None
                    }
                    Err(error) => Some(error),
                };
                if let Some(error) = failed {
                    failures.push(format!(
                        "{}:{}: `{command}` does not parse: {}",
                        shown(&page),
                        block.line + 1 + offset,
                        error.to_string().lines().next().unwrap_or_default()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 20, "only {checked} command lines found");
}

/// GitHub's and mdBook's anchor of a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut inside = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
        } else if !inside && line.starts_with('#') {
            found.insert(slug(line.trim_start_matches('#')));
        }
    }
    found
}

/// Every `](target)` of a page outside code.
fn links(text: &str) -> Vec<String> {
    let mut inside = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
            continue;
        }
        if inside {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                found.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    found
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut failures = Vec::new();
    for page in pages() {
        for link in links(&read(&page)) {
            if link.starts_with("http://")
                || link.starts_with("https://")
                || link.starts_with("mailto:")
            {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().expect("a page is in a directory").join(file)
            };
            if !target.exists() {
                failures.push(format!("{}: `{link}`: no such file", shown(&page)));
                continue;
            }
            if !anchor.is_empty() && !anchors(&read(&target)).contains(anchor) {
                failures.push(format!("{}: `{link}`: no such heading", shown(&page)));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_readme_is_short_and_every_task_is_one_click_from_it() {
    let readme = read(&root().join("README.md"));
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines");
    let summary = read(&root().join("docs/src/SUMMARY.md"));
    for task in links(&summary)
        .into_iter()
        .filter(|link| link.contains("tutorials/") || link.contains("how-to/"))
    {
        let from_readme = format!("docs/src/{task}");
        assert!(
            readme.contains(&from_readme),
            "README.md does not link {from_readme}"
        );
    }
}

/// The policy rows and the header of a `simulate` table, numbers left out.
fn shape(table: &str) -> Vec<String> {
    table
        .lines()
        .filter(|line| {
            line.starts_with("policy ")
                || line.starts_with("pc-autoscaler")
                || line.starts_with("aas-")
                || line.starts_with("oracle")
        })
        .map(|line| {
            line.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[test]
fn the_simulate_samples_have_the_rows_the_command_prints() {
    let config = root().join("config/example.toml");
    let output = common::run(&["simulate", "--config", config.to_str().expect("a path")]);
    assert!(output.status.success(), "{}", common::text(&output.stderr));
    let printed = shape(&common::text(&output.stdout));
    let mut samples = 0;
    for page in pages() {
        for block in blocks(&read(&page)) {
            if block.text.starts_with("trace synthetic-week") {
                samples += 1;
                assert_eq!(
                    shape(&block.text),
                    printed,
                    "{}:{}",
                    shown(&page),
                    block.line
                );
            }
        }
    }
    assert!(samples > 0, "no sample of `simulate` in the docs");
}
