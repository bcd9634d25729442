//! The lease's families: the one leader lease's (this copy's role, epoch, lease age and
//! transitions) and, with `[leader] spread`, each shard's lease held here, the leases
//! that changed hands and the lease table's requests. Registered only with `[leader]`.
//!
//! What it must not do: judge a lease (the electors report here), or let a label take
//! an unbounded value: the shards are the config's, the rest fixed words.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus::{Gauge, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

use super::{Metrics, unregistered};
use crate::config::{AwsSettings, Config, ShardKey};
use crate::leader::elect::LeaseReport;
use crate::leader::spread::SpreadReport;

/// The leader lease's families; each carries this copy's identity.
pub struct LeaderFamilies {
    pub role: IntGaugeVec,
    pub epoch: IntGaugeVec,
    pub lease_age: GaugeVec,
    pub transitions: IntCounterVec,
    /// With `[leader] spread`.
    pub shard_held: IntGaugeVec,
    pub shard_lease_changes: IntCounterVec,
    pub lease_requests: IntCounterVec,
}

impl LeaderFamilies {
    pub(super) fn new() -> Self {
        let opts = |name, help| Opts::new(name, help);
        Self {
            role: unregistered(IntGaugeVec::new(
                opts(
                    "pc_autoscaler_leader",
                    "1 while this copy holds the leader lease and acts, 0 while it stands by (only with [leader]).",
                ),
                &["identity"],
            )),
            epoch: unregistered(IntGaugeVec::new(
                opts(
                    "pc_autoscaler_leader_epoch",
                    "The fencing epoch of the lease this copy holds or last held; every change of leader adds one.",
                ),
                &["identity"],
            )),
            lease_age: unregistered(GaugeVec::new(
                opts(
                    "pc_autoscaler_leader_lease_age_seconds",
                    "On the leader, time since its last successful renew was sent; on a standby, how long the lease has stood unchanged as this copy watched it. Own monotonic clock.",
                ),
                &["identity"],
            )),
            transitions: unregistered(IntCounterVec::new(
                opts(
                    "pc_autoscaler_leader_transitions_total",
                    "Changes of this copy's role, by the role it took (leader, standby).",
                ),
                &["identity", "role"],
            )),
            shard_held: unregistered(IntGaugeVec::new(
                opts(
                    "pc_autoscaler_shard_lease_held",
                    "1 while this copy holds the account and Region's shard lease and acts on it, else 0 (only with [leader] spread).",
                ),
                &["account", "region"],
            )),
            shard_lease_changes: unregistered(IntCounterVec::new(
                opts(
                    "pc_autoscaler_shard_lease_changes_total",
                    "Shard leases that changed hands at this copy: taken, granted (handed to a copy that asked), lost (not renewed in time), released (on the way out).",
                ),
                &["change"],
            )),
            lease_requests: unregistered(IntCounterVec::new(
                opts(
                    "pc_autoscaler_lease_requests_total",
                    "Requests this copy sent to the lease table for the spread leases, by kind: read (consistent GetItem, one read unit) or write (conditional PutItem or UpdateItem, one write unit).",
                ),
                &["kind"],
            )),
        }
    }
}

/// One copy's series of the spread leases, as the spread elector reports to them.
/// `pc_autoscaler_leader` is 1 while the copy holds any shard.
pub struct SpreadGauges {
    role: IntGauge,
    held: IntGaugeVec,
    changes: IntCounterVec,
    requests: IntCounterVec,
    aws: AwsSettings,
    holding: Mutex<BTreeSet<ShardKey>>,
}

impl SpreadReport for SpreadGauges {
    fn held(&self, shard: &ShardKey, epoch: Option<u64>) {
        let labels = [shard.account_label(), shard.region_label(&self.aws)];
        self.held
            .with_label_values(&labels)
            .set(i64::from(epoch.is_some()));
        let mut holding = self
            .holding
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if epoch.is_some() {
            holding.insert(shard.clone());
        } else {
            holding.remove(shard);
        }
        self.role.set(i64::from(!holding.is_empty()));
    }

    fn changed(&self, how: &'static str) {
        self.changes.with_label_values(&[how]).inc();
    }

    fn requested(&self, kind: &'static str, count: u64) {
        self.requests.with_label_values(&[kind]).inc_by(count);
    }
}

/// One copy's series of the leader families, as the elector reports to them.
pub struct LeaseGauges {
    role: IntGauge,
    epoch: IntGauge,
    lease_age: Gauge,
    to_leader: IntCounter,
    to_standby: IntCounter,
}

impl LeaseReport for LeaseGauges {
    fn took(&self, epoch: u64) {
        self.role.set(1);
        self.epoch.set(i64::try_from(epoch).unwrap_or(i64::MAX));
        self.to_leader.inc();
    }

    fn stood_by(&self, stepped_down: bool) {
        self.role.set(0);
        if stepped_down {
            self.to_standby.inc();
        }
    }

    fn lease_age(&self, age: Duration) {
        self.lease_age.set(age.as_secs_f64());
    }
}

impl Metrics {
    /// Registers the leader families, with `identity`'s series (only with `[leader]`),
    /// and returns where the elector reports to them.
    pub fn register_leader(&self, identity: &str) -> LeaseGauges {
        let leader = &self.leader;
        for family in [
            Box::new(leader.role.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(leader.epoch.clone()),
            Box::new(leader.lease_age.clone()),
            Box::new(leader.transitions.clone()),
        ] {
            // Registered once per process; a second elector would find them there.
            let _ = self.registry.register(family);
        }
        let gauges = LeaseGauges {
            role: leader.role.with_label_values(&[identity]),
            epoch: leader.epoch.with_label_values(&[identity]),
            lease_age: leader.lease_age.with_label_values(&[identity]),
            to_leader: leader.transitions.with_label_values(&[identity, "leader"]),
            to_standby: leader.transitions.with_label_values(&[identity, "standby"]),
        };
        gauges.role.set(0);
        gauges
    }

    /// Registers the spread leases' families for `identity`, each of `config`'s shards
    /// at 0.
    pub fn register_spread(&self, identity: &str, config: &Config) -> SpreadGauges {
        let leader = &self.leader;
        for family in [
            Box::new(leader.role.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(leader.shard_held.clone()),
            Box::new(leader.shard_lease_changes.clone()),
            Box::new(leader.lease_requests.clone()),
        ] {
            let _ = self.registry.register(family);
        }
        for shard in config.shards() {
            leader
                .shard_held
                .with_label_values(&[shard.account_label(), shard.region_label(&config.aws)])
                .set(0);
        }
        for change in ["taken", "granted", "lost", "released"] {
            leader.shard_lease_changes.with_label_values(&[change]);
        }
        for kind in ["read", "write"] {
            leader.lease_requests.with_label_values(&[kind]);
        }
        let role = leader.role.with_label_values(&[identity]);
        role.set(0);
        SpreadGauges {
            role,
            held: leader.shard_held.clone(),
            changes: leader.shard_lease_changes.clone(),
            requests: leader.lease_requests.clone(),
            aws: config.aws.clone(),
            holding: Default::default(),
        }
    }
}
