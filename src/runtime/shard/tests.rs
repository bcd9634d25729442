//! Transitions of the shard state machine, without tokio: each test is a table of
//! events and the effects they must give, written as short texts ([`summary`]).
//! Time is moved by hand; the driver in virtual time (`daemon/virtual_time.rs`) tests
//! the whole loop.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

use super::due::Lane;
use super::*;
use crate::aws::Series;
use crate::policy::{AllocationStatus, Datapoint};
use crate::runtime::knowing::aas::TakeoverOutcome;
use crate::runtime::state::activity::ActivityIds;
use crate::runtime::state::store::Document as _;

/// Monday 2026-11-23, 08:59:00 UTC.
fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T08:59:00Z")
        .expect("a valid time")
        .with_timezone(&Utc)
}

fn configs(text: &str) -> (DaemonSettings, Vec<TargetConfig>) {
    let config = crate::config::parse(text, std::path::Path::new("t.toml"))
        .unwrap_or_else(|error| panic!("{error}\n{text}"));
    (config.daemon, config.targets)
}

fn fixed(function: &str, min: u32) -> String {
    format!("[[target]]\nfunction = \"{function}\"\nqualifier = \"live\"\nmin = {min}\nmax = 500\n")
}

const FORECASTING: &str = "[[target]]\nfunction = \"batch\"\nqualifier = \"live\"\nmin = 1\nmax = 500\n\
     tracking = { metric = \"concurrency\", target = 0.7, forecast = \"on\" }\n";

fn function(name: &str) -> FunctionId {
    FunctionId {
        name: name.into(),
        account: None,
        reference: name.into(),
    }
}

fn config(requested: u32, status: AllocationStatus) -> ProvisionedConfig {
    ProvisionedConfig {
        requested,
        allocated: if status == AllocationStatus::Ready {
            requested
        } else {
            0
        },
        status,
        ..ProvisionedConfig::default()
    }
}

fn configs_of(qualifier: &str, requested: u32) -> FunctionConfigs {
    BTreeMap::from([(
        qualifier.to_owned(),
        config(requested, AllocationStatus::Ready),
    )])
}

/// One effect as a short text.
fn summary(effect: &Effect) -> String {
    match effect {
        Effect::ReadMetrics { targets, reach, .. } => {
            let names: Vec<&str> = targets.iter().map(|target| target.name.as_str()).collect();
            match (names.is_empty(), reach.account) {
                (true, false) => "read metrics of 0".to_owned(),
                (true, true) => "read the account".to_owned(),
                (false, false) => format!("read metrics of {}", names.join(",")),
                (false, true) => format!("read metrics of {} and the account", names.join(",")),
            }
        }
        Effect::ReadHistory(targets) => {
            let names: Vec<&str> = targets.iter().map(|target| target.name.as_str()).collect();
            format!("read history of {}", names.join(","))
        }
        Effect::Read { lane, read } => match read {
            Read::Scan {
                function, priority, ..
            } => format!("scan {} ({}, {lane:?})", function.name, priority.label()),
            Read::ReadBack(target) => format!("read back {}", target.name),
            Read::Refresh { function, .. } => format!("refresh {}", function.name),
            Read::Account => "read account".into(),
            Read::Aas => "read aas".into(),
        },
        Effect::Write {
            target,
            to,
            priority,
        } => format!("write {} {to} ({})", target.name, priority.label()),
        Effect::Record(activity) => format!(
            "record {:?} {} {:?}->{:?} ({:?}): {}",
            activity.kind,
            activity.target,
            activity.from,
            activity.to,
            activity.trigger,
            activity.outcome
        ),
        Effect::SetOutcome {
            target, outcome, ..
        } => format!("outcome {target}: {outcome}"),
        Effect::PassStarted { .. } => "pass started".into(),
        Effect::PassEnded { outcome, ready } => {
            format!("pass ended {} (ready {ready})", outcome.label())
        }
        Effect::ArmBoundary(when) => format!("arm {}", when.format("%H:%M")),
        Effect::TakeOver { target, before } => format!("take over {} from {before:?}", target.name),
        Effect::SaveSnapshot(bytes) => {
            let snapshot: crate::runtime::state::snapshot::Snapshot =
                serde_json::from_slice(bytes).expect("a snapshot");
            format!("save snapshot of {} functions", snapshot.functions.len())
        }
    }
}

/// A shard and its clocks.
struct Machine {
    shard: Shard,
    origin: Instant,
    /// Seconds since the start.
    seconds: f64,
    /// Whether reads of Application Auto Scaling show among the effects: most tests
    /// answer the first at the start (no scalable targets) and leave the rest.
    shows_aas: bool,
}

impl Machine {
    /// A shard started on `text`, and what the start asked for.
    fn start(text: &str) -> (Self, Vec<String>) {
        Self::start_remembering(text, None, false)
    }

    /// A shard started on `text` with the snapshot `remembered`, and (with
    /// `snapshots`) handing out its own.
    fn start_remembering(
        text: &str,
        remembered: Option<Vec<u8>>,
        snapshots: bool,
    ) -> (Self, Vec<String>) {
        Self::start_with(text, remembered, snapshots, false)
    }

    /// [`Machine::start_remembering`], reading overrides with `reads_overrides`.
    fn start_with(
        text: &str,
        remembered: Option<Vec<u8>>,
        snapshots: bool,
        reads_overrides: bool,
    ) -> (Self, Vec<String>) {
        let mut machine = Machine {
            shard: Shard::new(ActivityIds::default(), 0, 7),
            origin: Instant::now(),
            seconds: 0.0,
            shows_aas: false,
        };
        let (settings, targets) = configs(text);
        let mut effects = machine.on(Event::Start {
            settings,
            targets,
            remembered,
            snapshots,
            reads_overrides,
        });
        effects.extend(machine.aas_read(Ok(Vec::new()), Ok(Handovers::empty())));
        (machine, effects)
    }

    fn aas_read(
        &mut self,
        scalable: Result<Vec<crate::aws::ScalableTarget>, String>,
        records: Result<Handovers, String>,
    ) -> Vec<String> {
        self.on(Event::Read {
            lane: Lane::Urgent,
            done: ReadDone::Aas { scalable, records },
        })
    }

    fn now(&self) -> Now {
        Now {
            instant: self.origin + Duration::from_secs_f64(self.seconds),
            wall: start_time() + TimeDelta::milliseconds((self.seconds * 1000.0) as i64),
        }
    }

    fn on(&mut self, event: Event) -> Vec<String> {
        let now = self.now();
        let effects = self.shard.handle(event, now);
        let shown = effects.iter().filter(|effect| {
            self.shows_aas
                || !matches!(
                    effect,
                    Effect::Read {
                        read: Read::Aas,
                        ..
                    }
                )
        });
        shown.map(summary).collect()
    }

    /// Moves time on to `seconds` and hands the shard its due work.
    fn due_at(&mut self, seconds: f64) -> Vec<String> {
        self.seconds = seconds;
        self.on(Event::Due)
    }

    fn scanned(&mut self, name: &str, configs: FunctionConfigs, lane: Lane) -> Vec<String> {
        let writes_before = self
            .shard
            .targets
            .function(&function(name))
            .map_or(0, |slot| slot.writes_ended);
        self.on(Event::Read {
            lane,
            done: ReadDone::Scan {
                function: function(name),
                writes_before,
                result: Ok(configs),
            },
        })
    }

    fn wrote(
        &mut self,
        name: &str,
        result: Result<Option<ProvisionedConfig>, AwsError>,
    ) -> Vec<String> {
        self.on(Event::Wrote {
            function: function(name),
            result,
        })
    }

    /// A pass whose metric read gives each named target `value` now.
    fn pass_with(&mut self, demand: &[(&str, f64)]) -> Vec<String> {
        self.on(Event::Tick);
        let series = demand
            .iter()
            .map(|(name, value)| {
                let points = vec![Datapoint {
                    timestamp: self.now().wall - TimeDelta::minutes(2),
                    value: *value,
                }];
                let series = Series {
                    points,
                    status: crate::aws::SeriesStatus::Complete,
                };
                (TargetName::from(*name), series)
            })
            .collect();
        self.on(Event::MetricsRead(PassRead {
            series: Some(series),
            timed_out: false,
            account: None,
        }))
    }
}

impl Machine {
    /// A pass at `seconds`: what its start asks for, and what its read of `demand`
    /// (each target's value now) and of the account (`(minutes ago, value)`) brings.
    fn pass_at(
        &mut self,
        seconds: f64,
        demand: &[(&str, f64)],
        account: &[(i64, f64)],
    ) -> (Vec<String>, Vec<String>) {
        self.seconds = seconds;
        let started = self.on(Event::Tick);
        let ended = self.read(demand, account);
        (started, ended)
    }

    fn read(&mut self, demand: &[(&str, f64)], account: &[(i64, f64)]) -> Vec<String> {
        let now = self.now().wall;
        let series = |points: Vec<Datapoint>| Series {
            points,
            status: crate::aws::SeriesStatus::Complete,
        };
        let targets = demand
            .iter()
            .map(|(name, value)| {
                let points = (0..3)
                    .map(|ago| Datapoint {
                        timestamp: now - TimeDelta::minutes(4 - ago),
                        value: *value,
                    })
                    .collect();
                (TargetName::from(*name), series(points))
            })
            .collect();
        let account = (!account.is_empty()).then(|| {
            series(
                account
                    .iter()
                    .map(|(ago, value)| Datapoint {
                        timestamp: now - TimeDelta::minutes(*ago),
                        value: *value,
                    })
                    .collect(),
            )
        });
        self.on(Event::MetricsRead(PassRead {
            series: Some(targets),
            timed_out: false,
            account,
        }))
    }
}

const QUIET_AND_BUSY: &str = "[[target]]\nfunction = \"quiet\"\nqualifier = \"live\"\nmin = 20\nmax = 500\n\
    tracking = { metric = \"concurrency\", target = 0.7 }\n\
    [[target]]\nfunction = \"busy\"\nqualifier = \"live\"\nmin = 1\nmax = 500\n\
    tracking = { metric = \"concurrency\", target = 0.7 }\n";

/// Both targets known and read through their first reads: `quiet` has its floor, 20,
/// for a demand of 1 (it could take 12 more before it nears its target), `busy` 10
/// for a demand of 7. Neither needs a write.
fn quiet_and_busy() -> Machine {
    let (mut machine, _) = Machine::start(QUIET_AND_BUSY);
    machine.due_at(0.0);
    machine.scanned("quiet", configs_of("live", 20), Lane::Scan);
    machine.scanned("busy", configs_of("live", 10), Lane::Scan);
    for pass in 0..3 {
        let (started, _) = machine.pass_at(
            60.0 * f64::from(pass),
            &[("quiet:live", 1.0), ("busy:live", 7.0)],
            &[],
        );
        assert_eq!(
            started[0], "read metrics of quiet:live,busy:live",
            "first reads"
        );
    }
    machine
}

#[test]
fn a_quiet_target_is_read_at_its_period_and_decided_only_then() {
    let mut machine = quiet_and_busy();
    let mut quiet_reads = Vec::new();
    for pass in 3..25 {
        let seconds = 60.0 * f64::from(pass);
        let (started, ended) =
            machine.pass_at(seconds, &[("quiet:live", 1.0), ("busy:live", 7.0)], &[]);
        if started[0].contains("quiet:live") {
            quiet_reads.push(pass);
        } else {
            assert_eq!(
                started[0], "read metrics of busy:live and the account",
                "pass {pass}"
            );
            // Not read, not decided: nothing is written for it, up or down.
            assert!(
                !ended.iter().any(|effect| effect.contains("quiet")),
                "{ended:?}"
            );
        }
    }
    // Every 10 minutes after its last first read, at minute 2.
    assert_eq!(quiet_reads, [12, 22]);
}

#[test]
fn a_quiet_read_that_brings_nothing_is_tried_again_at_the_next_pass() {
    let mut machine = quiet_and_busy();
    for pass in 3..12 {
        machine.pass_at(60.0 * f64::from(pass), &[("busy:live", 7.0)], &[]);
    }
    // Its quiet period is over, and its read fails.
    let (started, _) = machine.pass_at(720.0, &[("busy:live", 7.0)], &[]);
    assert_eq!(started[0], "read metrics of quiet:live,busy:live");
    let (started, _) = machine.pass_at(780.0, &[("quiet:live", 1.0), ("busy:live", 7.0)], &[]);
    assert_eq!(
        started[0], "read metrics of quiet:live,busy:live",
        "read again"
    );
    let (started, _) = machine.pass_at(840.0, &[("busy:live", 7.0)], &[]);
    assert_eq!(
        started[0], "read metrics of busy:live and the account",
        "quiet again"
    );
}

#[test]
fn the_sentinel_reads_the_quiet_targets_within_the_pass_when_the_account_rises() {
    let mut machine = quiet_and_busy();
    // The account rose by 2 while the busy target rose by 2 too: explained.
    let (started, ended) = machine.pass_at(240.0, &[("busy:live", 9.0)], &[(5, 100.0), (3, 102.0)]);
    assert_eq!(started[0], "read metrics of busy:live and the account");
    assert!(
        ended
            .iter()
            .all(|effect| !effect.starts_with("read metrics")),
        "{ended:?}"
    );
    // Now it rises by 50 that the busy target does not explain: the quiet one may be
    // the one rising, so it is read at once, in the same pass, and decided on it.
    let (started, ended) = machine.pass_at(300.0, &[("busy:live", 7.0)], &[(5, 100.0), (2, 150.0)]);
    assert_eq!(started[0], "read metrics of busy:live and the account");
    assert!(
        ended.contains(&"read metrics of quiet:live".to_owned()),
        "{ended:?}"
    );
    assert!(
        !ended.iter().any(|effect| effect.starts_with("pass ended")),
        "{ended:?}"
    );
    let decided = machine.read(&[("quiet:live", 49.0)], &[]);
    assert!(
        decided.contains(&"write quiet:live 70 (scale_out)".to_owned()),
        "{decided:?}"
    );
    assert!(
        decided
            .iter()
            .any(|effect| effect.starts_with("pass ended informed")),
        "{decided:?}"
    );
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|text| (*text).to_owned()).collect()
}

#[test]
fn a_start_queues_the_first_reads_and_a_first_scan_decides_and_writes() {
    let (mut machine, started) = Machine::start(&fixed("f", 5));
    assert!(
        started.is_empty(),
        "nothing is read before it is due: {started:?}"
    );
    assert_eq!(
        machine.due_at(0.0),
        strings(&["scan f (drift_scan, Scan)", "refresh f", "read account",])
    );
    // An untracked target needs no metrics: the first scan decides it.
    assert_eq!(
        machine.scanned("f", FunctionConfigs::new(), Lane::Scan),
        strings(&[
            "record Write f:live Some(0)->Some(5) (Scan): sent",
            "write f:live 5 (scale_out)",
        ])
    );
    // The next drift scan is queued a period later.
    let period = machine.shard.settings().drift_scan_period.as_secs_f64();
    assert!(machine.due_at(period - 1.0).is_empty());
}

#[test]
fn an_accepted_write_is_followed_to_ready_and_the_target_decided_again() {
    let (mut machine, _) = Machine::start(&fixed("f", 5));
    machine.due_at(0.0);
    machine.scanned("f", FunctionConfigs::new(), Lane::Scan);
    machine.seconds = 1.0;
    assert_eq!(
        machine.wrote("f", Ok(Some(config(5, AllocationStatus::InProgress)))),
        strings(&["outcome f:live: IN_PROGRESS"])
    );
    assert!(
        machine.due_at(2.9).is_empty(),
        "the first read-back is 2 s after"
    );
    assert_eq!(machine.due_at(3.0), strings(&["read back f:live"]));
    machine.seconds = 4.0;
    let settled = machine.on(Event::Read {
        lane: Lane::Urgent,
        done: ReadDone::ReadBack {
            target: "f:live".into(),
            result: Ok(Some(config(5, AllocationStatus::Ready))),
        },
    });
    assert_eq!(settled, strings(&["outcome f:live: READY after 3 s"]));
}

#[test]
fn a_throttle_retries_when_lambda_says_and_a_conflict_scans_first() {
    let (mut machine, _) = Machine::start(&fixed("f", 5));
    machine.due_at(0.0);
    machine.scanned("f", FunctionConfigs::new(), Lane::Scan);
    let throttled = AwsError::Throttled {
        retry_after: Some(Duration::from_secs(5)),
        reason: None,
        message: String::new(),
    };
    assert_eq!(
        machine.wrote("f", Err(throttled)),
        strings(&["outcome f:live: throttled"])
    );
    assert!(machine.due_at(4.9).is_empty());
    assert_eq!(
        machine.due_at(5.0),
        strings(&[
            "record Write f:live Some(0)->Some(5) (Retry): sent",
            "write f:live 5 (scale_out)",
        ])
    );
    let conflict = AwsError::Conflict {
        message: String::new(),
    };
    assert_eq!(
        machine.wrote("f", Err(conflict)),
        strings(&["outcome f:live: conflict"])
    );
    assert_eq!(
        machine.due_at(5.0),
        strings(&["scan f (read_back, Urgent)"]),
        "read what is there before deciding again"
    );
    // The urgent scan decides the target again, whatever it found.
    assert_eq!(
        machine.scanned("f", FunctionConfigs::new(), Lane::Urgent),
        strings(&[
            "record Write f:live Some(0)->Some(5) (Scan): sent",
            "write f:live 5 (scale_out)",
        ])
    );
}

#[test]
fn a_refused_value_is_blocked_and_not_sent_again_until_the_refusal_ends() {
    let (mut machine, _) = Machine::start(&fixed("f", 5));
    machine.due_at(0.0);
    machine.scanned("f", FunctionConfigs::new(), Lane::Scan);
    let invalid = AwsError::InvalidParameter {
        message: "too many".into(),
    };
    assert_eq!(
        machine.wrote("f", Err(invalid)),
        strings(&["outcome f:live: refused: too many"])
    );
    let blocked = machine.pass_with(&[]);
    assert!(
        blocked
            .iter()
            .any(|effect| effect.starts_with("record Blocked f:live")),
        "{blocked:?}"
    );
    assert!(!blocked.iter().any(|effect| effect.starts_with("write")));
    // Not recorded again while it lasts.
    machine.seconds = 60.0;
    let again = machine.pass_with(&[]);
    assert!(
        !again.iter().any(|effect| effect.starts_with("record")),
        "{again:?}"
    );
    let refusal = crate::runtime::course::REFUSAL_MEMORY.as_secs_f64();
    let mut retried = machine.due_at(refusal);
    retried.retain(|effect| !effect.starts_with("scan"));
    assert_eq!(
        retried,
        strings(&[
            "record Write f:live Some(0)->Some(5) (Retry): sent",
            "write f:live 5 (scale_out)",
        ])
    );
}

#[test]
fn a_scan_that_may_predate_a_write_is_not_news_but_drift_is() {
    let (mut machine, _) = Machine::start(&fixed("f", 5));
    machine.due_at(0.0);
    machine.scanned("f", FunctionConfigs::new(), Lane::Scan);
    // A scan sent before the write ended answers after it: ignored.
    let stale = machine.on(Event::Read {
        lane: Lane::Scan,
        done: ReadDone::Scan {
            function: function("f"),
            writes_before: 0,
            result: Ok(FunctionConfigs::new()),
        },
    });
    assert!(stale.is_empty(), "{stale:?}");
    machine.wrote("f", Ok(Some(config(5, AllocationStatus::Ready))));
    // Someone else sets 1: recorded as drift and corrected at once.
    assert_eq!(
        machine.scanned("f", configs_of("live", 1), Lane::Scan),
        strings(&[
            "record Drift f:live Some(5)->Some(1) (Drift): decided again",
            "record Write f:live Some(1)->Some(5) (Drift): sent",
            "write f:live 5 (scale_out)",
        ])
    );
    let drift = machine
        .shard
        .targets
        .get("f:live")
        .expect("a slot")
        .counts
        .drift;
    assert_eq!(drift, 1);
}

#[test]
fn a_lost_write_releases_its_function_and_reads_it_again() {
    let (mut machine, _) = Machine::start(&fixed("f", 5));
    machine.due_at(0.0);
    machine.scanned("f", FunctionConfigs::new(), Lane::Scan);
    assert!(
        machine
            .on(Event::WriteLost {
                function: function("f")
            })
            .is_empty()
    );
    assert_eq!(
        machine.due_at(0.0),
        strings(&["scan f (read_back, Urgent)"])
    );
    let writing = machine
        .shard
        .targets
        .function(&function("f"))
        .expect("known");
    assert!(writing.writing.is_none());
}

#[test]
fn three_uninformed_passes_make_the_shard_unready_and_one_informed_ready() {
    let (mut machine, _) = Machine::start(&fixed("f", 5));
    let uninformed = |machine: &mut Machine| {
        machine.on(Event::Tick);
        machine.on(Event::Read {
            lane: Lane::Refresh,
            done: ReadDone::Account(Err(AwsError::Timeout {
                message: String::new(),
            })),
        });
        machine.on(Event::MetricsRead(PassRead {
            series: None,
            timed_out: false,
            account: None,
        }))
    };
    assert_eq!(
        uninformed(&mut machine),
        strings(&["pass ended uninformed (ready true)"])
    );
    assert_eq!(
        uninformed(&mut machine),
        strings(&["pass ended uninformed (ready true)"])
    );
    assert_eq!(
        uninformed(&mut machine),
        strings(&["pass ended uninformed (ready false)"])
    );
    let informed = machine.pass_with(&[]);
    assert_eq!(
        informed.last().map(String::as_str),
        Some("pass ended informed (ready true)")
    );
}

#[test]
fn a_target_removed_by_a_reload_and_added_back_reads_its_history_again() {
    let (mut machine, started) = Machine::start(FORECASTING);
    assert_eq!(started, strings(&["read history of batch:live"]));
    machine.on(Event::HistoryRead(Vec::new()));
    let (settings, without) = configs(&fixed("other", 1));
    let removed = machine.on(Event::Reload {
        settings,
        targets: without,
    });
    assert!(
        !removed
            .iter()
            .any(|effect| effect.starts_with("read history"))
    );
    let (settings, back) = configs(FORECASTING);
    let added = machine.on(Event::Reload {
        settings,
        targets: back,
    });
    assert!(
        added.contains(&"read history of batch:live".to_owned()),
        "the history is read again: {added:?}"
    );
    assert_eq!(machine.shard.history_pending(), 1);
}

#[test]
fn a_reload_under_a_pass_asks_for_one_more_pass_when_it_ends() {
    let (mut machine, _) = Machine::start(&fixed("f", 5));
    assert_eq!(
        machine.on(Event::Tick),
        strings(&["read metrics of 0", "pass started"])
    );
    let (settings, targets) = configs(&fixed("f", 6));
    let reloaded = machine.on(Event::Reload { settings, targets });
    assert!(
        !reloaded.contains(&"pass started".to_owned()),
        "{reloaded:?}"
    );
    let ended = machine.on(Event::MetricsRead(PassRead {
        series: Some(SeriesByTarget::new()),
        timed_out: false,
        account: None,
    }));
    assert_eq!(
        ended,
        strings(&[
            "pass ended informed (ready true)",
            "read metrics of 0",
            "pass started",
        ])
    );
}

#[test]
fn five_thousand_targets_at_one_boundary_are_decided_together() {
    let rule =
        "[[target.schedule]]\nname = \"nine\"\ncron = \"0 9 * * *\"\nduration = \"1h\"\nmin = 3\n";
    let text: String = (0..5_000)
        .map(|index| format!("{}{rule}", fixed(&format!("f{index}"), 1)))
        .collect();
    let (mut machine, started) = Machine::start(&text);
    assert_eq!(started, strings(&["arm 09:00"]));
    // Every function read once: each target known at 1.
    for index in 0..5_000 {
        machine.scanned(&format!("f{index}"), configs_of("live", 1), Lane::Scan);
    }
    machine.seconds = 60.0;
    let effects = machine.on(Event::Boundary);
    let writes = effects
        .iter()
        .filter(|effect| effect.starts_with("write") && effect.ends_with(" 3 (scale_out)"))
        .count();
    assert_eq!(writes, 5_000);
    assert_eq!(effects.last().map(String::as_str), Some("arm 10:00"));
}

#[test]
fn a_tracked_target_waits_for_the_first_metric_read() {
    let tracked = "[[target]]\nfunction = \"t\"\nqualifier = \"live\"\nmin = 1\nmax = 500\n\
                   tracking = { metric = \"concurrency\", target = 0.7 }\n";
    let (mut machine, _) = Machine::start(tracked);
    machine.due_at(0.0);
    assert!(
        machine
            .scanned("t", configs_of("live", 5), Lane::Scan)
            .is_empty(),
        "known, but no metrics yet"
    );
    let pass = machine.pass_with(&[("t:live", 70.0)]);
    assert_eq!(
        pass,
        strings(&[
            "record Write t:live Some(5)->Some(100) (Interval): sent",
            "write t:live 100 (scale_out)",
            "pass ended informed (ready true)",
        ])
    );
}

#[test]
fn nothing_is_decided_before_the_first_read_of_the_overrides_and_a_pin_is_written() {
    use crate::runtime::state::overrides::{OverrideList, Scope, StoredOverride, VERSION};
    let tracked = "[[target]]\nfunction = \"t\"\nqualifier = \"live\"\nmin = 1\nmax = 500\n\
                   tracking = { metric = \"concurrency\", target = 0.7 }\n";
    let (mut machine, _) = Machine::start_with(tracked, None, false, true);
    machine.due_at(0.0);
    machine.scanned("t", configs_of("live", 5), Lane::Scan);
    let pass = machine.pass_with(&[("t:live", 70.0)]);
    assert!(
        !pass.iter().any(|effect| effect.starts_with("write")),
        "decided before the overrides were read: {pass:?}"
    );
    let wall = machine.now().wall;
    let pin = StoredOverride {
        id: "1".into(),
        scope: Scope::Target("t:live".into()),
        kind: "pin 30".into(),
        until: wall + TimeDelta::hours(1),
        set_at: wall,
        by: "ops".into(),
        reason: "load test".into(),
    };
    let read = machine.on(Event::OverridesRead(Ok(OverrideList {
        version: VERSION,
        overrides: vec![pin],
    })));
    assert!(
        read.iter()
            .any(|effect| effect == "write t:live 30 (scale_out)"),
        "{read:?}"
    );
    assert!(
        read.iter()
            .any(|effect| effect.starts_with("record Override t:live")
                && effect.contains("set: pin 30")),
        "{read:?}"
    );
    // Unreadable later: the pin stays in force, said once.
    let failed = machine.on(Event::OverridesRead(Err("timed out".into())));
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(machine.shard.overrides.of(&"t:live".into(), wall).len() == 1);
    assert!(
        machine
            .on(Event::OverridesRead(Err("timed out".into())))
            .is_empty()
    );
}

#[test]
fn a_snapshot_is_handed_out_when_it_changed_and_orders_the_next_start() {
    let tracked = |function: &str| {
        format!(
            "[[target]]\nfunction = \"{function}\"\nqualifier = \"live\"\nmin = 1\nmax = 500\n\
             tracking = {{ metric = \"concurrency\", target = 0.7 }}\n"
        )
    };
    let text: String = (0..3).map(|index| tracked(&format!("f{index}"))).collect();
    let (mut machine, _) = Machine::start_remembering(&text, None, true);
    let saves = |effects: Vec<String>| -> Vec<String> {
        effects
            .into_iter()
            .filter(|effect| effect.starts_with("save"))
            .collect()
    };
    for index in 0..2 {
        machine.scanned(&format!("f{index}"), configs_of("live", 1), Lane::Scan);
    }
    assert_eq!(
        saves(machine.due_at(1.0)),
        Vec::<String>::new(),
        "f2 is unknown"
    );
    // The cold start ends with the last function read: kept at once, not at 10 s.
    machine.scanned("f2", configs_of("live", 1), Lane::Scan);
    assert_eq!(
        saves(machine.due_at(1.0)),
        vec!["save snapshot of 3 functions".to_owned()]
    );
    assert_eq!(saves(machine.due_at(60.0)), Vec::<String>::new());
    assert_eq!(
        saves(machine.due_at(120.0)),
        Vec::<String>::new(),
        "unchanged: not handed out again"
    );
    // A start with that snapshot: f2 remembered at 1 now needs 100, so its function is
    // read at once; the others need what was remembered and wait their turn.
    machine.shard.last_snapshot = None;
    machine.seconds = 180.0;
    let bytes = machine
        .shard
        .handle(Event::Due, machine.now())
        .into_iter()
        .find_map(|effect| match effect {
            Effect::SaveSnapshot(bytes) => Some(bytes),
            _ => None,
        })
        .expect("handed out again once forgotten");
    let (mut restarted, _) = Machine::start_remembering(&text, Some(bytes), false);
    restarted.seconds = 1.0;
    restarted.pass_with(&[("f0:live", 0.7), ("f1:live", 0.7), ("f2:live", 70.0)]);
    let started = restarted.due_at(1.0);
    assert_eq!(
        started.first().map(String::as_str),
        Some("scan f2 (read_back, Urgent)"),
        "{started:?}"
    );
    // A snapshot of other targets orders nothing.
    let (mut other, _) =
        Machine::start_remembering(&tracked("g"), Some(b"{\"version\":1}".to_vec()), false);
    assert!(
        other
            .shard
            .targets
            .get("g:live")
            .is_some_and(|slot| slot.remembered.is_none())
    );
    other.seconds = 1.0;
}

#[test]
fn targets_a_selector_finds_after_the_start_take_what_the_snapshot_remembers() {
    let text: String = (0..3)
        .map(|index| {
            format!(
                "[[target]]\nfunction = \"f{index}\"\nqualifier = \"live\"\nmin = 1\nmax = 500\n\
                 tracking = {{ metric = \"concurrency\", target = 0.7 }}\n"
            )
        })
        .collect();
    let (settings, mut selected) = configs(&text);
    for target in &mut selected {
        target.origin = crate::config::Origin::Selector {
            name: "tagged".into(),
            overridden: Vec::new(),
        };
    }
    // A shard whose targets all come from its selector's first discovery.
    let start = |remembered: Option<Vec<u8>>| {
        let mut machine = Machine {
            shard: Shard::new(ActivityIds::default(), 0, 7),
            origin: Instant::now(),
            seconds: 0.0,
            shows_aas: false,
        };
        machine.on(Event::Start {
            settings: settings.clone(),
            targets: Vec::new(),
            remembered,
            snapshots: true,
            reads_overrides: false,
        });
        machine.on(Event::Reload {
            settings: settings.clone(),
            targets: selected.clone(),
        });
        machine
    };
    let mut before = start(None);
    for index in 0..3 {
        before.scanned(&format!("f{index}"), configs_of("live", 1), Lane::Scan);
    }
    before.seconds = 1.0;
    let bytes = before
        .shard
        .handle(Event::Due, before.now())
        .into_iter()
        .find_map(|effect| match effect {
            Effect::SaveSnapshot(bytes) => Some(bytes),
            _ => None,
        })
        .expect("the cold start's end hands out a snapshot");
    let mut after = start(Some(bytes));
    assert!(
        after
            .shard
            .targets
            .iter()
            .all(|(_, slot)| slot.remembered == Some(1)),
        "every target found after the start takes what was remembered"
    );
    after.seconds = 1.0;
    after.pass_with(&[("f0:live", 0.7), ("f1:live", 0.7), ("f2:live", 70.0)]);
    let started = after.due_at(1.0);
    assert_eq!(
        started.first().map(String::as_str),
        Some("scan f2 (read_back, Urgent)"),
        "{started:?}"
    );
}

/// A shard of `functions` functions with two tracked targets each (an alias and a
/// version), every one read and decided once: what a scrape or `/status` reads.
pub(crate) fn decided_shard(functions: usize) -> Shard {
    let text: String = (0..functions)
        .flat_map(|index| {
            ["live", "7"].map(|qualifier| {
                format!(
                    "[[target]]\nfunction = \"fn{index}\"\nqualifier = \"{qualifier}\"\nmin = 1\nmax = 500\n\
                     tracking = {{ metric = \"concurrency\", target = 0.7 }}\n"
                )
            })
        })
        .collect();
    let (mut machine, _) = Machine::start(&text);
    for index in 0..functions {
        let configs = BTreeMap::from([
            ("live".to_owned(), config(5, AllocationStatus::Ready)),
            ("7".to_owned(), config(5, AllocationStatus::Ready)),
        ]);
        machine.scanned(&format!("fn{index}"), configs, Lane::Scan);
    }
    let names: Vec<String> = (0..functions)
        .flat_map(|index| [format!("fn{index}:live"), format!("fn{index}:7")])
        .collect();
    let demand: Vec<(&str, f64)> = names.iter().map(|name| (name.as_str(), 3.5)).collect();
    machine.pass_with(&demand);
    machine.shard
}

#[test]
fn an_unread_target_that_needs_more_than_its_floor_has_its_function_read_first() {
    let tracked = |function: &str| {
        format!(
            "[[target]]\nfunction = \"{function}\"\nqualifier = \"live\"\nmin = 1\nmax = 500\n\
             tracking = {{ metric = \"concurrency\", target = 0.7 }}\n"
        )
    };
    let text: String = (0..40)
        .map(|index| tracked(&format!("f{index:02}")))
        .collect();
    let (mut machine, _) = Machine::start(&text);
    // The first pass: f39 needs 100; the others need their floor.
    let mut demand: Vec<(String, f64)> = (0..39)
        .map(|index| (format!("f{index:02}:live"), 0.7))
        .collect();
    demand.push(("f39:live".into(), 70.0));
    let demand: Vec<(&str, f64)> = demand
        .iter()
        .map(|(name, value)| (name.as_str(), *value))
        .collect();
    machine.pass_with(&demand);
    let started = machine.due_at(0.0);
    assert_eq!(
        started.first().map(String::as_str),
        Some("scan f39 (drift_scan, Scan)"),
        "{started:?}"
    );
}

fn scalable(function: &str, suspended: crate::aws::SuspendedState) -> crate::aws::ScalableTarget {
    crate::aws::ScalableTarget {
        function: function.into(),
        qualifier: "live".into(),
        min: 1,
        max: 10,
        suspended,
    }
}

#[test]
fn a_target_aas_manages_is_decided_but_not_written_until_aas_lets_go() {
    let (mut machine, _) = Machine::start(&fixed("f", 5));
    let active = crate::aws::SuspendedState::default();
    machine.aas_read(Ok(vec![scalable("f", active)]), Ok(Handovers::empty()));
    machine.due_at(0.0);
    let decided = machine.scanned("f", configs_of("live", 2), Lane::Scan);
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert!(
        decided[0].starts_with("record Blocked f:live Some(2)->Some(5) (Scan)"),
        "{decided:?}"
    );
    let status = machine.shard.statuses(Some("f:live"), 0, 1);
    let blocked = status[0].blocked.as_deref().unwrap_or_default();
    assert!(
        blocked.contains("managed by Application Auto Scaling"),
        "{blocked}"
    );
    assert_eq!(status[0].desired, 5, "what it would do is shown");

    // AAS suspended entirely by someone: nothing of AAS writes, the target is written.
    let all = crate::aws::SuspendedState::ALL;
    assert_eq!(
        machine.aas_read(Ok(vec![scalable("f", all)]), Ok(Handovers::empty())),
        strings(&[
            "record Write f:live Some(2)->Some(5) (Aas): sent",
            "write f:live 5 (scale_out)",
        ])
    );
}

#[test]
fn a_takeover_suspends_aas_before_the_first_write_and_nothing_is_written_before_aas_is_read() {
    let text = format!(
        "[daemon]\nstate_directory = \"/var/lib/pc-autoscaler\"\n{}take_over_aas = true\n",
        fixed("f", 5)
    );
    let (mut machine, _) = Machine::start_with(&text, None, false, false);
    // A fresh shard that has not read AAS yet decides nothing it could write.
    let mut unread = Machine {
        shard: Shard::new(ActivityIds::default(), 0, 7),
        origin: Instant::now(),
        seconds: 0.0,
        shows_aas: true,
    };
    let (settings, targets) = configs(&text);
    unread.on(Event::Start {
        settings,
        targets,
        remembered: None,
        snapshots: false,
        reads_overrides: false,
    });
    assert!(unread.due_at(0.0).contains(&"read aas".to_owned()));
    assert!(
        unread
            .scanned("f", FunctionConfigs::new(), Lane::Scan)
            .is_empty()
    );

    let active = crate::aws::SuspendedState {
        scheduled: true,
        ..Default::default()
    };
    machine.aas_read(Ok(vec![scalable("f", active)]), Ok(Handovers::empty()));
    machine.due_at(0.0);
    let decided = machine.scanned("f", FunctionConfigs::new(), Lane::Scan);
    assert_eq!(
        decided[0],
        format!("take over f:live from {active:?}"),
        "the suspension comes first: {decided:?}"
    );
    assert!(!decided.iter().any(|effect| effect.starts_with("write")));
    let taken = machine.on(Event::TookOver {
        target: "f:live".into(),
        outcome: TakeoverOutcome::Done,
    });
    assert!(taken[0].starts_with("record Handover f:live"), "{taken:?}");
    assert_eq!(
        taken[1..],
        strings(&[
            "record Write f:live Some(0)->Some(5) (Aas): sent",
            "write f:live 5 (scale_out)",
        ])
    );
}

#[test]
fn a_target_someone_else_keeps_changing_is_contested_and_only_raised() {
    let (mut machine, _) = Machine::start(&fixed("f", 5));
    machine.due_at(0.0);
    machine.scanned("f", FunctionConfigs::new(), Lane::Scan);
    machine.wrote("f", Ok(Some(config(5, AllocationStatus::Ready))));
    // Another writer lowers it every 5 minutes; each scan finds it and the target is
    // raised back, until the third change makes it contested.
    let mut recorded = Vec::new();
    for round in 1..=3 {
        machine.seconds = f64::from(round) * 300.0;
        let effects = machine.scanned("f", configs_of("live", 2), Lane::Urgent);
        assert!(
            effects.contains(&"write f:live 5 (scale_out)".to_owned()),
            "raised back in round {round}: {effects:?}"
        );
        machine.wrote("f", Ok(Some(config(5, AllocationStatus::Ready))));
        recorded.extend(effects);
    }
    let contested: Vec<&String> = recorded
        .iter()
        .filter(|effect| effect.starts_with("record Contested"))
        .collect();
    assert_eq!(contested.len(), 1, "{recorded:?}");
    assert!(contested[0].contains("Some(5)->Some(2)"), "{contested:?}");
    assert!(
        machine
            .shard
            .targets
            .get(&TargetName::from("f:live"))
            .is_some_and(|slot| slot.contest.contested())
    );

    // Raised by the other writer: more than needed, but never lowered while contested.
    machine.seconds = 1200.0;
    let raised = machine.scanned("f", configs_of("live", 9), Lane::Urgent);
    assert!(
        !raised.iter().any(|effect| effect.starts_with("write")),
        "{raised:?}"
    );
    assert!(
        raised
            .iter()
            .any(|effect| effect.starts_with("record Blocked f:live Some(9)->Some(5)")),
        "{raised:?}"
    );

    // An hour without a foreign change ends the contest: it is lowered again.
    machine.seconds = 1200.0 + 3601.0;
    let decided = machine.scanned("f", configs_of("live", 9), Lane::Urgent);
    assert!(
        decided
            .iter()
            .any(|effect| effect.starts_with("record Contested f:live None->None")),
        "{decided:?}"
    );
    assert!(
        decided.contains(&"write f:live 5 (scale_in)".to_owned()),
        "{decided:?}"
    );
}
