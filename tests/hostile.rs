//! Hostile clients, hostile files, stray signals, each against the real binary: the
//! daemon stays up, bounded and honest. Bounds here are far above what is normal (a
//! probe answers in milliseconds; the bound is seconds): they tell a starved listener
//! from a working one without timing the machine.

// Tests drive real processes and servers in real time.
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::aws_endpoint::{Endpoint, Fault};
use common::{
    Daemon, PUT, aws_config, daemon_settings, endpoint_wanting_100, free_port, http_get,
    http_get_within, plan_json_any_status, run, text, tracked_daemon, wait_for, write_config,
};

/// Clients that each open a connection, send one byte every `gap`, and connect again
/// as soon as theirs is closed, until the flag is cleared.
fn slow_clients(
    address: &str,
    count: usize,
    gap: Duration,
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
                        std::thread::sleep(gap);
                    }
                }
            })
        })
        .collect();
    (running, threads)
}

/// Probes `/healthz` `count` times; the slowest answer (`None`: one failed).
fn slowest_probe(address: &str, count: usize) -> Option<Duration> {
    let mut slowest = Duration::ZERO;
    for _ in 0..count {
        let started = Instant::now();
        let (status, _) = http_get_within(address, "/healthz", Duration::from_secs(5))?;
        if status != 200 {
            return None;
        }
        slowest = slowest.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(slowest)
}

#[test]
fn reconnecting_slow_clients_do_not_take_the_probes_down() {
    let endpoint = endpoint_wanting_100();
    let (_dir, _config, mut daemon) = tracked_daemon(&endpoint, "1h");
    daemon.wait_ready();
    for clients in [32, 128] {
        let (running, threads) = slow_clients(&daemon.address, clients, Duration::from_millis(500));
        std::thread::sleep(Duration::from_secs(2));
        let slowest = slowest_probe(&daemon.address, 30);
        running.store(false, Ordering::Relaxed);
        for thread in threads {
            let _ = thread.join();
        }
        assert!(
            slowest.is_some_and(|slowest| slowest < Duration::from_secs(2)),
            "{clients} slow clients: slowest probe {slowest:?}\n{}",
            daemon.log()
        );
    }
    let evicted = daemon
        .metric("pc_autoscaler_http_connections_dropped_total{reason=\"evicted\"}")
        .unwrap_or_default();
    assert!(evicted > 0.0, "the slow clients were evicted to make room");
}

#[test]
fn a_config_that_is_too_large_a_fifo_or_a_device_is_refused_before_reading() {
    let (dir, big) = write_config("big.toml", "");
    {
        let mut file = std::fs::File::create(&big).expect("created");
        let line = "# padding padding padding padding padding padding padding padding\n";
        for _ in 0..(17 * 1024 * 1024 / line.len() + 1) {
            file.write_all(line.as_bytes()).expect("written");
        }
    }
    let fifo = dir.path().join("fifo.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let zero = dir.path().join("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("a link");
    for (path, expected) in [
        (&big, "is larger than 16 MiB"),
        (&fifo, "is not a regular file (a FIFO)"),
        (&zero, "is not a regular file (a device)"),
    ] {
        let started = Instant::now();
        let output = run(&["check", "--config", path.to_str().expect("utf-8")]);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
        assert!(
            text(&output.stderr).contains(expected),
            "{}",
            text(&output.stderr)
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "refused at once"
        );
    }
}

#[test]
fn the_activity_log_must_be_a_regular_file_and_a_fifo_does_not_hang_the_daemon() {
    let endpoint = Endpoint::start();
    let dir = tempfile::tempdir().expect("a directory");
    let fifo = dir.path().join("activity.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let target = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 5\n";
    for log in [fifo.as_path(), std::path::Path::new("/dev/zero")] {
        let port = free_port();
        let settings = format!(
            "{}\nactivity_log = \"{}\"",
            daemon_settings(port, "1s"),
            log.display()
        );
        let (_config_dir, config) = aws_config(&endpoint.url, &settings, target);
        let output = run(&["check", "--config", config.to_str().expect("utf-8")]);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output.stdout));
        assert!(
            text(&output.stderr).contains("daemon.activity_log")
                && text(&output.stderr).contains("not a regular file"),
            "{}",
            text(&output.stderr)
        );
        // The daemon started anyway runs without the log, and stops on SIGTERM.
        let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
        daemon.wait_ready();
        assert!(
            daemon.log().contains("not a regular file"),
            "{}",
            daemon.log()
        );
        daemon.signal("TERM");
        let stopped = wait_for(Duration::from_secs(20), || {
            daemon.child.try_wait().ok().flatten().is_some()
        });
        assert!(stopped, "{}", daemon.log());
        assert_eq!(daemon.child.wait().expect("status").code(), Some(0));
    }
}

#[test]
fn a_reload_of_a_file_with_100_000_errors_gives_its_memory_back_and_reports_a_bounded_list() {
    let endpoint = Endpoint::start();
    let port = free_port();
    let target = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 5\n";
    let (_dir, config) = aws_config(&endpoint.url, &daemon_settings(port, "1s"), target);
    let good = std::fs::read_to_string(&config).expect("readable");
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_ready();
    let resident = |daemon: &Daemon| {
        let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id()))
            .expect("the daemon runs");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .expect("VmRSS")
    };
    std::thread::sleep(Duration::from_secs(2));
    let before = resident(&daemon);
    // 100,000 unknown keys at the top, then the good file.
    let mut bad: String = (0..100_000)
        .map(|index| format!("k{index} = 1\n"))
        .collect();
    bad.push_str(&good);
    std::fs::write(&config, bad).expect("written");
    daemon.signal("HUP");
    let failed = wait_for(Duration::from_secs(60), || {
        daemon.metric("pc_autoscaler_config_reloads_total{outcome=\"failure\"}") == Some(1.0)
    });
    assert!(failed, "{}", daemon.log());
    std::thread::sleep(Duration::from_secs(1));
    let after = resident(&daemon);
    let log = daemon.log();
    let reported = log.matches("configuration error").count();
    assert!(reported <= 1_000, "{reported} errors logged one by one");
    assert!(log.contains("more are not"), "the rest are counted");
    assert!(
        log.lines().all(|line| line.len() < 4_096),
        "every event is a line of its own, bounded"
    );
    assert!(
        after <= before + 16 * 1024,
        "resident {before} KiB before the reload, {after} KiB after"
    );
    assert!(daemon.child.try_wait().expect("status").is_none());
}

#[test]
fn stray_signals_are_logged_and_ignored_and_sigterm_still_stops_gracefully() {
    let endpoint = endpoint_wanting_100();
    endpoint.world().allocation_delay = Duration::from_secs(2);
    let (_dir, _config, mut daemon) = tracked_daemon(&endpoint, "1s");
    daemon.wait_ready();
    for signal in ["USR1", "USR2", "USR1", "USR2", "QUIT", "ALRM"] {
        daemon.signal(signal);
        std::thread::sleep(Duration::from_millis(100));
    }
    // The write went on meanwhile, and the daemon still answers.
    assert!(
        wait_for(Duration::from_secs(20), || !endpoint
            .world()
            .requests(PUT)
            .is_empty()),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.child.try_wait().expect("status").is_none(),
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.probe("/healthz"), Some(200));
    assert!(
        daemon.log().matches("signal received and ignored").count() >= 6,
        "{}",
        daemon.log()
    );
    daemon.signal("TERM");
    let code = daemon.child.wait().expect("it stops").code();
    assert_eq!(code, Some(0), "{}", daemon.log());
}

#[test]
fn a_corrupted_activity_log_is_restored_past_its_bad_lines_and_ids_go_on() {
    let endpoint = Endpoint::start();
    let dir = tempfile::tempdir().expect("a directory");
    let log = dir.path().join("activity.jsonl");
    let activity = |id: u64, minute: u32| {
        format!(
            "{{\"id\":{id},\"time\":\"2026-11-24T10:{minute:02}:00Z\",\"target\":\"fixed\",\"kind\":\"write\",\"from\":0,\"to\":5,\"reason\":\"target min\",\"trigger\":\"scan\",\"outcome\":\"READY after 1 s\",\"epoch\":0}}\n"
        )
    };
    let mut bytes = Vec::new();
    for id in 1..=12 {
        bytes.extend(activity(id, id as u32).into_bytes());
    }
    bytes.extend(b"\xff\xfe\xfd not UTF-8\n");
    bytes.extend(b"{\"id\": 13, \"time\": \"2026-11-24T10:");
    bytes.extend(b"\n");
    bytes.extend(activity(18_446_744_073_709_551_615, 30).into_bytes());
    for id in 14..=25 {
        bytes.extend(activity(id, 30 + id as u32).into_bytes());
    }
    std::fs::write(&log, bytes).expect("written");
    let port = free_port();
    let settings = format!(
        "{}\nactivity_log = \"{}\"",
        daemon_settings(port, "1s"),
        log.display()
    );
    let target =
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nname = \"fixed\"\nmin = 7\nmax = 50\n";
    let (_config_dir, config) = aws_config(&endpoint.url, &settings, target);
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_ready();
    assert!(daemon.log().contains("skipped=3"), "{}", daemon.log());
    daemon.wait_for_put(&endpoint, 7, Duration::from_secs(20));
    let (_, body) = http_get(&daemon.address, "/activities?limit=100").expect("an answer");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let ids: Vec<u64> = answer["activities"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|activity| activity["id"].as_u64())
        .collect();
    assert_eq!(ids.len(), 25, "24 restored and the new write: {ids:?}");
    assert_eq!(
        ids.iter().max(),
        Some(&26),
        "the new id follows the largest: {ids:?}"
    );
}

#[test]
fn escape_sequences_are_escaped_wherever_they_are_printed() {
    // From the file: an unknown key and a duration holding a newline and ESC.
    let (_dir, path) = write_config(
        "bad.toml",
        "[daemon]\n\"inter\\u001b[2J\\nval\" = \"1s\"\ninterval = \"5\\u001b[31m\\nerror: forged\"\n\
         [[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 5\n",
    );
    let output = run(&["check", "--config", path.to_str().expect("utf-8")]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    assert!(
        stderr
            .lines()
            .all(|line| !line.starts_with("error: forged")),
        "{stderr:?}"
    );
    assert!(stderr.contains("\\u{1b}"), "{stderr:?}");

    // From AWS: an error message holding them, in `plan`, and in the daemon's log and
    // `status`.
    let endpoint = Endpoint::start();
    let hostile = "denied\u{1b}[2J\nerror: forged line";
    endpoint.world().inject(
        "ListProvisionedConcurrencyConfigs",
        (0..60).map(|_| Fault::DeniedWith(hostile)),
    );
    let target = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 5\n";
    let (output, _) = plan_json_any_status(&endpoint, "", target);
    let (_dir, config) = aws_config(&endpoint.url, "", target);
    let plan = run_plan_table(&config);
    for printed in [plan.as_str(), text(&output.stderr).as_str()] {
        assert!(!printed.contains('\u{1b}'), "{printed:?}");
        assert!(
            printed
                .lines()
                .all(|line| !line.starts_with("error: forged")),
            "{printed:?}"
        );
    }
    let port = free_port();
    let (_daemon_dir, config) = aws_config(&endpoint.url, &daemon_settings(port, "1s"), target);
    let daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    assert!(
        wait_for(Duration::from_secs(20), || daemon.log().contains("forged")),
        "{}",
        daemon.log()
    );
    let log = daemon.log();
    assert!(!log.contains('\u{1b}'), "{log:?}");
    assert!(
        log.lines().all(|line| !line.starts_with("error: forged")),
        "{log:?}"
    );
    let status = run(&["status", "--url", &format!("http://127.0.0.1:{port}")]);
    let report = text(&status.stdout);
    assert!(!report.contains('\u{1b}'), "{report:?}");
    assert!(
        report
            .lines()
            .all(|line| !line.starts_with("error: forged")),
        "{report:?}"
    );
    drop(daemon);
    let _ = std::io::stdout().flush();
}

/// `plan` as a table, for people.
fn run_plan_table(config: &std::path::Path) -> String {
    let mut child = common::binary_for_aws()
        .args(["plan", "--config", config.to_str().expect("utf-8")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("plan runs");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)
        .expect("read");
    let _ = child.wait();
    out
}

/// The daemon's peak resident memory so far, in KiB.
fn peak_kib(daemon: &Daemon) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id()))
        .expect("the daemon runs")
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmHWM")
}

#[test]
fn an_answer_of_a_gigabyte_is_an_error_for_that_call_and_costs_no_memory() {
    const GIB: u64 = 1024 * 1024 * 1024;
    let endpoint = endpoint_wanting_100();
    endpoint
        .world()
        .function("tagged")
        .tags
        .insert("team".into(), "shop".into());
    // Reads: every attempt of the SDK's retry, twice over; events are sent once a try.
    for (operation, count) in [
        ("ListProvisionedConcurrencyConfigs", 6),
        ("GetResources", 6),
        ("PutEvents", 2),
    ] {
        endpoint
            .world()
            .inject(operation, std::iter::repeat_n(Fault::Huge(GIB), count));
    }
    let port = free_port();
    let settings = format!(
        "{}\ndiscovery_period = \"10s\"\n[events]\nbus = \"ops\"\nendpoint_url = \"{}\"",
        daemon_settings(port, "1s"),
        endpoint.url
    );
    let targets = format!(
        "{}[[selector]]\ntags = {{ team = \"shop\" }}\nqualifier = \"live\"\nmin = 1\nmax = 5\n",
        common::tracked_target("f", "live")
    );
    let (_dir, config) = aws_config(&endpoint.url, &settings, &targets);
    let daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    // Each huge answer failed its call only: the scan came again and the put went.
    daemon.wait_for_put(&endpoint, 100, Duration::from_secs(60));
    let served = |operation: &str| {
        endpoint
            .world()
            .requests(operation)
            .iter()
            .filter(|logged| logged.status == 200)
            .count()
    };
    assert!(
        wait_for(Duration::from_secs(60), || served("PutEvents") > 2
            && served("GetResources") > 6),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.log().contains("the answer is larger than 4 MiB"),
        "{}",
        daemon.log()
    );
    let peak = peak_kib(&daemon);
    assert!(peak < 96 * 1024, "peak resident {peak} KiB");
    assert_eq!(daemon.probe("/healthz"), Some(200));
}
