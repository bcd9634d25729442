//! Helpers shared by the integration tests: run the real binary, write configs.

// Tests and benchmarks drive real processes and servers in real time, not through
// the daemon's injected clock.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod aws_endpoint;
pub mod fleet;
pub mod moto;
pub mod prometheus;
pub mod proxy;

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

/// The binary with test credentials and nothing from the machine's AWS configuration
/// or a supervisor's notify socket.
pub fn binary_for_aws() -> Command {
    let mut command = binary();
    command
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("NOTIFY_SOCKET")
        .env("RUST_LOG", "info");
    command
}

/// Runs the binary against a local endpoint (see `binary_for_aws`).
pub fn run_against_aws(args: &[&str]) -> Output {
    binary_for_aws()
        .args(args)
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

pub const PUT: &str = "PutProvisionedConcurrencyConfig";
pub const DELETE: &str = "DeleteProvisionedConcurrencyConfig";

/// `[daemon]` keys for a daemon under test: its port, its interval, a 20 s grace.
pub fn daemon_settings(port: u16, interval: &str) -> String {
    format!("listen = \"127.0.0.1:{port}\"\ninterval = \"{interval}\"\nshutdown_grace = \"20s\"")
}

/// Every put the endpoint saw, as (value, HTTP status), in order.
pub fn put_outcomes(endpoint: &aws_endpoint::Endpoint) -> Vec<(Option<u32>, u16)> {
    endpoint
        .world()
        .requests(PUT)
        .iter()
        .map(|put| (put.value, put.status))
        .collect()
}

/// The successful puts of `value` the endpoint saw.
pub fn puts_of(endpoint: &aws_endpoint::Endpoint, value: u32) -> Vec<aws_endpoint::Logged> {
    endpoint
        .world()
        .requests(PUT)
        .into_iter()
        .filter(|put| put.value == Some(value) && put.status == 202)
        .collect()
}

/// A free port on 127.0.0.1 (bound and released; the daemon binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free local port")
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
pub fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    http_get_within(address, path, std::time::Duration::from_secs(5))
}

/// [`http_get`] that gives up after `limit` for connecting and for each read. The
/// client `pc-autoscaler status` uses (chunked bodies, as Prometheus sends, decoded).
pub fn http_get_within(
    address: &str,
    path: &str,
    limit: std::time::Duration,
) -> Option<(u16, String)> {
    pc_autoscaler::cli::status::http_get(address, path, limit).ok()
}

/// Polls `condition` every 100 ms until it holds or `limit` passes.
pub fn wait_for(limit: std::time::Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    condition()
}

/// A running daemon (`pc-autoscaler run`), killed when dropped.
pub struct Daemon {
    pub child: std::process::Child,
    pub address: String,
    pub stderr_path: PathBuf,
}

impl Daemon {
    /// Starts `run --config path`, with stderr to a file, test AWS credentials and `env`.
    pub fn start(config: &Path, address: &str, env: &[(&str, &str)]) -> Self {
        Self::start_with(config, address, env, &[])
    }

    /// As [`Daemon::start`], with more arguments for `run`.
    pub fn start_with(config: &Path, address: &str, env: &[(&str, &str)], args: &[&str]) -> Self {
        let stderr_path = config.with_extension("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("a log file");
        let mut command = binary_for_aws();
        command
            .args(["run", "--config", config.to_str().expect("utf-8 path")])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(stderr);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("the daemon starts");
        Self {
            child,
            address: address.to_owned(),
            stderr_path,
        }
    }

    /// Waits until `/readyz` answers 200; panics with the daemon's log otherwise.
    pub fn wait_ready(&mut self) {
        let ready = wait_for(std::time::Duration::from_secs(30), || {
            http_get(&self.address, "/readyz").is_some_and(|(status, _)| status == 200)
        });
        assert!(ready, "the daemon did not become ready:\n{}", self.log());
    }

    /// The status of `path`, or `None` when it does not answer within 1 s: what a
    /// Kubernetes probe with `timeoutSeconds: 1` sees.
    pub fn probe(&self, path: &str) -> Option<u16> {
        http_get_within(&self.address, path, std::time::Duration::from_secs(1))
            .map(|(status, _)| status)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits up to `limit` for a successful put of `value`; panics with the log if none.
    pub fn wait_for_put(
        &self,
        endpoint: &aws_endpoint::Endpoint,
        value: u32,
        limit: std::time::Duration,
    ) {
        assert!(
            wait_for(limit, || !puts_of(endpoint, value).is_empty()),
            "no put of {value} within {limit:?}:\n{}",
            self.log()
        );
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// The value of one sample line of `/metrics`, e.g. `pc_autoscaler_config_reloads_total{outcome="failure"}`.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = http_get(&self.address, "/metrics")?;
        body.lines().find_map(|line| {
            line.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tracked target `f:live` that wants 100 (peak 70 at target 0.7), plus `extra`.
/// Reactive (`forecast` and `choose_window` off): these tests count the reads and
/// writes of the write course, which a history read at start would add to; the
/// default policy has tests of its own (`plan_shows_the_forecast_it_reads...`,
/// `tests/accounts.rs`, `tests/audit.rs`).
pub fn tracked_target(function: &str, qualifier: &str) -> String {
    format!(
        "[[target]]\nfunction = \"{function}\"\nqualifier = \"{qualifier}\"\nmin = 1\nmax = 1000\n\
         tracking = {{ metric = \"concurrency\", target = 0.7, forecast = \"off\", choose_window = \"off\" }}\n"
    )
}

pub fn run_once(
    endpoint: &aws_endpoint::Endpoint,
    daemon: &str,
    targets: &str,
    extra: &[&str],
) -> std::process::Output {
    let (_dir, config) = aws_config(&endpoint.url, daemon, targets);
    let config = config.display().to_string();
    let mut args = vec![
        "run",
        "--once",
        "--config",
        &config,
        "--poll-interval",
        "100ms",
        "--wait",
        "30s",
    ];
    args.extend_from_slice(extra);
    run_against_aws(&args)
}

/// `plan --json` against `endpoint`: the process output and the parsed rows.
pub fn plan_json(
    endpoint: &aws_endpoint::Endpoint,
    daemon: &str,
    targets: &str,
) -> (std::process::Output, serde_json::Value) {
    let (output, rows) = plan_json_any_status(endpoint, daemon, targets);
    assert!(output.status.success(), "{}", text(&output.stderr));
    (output, rows)
}

/// As [`plan_json`], for plans that are expected to fail (nothing could be read).
pub fn plan_json_any_status(
    endpoint: &aws_endpoint::Endpoint,
    daemon: &str,
    targets: &str,
) -> (std::process::Output, serde_json::Value) {
    let (_dir, config) = aws_config(&endpoint.url, daemon, targets);
    let output = run_against_aws(&[
        "plan",
        "--config",
        config.to_str().expect("utf-8"),
        "--json",
    ]);
    let rows = serde_json::from_str(&text(&output.stdout)).expect("plan --json is JSON");
    (output, rows)
}

/// An endpoint where `f:live` peaked at 70: at target 0.7 it wants 100.
pub fn endpoint_wanting_100() -> aws_endpoint::Endpoint {
    let endpoint = aws_endpoint::Endpoint::start();
    endpoint
        .world()
        .set_concurrency("f", "live", &[50.0, 70.0], 2);
    endpoint
}

/// A daemon on a free port, every `interval`, with the one tracked target of
/// [`tracked_target`] against `endpoint`. The directory holds its config.
pub fn tracked_daemon(
    endpoint: &aws_endpoint::Endpoint,
    interval: &str,
) -> (tempfile::TempDir, PathBuf, Daemon) {
    let port = free_port();
    let (dir, config) = aws_config(
        &endpoint.url,
        &daemon_settings(port, interval),
        &tracked_target("f", "live"),
    );
    let daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    (dir, config, daemon)
}

/// `promtool check metrics` passes on an exposition `body`: names, types, help.
pub fn promtool_check_metrics(body: &str) {
    use std::io::Write as _;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test.sh installs the prometheus package)");
    promtool
        .stdin
        .take()
        .expect("a piped stdin")
        .write_all(body.as_bytes())
        .expect("promtool reads the metrics");
    let output = promtool.wait_with_output().expect("promtool ends");
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}
