//! The validated configuration: typed values only, every invariant already checked.
//!
//! These types are plain data shared by the policy core, `simulate` and the runtime.
//! They hold no file handles, clocks or AWS types.
//!
//! What it must not do: hold file handles, clocks or AWS types, or be built other than
//! by validation.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::keys;

#[derive(Debug, Clone)]
pub struct Config {
    /// Where this configuration was read from (for messages).
    pub source: PathBuf,
    pub aws: AwsSettings,
    pub daemon: DaemonSettings,
    /// `[leader]`: `None` runs a single copy that is always the leader.
    pub leader: Option<LeaderSettings>,
    /// `[events]`: `None` sends no events.
    pub events: Option<EventsSettings>,
    /// `[[account]]`: accounts reached through roles; none manages the base
    /// credentials' account in `[aws] region`, as a single shard.
    pub accounts: Vec<AccountSettings>,
    /// `[[selector]]`: targets found by tags and name globs, in file order (the first
    /// that matches a function wins).
    pub selectors: Vec<SelectorConfig>,
    /// The `[[target]]`s written out, each in its shard.
    pub targets: Vec<TargetConfig>,
}

impl Config {
    /// Every setting at its default and nothing to manage: what a command that needs
    /// no file (`audit` without `--config`) runs with.
    pub fn without_targets() -> Self {
        Self {
            source: PathBuf::new(),
            aws: AwsSettings::default(),
            daemon: DaemonSettings::default(),
            leader: None,
            events: None,
            accounts: Vec::new(),
            selectors: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// The `[[account]]` named `name`.
    pub fn account(&self, name: &str) -> Option<&AccountSettings> {
        self.accounts.iter().find(|account| account.name == name)
    }

    /// Every shard the config makes, in a stable order: the base account's when a
    /// target is written for it or there is no `[[account]]`, then each account's
    /// Regions that a target or a selector names.
    pub fn shards(&self) -> Vec<ShardKey> {
        let mut shards = Vec::new();
        let base = ShardKey::default();
        if self.accounts.is_empty() || self.targets.iter().any(|target| target.shard == base) {
            shards.push(base);
        }
        for account in &self.accounts {
            for region in &account.regions {
                let key = ShardKey::of(&account.name, region);
                let used = self.targets.iter().any(|target| target.shard == key)
                    || self.selectors.iter().any(|selector| selector.covers(&key));
                if used {
                    shards.push(key);
                }
            }
        }
        shards
    }

    /// The `[aws]` settings of `shard` (its Region in place of `[aws] region`) and the
    /// account whose role it assumes.
    pub fn shard_access(&self, shard: &ShardKey) -> (AwsSettings, Option<&AccountSettings>) {
        let mut settings = self.aws.clone();
        if let Some(region) = &shard.region {
            settings.region = Some(region.to_string());
        }
        let account = shard.account.as_deref().and_then(|name| self.account(name));
        (settings, account)
    }

    /// The selectors that look in `shard`, in file order.
    pub fn selectors_of<'a>(
        &'a self,
        shard: &'a ShardKey,
    ) -> impl Iterator<Item = &'a SelectorConfig> + 'a {
        self.selectors
            .iter()
            .filter(move |selector| selector.covers(shard))
    }
}

/// One account and Region: the unit the daemon runs as a shard, with its own
/// credentials, control-plane budget and clients. The default is the base
/// credentials' account in `[aws] region`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardKey {
    /// An `[[account]]`'s name; `None`: the base credentials' account.
    pub account: Option<std::sync::Arc<str>>,
    /// `None`: `[aws] region` (or the SDK's chain), as a config without accounts.
    pub region: Option<std::sync::Arc<str>>,
}

impl ShardKey {
    pub fn of(account: &str, region: &str) -> Self {
        Self {
            account: Some(account.into()),
            region: Some(region.into()),
        }
    }

    pub fn is_base(&self) -> bool {
        self.account.is_none()
    }

    /// The `account` label of the shard's metrics: the account's name, or `base`.
    pub fn account_label(&self) -> &str {
        self.account.as_deref().unwrap_or(BASE_ACCOUNT)
    }

    /// The `region` label of the shard's metrics: `default` when the SDK's chain
    /// chooses it.
    pub fn region_label<'a>(&'a self, aws: &'a AwsSettings) -> &'a str {
        self.region
            .as_deref()
            .or(aws.region.as_deref())
            .unwrap_or("default")
    }
}

impl std::fmt::Display for ShardKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.account, &self.region) {
            (Some(account), Some(region)) => write!(formatter, "{account}/{region}"),
            (Some(account), None) => formatter.write_str(account),
            (None, _) => formatter.write_str(BASE_ACCOUNT),
        }
    }
}

/// How the base credentials' account is named in labels and messages.
pub const BASE_ACCOUNT: &str = "base";

/// `[[account]]`: an account whose role the daemon assumes, and its Regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSettings {
    /// Short; in target names (`name/function:qualifier`) and labels.
    pub name: String,
    pub role_arn: String,
    /// The 12 digits of `role_arn`: the key of the account's control-plane budget.
    pub account_id: String,
    pub external_id: Option<String>,
    pub session_name: String,
    pub regions: Vec<String>,
}

/// `[[selector]]`: functions found by their tags and names, managed with a template.
#[derive(Debug, Clone)]
pub struct SelectorConfig {
    pub name: String,
    /// `None`: every account (or the base one, when there is no `[[account]]`).
    pub account: Option<String>,
    /// `None`: every Region of the accounts it covers.
    pub region: Option<String>,
    /// Every one must match: a key and a value (`None`: any value).
    pub tags: Vec<(String, Option<String>)>,
    /// Function-name globs (`*`, `?`); one must match when any is given.
    pub functions: Vec<String>,
    /// Tags `pc-autoscaler:min`, `:max` and `:target` on a function override the
    /// template's.
    pub tag_overrides: bool,
    /// Every target key but the function and name; its function is a placeholder.
    pub template: TargetConfig,
}

impl SelectorConfig {
    /// Whether it looks in `shard`.
    pub fn covers(&self, shard: &ShardKey) -> bool {
        let account = match (&self.account, &shard.account) {
            (Some(wanted), Some(account)) => wanted.as_str() == &**account,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let region = match (&self.region, &shard.region) {
            (Some(wanted), Some(region)) => wanted.as_str() == &**region,
            (Some(_), None) => false,
            (None, _) => true,
        };
        account && region
    }

    /// Whether a function of this name matches the name globs.
    pub fn matches_name(&self, function: &str) -> bool {
        self.functions.is_empty()
            || self
                .functions
                .iter()
                .any(|glob| glob_matches(glob, function))
    }
}

/// `*` any run of characters, `?` one character; everything else as itself.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let (glob, text): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    // The classic two-pointer match with one backtrack point: linear in practice.
    let (mut g, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if g < glob.len() && (glob[g] == '?' || glob[g] == text[t]) {
            g += 1;
            t += 1;
        } else if g < glob.len() && glob[g] == '*' {
            star = Some(g);
            mark = t;
            g += 1;
        } else if let Some(at) = star {
            g = at + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|c| *c == '*')
}

/// Where a target came from: written out, or found by a selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Origin {
    #[default]
    Config,
    Selector {
        name: std::sync::Arc<str>,
        /// The tag overrides that changed its template, as `key=value`.
        overridden: Vec<String>,
    },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Config => formatter.write_str("config"),
            Origin::Selector { name, overridden } if overridden.is_empty() => {
                write!(formatter, "selector {name}")
            }
            Origin::Selector { name, overridden } => {
                write!(formatter, "selector {name}, tags {}", overridden.join(" "))
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// One endpoint for Lambda and CloudWatch, for emulators and tests.
    pub endpoint_url: Option<String>,
    /// Per-attempt timeout of AWS calls.
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSettings {
    pub interval: Duration,
    pub listen: SocketAddr,
    pub dry_run: bool,
    pub log_format: LogFormat,
    /// Lambda control-plane writes per second, all targets together.
    pub max_write_rate: f64,
    /// Lambda control-plane requests per second of the one-shot commands (`plan`,
    /// `run --once`), which read every function once; `--read-rate` overrides it.
    pub max_read_rate: f64,
    /// Requests per second the daemon spends on Lambda's shared control-plane limit
    /// (15 per second per account and Region, for every caller), reads and writes
    /// together.
    pub control_plane_budget: f64,
    /// How often a quiet target's metric is read (`policy::cadence`); no longer than
    /// `interval`: every target every interval.
    pub quiet_read_period: Duration,
    /// Every function's provisioned concurrency configs are read at least this often,
    /// to find changes made by others.
    pub drift_scan_period: Duration,
    /// How often facts that change rarely are read again: alias routing weights,
    /// reserved concurrency, the account's unreserved concurrency.
    pub refresh_period: Duration,
    /// Unreserved account concurrency that provisioned concurrency never takes.
    pub account_reserve: u32,
    /// How long in-flight writes may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// How long one pass over the targets may take before it is abandoned and
    /// liveness fails; `None`: [`DaemonSettings::pass_deadline`] derives it.
    pub pass_timeout: Option<Duration>,
    /// A JSON-lines file every activity is appended to, read back at start.
    pub activity_log: Option<PathBuf>,
    /// The activity log moves aside past this size (one old file is kept).
    pub activity_log_max_mib: u32,
    /// Where the daemon keeps its snapshot without `[leader]` (with it, the lease
    /// table does); none: no snapshot.
    pub state_directory: Option<PathBuf>,
    /// How often selectors look for functions again.
    pub discovery_period: Duration,
    /// Tagging API requests a second of one shard's discovery.
    pub discovery_rate: f64,
}

impl DaemonSettings {
    /// The deadline of one pass: `pass_timeout`, or five intervals and at least five
    /// minutes (a pass is mostly waiting on the read rate, so it scales with targets).
    pub fn pass_deadline(&self) -> Duration {
        self.pass_timeout
            .unwrap_or_else(|| (self.interval * 5).max(Duration::from_secs(300)))
    }
}

impl Default for DaemonSettings {
    /// Every key at its default in [`keys`].
    fn default() -> Self {
        Self {
            interval: keys::DAEMON_INTERVAL.duration(),
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            dry_run: false,
            log_format: LogFormat::Text,
            max_write_rate: keys::DAEMON_MAX_WRITE_RATE.rate(),
            max_read_rate: keys::DAEMON_MAX_READ_RATE.rate(),
            control_plane_budget: keys::DAEMON_CONTROL_PLANE_BUDGET.rate(),
            quiet_read_period: keys::DAEMON_QUIET_READ_PERIOD.duration(),
            drift_scan_period: keys::DAEMON_DRIFT_SCAN_PERIOD.duration(),
            refresh_period: keys::DAEMON_REFRESH_PERIOD.duration(),
            account_reserve: keys::DAEMON_ACCOUNT_RESERVE.count(),
            shutdown_grace: keys::DAEMON_SHUTDOWN_GRACE.duration(),
            pass_timeout: None,
            activity_log: None,
            activity_log_max_mib: keys::DAEMON_ACTIVITY_LOG_MAX_MIB.count(),
            state_directory: None,
            discovery_period: keys::DAEMON_DISCOVERY_PERIOD.duration(),
            discovery_rate: keys::DAEMON_DISCOVERY_RATE.rate(),
        }
    }
}

/// Activities sent to Amazon EventBridge as they are recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsSettings {
    /// A bus name or ARN.
    pub bus: String,
    pub endpoint_url: Option<String>,
    /// Events waiting to be sent at most.
    pub queue: u32,
}

impl EventsSettings {
    pub const DEFAULT_BUS: &str = "default";
}

/// Leader election among copies of the daemon: one acts, the others stand by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderSettings {
    /// The DynamoDB table holding the lease; its hash key is `id`, a string.
    pub table: String,
    /// The lease item's `id`: copies with the same table and name elect one leader.
    pub name: String,
    /// Create the table (on demand billing) when it does not exist.
    pub create_table: bool,
    /// DynamoDB's endpoint, for emulators and tests.
    pub endpoint_url: Option<String>,
    /// How long a lease holds without a renew before another copy takes over.
    pub lease: Duration,
    /// How often the leader renews; validation keeps it below `lease / 2`.
    pub renew_every: Duration,
    /// Who this copy is in the lease; `None`: hostname and process id, filled in by
    /// the runtime (the config reads no environment).
    pub identity: Option<String>,
    /// A lease per shard, spread over the copies, rather than one for every shard.
    pub spread: bool,
}

impl LeaderSettings {
    pub const DEFAULT_NAME: &str = "pc-autoscaler";

    /// A leader writes only while its last renew is younger than this.
    pub fn write_window(&self) -> Duration {
        self.lease / 2
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A function, identified once in validation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionId {
    /// The function's name, as Lambda reports it in ARNs and metrics.
    pub name: String,
    /// The account id: from an ARN, or the `[[account]]`'s; `None`: the base
    /// credentials' own.
    pub account: Option<String>,
    /// What requests send as `FunctionName`: the configured name, partial ARN or ARN,
    /// without a qualifier (requests name the qualifier separately).
    pub reference: String,
}

/// What follows the function name: an alias or a published version (never `$LATEST`).
/// Classified once, in validation. Only an alias can route traffic to two versions,
/// which rules out provisioned concurrency on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Qualifier {
    Alias(String),
    /// A version number, kept as written.
    Version(String),
}

impl Qualifier {
    /// A version is all digits; anything else that validation accepts is an alias.
    pub fn classify(text: &str) -> Self {
        if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
            Self::Version(text.to_owned())
        } else {
            Self::Alias(text.to_owned())
        }
    }

    /// As requests and `Resource` dimensions name it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Alias(text) | Self::Version(text) => text,
        }
    }
}

impl std::fmt::Display for Qualifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A target's name: its label in logs and metrics, and the key of everything the
/// runtime keeps per target. Cheap to clone, compared as the text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetName(std::sync::Arc<str>);

impl TargetName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for TargetName {
    fn from(name: String) -> Self {
        Self(name.into())
    }
}

impl From<&str> for TargetName {
    fn from(name: &str) -> Self {
        Self(name.into())
    }
}

impl std::ops::Deref for TargetName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TargetName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for TargetName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TargetName {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl PartialEq<str> for TargetName {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for TargetName {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

/// One managed function alias or version.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// Label used in logs and metrics; defaults to `function:qualifier`.
    pub name: TargetName,
    /// The account and Region it is managed in.
    pub shard: ShardKey,
    /// Written out, or found by a selector.
    pub origin: Origin,
    pub function: FunctionId,
    pub qualifier: Qualifier,
    pub min: u32,
    pub max: u32,
    /// Without tracking, capacity is the active minimum.
    pub tracking: Option<TrackingConfig>,
    pub schedules: Vec<ScheduleRule>,
    /// When an Application Auto Scaling target manages it: suspend AAS's scaling and
    /// manage it (true), or leave it alone and say so (false).
    pub take_over_aas: bool,
}

impl TargetConfig {
    pub fn is_alias(&self) -> bool {
        matches!(self.qualifier, Qualifier::Alias(_))
    }

    /// The same target with `forecast` set (when it tracks anything).
    pub fn with_forecast(&self, mode: ForecastMode) -> Self {
        let mut target = self.clone();
        if let Some(tracking) = &mut target.tracking {
            tracking.forecast = mode;
        }
        target
    }

    /// The same target with both uses of its history, `forecast` and `choose_window`,
    /// set: how `simulate` compares the reactive policy with the one that learns.
    pub fn with_history(&self, mode: ForecastMode) -> Self {
        let mut target = self.with_forecast(mode);
        if let Some(tracking) = &mut target.tracking {
            tracking.choose_window = mode;
        }
        target
    }

    /// Whether the window choice is computed (`observe` or `on`).
    pub fn chooses_window(&self) -> bool {
        self.tracking
            .as_ref()
            .is_some_and(|tracking| tracking.choose_window != ForecastMode::Off)
    }

    /// Whether its demand history is kept (and read at start): the forecast or the
    /// window choice is computed (`observe` or `on`).
    pub fn keeps_history(&self) -> bool {
        self.tracking
            .as_ref()
            .is_some_and(TrackingConfig::keeps_history)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrackingConfig {
    pub metric: MetricKind,
    /// Utilization to aim for (0 < t <= 1); for a custom metric, the value per unit.
    pub target: f64,
    /// Scale in only to the highest recommendation seen in this window.
    pub scale_in_window: TimeDelta,
    pub scale_out_cooldown: TimeDelta,
    pub scale_in_cooldown: TimeDelta,
    pub max_scale_in_step: Option<StepLimit>,
    pub missing_data: MissingData,
    /// A newest datapoint older than this counts as missing data.
    pub stale_after: TimeDelta,
    pub disable_scale_in: bool,
    /// Predictive pre-warm from the target's own history (`policy::forecast`).
    pub forecast: ForecastMode,
    /// How far ahead the forecast looks: metric lag + allocation + one interval.
    pub forecast_horizon: TimeDelta,
    /// The scale-in window and target chosen from the target's own history, at the
    /// configured pair's cost (`policy::tuning`).
    pub choose_window: ForecastMode,
    /// Neither `forecast` nor `choose_window` is written: both are on by the default
    /// that changed from `"off"` (`check` says so).
    pub history_by_default: bool,
}

impl TrackingConfig {
    pub fn keeps_history(&self) -> bool {
        self.forecast != ForecastMode::Off || self.choose_window != ForecastMode::Off
    }
}

/// Whether something learnt from history (the forecast, the window choice) is computed,
/// and whether it may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForecastMode {
    Off,
    /// Computed and shown (`plan`, metrics), never acted on.
    Observe,
    /// Raises the floor to the capacity the forecast needs.
    On,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MetricKind {
    /// `ConcurrentExecutions` of the alias or version, Maximum per minute.
    Concurrency,
    /// Keeps `ProvisionedConcurrencyUtilization` at the target. Computed from the
    /// alias's absolute `ConcurrentExecutions` (Maximum per minute, spillover included),
    /// not from the utilization series: a ratio measured under an earlier capacity,
    /// multiplied by today's, compounds (see `policy::tracking`).
    Utilization,
    Custom(CustomMetric),
}

impl MetricKind {
    /// A short, bounded label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            MetricKind::Concurrency => "concurrency",
            MetricKind::Utilization => "utilization",
            MetricKind::Custom(_) => "custom",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomMetric {
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
    /// CloudWatch statistic: Average, Maximum, Minimum, Sum, SampleCount or pNN.
    pub stat: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepLimit {
    /// At most this fraction (0 < f <= 1) of the current capacity per scale-in.
    Fraction(f64),
    /// At most this many units per scale-in.
    Count(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingData {
    /// Keep capacity as it is while data is missing or stale.
    Hold,
    /// Treat missing data as no load, so idle functions shrink.
    Zero,
}

/// A scheduled floor and/or ceiling.
#[derive(Debug, Clone)]
pub struct ScheduleRule {
    pub name: String,
    pub when: RuleTime,
    pub timezone: Tz,
    /// Without a duration the rule holds until another open-ended rule starts.
    pub duration: Option<TimeDelta>,
    /// The rule takes effect this much before its fire time.
    pub lead: TimeDelta,
    /// Only fire times from `start` to `end` (both included) count; bounds a rule set
    /// stay after `end` until another rule starts, as Application Auto Scaling's do.
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub min: Option<u32>,
    pub max: Option<u32>,
}

#[derive(Debug, Clone)]
pub enum RuleTime {
    /// A recurring rule; wall-clock times in the rule's time zone.
    Cron {
        expression: String,
        cron: Box<croner::Cron>,
    },
    /// A one-off rule, local to the rule's time zone.
    At(NaiveDateTime),
}
