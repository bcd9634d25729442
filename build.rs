//! Build script: the commit the binary is built from, for `--version`. From
//! `PC_AUTOSCALER_COMMIT` when set (a release built outside a clone), else from git,
//! else `unknown`. It must not fail the build: a tarball without git still builds.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|text| !text.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=PC_AUTOSCALER_COMMIT");
    let commit = std::env::var("PC_AUTOSCALER_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PC_AUTOSCALER_COMMIT={commit}");
    // Built again when the commit moves: HEAD, and the branch it names.
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git(&["rev-parse", "--git-path", &branch])
    {
        println!("cargo:rerun-if-changed={path}");
    }
}
