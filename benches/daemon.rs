//! The daemon's footprint: 1,000 tracked targets against the local test endpoint, one
//! evaluation every 5 s for 60 s; prints resident memory and CPU time per cycle.
//!
//! `bash scripts/bench-daemon.sh` (or `cargo bench --bench daemon`).

#[path = "../tests/common/aws_endpoint.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the test endpoint")]
mod aws_endpoint;

use std::time::{Duration, Instant};

const TARGETS: usize = 1_000;
const INTERVAL_SECONDS: u64 = 5;
const RUN_SECONDS: u64 = 60;

/// (user + system CPU seconds, resident bytes) of a process, from /proc.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the daemon is running");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let cpu = (fields[11].parse::<f64>().expect("utime")
        + fields[12].parse::<f64>().expect("stime"))
        / ticks_per_second;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .expect("VmRSS");
    (cpu, rss_kib * 1024)
}

fn metric(address: &str, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    body.lines().find_map(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

fn main() {
    let endpoint = aws_endpoint::Endpoint::start();
    let mut targets = String::new();
    for index in 0..TARGETS {
        let function = format!("bench{index}");
        endpoint
            .world()
            .set_concurrency(&function, "1", &[10.0 + (index % 50) as f64; 20], 2);
        targets.push_str(&format!(
            "[[target]]\nfunction = \"{function}\"\nqualifier = \"1\"\nmin = 1\nmax = 500\ntracking = {{ metric = \"concurrency\", target = 0.7 }}\n"
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("an address")
        .port();
    let address = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[aws]\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\n[daemon]\nlisten = \"{address}\"\ninterval = \"{INTERVAL_SECONDS}s\"\nmax_read_rate = 100000.0\nmax_write_rate = 100000.0\n{targets}",
            endpoint.url
        ),
    )
    .expect("write the config");
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_pc-autoscaler"))
        .args(["run", "--config", config.to_str().expect("utf-8")])
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the daemon starts");
    let pid = daemon.id();

    // Warm-up: the first pass writes every target; measure the steady state after it.
    let started = Instant::now();
    while metric(&address, "pc_autoscaler_evaluation_duration_seconds_count").unwrap_or(0.0) < 2.0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the daemon did not complete two evaluations"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let count_before =
        metric(&address, "pc_autoscaler_evaluation_duration_seconds_count").unwrap_or(0.0);
    let sum_before =
        metric(&address, "pc_autoscaler_evaluation_duration_seconds_sum").unwrap_or(0.0);
    let (cpu_before, _) = usage(pid);
    let mut peak_rss = 0;
    let measure_start = Instant::now();
    while measure_start.elapsed() < Duration::from_secs(RUN_SECONDS) {
        peak_rss = peak_rss.max(usage(pid).1);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (cpu_after, rss) = usage(pid);
    let cycles = metric(&address, "pc_autoscaler_evaluation_duration_seconds_count").unwrap_or(0.0)
        - count_before;
    let evaluation_seconds = metric(&address, "pc_autoscaler_evaluation_duration_seconds_sum")
        .unwrap_or(0.0)
        - sum_before;
    let _ = daemon.kill();
    let _ = daemon.wait();

    let requests = endpoint.world().log.len();
    println!(
        "daemon: {TARGETS} targets, interval {INTERVAL_SECONDS}s, measured over {RUN_SECONDS}s ({cycles} cycles)"
    );
    println!(
        "  resident memory:        {:.1} MiB (peak {:.1} MiB)",
        rss as f64 / 1_048_576.0,
        peak_rss as f64 / 1_048_576.0
    );
    println!(
        "  CPU time per cycle:     {:.0} ms",
        (cpu_after - cpu_before) * 1000.0 / cycles.max(1.0)
    );
    println!(
        "  evaluation wall time:   {:.0} ms per cycle",
        evaluation_seconds * 1000.0 / cycles.max(1.0)
    );
    println!("  endpoint requests:      {requests} in all");
}
