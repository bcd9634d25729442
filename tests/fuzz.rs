//! Fuzzing `check` and `simulate` through the library, in process: 10,000 random
//! configurations (generated from the schema's keys with hostile values, and random
//! mutations of the example) and random `simulate` flags and traces; then the real
//! daemon, reloading random configurations on SIGHUP. Nothing may panic; every input
//! either works or is refused with errors.
//!
//! Seeded: a failure names its case, and `FUZZ_SEED` reproduces a run.

mod common;

use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use pc_autoscaler::config;
use pc_autoscaler::simulate::{self, Demand, Options, Request, TraceKind};

const CASES: usize = 10_000;
/// One case in this many that parses and tracks is also replayed by `simulate`.
const SIMULATE_EVERY: usize = 3;

/// Keys the schema knows, where they may appear.
const DAEMON_KEYS: &[&str] = &[
    "interval",
    "listen",
    "dry_run",
    "log_format",
    "max_write_rate",
    "max_read_rate",
    "account_reserve",
    "shutdown_grace",
    "pass_timeout",
    "activity_log_max_mib",
];
const AWS_KEYS: &[&str] = &["region", "profile", "endpoint_url", "timeout"];
const LEADER_KEYS: &[&str] = &[
    "backend",
    "table",
    "name",
    "create_table",
    "endpoint_url",
    "lease",
    "renew_every",
    "identity",
];
const TARGET_KEYS: &[&str] = &["function", "qualifier", "name", "min", "max"];
const TRACKING_KEYS: &[&str] = &[
    "metric",
    "target",
    "scale_in_window",
    "scale_out_cooldown",
    "scale_in_cooldown",
    "max_scale_in_step",
    "missing_data",
    "stale_after",
    "disable_scale_in",
    "forecast",
    "forecast_horizon",
    "choose_window",
];
const RULE_KEYS: &[&str] = &[
    "name", "cron", "at", "timezone", "duration", "lead", "min", "max",
];

/// Values chosen to be hostile: edges of every type, odd text, wrong types.
fn value(rng: &mut fastrand::Rng) -> String {
    const TEXTS: &[&str] = &[
        "\"60s\"",
        "\"15s\"",
        "\"dynamodb\"",
        "\"observe\"",
        "\"on\"",
        "\"0s\"",
        "\"1ms\"",
        "\"400d\"",
        "\"99999999999999d\"",
        "\"-5s\"",
        "\"\"",
        "\"live\"",
        "\"$LATEST\"",
        "\"f\"",
        "\"arn:aws:lambda:us-east-1:123456789012:function:f\"",
        "\"arn:aws:lambda:us-east-1:12345:function\"",
        "\"a\\u0000b\"",
        "\"x\\ny\"",
        "\"\\u202e\"",
        "\"concurrency\"",
        "\"utilization\"",
        "\"custom\"",
        "\"hold\"",
        "\"zero\"",
        "\"50%\"",
        "\"0%\"",
        "\"250%\"",
        "\"0 8 * * MON-FRI\"",
        "\"*/10 * * * * *\"",
        "\"0 0 30 2 *\"",
        "\"61 * * * *\"",
        "\"2026-11-27T06:00:00\"",
        "\"0000-01-01T00:00:00\"",
        "\"Europe/Berlin\"",
        "\"Mars/Olympus\"",
        "\"127.0.0.1:0\"",
        "\"0.0.0.0:99999\"",
        "\"http://127.0.0.1:1\"",
        "\"json\"",
        "\"text\"",
    ];
    const NUMBERS: &[&str] = &[
        "0",
        "1",
        "-1",
        "2",
        "7",
        "100",
        "2147483647",
        "2147483648",
        "4294967295",
        "9223372036854775807",
        "-9223372036854775808",
        "0.0",
        "0.7",
        "1.0",
        "1.5",
        "-0.5",
        "1e-30",
        "1e300",
        "nan",
        "inf",
        "-inf",
        "0.01",
        "1000.0",
    ];
    match rng.u8(0..10) {
        0..=4 => TEXTS[rng.usize(..TEXTS.len())].to_owned(),
        5..=7 => NUMBERS[rng.usize(..NUMBERS.len())].to_owned(),
        8 => ["true", "false"][rng.usize(..2)].to_owned(),
        _ => ["[]", "[1, \"a\"]", "{}", "{ a = 1 }"][rng.usize(..4)].to_owned(),
    }
}

fn key(rng: &mut fastrand::Rng, known: &[&str]) -> String {
    if rng.u8(..20) == 0 {
        ["unknown", "mni", "qualifer", "\"quoted key\""][rng.usize(..4)].to_owned()
    } else {
        known[rng.usize(..known.len())].to_owned()
    }
}

fn table(rng: &mut fastrand::Rng, known: &[&str], max_keys: usize) -> String {
    let mut out = String::new();
    for _ in 0..rng.usize(0..=max_keys) {
        out.push_str(&format!("{} = {}\n", key(rng, known), value(rng)));
    }
    out
}

/// A configuration built from the schema: usually close to valid, often not.
fn generated(rng: &mut fastrand::Rng) -> String {
    let mut out = String::new();
    if rng.bool() {
        out.push_str(&format!("[aws]\n{}", table(rng, AWS_KEYS, 3)));
    }
    if rng.bool() {
        out.push_str(&format!("[daemon]\n{}", table(rng, DAEMON_KEYS, 4)));
    }
    if rng.u8(..4) == 0 {
        out.push_str(&format!(
            "[leader]\ntable = \"locks\"\n{}",
            table(rng, LEADER_KEYS, 3)
        ));
    }
    if rng.u8(..4) == 0 {
        out.push_str(&format!("[defaults]\nmin = {}\n", value(rng)));
    }
    for index in 0..rng.usize(0..4) {
        // Mostly sane essentials, so that deeper checks are reached.
        out.push_str(&format!(
            "[[target]]\nfunction = \"fn{index}\"\nqualifier = \"live\"\nmin = {}\nmax = {}\n{}",
            rng.u32(0..5),
            rng.u32(1..500),
            table(rng, TARGET_KEYS, 2)
        ));
        if rng.bool() {
            out.push_str(&format!(
                "[target.tracking]\nmetric = \"concurrency\"\ntarget = 0.{}\n{}",
                rng.u8(1..10),
                table(rng, TRACKING_KEYS, 3)
            ));
        }
        for _ in 0..rng.usize(0..3) {
            out.push_str(&format!(
                "[[target.schedule]]\ncron = \"0 {} * * *\"\nmin = {}\n{}",
                rng.u8(0..24),
                rng.u32(0..50),
                table(rng, RULE_KEYS, 3)
            ));
        }
    }
    out
}

/// The example with lines dropped, doubled or damaged.
fn mutated(rng: &mut fastrand::Rng, example: &str) -> String {
    let mut lines: Vec<String> = example.lines().map(str::to_owned).collect();
    for _ in 0..rng.usize(1..6) {
        if lines.is_empty() {
            break;
        }
        let at = rng.usize(..lines.len());
        match rng.u8(..4) {
            0 => {
                lines.remove(at);
            }
            1 => {
                let copy = lines[at].clone();
                lines.insert(at, copy);
            }
            2 => {
                if let Some((name, _)) = lines[at].split_once(" = ") {
                    lines[at] = format!("{name} = {}", value(rng));
                }
            }
            _ => {
                let mut bytes = lines[at].clone().into_bytes();
                if !bytes.is_empty() {
                    let index = rng.usize(..bytes.len());
                    bytes[index] = rng.u8(..);
                }
                lines[at] = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
    }
    lines.join("\n")
}

/// Half generated from the schema, half a mutated example.
fn random_config(rng: &mut fastrand::Rng, example: &str) -> String {
    if rng.bool() {
        generated(rng)
    } else {
        mutated(rng, example)
    }
}

/// A short random trace, as a CSV file, sometimes malformed.
fn trace(rng: &mut fastrand::Rng, dir: &Path, case: usize) -> std::path::PathBuf {
    let mut csv = String::from("timestamp,value\n");
    let start = Utc
        .with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
        .single()
        .expect("a valid date");
    let step = [60, 300, 1800][rng.usize(..3)];
    let mut time = start;
    for _ in 0..rng.usize(0..60) {
        let value = match rng.u8(..20) {
            0 => "-1".to_owned(),
            1 => "NaN".to_owned(),
            2 => "1e308".to_owned(),
            _ => format!("{}", rng.f64() * 500.0),
        };
        csv.push_str(&format!("{},{value}\n", time.format("%Y-%m-%d %H:%M:%S")));
        time += chrono::TimeDelta::seconds(if rng.u8(..30) == 0 { -60 } else { step });
    }
    let path = dir.join(format!("trace-{case}.csv"));
    std::fs::write(&path, csv).expect("write the trace");
    path
}

fn flags(rng: &mut fastrand::Rng, trace: Option<std::path::PathBuf>) -> Request {
    let pick = |rng: &mut fastrand::Rng, values: &[f64]| values[rng.usize(..values.len())];
    Request {
        target: None,
        trace,
        trace_kind: if rng.bool() {
            TraceKind::Requests
        } else {
            TraceKind::Concurrency
        },
        duration_ms: pick(rng, &[1000.0, 0.0, -1.0, f64::NAN, 1e9, 250.0]),
        mean_concurrency: rng
            .bool()
            .then(|| pick(rng, &[50.0, 0.0, -5.0, f64::INFINITY, 2.0, 1e7])),
        start: match rng.u8(..4) {
            0 => Some(
                Utc.with_ymd_and_hms(2026, 3, 29, 0, 0, 0)
                    .single()
                    .expect("valid"),
            ),
            1 => Some(chrono::DateTime::<Utc>::MAX_UTC),
            2 => Some(chrono::DateTime::<Utc>::MIN_UTC),
            _ => None,
        },
        options: Options {
            metric_lag: [0, 1, 2, 5, 61, usize::MAX][rng.usize(..6)],
            memory_mb: pick(rng, &[1024.0, 128.0, f64::NAN, 0.0, 20_000.0]),
            ..Options::default()
        },
        sweep: false,
        split: false,
    }
}

#[test]
fn ten_thousand_random_configs_and_flags_never_panic() {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut rng = fastrand::Rng::with_seed(seed);
    let example = std::fs::read_to_string(common::repo_file("config/example.toml"))
        .expect("the example config");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let now = Utc
        .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("valid");
    let (mut accepted, mut refused, mut simulated) = (0, 0, 0);
    for case in 0..CASES {
        let source = random_config(&mut rng, &example);
        let outcome =
            std::panic::catch_unwind(|| match config::parse(&source, Path::new("fuzz.toml")) {
                Err(errors) => {
                    assert!(!errors.errors.is_empty(), "refused without a reason");
                    let text = errors.to_string();
                    assert!(
                        text.contains("fuzz.toml:"),
                        "an error without a place: {text}"
                    );
                    None
                }
                Ok(parsed) => {
                    pc_autoscaler::cli::check::render(&parsed, now);
                    Some(parsed)
                }
            });
        let parsed = match outcome {
            Ok(parsed) => parsed,
            Err(_) => panic!("case {case} (seed {seed}) panicked on:\n{source}"),
        };
        let Some(parsed) = parsed else {
            refused += 1;
            continue;
        };
        accepted += 1;
        if case % SIMULATE_EVERY != 0 || parsed.targets[0].tracking.is_none() {
            continue;
        }
        let trace_file = rng.bool().then(|| trace(&mut rng, dir.path(), case));
        let request = flags(&mut rng, trace_file);
        let replayed = std::panic::catch_unwind(|| {
            // The synthetic week is long; a fuzz case replays at most a day of it.
            if request.trace.is_none() && simulate::check_flags(&request).is_empty() {
                let mut demand = simulate::trace::synthetic_week(now);
                demand.concurrency.truncate(24 * 60);
                let demand = Demand {
                    name: "day".into(),
                    ..demand
                };
                let _ = simulate::run(&parsed.targets[0], demand, &request.options, &mut || {});
            } else {
                let _ = simulate::execute(&parsed, &request);
            }
        });
        assert!(
            replayed.is_ok(),
            "case {case} (seed {seed}) panicked in simulate with {request:?} on:\n{source}"
        );
        simulated += 1;
    }
    eprintln!("accepted {accepted}, refused {refused}, simulated {simulated}");
    // The generator must reach both sides, or the run proves little.
    assert!(
        accepted > 500 && refused > 500,
        "accepted {accepted}, refused {refused}"
    );
    assert!(simulated > 100, "only {simulated} simulated");
}

#[test]
fn the_daemon_survives_reloading_random_configs() {
    const RELOADS: usize = 100;
    let endpoint = common::endpoint_wanting_100();
    let (_dir, config, mut daemon) = common::tracked_daemon(&endpoint, "1s");
    let aws = std::fs::read_to_string(&config)
        .expect("read config")
        .split("[daemon]")
        .next()
        .expect("the [aws] table")
        .to_owned();
    daemon.wait_ready();
    let example = std::fs::read_to_string(common::repo_file("config/example.toml"))
        .expect("the example config");
    let mut rng = fastrand::Rng::with_seed(0xda3_u64);
    let reloads = |daemon: &common::Daemon| {
        ["success", "failure"]
            .iter()
            .filter_map(|outcome| {
                daemon.metric(&format!(
                    "pc_autoscaler_config_reloads_total{{outcome=\"{outcome}\"}}"
                ))
            })
            .sum::<f64>()
    };
    for reload in 0..RELOADS {
        // The local endpoint's [aws] comes first: a second [aws] in the random part is
        // a TOML error, so no accepted config can reach real AWS.
        let random = random_config(&mut rng, &example);
        std::fs::write(&config, format!("{aws}{random}")).expect("write config");
        let before = reloads(&daemon);
        daemon.signal("HUP");
        assert!(
            common::wait_for(Duration::from_secs(10), || reloads(&daemon) > before),
            "reload {reload} never finished:\n{}",
            daemon.log()
        );
    }
    assert!(
        daemon.child.try_wait().expect("status").is_none(),
        "{}",
        daemon.log()
    );
    assert_eq!(
        common::http_get(&daemon.address, "/healthz").map(|(status, _)| status),
        Some(200)
    );
    assert!(!daemon.log().contains("panicked"), "{}", daemon.log());
}
