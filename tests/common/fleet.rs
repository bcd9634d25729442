//! Copies of the daemon sharing a leader lease on moto's DynamoDB, each through its
//! own cuttable proxy, all acting on one local Lambda and CloudWatch endpoint. Which
//! copy sent each AWS request is known from its SDK app id (`AWS_SDK_UA_APP_ID`, in
//! the user agent).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::aws_endpoint::Endpoint;
use super::moto::Moto;
use super::proxy::Proxy;
use super::{Daemon, PUT, aws_config, daemon_settings, free_port};

/// The lease timing every copy is configured with.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub lease: Duration,
    pub renew_every: Duration,
    /// `daemon.interval`.
    pub interval: Duration,
    /// `leader.spread`: a lease per shard.
    pub spread: bool,
}

pub struct Replica {
    pub name: String,
    pub daemon: Daemon,
    pub proxy: Proxy,
    address: String,
    pub config: PathBuf,
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

/// One copy to start: its identity, its targets, more `[daemon]` keys and extra `run`
/// arguments.
pub struct Spec<'a> {
    pub name: &'a str,
    pub targets: String,
    pub settings: &'a str,
    pub args: &'a [&'a str],
}

pub struct Fleet {
    pub endpoint: Endpoint,
    pub copies: Vec<Replica>,
    pub moto: Moto,
    timing: Timing,
}

/// A copy of `spec` behind its own proxy to `moto`.
fn replica(endpoint: &Endpoint, moto: &Moto, timing: Timing, spec: &Spec<'_>) -> Replica {
    let proxy = Proxy::start(&moto.url);
    let port = free_port();
    let settings = format!(
        "{}\n{}\n[leader]\nbackend = \"dynamodb\"\ntable = \"pc-autoscaler-lease\"\ncreate_table = true\n\
         endpoint_url = \"{}\"\nlease = \"{}ms\"\nrenew_every = \"{}ms\"\nidentity = \"{}\"\nspread = {}\n",
        daemon_settings(port, &format!("{}ms", timing.interval.as_millis())),
        spec.settings,
        proxy.url,
        timing.lease.as_millis(),
        timing.renew_every.as_millis(),
        spec.name,
        timing.spread,
    );
    let (dir, config) = aws_config(&endpoint.url, &settings, &spec.targets);
    let address = format!("127.0.0.1:{port}");
    let args: Vec<String> = spec.args.iter().map(|arg| (*arg).to_owned()).collect();
    Replica {
        name: spec.name.to_owned(),
        daemon: start_daemon(&config, &address, spec.name, &args),
        proxy,
        address,
        config,
        args,
        _dir: dir,
    }
}

fn start_daemon(config: &std::path::Path, address: &str, name: &str, args: &[String]) -> Daemon {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Daemon::start_with(config, address, &[("AWS_SDK_UA_APP_ID", name)], &args)
}

impl Fleet {
    pub fn start(endpoint: Endpoint, timing: Timing, specs: &[Spec<'_>]) -> Self {
        let moto = Moto::start();
        let copies = specs
            .iter()
            .map(|spec| replica(&endpoint, &moto, timing, spec))
            .collect();
        Self {
            endpoint,
            copies,
            moto,
            timing,
        }
    }

    /// Starts one more copy on the same table and endpoint.
    pub fn add(&mut self, spec: &Spec<'_>) {
        let copy = replica(&self.endpoint, &self.moto, self.timing, spec);
        self.copies.push(copy);
    }

    /// Starts a copy again (after it was killed or stopped), as it was first started.
    pub fn restart(&mut self, index: usize) {
        let copy = &mut self.copies[index];
        let _ = copy.daemon.child.kill();
        let _ = copy.daemon.child.wait();
        copy.daemon = start_daemon(&copy.config, &copy.address, &copy.name, &copy.args);
    }

    pub fn is_leader(&self, index: usize) -> bool {
        let copy = &self.copies[index];
        copy.daemon.metric(&format!(
            "pc_autoscaler_leader{{identity=\"{}\"}}",
            copy.name
        )) == Some(1.0)
    }

    /// The copies that say they lead.
    pub fn leaders(&self) -> Vec<usize> {
        (0..self.copies.len())
            .filter(|index| self.is_leader(*index))
            .collect()
    }

    /// Waits until a copy other than `excluding` leads; returns it and when it was
    /// seen (polled every 20 ms).
    pub fn wait_for_leader(&self, excluding: Option<usize>, limit: Duration) -> (usize, Instant) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(index) = (0..self.copies.len())
                .filter(|index| Some(*index) != excluding)
                .find(|index| self.is_leader(*index))
            {
                return (index, Instant::now());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no copy became leader within {limit:?}:\n{}", self.logs());
    }

    /// Every copy that sent the endpoint anything.
    pub fn callers(&self) -> BTreeSet<String> {
        self.endpoint
            .world()
            .log
            .iter()
            .map(|request| request.caller.clone().unwrap_or_else(|| "unnamed".into()))
            .collect()
    }

    /// Successful puts as (caller, value, when).
    pub fn puts(&self) -> Vec<(String, Option<u32>, Instant)> {
        self.endpoint
            .world()
            .requests(PUT)
            .into_iter()
            .filter(|put| put.status == 202)
            .map(|put| (put.caller.unwrap_or_default(), put.value, put.at))
            .collect()
    }

    /// How many times any copy took the lease, by the copies' own counters.
    pub fn transitions_to_leader(&self) -> f64 {
        self.copies
            .iter()
            .filter_map(|copy| {
                copy.daemon.metric(&format!(
                    "pc_autoscaler_leader_transitions_total{{identity=\"{}\",role=\"leader\"}}",
                    copy.name
                ))
            })
            .sum()
    }

    pub fn logs(&self) -> String {
        self.copies
            .iter()
            .map(|copy| format!("--- {} ---\n{}", copy.name, copy.daemon.log()))
            .collect()
    }
}
