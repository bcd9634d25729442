//! In-memory `LambdaApi` and `MetricsApi`, for tests of the runtime in virtual time
//! (`tokio::time::pause`): the same traits as the SDK adapters, with Lambda's
//! allocation semantics (a put is `IN_PROGRESS` for `allocation_delay`, and a write
//! meanwhile is a conflict), scripted faults, and a log of every request.
//!
//! The wire tests (`tests/`) prove the protocol against a local HTTP endpoint; this
//! module is only for timing and ordering. It must not be used outside tests and
//! benchmarks.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::aws::{
    AwsError, Connect, FunctionConfigs, LambdaApi, MetricQuery, MetricsApi, MetricsBatch,
    ProvisionedConfig, Series, SeriesStatus,
};
use crate::clock::Clock;
use crate::config::AwsSettings;
use crate::config::LeaderSettings;
use crate::leader::{Ask, Expected, LeaderElection, LeaseError, LeaseRecord, Renewal};
use crate::policy::{AllocationStatus, Datapoint};

/// One request, as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub at: Instant,
    pub api: &'static str,
    pub function: String,
    pub qualifier: Option<String>,
    pub value: Option<u32>,
    pub ok: bool,
}

#[derive(Debug, Clone, Default)]
pub struct MemoryFunction {
    pub reserved: Option<u32>,
    /// While set, every allocation ends `FAILED` with this reason (an init failure).
    pub init_fails: Option<String>,
    pub weighted: BTreeSet<String>,
    /// Aliases without routing weights (the weighted ones are aliases too).
    pub aliases: BTreeSet<String>,
    /// The function's tags, as the tagging API finds them.
    pub tags: BTreeMap<String, String>,
    /// Its published versions have SnapStart on.
    pub snap_start: bool,
    /// Qualifier → config and when its allocation started.
    pub configs: BTreeMap<String, (ProvisionedConfig, Instant)>,
}

#[derive(Debug)]
pub struct FakeWorld {
    pub functions: HashMap<String, MemoryFunction>,
    pub allocation_delay: Duration,
    pub unreserved: Option<u32>,
    /// Stamps `LastModified`: the daemon under test must be given the same clock.
    pub clock: Clock,
    /// The next requests of an API fail with these errors, in order.
    pub faults: HashMap<&'static str, VecDeque<AwsError>>,
    pub log: Vec<Call>,
    panic_on_put: HashSet<String>,
    /// Application Auto Scaling's scalable targets, by function and qualifier.
    pub scalable: BTreeMap<(String, String), crate::aws::ScalableTarget>,
}

impl Default for FakeWorld {
    fn default() -> Self {
        Self {
            functions: HashMap::new(),
            allocation_delay: Duration::from_secs(60),
            unreserved: Some(1_000),
            clock: Clock::System,
            faults: HashMap::new(),
            log: Vec::new(),
            panic_on_put: HashSet::new(),
            scalable: BTreeMap::new(),
        }
    }
}

impl FakeWorld {
    /// Sets a qualifier's config as if someone else's put had finished.
    pub fn set_config(&mut self, function: &str, qualifier: &str, requested: u32) {
        let config = ProvisionedConfig {
            requested,
            allocated: requested,
            status: AllocationStatus::Ready,
            status_reason: None,
            last_modified: Some(self.clock.now()),
        };
        self.functions
            .entry(function.to_owned())
            .or_default()
            .configs
            .insert(qualifier.to_owned(), (config, Instant::now()));
    }

    /// The requests of one API.
    pub fn requests(&self, api: &str) -> Vec<Call> {
        self.log
            .iter()
            .filter(|request| request.api == api)
            .cloned()
            .collect()
    }

    fn settle(&mut self) {
        let delay = self.allocation_delay;
        for function in self.functions.values_mut() {
            for (config, since) in function.configs.values_mut() {
                if config.status == AllocationStatus::InProgress && since.elapsed() >= delay {
                    match &function.init_fails {
                        Some(reason) => {
                            config.status = AllocationStatus::Failed;
                            config.status_reason = Some(reason.clone());
                            config.allocated = 0;
                        }
                        None => {
                            config.status = AllocationStatus::Ready;
                            config.allocated = config.requested;
                        }
                    }
                }
            }
        }
    }

    /// Logs the request and returns its scripted fault, if any.
    fn request(
        &mut self,
        api: &'static str,
        function: &str,
        qualifier: Option<&str>,
        value: Option<u32>,
    ) -> Result<(), AwsError> {
        self.settle();
        let fault = self.faults.get_mut(api).and_then(VecDeque::pop_front);
        self.log.push(Call {
            at: Instant::now(),
            api,
            function: function.to_owned(),
            qualifier: qualifier.map(str::to_owned),
            value,
            ok: fault.is_none(),
        });
        fault.map_or(Ok(()), Err)
    }

    fn conflict(&self, function: &str, qualifier: &str) -> bool {
        self.functions
            .get(function)
            .and_then(|function| function.configs.get(qualifier))
            .is_some_and(|(config, _)| config.status == AllocationStatus::InProgress)
    }
}

/// An in-memory Lambda. Cloning shares the world.
#[derive(Clone, Default)]
pub struct MemoryLambda {
    world: Arc<Mutex<FakeWorld>>,
}

impl MemoryLambda {
    pub fn world(&self) -> MutexGuard<'_, FakeWorld> {
        self.world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A put to `function` panics: for tests of how a failed task is reported.
    pub fn panic_on_put(&self, function: &str) {
        self.world().panic_on_put.insert(function.to_owned());
    }
}

fn conflict() -> AwsError {
    AwsError::Conflict {
        message: "An update is in progress for resource".into(),
    }
}

impl LambdaApi for MemoryLambda {
    async fn provisioned_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<ProvisionedConfig>, AwsError> {
        let mut world = self.world();
        world.request(
            "GetProvisionedConcurrencyConfig",
            function,
            Some(qualifier),
            None,
        )?;
        Ok(world
            .functions
            .get(function)
            .and_then(|function| function.configs.get(qualifier))
            .map(|(config, _)| config.clone()))
    }

    async fn put_provisioned_config(
        &self,
        function: &str,
        qualifier: &str,
        value: u32,
    ) -> Result<ProvisionedConfig, AwsError> {
        let mut world = self.world();
        world.request(
            "PutProvisionedConcurrencyConfig",
            function,
            Some(qualifier),
            Some(value),
        )?;
        assert!(
            !world.panic_on_put.contains(function),
            "injected panic inside a write"
        );
        if world.conflict(function, qualifier) {
            return Err(conflict());
        }
        let before = world
            .functions
            .get(function)
            .and_then(|entry| entry.configs.get(qualifier))
            .map_or(0, |(config, _)| config.allocated);
        let config = ProvisionedConfig {
            requested: value,
            allocated: before.min(value),
            status: AllocationStatus::InProgress,
            status_reason: None,
            last_modified: Some(world.clock.now()),
        };
        let entry = world.functions.entry(function.to_owned()).or_default();
        entry
            .configs
            .insert(qualifier.to_owned(), (config.clone(), Instant::now()));
        Ok(config)
    }

    async fn delete_provisioned_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<(), AwsError> {
        let mut world = self.world();
        world.request(
            "DeleteProvisionedConcurrencyConfig",
            function,
            Some(qualifier),
            None,
        )?;
        if world.conflict(function, qualifier) {
            return Err(conflict());
        }
        if let Some(entry) = world.functions.get_mut(function) {
            entry.configs.remove(qualifier);
        }
        Ok(())
    }

    async fn reserved_concurrency(&self, function: &str) -> Result<Option<u32>, AwsError> {
        let mut world = self.world();
        world.request("GetFunction", function, None, None)?;
        Ok(world
            .functions
            .get(function)
            .and_then(|function| function.reserved))
    }

    async fn snap_start(&self, function: &str, qualifier: &str) -> Result<bool, AwsError> {
        let mut world = self.world();
        world.request("GetFunction", function, Some(qualifier), None)?;
        Ok(world
            .functions
            .get(function)
            .is_some_and(|function| function.snap_start))
    }

    async fn provisioned_configs(&self, function: &str) -> Result<FunctionConfigs, AwsError> {
        let mut world = self.world();
        world.request("ListProvisionedConcurrencyConfigs", function, None, None)?;
        Ok(world
            .functions
            .get(function)
            .map(|function| {
                function
                    .configs
                    .iter()
                    .map(|(qualifier, (config, _))| (qualifier.clone(), config.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn unreserved_concurrency(&self) -> Result<Option<u32>, AwsError> {
        let mut world = self.world();
        world.request("GetAccountSettings", "", None, None)?;
        Ok(world.unreserved)
    }

    async fn aliases(&self, function: &str) -> Result<crate::aws::Aliases, AwsError> {
        let mut world = self.world();
        world.request("ListAliases", function, None, None)?;
        let Some(function) = world.functions.get(function) else {
            return Ok(crate::aws::Aliases::new());
        };
        let alias = |weighted_to: Vec<String>| crate::aws::Alias {
            version: "1".to_owned(),
            weighted_to,
        };
        let plain = function
            .aliases
            .iter()
            .map(|name| (name.clone(), alias(Vec::new())));
        let weighted = function
            .weighted
            .iter()
            .map(|name| (name.clone(), alias(vec!["2".to_owned()])));
        Ok(plain.chain(weighted).collect())
    }

    async fn functions(
        &self,
        _: Option<String>,
    ) -> Result<(Vec<crate::aws::FunctionSummary>, Option<String>), AwsError> {
        let mut world = self.world();
        world.request("ListFunctions", "", None, None)?;
        let mut functions: Vec<crate::aws::FunctionSummary> = world
            .functions
            .keys()
            .map(|name| crate::aws::FunctionSummary {
                name: name.clone(),
                memory_mb: 1024,
                arm64: false,
            })
            .collect();
        functions.sort_by(|left, right| left.name.cmp(&right.name));
        Ok((functions, None))
    }
}

/// The series of a query without a `Resource` dimension: the account's.
pub const ACCOUNT: &str = "";

/// In-memory CloudWatch: series by the `Resource` dimension (`function:qualifier`), and
/// the account's ([`ACCOUNT`]).
#[derive(Clone, Default)]
pub struct MemoryMetrics {
    series: Arc<Mutex<HashMap<String, Vec<Datapoint>>>>,
    /// How long a window each read asked for.
    windows: Arc<Mutex<Vec<chrono::TimeDelta>>>,
}

impl MemoryMetrics {
    /// Sets the series of `resource` (`function:qualifier`).
    pub fn set(&self, resource: &str, points: Vec<Datapoint>) {
        self.series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(resource.to_owned(), points);
    }

    /// How many reads asked for at least `window` of history.
    pub fn reads_of_at_least(&self, window: chrono::TimeDelta) -> usize {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|asked| **asked >= window)
            .count()
    }
}

impl MetricsApi for MemoryMetrics {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<MetricsBatch, AwsError> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(end - start);
        let series = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let batch = queries
            .iter()
            .map(|query| {
                let resource = query
                    .dimensions
                    .get("Resource")
                    .map_or(ACCOUNT, String::as_str);
                let within = |point: &&Datapoint| point.timestamp >= start && point.timestamp < end;
                let points = match series.get(resource) {
                    Some(points) => points.iter().filter(within).copied().collect(),
                    // The account's, unless set: every series summed a minute.
                    None if resource == ACCOUNT => {
                        let mut minutes: std::collections::BTreeMap<DateTime<Utc>, f64> =
                            std::collections::BTreeMap::new();
                        for point in series.values().flatten().filter(within) {
                            *minutes.entry(point.timestamp).or_default() += point.value;
                        }
                        minutes
                            .into_iter()
                            .map(|(timestamp, value)| Datapoint { timestamp, value })
                            .collect()
                    }
                    None => Vec::new(),
                };
                (
                    query.id.clone(),
                    Series {
                        points,
                        status: SeriesStatus::Complete,
                    },
                )
            })
            .collect();
        Ok(MetricsBatch {
            series: batch,
            metrics_requested: queries.len() as u64,
        })
    }
}

/// Connects to the same in-memory Lambda and CloudWatch whatever the settings.
#[derive(Clone, Default)]
pub struct MemoryAws {
    pub lambda: MemoryLambda,
    pub metrics: MemoryMetrics,
    pub lease: MemoryLease,
    pub snapshots: MemoryState,
    pub events: MemoryEvents,
}

/// Bytes kept with their version, as the lease table keeps an item.
pub type Versioned = (Vec<u8>, u64);

/// A snapshot store in memory; cloning shares it, as copies share a table.
#[derive(Debug, Clone, Default)]
pub struct MemoryState {
    pub kept: Arc<Mutex<Option<Vec<u8>>>>,
    /// The other shards' snapshots, by slot.
    pub others: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    /// The versioned items, by key.
    pub items: Arc<Mutex<HashMap<&'static str, Versioned>>>,
}

impl crate::aws::SnapshotStore for MemoryState {
    async fn load(&self, slot: &str) -> Result<Option<Vec<u8>>, AwsError> {
        if !slot.is_empty() {
            let others = self
                .others
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            return Ok(others.get(slot).cloned());
        }
        Ok(self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone())
    }

    async fn save(&self, slot: &str, bytes: Vec<u8>) -> Result<(), AwsError> {
        if !slot.is_empty() {
            let mut others = self
                .others
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            others.insert(slot.to_owned(), bytes);
            return Ok(());
        }
        *self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bytes);
        Ok(())
    }
}

impl crate::aws::ItemTable for MemoryState {
    async fn load_item(&self, item: crate::aws::Item) -> Result<Option<(Vec<u8>, u64)>, AwsError> {
        Ok(self
            .items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(item.key())
            .cloned())
    }

    async fn save_item(
        &self,
        item: crate::aws::Item,
        bytes: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<bool, AwsError> {
        let mut items = self
            .items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if items.get(item.key()).map(|(_, version)| *version) != expected {
            return Ok(false);
        }
        let version = expected.map_or(1, |version| version + 1);
        items.insert(item.key(), (bytes, version));
        Ok(true)
    }
}

/// Events kept in memory, as a bus would take them.
#[derive(Debug, Clone, Default)]
pub struct MemoryEvents {
    pub sent: Arc<Mutex<Vec<crate::aws::EventEntry>>>,
}

impl crate::aws::EventsApi for MemoryEvents {
    async fn put(&self, entries: &[crate::aws::EventEntry]) -> Result<Vec<usize>, AwsError> {
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(entries);
        Ok(Vec::new())
    }
}

/// The tagging API over the same functions: every one with the tags asked for, in one
/// page.
impl crate::aws::TaggingApi for MemoryLambda {
    async fn tagged_page(
        &self,
        tags: &[(String, Option<String>)],
        _: Option<String>,
    ) -> Result<crate::aws::TaggedPage, AwsError> {
        let world = self.world();
        let mut functions: Vec<crate::aws::TaggedFunction> = world
            .functions
            .iter()
            .filter(|(_, function)| {
                tags.iter()
                    .all(|(key, value)| match (function.tags.get(key), value) {
                        (Some(found), Some(wanted)) => found == wanted,
                        (Some(_), None) => true,
                        (None, _) => false,
                    })
            })
            .map(|(name, function)| crate::aws::TaggedFunction {
                name: name.clone(),
                tags: function.tags.clone(),
            })
            .collect();
        functions.sort_by(|left, right| left.name.cmp(&right.name));
        Ok(crate::aws::TaggedPage {
            functions,
            next: None,
        })
    }
}

impl crate::aws::ScalingApi for MemoryLambda {
    async fn lambda_targets(&self) -> Result<Vec<crate::aws::ScalableTarget>, AwsError> {
        let mut world = self.world();
        world.request("DescribeScalableTargets", "", None, None)?;
        Ok(world.scalable.values().cloned().collect())
    }
    async fn lambda_policies(&self) -> Result<Vec<crate::aws::ScalingPolicy>, AwsError> {
        Ok(Vec::new())
    }
    async fn lambda_scheduled_actions(&self) -> Result<Vec<crate::aws::ScheduledAction>, AwsError> {
        Ok(Vec::new())
    }
    async fn set_suspended(
        &self,
        function: &str,
        qualifier: &str,
        state: crate::aws::SuspendedState,
    ) -> Result<(), AwsError> {
        let mut world = self.world();
        world.request("RegisterScalableTarget", function, Some(qualifier), None)?;
        let key = (function.to_owned(), qualifier.to_owned());
        match world.scalable.get_mut(&key) {
            Some(target) => {
                target.suspended = state;
                Ok(())
            }
            None => Err(AwsError::Malformed {
                message: format!("no scalable target function:{function}:{qualifier}"),
            }),
        }
    }
}

impl Connect for MemoryAws {
    type Lambda = MemoryLambda;
    type Metrics = MemoryMetrics;
    type Tagging = MemoryLambda;
    type Scaling = MemoryLambda;
    type Lease = MemoryLease;
    type State = MemoryState;
    type Events = MemoryEvents;
    async fn events(
        &self,
        _: &AwsSettings,
        _: &crate::config::EventsSettings,
    ) -> (MemoryEvents, Option<String>, Option<String>) {
        (self.events.clone(), None, None)
    }
    async fn connect(
        &self,
        _: &AwsSettings,
        _: Option<&crate::config::AccountSettings>,
    ) -> crate::aws::Clients<Self> {
        crate::aws::Clients {
            lambda: self.lambda.clone(),
            metrics: self.metrics.clone(),
            tagging: self.lambda.clone(),
            scaling: self.lambda.clone(),
        }
    }
    async fn state(&self, _: &AwsSettings, _: &LeaderSettings) -> MemoryState {
        self.snapshots.clone()
    }
    async fn lease(&self, _: &AwsSettings, _: &LeaderSettings, _: Clock) -> MemoryLease {
        self.lease.clone()
    }
}

type SharedRecord = Arc<Mutex<Option<LeaseRecord>>>;

/// Lease records by name, shared by every clone, with DynamoDB's conditional
/// semantics, and a switch that makes them unreachable. Cloning shares the records,
/// not the switch's copy: give each copy of the daemon its own [`MemoryLease::reach`]
/// to cut it alone. [`LeaderElection::named`] gives the same switch on another record.
#[derive(Clone, Default)]
pub struct MemoryLease {
    record: SharedRecord,
    named: Arc<Mutex<HashMap<String, SharedRecord>>>,
    cut: Arc<std::sync::atomic::AtomicBool>,
}

impl MemoryLease {
    /// The same records behind a switch of its own.
    pub fn reach(&self) -> Self {
        Self {
            record: self.record.clone(),
            named: self.named.clone(),
            cut: Arc::default(),
        }
    }

    pub fn set_reachable(&self, reachable: bool) {
        self.cut
            .store(!reachable, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn record(&self) -> Option<LeaseRecord> {
        lock(&self.record).clone()
    }

    fn open(&self) -> Result<MutexGuard<'_, Option<LeaseRecord>>, LeaseError> {
        if self.cut.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(LeaseError::Unreachable("cut by the test".into()));
        }
        Ok(lock(&self.record))
    }

    /// Sets the version to `next` and the owner to `new_owner` if the record is still
    /// `owner`'s at `current`; the epoch stays, a request is cleared and answered.
    fn update(
        &self,
        owner: &str,
        current: &str,
        next: &str,
        new_owner: Option<&str>,
    ) -> Result<Renewal, LeaseError> {
        let mut record = self.open()?;
        let Some(held) = record
            .as_mut()
            .filter(|record| record.version == current && record.owner.as_deref() == Some(owner))
        else {
            return Ok(Renewal::Lost);
        };
        held.version = next.to_owned();
        held.owner = new_owner.map(str::to_owned);
        Ok(Renewal::Kept {
            asked: held.asked.take(),
        })
    }
}

impl LeaderElection for MemoryLease {
    async fn prepare(&self) -> Result<(), LeaseError> {
        Ok(())
    }

    async fn read(&self) -> Result<Option<LeaseRecord>, LeaseError> {
        Ok(self.open()?.clone())
    }

    async fn acquire(&self, new: &LeaseRecord, expected: &Expected) -> Result<bool, LeaseError> {
        let mut record = self.open()?;
        let holds = match (expected, record.as_ref()) {
            (Expected::Absent, None) => true,
            (Expected::Version(version), Some(found)) => found.version == *version,
            _ => false,
        };
        if holds {
            *record = Some(new.clone());
        }
        Ok(holds)
    }

    async fn renew(&self, owner: &str, current: &str, next: &str) -> Result<Renewal, LeaseError> {
        self.update(owner, current, next, Some(owner))
    }

    async fn release(&self, owner: &str, current: &str, next: &str) -> Result<bool, LeaseError> {
        Ok(self.update(owner, current, next, None)? != Renewal::Lost)
    }

    async fn ask(&self, owner: &str, ask: &Ask) -> Result<bool, LeaseError> {
        let mut record = self.open()?;
        match record
            .as_mut()
            .filter(|record| record.owner.as_deref() == Some(owner))
        {
            Some(held) => {
                held.asked = Some(ask.clone());
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn named(&self, name: &str) -> Self {
        let record = lock(&self.named)
            .entry(name.to_owned())
            .or_default()
            .clone();
        Self {
            record,
            named: self.named.clone(),
            cut: self.cut.clone(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
