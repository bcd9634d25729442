//! A fleet from one daemon over the wire: three accounts reached through STS
//! `AssumeRole`, two Regions each, two selectors. The local endpoint serves STS and the
//! tagging API too, and tells accounts apart by the access key each request is signed
//! with (the one its `AssumeRole` gave out) and Regions by the signing scope, so every
//! request lands in its own account and Region's world.

#![allow(clippy::disallowed_methods)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::aws_endpoint::{Endpoint, World};
use common::{Daemon, PUT, free_port, http_get, text, wait_for, write_config};

const ACCOUNTS: [(&str, &str); 3] = [
    ("a", "111111111111"),
    ("b", "222222222222"),
    ("c", "333333333333"),
];
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/pc-autoscaler")
}

fn lock(world: &Arc<Mutex<World>>) -> std::sync::MutexGuard<'_, World> {
    world.lock().expect("the world lock is not poisoned")
}

/// One tagged function with the alias in every account and Region, and the cases.
fn fleet() -> Endpoint {
    let endpoint = Endpoint::start();
    for (name, account) in ACCOUNTS {
        for region in REGIONS {
            let world = endpoint.scope(account, region);
            let mut world = lock(&world);
            let shop = world.function(&format!("shop-{name}-{region}"));
            shop.tags.insert("team".into(), "shop".into());
            shop.aliases.insert("live".into(), false);
        }
    }
    let a_east = endpoint.scope("111111111111", "us-east-1");
    lock(&a_east)
        .function("batch-1")
        .aliases
        .insert("live".into(), false);
    let a_west = endpoint.scope("111111111111", "eu-west-1");
    let mut world = lock(&a_west);
    world
        .function("no-alias")
        .tags
        .insert("team".into(), "shop".into());
    drop(world);
    let b_east = endpoint.scope("222222222222", "us-east-1");
    let mut world = lock(&b_east);
    let bad = world.function("bad");
    bad.tags.insert("team".into(), "shop".into());
    bad.tags.insert("pc-autoscaler:min".into(), "lots".into());
    bad.aliases.insert("live".into(), false);
    drop(world);
    let b_west = endpoint.scope("222222222222", "eu-west-1");
    let mut world = lock(&b_west);
    let tuned = world.function("tuned");
    tuned.tags.insert("team".into(), "shop".into());
    tuned.tags.insert("pc-autoscaler:min".into(), "5".into());
    tuned.aliases.insert("live".into(), false);
    drop(world);
    endpoint.world().denied_roles.insert(role("333333333333"));
    endpoint
}

fn config_text(endpoint: &Endpoint, port: u16) -> String {
    let mut text = format!(
        "[aws]\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\ntimeout = \"2s\"\n\
         [daemon]\nlisten = \"127.0.0.1:{port}\"\ninterval = \"1s\"\ndiscovery_period = \"10s\"\n\
         discovery_rate = 20\ncontrol_plane_budget = 10\n",
        endpoint.url
    );
    for (name, account) in ACCOUNTS {
        text.push_str(&format!(
            "[[account]]\nname = \"{name}\"\nrole_arn = \"{}\"\nexternal_id = \"fleet-{name}\"\nregions = [\"us-east-1\", \"eu-west-1\"]\n",
            role(account)
        ));
    }
    text.push_str(
        "[[selector]]\nname = \"shop\"\ntags = { team = \"shop\" }\nqualifier = \"live\"\ntag_overrides = true\nmin = 1\nmax = 20\n\
         [[selector]]\nname = \"batches\"\naccount = \"a\"\nregion = \"us-east-1\"\nfunctions = [\"batch-*\"]\nqualifier = \"live\"\nmin = 2\nmax = 5\n",
    );
    text
}

/// The successful puts a world saw, as (function, value).
fn puts(world: &Arc<Mutex<World>>) -> Vec<(String, u32)> {
    lock(world)
        .requests(PUT)
        .into_iter()
        .filter(|put| put.status == 202)
        .filter_map(|put| Some((put.function?, put.value?)))
        .collect()
}

#[test]
fn plan_resolves_selectors_in_every_account_and_region_and_says_what_it_skipped() {
    let endpoint = fleet();
    let (_dir, config) = write_config("fleet.toml", &config_text(&endpoint, free_port()));
    let output = common::run_against_aws(&["plan", "--config", config.to_str().expect("utf-8")]);
    let stdout = text(&output.stdout);
    for expected in [
        "a/us-east-1/shop-a-us-east-1:live",
        "a/us-east-1/batch-1:live",
        "b/eu-west-1/tuned:live",
        "from selector shop, tags pc-autoscaler:min=5",
        "from selector batches",
        "skipped b/us-east-1 shop/bad: tag `pc-autoscaler:min` = `lots`: expected a whole number",
        "skipped a/eu-west-1 shop/no-alias: it has no alias `live`",
        "skipped c/us-east-1 shop/*: the selector could not be read",
    ] {
        assert!(
            stdout.contains(expected),
            "plan lacks `{expected}`:\n{stdout}\n{}",
            text(&output.stderr)
        );
    }
    // Only reads: nothing was written anywhere.
    for (_, account) in ACCOUNTS {
        for region in REGIONS {
            assert!(puts(&endpoint.scope(account, region)).is_empty());
        }
    }
    let assumed = endpoint.world().assumed.clone();
    assert!(
        assumed.contains(&(role("111111111111"), Some("fleet-a".into()))),
        "{assumed:?}"
    );
}

#[test]
fn the_sdks_per_service_endpoint_variables_reach_every_service() {
    let endpoint = fleet();
    let without_endpoint = config_text(&endpoint, free_port())
        .replace(&format!("endpoint_url = \"{}\"\n", endpoint.url), "");
    let (_dir, config) = write_config("fleet.toml", &without_endpoint);
    let mut command = common::binary_for_aws();
    for service in ["LAMBDA", "CLOUDWATCH", "STS", "RESOURCE_GROUPS_TAGGING_API"] {
        command.env(format!("AWS_ENDPOINT_URL_{service}"), &endpoint.url);
    }
    let output = command
        .args(["plan", "--config", config.to_str().expect("utf-8")])
        .output()
        .expect("the binary runs");
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("b/eu-west-1/tuned:live"),
        "{stdout}\n{}",
        text(&output.stderr)
    );
}

#[test]
fn one_daemon_manages_each_account_and_region_in_its_own_shard() {
    let endpoint = fleet();
    let port = free_port();
    let state = tempfile::tempdir().expect("a state directory");
    let with_state = config_text(&endpoint, port).replace(
        "[daemon]\n",
        &format!(
            "[daemon]\nstate_directory = \"{}\"\n",
            state.path().display()
        ),
    );
    let (_dir, config) = write_config("fleet.toml", &with_state);
    let address = format!("127.0.0.1:{port}");
    let mut daemon = Daemon::start(&config, &address, &[]);
    daemon.wait_ready();
    let scope = |name: &str, region: &str| {
        let account = ACCOUNTS
            .iter()
            .find(|(n, _)| *n == name)
            .expect("an account")
            .1;
        endpoint.scope(account, region)
    };
    // The right writes in the right account and Region, and none elsewhere.
    type Wanted<'a> = (&'a str, &'a str, &'a [(&'a str, u32)]);
    let expected: [Wanted; 4] = [
        ("a", "us-east-1", &[("shop-a-us-east-1", 1), ("batch-1", 2)]),
        ("a", "eu-west-1", &[("shop-a-eu-west-1", 1)]),
        ("b", "us-east-1", &[("shop-b-us-east-1", 1)]),
        ("b", "eu-west-1", &[("shop-b-eu-west-1", 1), ("tuned", 5)]),
    ];
    for (name, region, wanted) in expected {
        let world = scope(name, region);
        let arrived = wait_for(Duration::from_secs(30), || {
            let seen = puts(&world);
            wanted
                .iter()
                .all(|(function, value)| seen.contains(&((*function).to_owned(), *value)))
        });
        assert!(
            arrived,
            "{name}/{region} saw {:?}:\n{}",
            puts(&world),
            daemon.log()
        );
        let mut functions: Vec<String> = puts(&world)
            .into_iter()
            .map(|(function, _)| function)
            .collect();
        functions.sort();
        functions.dedup();
        let mut names: Vec<String> = wanted
            .iter()
            .map(|(function, _)| (*function).to_owned())
            .collect();
        names.sort();
        assert_eq!(
            functions, names,
            "{name}/{region} was written only for its own functions"
        );
    }
    // The account whose role cannot be assumed: unready and unwritten; the others work.
    for region in REGIONS {
        assert!(puts(&scope("c", region)).is_empty());
        let series = format!("pc_autoscaler_shard_ready{{account=\"c\",region=\"{region}\"}}");
        assert!(
            wait_for(Duration::from_secs(10), || daemon.metric(&series)
                == Some(0.0)),
            "{series}"
        );
        let ready = format!("pc_autoscaler_shard_ready{{account=\"a\",region=\"{region}\"}}");
        assert_eq!(daemon.metric(&ready), Some(1.0));
    }
    assert_eq!(daemon.probe("/readyz"), Some(200));
    // The bad tag override: skipped, said why in an activity and a metric.
    let (_, activities) = http_get(&address, "/activities?limit=1000").expect("activities answer");
    assert!(activities.contains("shop/bad"), "{activities}");
    assert!(
        activities.contains("tag `pc-autoscaler:min` = `lots`"),
        "{activities}"
    );
    let skipped = "pc_autoscaler_discovery_skipped_functions{account=\"b\",region=\"us-east-1\"}";
    assert_eq!(daemon.metric(skipped), Some(1.0));
    // A function tagged after the start is managed within one discovery period.
    let a_west = scope("a", "eu-west-1");
    let late = {
        let mut world = lock(&a_west);
        let late = world.function("late");
        late.tags.insert("team".into(), "shop".into());
        late.aliases.insert("live".into(), false);
        std::time::Instant::now()
    };
    let managed = wait_for(Duration::from_secs(25), || {
        puts(&a_west).iter().any(|(f, _)| f == "late")
    });
    assert!(
        managed,
        "the late function was not managed:\n{}",
        daemon.log()
    );
    assert!(
        late.elapsed() <= Duration::from_secs(10 + 8),
        "took {:?}",
        late.elapsed()
    );
    // A function skipped for want of its alias is managed once the alias exists.
    lock(&a_west)
        .function("no-alias")
        .aliases
        .insert("live".into(), false);
    let aliased = wait_for(Duration::from_secs(25), || {
        puts(&a_west).iter().any(|(f, _)| f == "no-alias")
    });
    assert!(
        aliased,
        "the function given its alias was not managed:\n{}",
        daemon.log()
    );
    // An untagged function is dropped, its capacity left as it is.
    let a_east = scope("a", "us-east-1");
    lock(&a_east).function("shop-a-us-east-1").tags.clear();
    let dropped = wait_for(Duration::from_secs(25), || {
        http_get(&address, "/activities?limit=1000").is_some_and(|(_, body)| {
            body.contains("a/us-east-1/shop-a-us-east-1:live")
                && body.contains("no longer selected")
        })
    });
    assert!(
        dropped,
        "the untagged function was not dropped:\n{}",
        daemon.log()
    );
    let world = lock(&a_east);
    assert!(world.requests(common::DELETE).is_empty());
    assert_eq!(
        world.functions["shop-a-us-east-1"].configs["live"].requested,
        1
    );
    drop(world);
    // Every call a role made is in the member policy; the base credentials only assume.
    let granted = |file: &str| -> std::collections::BTreeSet<String> {
        let policy: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(common::repo_file(file)).expect("the policy"),
        )
        .expect("the policy is JSON");
        policy["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .flat_map(|statement| statement["Action"].as_array().expect("actions"))
            .map(|action| action.as_str().expect("text").to_owned())
            .collect()
    };
    let member = granted("config/iam-policy-fleet-member.json");
    for (_, account) in ACCOUNTS {
        for region in REGIONS {
            for logged in &lock(&endpoint.scope(account, region)).log {
                let service = match logged.operation {
                    "GetMetricData" => "cloudwatch",
                    "GetResources" => "tag",
                    "DescribeScalableTargets" | "RegisterScalableTarget" => {
                        "application-autoscaling"
                    }
                    _ => "lambda",
                };
                let action = format!("{service}:{}", logged.operation);
                assert!(
                    member.contains(&action),
                    "{action} is not in the member policy"
                );
            }
        }
    }
    assert!(
        endpoint.world().log.is_empty(),
        "the base credentials only assume roles"
    );
    assert!(granted("config/iam-policy-fleet-base.json").contains("sts:AssumeRole"));
}

#[test]
fn the_multi_account_example_passes_check() {
    let output = common::run(&["check", "--config", "config/fleet.toml"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    for expected in [
        "account payments",
        "selector",
        "sts:AssumeRole",
        "tag:GetResources",
    ] {
        assert!(
            stdout.contains(expected),
            "check lacks `{expected}`:\n{stdout}"
        );
    }
}

#[test]
fn overrides_reach_the_targets_selectors_find() {
    let endpoint = fleet();
    let state = tempfile::tempdir().expect("a state directory");
    let with_state = config_text(&endpoint, free_port()).replace(
        "[daemon]\n",
        &format!(
            "[daemon]\nstate_directory = \"{}\"\n",
            state.path().display()
        ),
    );
    let (_dir, config) = write_config("fleet.toml", &with_state);
    let config = config.to_str().expect("utf-8");
    let override_set = |args: &[&str]| {
        common::run_against_aws(
            &[
                &["override", "set", "--config", config][..],
                args,
                &["--for", "1h", "--reason", "incident"],
            ]
            .concat(),
        )
    };
    for args in [
        &["b/eu-west-1/tuned:live", "pin", "7"][..],
        &["--glob", "a/*", "floor", "2"],
        &["--all", "pause", "scale-in"],
    ] {
        let output = override_set(args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    // A name no selector finds is refused; here account c cannot be read, so it is
    // not known to be wrong: the failure (exit 1) says which selectors were not read.
    let output = override_set(&["b/eu-west-1/nobody:live", "pin", "7"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("covers no target found; not every selector could be read: selector `shop` in c/us-east-1"),
        "{}",
        text(&output.stderr)
    );
    // The plan decides the found targets with them, as the daemon does.
    let output = common::run_against_aws(&["plan", "--config", config]);
    let stdout = text(&output.stdout);
    let row = stdout
        .lines()
        .find(|line| line.starts_with("b/eu-west-1/tuned:live"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(row.contains("override: pin 7"), "{row}");
}

#[test]
fn two_accounts_that_reach_the_same_functions_are_refused() {
    let endpoint = fleet();
    let twin = format!(
        "{}[[account]]\nname = \"twin\"\nrole_arn = \"{}\"\nregions = [\"us-east-1\"]\n",
        config_text(&endpoint, free_port()),
        role("111111111111")
    );
    let (_dir, config) = write_config("fleet.toml", &twin);
    let output = common::run(&["check", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stdout));
    assert!(
        text(&output.stderr).contains("account[3].role_arn")
            && text(&output.stderr).contains("account `a` already reaches account 111111111111"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_tag_cannot_take_a_function_above_its_selectors_max() {
    let endpoint = fleet();
    let b_west = endpoint.scope("222222222222", "eu-west-1");
    let mut world = lock(&b_west);
    let greedy = world.function("greedy");
    greedy.tags.insert("team".into(), "shop".into());
    greedy
        .tags
        .insert("pc-autoscaler:min".into(), "2147483647".into());
    greedy
        .tags
        .insert("pc-autoscaler:max".into(), "2147483647".into());
    greedy.aliases.insert("live".into(), false);
    drop(world);
    let (_dir, config) = write_config("fleet.toml", &config_text(&endpoint, free_port()));
    let output = common::run_against_aws(&["plan", "--config", config.to_str().expect("utf-8")]);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("skipped b/eu-west-1 shop/greedy: tag `pc-autoscaler:max` = `2147483647`: expected a whole number from 1 to the selector's max, 20")
            || stdout.contains("skipped b/eu-west-1 shop/greedy: tag `pc-autoscaler:min` = `2147483647`: expected a whole number from 0 to the selector's max, 20"),
        "{stdout}"
    );
}

#[test]
fn name_glob_selectors_share_one_walk_of_every_page() {
    let endpoint = Endpoint::start();
    let mut world = endpoint.world();
    // 503 pages of 2 functions: more pages than a selector's walk was ever allowed.
    world.list_page_size = 2;
    for index in 0..1_006 {
        world.function(&format!("fn{index:04}"));
    }
    for selector in 0..5 {
        world
            .function(&format!("orders-{selector}"))
            .aliases
            .insert("live".into(), false);
    }
    drop(world);
    let mut text_config = format!(
        "[aws]\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\ntimeout = \"2s\"\n",
        endpoint.url
    );
    for selector in 0..5 {
        text_config.push_str(&format!(
            "[[selector]]\nname = \"s{selector}\"\nfunctions = [\"orders-{selector}\"]\nqualifier = \"live\"\nmin = 1\nmax = 3\n"
        ));
    }
    let (_dir, config) = write_config("globs.toml", &text_config);
    let output = common::run_against_aws(&[
        "plan",
        "--config",
        config.to_str().expect("utf-8"),
        "--read-rate",
        "1000",
    ]);
    let stdout = text(&output.stdout);
    for selector in 0..5 {
        assert!(
            stdout.contains(&format!("orders-{selector}:live")),
            "{stdout}"
        );
    }
    assert_eq!(
        endpoint.world().requests("ListFunctions").len(),
        1_011_usize.div_ceil(2)
    );
    let checked = common::run(&["check", "--config", config.to_str().expect("utf-8")]);
    assert!(
        text(&checked.stdout).contains(
            "name-glob selectors list every function of their account and Region each discovery"
        ),
        "{}",
        text(&checked.stdout)
    );
}

#[test]
fn a_function_found_later_with_demand_is_put_once_to_its_tracked_value() {
    let endpoint = Endpoint::start();
    let port = free_port();
    let text = format!(
        "[aws]\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\ntimeout = \"2s\"\n\
         [daemon]\nlisten = \"127.0.0.1:{port}\"\ninterval = \"5s\"\ndiscovery_period = \"10s\"\n\
         discovery_rate = 20\ncontrol_plane_budget = 10\n\
         [[account]]\nname = \"a\"\nrole_arn = \"{}\"\nregions = [\"us-east-1\"]\n\
         [[selector]]\nname = \"shop\"\ntags = {{ team = \"shop\" }}\nqualifier = \"live\"\nmin = 1\nmax = 50\n\
         tracking = {{ metric = \"concurrency\", target = 0.5 }}\n",
        endpoint.url,
        role("111111111111")
    );
    let (_dir, config) = write_config("fleet.toml", &text);
    let world = endpoint.scope("111111111111", "us-east-1");
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_ready();
    {
        let mut world = lock(&world);
        let late = world.function("late");
        late.tags.insert("team".into(), "shop".into());
        late.aliases.insert("live".into(), false);
        world.set_concurrency("late", "live", &[10.0; 10], 1);
    }
    let put = wait_for(Duration::from_secs(30), || !puts(&world).is_empty());
    assert!(put, "the late function was never put:\n{}", daemon.log());
    // Long enough for a floor-first write's correction, at the next pass, to show.
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(
        puts(&world),
        [("late".to_owned(), 20)],
        "one put, to demand 10 at target 0.5:\n{}",
        daemon.log()
    );
}
