//! Helpers for the policy's tests: targets from TOML text, and times from strings.

use chrono::{DateTime, Utc};

use crate::config::{self, TargetConfig};

/// The single target of a config whose `[[target]]` body is `body`.
pub fn target(body: &str) -> TargetConfig {
    let text = format!("[[target]]\nfunction = \"f\"\nqualifier = \"live\"\n{body}");
    match config::parse(&text, std::path::Path::new("test.toml")) {
        Ok(mut config) => config.targets.remove(0),
        Err(errors) => panic!("test config is invalid:\n{errors}\n---\n{text}"),
    }
}

/// `"2026-03-29T01:00:00Z"` as a UTC instant.
pub fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("test times are RFC 3339")
}
