//! The judgement of configs made up by hand: flags, dollars to the cent, replays.

use super::*;
use crate::aws::Alias;

fn observed(function: &str, qualifier: &str, requested: u32) -> Observed {
    Observed {
        function: FunctionSummary {
            name: function.into(),
            memory_mb: 2048,
            arm64: false,
        },
        qualifier: qualifier.into(),
        config: ProvisionedConfig {
            requested,
            allocated: requested,
            status: AllocationStatus::Ready,
            status_reason: None,
            last_modified: None,
        },
        function_requested: requested,
        reserved: None,
        aliases: [(
            "live".to_owned(),
            Alias {
                version: "3".into(),
                weighted_to: Vec::new(),
            },
        )]
        .into_iter()
        .collect(),
        scalable_target: None,
        history: History {
            start: chrono::DateTime::UNIX_EPOCH,
            concurrency: vec![Some(7.0); 2 * MIN_REPLAY_MINUTES],
            utilization: vec![0.7; 100],
            provisioned_invocations: 1_000.0,
            spillover_invocations: 10.0,
        },
    }
}

fn flags_of(one: &Observed) -> Vec<String> {
    judge(one, &Price::us_east_1())
        .flags
        .iter()
        .map(Flag::label)
        .collect()
}

#[test]
fn dollars_a_month_are_the_published_price_of_what_is_requested() {
    // 10 × 2 GB × 730 h × 3,600 s × $0.0000041667 = $219.0017...
    let report = judge(&observed("f", "live", 10), &Price::us_east_1());
    assert_eq!(format!("{:.2}", report.dollars_a_month), "219.00");
    // Graviton, 1 GB, 5: 5 × 1 × 2,628,000 × $0.0000033334 = $43.80.
    let mut arm = observed("g", "live", 5);
    arm.function.memory_mb = 1024;
    arm.function.arm64 = true;
    let report = judge(&arm, &Price::us_east_1());
    assert_eq!(format!("{:.2}", report.dollars_a_month), "43.80");
    assert_eq!(
        report.spillover_pct.map(|pct| format!("{pct:.2}")),
        Some("0.99".into())
    );
}

#[test]
fn the_whole_bill_counts_provisioned_time_duration_on_it_and_on_demand_and_requests() {
    // Steady 7 against 10, 2 GB x86, 2 days, 1,010 invocations. A month of it:
    // provisioned 10 × 2 GB × 2,628,000 s × $0.0000041667 = $219.0018;
    // duration on provisioned 7 × 60 s × 2 GB × $0.0000097222 × 43,800 minutes = $357.6992;
    // requests 1,010 ÷ 10^6 × $0.20 × (2,628,000 s ÷ 172,800 s) = $0.0031; in all $576.70.
    let report = judge(&observed("f", "live", 10), &Price::us_east_1());
    assert_eq!(
        format!("{:.2}", report.replayed[0].bill_dollars_a_month),
        "576.70"
    );
    // Pinned at 5 instead, 2 of the 7 spill to on demand at $0.0000166667:
    // 5 × 2 × 2,628,000 × $0.0000041667 = $109.5009; 5 × 60 × 2 × $0.0000097222 × 43,800
    // = $255.4994; 2 × 60 × 2 × $0.0000166667 × 43,800 = $175.2004; $0.0031: $540.20.
    let report = judge(&observed("f", "live", 5), &Price::us_east_1());
    assert_eq!(
        format!("{:.2}", report.replayed[0].bill_dollars_a_month),
        "540.20"
    );
    assert!((report.replayed[0].spillover_pct - 200.0 / 7.0).abs() < 1e-9);
}

#[test]
fn each_failure_is_flagged() {
    assert!(flags_of(&observed("f", "live", 10)).is_empty());
    let mut unused = observed("f", "live", 10);
    unused.history.provisioned_invocations = 0.0;
    assert_eq!(flags_of(&unused), ["unused"]);
    assert_eq!(
        flags_of(&observed("f", "7", 10)),
        ["version no alias routes to"]
    );
    assert!(
        flags_of(&observed("f", "3", 10)).is_empty(),
        "live routes to 3"
    );
    let mut weighted = observed("f", "live", 10);
    weighted.aliases.insert(
        "live".into(),
        Alias {
            version: "3".into(),
            weighted_to: vec!["4".into()],
        },
    );
    assert_eq!(flags_of(&weighted), ["weighted alias"]);
    let mut failed = observed("f", "live", 10);
    failed.config.status = AllocationStatus::Failed;
    assert_eq!(flags_of(&failed), ["FAILED"]);
    let mut above = observed("f", "live", 10);
    above.reserved = Some(8);
    assert_eq!(flags_of(&above), ["above reserved (8)"]);
    let mut aas = observed("f", "live", 10);
    aas.scalable_target = Some(ScalableTarget {
        function: "f".into(),
        qualifier: "live".into(),
        min: 1,
        max: 10,
        suspended: Default::default(),
    });
    assert_eq!(flags_of(&aas), ["managed by AAS"]);
    let mut idle = observed("f", "live", 10);
    idle.history.utilization = vec![0.2; 100];
    assert_eq!(flags_of(&idle), ["cheaper on-demand (break-even 60 %)"]);
}

#[test]
fn a_day_of_history_is_replayed_through_the_four_policies_and_less_is_not() {
    let report = judge(&observed("f", "live", 10), &Price::us_east_1());
    let names: Vec<&str> = report
        .replayed
        .iter()
        .map(|one| one.policy.as_str())
        .collect();
    assert_eq!(
        names,
        ["static today", "pc-autoscaler", "aas-equal-cost", "oracle"]
    );
    // Steady 7 against 10 provisioned: the static config never spills and costs what
    // is requested.
    assert_eq!(report.replayed[0].spillover_pct, 0.0);
    assert_eq!(
        format!("{:.2}", report.replayed[0].provisioned_dollars_a_month),
        "219.00"
    );
    let mut short = observed("f", "live", 10);
    short.history.concurrency.truncate(MIN_REPLAY_MINUTES - 1);
    assert!(judge(&short, &Price::us_east_1()).replayed.is_empty());
}

#[test]
fn the_starter_config_passes_check_and_names_what_it_leaves_alone() {
    let mut unused = observed("old", "1", 4);
    unused.history.provisioned_invocations = 0.0;
    let prices = Price::us_east_1();
    let judged = [observed("f", "live", 10), unused]
        .iter()
        .map(|one| judge(one, &prices))
        .collect();
    let report = assess(judged, "us-east-1", 14, &prices);
    let starter = report
        .starter_config
        .clone()
        .expect("one config is worth managing");
    let config = crate::config::parse(&starter, Path::new("audit.toml"))
        .unwrap_or_else(|errors| panic!("{errors}\n{starter}"));
    assert_eq!(config.targets.len(), 1);
    assert!(starter.contains("# left alone: old:1 (unused"));
    assert_eq!(
        report.delete_commands,
        [
            "aws lambda delete-provisioned-concurrency-config --function-name old --qualifier 1 --region us-east-1"
        ]
    );
    // Totals: the unused config is deleted when managed.
    assert!(
        report.managed_bill_dollars_a_month < report.static_bill_dollars_a_month,
        "{}",
        render(&report)
    );
}
