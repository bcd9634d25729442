//! AWS adapters: Lambda's provisioned-concurrency control plane and CloudWatch
//! `GetMetricData`, behind two small traits so that the runtime, `plan` and tests never
//! see SDK types.
//!
//! Every SDK error is mapped to one [`AwsError`] with a bounded [`AwsError::label`].
//!
//! Retries: **reads** use the SDK's standard retry (3 attempts, exponential backoff with
//! jitter) and then report. **Writes** (`Put`/`DeleteProvisionedConcurrencyConfig`) are
//! sent with SDK retries off: the write course owns them, because only it can honour
//! `retryAfterSeconds`, wait out a conflict and re-decide before writing again.
//!
//! What it must not do: show SDK types to the rest of the crate, decide anything, or
//! count what it sends (`metrics::Instrumented` does).

pub mod answers;
pub use answers::AnswerLimit;
mod cloudwatch;
pub mod dynamodb;
mod errors;
pub mod eventbridge;
mod lambda;
#[cfg(test)]
pub mod memory;
mod scaling;
pub mod sts;
mod tagging;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::{AccountSettings, AwsSettings, EventsSettings, LeaderSettings};
use crate::leader::LeaderElection;
use crate::policy::{AllocationStatus, Datapoint};
pub use cloudwatch::{MAX_QUERIES_PER_REQUEST, SdkMetrics};
pub use errors::{AwsError, MAX_RETRY_AFTER, RefusalCause};
pub use lambda::SdkLambda;
pub use scaling::{SdkScaling, by_function};
pub use tagging::{SdkTagging, function_name_of};

/// A qualifier's provisioned concurrency config, as `GetProvisionedConcurrencyConfig` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProvisionedConfig {
    pub requested: u32,
    pub allocated: u32,
    pub status: AllocationStatus,
    pub status_reason: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
}

/// Every qualifier of one function that has a provisioned concurrency config.
pub type FunctionConfigs = BTreeMap<String, ProvisionedConfig>;

/// Lambda's control plane, as far as provisioned concurrency goes.
pub trait LambdaApi: Send + Sync + 'static {
    /// `None` when the qualifier has no config (capacity 0).
    fn provisioned_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> impl Future<Output = Result<Option<ProvisionedConfig>, AwsError>> + Send;
    fn put_provisioned_config(
        &self,
        function: &str,
        qualifier: &str,
        value: u32,
    ) -> impl Future<Output = Result<ProvisionedConfig, AwsError>> + Send;
    fn delete_provisioned_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// The function's reserved concurrency; `None` when it has none. Read with
    /// `GetFunction`, which has its own request limit (100/s), not the shared 15/s.
    fn reserved_concurrency(
        &self,
        function: &str,
    ) -> impl Future<Output = Result<Option<u32>, AwsError>> + Send;
    /// Whether the version `qualifier` names (an alias: the version it points to) has
    /// SnapStart on, which rules out provisioned concurrency (`GetFunction` with the
    /// qualifier, within its own limit).
    fn snap_start(
        &self,
        function: &str,
        qualifier: &str,
    ) -> impl Future<Output = Result<bool, AwsError>> + Send;
    /// Every qualifier of the function that has a provisioned concurrency config, in
    /// one `ListProvisionedConcurrencyConfigs` (paginated).
    fn provisioned_configs(
        &self,
        function: &str,
    ) -> impl Future<Output = Result<FunctionConfigs, AwsError>> + Send;
    /// `UnreservedConcurrentExecutions` of the account; `None` when the answer lacks
    /// it (unknown limits nothing: reading a missing field as 0 would block every
    /// scale-up, schedule floors included).
    fn unreserved_concurrency(&self) -> impl Future<Output = Result<Option<u32>, AwsError>> + Send;
    /// The function's aliases, each with whether it routes a share of traffic to a
    /// second version (then it cannot take provisioned concurrency), in one
    /// `ListAliases` (paginated).
    fn aliases(&self, function: &str) -> impl Future<Output = Result<Aliases, AwsError>> + Send;
    /// One page of `ListFunctions`, and the marker of the next page.
    fn functions(
        &self,
        marker: Option<String>,
    ) -> impl Future<Output = Result<(Vec<FunctionSummary>, Option<String>), AwsError>> + Send;
}

/// A function as `ListFunctions` describes it: what its price depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSummary {
    pub name: String,
    pub memory_mb: u32,
    /// `arm64` (Graviton) rather than `x86_64`.
    pub arm64: bool,
}

/// Where an alias routes: its version, and the versions it sends a share to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Alias {
    pub version: String,
    pub weighted_to: Vec<String>,
}

impl Alias {
    /// Routes a share of traffic to a second version: it cannot take provisioned
    /// concurrency.
    pub fn is_weighted(&self) -> bool {
        !self.weighted_to.is_empty()
    }
}

/// A function's aliases, by name.
pub type Aliases = BTreeMap<String, Alias>;

/// The weighted ones of `aliases`.
pub fn weighted(aliases: &Aliases) -> BTreeSet<String> {
    aliases
        .iter()
        .filter(|(_, alias)| alias.is_weighted())
        .map(|(name, _)| name.clone())
        .collect()
}

/// What Application Auto Scaling has suspended of a scalable target: dynamic scaling in
/// and out (its policies) and scheduled scaling (its actions). Unset reads as `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SuspendedState {
    pub dynamic_in: bool,
    pub dynamic_out: bool,
    pub scheduled: bool,
}

impl SuspendedState {
    /// Every kind of scaling suspended: what taking a target over sets.
    pub const ALL: SuspendedState = SuspendedState {
        dynamic_in: true,
        dynamic_out: true,
        scheduled: true,
    };
}

/// A scalable target of Lambda provisioned concurrency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalableTarget {
    pub function: String,
    pub qualifier: String,
    pub min: u32,
    pub max: u32,
    pub suspended: SuspendedState,
}

/// A scaling policy of a Lambda scalable target.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingPolicy {
    pub function: String,
    pub qualifier: String,
    pub name: String,
    pub kind: PolicyKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PolicyKind {
    TargetTracking(TargetTrackingPolicy),
    /// Step scaling, as one line for people.
    Step(String),
    /// Any other type, by its name.
    Other(String),
}

/// A target-tracking policy's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTrackingPolicy {
    pub target_value: f64,
    pub metric: TrackedMetric,
    pub scale_in_cooldown: Option<u32>,
    pub scale_out_cooldown: Option<u32>,
    pub disable_scale_in: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrackedMetric {
    /// A predefined metric type, such as `LambdaProvisionedConcurrencyUtilization`.
    Predefined(String),
    Customized {
        namespace: Option<String>,
        name: Option<String>,
        dimensions: BTreeMap<String, String>,
        statistic: Option<String>,
        /// Metric math (`Metrics`) rather than one metric.
        math: bool,
    },
}

/// A scheduled action of a Lambda scalable target, as Application Auto Scaling keeps
/// it: its schedule expression (`cron(…)`, `at(…)` or `rate(…)`) in `timezone` (UTC
/// when absent), fired only from `start` to `end`, setting `min`, `max` or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledAction {
    pub function: String,
    pub qualifier: String,
    pub name: String,
    pub schedule: String,
    pub timezone: Option<String>,
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    pub end: Option<chrono::DateTime<chrono::Utc>>,
    pub min: Option<u32>,
    pub max: Option<u32>,
}

/// Application Auto Scaling's settings for Lambda provisioned concurrency
/// ([`SdkScaling`]): read whole, and the one write pc-autoscaler makes, a scalable
/// target's suspended state.
pub trait ScalingApi: Send + Sync + 'static {
    /// Every scalable target (`DescribeScalableTargets`).
    fn lambda_targets(&self) -> impl Future<Output = Result<Vec<ScalableTarget>, AwsError>> + Send;
    /// Every scaling policy (`DescribeScalingPolicies`).
    fn lambda_policies(&self) -> impl Future<Output = Result<Vec<ScalingPolicy>, AwsError>> + Send;
    /// Every scheduled action (`DescribeScheduledActions`).
    fn lambda_scheduled_actions(
        &self,
    ) -> impl Future<Output = Result<Vec<ScheduledAction>, AwsError>> + Send;
    /// Sets what is suspended of `function:qualifier`'s scalable target
    /// (`RegisterScalableTarget` with `SuspendedState` alone: nothing else changes).
    fn set_suspended(
        &self,
        function: &str,
        qualifier: &str,
        state: SuspendedState,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// A function found by its tags, with all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedFunction {
    pub name: String,
    pub tags: BTreeMap<String, String>,
}

/// One page of `GetResources`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaggedPage {
    pub functions: Vec<TaggedFunction>,
    /// `None` on the last page.
    pub next: Option<String>,
}

/// The Resource Groups Tagging API, for Lambda functions ([`SdkTagging`]).
pub trait TaggingApi: Send + Sync + 'static {
    /// One page of the functions that have every tag of `tags` (a key and a value, or
    /// any value); `token` from the page before.
    fn tagged_page(
        &self,
        tags: &[(String, Option<String>)],
        token: Option<String>,
    ) -> impl Future<Output = Result<TaggedPage, AwsError>> + Send;
}

/// One metric series to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricQuery {
    /// Unique within a request: lower-case letter first, then letters, digits, `_`.
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
    pub stat: String,
    /// Seconds a datapoint covers: [`MetricQuery::MINUTE`] for the passes, longer for
    /// the forecast's history of peaks.
    pub period: i32,
}

impl MetricQuery {
    pub const MINUTE: i32 = 60;

    /// Lambda's account-level `ConcurrentExecutions` (no dimension), the peak of each
    /// minute: the account's sentinel (`policy::cadence`).
    pub fn account_concurrency(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            namespace: "AWS/Lambda".to_owned(),
            name: "ConcurrentExecutions".to_owned(),
            dimensions: BTreeMap::new(),
            stat: "Maximum".to_owned(),
            period: Self::MINUTE,
        }
    }
}

/// How complete a returned series is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesStatus {
    Complete,
    /// More datapoints exist than were returned, or CloudWatch has not finished.
    Partial,
    /// CloudWatch reported an error for this query.
    Failed,
}

/// A series as read: datapoints in time order. An empty series is "no data", never zero.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub points: Vec<Datapoint>,
    pub status: SeriesStatus,
}

/// The result of one batched read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricsBatch {
    pub series: BTreeMap<String, Series>,
    /// Metrics requested, summed over the calls made (pages included): what
    /// CloudWatch bills, $0.01 per 1,000.
    pub metrics_requested: u64,
}

/// CloudWatch metrics.
pub trait MetricsApi: Send + Sync + 'static {
    /// Reads all `queries` for `[start, end)` in as few calls as the API allows.
    fn fetch(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> impl Future<Output = Result<MetricsBatch, AwsError>> + Send;
}

/// Where the leader keeps its snapshots with `[leader]`: the lease table
/// ([`dynamodb::DynamoState`]). A store keeps one snapshot a slot (a shard: `""` for
/// the base account's, `account/region` for the others), each replaced whole.
pub trait SnapshotStore: Send + Sync + 'static {
    /// The snapshot kept in `slot`, if there is one.
    fn load(&self, slot: &str) -> impl Future<Output = Result<Option<Vec<u8>>, AwsError>> + Send;
    /// Keeps `bytes` in place of `slot`'s snapshot before; a reader never sees a mix.
    fn save(&self, slot: &str, bytes: Vec<u8>)
    -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// A document every copy shares, kept as one item of the lease table with `[leader]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// Operators' overrides.
    Overrides,
    /// What was taken over from Application Auto Scaling, and handed back.
    Handovers,
}

impl Item {
    /// The item's key: its id is `NAME#key` in the lease table.
    pub fn key(self) -> &'static str {
        match self {
            Item::Overrides => "overrides",
            Item::Handovers => "handovers",
        }
    }

    /// Its file in the state directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Item::Overrides => "overrides.json",
            Item::Handovers => "handovers.json",
        }
    }
}

/// The versioned items of the lease table (`aws::dynamodb::DynamoState`).
pub trait ItemTable: Send + Sync + 'static {
    /// The item kept and its version, if it was ever written.
    fn load_item(
        &self,
        item: Item,
    ) -> impl Future<Output = Result<Option<(Vec<u8>, u64)>, AwsError>> + Send;
    /// Keeps `bytes` if the version is still `expected` (`None`: nothing kept yet);
    /// `false` when another writer came first.
    fn save_item(
        &self,
        item: Item,
        bytes: Vec<u8>,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<bool, AwsError>> + Send;
}

/// One event for EventBridge: its `detail-type` and JSON `detail`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventEntry {
    pub detail_type: &'static str,
    pub detail: String,
    pub time: DateTime<Utc>,
}

/// Where events go ([`eventbridge::SdkEvents`]).
pub trait EventsApi: Send + Sync + 'static {
    /// Sends at most 10 entries in one call; returns the positions of those that were
    /// not taken (to send again), or why the whole call failed.
    fn put(
        &self,
        entries: &[EventEntry],
    ) -> impl Future<Output = Result<Vec<usize>, AwsError>> + Send;
}

/// A shard's clients: Lambda, CloudWatch, the tagging API and Application Auto
/// Scaling.
pub struct Clients<C: Connect + ?Sized> {
    pub lambda: C::Lambda,
    pub metrics: C::Metrics,
    pub tagging: C::Tagging,
    pub scaling: C::Scaling,
}

/// Builds a shard's clients for `[aws]` settings (its Region set) and, in an
/// `[[account]]`, the role to assume: the SDK in production ([`Sdk`]), in-memory fakes
/// in tests of the daemon in virtual time. The daemon connects anew when a reload
/// changes the settings.
pub trait Connect: Send + Sync + 'static {
    type Lambda: LambdaApi;
    type Metrics: MetricsApi;
    type Tagging: TaggingApi;
    type Scaling: ScalingApi;
    type Lease: LeaderElection;
    type State: SnapshotStore + ItemTable;
    type Events: EventsApi;
    fn connect(
        &self,
        settings: &AwsSettings,
        role: Option<&AccountSettings>,
    ) -> impl Future<Output = Clients<Self>> + Send;
    /// The store of the leader lease `[leader]` names; `clock` stamps the record's
    /// human-readable time.
    fn lease(
        &self,
        aws: &AwsSettings,
        leader: &LeaderSettings,
        clock: Clock,
    ) -> impl Future<Output = Self::Lease> + Send;
    /// Where `[events]` sends, the Region and the account id the events name.
    fn events(
        &self,
        aws: &AwsSettings,
        events: &EventsSettings,
    ) -> impl Future<Output = (Self::Events, Option<String>, Option<String>)> + Send;
    /// The leader's state in `[leader]`'s table: the snapshot and the overrides.
    fn state(
        &self,
        aws: &AwsSettings,
        leader: &LeaderSettings,
    ) -> impl Future<Output = Self::State> + Send;
}

/// Connects with the official SDK ([`connect`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sdk;

impl Connect for Sdk {
    type Lambda = SdkLambda;
    type Metrics = SdkMetrics;
    type Tagging = SdkTagging;
    type Scaling = SdkScaling;
    type Lease = dynamodb::DynamoLease;
    type State = dynamodb::DynamoState;
    type Events = eventbridge::SdkEvents;
    async fn events(
        &self,
        aws: &AwsSettings,
        events: &EventsSettings,
    ) -> (eventbridge::SdkEvents, Option<String>, Option<String>) {
        let (api, region) = eventbridge::SdkEvents::connect(aws, events).await;
        let account = sts::caller_arn(aws, events.endpoint_url.as_deref())
            .await
            .ok()
            .and_then(|arn| arn.split(':').nth(4).map(str::to_owned))
            .filter(|account| !account.is_empty());
        (api, region, account)
    }
    async fn connect(
        &self,
        settings: &AwsSettings,
        role: Option<&AccountSettings>,
    ) -> Clients<Sdk> {
        connect(settings, role).await
    }
    async fn lease(
        &self,
        aws: &AwsSettings,
        leader: &LeaderSettings,
        clock: Clock,
    ) -> dynamodb::DynamoLease {
        dynamodb::DynamoLease::connect(aws, leader, clock).await
    }
    async fn state(&self, aws: &AwsSettings, leader: &LeaderSettings) -> dynamodb::DynamoState {
        dynamodb::DynamoState::connect(aws, leader).await
    }
}

/// Per-attempt timeout for AWS calls unless `[aws] timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = crate::config::keys::AWS_TIMEOUT.duration();
/// Attempts the SDK makes for a read before it reports the error.
pub const READ_ATTEMPTS: u32 = 3;
/// `GetMetricData` pages one read follows before it marks what it has as partial, so
/// that the targets hold: a pass's read is due again within the interval.
pub const MAX_METRIC_PAGES: usize = 50;
/// How long a walk through one function's list (its configs, its aliases) may take.
pub const FUNCTION_WALK: Duration = Duration::from_secs(300);
/// How long a walk through an account's list (its functions, its tagged resources, its
/// scalable targets) may take: at Lambda's 15 requests a second, 2.7 million functions.
pub const ACCOUNT_WALK: Duration = Duration::from_secs(3600);

/// A walk through a paginated list, to its end: within a time budget rather than a
/// page cap, since an account's list may be long, and never round a loop (a page
/// token that comes back). What a walk returns is the whole list or an error.
pub struct Walk {
    what: &'static str,
    deadline: tokio::time::Instant,
    tokens: std::collections::HashSet<String>,
}

impl Walk {
    /// A walk through `what` that must end within `budget`.
    pub fn new(what: &'static str, budget: Duration) -> Self {
        Self {
            what,
            deadline: tokio::time::Instant::now() + budget,
            tokens: Default::default(),
        }
    }

    /// Takes the token a page ended with: `None` at the end, or the next page's token;
    /// an error when the walk has outlived its budget or the token came before.
    pub fn next(&mut self, token: Option<String>) -> Result<Option<String>, AwsError> {
        let Some(token) = token else {
            return Ok(None);
        };
        let pages = self.tokens.len() + 1;
        if !self.tokens.insert(token.clone()) {
            return Err(AwsError::Malformed {
                message: format!(
                    "{} gave a page token again after {pages} pages: the list loops",
                    self.what
                ),
            });
        }
        if tokio::time::Instant::now() >= self.deadline {
            return Err(AwsError::Malformed {
                message: format!(
                    "{} was not read to its end within its time budget ({pages} pages)",
                    self.what
                ),
            });
        }
        Ok(Some(token))
    }
}

/// The overall deadline of one operation, retries and their backoff included, for a
/// per-attempt `timeout`: every attempt may take the whole timeout, and the SDK's
/// backoff between attempts is at most 20 s each.
pub fn operation_deadline(timeout: Duration) -> Duration {
    timeout * READ_ATTEMPTS + Duration::from_secs(20) * (READ_ATTEMPTS - 1)
}

/// The standard AWS chain, with `[aws]`'s region and profile and `endpoint`.
fn loader(settings: &AwsSettings, endpoint: Option<&str>) -> aws_config::ConfigLoader {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader
}

/// The SDK's shared config of a shard: the standard AWS chain overridden by `[aws]`;
/// with `role`, on credentials from STS `AssumeRole` made with that chain's, which the
/// SDK's provider caches and renews before they expire.
async fn shard_config(
    settings: &AwsSettings,
    role: Option<&AccountSettings>,
) -> aws_config::SdkConfig {
    use aws_config::timeout::TimeoutConfig;

    let mut loader = loader(settings, settings.endpoint_url.as_deref());
    let timeout = settings.timeout.unwrap_or(DEFAULT_TIMEOUT);
    loader = loader.timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(timeout)
            .operation_attempt_timeout(timeout)
            .operation_timeout(operation_deadline(timeout))
            .build(),
    );
    let shared = loader.load().await;
    let Some(role) = role else {
        return shared;
    };
    let mut provider = aws_config::sts::AssumeRoleProvider::builder(&role.role_arn)
        .session_name(&role.session_name)
        .configure(&shared);
    if let Some(external_id) = &role.external_id {
        provider = provider.external_id(external_id);
    }
    let provider = provider.build().await;
    shared
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build()
}

/// Builds a shard's clients ([`shard_config`]).
pub async fn connect(settings: &AwsSettings, role: Option<&AccountSettings>) -> Clients<Sdk> {
    use aws_config::retry::RetryConfig;

    let shared = shard_config(settings, role).await;
    let limit = AnswerLimit(answers::MAX_ANSWER_BYTES);
    let reads = aws_sdk_lambda::config::Builder::from(&shared)
        .retry_config(RetryConfig::standard().with_max_attempts(READ_ATTEMPTS))
        .interceptor(limit)
        .build();
    let writes = aws_sdk_lambda::config::Builder::from(&shared)
        .retry_config(RetryConfig::disabled())
        .interceptor(limit)
        .build();
    let metrics = aws_sdk_cloudwatch::config::Builder::from(&shared)
        .retry_config(RetryConfig::standard().with_max_attempts(READ_ATTEMPTS))
        .interceptor(AnswerLimit(answers::MAX_METRICS_ANSWER_BYTES))
        .build();
    let tagging = aws_sdk_resourcegroupstagging::config::Builder::from(&shared)
        .retry_config(RetryConfig::standard().with_max_attempts(READ_ATTEMPTS))
        .interceptor(limit)
        .build();
    let scaling = aws_sdk_applicationautoscaling::config::Builder::from(&shared)
        .retry_config(RetryConfig::standard().with_max_attempts(READ_ATTEMPTS))
        .interceptor(limit)
        .build();
    Clients {
        lambda: SdkLambda::new(
            aws_sdk_lambda::Client::from_conf(reads),
            aws_sdk_lambda::Client::from_conf(writes),
        ),
        metrics: SdkMetrics::new(aws_sdk_cloudwatch::Client::from_conf(metrics)),
        tagging: SdkTagging::new(aws_sdk_resourcegroupstagging::Client::from_conf(tagging)),
        scaling: SdkScaling::new(aws_sdk_applicationautoscaling::Client::from_conf(scaling)),
    }
}
