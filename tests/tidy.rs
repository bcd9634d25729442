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

#[test]
fn the_pure_runtime_modules_read_no_clock_and_send_nothing() {
    // Time and randomness come in as arguments; requests go through `control` only.
    const PURE: &[&str] = &[
        "src/runtime/budget.rs",
        "src/runtime/actuator.rs",
        "src/runtime/evaluate.rs",
        "src/runtime/known.rs",
        "src/runtime/daemon/chores.rs",
    ];
    const FORBIDDEN: &[&str] = &[
        "::now(",
        "elapsed()",
        "SystemTime",
        "fastrand",
        "tokio::spawn",
        "tokio::time::sleep",
        "LambdaApi",
        "MetricsApi",
    ];
    let mut found = Vec::new();
    for relative in PURE {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        let text = std::fs::read_to_string(&path).expect("the file is readable");
        let production = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (number, line) in production.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for word in FORBIDDEN {
                if line.contains(word) {
                    found.push(format!("{relative}:{}: {word}", number + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "pure modules must stay pure:\n{}",
        found.join("\n")
    );
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
