//! The daemon under hostile clients and files, measured (release build): `/healthz`
//! probe latency while 1,000 idle connections are held open, and while 32, 300 and
//! 1,000 slow clients each send a byte every 500 ms and connect again as soon as
//! theirs is closed; and resident memory before and after a reload of a file with
//! 100,000 errors.
//!
//! `cargo bench --bench hostile` (about 2 minutes).

// Tests and benchmarks drive real processes and servers in real time, not through
// the daemon's injected clock.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write as _;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::aws_endpoint::Endpoint;
use common::{Daemon, aws_config, daemon_settings, free_port, http_get_within, wait_for};

const PROBES: usize = 100;

/// As many file descriptors as the hard limit allows: 1,000 clients need them.
fn raise_file_limit() {
    // SAFETY: `getrlimit` and `setrlimit` only read and set this process's limits.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// `PROBES` probes of `/healthz`, 50 ms apart: sorted latencies of those answered
/// 200 within 5 s, and how many were not.
fn probe(address: &str) -> (Vec<f64>, usize) {
    let mut latencies = Vec::new();
    let mut failed = 0;
    for _ in 0..PROBES {
        let started = Instant::now();
        match http_get_within(address, "/healthz", Duration::from_secs(5)) {
            Some((200, _)) => latencies.push(started.elapsed().as_secs_f64() * 1000.0),
            _ => failed += 1,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, failed)
}

fn report(label: &str, (latencies, failed): (Vec<f64>, usize)) {
    let at = |share: f64| {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((share * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies[rank - 1]
    };
    println!(
        "  {label:<44} p50 {:6.1} ms, p99 {:6.1} ms, max {:6.1} ms, {failed} of {PROBES} failed",
        at(0.5),
        at(0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
}

fn slow_clients(
    address: &str,
    count: usize,
) -> (Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>) {
    let running = Arc::new(AtomicBool::new(true));
    let threads = (0..count)
        .map(|_| {
            let (address, running) = (address.to_owned(), running.clone());
            std::thread::spawn(move || {
                while running.load(Ordering::Relaxed) {
                    let Ok(mut stream) = TcpStream::connect(&address) else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n" {
                        if !running.load(Ordering::Relaxed) || stream.write_all(&[*byte]).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            })
        })
        .collect();
    (running, threads)
}

fn resident_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the daemon runs");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .expect("a /proc status field")
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    raise_file_limit();
    let endpoint = Endpoint::start();
    let port = free_port();
    let target = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 5\n";
    let (_dir, config) = aws_config(&endpoint.url, &daemon_settings(port, "1h"), target);
    let good = std::fs::read_to_string(&config).expect("readable");
    let address = format!("127.0.0.1:{port}");
    let mut daemon = Daemon::start(&config, &address, &[("RUST_LOG", "warn")]);
    daemon.wait_ready();
    println!("hostile: /healthz latency, {PROBES} probes 50 ms apart, release build");
    report("no other clients", probe(&address));

    let idle: Vec<TcpStream> = (0..1_000)
        .filter_map(|_| TcpStream::connect(&address).ok())
        .collect();
    report(&format!("{} idle connections", idle.len()), probe(&address));
    drop(idle);

    for clients in [32, 300, 1_000] {
        let (running, threads) = slow_clients(&address, clients);
        std::thread::sleep(Duration::from_secs(3));
        let measured = probe(&address);
        running.store(false, Ordering::Relaxed);
        for thread in threads {
            let _ = thread.join();
        }
        report(
            &format!("{clients} reconnecting slow clients (a byte / 500 ms)"),
            measured,
        );
    }
    let dropped = |reason: &str| {
        daemon
            .metric(&format!(
                "pc_autoscaler_http_connections_dropped_total{{reason=\"{reason}\"}}"
            ))
            .unwrap_or_default()
    };
    println!(
        "  connections dropped at the cap: {} evicted, {} refused",
        dropped("evicted"),
        dropped("refused")
    );

    std::thread::sleep(Duration::from_secs(2));
    let pid = daemon.child.id();
    let (before, _) = resident_kib(pid);
    let mut bad: String = (0..100_000)
        .map(|index| format!("k{index} = 1\n"))
        .collect();
    bad.push_str(&good);
    let size = bad.len();
    std::fs::write(&config, bad).expect("written");
    daemon.signal("HUP");
    let mut peak = before;
    let failed = wait_for(Duration::from_secs(60), || {
        peak = peak.max(resident_kib(pid).0);
        daemon.metric("pc_autoscaler_config_reloads_total{outcome=\"failure\"}") == Some(1.0)
    });
    assert!(failed, "the reload did not fail:\n{}", daemon.log());
    std::thread::sleep(Duration::from_secs(2));
    let (after, _) = resident_kib(pid);
    println!(
        "  reload of a {:.2} MB file with 100,000 errors: resident {:.1} MiB before, {:.1} MiB at most while sampled, {:.1} MiB after",
        size as f64 / 1e6,
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        after as f64 / 1024.0
    );
}
