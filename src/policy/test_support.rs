//! Helpers for the policy's tests: targets from TOML text, and times from strings.

use chrono::{DateTime, TimeDelta, Utc};

use super::Datapoint;
use crate::config::{self, TargetConfig};

/// The single target of a config whose `[[target]]` body is `body`.
pub fn target(body: &str) -> TargetConfig {
    let text = format!("[[target]]\nfunction = \"f\"\nqualifier = \"live\"\n{body}");
    match config::parse(&text, std::path::Path::new("test.toml")) {
        Ok(mut config) => config.targets.remove(0),
        Err(errors) => panic!("test config is invalid:\n{errors}\n---\n{text}"),
    }
}

/// Three days of a noisy load, one a minute, the last at `now`: integers from 20 to
/// 80, heavy-tailed (high minutes are rare), seeded. A longer scale-in window at a
/// higher target spills less here than the default one at the same cost.
pub fn noisy_days(now: DateTime<Utc>) -> Vec<Datapoint> {
    const MINUTES: i64 = 3 * 24 * 60;
    let mut seed = 11_u64;
    (0..MINUTES)
        .map(|minute| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let uniform = (seed >> 11) as f64 / (1_u64 << 53) as f64;
            Datapoint {
                timestamp: now - TimeDelta::minutes(MINUTES - 1 - minute),
                value: 20.0 + (60.0 * uniform.powi(4)).floor(),
            }
        })
        .collect()
}

/// `"2026-03-29T01:00:00Z"` as a UTC instant.
pub fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("test times are RFC 3339")
}
