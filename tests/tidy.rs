//! Repository hygiene, checked on every test run: every source file opens with a `//!`
//! doc saying what it is for, and the policy core stays pure.

// Tests and benchmarks drive real processes and servers in real time, not through
// the daemon's injected clock.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the directory is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

fn sources(under: &str) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(under),
        &mut files,
    );
    assert!(!files.is_empty(), "no Rust files under {under}");
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("the file is readable");
            (path, text)
        })
        .collect()
}

#[test]
fn every_module_starts_with_a_module_doc() {
    let mut missing = Vec::new();
    for under in ["src", "tests", "benches"] {
        for (path, text) in sources(under) {
            if !text.trim_start().starts_with("//!") {
                missing.push(path.display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "files without a `//!` module doc:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_policy_core_reads_no_clock_environment_or_io_and_knows_no_runtime() {
    const FORBIDDEN: &[&str] = &[
        "tokio",
        "aws_sdk",
        "aws_config",
        "Utc::now",
        "Local::now",
        "SystemTime",
        "Instant",
        "std::env",
        "std::fs",
        "std::net",
        "std::thread",
        "println!",
        "eprintln!",
        "crate::aws",
        "fastrand",
        "rand::",
    ];
    let mut found = Vec::new();
    for (path, text) in sources("src/policy") {
        for (number, line) in text.lines().enumerate() {
            // Docs may name what the code must not use.
            if line.trim_start().starts_with("//") {
                continue;
            }
            for word in FORBIDDEN {
                if line.contains(word) {
                    found.push(format!("{}:{}: {word}", path.display(), number + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "src/policy must stay pure:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_unwrap_anywhere_in_the_library() {
    // Tests included: an `expect` says what was expected when it fails.
    let mut found = Vec::new();
    for (path, text) in sources("src") {
        for (number, line) in text.lines().enumerate() {
            if line.contains(".unwrap()") {
                found.push(format!("{}:{}", path.display(), number + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "`unwrap()` in the library (use `expect` with the invariant):\n{}",
        found.join("\n")
    );
}

/// The lines of `text` before its tests, without comment lines.
fn production_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let production = text.split("#[cfg(test)]").next().unwrap_or_default();
    production
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(number, line)| (number + 1, line))
}

#[test]
fn only_the_drivers_spawn_tasks_or_read_clocks() {
    // The shard core and the other pure parts take time and randomness as arguments
    // and return what to do; the drivers carry it out. Besides the `drivers` room,
    // only these parts of the runtime hold clients, tasks or clocks, each for one job.
    const IO: &[&str] = &[
        // The only sender of Lambda requests, and its budget's dispatcher task.
        "src/runtime/plane/",
        // The metric reads of a pass and of a history.
        "src/runtime/knowing/series.rs",
        // Discovery's reads.
        "src/runtime/discovery/reads.rs",
        // The state directory's files (from the stores' blocking tasks), the stores
        // of the overrides and the snapshot, and the activity log's writer.
        "src/runtime/state/files.rs",
        "src/runtime/state/overrides/store.rs",
        "src/runtime/state/snapshot/store.rs",
        "src/runtime/state/activity.rs",
        "src/runtime/drivers/",
    ];
    const FORBIDDEN: &[&str] = &[
        "::now(",
        "elapsed()",
        "SystemTime",
        "fastrand::f64",
        "fastrand::u64",
        "spawn(",
        "JoinSet",
        "tokio::time::sleep",
        "std::thread",
        "LambdaApi",
        "MetricsApi",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for (path, text) in sources("src/runtime") {
        let relative = path
            .strip_prefix(root)
            .expect("under the crate")
            .to_string_lossy()
            .into_owned();
        // `tests.rs` files are test modules as a whole.
        if IO.iter().any(|part| relative.starts_with(part)) || relative.ends_with("/tests.rs") {
            continue;
        }
        for (number, line) in production_lines(&text) {
            for word in FORBIDDEN {
                if line.contains(word) {
                    found.push(format!("{relative}:{number}: {word}"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "only the drivers spawn tasks or read clocks:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_shard_imports_no_driver_client_task_or_channel() {
    // The shard is sans-IO: it may use `aws`'s plain data types (errors, configs,
    // series) and tokio's `Instant`, never what sends, spawns or waits.
    const FORBIDDEN: &[&str] = &[
        "crate::runtime::drivers",
        "crate::runtime::plane::control",
        "crate::runtime::plane::scheduler",
        "crate::runtime::knowing::series",
        "crate::runtime::discovery::reads",
        "Control<",
        "LambdaApi",
        "MetricsApi",
        "TaggingApi",
        "tokio::sync",
        "tokio::task",
        "tokio::spawn",
        "mpsc",
        "oneshot",
        "std::thread",
        "std::fs",
        "std::net",
        "async fn",
        ".await",
    ];
    let mut found = Vec::new();
    for (path, text) in sources("src/runtime/shard") {
        if path.ends_with("tests.rs") {
            continue;
        }
        for (number, line) in production_lines(&text) {
            for word in FORBIDDEN {
                if line.contains(word) {
                    found.push(format!("{}:{number}: {word}", path.display()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the shard is sans-IO:\n{}",
        found.join("\n")
    );
}

/// The crate's layers, lowest first, with what each may name of the crate besides
/// itself. ARCHITECTURE.md states the same order.
const LAYERS: &[(&str, &[&str])] = &[
    ("escape", &[]),
    ("config", &["escape"]),
    ("clock", &[]),
    ("trim", &[]),
    ("policy", &["config", "escape"]),
    ("simulate", &["config", "escape", "policy"]),
    ("leader", &["config", "escape", "policy"]),
    ("aws", &["clock", "config", "escape", "leader", "policy"]),
    ("metrics", &["aws", "config", "escape", "leader", "policy"]),
    (
        "runtime",
        &[
            "aws", "clock", "config", "escape", "leader", "metrics", "policy", "trim",
        ],
    ),
    (
        "audit",
        &[
            "aws", "clock", "config", "escape", "policy", "runtime", "simulate",
        ],
    ),
    (
        "migrate",
        &[
            "audit", "aws", "clock", "config", "escape", "policy", "runtime", "simulate",
        ],
    ),
    (
        "cli",
        &[
            "audit", "aws", "clock", "config", "escape", "leader", "metrics", "migrate", "policy",
            "runtime", "simulate",
        ],
    ),
];

/// The rooms of `runtime`, lowest first: each may name only the rooms before it.
const RUNTIME_ROOMS: &[&str] = &[
    "plane",
    "state",
    "knowing",
    "course",
    "discovery",
    "shard",
    "drivers",
];

/// The names that follow each `prefix` in `line`: `crate::runtime::` gives `shard`.
fn named_after<'a>(line: &'a str, prefix: &'a str) -> impl Iterator<Item = String> + 'a {
    line.match_indices(prefix).map(move |(at, _)| {
        line[at + prefix.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    })
}

fn layer_files(layer: &str) -> Vec<(PathBuf, String)> {
    sources_if_any(&format!("src/{layer}")).unwrap_or_else(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/{layer}.rs"));
        let text = std::fs::read_to_string(&path).expect("a module file");
        vec![(path, text)]
    })
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let mut found = Vec::new();
    for (layer, allowed) in LAYERS {
        for (path, text) in layer_files(layer) {
            for (number, line) in production_lines(&text) {
                for named in named_after(line, "crate::") {
                    if named != *layer && !allowed.contains(&named.as_str()) {
                        found.push(format!("{}:{number}: crate::{named}", path.display()));
                    }
                }
            }
        }
    }
    let listed: Vec<&str> = LAYERS.iter().map(|(layer, _)| *layer).collect();
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
        .expect("src is readable")
    {
        let name = entry.expect("an entry").file_name();
        let name = name.to_string_lossy();
        let module = name.trim_end_matches(".rs");
        if !["lib", "main", "test_alloc"].contains(&module) && !listed.contains(&module) {
            found.push(format!("src/{name}: not in a layer"));
        }
    }
    assert!(
        found.is_empty(),
        "a layer imports one above it:\n{}",
        found.join("\n")
    );
}

#[test]
fn each_room_of_the_runtime_imports_only_the_rooms_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/runtime");
    let mut found = Vec::new();
    let entries: Vec<_> = std::fs::read_dir(&root)
        .expect("src/runtime is readable")
        .collect();
    assert!(
        entries.len() <= 8,
        "src/runtime holds {} entries; a newcomer finds a room among at most 8",
        entries.len()
    );
    for entry in entries {
        let name = entry.expect("an entry").file_name();
        let name = name.to_string_lossy().into_owned();
        if name != "mod.rs" && !RUNTIME_ROOMS.contains(&name.as_str()) {
            found.push(format!("src/runtime/{name}: not a room"));
        }
    }
    for (rank, room) in RUNTIME_ROOMS.iter().enumerate() {
        let below = &RUNTIME_ROOMS[..rank];
        for (path, text) in sources(&format!("src/runtime/{room}")) {
            for (number, line) in production_lines(&text) {
                for named in named_after(line, "crate::runtime::") {
                    if named != *room && !below.contains(&named.as_str()) {
                        found.push(format!(
                            "{}:{number}: crate::runtime::{named}",
                            path.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "a room of the runtime imports one above it:\n{}",
        found.join("\n")
    );
}

fn sources_if_any(under: &str) -> Option<Vec<(PathBuf, String)>> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(under)
        .is_dir()
        .then(|| sources(under))
}

#[test]
fn only_the_command_line_prints_and_renderers_escape_what_they_quote() {
    // Terminal output is built by the renderers (`check`, `plan`, `status`, `simulate`)
    // and printed by `main.rs` alone; the renderers that quote strings from outside pass
    // them through `escape`.
    let mut found = Vec::new();
    for (path, text) in sources("src") {
        if path.ends_with("main.rs") {
            continue;
        }
        for (number, line) in production_lines(&text) {
            if ["println!", "print!(", "eprintln!", "eprint!("]
                .iter()
                .any(|word| line.contains(word))
            {
                found.push(format!("{}:{number}", path.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "printing outside main.rs:\n{}",
        found.join("\n")
    );
    for renderer in [
        "src/cli/check.rs",
        "src/cli/plan.rs",
        "src/cli/status.rs",
        "src/config/error.rs",
    ] {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(renderer))
            .expect("readable");
        assert!(
            text.contains("crate::escape"),
            "{renderer} quotes outside strings without escaping them"
        );
    }
}

#[test]
fn control_flow_does_not_run_on_strings() {
    // Labels are for people and metrics; decisions test enums.
    const FORBIDDEN: &[&str] = &[
        ".starts_with(\"held",
        "== \"informed\"",
        ".replace('_', \" \")",
    ];
    let mut found = Vec::new();
    for (path, text) in sources("src") {
        for (number, line) in production_lines(&text) {
            if FORBIDDEN.iter().any(|word| line.contains(word)) {
                found.push(format!("{}:{number}", path.display()));
            }
        }
    }
    assert!(found.is_empty(), "string tests:\n{}", found.join("\n"));
}

#[test]
fn only_control_sends_lambda_requests() {
    const REQUESTS: &[&str] = &[
        ".provisioned_config(",
        ".put_provisioned_config(",
        ".delete_provisioned_config(",
        ".provisioned_configs(",
        ".reserved_concurrency(",
        ".unreserved_concurrency(",
        ".weighted_aliases(",
    ];
    let mut found = Vec::new();
    for (path, text) in sources("src/runtime") {
        let allowed = path.ends_with("control.rs") || path.ends_with("memory.rs");
        for (number, line) in text.lines().enumerate() {
            if !allowed && REQUESTS.iter().any(|request| line.contains(request)) {
                found.push(format!("{}:{}", path.display(), number + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "Lambda requests outside runtime/control.rs:\n{}",
        found.join("\n")
    );
}

/// Whether `path` is a test module as a whole (its lines are all test lines).
fn is_test_module(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    [
        "tests.rs",
        "properties.rs",
        "test_support.rs",
        "virtual_time.rs",
        "test_alloc.rs",
        "memory.rs",
    ]
    .contains(&name.as_ref())
}

#[test]
fn every_module_doc_says_what_it_must_not_do() {
    let mut missing = Vec::new();
    for (path, text) in sources("src") {
        if is_test_module(&path) {
            continue;
        }
        let doc: Vec<&str> = text
            .lines()
            .take_while(|line| line.starts_with("//!"))
            .collect();
        if !doc.iter().any(|line| line.contains("must not")) {
            missing.push(path.display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "module docs that do not say what the module must not do:\n{}",
        missing.join("\n")
    );
}

/// Where `line` opens a function with a body: its indent, or `None`.
fn function_start(line: &str) -> Option<usize> {
    let trimmed = line.trim_start();
    let rest = ["pub(crate) ", "pub(super) ", "pub "]
        .iter()
        .find_map(|visibility| trimmed.strip_prefix(visibility))
        .unwrap_or(trimmed);
    let rest = ["const ", "async ", "unsafe "]
        .iter()
        .fold(rest, |rest, word| rest.strip_prefix(word).unwrap_or(rest));
    rest.starts_with("fn ").then(|| line.len() - trimmed.len())
}

/// Each function of `lines` with a body: its first line (1-based) and its length,
/// from `fn` to its closing brace at the same indent.
fn function_lengths(lines: &[&str]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(indent) = function_start(line) else {
            continue;
        };
        // A signature ends at `{` (a body) or `;` (a declaration).
        let Some(open) = (index..lines.len())
            .find(|&at| lines[at].trim_end().ends_with('{') || lines[at].trim_end().ends_with(';'))
        else {
            continue;
        };
        if lines[open].trim_end().ends_with(';') {
            continue;
        }
        let closing = format!("{}}}", " ".repeat(indent));
        if let Some(end) = (open..lines.len()).find(|&at| lines[at].starts_with(&closing)) {
            found.push((index + 1, end - index + 1));
        }
    }
    found
}

#[test]
fn no_file_or_function_is_too_long_outside_tests() {
    const MAX_FILE_LINES: usize = 800;
    const MAX_FUNCTION_LINES: usize = 80;
    let mut found = Vec::new();
    for (path, text) in sources("src") {
        if is_test_module(&path) {
            continue;
        }
        let production: Vec<&str> = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .lines()
            .collect();
        if production.len() > MAX_FILE_LINES {
            found.push(format!(
                "{}: {} lines before its tests",
                path.display(),
                production.len()
            ));
        }
        for (line, length) in function_lengths(&production) {
            if length > MAX_FUNCTION_LINES {
                found.push(format!(
                    "{}:{line}: a function of {length} lines",
                    path.display()
                ));
            }
        }
    }
    assert!(found.is_empty(), "too long:\n{}", found.join("\n"));
}

/// The room of a source file: its top-level module, or a room of `runtime`.
fn room_of(path: &Path) -> String {
    let relative = path
        .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
        .expect("under src");
    let parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    match parts.as_slice() {
        [runtime, room, _, ..] if runtime == "runtime" => format!("runtime/{room}"),
        [first, ..] => first.clone(),
        [] => String::new(),
    }
}

#[test]
fn no_two_types_share_a_name_across_rooms() {
    let mut rooms_of: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for (path, text) in sources("src") {
        if is_test_module(&path) {
            continue;
        }
        for (_, line) in production_lines(&text) {
            let trimmed = line.trim_start();
            let declared = ["pub(crate) ", "pub(super) ", "pub "]
                .iter()
                .find_map(|visibility| trimmed.strip_prefix(visibility))
                .unwrap_or(trimmed);
            // Associated types (`type Error = …;` in an impl) are indented.
            let named = ["struct ", "enum ", "trait "]
                .iter()
                .find_map(|word| declared.strip_prefix(word))
                .or_else(|| {
                    (line == trimmed)
                        .then(|| declared.strip_prefix("type "))
                        .flatten()
                });
            if let Some(rest) = named {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rooms_of.entry(name).or_default().insert(room_of(&path));
            }
        }
    }
    let shared: Vec<String> = rooms_of
        .into_iter()
        .filter(|(_, rooms)| rooms.len() > 1)
        .map(|(name, rooms)| format!("{name}: {rooms:?}"))
        .collect();
    assert!(
        shared.is_empty(),
        "types that share a name across rooms:\n{}",
        shared.join("\n")
    );
}
