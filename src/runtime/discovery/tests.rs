//! Resolution tables: selectors, tags and aliases in, targets and skips out.

use std::path::Path;

use super::*;

const FLEET: &str = r#"
[aws]
region = "us-east-1"

[[account]]
name = "shop"
role_arn = "arn:aws:iam::111111111111:role/pc-autoscaler"
regions = ["eu-west-1"]

[[selector]]
name = "tagged"
tags = { team = "shop" }
qualifier = "live"
tag_overrides = true
min = 1
max = 50
tracking = { metric = "utilization", target = 0.7 }

[[selector]]
name = "by-name"
functions = ["orders-*"]
qualifier = "live"
min = 2
max = 10

[[target]]
account = "shop"
function = "written"
qualifier = "live"
min = 3
max = 9
"#;

fn config() -> Config {
    crate::config::parse(FLEET, Path::new("fleet.toml")).expect("the fleet config is valid")
}

fn shard() -> ShardKey {
    ShardKey::of("shop", "eu-west-1")
}

fn function(name: &str, tags: &[(&str, &str)]) -> FoundFunction {
    FoundFunction {
        name: name.to_owned(),
        tags: tags
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
    }
}

fn live() -> Result<Aliases, String> {
    Ok([("live".to_owned(), crate::aws::Alias::default())]
        .into_iter()
        .collect())
}

fn found(tagged: Vec<FoundFunction>, named: Vec<FoundFunction>) -> Found {
    let mut aliases = BTreeMap::new();
    for one in tagged.iter().chain(&named) {
        aliases.insert(one.name.clone(), live());
    }
    Found {
        selectors: vec![("tagged".into(), Ok(tagged)), ("by-name".into(), Ok(named))],
        aliases,
    }
}

fn resolved(found: &Found, previous: &[TargetConfig]) -> Resolution {
    let config = config();
    resolve(
        &config,
        &shard(),
        &Written::of(&config.targets),
        found,
        previous,
    )
}

fn names(resolution: &Resolution) -> Vec<&str> {
    resolution
        .targets
        .iter()
        .map(|target| &*target.name)
        .collect()
}

#[test]
fn a_selected_function_becomes_a_target_in_its_shard_with_the_template() {
    let resolution = resolved(&found(vec![function("cart", &[])], Vec::new()), &[]);
    let target = &resolution.targets[0];
    assert_eq!(&*target.name, "shop/cart:live");
    assert_eq!(target.shard, shard());
    assert_eq!(target.function.account.as_deref(), Some("111111111111"));
    assert_eq!((target.min, target.max), (1, 50));
    assert_eq!(target.origin.to_string(), "selector tagged");
}

#[test]
fn tag_overrides_change_the_bounds_and_target_and_say_so() {
    let tags = [
        ("pc-autoscaler:min", "5"),
        ("pc-autoscaler:max", "40"),
        ("pc-autoscaler:target", "0.5"),
    ];
    let resolution = resolved(&found(vec![function("cart", &tags)], Vec::new()), &[]);
    let target = &resolution.targets[0];
    assert_eq!((target.min, target.max), (5, 40));
    assert_eq!(
        target.tracking.as_ref().map(|tracking| tracking.target),
        Some(0.5)
    );
    assert!(target.origin.to_string().contains("pc-autoscaler:min=5"));
}

#[test]
fn a_bad_tag_override_skips_that_function_only_and_says_which_tag() {
    for (key, value, expected) in [
        (
            "pc-autoscaler:min",
            "abc",
            "tag `pc-autoscaler:min` = `abc`: expected a whole number",
        ),
        ("pc-autoscaler:max", "0", "tag `pc-autoscaler:max` = `0`"),
        ("pc-autoscaler:min", "30\"", "expected a whole number"),
        ("pc-autoscaler:min", "45", "max (40) is below min (45)"),
        // A tag moves the bounds within the template's max (50), never above it.
        (
            "pc-autoscaler:min",
            "60",
            "from 0 to the selector's max, 50",
        ),
        (
            "pc-autoscaler:max",
            "2147483647",
            "from 1 to the selector's max, 50",
        ),
        (
            "pc-autoscaler:target",
            "1.5",
            "expected a utilization above 0 and at most 1",
        ),
        ("pc-autoscaler:target", "NaN", "expected a utilization"),
    ] {
        let mut tags = vec![(key, value)];
        if value == "45" {
            tags.push(("pc-autoscaler:max", "40"));
        }
        let functions = vec![function("bad", &tags), function("good", &[])];
        let resolution = resolved(&found(functions, Vec::new()), &[]);
        assert_eq!(names(&resolution), ["shop/good:live"], "{key}={value}");
        assert_eq!(resolution.skipped.len(), 1);
        assert!(
            resolution.skipped[0].reason.contains(expected),
            "{}",
            resolution.skipped[0].reason
        );
    }
}

#[test]
fn a_written_target_and_an_earlier_selector_win() {
    let resolution = resolved(
        &found(
            vec![function("orders-api", &[]), function("written", &[])],
            vec![function("orders-api", &[]), function("orders-batch", &[])],
        ),
        &[],
    );
    assert_eq!(
        names(&resolution),
        ["shop/orders-api:live", "shop/orders-batch:live"]
    );
    let reasons: Vec<&str> = resolution
        .skipped
        .iter()
        .map(|skip| skip.reason.as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains("a [[target]] is written for written:live"))
    );
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains("selector `tagged` matched it first"))
    );
    let api = &resolution.targets[0];
    assert_eq!(api.origin.to_string(), "selector tagged");
}

#[test]
fn a_function_without_the_alias_is_skipped_with_the_reason() {
    let mut read = found(vec![function("cart", &[])], Vec::new());
    read.aliases.insert(
        "cart".into(),
        Ok([("prod".to_owned(), crate::aws::Alias::default())]
            .into_iter()
            .collect()),
    );
    let resolution = resolved(&read, &[]);
    assert!(resolution.targets.is_empty());
    assert_eq!(resolution.skipped[0].reason, "it has no alias `live`");
}

#[test]
fn a_failed_read_keeps_what_the_selector_had_and_a_successful_one_drops_the_rest() {
    let before = resolved(
        &found(
            vec![function("cart", &[]), function("till", &[])],
            Vec::new(),
        ),
        &[],
    );
    let mut failing = found(Vec::new(), Vec::new());
    failing.selectors[0].1 = Err("throttled".into());
    let kept = resolved(&failing, &before.targets);
    assert_eq!(names(&kept), ["shop/cart:live", "shop/till:live"]);
    assert_eq!(kept.failed.len(), 1);
    let dropped = resolved(
        &found(vec![function("till", &[])], Vec::new()),
        &before.targets,
    );
    assert_eq!(names(&dropped), ["shop/till:live"]);
    let mut unread = found(vec![function("cart", &[])], Vec::new());
    unread
        .aliases
        .insert("cart".into(), Err("throttled".into()));
    assert_eq!(
        names(&resolved(&unread, &before.targets)),
        ["shop/cart:live"]
    );
    assert!(resolved(&unread, &[]).targets.is_empty());
}
