//! One `[[target]]`: the function it names, its qualifier, bounds and name, with its
//! tracking ([`super::tracking`]) and schedules ([`super::schedule`]).
//!
//! What it must not do: reach AWS: a target's function is checked as text.

use std::ops::Range;

use toml::Spanned;

use super::checker::{Checker, check_label};
use super::function_ref::{FunctionRef, is_qualifier, printable};
use super::model::*;
use super::raw::*;

/// Validates one target. `span` is the target's table, for keys that are missing.
pub fn target(
    checker: &mut Checker<'_>,
    raw: RawTarget,
    span: Range<usize>,
    path: &str,
    fleet: &super::fleet::Fleet<'_>,
) -> Option<TargetConfig> {
    let missing = |checker: &mut Checker<'_>, key: &str| {
        checker.error_at_path(
            span.clone(),
            path.to_owned(),
            format!("missing required key `{key}`"),
        );
    };
    let qualifier = match &raw.qualifier {
        Some(qualifier) => check_qualifier(checker, qualifier),
        None => {
            missing(checker, "qualifier");
            None
        }
    };
    let placed = function_id(checker, &raw, qualifier.as_deref(), &missing).and_then(
        |(mut function, arn_account, arn_region, span)| {
            let shard = super::fleet::place(
                checker,
                (&raw.account, &raw.region),
                (arn_account.as_deref(), arn_region.as_deref(), span),
                fleet,
                &mut function,
            )?;
            Some((function, shard))
        },
    );
    let (min, max) = bounds(checker, &raw, &missing);
    let tracking = raw
        .tracking
        .and_then(|tracking| super::tracking::tracking(checker, tracking));
    let schedules = super::schedule::schedules(checker, raw.schedule.unwrap_or_default(), min, max);
    let name = raw
        .name
        .filter(|name| check_label(checker, name, "name"))
        .map(Spanned::into_inner);
    let take_over_aas = raw
        .take_over_aas
        .as_ref()
        .is_some_and(|flag| *flag.get_ref());
    if let Some(flag) = raw
        .take_over_aas
        .as_ref()
        .filter(|_| take_over_aas && !fleet.keeps_records)
    {
        checker.error(
            flag.span(),
            "take_over_aas records what it suspends, so that `migrate --rollback` can restore it: it needs [leader] or daemon.state_directory",
        );
    }
    let ((function, shard), qualifier, min, max) = (placed?, qualifier?, min?, max?);
    Some(TargetConfig {
        name: name
            .unwrap_or_else(|| {
                super::fleet::default_name(&shard, fleet.accounts, &function.name, &qualifier)
            })
            .into(),
        shard,
        origin: Origin::Config,
        function,
        qualifier: Qualifier::classify(&qualifier),
        min,
        max,
        tracking,
        schedules,
        take_over_aas,
    })
}

/// The target's `min` and `max`, each valid alone; a `max` below `min` or 0 is
/// reported at `max`.
fn bounds(
    checker: &mut Checker<'_>,
    raw: &RawTarget,
    missing: &dyn Fn(&mut Checker<'_>, &str),
) -> (Option<u32>, Option<u32>) {
    let min = match &raw.min {
        Some(min) => checker.count(min, "min"),
        None => {
            missing(checker, "min");
            None
        }
    };
    let max = match &raw.max {
        Some(max) => checker.count(max, "max"),
        None => {
            missing(checker, "max");
            None
        }
    };
    if let (Some(min_value), Some(max_value), Some(max_raw)) = (min, max, &raw.max) {
        if max_value == 0 {
            checker.error(max_raw.span(), "max must be at least 1");
        } else if min_value > max_value {
            checker.error(
                max_raw.span(),
                format!("max ({max_value}) is below min ({min_value})"),
            );
        }
    }
    (min, max)
}

/// What a target's function names: the function, and an ARN's account and Region
/// with the span they were written at (placed by `fleet::place`).
type Named = (FunctionId, Option<String>, Option<String>, Range<usize>);

/// The function a target names, checked against its qualifier.
fn function_id(
    checker: &mut Checker<'_>,
    raw: &RawTarget,
    qualifier: Option<&str>,
    missing: &dyn Fn(&mut Checker<'_>, &str),
) -> Option<Named> {
    let function = match &raw.function {
        Some(function) => match FunctionRef::parse(function.get_ref()) {
            Ok(parsed) => Some((function, parsed)),
            Err(reason) => {
                checker.error(function.span(), reason);
                None
            }
        },
        None => {
            missing(checker, "function");
            None
        }
    };
    if let Some((written, parsed)) = &function
        && let (Some(in_arn), Some(qualifier)) = (&parsed.qualifier, qualifier)
        && *in_arn != qualifier
    {
        checker.error(
            written.span(),
            format!("the function's ARN names qualifier `{in_arn}` but `qualifier` is `{qualifier}`; they must agree (or leave it out of the ARN)"),
        );
    }
    function.map(|(written, parsed)| {
        let id = FunctionId {
            name: parsed.name.to_owned(),
            account: parsed.account.map(str::to_owned),
            reference: match parsed.qualifier {
                // Requests name the qualifier separately; a List takes no qualifier.
                Some(qualifier) => written
                    .get_ref()
                    .strip_suffix(qualifier)
                    .and_then(|rest| rest.strip_suffix(':'))
                    .unwrap_or(written.get_ref())
                    .to_owned(),
                None => written.get_ref().clone(),
            },
        };
        let (account, region) = (
            parsed.account.map(str::to_owned),
            parsed.region.map(str::to_owned),
        );
        (id, account, region, written.span())
    })
}

fn check_qualifier(checker: &mut Checker<'_>, qualifier: &Spanned<String>) -> Option<String> {
    let text = qualifier.get_ref();
    if text == "$LATEST" {
        checker.error(
            qualifier.span(),
            "`$LATEST` cannot have provisioned concurrency; use an alias or a published version",
        );
        return None;
    }
    if !is_qualifier(text) {
        checker.error(
            qualifier.span(),
            format!(
                "`{}` is not an alias name or version number (letters, digits, `-` and `_`)",
                printable(text)
            ),
        );
        return None;
    }
    Some(text.clone())
}
