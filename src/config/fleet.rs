//! The fleet's sections: `[[account]]` (a role to assume and the Regions managed in
//! it), `[[selector]]` (functions found by tags and name globs, managed with a target
//! template), and where each written-out target is placed ([`place`]). What it must not
//! do: reach AWS; a selector's functions are found by the runtime (`runtime::discovery`).

use std::collections::HashSet;
use std::ops::Range;

use toml::Spanned;

use super::checker::Checker;
use super::function_ref::{is_qualifier, printable};
use super::keys;
use super::model::*;
use super::raw::*;

/// What a target is placed against: `[aws] region` and the accounts.
pub struct Fleet<'a> {
    pub region: Option<&'a str>,
    pub accounts: &'a [AccountSettings],
    /// Whether records can be kept: `[leader]` or `daemon.state_directory`.
    pub keeps_records: bool,
}

const MAX_ACCOUNT_NAME: usize = 32;

/// Account and selector names: short, in target names and labels.
fn is_short_name(text: &str) -> bool {
    (1..=MAX_ACCOUNT_NAME).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// An account's or selector's `name`, if it is short and not `taken` by an earlier one.
fn short_name(
    checker: &mut Checker<'_>,
    name: &Spanned<String>,
    what: &str,
    taken: impl Fn(&str) -> bool,
) -> Option<String> {
    let text = name.get_ref();
    let reason = if !is_short_name(text) {
        format!(
            "`{}` is not a{} {what} name: 1 to {MAX_ACCOUNT_NAME} letters, digits, `-` and `_`",
            printable(text),
            if what.starts_with('a') { "n" } else { "" }
        )
    } else if taken(text) {
        format!("another [[{what}]] is already named `{text}`")
    } else {
        return Some(text.clone());
    };
    checker.error(name.span(), reason);
    None
}

/// The `[[account]]` that `name` names, or an error at it.
fn named_account<'a>(
    checker: &mut Checker<'_>,
    name: &Spanned<String>,
    accounts: &'a [AccountSettings],
) -> Option<&'a AccountSettings> {
    let found = accounts
        .iter()
        .find(|account| account.name == *name.get_ref());
    if found.is_none() {
        let reason = format!("no [[account]] is named `{}`", printable(name.get_ref()));
        checker.error(name.span(), reason);
    }
    found
}

/// A Region as AWS names them: `us-east-1`, `us-gov-west-1`, `eu-central-2`.
pub fn is_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    (3..=5).contains(&parts.len())
        && parts[..parts.len() - 1]
            .iter()
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

/// The account id of an IAM role's ARN (`arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`).
fn role_account(arn: &str) -> Option<&str> {
    match arn.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", partition, "iam", "", account, role]
            if partition.starts_with("aws")
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && role.strip_prefix("role/").is_some_and(|name| {
                    !name.is_empty()
                        && name.len() <= 512
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
                }) =>
        {
            Some(account)
        }
        _ => None,
    }
}

/// Every `[[account]]`; names unique.
pub fn accounts(
    checker: &mut Checker<'_>,
    items: Vec<(Range<usize>, RawAccount)>,
) -> Vec<AccountSettings> {
    let mut accounts: Vec<AccountSettings> = Vec::new();
    for (index, (span, raw)) in items.into_iter().enumerate() {
        if let Some(account) = account(checker, (index, span), raw, &accounts) {
            accounts.push(account);
        }
    }
    accounts
}

/// The `[[account]]` at `index`, when it is valid beside the `earlier` ones.
fn account(
    checker: &mut Checker<'_>,
    (index, span): (usize, Range<usize>),
    raw: RawAccount,
    earlier: &[AccountSettings],
) -> Option<AccountSettings> {
    let path = format!("account[{index}]");
    let missing = |checker: &mut Checker<'_>, key: &str| {
        checker.error_at_path(
            span.clone(),
            path.clone(),
            format!("missing required key `{key}`"),
        );
    };
    let name = match &raw.name {
        Some(name) => short_name(checker, name, "account", |taken| {
            earlier.iter().any(|account| account.name == taken)
        }),
        None => {
            missing(checker, "name");
            None
        }
    };
    let role_span = raw.role_arn.as_ref().map(Spanned::span);
    let role = match raw.role_arn {
        Some(arn) => role(checker, arn),
        None => {
            missing(checker, "role_arn");
            None
        }
    };
    let regions = match raw.regions {
        Some(regions) if regions.get_ref().is_empty() => {
            checker.error(regions.span(), "`regions` must name at least one Region");
            None
        }
        Some(regions) => Some(region_list(checker, regions.into_inner())),
        None => {
            missing(checker, "regions");
            None
        }
    };
    let external_id = raw.external_id.filter(|id| external_id(checker, id));
    let session_name = session_name(checker, raw.session_name);
    let (name, (role_arn, account_id), regions) = (name?, role?, regions?);
    // Two accounts that reach the same functions would make each a target twice, and
    // their writes would undo each other.
    let twin = earlier.iter().find(|other| {
        other.role_arn == role_arn
            || (other.account_id == account_id
                && other.regions.iter().any(|region| regions.contains(region)))
    });
    if let (Some(twin), Some(span)) = (twin, role_span) {
        checker.error(
            span,
            format!(
                "account `{}` already reaches account {account_id} in these Regions; one [[account]] per AWS account and Region",
                twin.name
            ),
        );
        return None;
    }
    Some(AccountSettings {
        name,
        role_arn,
        account_id,
        external_id: external_id.map(Spanned::into_inner),
        session_name,
        regions,
    })
}

/// The role's ARN and the account it names.
fn role(checker: &mut Checker<'_>, arn: Spanned<String>) -> Option<(String, String)> {
    match role_account(arn.get_ref()) {
        Some(account) => Some((arn.get_ref().clone(), account.to_owned())),
        None => {
            checker.error(
                arn.span(),
                format!(
                    "`{}` is not an IAM role ARN: write arn:aws:iam::ACCOUNT:role/NAME",
                    printable(arn.get_ref())
                ),
            );
            None
        }
    }
}

/// Whether `id` is an external id STS accepts; reports it when not.
fn external_id(checker: &mut Checker<'_>, id: &Spanned<String>) -> bool {
    let valid = (2..=1224).contains(&id.get_ref().len())
        && id
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c));
    if !valid {
        checker.error(
            id.span(),
            "an external id is 2 to 1,224 of letters, digits and `+=,.@:/-_`",
        );
    }
    valid
}

/// The session name, or its default.
fn session_name(checker: &mut Checker<'_>, raw: Option<Spanned<String>>) -> String {
    match raw {
        Some(session) if is_session_name(session.get_ref()) => session.into_inner(),
        Some(session) => {
            checker.error(
                session.span(),
                "a session name is 2 to 64 of letters, digits and `+=,.@-_`",
            );
            String::new()
        }
        None => keys::ACCOUNT_SESSION_NAME
            .default_text()
            .trim_matches('`')
            .to_owned(),
    }
}

fn is_session_name(text: &str) -> bool {
    (2..=64).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c))
}

fn region_list(checker: &mut Checker<'_>, regions: Vec<Spanned<String>>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut valid = Vec::new();
    for region in regions {
        if !is_region(region.get_ref()) {
            checker.error(
                region.span(),
                format!(
                    "`{}` is not a Region name such as `us-east-1`",
                    printable(region.get_ref())
                ),
            );
        } else if !seen.insert(region.get_ref().clone()) {
            checker.error(
                region.span(),
                format!("Region `{}` is listed twice", region.get_ref()),
            );
        } else {
            valid.push(region.into_inner());
        }
    }
    valid
}

/// Places a written-out target in its shard, from its `account`, `region` and an ARN's
/// account and Region; sets the function's account id to the shard's.
pub fn place(
    checker: &mut Checker<'_>,
    raw: (&Option<Spanned<String>>, &Option<Spanned<String>>),
    arn: (Option<&str>, Option<&str>, Range<usize>),
    fleet: &Fleet<'_>,
    function: &mut FunctionId,
) -> Option<ShardKey> {
    let (account_key, region_key) = raw;
    let (arn_account, arn_region, arn_span) = arn;
    let account = match account_key {
        Some(name) => Some(named_account(checker, name, fleet.accounts)?),
        // An ARN in a listed account is managed through its role.
        None => arn_account.and_then(|id| {
            fleet
                .accounts
                .iter()
                .find(|account| account.account_id == id)
        }),
    };
    let Some(account) = account else {
        return place_in_base(checker, region_key, arn_region, arn_span, fleet);
    };
    if let Some(id) = arn_account
        && id != account.account_id
    {
        checker.error(
            arn_span,
            format!(
                "the function's ARN is in account {id} but account `{}` is {}",
                account.name, account.account_id
            ),
        );
        return None;
    }
    let region = match (region_key, arn_region) {
        (Some(written), Some(in_arn)) if written.get_ref() != in_arn => {
            checker.error(
                written.span(),
                format!(
                    "`region` is `{}` but the function's ARN is in `{in_arn}`",
                    printable(written.get_ref())
                ),
            );
            return None;
        }
        (Some(written), _) => (written.get_ref().as_str(), written.span()),
        (None, Some(in_arn)) => (in_arn, arn_span),
        (None, None) => match account.regions.as_slice() {
            [only] => (only.as_str(), arn_span),
            _ => {
                checker.error(
                    arn_span,
                    format!(
                        "account `{}` manages several Regions; say which with `region`",
                        account.name
                    ),
                );
                return None;
            }
        },
    };
    if !account.regions.iter().any(|listed| listed == region.0) {
        checker.error(
            region.1,
            format!(
                "Region `{}` is not among account `{}`'s regions ({})",
                printable(region.0),
                account.name,
                account.regions.join(", ")
            ),
        );
        return None;
    }
    function.account = Some(account.account_id.clone());
    Some(ShardKey::of(&account.name, region.0))
}

fn place_in_base(
    checker: &mut Checker<'_>,
    region_key: &Option<Spanned<String>>,
    arn_region: Option<&str>,
    arn_span: Range<usize>,
    fleet: &Fleet<'_>,
) -> Option<ShardKey> {
    let Some(configured) = fleet.region else {
        return Some(ShardKey::default());
    };
    let hint = if fleet.accounts.is_empty() {
        "every target is managed through that one Region"
    } else {
        "name an [[account]] that lists it"
    };
    if let Some(written) = region_key
        && written.get_ref() != configured
    {
        checker.error(written.span(), format!("`region` is `{}` but the base account is managed in [aws] region `{configured}`; {hint}", printable(written.get_ref())));
        return None;
    }
    if let Some(in_arn) = arn_region
        && in_arn != configured
    {
        checker.error(arn_span, format!("the function's ARN is in region `{in_arn}` but [aws] region is `{configured}`: {hint}"));
        return None;
    }
    Some(ShardKey::default())
}

/// A target's default name in its shard: `function:qualifier` in the base account,
/// `account/function:qualifier` in an account with one Region, and
/// `account/region/function:qualifier` in one with several.
pub fn default_name(
    shard: &ShardKey,
    accounts: &[AccountSettings],
    function: &str,
    qualifier: &str,
) -> String {
    match (&shard.account, &shard.region) {
        (Some(name), Some(region)) => {
            let several = accounts
                .iter()
                .find(|account| *account.name == **name)
                .is_some_and(|account| account.regions.len() > 1);
            if several {
                format!("{name}/{region}/{function}:{qualifier}")
            } else {
                format!("{name}/{function}:{qualifier}")
            }
        }
        _ => format!("{function}:{qualifier}"),
    }
}

/// Whether a selector's qualifier, if any, is one a selector can take: an alias.
fn selector_qualifier(checker: &mut Checker<'_>, raw: &RawSelector) -> bool {
    let Some(qualifier) = &raw.qualifier else {
        return true;
    };
    if matches!(
        Qualifier::classify(qualifier.get_ref()),
        Qualifier::Version(_)
    ) {
        checker.error(qualifier.span(), "a selector's qualifier must be an alias: version numbers differ from function to function");
    }
    is_qualifier(qualifier.get_ref())
}

/// The placeholder function of a selector's template.
pub const TEMPLATE_FUNCTION: &str = "selector-template";

/// Every `[[selector]]`. `template` validates the target keys of one and returns its
/// template target.
pub fn selectors(
    checker: &mut Checker<'_>,
    items: Vec<(Range<usize>, RawSelector)>,
    accounts: &[AccountSettings],
    mut template: impl FnMut(&mut Checker<'_>, RawTarget, Range<usize>, &str) -> Option<TargetConfig>,
) -> Vec<SelectorConfig> {
    let mut selectors: Vec<SelectorConfig> = Vec::new();
    for (index, (span, raw)) in items.into_iter().enumerate() {
        let path = format!("selector[{index}]");
        let name = match &raw.name {
            Some(name) => short_name(checker, name, "selector", |taken| {
                selectors.iter().any(|selector| selector.name == taken)
            }),
            None => Some(format!("selector-{}", index + 1)),
        };
        let scope = selector_scope(checker, &raw, accounts);
        let tags = selector_tags(checker, &raw);
        let functions = name_globs(checker, &raw);
        if tags.as_ref().is_some_and(Vec::is_empty) && functions.as_ref().is_some_and(Vec::is_empty)
        {
            checker.error_at_path(
                span.clone(),
                path.clone(),
                "a selector needs `tags`, `functions` or both: it would take every function",
            );
        }
        let qualifier_ok = selector_qualifier(checker, &raw);
        let tag_overrides = raw.tag_overrides.unwrap_or(false);
        if tag_overrides && tags.as_ref().is_some_and(Vec::is_empty) {
            checker.error_at_path(
                span.clone(),
                path.clone(),
                "`tag_overrides` needs `tags`: a function's tags are read with them",
            );
        }
        let as_target = RawTarget {
            function: Some(Spanned::new(span.clone(), TEMPLATE_FUNCTION.to_owned())),
            qualifier: raw.qualifier,
            name: None,
            account: None,
            region: None,
            min: raw.min,
            max: raw.max,
            tracking: raw.tracking,
            schedule: raw.schedule,
            take_over_aas: raw.take_over_aas,
        };
        let template = template(checker, as_target, span, &path);
        if let (
            Some(name),
            Some((account, region)),
            Some(tags),
            Some(functions),
            Some(template),
            true,
        ) = (name, scope, tags, functions, template, qualifier_ok)
        {
            selectors.push(SelectorConfig {
                name,
                account,
                region,
                tags,
                functions,
                tag_overrides,
                template,
            });
        }
    }
    selectors
}

type AccountRegion = (Option<String>, Option<String>);

fn selector_scope(
    checker: &mut Checker<'_>,
    raw: &RawSelector,
    accounts: &[AccountSettings],
) -> Option<AccountRegion> {
    let account = match &raw.account {
        Some(name) => Some(named_account(checker, name, accounts)?),
        None => None,
    };
    if let Some(region) = &raw.region {
        let listed = match account {
            Some(account) => account.regions.contains(region.get_ref()),
            None => accounts
                .iter()
                .any(|account| account.regions.contains(region.get_ref())),
        };
        if accounts.is_empty() {
            checker.error(
                region.span(),
                "without [[account]] a selector looks in [aws] region; leave `region` out",
            );
            return None;
        }
        if !listed {
            checker.error(
                region.span(),
                format!(
                    "no account it looks in lists Region `{}`",
                    printable(region.get_ref())
                ),
            );
            return None;
        }
    }
    Some((
        account.map(|account| account.name.clone()),
        raw.region.as_ref().map(|region| region.get_ref().clone()),
    ))
}

/// AWS's limits on tags: keys 1 to 128 characters, values at most 256.
fn selector_tags(
    checker: &mut Checker<'_>,
    raw: &RawSelector,
) -> Option<Vec<(String, Option<String>)>> {
    let Some(tags) = &raw.tags else {
        return Some(Vec::new());
    };
    let mut valid = true;
    let mut found = Vec::new();
    for (key, value) in tags.get_ref() {
        if key.is_empty() || key.chars().count() > 128 || key.starts_with("aws:") {
            checker.error(
                value.span(),
                format!(
                    "`{}` is not a tag key to select by: 1 to 128 characters, not starting `aws:`",
                    printable(key)
                ),
            );
            valid = false;
        } else if value.get_ref().chars().count() > 256 {
            checker.error(value.span(), "a tag value is at most 256 characters");
            valid = false;
        } else {
            let wanted = (value.get_ref() != "*").then(|| value.get_ref().clone());
            found.push((key.clone(), wanted));
        }
    }
    valid.then_some(found)
}

fn name_globs(checker: &mut Checker<'_>, raw: &RawSelector) -> Option<Vec<String>> {
    let Some(globs) = &raw.functions else {
        return Some(Vec::new());
    };
    let mut valid = true;
    for glob in globs.get_ref() {
        let text = glob.get_ref();
        let ok = (1..=64).contains(&text.len())
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_*?".contains(c));
        if !ok {
            checker.error(glob.span(), format!("`{}` is not a function-name glob: 1 to 64 of letters, digits, `-`, `_`, `*` and `?`", printable(text)));
            valid = false;
        }
    }
    valid.then(|| {
        globs
            .get_ref()
            .iter()
            .map(|glob| glob.get_ref().clone())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_a_shell_would() {
        for (glob, text, expected) in [
            ("orders-*", "orders-api", true),
            ("orders-*", "orders-", true),
            ("orders-*", "payments-api", false),
            ("*-api", "orders-api", true),
            ("o?ders", "orders", true),
            ("o?ders", "oders", false),
            ("*a*b*", "xxaxxbxx", true),
            ("*a*b", "xxaxxbxxc", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(glob_matches(glob, text), expected, "{glob} against {text}");
        }
    }

    /// Each bad fleet config is refused with the reason at the key that is wrong.
    #[test]
    fn bad_accounts_selectors_and_placements_are_located() {
        let account = "[[account]]\nname = \"shop\"\nrole_arn = \"arn:aws:iam::111111111111:role/pc\"\nregions = [\"us-east-1\", \"eu-west-1\"]\n";
        let target = |extra: &str| {
            format!("[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 2\n{extra}")
        };
        let selector =
            |extra: &str| format!("[[selector]]\nqualifier = \"live\"\nmin = 1\nmax = 2\n{extra}");
        for (text, key, reason) in [
            (format!("{account}{account}{}", target("account = \"shop\"\nregion = \"us-east-1\"")), "account[1].name", "another [[account]] is already named `shop`"),
            (format!("{account}{}{}", account.replace("\"shop\"", "\"twin\""), target("account = \"shop\"\nregion = \"us-east-1\"")), "account[1].role_arn", "account `shop` already reaches account 111111111111"),
            (format!("{account}{}{}", account.replace("\"shop\"", "\"twin\"").replace("role/pc", "role/other").replace("\"us-east-1\", ", ""), target("account = \"shop\"\nregion = \"us-east-1\"")), "account[1].role_arn", "one [[account]] per AWS account and Region"),
            ("[[account]]\nname = \"x\"\nrole_arn = \"arn:aws:iam::1:user/x\"\nregions = [\"us-east-1\"]\n".to_owned() + &target(""), "account[0].role_arn", "is not an IAM role ARN"),
            ("[[account]]\nname = \"x\"\nrole_arn = \"arn:aws:iam::111111111111:role/x\"\nregions = [\"mars-1\"]\n".to_owned() + &target(""), "account[0].regions[0]", "is not a Region name"),
            (format!("{account}{}", target("account = \"shop\"")), "target[0].function", "manages several Regions; say which with `region`"),
            (format!("{account}{}", target("account = \"shop\"\nregion = \"ap-south-1\"")), "target[0].region", "is not among account `shop`'s regions"),
            (format!("{account}{}", target("account = \"nobody\"")), "target[0].account", "no [[account]] is named `nobody`"),
            (format!("[aws]\nregion = \"us-east-1\"\n{}", target("region = \"eu-west-1\"")), "target[0].region", "the base account is managed in [aws] region `us-east-1`"),
            (selector(""), "selector[0]", "needs `tags`, `functions` or both"),
            (selector("functions = [\"a*\"]\ntag_overrides = true"), "selector[0]", "`tag_overrides` needs `tags`"),
            (selector("functions = [\"a b\"]"), "selector[0].functions[0]", "is not a function-name glob"),
            ("[[selector]]\nqualifier = \"7\"\nmin = 1\nmax = 2\ntags = { team = \"x\" }\n".to_owned(), "selector[0].qualifier", "must be an alias"),
            (format!("{account}{}", selector("tags = { team = \"x\" }\naccount = \"nobody\"")), "selector[0].account", "no [[account]] is named `nobody`"),
            ("[[selector]]\nqualifier = \"live\"\nmin = 0\nmax = 0\ntags = { team = \"x\" }\n".to_owned(), "selector[0].max", "max must be at least 1"),
        ] {
            let errors = super::super::parse(&text, std::path::Path::new("fleet.toml"))
                .expect_err("the config is refused");
            assert!(
                errors.errors.iter().any(|error| error.key == key && error.reason.contains(reason)),
                "expected `{reason}` at {key}, got {:?}",
                errors.errors.iter().map(|error| (&error.key, &error.reason)).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn regions_and_roles_are_recognised() {
        assert!(
            is_region("us-east-1") && is_region("us-gov-west-1") && is_region("ap-southeast-2")
        );
        assert!(!is_region("us-east") && !is_region("US-EAST-1") && !is_region("east-1"));
        assert_eq!(
            role_account("arn:aws:iam::123456789012:role/pc"),
            Some("123456789012")
        );
        assert_eq!(
            role_account("arn:aws-cn:iam::123456789012:role/path/pc"),
            Some("123456789012")
        );
        assert_eq!(role_account("arn:aws:iam::12345:role/pc"), None);
        assert_eq!(role_account("arn:aws:iam::123456789012:user/pc"), None);
    }
}
