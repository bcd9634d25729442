//! The only way the runtime sends Lambda requests: each one waits for its turn in the
//! control-plane budget of its account and Region, at a priority, and a throttle is
//! reported back to that budget.
//!
//! `GetFunction` has a limit of its own (100/s), so reserved concurrency is read
//! within a separate budget. Writes also respect `daemon.max_write_rate`. It must not decide anything or remember answers: what to
//! read and what an answer means belong to the shard and `knowing::known`.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::budget::Priority;
use super::scheduler::Scheduler;
use crate::aws::{Aliases, AwsError, FunctionConfigs, LambdaApi, ProvisionedConfig};
use crate::config::{Config, FunctionId, TargetConfig};
use crate::leader::Fence;
use crate::metrics::Metrics;

/// The share of `GetFunction`'s own 100/s limit that the daemon uses, all the time.
pub const DAEMON_GET_FUNCTION_RATE: f64 = 20.0;
/// The share the one-shot commands use, for the few seconds they run.
pub const ONE_SHOT_GET_FUNCTION_RATE: f64 = 50.0;

/// Which shared limit a request counts against: Lambda's is per account and Region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BudgetKey {
    /// The account when the function is named by ARN; otherwise the credentials'.
    pub account: Option<String>,
    pub region: Option<String>,
}

/// Budgeted access to Lambda. Cloning shares the budgets.
pub struct Control<L> {
    lambda: Arc<L>,
    rate: f64,
    /// The account of the shard's credentials, when known (an `[[account]]`'s id):
    /// a function named without an account shares its budget.
    home: Option<String>,
    region: Option<String>,
    metrics: Option<Arc<Metrics>>,
    budgets: Arc<Mutex<HashMap<BudgetKey, Scheduler>>>,
    get_function: Scheduler,
    /// `daemon.max_write_rate`: writes also wait here, before their budget turn.
    writes: Scheduler,
    /// Checked after a write's turn came and just before it is sent.
    fence: Fence,
}

impl<L> Clone for Control<L> {
    fn clone(&self) -> Self {
        Self {
            lambda: self.lambda.clone(),
            rate: self.rate,
            home: self.home.clone(),
            region: self.region.clone(),
            metrics: self.metrics.clone(),
            budgets: self.budgets.clone(),
            get_function: self.get_function.clone(),
            writes: self.writes.clone(),
            fence: self.fence.clone(),
        }
    }
}

impl<L: LambdaApi> Control<L> {
    /// `rate` requests a second per account and Region on Lambda's shared limit, and
    /// `get_function_rate` on `GetFunction`'s own.
    pub fn new(
        lambda: L,
        rate: f64,
        get_function_rate: f64,
        config: &Config,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Self {
            lambda: Arc::new(lambda),
            rate,
            home: None,
            region: config.aws.region.clone(),
            get_function: Scheduler::new(get_function_rate, None),
            writes: Scheduler::new(config.daemon.max_write_rate, None),
            metrics,
            budgets: Arc::default(),
            fence: Fence::open(),
        }
    }

    /// Writes are sent only while `fence` passes them (a leader's fresh lease).
    pub fn fenced(mut self, fence: Fence) -> Self {
        self.fence = fence;
        self
    }

    /// The budgets of the account `home` (its id) in `region`: a shard's.
    pub fn in_shard(mut self, home: Option<String>, region: Option<String>) -> Self {
        self.home = home;
        self.region = region;
        self
    }

    /// The budget of `account` (`None`: the credentials' own) in the clients' Region.
    fn budget(&self, account: Option<&String>) -> Scheduler {
        let key = BudgetKey {
            account: account.or(self.home.as_ref()).cloned(),
            region: self.region.clone(),
        };
        self.budgets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_insert_with(|| Scheduler::new(self.rate, self.metrics.clone()))
            .clone()
    }

    /// Sends the request `send` makes once `budget` gives a turn. The request is made
    /// and boxed only then: an SDK call's future is about 12 KiB, and hundreds of
    /// requests can be waiting for a turn (every write of a burst of scale-outs).
    async fn within<T, F>(
        budget: &Scheduler,
        priority: Priority,
        send: impl FnOnce() -> F,
    ) -> Result<T, AwsError>
    where
        F: Future<Output = Result<T, AwsError>>,
    {
        budget.turn(priority).await;
        let result = Box::pin(send()).await;
        if let Err(AwsError::Throttled { retry_after, .. }) = &result {
            budget.throttled(priority, *retry_after);
        }
        result
    }

    /// Every qualifier's config of `function`: one `ListProvisionedConcurrencyConfigs`.
    pub async fn scan(
        &self,
        function: &FunctionId,
        priority: Priority,
    ) -> Result<FunctionConfigs, AwsError> {
        Self::within(&self.budget(function.account.as_ref()), priority, || {
            self.lambda.provisioned_configs(&function.reference)
        })
        .await
    }

    /// One target's config, read back while its allocation is in progress.
    pub async fn read_back(
        &self,
        target: &TargetConfig,
    ) -> Result<Option<ProvisionedConfig>, AwsError> {
        Self::within(
            &self.budget(target.function.account.as_ref()),
            Priority::ReadBack,
            || {
                self.lambda
                    .provisioned_config(&target.function.reference, target.qualifier.as_str())
            },
        )
        .await
    }

    /// Puts `to`, or deletes the config for 0. `Some` is the config Lambda answered a
    /// put with; `None` after a delete. The fence is checked last, after every wait:
    /// a turn can come long after the write was decided.
    pub async fn write(
        &self,
        target: &TargetConfig,
        to: u32,
        priority: Priority,
    ) -> Result<Option<ProvisionedConfig>, AwsError> {
        let (function, qualifier) = (&target.function.reference, target.qualifier.as_str());
        let budget = self.budget(target.function.account.as_ref());
        self.writes.turn(priority).await;
        // The check runs after the budget turn, right before sending.
        Self::within(&budget, priority, || async {
            // Held until the answer: on the wire meanwhile, for a lease handed over.
            let _passed = self
                .fence
                .enter()
                .map_err(|epoch| AwsError::Fenced { epoch })?;
            if to == 0 {
                self.lambda
                    .delete_provisioned_config(function, qualifier)
                    .await
                    .map(|()| None)
            } else {
                self.lambda
                    .put_provisioned_config(function, qualifier, to)
                    .await
                    .map(Some)
            }
        })
        .await
    }

    /// The function's weighted aliases: one `ListAliases`.
    pub async fn alias_weights(
        &self,
        function: &FunctionId,
        priority: Priority,
    ) -> Result<BTreeSet<String>, AwsError> {
        Self::within(&self.budget(function.account.as_ref()), priority, || {
            self.lambda.aliases(&function.reference)
        })
        .await
        .map(|aliases| crate::aws::weighted(&aliases))
    }

    /// The aliases of a function of the shard's account, named as `ListFunctions`
    /// or the tagging API found it: one `ListAliases`.
    pub async fn aliases_by_name(
        &self,
        function: &str,
        priority: Priority,
    ) -> Result<Aliases, AwsError> {
        Self::within(&self.budget(None), priority, || {
            self.lambda.aliases(function)
        })
        .await
    }

    /// One page of the account's functions: one `ListFunctions`.
    pub async fn functions(
        &self,
        marker: Option<String>,
        priority: Priority,
    ) -> Result<(Vec<crate::aws::FunctionSummary>, Option<String>), AwsError> {
        Self::within(&self.budget(None), priority, || {
            self.lambda.functions(marker)
        })
        .await
    }

    /// The function's reserved concurrency, within `GetFunction`'s own limit.
    pub async fn reserved(&self, function: &FunctionId) -> Result<Option<u32>, AwsError> {
        Self::within(&self.get_function, Priority::Refresh, || {
            self.lambda.reserved_concurrency(&function.reference)
        })
        .await
    }

    /// Whether the target's version has SnapStart on, within `GetFunction`'s limit.
    pub async fn snap_start(&self, target: &TargetConfig) -> Result<bool, AwsError> {
        Self::within(&self.get_function, Priority::Refresh, || {
            self.lambda
                .snap_start(&target.function.reference, target.qualifier.as_str())
        })
        .await
    }

    /// The account's unreserved concurrency.
    pub async fn unreserved(&self, priority: Priority) -> Result<Option<u32>, AwsError> {
        Self::within(&self.budget(None), priority, || {
            self.lambda.unreserved_concurrency()
        })
        .await
    }
}
