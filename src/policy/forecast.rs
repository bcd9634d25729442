//! Predicting demand from the target's own past: seasonal-naive forecasts at several
//! periods (an hour, the 2- to 12-hour steps of a day, a day, a week), each scored by
//! how well it would have predicted the recent past, the best one used only when its
//! score says the past predicts the present.
//!
//! History is the peak demand of each 5-minute bucket over the last 8 days (the week
//! back and the day a period is scored on, all that is ever read): 2,304 16-bit floats,
//! 4.5 KiB per target, and the first bucket ever seen, so that the week counts as seen
//! twice after 14 days. It is rebuilt from the same datapoints after a restart, so the
//! answer is the same. Pure: no clock, `now` is passed in; no allocation beyond the
//! history.
//!
//! What it must not do: scale in (it only ever proposes a floor), or act on a period
//! it has not seen at least twice.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Datapoint;

/// Minutes per history bucket.
pub const BUCKET_MINUTES: i64 = 5;
/// A forecast is used only when its score reaches this (0: never right, 1: always).
pub const MIN_ACCURACY: f64 = 0.6;
/// Buckets of the recent past a period is scored on: one day.
const SCORED_BUCKETS: usize = 24 * 60 / BUCKET_MINUTES as usize;
/// Buckets kept: the longest period back from the oldest bucket scored. Nothing older is
/// ever read: two weeks back from the day scored would need 15 days, more than the 14
/// read at start, so the weekly period looks one week back only (as it did in effect
/// when 14 days were kept).
const KEPT_BUCKETS: usize = Period::WEEK.buckets() + SCORED_BUCKETS;
/// Periods are scored again every this many buckets (an hour).
const RESCORE_BUCKETS: i64 = 60 / BUCKET_MINUTES;
/// Buckets a reactive policy takes to follow a rise (metric lag, allocation, one
/// interval): a rise is "new" when it exceeds the peak of this many buckets before.
const REACTION_BUCKETS: usize = 2;

/// A season a forecast can follow: an hour, the steps of a day that cron schedules
/// use (2, 3, 4, 6, 8 and 12 hours), a day and a week. The sub-day periods matter when
/// history is short: a batch every 4 hours is seen twice after 8 hours, a day only
/// after two days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    minutes: usize,
    label: &'static str,
}

impl Period {
    pub const HOUR: Period = Period::hours(1, "1h");
    pub const DAY: Period = Period::hours(24, "1d");
    pub const WEEK: Period = Period::hours(7 * 24, "1w");
    /// Shortest first: on a tie the shortest period wins, being the freshest.
    pub const ALL: [Period; 9] = [
        Period::HOUR,
        Period::hours(2, "2h"),
        Period::hours(3, "3h"),
        Period::hours(4, "4h"),
        Period::hours(6, "6h"),
        Period::hours(8, "8h"),
        Period::hours(12, "12h"),
        Period::DAY,
        Period::WEEK,
    ];

    const fn hours(hours: usize, label: &'static str) -> Period {
        Period {
            minutes: hours * 60,
            label,
        }
    }

    const fn buckets(self) -> usize {
        self.minutes / BUCKET_MINUTES as usize
    }

    pub fn label(self) -> &'static str {
        self.label
    }
}

/// Peak demand per 5-minute bucket, newest last; `NaN` where nothing was seen.
///
/// Decisions hand the state on every minute, so cloning must be cheap and must not
/// copy the 8 KiB of history: the long history sits behind an `Arc` and changes once an hour, when
/// the periods are scored; the buckets completed since then and the bucket under way
/// are kept inline beside it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DemandHistory {
    /// `None` until the first merge: a target that never forecasts allocates nothing.
    completed: Option<Arc<Completed>>,
    /// Buckets completed since the last merge into `completed`.
    recent: Recent,
    /// The newest bucket, still filling: (bucket number, peak so far).
    current: Option<(i64, f32)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Completed {
    /// The first bucket seen since the history last started (a gap longer than what is
    /// kept starts it again): how long the periods have been watched, which is longer
    /// than what is kept.
    origin: i64,
    /// The bucket number (minutes since the epoch ÷ 5) of `buckets[0]`.
    first: i64,
    /// At most [`KEPT_BUCKETS`], allocated once at that size: a ring that grew by
    /// doubling would hold nearly twice the memory.
    buckets: VecDeque<Stored>,
    /// Each period's score at the newest completed bucket (see `rescore`).
    scores: [Option<f64>; Period::ALL.len()],
}

/// Up to an hour of completed buckets, not yet merged into [`Completed`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Recent {
    /// The bucket number of `peaks[0]`.
    first: i64,
    len: usize,
    peaks: [f32; RESCORE_BUCKETS as usize],
}

impl Recent {
    fn index(&self, bucket: i64) -> Option<usize> {
        usize::try_from(bucket - self.first)
            .ok()
            .filter(|index| *index < self.len)
    }
}

fn bucket_of(time: DateTime<Utc>) -> i64 {
    time.timestamp().div_euclid(60 * BUCKET_MINUTES)
}

/// Reading a history of bucket peaks, whether merged or not.
trait Peaks {
    fn at(&self, bucket: i64) -> Option<f64>;

    /// The seasonal-naive prediction for `bucket` at `period`: the larger of the same
    /// phase one and two periods back (either may be missing, not both).
    fn seasonal(&self, bucket: i64, period: Period) -> Option<f64> {
        let step = period.buckets() as i64;
        match (self.at(bucket - step), self.at(bucket - 2 * step)) {
            (Some(one), Some(two)) => Some(one.max(two)),
            (one, two) => one.or(two),
        }
    }
}

/// A peak in 16 bits: the upper half of its `f32` (bfloat16), rounded up, so that a
/// stored peak is never below the one seen. Integers up to 256 are exact, larger values
/// at most 0.8 % above; half the memory of an `f32`, and the forecast only ever asks
/// for capacity in whole units. `NaN` (nothing seen) stays `NaN`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stored(u16);

impl Stored {
    const GAP: Stored = Stored(0x7fc0);

    fn new(value: f32) -> Self {
        let bits = value.to_bits();
        let upper = (bits >> 16) as u16;
        // Peaks are never negative: one more in the upper half is the next value up.
        if bits & 0xffff != 0 && !value.is_nan() {
            Stored(upper + 1)
        } else {
            Stored(upper)
        }
    }

    fn get(self) -> f32 {
        f32::from_bits(u32::from(self.0) << 16)
    }
}

fn peak(value: f32) -> Option<f64> {
    (!value.is_nan()).then_some(f64::from(value))
}

impl Peaks for Completed {
    fn at(&self, bucket: i64) -> Option<f64> {
        let index = usize::try_from(bucket - self.first).ok()?;
        self.buckets
            .get(index)
            .and_then(|stored| peak(stored.get()))
    }
}

impl Peaks for DemandHistory {
    fn at(&self, bucket: i64) -> Option<f64> {
        match self.recent.index(bucket) {
            Some(index) => peak(self.recent.peaks[index]),
            None => self.completed.as_ref()?.at(bucket),
        }
    }
}

impl Completed {
    fn newest(&self) -> i64 {
        self.first + self.buckets.len() as i64 - 1
    }

    /// Buckets watched, from the first seen to the newest, gaps included.
    fn watched(&self) -> usize {
        if self.buckets.is_empty() {
            return 0;
        }
        usize::try_from(self.newest() - self.origin + 1).unwrap_or(0)
    }

    /// Sets `bucket` to at least `value`, extending the history with gaps as needed
    /// and dropping what falls out of it.
    fn put(&mut self, bucket: i64, value: f32) {
        if self.buckets.capacity() < KEPT_BUCKETS {
            self.buckets
                .reserve_exact(KEPT_BUCKETS - self.buckets.len());
        }
        if self.buckets.is_empty() {
            self.first = bucket;
            self.origin = bucket;
        }
        if bucket < self.first {
            return;
        }
        let end = self.first + self.buckets.len() as i64;
        if bucket >= end {
            let gap = usize::try_from(bucket - end + 1).unwrap_or(usize::MAX);
            if gap >= KEPT_BUCKETS {
                // Nothing kept is within reach of what comes next: start again.
                self.buckets.clear();
                self.first = bucket;
                self.origin = bucket;
                self.buckets.push_back(Stored::GAP);
            } else {
                // Make room first, so that the ring never outgrows its allocation.
                let excess = (self.buckets.len() + gap).saturating_sub(KEPT_BUCKETS);
                self.buckets.drain(..excess);
                self.first += excess as i64;
                self.buckets.extend(std::iter::repeat_n(Stored::GAP, gap));
            }
        }
        let index = usize::try_from(bucket - self.first).expect("bucket is within the history");
        let slot = &mut self.buckets[index];
        if slot.get().is_nan() || value > slot.get() {
            *slot = Stored::new(value);
        }
    }

    /// The peak of the `REACTION_BUCKETS` before `bucket`: what a reactive policy has
    /// already caught up with when `bucket` comes.
    fn reactive_level(&self, bucket: i64) -> Option<f64> {
        (1..=REACTION_BUCKETS as i64)
            .filter_map(|back| self.at(bucket - back))
            .reduce(f64::max)
    }

    /// How well each period would have predicted the rises of the last day that a
    /// reactive policy misses: an F1 score of the rise it covered against the rise
    /// there was and the capacity it would have added. `None` for a period not seen
    /// twice yet, and for all when the day had no rise to predict. One pass over the
    /// day: the rise of a bucket is the same whatever the period.
    fn rescore(&mut self) {
        #[derive(Clone, Copy, Default)]
        struct Tally {
            covered: f64,
            proposed: f64,
        }
        let mut tallies = [Tally::default(); Period::ALL.len()];
        let mut needed = 0.0;
        let newest = self.newest();
        let from = newest - SCORED_BUCKETS.min(self.buckets.len()) as i64 + 1;
        for bucket in from..=newest {
            let (Some(actual), Some(level)) = (self.at(bucket), self.reactive_level(bucket)) else {
                continue;
            };
            let rise = (actual - level).max(0.0);
            needed += rise;
            for (period, tally) in Period::ALL.iter().zip(&mut tallies) {
                let offered = (self.seasonal(bucket, *period).unwrap_or(0.0) - level).max(0.0);
                tally.proposed += offered;
                tally.covered += rise.min(offered);
            }
        }
        let seen = self.watched();
        self.scores = std::array::from_fn(|index| {
            let tally = tallies[index];
            if seen < 2 * Period::ALL[index].buckets() || needed <= f64::EPSILON {
                return None;
            }
            let recall = tally.covered / needed;
            let precision = if tally.proposed > 0.0 {
                tally.covered / tally.proposed
            } else {
                0.0
            };
            Some(if recall + precision > 0.0 {
                2.0 * recall * precision / (recall + precision)
            } else {
                0.0
            })
        });
    }
}

impl DemandHistory {
    /// Takes a datapoint into its bucket (the peak wins). A datapoint of a later
    /// bucket completes the current one; one of a completed bucket updates it.
    pub fn record(&mut self, point: &Datapoint) {
        self.take(point, i64::MIN);
    }

    /// Takes datapoints in order, with the same result as [`Self::record`] one by one,
    /// but scores the periods only at the last hour boundary the batch completes:
    /// nothing reads the scores in between, and a rebuild from 14 days would otherwise
    /// score 336 times.
    pub fn record_all<'a>(&mut self, points: impl Iterator<Item = &'a Datapoint> + Clone) {
        let Some(newest) = points.clone().map(|point| bucket_of(point.timestamp)).max() else {
            return;
        };
        // A bucket completes when a later one arrives: this batch completes buckets
        // before `newest`, and the last of them at an hour boundary is scored.
        let last_boundary = (newest - 1).div_euclid(RESCORE_BUCKETS) * RESCORE_BUCKETS;
        for point in points {
            self.take(point, last_boundary);
        }
    }

    /// [`Self::record`], scoring at hour boundaries from `score_from` on.
    fn take(&mut self, point: &Datapoint, score_from: i64) {
        if !point.value.is_finite() || point.value < 0.0 {
            return;
        }
        let bucket = bucket_of(point.timestamp);
        let value = point.value as f32;
        match self.current {
            Some((current, peak)) if bucket == current => {
                self.current = Some((current, peak.max(value)));
            }
            Some((current, peak)) if bucket > current => {
                self.complete(current, peak, current >= score_from);
                self.current = Some((bucket, value));
            }
            Some(_) => self.raise(bucket, value),
            None => self.current = Some((bucket, value)),
        }
    }

    fn complete(&mut self, bucket: i64, peak: f32, score: bool) {
        let recent = &mut self.recent;
        if recent.len == 0 {
            recent.first = bucket;
        }
        let index = usize::try_from(bucket - recent.first).unwrap_or(usize::MAX);
        if index >= recent.peaks.len() {
            self.merge();
            self.recent.first = bucket;
        }
        let recent = &mut self.recent;
        let index = usize::try_from(bucket - recent.first).expect("after the newest");
        recent.peaks[recent.len..index].fill(f32::NAN);
        recent.peaks[index] = peak;
        recent.len = index + 1;
        // Scores move slowly (a day is scored): once an hour is enough, and an hour
        // boundary is the same whatever the history was rebuilt from.
        if bucket.rem_euclid(RESCORE_BUCKETS) == 0 {
            self.merge();
            if let (true, Some(completed)) = (score, &mut self.completed) {
                Arc::make_mut(completed).rescore();
            }
        }
    }

    /// Moves the recent buckets into the long history: the one copy of it an hour
    /// while a decision still holds the previous state.
    fn merge(&mut self) {
        let recent = std::mem::take(&mut self.recent);
        if recent.len == 0 {
            return;
        }
        let completed = Arc::make_mut(self.completed.get_or_insert_default());
        for (bucket, value) in (recent.first..).zip(&recent.peaks[..recent.len]) {
            if !value.is_nan() {
                completed.put(bucket, *value);
            }
        }
    }

    /// A datapoint of a completed bucket. The daemon reads its whole window every
    /// pass, so this is mostly a datapoint seen before: only one that raises a peak
    /// changes anything (and, in the long history, costs a copy and a new score).
    fn raise(&mut self, bucket: i64, value: f32) {
        if let Some(index) = self.recent.index(bucket) {
            let slot = &mut self.recent.peaks[index];
            if slot.is_nan() || value > *slot {
                *slot = value;
            }
            return;
        }
        let Some(completed) = &mut self.completed else {
            return;
        };
        if bucket < completed.first
            || completed
                .at(bucket)
                .is_some_and(|known| known >= f64::from(value))
        {
            return;
        }
        let completed = Arc::make_mut(completed);
        completed.put(bucket, value);
        completed.rescore();
    }

    /// Buckets watched, first to last seen.
    pub fn span(&self) -> usize {
        self.completed
            .as_ref()
            .map_or(0, |completed| completed.watched())
            + self.recent.len
            + usize::from(self.current.is_some())
    }
}

/// A forecast: the demand expected over the next `horizon_minutes`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub period: Period,
    pub horizon_minutes: u32,
    pub expected: f64,
    /// The period's score on the last day (see [`MIN_ACCURACY`]).
    pub accuracy: f64,
}

/// Why there is no forecast to act on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoForecast {
    /// Less than two hours of history: not even the hourly period was seen twice.
    NotEnoughHistory { minutes: u32 },
    /// No period predicted the last day's rises well enough; the best score.
    PastDoesNotPredict { best: f64 },
}

impl std::fmt::Display for NoForecast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoForecast::NotEnoughHistory { minutes } => write!(
                f,
                "none: {minutes} min of history, a period must be seen twice (2 h at least)"
            ),
            NoForecast::PastDoesNotPredict { best } => write!(
                f,
                "none: the past does not predict the present (best accuracy {best:.2}, needs {MIN_ACCURACY})"
            ),
        }
    }
}

/// A forecast and the capacity it needs, or why there is none, in one line.
pub fn describe(forecast: &Result<(Prediction, u32), NoForecast>) -> String {
    match forecast {
        Ok((prediction, needed)) => format!(
            "needs {needed}: {:.1} expected within {} min as {} ago (accuracy {:.2})",
            prediction.expected,
            prediction.horizon_minutes,
            prediction.period.label(),
            prediction.accuracy
        ),
        Err(none) => none.to_string(),
    }
}

/// The best period's forecast of the peak over `(now, now + horizon]`, if the past
/// predicts the present.
pub fn predict(
    history: &DemandHistory,
    now: DateTime<Utc>,
    horizon_minutes: u32,
) -> Result<Prediction, NoForecast> {
    let nothing = Completed::default();
    let completed = history.completed.as_deref().unwrap_or(&nothing);
    let minutes = u32::try_from(history.span() as i64 * BUCKET_MINUTES).unwrap_or(u32::MAX);
    let best = Period::ALL
        .iter()
        .zip(completed.scores)
        .filter_map(|(period, score)| score.map(|score| (*period, score)))
        .reduce(|best, next| if next.1 > best.1 { next } else { best });
    let Some((period, accuracy)) = best else {
        return Err(if history.span() < 2 * Period::HOUR.buckets() {
            NoForecast::NotEnoughHistory { minutes }
        } else {
            NoForecast::PastDoesNotPredict { best: 0.0 }
        });
    };
    if accuracy < MIN_ACCURACY {
        return Err(NoForecast::PastDoesNotPredict { best: accuracy });
    }
    let last = bucket_of(now + chrono::TimeDelta::minutes(i64::from(horizon_minutes)));
    let expected = (bucket_of(now)..=last)
        .filter_map(|bucket| history.seasonal(bucket, period))
        .fold(0.0, f64::max);
    Ok(Prediction {
        period,
        horizon_minutes,
        expected,
        accuracy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(index: i64) -> DateTime<Utc> {
        // A Monday 00:00 UTC.
        DateTime::<Utc>::from_timestamp(1_767_571_200 + index * 60, 0).expect("a valid time")
    }

    fn history_of(load: impl Fn(i64) -> f64, minutes: i64) -> DemandHistory {
        let mut history = DemandHistory::default();
        for index in 0..minutes {
            history.record(&Datapoint {
                timestamp: minute(index),
                value: load(index),
            });
        }
        history
    }

    /// 10 most of the time, 100 for the first 10 minutes of every hour.
    fn hourly_batch(index: i64) -> f64 {
        if index % 60 < 10 { 100.0 } else { 10.0 }
    }

    #[test]
    fn an_hourly_batch_is_foreseen_before_it_starts() {
        let history = history_of(hourly_batch, 6 * 60 - 5);
        let prediction = predict(&history, minute(6 * 60 - 5), 10).expect("a forecast");
        assert_eq!(prediction.period, Period::HOUR);
        assert!((prediction.expected - 100.0).abs() < 1e-6, "{prediction:?}");
        assert!(prediction.accuracy > 0.9, "{prediction:?}");
        // Mid-hour, nothing comes within the horizon.
        let quiet = predict(&history, minute(6 * 60 - 35), 10).expect("a forecast");
        assert!(quiet.expected <= 100.0);
    }

    #[test]
    fn less_than_two_hours_is_not_enough() {
        let history = history_of(hourly_batch, 90);
        assert!(matches!(
            predict(&history, minute(90), 10),
            Err(NoForecast::NotEnoughHistory { .. })
        ));
    }

    #[test]
    fn a_load_whose_bursts_do_not_repeat_gets_no_forecast() {
        // Bursts at scattered minutes (a multiplicative hash of their index), never at
        // the same phase twice.
        let bursts: Vec<i64> = (0..40i64)
            .map(|index| (index * 7_919 * 104_729 + 617).rem_euclid(2 * 24 * 60))
            .collect();
        let load = |index: i64| {
            if bursts
                .iter()
                .any(|start| (0..10).contains(&(index - start)))
            {
                100.0
            } else {
                10.0
            }
        };
        let history = history_of(load, 2 * 24 * 60);
        assert!(
            matches!(
                predict(&history, minute(2 * 24 * 60), 10),
                Err(NoForecast::PastDoesNotPredict { .. })
            ),
            "{:?}",
            predict(&history, minute(2 * 24 * 60), 10)
        );
    }

    #[test]
    fn a_stored_peak_is_never_below_the_one_seen_and_at_most_0_8_percent_above() {
        // Integers, then 1,000 mantissas across each decade from 0.001 to 10^9.
        let spread = (-3..9).flat_map(|decade| {
            (0..1_000).map(move |step| (1.0 + step as f32 * 0.009) * 10f32.powi(decade))
        });
        for value in (0..=256).map(|integer| integer as f32).chain(spread) {
            let stored = Stored::new(value).get();
            assert!(
                stored >= value && stored <= value * 1.008,
                "{value} -> {stored}"
            );
            if value <= 256.0 && value.fract() == 0.0 {
                assert_eq!(stored, value);
            }
        }
        assert!(Stored::GAP.get().is_nan() && Stored::new(f32::NAN).get().is_nan());
        assert_eq!(Stored::new(f32::INFINITY).get(), f32::INFINITY);
    }

    #[test]
    fn a_datapoint_read_again_copies_nothing_and_a_higher_one_counts() {
        // The daemon reads its whole window every pass: old datapoints come again.
        let mut history = history_of(hourly_batch, 5 * 60);
        let before = history.clone();
        let old = Datapoint {
            timestamp: minute(60),
            value: hourly_batch(60),
        };
        history.record(&old);
        let shared =
            |one: &DemandHistory, other: &DemandHistory| match (&one.completed, &other.completed) {
                (Some(one), Some(other)) => Arc::ptr_eq(one, other),
                _ => false,
            };
        assert!(shared(&history, &before), "the long history was copied");
        history.record(&Datapoint {
            value: 500.0,
            ..old
        });
        assert!(!shared(&history, &before));
        assert_eq!(history.at(bucket_of(minute(60))), Some(500.0));
    }

    #[test]
    fn a_batch_scores_as_the_same_datapoints_one_by_one() {
        // Four days of an hourly batch with an idle afternoon (no datapoints at all).
        let points: Vec<Datapoint> = (0..4 * 24 * 60)
            .filter(|index| !(2 * 24 * 60 + 14 * 60..2 * 24 * 60 + 17 * 60).contains(index))
            .map(|index| Datapoint {
                timestamp: minute(index),
                value: hourly_batch(index) + (index % 7) as f64,
            })
            .collect();
        let mut one_by_one = DemandHistory::default();
        let mut batched = DemandHistory::default();
        let mut from = 0;
        for (round, size) in [1, 17, 3 * 24 * 60, 5, 60, 1000]
            .into_iter()
            .cycle()
            .enumerate()
        {
            let to = (from + size).min(points.len());
            for point in &points[from..to] {
                one_by_one.record(point);
            }
            batched.record_all(points[from..to].iter());
            let now = points[to - 1].timestamp;
            assert_eq!(
                predict(&one_by_one, now, 10),
                predict(&batched, now, 10),
                "round {round}"
            );
            let scores = |history: &DemandHistory| history.completed.as_ref().map(|c| c.scores);
            assert_eq!(scores(&one_by_one), scores(&batched), "round {round}");
            from = to;
            if from == points.len() {
                break;
            }
        }
    }

    #[test]
    fn the_history_keeps_8_days_in_4_5_kib_and_rebuilds_to_the_same_answer() {
        let history = history_of(hourly_batch, 16 * 24 * 60);
        // Watched for 16 days: every bucket fed, though only 8 days are kept.
        assert_eq!(history.span(), 16 * 24 * 60 / BUCKET_MINUTES as usize);
        let completed = history.completed.as_ref().expect("merged");
        assert_eq!(completed.buckets.len(), KEPT_BUCKETS);
        assert_eq!(completed.buckets.capacity(), KEPT_BUCKETS);
        assert!(
            KEPT_BUCKETS * std::mem::size_of::<Stored>() + std::mem::size_of::<Recent>() <= 4_700
        );
        // Fed again from the last 14 days of the same datapoints: the same forecast.
        let mut rebuilt = DemandHistory::default();
        for index in 2 * 24 * 60..16 * 24 * 60 {
            rebuilt.record(&Datapoint {
                timestamp: minute(index),
                value: hourly_batch(index),
            });
        }
        let now = minute(16 * 24 * 60);
        assert_eq!(predict(&history, now, 10), predict(&rebuilt, now, 10));
    }

    #[test]
    fn the_week_counts_after_two_weeks_watched_though_one_is_kept() {
        // Business hours on weekdays (100 from 09:00 to 17:00), 10 otherwise. On a
        // Tuesday the day before holds Monday's rise, which a day back (Sunday) and two
        // days back (Saturday) do not predict, and a week back does.
        let weekdays = |index: i64| {
            let (day, minute_of_day) = (index / (24 * 60) % 7, index % (24 * 60));
            if day < 5 && (9 * 60..17 * 60).contains(&minute_of_day) {
                100.0
            } else {
                10.0
            }
        };
        let tuesday_before_nine = |week: i64| (week * 7 + 1) * 24 * 60 + 9 * 60 - 5;
        let second = tuesday_before_nine(1);
        let early = predict(&history_of(weekdays, second), minute(second), 10);
        assert_ne!(early.map(|prediction| prediction.period), Ok(Period::WEEK));
        let third = tuesday_before_nine(2);
        let prediction =
            predict(&history_of(weekdays, third), minute(third), 10).expect("a forecast");
        assert_eq!(prediction.period, Period::WEEK, "{prediction:?}");
        assert!((prediction.expected - 100.0).abs() < 1e-6, "{prediction:?}");
    }
}
