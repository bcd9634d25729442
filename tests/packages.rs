//! What `scripts/package.sh` made, exercised on this machine (the test command runs the
//! script first): the Debian package listed, linted, installed, its unit verified and
//! scored, its start refused on a broken config, removed and purged; the container
//! image run with buildah against the local AWS endpoint; the man pages rendered and
//! the completions parsed.
//!
//! These change the machine (`dpkg -i` as root, buildah's image store), as a user
//! installing the package would; they run one at a time, and leave it as they found it.

#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use common::{PUT, free_port, text, wait_for};

/// One system-wide change at a time.
static MACHINE: Mutex<()> = Mutex::new(());

fn package_dir() -> PathBuf {
    common::repo_file("target/package")
}

/// The artifact of `package.sh` whose name ends with `suffix`.
fn artifact(suffix: &str) -> PathBuf {
    std::fs::read_dir(package_dir())
        .unwrap_or_else(|error| {
            panic!("target/package: {error}; scripts/package.sh makes it (scripts/test.sh runs it)")
        })
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no *{suffix} in target/package"))
}

fn tool(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{program} (scripts/test.sh installs it): {error}"))
}

fn succeeded(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

#[test]
fn the_debian_package_holds_its_files_and_passes_lintian() {
    let deb = artifact("_amd64.deb");
    let listed = succeeded(
        &tool("dpkg-deb", &["--contents", deb.to_str().expect("utf-8")]),
        "dpkg-deb --contents",
    );
    for path in [
        "./usr/bin/pc-autoscaler",
        "./lib/systemd/system/pc-autoscaler.service",
        "./etc/pc-autoscaler/config.toml",
        "./etc/pc-autoscaler/environment",
        "./usr/share/man/man1/pc-autoscaler.1.gz",
        "./usr/share/man/man1/pc-autoscaler-run.1.gz",
        "./usr/share/man/man1/pc-autoscaler-override-set.1.gz",
        "./usr/share/bash-completion/completions/pc-autoscaler",
        "./usr/share/zsh/vendor-completions/_pc-autoscaler",
        "./usr/share/fish/vendor_completions.d/pc-autoscaler.fish",
        "./usr/share/doc/pc-autoscaler/copyright",
        "./usr/share/doc/pc-autoscaler/iam/iam-policy.json",
        "./usr/share/doc/pc-autoscaler/grafana/pc-autoscaler.json",
        "./usr/share/doc/pc-autoscaler/prometheus/alerts.yml",
    ] {
        assert!(
            listed.contains(&format!("{path}\n")),
            "{path} is missing:\n{listed}"
        );
    }
    assert!(
        listed.lines().any(|line| line.starts_with("-rw-------")
            && line.ends_with("./etc/pc-autoscaler/environment")),
        "the environment file is 0600:\n{listed}"
    );
    let conffiles = succeeded(
        &tool(
            "dpkg-deb",
            &["--info", deb.to_str().expect("utf-8"), "conffiles"],
        ),
        "dpkg-deb --info conffiles",
    );
    assert_eq!(
        conffiles,
        "/etc/pc-autoscaler/config.toml\n/etc/pc-autoscaler/environment\n"
    );
    // Lintian: no error. The warnings left are explained in scripts/package.sh.
    let lint = tool(
        "lintian",
        &[
            "--tag-display-limit",
            "0",
            "--suppress-tags",
            ALLOWED_LINTIAN,
            deb.to_str().expect("utf-8"),
        ],
    );
    let report = text(&lint.stdout);
    assert!(
        report
            .lines()
            .all(|line| !line.starts_with("E:") && !line.starts_with("W:")),
        "{report}{}",
        text(&lint.stderr)
    );
}

/// What lintian says of this package that is as intended:
/// - `non-standard-file-perm` of `/etc/pc-autoscaler/environment`: 0600, since it holds
///   AWS credentials;
/// - `shared-library-lacks-prerequisites` of `/usr/bin/pc-autoscaler`: a static PIE
///   executable has the ELF type of a shared library, and lintian takes it for one that
///   names no libc; it links none.
const ALLOWED_LINTIAN: &str = "non-standard-file-perm,shared-library-lacks-prerequisites";

#[test]
fn the_package_installs_verifies_refuses_a_broken_config_and_purges_leaving_the_state() {
    let _machine = MACHINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let deb = artifact("_amd64.deb");
    // Whatever an earlier run left.
    let _ = tool("dpkg", &["--purge", "pc-autoscaler"]);
    succeeded(
        &tool("dpkg", &["-i", deb.to_str().expect("utf-8")]),
        "dpkg -i",
    );
    let shown = succeeded(&tool("/usr/bin/pc-autoscaler", &["--version"]), "--version");
    assert!(
        shown.starts_with(&format!("pc-autoscaler {} (commit ", version())),
        "{shown}"
    );
    let user = succeeded(&tool("getent", &["passwd", "pc-autoscaler"]), "getent");
    assert!(user.contains("/var/lib/pc-autoscaler"), "{user}");
    let state = std::fs::metadata("/var/lib/pc-autoscaler").expect("the state directory");
    {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        assert_eq!(state.permissions().mode() & 0o777, 0o700);
        let uid: u32 = succeeded(&tool("id", &["-u", "pc-autoscaler"]), "id")
            .trim()
            .parse()
            .expect("a uid");
        assert_eq!(state.uid(), uid);
    }
    let unit = "/lib/systemd/system/pc-autoscaler.service";
    succeeded(
        &tool("systemd-analyze", &["verify", unit]),
        "systemd-analyze verify",
    );
    let security = succeeded(
        &tool("systemd-analyze", &["security", "--offline=true", unit]),
        "systemd-analyze security",
    );
    let exposure: f64 = security
        .lines()
        .find_map(|line| {
            line.split("Overall exposure level for pc-autoscaler.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .expect("an exposure level");
    assert!(exposure <= 2.0, "{security}");
    // The installed config passes the unit's own check; a broken one does not.
    let start_check = std::fs::read_to_string(unit)
        .expect("the unit")
        .lines()
        .find_map(|line| line.strip_prefix("ExecStartPre="))
        .expect("ExecStartPre")
        .to_owned();
    let words: Vec<&str> = start_check.split_whitespace().collect();
    succeeded(
        &tool(words[0], &words[1..]),
        "the packaged config passes check",
    );
    let (_dir, broken) = common::write_config("broken.toml", "[daemon]\ninterval = \"soon\"\n");
    let broken_check = start_check.replace(
        "/etc/pc-autoscaler/config.toml",
        broken.to_str().expect("utf-8"),
    );
    let words: Vec<&str> = broken_check.split_whitespace().collect();
    let refused = tool(words[0], &words[1..]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    // Remove keeps the config; purge removes it and keeps the state, saying so.
    succeeded(&tool("dpkg", &["-r", "pc-autoscaler"]), "dpkg -r");
    assert!(!Path::new("/usr/bin/pc-autoscaler").exists());
    assert!(Path::new("/etc/pc-autoscaler/config.toml").exists());
    let purged = succeeded(&tool("dpkg", &["--purge", "pc-autoscaler"]), "dpkg --purge");
    assert!(!Path::new("/etc/pc-autoscaler/config.toml").exists());
    assert!(
        Path::new("/var/lib/pc-autoscaler").is_dir(),
        "the state is never deleted silently"
    );
    assert!(
        purged.contains("its state is kept in /var/lib/pc-autoscaler"),
        "{purged}"
    );
    let _ = std::fs::remove_dir_all("/var/lib/pc-autoscaler");
}

/// The pid of the process run as `program` (its first argument), not buildah's.
fn pid_of(program: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let command = std::fs::read(entry.path().join("cmdline")).ok()?;
            let first = command.split(|byte| *byte == 0).next()?;
            (first == program.as_bytes()).then_some(pid)
        })
}

#[test]
fn the_image_runs_the_daemon_as_a_non_root_user_against_the_local_endpoint() {
    let _machine = MACHINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let archive = artifact(".oci.tar");
    let endpoint = common::endpoint_wanting_100();
    let port = free_port();
    let dir = tempfile::tempdir().expect("a config directory");
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[aws]\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\n[daemon]\ninterval = \"1s\"\n{}",
            endpoint.url,
            common::tracked_target("f", "live")
        ),
    )
    .expect("the config");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("readable by the image's user");
    let buildah = |args: &[&str]| {
        tool(
            "buildah",
            &[&["--storage-driver", "vfs"][..], args].concat(),
        )
    };
    let container = succeeded(
        &buildah(&[
            "from",
            "--quiet",
            &format!("oci-archive:{}", archive.display()),
        ]),
        "buildah from",
    )
    .trim()
    .to_owned();
    let mount = format!("{}:/etc/pc-autoscaler:ro", dir.path().display());
    let listen = format!("PC_AUTOSCALER_LISTEN=127.0.0.1:{port}");
    let mut daemon = Command::new("buildah")
        .args([
            "--storage-driver",
            "vfs",
            "run",
            "--isolation",
            "chroot",
            "--volume",
            &mount,
        ])
        .args(["--env", &listen, "--env", "AWS_ACCESS_KEY_ID=AKIDTEST"])
        .args([
            "--env",
            "AWS_SECRET_ACCESS_KEY=test-secret",
            "--env",
            "AWS_EC2_METADATA_DISABLED=true",
        ])
        .args([
            &container,
            "--",
            "/usr/bin/pc-autoscaler",
            "run",
            "--config",
            "/etc/pc-autoscaler/config.toml",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("buildah runs");
    let address = format!("127.0.0.1:{port}");
    let healthy = wait_for(Duration::from_secs(30), || {
        common::http_get(&address, "/healthz").is_some_and(|(status, _)| status == 200)
    });
    let put = healthy
        && wait_for(Duration::from_secs(30), || {
            !common::puts_of(&endpoint, 100).is_empty()
        });
    let uid = pid_of("/usr/bin/pc-autoscaler").and_then(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            .map(str::to_owned)
    });
    let _ = daemon.kill();
    let stderr = daemon
        .wait_with_output()
        .map(|output| text(&output.stderr))
        .unwrap_or_default();
    let _ = buildah(&["rm", &container]);
    assert!(healthy, "/healthz did not answer:\n{stderr}");
    assert!(
        put,
        "no put of 100:\n{stderr}\n{:?}",
        endpoint.world().requests(PUT)
    );
    assert_eq!(
        uid.as_deref(),
        Some("65532"),
        "the daemon runs as the image's user"
    );
}

#[test]
fn the_image_is_small_and_holds_nothing_but_the_binary_its_certificates_and_user() {
    let archive = artifact(".oci.tar");
    let size = std::fs::metadata(&archive).expect("the image").len();
    assert!(size < 20 * 1024 * 1024, "{size} bytes");
    let dockerfile = std::fs::read_to_string(common::repo_file("Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.contains("FROM scratch"));
    let root = package_dir().join("image-root");
    let mut files: Vec<String> = walk(&root)
        .into_iter()
        .map(|path| {
            path.strip_prefix(&root)
                .expect("under the root")
                .display()
                .to_string()
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "etc/group",
            "etc/passwd",
            "etc/ssl/certs/ca-certificates.crt",
            "usr/bin/pc-autoscaler"
        ]
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn the_man_pages_render_without_warnings_and_the_bash_completion_parses() {
    let man = package_dir().join("stage/man");
    let pages: Vec<PathBuf> = walk(&man);
    assert!(pages.len() >= 10, "{pages:?}");
    for page in pages {
        let output = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .expect("man (scripts/test.sh installs man-db)");
        assert!(
            output.status.success(),
            "{}: {}",
            page.display(),
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).is_empty(),
            "{}: {}",
            page.display(),
            text(&output.stderr)
        );
        assert!(text(&output.stdout).contains("pc-autoscaler"));
    }
    let completion = package_dir().join("stage/completions/pc-autoscaler.bash");
    succeeded(
        &tool("bash", &["-n", completion.to_str().expect("utf-8")]),
        "bash -n",
    );
    let tarball = artifact("-x86_64-linux-musl.tar.gz");
    let listed = succeeded(
        &tool("tar", &["-tzf", tarball.to_str().expect("utf-8")]),
        "tar -t",
    );
    let name = format!("pc-autoscaler-{}-x86_64-linux-musl", version());
    for file in [
        "pc-autoscaler",
        "LICENSE",
        "README.md",
        "man/pc-autoscaler.1",
        "completions/_pc-autoscaler",
        "systemd/pc-autoscaler.service",
        "config/example.toml",
    ] {
        assert!(
            listed.contains(&format!("{name}/{file}\n")),
            "{file}:\n{listed}"
        );
    }
    let sums = std::fs::read_to_string(package_dir().join("SHA256SUMS")).expect("SHA256SUMS");
    assert_eq!(sums.lines().count(), 3, "{sums}");
    let checked = Command::new("sha256sum")
        .args(["--check", "SHA256SUMS"])
        .current_dir(package_dir())
        .output()
        .expect("sha256sum");
    succeeded(&checked, "sha256sum --check");
}
