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
    // and return what to do; the drivers (the daemon's, `run --once`'s, the elector,
    // the budget's dispatcher, the activity log's writer) carry it out.
    const DRIVERS: &[&str] = &[
        "src/runtime/daemon/",
        "src/runtime/once.rs",
        "src/runtime/elect.rs",
        "src/runtime/scheduler.rs",
        "src/runtime/activity.rs",
        "src/runtime/memory.rs",
        "src/runtime/override_store.rs",
        "src/runtime/discovery/reads.rs",
        "src/runtime/audit.rs",
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
        if DRIVERS.iter().any(|driver| relative.starts_with(driver))
            || relative.ends_with("/tests.rs")
            || relative.ends_with("control.rs")
            || relative.ends_with("series.rs")
        {
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
fn each_layer_imports_only_the_layers_below_it() {
    // Lowest first: what each top-level module may name of the crate besides itself.
    const LAYERS: &[(&str, &[&str])] = &[
        ("escape", &[]),
        ("config", &["escape"]),
        ("clock", &[]),
        ("trim", &[]),
        ("policy", &["config", "escape"]),
        ("simulate", &["config", "escape", "policy"]),
        ("leader", &["config", "escape", "policy"]),
        ("aws", &["clock", "config", "escape", "leader", "policy"]),
        ("metrics", &["aws", "config", "escape", "policy"]),
        ("audit", &["aws", "config", "escape", "policy", "simulate"]),
    ];
    let mut found = Vec::new();
    for (layer, allowed) in LAYERS {
        let files = match sources_if_any(&format!("src/{layer}")) {
            Some(files) => files,
            None => vec![(
                Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/{layer}.rs")),
                std::fs::read_to_string(
                    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/{layer}.rs")),
                )
                .expect("a module file"),
            )],
        };
        for (path, text) in files {
            for (number, line) in production_lines(&text) {
                for (at, _) in line.match_indices("crate::") {
                    let named: String = line[at + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if named != *layer && !allowed.contains(&named.as_str()) {
                        found.push(format!("{}:{number}: crate::{named}", path.display()));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "a layer imports one above it:\n{}",
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
        "src/check.rs",
        "src/plan.rs",
        "src/status.rs",
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
