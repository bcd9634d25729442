//! The whole daemon loop in virtual time: in-memory AWS, a tokio timer as the wake
//! source and a clock that follows `tokio::time::pause`. Minutes of budget, schedule
//! boundaries, throttles and reloads pass in milliseconds, and every assertion is on
//! the requests the fake Lambda saw and when (in virtual seconds).
//!
//! These test timing and order; the wire tests in `tests/` prove the protocol.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{DaemonCommand, Health, LiveShards, Overrides, Parts, Source, TimerWakes, http, run};
use crate::aws::AwsError;
use crate::aws::memory::{Call, FakeWorld, MemoryAws};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::policy::Datapoint;
use crate::runtime::state::activity::{Kind, SharedJournal, Trigger};

const PUT: &str = "PutProvisionedConcurrencyConfig";
const SCAN: &str = "ListProvisionedConcurrencyConfigs";

/// Monday 2026-11-23, 08:59:00 UTC: a minute before a 09:00 schedule boundary.
fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T08:59:00Z")
        .expect("a valid time")
        .with_timezone(&Utc)
}

/// APIs that count against Lambda's shared limit.
fn shared(request: &Call) -> bool {
    !matches!(
        request.api,
        "GetFunction" | "GetMetricData" | "DescribeScalableTargets" | "RegisterScalableTarget"
    )
}

fn fixed(function: &str, min: u32) -> String {
    format!("[[target]]\nfunction = \"{function}\"\nqualifier = \"live\"\nmin = {min}\nmax = 500\n")
}

fn tracked(function: &str) -> String {
    format!(
        "[[target]]\nfunction = \"{function}\"\nqualifier = \"live\"\nmin = 1\nmax = 500\n\
         tracking = {{ metric = \"concurrency\", target = 0.7 }}\n"
    )
}

/// A running daemon on in-memory AWS, in virtual time.
struct Harness {
    aws: MemoryAws,
    view: http::View,
    journal: SharedJournal,
    commands: mpsc::Sender<DaemonCommand>,
    daemon: JoinHandle<Result<(), super::DaemonError>>,
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// Virtual time zero.
    origin: Instant,
}

impl Harness {
    /// Starts the daemon with `[daemon]` keys `settings` and `targets`, after `setup`
    /// has prepared the fake Lambda.
    async fn start(settings: &str, targets: &str, setup: impl FnOnce(&mut FakeWorld)) -> Self {
        let clock = Clock::following_tokio(start_time());
        let aws = MemoryAws::default();
        {
            let mut world = aws.lambda.world();
            world.clock = clock;
            world.allocation_delay = Duration::from_secs(30);
            setup(&mut world);
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("daemon.toml");
        let harness_config = Self::write(&path, settings, targets);
        let metrics = Arc::new(Metrics::new());
        let journal = SharedJournal::default();
        let in_force = LiveShards::default();
        let health = Arc::new(Health::new());
        let (commands, inbox) = mpsc::channel(4);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let parts = Parts {
            aws: aws.clone(),
            wakes: TimerWakes::default(),
            clock,
            metrics: metrics.clone(),
            health: health.clone(),
            journal: journal.clone(),
            in_force: in_force.clone(),
        };
        let source = Source {
            path: path.clone(),
            config: harness_config,
            overrides: Overrides::default(),
        };
        let origin = Instant::now();
        let daemon = tokio::spawn(run(listener, source, parts, inbox));
        Self {
            aws,
            view: http::View {
                metrics,
                health,
                journal: journal.clone(),
                in_force,
            },
            journal,
            commands,
            daemon,
            _dir: dir,
            path,
            origin,
        }
    }

    fn write(path: &std::path::Path, settings: &str, targets: &str) -> crate::config::Config {
        let text = format!("[daemon]\nlisten = \"127.0.0.1:9\"\n{settings}\n{targets}");
        std::fs::write(path, &text).expect("the config is written");
        crate::config::load(path).unwrap_or_else(|error| panic!("{error}\n{text}"))
    }

    /// Replaces the config file and sends a reload.
    async fn reload(&self, text: &str) {
        std::fs::write(&self.path, text).expect("the config is written");
        self.commands
            .send(DaemonCommand::Reload)
            .await
            .expect("the daemon is running");
    }

    /// What `/metrics` shows now.
    fn metrics_text(&self) -> String {
        http::scrape_text(&self.view)
    }

    /// The value of the sample `series` (name and labels as written) on `/metrics`.
    fn sample(&self, series: &str) -> Option<f64> {
        self.metrics_text()
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// Lets `seconds` of virtual time pass.
    async fn pass(&self, seconds: f64) {
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    }

    fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    /// Every request of `api` (all when `None`), with its virtual time in seconds.
    fn requests(&self, api: Option<&str>) -> Vec<(f64, Call)> {
        self.aws
            .lambda
            .world()
            .log
            .iter()
            .filter(|request| api.is_none_or(|api| request.api == api))
            .map(|request| {
                let at = request.at.saturating_duration_since(self.origin);
                (at.as_secs_f64(), request.clone())
            })
            .collect()
    }

    /// Successful puts as (virtual seconds, function, value).
    fn puts(&self) -> Vec<(f64, String, u32)> {
        self.requests(Some(PUT))
            .into_iter()
            .filter(|(_, request)| request.ok)
            .map(|(at, request)| (at, request.function, request.value.unwrap_or(0)))
            .collect()
    }

    /// Sets a constant ConcurrentExecutions of `value` for `function:live`, from an
    /// hour before the start to six hours after it (the fake returns only the past).
    fn demand(&self, function: &str, value: f64) {
        let start = start_time() - TimeDelta::hours(1);
        let points = (0..7 * 60)
            .map(|minute| Datapoint {
                timestamp: start + TimeDelta::minutes(minute),
                value,
            })
            .collect();
        self.aws.metrics.set(&format!("{function}:live"), points);
    }

    /// ConcurrentExecutions of `function:live` for each minute in `from..until`: an
    /// hourly batch (100 in the first 10 minutes of each hour) from `batches_from` on,
    /// 10 otherwise.
    fn hourly_batch(
        &self,
        function: &str,
        (from, until): (DateTime<Utc>, DateTime<Utc>),
        batches_from: DateTime<Utc>,
    ) {
        let points = (0..(until - from).num_minutes())
            .map(|minute| {
                let timestamp = from + TimeDelta::minutes(minute);
                let batch = timestamp >= batches_from && timestamp.minute() < 10;
                Datapoint {
                    timestamp,
                    value: if batch { 100.0 } else { 10.0 },
                }
            })
            .collect();
        self.aws.metrics.set(&format!("{function}:live"), points);
    }

    /// `batch:live` was raised for the batch at `batch` (100 at 0.7 needs 143) by its
    /// forecast, in the half hour before it.
    fn assert_prewarmed(&self, batch: DateTime<Utc>) {
        let prewarm = self
            .journal
            .lock()
            .activities(Some("batch:live"), None, 100)
            .into_iter()
            .find(|activity| {
                activity.time > batch - TimeDelta::minutes(30)
                    && activity.to.is_some_and(|to| to >= 143)
            });
        assert!(
            prewarm
                .as_ref()
                .is_some_and(|write| write.time < batch
                    && write.reason.starts_with("forecast: 100.0 expected")),
            "no pre-warm for the batch at {batch} before it: {prewarm:?}"
        );
    }

    async fn stop(self) {
        self.commands
            .send(DaemonCommand::Shutdown)
            .await
            .expect("the daemon is running");
        self.daemon
            .await
            .expect("the daemon's task ends")
            .expect("the daemon ends cleanly");
    }
}

#[tokio::test(start_paused = true)]
async fn a_scale_out_goes_ahead_of_a_queue_of_scans() {
    // 120 functions to learn at 2 requests a second: a minute of scans. One of the
    // first learned (first by name) needs 100 (demand 70 at 0.7) and has 5.
    let mut targets = tracked("a-hot");
    for index in 0..120 {
        targets.push_str(&fixed(&format!("cold{index}"), 0));
    }
    let harness = Harness::start("interval = \"5s\"", &targets, |world| {
        world.set_config("a-hot", "live", 5);
    })
    .await;
    harness.demand("a-hot", 70.0);
    harness.pass(70.0).await;

    let puts = harness.puts();
    assert_eq!(puts.len(), 1, "{puts:?}");
    let (put_at, function, value) = &puts[0];
    assert_eq!((function.as_str(), *value), ("a-hot", 100));
    let hot_known = harness
        .requests(Some(SCAN))
        .iter()
        .find(|(_, request)| request.function == "a-hot")
        .map(|(at, _)| *at)
        .expect("hot was scanned");
    // The put waits for the first metric read and at most one budget turn, not for
    // the 120 scans queued ahead of it in time.
    assert!(
        *put_at - hot_known <= 1.0,
        "known at {hot_known:.2} s, put at {put_at:.2} s"
    );
    let scans_after = harness
        .requests(Some(SCAN))
        .iter()
        .filter(|(at, _)| at > put_at)
        .count();
    assert!(
        scans_after >= 110,
        "only {scans_after} of 121 scans came after the put"
    );
    // The budget held throughout: 2 a second, with a burst of 3.
    let shared_requests = harness
        .requests(None)
        .iter()
        .filter(|(_, request)| shared(request))
        .count();
    assert!(
        shared_requests as f64 <= 2.0 * harness.now() + 3.0,
        "{shared_requests} shared requests in {:.1} s",
        harness.now()
    );
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_schedule_floor_is_written_at_each_boundary() {
    // A half-hour window at the top of every hour with floor 20; 2 otherwise.
    let targets = format!(
        "{}[[target.schedule]]\nname = \"top\"\ncron = \"0 * * * *\"\nduration = \"30m\"\nmin = 20\n",
        fixed("f", 2)
    );
    let harness = Harness::start("interval = \"10m\"", &targets, |world| {
        world.set_config("f", "live", 2);
    })
    .await;
    // Three hours: the first boundary is a minute away (09:00), then every 30 min.
    harness.pass(3.0 * 3_600.0).await;
    let puts: Vec<(f64, u32)> = harness
        .puts()
        .into_iter()
        .map(|(at, _, value)| (at, value))
        .collect();
    let expected: Vec<(f64, u32)> = (0..6)
        .map(|half_hour| {
            let boundary = 60.0 + 1_800.0 * f64::from(half_hour);
            (boundary, if half_hour % 2 == 0 { 20 } else { 2 })
        })
        .collect();
    assert_eq!(puts.len(), expected.len(), "{puts:?}");
    for ((at, value), (boundary, wanted)) in puts.iter().zip(expected) {
        assert_eq!(*value, wanted, "{puts:?}");
        assert!(
            (boundary..=boundary + 1.0).contains(at),
            "the put of {value} came at {at:.2} s, its boundary is {boundary} s: {puts:?}"
        );
    }
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_throttle_pauses_the_whole_budget_for_its_retry_after() {
    let mut targets = String::new();
    for index in 0..20 {
        targets.push_str(&fixed(&format!("f{index}"), 0));
    }
    let harness = Harness::start("interval = \"5s\"", &targets, |world| {
        world.faults.insert(
            SCAN,
            [AwsError::Throttled {
                retry_after: Some(Duration::from_secs(5)),
                reason: Some("CallerRateLimitExceeded".into()),
                message: "Rate exceeded".into(),
            }]
            .into(),
        );
    })
    .await;
    harness.pass(30.0).await;
    let requests = harness.requests(None);
    let throttled_at = requests
        .iter()
        .find(|(_, request)| !request.ok)
        .map(|(at, _)| *at)
        .expect("the throttle was seen");
    let during_pause: Vec<_> = requests
        .iter()
        .filter(|(at, request)| shared(request) && *at > throttled_at && *at < throttled_at + 5.0)
        .collect();
    assert!(
        during_pause.is_empty(),
        "throttled at {throttled_at:.2} s, yet: {during_pause:?}"
    );
    // The rate then comes back slowly, so the scans still all finish.
    let scanned: std::collections::BTreeSet<String> = harness
        .requests(Some(SCAN))
        .into_iter()
        .filter(|(_, request)| request.ok)
        .map(|(_, request)| request.function)
        .collect();
    assert_eq!(scanned.len(), 20);
    assert_eq!(
        harness
            .view
            .metrics
            .budget
            .throttled
            .with_label_values(&["drift_scan"])
            .get(),
        1
    );
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn reloads_apply_a_good_config_and_keep_the_old_one_on_a_bad() {
    let settings = "interval = \"1m\"";
    let harness = Harness::start(settings, &fixed("f", 3), |_| {}).await;
    harness.pass(5.0).await;
    assert_eq!(harness.puts().len(), 1);

    let config = |min: u32| {
        format!(
            "[daemon]\nlisten = \"127.0.0.1:9\"\n{settings}\n{}",
            fixed("f", min)
        )
    };
    // Good: decided at once, not a minute later (the allocation is settled by then).
    harness.pass(40.0).await;
    harness.reload(&config(7)).await;
    harness.pass(2.0).await;
    let puts = harness.puts();
    assert_eq!(puts.last().map(|(_, _, value)| *value), Some(7), "{puts:?}");

    // Bad: the error is counted, nothing is written, the old config stays in force.
    harness.pass(40.0).await;
    harness.reload("[daemon]\ninterval = \"soon\"\n").await;
    harness.pass(130.0).await;
    assert_eq!(harness.puts().len(), 2, "{:?}", harness.puts());
    let reloads = |outcome: &str| {
        harness
            .view
            .metrics
            .config_reloads
            .with_label_values(&[outcome])
            .get()
    };
    assert_eq!((reloads("success"), reloads("failure")), (1, 1));
    // A foreign reset is corrected to the old config's 7, not to anything else.
    harness.aws.lambda.world().set_config("f", "live", 1);
    harness.pass(11.0 * 60.0).await;
    assert_eq!(
        harness.puts().last().map(|(_, _, value)| *value),
        Some(7),
        "{:?}",
        harness.puts()
    );
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_selector_manages_what_its_tags_find_and_a_new_budget_keeps_what_is_known() {
    let settings = "interval = \"1m\"\ndiscovery_period = \"2m\"";
    let selector = "[[selector]]\nname = \"tagged\"\ntags = { team = \"shop\" }\nqualifier = \"live\"\nmin = 3\nmax = 9\n";
    let tag = |world: &mut FakeWorld, function: &str| {
        let entry = world.functions.entry(function.to_owned()).or_default();
        entry.tags.insert("team".into(), "shop".into());
        entry.aliases.insert("live".into());
    };
    let harness = Harness::start(settings, selector, |world| tag(world, "cart")).await;
    harness.pass(10.0).await;
    assert_eq!(harness.puts(), vec![harness.puts()[0].clone()]);
    assert_eq!(harness.puts()[0].1, "cart");
    // Tagged later: managed within one discovery period.
    tag(&mut harness.aws.lambda.world(), "till");
    harness.pass(125.0).await;
    assert!(
        harness
            .puts()
            .iter()
            .any(|(_, function, value)| function == "till" && *value == 3)
    );
    // A new budget keeps what is known: nothing is scanned again at once.
    let scans = harness
        .requests(Some("ListProvisionedConcurrencyConfigs"))
        .len();
    let budget = format!(
        "[daemon]\nlisten = \"127.0.0.1:9\"\n{settings}\ncontrol_plane_budget = 3\n{selector}"
    );
    harness.reload(&budget).await;
    harness.pass(5.0).await;
    assert_eq!(
        harness
            .requests(Some("ListProvisionedConcurrencyConfigs"))
            .len(),
        scans
    );
    assert_eq!(harness.puts().len(), 2, "{:?}", harness.puts());
    // A reload that changes what the selector looks for reads it at once, not at the
    // next period: `cart` no longer matches and is dropped, its capacity left.
    harness
        .aws
        .lambda
        .world()
        .functions
        .get_mut("till")
        .expect("till is there")
        .tags
        .insert("tier".into(), "gold".into());
    let gold = budget.replace("tags = { team = \"shop\" }", "tags = { tier = \"gold\" }");
    harness.reload(&gold).await;
    harness.pass(5.0).await;
    let dropped = harness
        .journal
        .lock()
        .activities(Some("cart:live"), None, 10);
    assert!(
        dropped
            .iter()
            .any(|activity| activity.outcome.contains("no longer selected")),
        "{dropped:?}"
    );
    assert!(
        harness
            .requests(Some("DeleteProvisionedConcurrencyConfig"))
            .is_empty()
    );
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn drift_is_corrected_within_one_scan_period_and_counted() {
    let harness = Harness::start(
        "interval = \"1m\"\ndrift_scan_period = \"2m\"",
        &fixed("f", 5),
        |world| world.set_config("f", "live", 5),
    )
    .await;
    harness.pass(30.0).await;
    assert!(harness.puts().is_empty());
    harness.aws.lambda.world().set_config("f", "live", 1);
    let reset_at = harness.now();
    harness.pass(150.0).await;
    let puts = harness.puts();
    assert_eq!(puts.len(), 1, "{puts:?}");
    let (at, _, value) = &puts[0];
    assert_eq!(*value, 5);
    assert!(
        *at - reset_at <= 120.0 + 1.0,
        "corrected {:.1} s after the reset",
        at - reset_at
    );
    // The put follows the scan that found it: nothing else was asked in between.
    let before: Vec<&str> = harness
        .requests(None)
        .iter()
        .filter(|(when, request)| shared(request) && when <= at)
        .map(|(_, request)| request.api)
        .collect();
    assert_eq!(before[before.len() - 2..], [SCAN, PUT]);
    assert_eq!(
        harness.sample("pc_autoscaler_drift_detected_total{target=\"f:live\"}"),
        Some(1.0)
    );
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_second_writer_every_five_minutes_is_reported_within_the_hour_and_never_fought_down() {
    let harness = Harness::start("interval = \"1m\"", &fixed("f", 5), |world| {
        world.set_config("f", "live", 5)
    })
    .await;
    // Another writer lowers the target to 2 every 5 minutes; drift scans (every 10
    // minutes) find it and the daemon raises it back.
    let mut contested_at = None;
    for round in 1..=12 {
        harness.pass(300.0).await;
        harness.aws.lambda.world().set_config("f", "live", 2);
        if contested_at.is_none()
            && harness.sample("pc_autoscaler_target_contested{target=\"f:live\"}") == Some(1.0)
        {
            contested_at = Some(round * 5);
        }
    }
    let minutes = contested_at.expect("reported contested");
    assert!(minutes <= 60, "reported after {minutes} minutes");
    let journal = harness.journal.lock().activities(Some("f:live"), None, 100);
    let contest = journal
        .iter()
        .find(|activity| activity.kind == Kind::Contested)
        .expect("a contested activity");
    assert!(contest.reason.contains("5 → 2"), "{}", contest.reason);
    // Each lowering was raised back: spillover first. Now the other writer raises it;
    // the daemon, contested, never lowers it.
    assert!(harness.puts().iter().all(|(_, _, value)| *value == 5));
    harness.aws.lambda.world().set_config("f", "live", 9);
    let puts = harness.puts().len();
    harness.pass(1800.0).await;
    assert_eq!(harness.puts().len(), puts, "{:?}", harness.puts());
    // An hour without a foreign change ends the contest: then it is lowered again.
    harness.pass(3600.0).await;
    assert_eq!(
        harness.sample("pc_autoscaler_target_contested{target=\"f:live\"}"),
        Some(0.0)
    );
    assert_eq!(harness.puts().last().map(|(_, _, value)| *value), Some(5));
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_conflict_is_read_before_the_next_write_and_a_throttled_write_waits() {
    let harness = Harness::start("interval = \"1m\"", &fixed("f", 5), |world| {
        world.faults.insert(
            PUT,
            [
                AwsError::Conflict {
                    message: "An update is in progress for resource".into(),
                },
                AwsError::Throttled {
                    retry_after: Some(Duration::from_secs(20)),
                    reason: Some("CallerRateLimitExceeded".into()),
                    message: "Rate exceeded".into(),
                },
            ]
            .into(),
        );
    })
    .await;
    harness.pass(60.0).await;
    let shared_apis: Vec<(f64, &str, bool)> = harness
        .requests(None)
        .iter()
        .filter(|(_, request)| shared(request))
        .map(|(at, request)| (*at, request.api, request.ok))
        .collect();
    let puts: Vec<&(f64, &str, bool)> = shared_apis
        .iter()
        .filter(|(_, api, _)| *api == PUT)
        .collect();
    assert_eq!(puts.len(), 3, "{shared_apis:?}");
    // After the conflict the function is read before anything is written again.
    let conflict = shared_apis
        .iter()
        .position(|(_, api, ok)| *api == PUT && !ok)
        .expect("the conflict");
    assert_eq!(shared_apis[conflict + 1].1, SCAN, "{shared_apis:?}");
    // The throttled write waits its retryAfter before the next put.
    let (throttled_at, _, _) = puts[1];
    let (last_at, _, last_ok) = puts[2];
    assert!(*last_ok);
    assert!(last_at - throttled_at >= 20.0, "{shared_apis:?}");
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn every_change_is_journaled_with_its_trigger_and_outcome() {
    // A tracked target that needs 100 and has 5; the allocation takes 30 s. Then
    // someone else sets it to 40 (drift), and its metrics go away (a hold).
    let harness = Harness::start(
        "interval = \"5s\"\ndrift_scan_period = \"60s\"",
        &tracked("hot"),
        |world| world.set_config("hot", "live", 5),
    )
    .await;
    harness.demand("hot", 70.0);
    harness.pass(45.0).await;
    let write = harness
        .journal
        .lock()
        .activities(Some("hot:live"), None, 10)
        .into_iter()
        .find(|activity| activity.kind == Kind::Write)
        .expect("the write is journaled");
    assert_eq!((write.from, write.to), (Some(5), Some(100)));
    assert_eq!(
        write.trigger,
        Trigger::Scan,
        "decided when the function was first read"
    );
    assert!(
        write.reason.starts_with("tracking concurrency"),
        "{write:?}"
    );
    assert!(
        write.outcome.starts_with("READY after 3"),
        "the read-back saw it settle: {write:?}"
    );
    {
        let status = http::status_of(&harness.view, "hot:live").expect("a status");
        assert_eq!((status.requested, status.desired), (100, 100));
        assert_eq!(status.allocation, "READY");
        assert_eq!(
            status.last_activity.as_ref().map(|last| last.id),
            Some(write.id)
        );
        assert!(
            status
                .metric_value
                .is_some_and(|value| (value - 70.0).abs() < 1e-9)
        );
    }

    harness.aws.lambda.world().set_config("hot", "live", 40);
    harness.pass(70.0).await;
    let kinds: Vec<(Kind, Trigger)> = harness
        .journal
        .lock()
        .activities(Some("hot:live"), None, 10)
        .iter()
        .map(|activity| (activity.kind, activity.trigger))
        .collect();
    assert!(kinds.contains(&(Kind::Drift, Trigger::Drift)), "{kinds:?}");
    assert!(
        kinds.contains(&(Kind::Write, Trigger::Drift)),
        "corrected: {kinds:?}"
    );

    // Metrics unreadable from now: one hold activity, not one per pass.
    harness.aws.metrics.set("hot:live", Vec::new());
    harness.pass(20.0 * 60.0).await;
    let holds = harness
        .journal
        .lock()
        .activities(Some("hot:live"), None, 100)
        .iter()
        .filter(|activity| activity.kind == Kind::Hold)
        .count();
    assert_eq!(holds, 1);
    harness.stop().await;
}

const FORECASTING_BATCH: &str = "[[target]]\nfunction = \"batch\"\nqualifier = \"live\"\nmin = 1\nmax = 500\n\
     tracking = { metric = \"concurrency\", target = 0.7, forecast = \"on\" }\n";

#[tokio::test(start_paused = true)]
async fn a_forecasting_target_reads_its_history_and_is_ready_before_the_next_batch() {
    // Three days of an hourly batch (100 in the first 10 minutes of each hour, 10
    // otherwise). The daemon starts at 08:59 and has seen none of it: the history read
    // at start lets it provision for 09:00 before 09:00. Reactively it could not.
    let harness = Harness::start("interval = \"5s\"", FORECASTING_BATCH, |_| {}).await;
    let first = start_time() - TimeDelta::days(3);
    harness.hourly_batch("batch", (first, start_time() + TimeDelta::hours(4)), first);
    harness.pass(55.0).await;
    assert_eq!(
        harness.sample("pc_autoscaler_forecast_history_pending"),
        Some(0.0)
    );
    let puts = harness.puts();
    assert!(
        puts.iter().any(|(_, _, value)| *value >= 143),
        "no pre-warm for 100 at 0.7 before 09:00: {puts:?}"
    );
    let write = harness
        .journal
        .lock()
        .activities(Some("batch:live"), None, 10)
        .into_iter()
        .find(|activity| activity.to.is_some_and(|to| to >= 143));
    assert!(
        write
            .as_ref()
            .is_some_and(|write| write.reason.starts_with("forecast: 100.0 expected")),
        "{write:?}"
    );
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_forecasting_target_removed_and_added_back_reads_its_history_again_and_prewarms() {
    let other = fixed("other", 1);
    let harness = Harness::start(
        "interval = \"5s\"",
        &format!("{FORECASTING_BATCH}{other}"),
        |_| {},
    )
    .await;
    let first = start_time() - TimeDelta::days(3);
    harness.hourly_batch("batch", (first, start_time() + TimeDelta::hours(4)), first);
    let fourteen_days = TimeDelta::days(14);
    harness.pass(25.0 * 60.0).await;
    assert_eq!(harness.aws.metrics.reads_of_at_least(fourteen_days), 1);
    let config =
        |targets: &str| format!("[daemon]\nlisten = \"127.0.0.1:9\"\ninterval = \"5s\"\n{targets}");
    harness.reload(&config(&other)).await;
    harness.pass(60.0).await;
    harness
        .reload(&config(&format!("{FORECASTING_BATCH}{other}")))
        .await;
    harness.pass(30.0).await;
    assert_eq!(
        harness.aws.metrics.reads_of_at_least(fourteen_days),
        2,
        "added back, its history is read again"
    );
    // Until 09:59: the 10:00 batch is foreseen from the history read anew.
    harness.pass(33.0 * 60.0).await;
    harness.assert_prewarmed(start_time() + TimeDelta::minutes(61));
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_forecasting_target_learns_from_what_it_sees_after_the_start() {
    // Two quiet days before the start, then an hourly batch from 09:00. The history
    // read at start knows nothing of it: the 11:00 batch can be seen coming only
    // from the 09:00 and 10:00 batches the daemon watched itself.
    let harness = Harness::start("interval = \"5s\"", FORECASTING_BATCH, |_| {}).await;
    let batches_from = start_time() + TimeDelta::minutes(1);
    harness.hourly_batch(
        "batch",
        (
            start_time() - TimeDelta::days(2),
            start_time() + TimeDelta::hours(3),
        ),
        batches_from,
    );
    // Until 10:59, a minute before the third batch.
    harness.pass(2.0 * 3600.0).await;
    harness.assert_prewarmed(start_time() + TimeDelta::minutes(121));
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_target_that_chooses_its_window_holds_a_peak_older_than_the_window_it_reads() {
    // Three days of noise (20 to 80 a minute) and one minute of 300 at 08:34, 25
    // minutes before the start: outside the 21 minutes each pass reads for the
    // configured 15-minute window. The history read at start chooses a longer window,
    // which reaches the peak through the demand history: 300 needs at least 300 at any
    // target up to 1, where the configured window alone would ask for at most 160.
    let target = "[[target]]\nfunction = \"noisy\"\nqualifier = \"live\"\nmin = 1\nmax = 1000\n\
         tracking = { metric = \"concurrency\", target = 0.5, choose_window = \"on\" }\n";
    let harness = Harness::start("interval = \"5s\"", target, |_| {}).await;
    let mut points = crate::policy::test_support::noisy_days(start_time() + TimeDelta::hours(1));
    let spike = start_time() - TimeDelta::minutes(25);
    for point in points.iter_mut().filter(|point| point.timestamp == spike) {
        point.value = 300.0;
    }
    harness.aws.metrics.set("noisy:live", points);
    harness.pass(55.0).await;
    let chosen = harness
        .sample("pc_autoscaler_target_chosen_scale_in_window_seconds{target=\"noisy:live\"}");
    assert!(
        chosen.is_some_and(|seconds| seconds >= 30.0 * 60.0),
        "{chosen:?}"
    );
    let puts = harness.puts();
    assert!(
        puts.iter()
            .any(|(_, function, value)| function == "noisy" && *value >= 300),
        "{puts:?}"
    );
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_allocation_is_written_again_with_backoff_until_it_is_ready() {
    // The function's init fails: every allocation ends FAILED. Lambda's answer to the
    // write says IN_PROGRESS; the read-back finds FAILED.
    let harness = Harness::start("interval = \"5s\"", &fixed("f", 20), |world| {
        world.functions.entry("f".into()).or_default().init_fails =
            Some("FUNCTION_ERROR_INIT_FAILURE".into());
    })
    .await;
    // Five puts take at most 21.4 minutes: gaps of 1, 2, 4 and 8 minutes, each up to a
    // quarter longer at random, plus the allocation and read-backs before each.
    harness.pass(25.0 * 60.0).await;
    let puts = harness.puts();
    let times: Vec<f64> = puts.iter().map(|(at, _, _)| *at).collect();
    assert!(puts.iter().all(|(_, _, value)| *value == 20), "{puts:?}");
    let gaps: Vec<f64> = times.windows(2).map(|pair| pair[1] - pair[0]).collect();
    // Allocation (30 s) and read-backs between, then 1, 2, 4, 8 minutes (+0–25 %).
    assert!(gaps.len() >= 4, "{times:?}");
    for (index, gap) in gaps.iter().enumerate().take(4) {
        let nominal = 60.0 * 2f64.powi(index as i32);
        assert!(
            *gap >= nominal && *gap <= nominal * 1.25 + 40.0,
            "gap {index} of {gaps:?}"
        );
    }
    assert!(
        gaps.iter().all(|gap| *gap >= 60.0),
        "at most one write a minute"
    );
    let failed = "pc_autoscaler_target_allocation_failed{target=\"f:live\"}";
    assert_eq!(harness.sample(failed), Some(1.0));
    let status = http::status_of(&harness.view, "f:live").expect("a status");
    assert_eq!(status.allocation, "FAILED");
    assert_eq!(
        status.status_reason.as_deref(),
        Some("FUNCTION_ERROR_INIT_FAILURE")
    );
    assert!(status.next_attempt.is_some(), "{status:?}");
    let last = status.last_activity.expect("the last write");
    assert_eq!(last.outcome, "FAILED: FUNCTION_ERROR_INIT_FAILURE");

    // The cause is fixed: the next attempt allocates, and the gauge goes back to 0.
    harness
        .aws
        .lambda
        .world()
        .functions
        .entry("f".into())
        .or_default()
        .init_fails = None;
    harness.pass(20.0 * 60.0).await;
    assert_eq!(harness.sample(failed), Some(0.0));
    let status = http::status_of(&harness.view, "f:live").expect("a status");
    assert_eq!(
        (status.allocation.as_ref(), status.allocated),
        ("READY", 20)
    );
    assert!(
        status
            .last_activity
            .is_some_and(|last| last.outcome.starts_with("READY after")),
        "{:?}",
        harness.puts()
    );
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_jump_on_the_last_unread_function_of_a_cold_start_is_written_within_the_interval() {
    // 2,500 functions at the default budget (2/s): reading each once takes over 20
    // minutes. Every target needs its floor, 1, and has it (so none is read ahead of
    // the others), but for one, read last in name order, whose demand jumps 160 s in.
    let targets: String = (0..2_500)
        .map(|index| tracked(&format!("fn{index:04}")))
        .collect();
    let harness = Harness::start("interval = \"20s\"", &targets, |world| {
        for index in 0..2_500 {
            world.set_config(&format!("fn{index:04}"), "live", 1);
        }
    })
    .await;
    for index in 0..2_500 {
        harness.demand(&format!("fn{index:04}"), 0.7);
    }
    harness.pass(160.0).await;
    // The last function in name order, unread, and the first, read long before.
    let jumped_at = harness.now();
    harness.demand("fn2499", 70.0);
    harness.demand("fn0000", 70.0);
    harness.pass(60.0).await;
    let scans = harness.requests(Some(SCAN)).len();
    for function in ["fn2499", "fn0000"] {
        let put = harness
            .puts()
            .into_iter()
            .find(|(_, put, value)| put == function && *value == 100);
        assert!(
            put.as_ref()
                .is_some_and(|(at, _, _)| *at - jumped_at <= 25.0),
            "jump at {jumped_at:.1} s, put {put:?}; {scans} of 2,500 functions read"
        );
    }
    assert!(scans < 600, "still a cold start: {scans} functions read");
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_with_a_snapshot_scans_the_surging_functions_first() {
    // 2,500 functions, each at 50 with demand 35 (needs 50): what a first run learns and
    // keeps in `state_directory`. It reads them at 14/s to be done in 3 minutes.
    let state = tempfile::tempdir().expect("a temporary directory");
    let settings = |budget: &str| {
        format!(
            "interval = \"20s\"\n{budget}state_directory = \"{}\"",
            state.path().display()
        )
    };
    let name = |index: usize| format!("fn{index:04}");
    let targets: String = (0..2_500).map(|index| tracked(&name(index))).collect();
    let at_fifty = |world: &mut FakeWorld| {
        for index in 0..2_500 {
            world.set_config(&name(index), "live", 50);
        }
    };
    let first = Harness::start(
        &settings("control_plane_budget = 14.0\n"),
        &targets,
        at_fifty,
    )
    .await;
    for index in 0..2_500 {
        first.demand(&name(index), 35.0);
    }
    first.pass(250.0).await;
    assert_eq!(
        first.requests(Some(SCAN)).len(),
        2_500,
        "every function read"
    );
    first.stop().await;
    let kept = state.path().join("snapshot.json");
    assert!(kept.is_file(), "a snapshot was kept");

    // The restart, at the default budget (2/s: 21 minutes to read everything). Demand
    // surged meanwhile on five functions spread over the names: the snapshot says they
    // have 50, they need 100, so their functions are read first and written within
    // the interval. Then a jump on the function read last reaches the wire as fast.
    let surging = [100, 900, 1_700, 2_300, 2_498];
    let restarted = Harness::start(&settings(""), &targets, at_fifty).await;
    for index in 0..2_500 {
        let demand = if surging.contains(&index) { 70.0 } else { 35.0 };
        restarted.demand(&name(index), demand);
    }
    restarted.pass(30.0).await;
    let puts = restarted.puts();
    for index in surging {
        assert!(
            puts.iter()
                .any(|(at, function, value)| *function == name(index)
                    && *value == 100
                    && *at <= 25.0),
            "{} not written within the interval: {puts:?}",
            name(index)
        );
    }
    restarted.pass(130.0).await;
    let jumped_at = restarted.now();
    restarted.demand("fn2499", 70.0);
    restarted.pass(60.0).await;
    let put = restarted
        .puts()
        .into_iter()
        .find(|(_, function, value)| function == "fn2499" && *value == 100);
    assert!(
        put.as_ref()
            .is_some_and(|(at, _, _)| *at - jumped_at <= 25.0),
        "jump at {jumped_at:.1} s, put {put:?}"
    );
    let scans = restarted.requests(Some(SCAN)).len();
    assert!(scans < 600, "still a cold start: {scans} functions read");
    restarted.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_surge_on_a_quiet_target_is_written_within_the_interval_through_the_sentinel() {
    // Twenty targets held at their floor of 20 for a demand of 1: quiet, each read
    // every 10 minutes. The account's concurrency is their sum.
    let targets: String = (0..20)
        .map(|index| tracked(&format!("q{index:02}")).replace("min = 1\n", "min = 20\n"))
        .collect();
    let harness = Harness::start("interval = \"20s\"", &targets, |world| {
        for index in 0..20 {
            world.set_config(&format!("q{index:02}"), "live", 20);
        }
    })
    .await;
    for index in 0..20 {
        harness.demand(&format!("q{index:02}"), 1.0);
    }
    harness.pass(600.0).await;
    let reads = |reason: &str| {
        harness
            .sample(&format!(
                "pc_autoscaler_metric_reads_total{{reason=\"{reason}\"}}"
            ))
            .unwrap_or(0.0)
    };
    // 30 passes; every interval would have read 600 targets.
    let first = reads("first_reads");
    let quiet = reads("quiet_period_over");
    assert_eq!(first, 60.0, "three first reads each");
    assert!(quiet <= 40.0, "{quiet} reads at the end of a quiet period");
    // The 27 passes after the first reads each read the account's concurrency too.
    assert_eq!(
        harness.sample(
            "pc_autoscaler_cloudwatch_metrics_requested_total{account=\"base\",region=\"default\"}"
        ),
        Some(first + 27.0 + quiet)
    );
    assert!(harness.puts().is_empty(), "{:?}", harness.puts());
    // One of them surges from now on: the account rises by 69 that no target read
    // explains.
    let jumped_at = harness.now();
    let surge_from = start_time() + TimeDelta::seconds(jumped_at as i64);
    let points = (0..7 * 60)
        .map(|minute| {
            let timestamp = start_time() - TimeDelta::hours(1) + TimeDelta::minutes(minute);
            let value = if timestamp >= surge_from { 70.0 } else { 1.0 };
            Datapoint { timestamp, value }
        })
        .collect();
    harness.aws.metrics.set("q13:live", points);
    harness.pass(40.0).await;
    let put = harness
        .puts()
        .into_iter()
        .find(|(_, function, value)| function == "q13" && *value == 100);
    assert!(
        put.as_ref()
            .is_some_and(|(at, _, _)| *at - jumped_at <= 25.0),
        "jump at {jumped_at:.1} s, put {put:?}"
    );
    assert!(
        reads("sentinel") >= 19.0,
        "the quiet targets were read at once"
    );
    harness.stop().await;
}
