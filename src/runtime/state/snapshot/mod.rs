//! The leader's remembered state: per function, each config's requested value,
//! status and `LastModified`, and which aliases have routing weights. A new leader, or
//! a restarted daemon, loads it as *remembered, not known*: it orders the first scans
//! (a target whose need is above what was remembered has its function read at once),
//! and decides nothing by itself; every function is scanned before it is written.
//!
//! Plain data and its encoding (JSON, versioned, with the fingerprint of the targets it
//! was written for). A snapshot that does not decode, is of another version, was
//! written for other targets, is older than [`MAX_AGE`] or dated ahead of now, or
//! remembers more than [`MAX_FUNCTIONS`] functions, is refused with the reason; all of
//! that is judged on a first pass that keeps nothing of the functions, so a forged
//! snapshot costs its bytes and no more.
//! What it must not do: read or write anything; the stores are the driver's.

pub mod store;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::config::TargetConfig;
use crate::policy::AllocationStatus;

/// The encoding's version; another is refused, never guessed at.
pub const VERSION: u32 = 1;
/// A snapshot older than this orders nothing: what it says is too likely to be wrong.
pub const MAX_AGE: TimeDelta = TimeDelta::hours(1);
/// The largest snapshot read: far above 5,000 targets' (about 0.5 MB).
pub const MAX_BYTES: usize = 16 * 1024 * 1024;
/// The most functions a snapshot may remember: a shard holds fewer (Lambda's
/// control-plane limit of 15 requests a second scans about 50,000 functions an hour).
pub const MAX_FUNCTIONS: usize = 50_000;
/// How far ahead of this host's clock a snapshot may be dated: clocks differ a little.
pub const MAX_AHEAD: TimeDelta = TimeDelta::minutes(5);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    /// Of the targets it was written for ([`fingerprint`]).
    pub fingerprint: String,
    pub written_at: DateTime<Utc>,
    pub functions: Vec<RememberedFunction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RememberedFunction {
    /// As requests name it (`FunctionId::reference`).
    pub function: String,
    pub configs: Vec<RememberedConfig>,
    /// Aliases with routing weights, when they were read.
    pub weighted: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RememberedConfig {
    pub qualifier: String,
    pub requested: u32,
    /// Written as Lambda spells it: `READY`, `IN_PROGRESS`, `FAILED`.
    pub status: AllocationStatus,
    pub last_modified: Option<DateTime<Utc>>,
}

/// Why a snapshot was not used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error("it does not decode ({0}): truncated or damaged")]
    Malformed(String),
    #[error("it is of version {0}, not {VERSION}")]
    Version(u32),
    #[error("it was written for other targets")]
    OtherTargets,
    #[error("it was written {minutes} minutes ago, more than an hour")]
    TooOld { minutes: i64 },
    #[error("it is dated {minutes} minutes ahead of this host's clock")]
    FromTheFuture { minutes: i64 },
    #[error("it is larger than {} MiB", MAX_BYTES / (1024 * 1024))]
    TooLarge,
    #[error("it remembers {0} functions, more than {MAX_FUNCTIONS}")]
    TooMany(usize),
}

/// What a snapshot says of itself, read before its functions are kept.
#[derive(Deserialize)]
struct Head {
    version: u32,
    fingerprint: String,
    written_at: DateTime<Utc>,
    functions: Counted,
}

/// How many elements a JSON array holds, counted without keeping any.
struct Counted(usize);

impl<'de> Deserialize<'de> for Counted {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Counter;
        impl<'de> serde::de::Visitor<'de> for Counter {
            type Value = Counted;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a list")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Counted, A::Error> {
                let mut count = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    count += 1;
                }
                Ok(Counted(count))
            }
        }
        deserializer.deserialize_seq(Counter)
    }
}

/// A stable fingerprint of the targets in force (their functions and qualifiers, in
/// any order): FNV-1a over the sorted pairs, so two processes with the same targets
/// agree whatever their build.
pub fn fingerprint<'a>(targets: impl IntoIterator<Item = &'a TargetConfig>) -> String {
    let mut pairs: Vec<(&str, &str)> = targets
        .into_iter()
        .map(|target| {
            (
                target.function.reference.as_str(),
                target.qualifier.as_str(),
            )
        })
        .collect();
    pairs.sort_unstable();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (function, qualifier) in pairs {
        for byte in function
            .bytes()
            .chain([0])
            .chain(qualifier.bytes())
            .chain([0])
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

impl Snapshot {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a snapshot is plain strings and numbers")
    }

    /// The snapshot in `bytes`, if it may order the scans of the targets whose
    /// [`fingerprint`] is `expected` at `now`.
    pub fn decode(bytes: &[u8], expected: &str, now: DateTime<Utc>) -> Result<Self, Refused> {
        if bytes.len() > MAX_BYTES {
            return Err(Refused::TooLarge);
        }
        let malformed = |error: serde_json::Error| Refused::Malformed(error.to_string());
        let head: Head = serde_json::from_slice(bytes).map_err(malformed)?;
        if head.version != VERSION {
            return Err(Refused::Version(head.version));
        }
        if head.fingerprint != expected {
            return Err(Refused::OtherTargets);
        }
        let age = now - head.written_at;
        if age > MAX_AGE {
            return Err(Refused::TooOld {
                minutes: age.num_minutes(),
            });
        }
        if -age > MAX_AHEAD {
            return Err(Refused::FromTheFuture {
                minutes: (-age).num_minutes(),
            });
        }
        if head.functions.0 > MAX_FUNCTIONS {
            return Err(Refused::TooMany(head.functions.0));
        }
        serde_json::from_slice(bytes).map_err(malformed)
    }

    /// What it remembers each qualifier of each function to have, by function
    /// reference and qualifier: what was requested, but nothing for a `FAILED`
    /// allocation, which serves nothing (no config: absent, so 0).
    pub fn serving(&self) -> BTreeMap<(&str, &str), u32> {
        self.functions
            .iter()
            .flat_map(|function| {
                function.configs.iter().map(|config| {
                    let serving = if config.status == AllocationStatus::Failed {
                        0
                    } else {
                        config.requested
                    };
                    (
                        (function.function.as_str(), config.qualifier.as_str()),
                        serving,
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(text: &str) -> Vec<TargetConfig> {
        crate::config::parse(text, std::path::Path::new("t.toml"))
            .expect("valid")
            .targets
    }

    const TWO: &str = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 5\n\
                       [[target]]\nfunction = \"g\"\nqualifier = \"7\"\nmin = 1\nmax = 5\n";

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + minutes * 60, 0).expect("a valid time")
    }

    fn snapshot(fingerprint: String) -> Snapshot {
        Snapshot {
            version: VERSION,
            fingerprint,
            written_at: at(0),
            functions: vec![RememberedFunction {
                function: "f".into(),
                configs: vec![RememberedConfig {
                    qualifier: "live".into(),
                    requested: 40,
                    status: AllocationStatus::Ready,
                    last_modified: Some(at(-3)),
                }],
                weighted: Some(Vec::new()),
            }],
        }
    }

    #[test]
    fn the_fingerprint_is_of_the_targets_whatever_their_order() {
        let reversed = "[[target]]\nfunction = \"g\"\nqualifier = \"7\"\nmin = 2\nmax = 9\n\
                        [[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 5\n";
        assert_eq!(fingerprint(&targets(TWO)), fingerprint(&targets(reversed)));
        let other = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 5\n";
        assert_ne!(fingerprint(&targets(TWO)), fingerprint(&targets(other)));
    }

    #[test]
    fn a_snapshot_is_read_back_and_every_bad_one_is_refused_with_its_reason() {
        let print = fingerprint(&targets(TWO));
        let good = snapshot(print.clone());
        let bytes = good.encode();
        assert_eq!(Snapshot::decode(&bytes, &print, at(30)), Ok(good.clone()));
        assert_eq!(good.serving().get(&("f", "live")), Some(&40));
        let mut failed = good.clone();
        failed.functions[0].configs[0].status = AllocationStatus::Failed;
        assert_eq!(failed.serving().get(&("f", "live")), Some(&0));

        let truncated = &bytes[..bytes.len() / 2];
        assert!(matches!(
            Snapshot::decode(truncated, &print, at(30)),
            Err(Refused::Malformed(_))
        ));
        let newer = Snapshot {
            version: VERSION + 1,
            ..good.clone()
        };
        assert_eq!(
            Snapshot::decode(&newer.encode(), &print, at(30)),
            Err(Refused::Version(VERSION + 1))
        );
        assert_eq!(
            Snapshot::decode(&bytes, "0000000000000000", at(30)),
            Err(Refused::OtherTargets)
        );
        assert_eq!(
            Snapshot::decode(&bytes, &print, at(61)),
            Err(Refused::TooOld { minutes: 61 })
        );
        assert_eq!(
            Snapshot::decode(&bytes, &print, at(-10)),
            Err(Refused::FromTheFuture { minutes: 10 })
        );
        let crowded = Snapshot {
            functions: vec![good.functions[0].clone(); MAX_FUNCTIONS + 1],
            ..good.clone()
        };
        assert_eq!(
            Snapshot::decode(&crowded.encode(), &print, at(30)),
            Err(Refused::TooMany(MAX_FUNCTIONS + 1))
        );
    }
}
