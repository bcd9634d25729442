//! Helpers shared by the integration tests: run the real binary, write configs.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod aws_endpoint;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built `pc-autoscaler` binary.
pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pc-autoscaler"))
}

/// Runs the binary with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    binary().args(args).output().expect("the binary runs")
}

/// Writes `text` to `name` in a fresh temporary directory (kept alive by the return value).
pub fn write_config(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("the config is written");
    (dir, path)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The repository's own files (config/example.toml, ...).
pub fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// `../shared/traces/NAME` beside the project.
pub fn shared_trace(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/traces")
        .join(name)
}

/// Runs the binary against a local endpoint, with test credentials and nothing from
/// the machine's AWS configuration.
pub fn run_against_aws(args: &[&str]) -> Output {
    binary()
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env_remove("AWS_PROFILE")
        .env("RUST_LOG", "info")
        .output()
        .expect("the binary runs")
}

/// A config whose `[aws]` points at `endpoint`, followed by `body` (targets, daemon keys).
pub fn aws_config(endpoint: &str, daemon: &str, targets: &str) -> (tempfile::TempDir, PathBuf) {
    write_config(
        "aws.toml",
        &format!(
            "[aws]\nendpoint_url = \"{endpoint}\"\nregion = \"us-east-1\"\ntimeout = \"2s\"\n[daemon]\n{daemon}\n{targets}"
        ),
    )
}
