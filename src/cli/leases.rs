//! `leases`: who holds each lease of the config's table, read once, for people.
//!
//! What it must not do: write the table, or judge a lease by the times it shows (they
//! are the holders' wall clocks; the copies never compare clocks).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::aws::dynamodb::DynamoLease;
use crate::clock::Clock;
use crate::config::Config;
use crate::escape::Printable;
use crate::leader::LeaderElection as _;
use crate::leader::spread::lease_name;

/// The table of leases: each shard's with `[leader] spread`, else the one lease.
pub async fn report(config: &Config, now: DateTime<Utc>) -> Result<String, String> {
    let Some(leader) = &config.leader else {
        return Err(
            "the config has no [leader]: one copy acts on every shard and there is no lease".into(),
        );
    };
    let backend = DynamoLease::connect(&config.aws, leader, Clock::System).await;
    let leases: Vec<(String, String)> = if leader.spread {
        config
            .shards()
            .iter()
            .map(|shard| (shard.to_string(), lease_name(&leader.name, shard)))
            .collect()
    } else {
        vec![("every shard".to_owned(), leader.name.clone())]
    };
    let mut rows = Vec::new();
    for (shard, name) in leases {
        let found = backend
            .named(&name)
            .read_for_people()
            .await
            .map_err(|error| format!("{}: lease `{name}`: {error}", leader.table))?;
        let row = match found {
            None => [shard, "nobody (never taken)".into(), "-".into(), "-".into()],
            Some((record, renewed_at)) => {
                let age = renewed_at
                    .as_deref()
                    .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                    .map_or_else(
                        || "-".to_owned(),
                        |at| {
                            let seconds = (now - at.with_timezone(&Utc)).num_milliseconds();
                            format!("{:.1} s", seconds as f64 / 1000.0)
                        },
                    );
                let holder = record.owner.map_or_else(
                    || "nobody (released)".to_owned(),
                    |owner| Printable(&owner).to_string(),
                );
                [shard, holder, record.epoch.to_string(), age]
            }
        };
        rows.push(row);
    }
    Ok(render(&rows))
}

fn render(rows: &[[String; 4]]) -> String {
    let header = ["SHARD", "HOLDER", "EPOCH", "RENEWED AGO"].map(str::to_owned);
    let widths: Vec<usize> = (0..4)
        .map(|column| {
            std::iter::once(&header)
                .chain(rows)
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out.push_str("RENEWED AGO is read from the holder's wall clock: a guide for people, not what decides expiry.\n");
    out
}
