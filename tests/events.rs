//! Activities out to EventBridge over the wire: moto's EventBridge with a rule that
//! sends every pc-autoscaler event to an SQS queue, the real daemon writing to the
//! local Lambda endpoint. Every write has its event; a bus that refuses every call
//! never slows the scaling, and what could not be sent is counted.

#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::aws_endpoint::Endpoint;
use common::moto::Moto;
use common::{Daemon, aws_config, daemon_settings, free_port, puts_of, text, wait_for};

fn eventbridge(command: &str, moto: &Moto) -> String {
    let output = std::process::Command::new(common::repo_file("target/moto-venv/bin/python"))
        .arg(common::repo_file("tests/common/eventbridge.py"))
        .args([command, &moto.url])
        .output()
        .expect("python runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

fn daemon_with_events(
    endpoint: &Endpoint,
    events: &str,
    targets: &str,
) -> (tempfile::TempDir, Daemon) {
    let port = free_port();
    let settings = format!("{}\n{events}", daemon_settings(port, "1s"));
    let (dir, config) = aws_config(&endpoint.url, &settings, targets);
    let daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    (dir, daemon)
}

#[test]
fn every_write_has_its_event_on_the_bus_with_the_documented_detail() {
    let moto = Moto::start();
    eventbridge("setup", &moto);
    let endpoint = common::endpoint_wanting_100();
    let events = format!(
        "[events]\nbus = \"default\"\nendpoint_url = \"{}\"",
        moto.url
    );
    let (_dir, daemon) =
        daemon_with_events(&endpoint, &events, &common::tracked_target("f", "live"));
    daemon.wait_for_put(&endpoint, 100, Duration::from_secs(20));
    let mut seen: Vec<serde_json::Value> = Vec::new();
    let complete = wait_for(Duration::from_secs(20), || {
        seen.extend(
            eventbridge("drain", &moto)
                .lines()
                .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("an event")),
        );
        seen.iter().any(|event| {
            event["detail"]["outcome"]
                .as_str()
                .is_some_and(|outcome| outcome.starts_with("READY after"))
        })
    });
    assert!(complete, "{seen:#?}\n{}", daemon.log());
    let writes: Vec<&serde_json::Value> = seen
        .iter()
        .filter(|event| event["detail-type"] == "Scaling Activity")
        .collect();
    let sent = writes
        .iter()
        .find(|event| event["detail"]["outcome"] == "sent")
        .expect("the write, as it was sent");
    assert_eq!(sent["source"], "pc-autoscaler");
    let detail = &sent["detail"];
    assert_eq!(detail["target"], "f:live");
    assert_eq!(detail["to"], 100);
    assert_eq!(detail["kind"], "write");
    assert_eq!(detail["region"], "us-east-1");
    assert!(
        detail["reason"]
            .as_str()
            .is_some_and(|reason| reason.starts_with("tracking")),
        "{detail}"
    );
    assert!(
        detail["trigger"].is_string() && detail["epoch"].is_u64() && detail["id"].is_u64(),
        "{detail}"
    );
    // Every write the endpoint saw has its event.
    assert_eq!(
        writes
            .iter()
            .filter(|event| event["detail"]["outcome"] == "sent")
            .count(),
        puts_of(&endpoint, 100).len()
    );
    assert!(
        daemon
            .metric("pc_autoscaler_events_total{outcome=\"sent\"}")
            .is_some_and(|sent| sent >= 2.0)
    );
}

#[test]
fn a_bus_that_refuses_every_call_never_slows_scaling_and_drops_are_counted() {
    let endpoint = Endpoint::start();
    let targets: String = (0..12)
        .map(|index| {
            let function = format!("f{index:02}");
            endpoint
                .world()
                .set_concurrency(&function, "live", &[7.0], 2);
            common::tracked_target(&function, "live")
        })
        .collect();
    // Nothing listens there: every call fails.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let events = format!("[events]\nendpoint_url = \"{closed}\"\nqueue = 10");
    let (_dir, daemon) = daemon_with_events(&endpoint, &events, &targets);
    assert!(
        wait_for(Duration::from_secs(20), || puts_of(&endpoint, 10).len()
            == 12),
        "{}",
        daemon.log()
    );
    assert!(
        wait_for(Duration::from_secs(10), || daemon
            .metric("pc_autoscaler_events_total{outcome=\"dropped\"}")
            .is_some_and(|dropped| dropped > 0.0)),
        "{}",
        daemon.log()
    );
    assert_eq!(
        daemon.metric("pc_autoscaler_events_total{outcome=\"sent\"}"),
        Some(0.0)
    );
    assert_eq!(daemon.probe("/healthz"), Some(200));
}
