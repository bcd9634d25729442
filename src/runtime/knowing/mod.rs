//! What is known, up to the decision: each function's configs, reserved concurrency
//! and weighted aliases, and the account's headroom ([`known`]); the metric series of
//! a pass and the history of a forecast ([`series`]); and the `Observation` built
//! from both for `policy::decide` ([`evaluate`]); and which targets Application Auto
//! Scaling manages, and so who may write them ([`aas`]).
//!
//! What it must not do: decide capacity (the policy does) or write anything; a read
//! that failed is carried as such, so that it never becomes a scale-in.

pub mod aas;
pub mod evaluate;
pub mod known;
pub mod series;

/// How far back the forecast's history is read: its whole span.
pub const HISTORY_DAYS: i64 = 14;
/// Targets per history read: 14 days of one-minute datapoints are 20,160 a series,
/// and one `GetMetricData` answers at most 100,800.
pub const HISTORY_TARGETS_PER_CALL: usize = 5;
