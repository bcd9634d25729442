//! Discovery's reads for one shard: each selector's functions (the tagging API's
//! `GetResources` by tags, paced at `daemon.discovery_rate`, or Lambda's
//! `ListFunctions` within the shard's budget when a selector has only name globs, one
//! walk for all of them), each list read to its end, and the aliases of functions not
//! seen before (`ListAliases`, within the budget).
//! A failed read is reported in [`Found`], never retried in a loop here: the next
//! discovery tries again, and the other shards never wait for this one.
//!
//! What it must not do: retry in a loop, decide which functions become targets
//! (`resolve` does), or make one shard wait for another.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::task::JoinSet;

use super::{Found, FoundFunction};
use crate::aws::{ACCOUNT_WALK, Aliases, AwsError, LambdaApi, TaggingApi, Walk};
use crate::config::SelectorConfig;
use crate::runtime::plane::budget::Priority;
use crate::runtime::plane::control::Control;
use crate::runtime::plane::listing::list_functions;

/// Alias reads in flight at once; each still waits for its budget turn.
const ALIAS_READS: usize = 8;

/// Reads what `selectors` find in the shard `control` and `tagging` reach. `known`
/// holds the aliases read before: only functions not in it are read again.
pub async fn read<L: LambdaApi, T: TaggingApi>(
    control: &Control<L>,
    tagging: &T,
    selectors: &[SelectorConfig],
    rate: f64,
    known: &BTreeMap<String, Aliases>,
) -> Found {
    let pause = Duration::from_secs_f64(1.0 / rate);
    let mut found = Found::default();
    // One walk of `ListFunctions` serves every name-glob selector of the shard.
    let mut listing: Option<Result<Vec<FoundFunction>, AwsError>> = None;
    for selector in selectors {
        let read = if selector.tags.is_empty() {
            match &listing {
                Some(listed) => listed.clone(),
                None => listing.insert(listed(control).await).clone(),
            }
        } else {
            tagged(tagging, &selector.tags, pause).await
        };
        let read = read
            .map(|functions| {
                functions
                    .into_iter()
                    .filter(|function| selector.matches_name(&function.name))
                    .collect::<Vec<_>>()
            })
            .map_err(|error| error.to_string());
        found.selectors.push((selector.name.as_str().into(), read));
    }
    let mut wanted: Vec<String> = Vec::new();
    for (_, read) in &found.selectors {
        for function in read.iter().flatten() {
            match known.get(&function.name) {
                Some(aliases) => {
                    found
                        .aliases
                        .insert(function.name.clone(), Ok(aliases.clone()));
                }
                None => wanted.push(function.name.clone()),
            }
        }
    }
    wanted.sort();
    wanted.dedup();
    found.aliases.extend(aliases_of(control, wanted).await);
    found
}

/// Every function with the tags, one paced page at a time.
async fn tagged<T: TaggingApi>(
    tagging: &T,
    tags: &[(String, Option<String>)],
    pause: Duration,
) -> Result<Vec<FoundFunction>, AwsError> {
    let mut functions = Vec::new();
    let mut token = None;
    let mut walk = Walk::new("GetResources", ACCOUNT_WALK);
    loop {
        let read = tagging.tagged_page(tags, token).await?;
        functions.extend(read.functions.into_iter().map(|function| FoundFunction {
            name: function.name,
            tags: function.tags,
        }));
        token = walk.next(read.next)?;
        if token.is_none() {
            return Ok(functions);
        }
        tokio::time::sleep(pause).await;
    }
}

/// Every function of the account and Region, by name, within the budget.
async fn listed<L: LambdaApi>(control: &Control<L>) -> Result<Vec<FoundFunction>, AwsError> {
    let functions = list_functions(control, |_| {}).await?;
    Ok(functions
        .into_iter()
        .map(|function| FoundFunction {
            name: function.name,
            tags: BTreeMap::new(),
        })
        .collect())
}

/// The aliases of `functions`, a few reads at a time.
async fn aliases_of<L: LambdaApi>(
    control: &Control<L>,
    functions: Vec<String>,
) -> BTreeMap<String, Result<Aliases, String>> {
    let mut read = BTreeMap::new();
    let mut waiting = functions.into_iter();
    let mut running = JoinSet::new();
    loop {
        while running.len() < ALIAS_READS
            && let Some(function) = waiting.next()
        {
            let control = control.clone();
            running.spawn(async move {
                let result = control.aliases_by_name(&function, Priority::Refresh).await;
                (function, result.map_err(|error| error.to_string()))
            });
        }
        match running.join_next().await {
            Some(Ok((function, result))) => {
                read.insert(function, result);
            }
            // A lost read leaves its function unread: it waits for the next discovery.
            Some(Err(_)) => {}
            None => return read,
        }
    }
}
