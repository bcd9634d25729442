//! `migrate`'s reads of one account and Region, read only: Application Auto Scaling's
//! settings for Lambda (three lists, each read whole), and for each scalable target
//! its function's memory and architecture (`ListFunctions`, within the read rate) and
//! its CloudWatch history over the window, as `audit` reads it, for the replay.
//!
//! What it must not do: write anything, or judge: the replay is `audit`'s.

use chrono::{DateTime, TimeDelta, Utc};

use super::Aas;
use crate::audit::read::history;
use crate::audit::{History, Observed};
use crate::aws::{AwsError, FunctionSummary, LambdaApi, MetricsApi, ScalingApi};
use crate::runtime::plane::control::Control;
use crate::runtime::plane::listing::list_functions;

/// AAS's settings; every list whole, or the error.
pub async fn settings<S: ScalingApi>(scaling: &S) -> Result<Aas, AwsError> {
    Ok(Aas {
        targets: scaling.lambda_targets().await?,
        policies: scaling.lambda_policies().await?,
        actions: scaling.lambda_scheduled_actions().await?,
    })
}

/// For each `(function, qualifier)`, what `audit`'s replay needs of it over the `days`
/// before `now`: the function's summary, its config now, and its history. A target
/// whose function or history cannot be read is left out, with why, in `problems`.
pub async fn histories<L: LambdaApi, M: MetricsApi>(
    (control, metrics): (&Control<L>, &M),
    targets: &[(String, String)],
    (days, now): (u32, DateTime<Utc>),
    problems: &mut Vec<String>,
) -> Vec<Observed> {
    let functions = match list_functions(control, |_| {}).await {
        Ok(functions) => functions,
        Err(error) => {
            problems.push(format!("the functions could not be listed: {error}"));
            return Vec::new();
        }
    };
    let window = (now - TimeDelta::days(i64::from(days)), now);
    let mut observed = Vec::new();
    for (function, qualifier) in targets {
        let Some(summary) = functions.iter().find(|summary| summary.name == *function) else {
            problems.push(format!(
                "{function}: no such function in this account and Region"
            ));
            continue;
        };
        match history(metrics, function, qualifier, window).await {
            Ok(history) => observed.push(observed_of(summary, qualifier, history)),
            Err(error) => problems.push(format!(
                "{function}:{qualifier}: its history could not be read: {error}"
            )),
        }
    }
    observed
}

/// What a replay reads of one target: its function, and its history.
fn observed_of(summary: &FunctionSummary, qualifier: &str, history: History) -> Observed {
    Observed {
        function: summary.clone(),
        qualifier: qualifier.to_owned(),
        config: Default::default(),
        function_requested: 0,
        reserved: None,
        aliases: Default::default(),
        scalable_target: None,
        history,
    }
}
