//! Load traces: read a `timestamp,value` CSV, resample it to a one-minute grid by
//! linear interpolation, and turn it into concurrency. Also the built-in synthetic
//! week used when no trace is given.
//!
//! What it must not do: read anything but the file it is given.

use std::path::Path;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

/// A demand series: concurrency per minute, starting at `start`.
#[derive(Debug, Clone)]
pub struct Demand {
    pub name: String,
    pub start: DateTime<Utc>,
    pub concurrency: Vec<f64>,
}

/// What the trace's values count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    /// A count of requests per step; concurrency = rate × mean duration.
    Requests,
    /// The value is concurrency already.
    Concurrency,
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot read trace {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Invalid {
        path: String,
        line: usize,
        reason: String,
    },
}

/// The longest trace a replay takes: two years of minutes. Every policy keeps a few
/// numbers per minute, so this bounds memory (a two-row trace from year 1000 to 9999
/// would otherwise ask for tens of gigabytes).
pub const MAX_TRACE_MINUTES: usize = 2 * 366 * 24 * 60;

/// Reads a CSV trace and resamples it. `duration_ms` is the mean request duration.
pub fn load(path: &Path, kind: TraceKind, duration_ms: f64) -> Result<Demand, TraceError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TraceError::Read {
        path: display.clone(),
        source,
    })?;
    let samples = parse(&text).map_err(|(line, reason)| TraceError::Invalid {
        path: display.clone(),
        line,
        reason,
    })?;
    let name = path.file_stem().map_or_else(
        || display.clone(),
        |stem| stem.to_string_lossy().into_owned(),
    );
    Ok(resample(name, &samples, kind, duration_ms))
}

/// `(timestamp, value)` rows in time order; errors carry the 1-based line.
/// A trace row: when, and the value counted in the step it starts.
type Row = (DateTime<Utc>, f64);

fn parse(text: &str) -> Result<Vec<Row>, (usize, String)> {
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || (index == 0 && line.starts_with("timestamp")) {
            continue;
        }
        let (time, value) = line
            .split_once(',')
            .ok_or((number, "expected `timestamp,value`".to_owned()))?;
        let time = NaiveDateTime::parse_from_str(time.trim(), "%Y-%m-%d %H:%M:%S")
            .map_err(|error| (number, format!("timestamp `{time}`: {error}")))?
            .and_utc();
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|_| (number, format!("value `{value}` is not a number")))?;
        if !value.is_finite() || value < 0.0 {
            return Err((number, format!("value {value} must be a finite number ≥ 0")));
        }
        if rows.last().is_some_and(|(previous, _)| *previous >= time) {
            return Err((number, "timestamps must increase".to_owned()));
        }
        rows.push((time, value));
    }
    if rows.len() < 2 {
        return Err((1, "a trace needs at least two rows".to_owned()));
    }
    let span = rows[rows.len() - 1].0 - rows[0].0;
    if span > TimeDelta::minutes(MAX_TRACE_MINUTES as i64) {
        return Err((
            text.lines().count(),
            format!(
                "the trace spans {} days; a replay covers at most {} days",
                span.num_days(),
                MAX_TRACE_MINUTES / (24 * 60)
            ),
        ));
    }
    Ok(rows)
}

/// Linear interpolation onto whole minutes from the first row's minute to the last's.
fn resample(
    name: String,
    rows: &[(DateTime<Utc>, f64)],
    kind: TraceKind,
    duration_ms: f64,
) -> Demand {
    // Counts per step become a rate per minute, using the trace's typical step: the
    // median gap, so that the irregular gaps of a trace do not distort the rate.
    let mut gaps: Vec<f64> = rows
        .windows(2)
        .map(|pair| (pair[1].0 - pair[0].0).num_seconds() as f64 / 60.0)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let step_minutes = gaps[gaps.len() / 2].max(1.0 / 60.0);
    let scale = match kind {
        TraceKind::Requests => duration_ms / 1000.0 / 60.0 / step_minutes,
        TraceKind::Concurrency => 1.0,
    };
    let start = rows[0].0;
    let start = start - TimeDelta::seconds(i64::from(start.timestamp().rem_euclid(60) as i32));
    let end = rows[rows.len() - 1].0;
    let minutes = ((end - start).num_minutes() + 1).max(1) as usize;
    let mut concurrency = Vec::with_capacity(minutes);
    let mut segment = 0;
    for minute in 0..minutes {
        let time = start + TimeDelta::minutes(minute as i64);
        while segment + 2 < rows.len() && rows[segment + 1].0 <= time {
            segment += 1;
        }
        let (t0, v0) = rows[segment];
        let (t1, v1) = rows[segment + 1];
        let fraction = ((time - t0).num_milliseconds() as f64
            / (t1 - t0).num_milliseconds() as f64)
            .clamp(0.0, 1.0);
        concurrency.push((v0 + (v1 - v0) * fraction) * scale);
    }
    Demand {
        name,
        start,
        concurrency,
    }
}

impl Demand {
    pub fn mean(&self) -> f64 {
        self.concurrency.iter().sum::<f64>() / self.concurrency.len().max(1) as f64
    }

    /// Scales the series so that its mean is `mean`.
    pub fn rescale_to_mean(&mut self, mean: f64) {
        let current = self.mean();
        if current > 0.0 {
            let factor = mean / current;
            self.concurrency
                .iter_mut()
                .for_each(|value| *value *= factor);
        }
    }
}

/// A deterministic synthetic week (Monday 00:00 UTC on): a daily cycle peaking in the
/// afternoon, quieter weekends, noise, and four sudden bursts. Mean concurrency ≈ 50.
pub fn synthetic_week(start: DateTime<Utc>) -> Demand {
    const MINUTES: usize = 7 * 24 * 60;
    // (minute of the week, length in minutes, multiplier of the load)
    const BURSTS: [(usize, usize, f64); 4] = [
        (1_000, 12, 3.0),
        (3_700, 25, 2.2),
        (6_200, 6, 4.0),
        (8_900, 40, 1.8),
    ];
    let mut noise_state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut concurrency = Vec::with_capacity(MINUTES);
    for minute in 0..MINUTES {
        let day = minute / (24 * 60);
        let hour = (minute % (24 * 60)) as f64 / 60.0;
        let daily = 0.5 - 0.5 * ((hour - 3.0) / 24.0 * std::f64::consts::TAU).cos(); // low at 03:00
        let weekly = if day >= 5 { 0.55 } else { 1.0 };
        // xorshift64: fixed seed, so the week is the same on every machine.
        noise_state ^= noise_state << 13;
        noise_state ^= noise_state >> 7;
        noise_state ^= noise_state << 17;
        let noise = 0.85 + 0.3 * (noise_state % 10_000) as f64 / 10_000.0;
        let burst = BURSTS
            .iter()
            .find(|(at, length, _)| (*at..at + length).contains(&minute))
            .map_or(1.0, |(_, _, factor)| *factor);
        concurrency.push((8.0 + 110.0 * daily * weekly) * noise * burst);
    }
    Demand {
        name: "synthetic-week".to_owned(),
        start,
        concurrency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resamples_irregular_steps_linearly() {
        let text = "timestamp,value\n2024-01-01 00:00:00,0\n2024-01-01 00:05:00,50\n2024-01-01 00:15:00,50\n";
        let rows = parse(text).expect("valid trace");
        // Concurrency as given: minute 0 is 0, minute 1 is 10, minute 5 onwards 50.
        let demand = resample("t".into(), &rows, TraceKind::Concurrency, 1000.0);
        assert_eq!(demand.concurrency.len(), 16);
        assert_eq!(demand.concurrency[0], 0.0);
        assert!((demand.concurrency[1] - 10.0).abs() < 1e-9);
        assert!((demand.concurrency[10] - 50.0).abs() < 1e-9);
    }

    #[test]
    fn requests_per_step_become_concurrency() {
        // 300 requests per 5-minute step at 1 s each: 1 request a second, concurrency 1.
        let text = "timestamp,value\n2024-01-01 00:00:00,300\n2024-01-01 00:05:00,300\n";
        let demand = resample(
            "t".into(),
            &parse(text).expect("valid"),
            TraceKind::Requests,
            1000.0,
        );
        assert!(demand.concurrency.iter().all(|c| (c - 1.0).abs() < 1e-9));
    }

    #[test]
    fn bad_rows_are_reported_with_their_line() {
        assert_eq!(
            parse("timestamp,value\n2024-01-01 00:00:00,x\n")
                .map(|_| ())
                .unwrap_err()
                .0,
            2
        );
        assert_eq!(
            parse("timestamp,value\n2024-01-01 00:05:00,1\n2024-01-01 00:00:00,1\n")
                .map(|_| ())
                .unwrap_err()
                .0,
            3
        );
    }

    #[test]
    fn the_synthetic_week_is_deterministic_with_mean_near_50() {
        let start = "2026-01-05T00:00:00Z".parse().expect("valid time");
        let week = synthetic_week(start);
        assert_eq!(week.concurrency, synthetic_week(start).concurrency);
        assert!((35.0..65.0).contains(&week.mean()), "mean {}", week.mean());
    }
}
