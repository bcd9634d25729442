//! Predicting demand from the target's own past: seasonal-naive forecasts at several
//! periods (an hour, the 2- to 12-hour steps of a day, a day, a week), each scored by
//! how well it would have predicted the recent past, the best one used only when its
//! score says the past predicts the present.
//!
//! History is the peak demand of each 5-minute bucket over the last 8 days (the week
//! back and the day a period is scored on, all that is ever read), kept an hour to a
//! 13-byte block (2.5 KiB per target), and the first bucket ever seen, so that the week
//! counts as seen twice after 14 days. It is rebuilt from the same datapoints after a
//! restart, so the answer is the same. Pure: no clock, `now` is passed in; no
//! allocation beyond the history.
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
/// Buckets per [`Block`]: an hour.
const BLOCK_BUCKETS: usize = 12;
/// Blocks kept: every hour that holds one of the last [`KEPT_BUCKETS`].
const KEPT_BLOCKS: usize = KEPT_BUCKETS / BLOCK_BUCKETS + 1;
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

/// Peak demand per 5-minute bucket, newest last; `NaN` (in the inline buckets) or no
/// code (in the blocks) where nothing was seen.
///
/// Decisions hand the state on every minute, so cloning must be cheap and must not
/// copy the 2.5 KiB of history: the long history sits behind an `Arc` and changes once
/// an hour, when the periods are scored; the buckets completed since then and the
/// bucket under way are kept inline beside it.
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
    /// The newest bucket put.
    newest: i64,
    /// The hour number (bucket number ÷ 12; a bucket number is minutes since the
    /// epoch ÷ 5) of `blocks[0]`.
    first_block: i64,
    /// At most [`KEPT_BLOCKS`], allocated once at that size: a ring that grew by
    /// doubling would hold nearly twice the memory.
    blocks: VecDeque<Block>,
    /// Each period's score at the newest completed bucket (see `rescore`).
    scores: [Option<f64>; Period::ALL.len()],
}

/// Up to an hour of completed buckets, not yet merged into [`Completed`].
#[derive(Debug, Clone, Copy, Default)]
struct Recent {
    /// The bucket number of `peaks[0]`.
    first: i64,
    len: usize,
    peaks: [f32; RESCORE_BUCKETS as usize],
}

/// Equal bit for bit: a bucket not seen is NaN, and two histories that saw the same
/// minutes are the same history.
impl PartialEq for Recent {
    fn eq(&self, other: &Self) -> bool {
        self.first == other.first
            && self.len == other.len
            && self
                .peaks
                .iter()
                .zip(&other.peaks)
                .all(|(left, right)| left.to_bits() == right.to_bits())
    }
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

/// An hour of bucket peaks in 13 bytes (an `f32` each would take 48): a power-of-two
/// scale, and each bucket in 256ths of it, rounded up, at most 254 of them (0 to 254
/// and "nothing seen" fill a byte). A stored peak is never below the one seen and at
/// most a step above: under 0.8 % of the hour's peak. 0 stays 0, and integers are
/// exact in an hour whose peak is at most 254; the forecast only ever asks for capacity
/// in whole units.
///
/// Canonical: a rise of the scale divides every step count by a power of two, rounded
/// up, which is what encoding at the new scale gives directly. So the block depends
/// only on each bucket's peak, not on the order they came in, and a history rebuilt
/// from CloudWatch after a restart is the same as the one watched.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Block {
    /// The scale is `2^exponent`.
    exponent: i8,
    /// 0: nothing seen; otherwise 1 + the value in 256ths of the scale.
    codes: [u8; BLOCK_BUCKETS],
}

impl Block {
    /// The smallest scale: 2^-20, about a millionth.
    const MIN_EXPONENT: i8 = -20;
    /// Steps per scale (2^8), and the most a code holds.
    const STEPS: f64 = 256.0;
    const MAX_STEPS: f64 = 254.0;
    const EMPTY: Block = Block {
        exponent: Self::MIN_EXPONENT,
        codes: [0; BLOCK_BUCKETS],
    };

    /// On the forecast's hot path (scoring reads thousands of buckets an hour): one
    /// multiplication by a step that is itself a power of two, so exact.
    fn get(&self, index: usize) -> Option<f64> {
        let code = self.codes[index];
        (code != 0).then(|| f64::from(code - 1) * power_of_two(i32::from(self.exponent) - 8))
    }

    /// Sets bucket `index` to `value` (finite, not negative), rescaling the block
    /// when `value` needs more than its steps. Values beyond 2^127 are kept lower.
    fn set(&mut self, index: usize, value: f32) {
        let steps_at =
            |exponent: i8| f64::from(value) * Self::STEPS / power_of_two(i32::from(exponent));
        let mut exponent = self.exponent;
        while steps_at(exponent) > Self::MAX_STEPS && exponent < i8::MAX {
            exponent += 1;
        }
        if exponent > self.exponent {
            let shift = u32::from(exponent.abs_diff(self.exponent)).min(16);
            for code in self.codes.iter_mut().filter(|code| **code != 0) {
                let steps = u32::from(*code - 1);
                let rescaled = (steps + (1 << shift) - 1) >> shift;
                *code = 1 + u8::try_from(rescaled).expect("fewer steps than before");
            }
            self.exponent = exponent;
        }
        let steps = steps_at(exponent).ceil().min(Self::MAX_STEPS);
        self.codes[index] = 1 + steps as u8;
    }
}

/// 2^exponent, built from its bits (`powi` is a loop). `exponent` is within the
/// normal range: blocks use -28 to 127.
fn power_of_two(exponent: i32) -> f64 {
    let biased = u64::try_from(exponent + 1023).expect("a normal exponent");
    f64::from_bits(biased << 52)
}

fn peak(value: f32) -> Option<f64> {
    (!value.is_nan()).then_some(f64::from(value))
}

impl Peaks for Completed {
    fn at(&self, bucket: i64) -> Option<f64> {
        let index = usize::try_from(bucket - self.first_bucket()).ok()?;
        self.blocks
            .get(index / BLOCK_BUCKETS)?
            .get(index % BLOCK_BUCKETS)
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
    /// The bucket number of the first bucket of `blocks[0]`.
    fn first_bucket(&self) -> i64 {
        self.first_block * BLOCK_BUCKETS as i64
    }

    /// Buckets watched, from the first seen to the newest, gaps included.
    fn watched(&self) -> usize {
        if self.blocks.is_empty() {
            return 0;
        }
        usize::try_from(self.newest - self.origin + 1).unwrap_or(0)
    }

    /// Sets `bucket` to at least `value`, extending the history with gaps as needed
    /// and dropping what falls out of it.
    fn put(&mut self, bucket: i64, value: f32) {
        if self.blocks.capacity() < KEPT_BLOCKS {
            self.blocks.reserve_exact(KEPT_BLOCKS - self.blocks.len());
        }
        let block_of = |bucket: i64| bucket.div_euclid(BLOCK_BUCKETS as i64);
        if self.blocks.is_empty() || bucket - self.newest >= KEPT_BUCKETS as i64 {
            // Nothing kept is within reach of what comes next: start again.
            self.blocks.clear();
            self.blocks.push_back(Block::EMPTY);
            self.first_block = block_of(bucket);
            self.origin = bucket;
            self.newest = bucket;
        }
        if bucket < self.first_bucket().max(self.origin) {
            return;
        }
        if bucket > self.newest {
            self.newest = bucket;
            // Make room first, so that the ring never outgrows its allocation. The
            // block of the previous newest bucket stays: the gap was shorter than
            // what is kept.
            let oldest = block_of(bucket - KEPT_BUCKETS as i64 + 1);
            let dropped = usize::try_from(oldest - self.first_block).unwrap_or(0);
            self.blocks.drain(..dropped);
            self.first_block += dropped as i64;
            let needed = usize::try_from(block_of(bucket) - self.first_block + 1)
                .expect("the newest block is not before the first");
            self.blocks.resize(needed, Block::EMPTY);
        }
        let index = usize::try_from(bucket - self.first_bucket()).expect("bucket is kept");
        let block = &mut self.blocks[index / BLOCK_BUCKETS];
        let within = index % BLOCK_BUCKETS;
        if block
            .get(within)
            .is_none_or(|known| f64::from(value) > known)
        {
            block.set(within, value);
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
        let newest = self.newest;
        let from = (newest - SCORED_BUCKETS as i64 + 1).max(self.first_bucket());
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
        if bucket < completed.first_bucket()
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

    /// The newest bucket merged into the long history, which moves once an hour:
    /// what is derived from the long history needs deriving again only when it moves.
    pub fn merged_through(&self) -> Option<i64> {
        self.completed.as_ref().map(|completed| completed.newest)
    }

    /// The peaks of up to `count` merged buckets, oldest first and ending at bucket
    /// `last` (at most [`Self::merged_through`]), 0 where nothing was seen (no
    /// datapoint: no demand).
    pub fn merged_peaks(&self, count: usize, last: i64) -> Vec<f64> {
        let Some(completed) = &self.completed else {
            return Vec::new();
        };
        let last = last.min(completed.newest);
        let from = (last - count as i64 + 1)
            .max(completed.first_bucket())
            .max(completed.origin);
        (from..=last)
            .map(|bucket| completed.at(bucket).unwrap_or(0.0))
            .collect()
    }

    /// The highest peak from the bucket of `since` on, the bucket under way included:
    /// a scale-in window longer than the minutes the policy keeps, read from the
    /// history at bucket resolution (so up to a bucket longer).
    pub fn peak_since(&self, since: DateTime<Utc>) -> Option<f64> {
        let first = bucket_of(since);
        let current = self.current.filter(|(bucket, _)| *bucket >= first);
        let newest = match self.current {
            Some((bucket, _)) => bucket - 1,
            None if self.recent.len > 0 => self.recent.first + self.recent.len as i64 - 1,
            None => self.merged_through().unwrap_or(i64::MIN),
        };
        (first..=newest)
            .filter_map(|bucket| self.at(bucket))
            .chain(current.and_then(|(_, value)| peak(value)))
            .reduce(f64::max)
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
    fn a_stored_peak_is_never_below_the_one_seen_and_under_0_8_percent_of_the_hour_above() {
        // 0, integers, then 1,000 mantissas across each decade from 0.001 to 10^9,
        // each stored beside its hour's peak (itself, or 3 times itself).
        let spread = (-3..9).flat_map(|decade| {
            (0..1_000).map(move |step| (1.0 + step as f32 * 0.009) * 10f32.powi(decade))
        });
        for value in (0..=256).map(|integer| integer as f32).chain(spread) {
            for hour_peak in [value, 3.0 * value] {
                let mut block = Block::EMPTY;
                block.set(0, hour_peak);
                block.set(1, value);
                let stored = block.get(1).expect("set");
                let bound = f64::from(value) + 0.008 * f64::from(hour_peak);
                assert!(
                    stored >= f64::from(value) && stored <= bound,
                    "{value} in an hour of {hour_peak} -> {stored}"
                );
            }
        }
        let mut block = Block::EMPTY;
        block.set(0, 0.0);
        block.set(1, 500.0);
        assert_eq!(block.get(0), Some(0.0));
        assert_eq!(block.get(2), None);
    }

    #[test]
    fn a_block_is_the_same_whatever_order_its_peaks_came_in() {
        // Peaks from 10^-3 to 10^5 (powers of ten times a spread of mantissas), set
        // in ascending, descending and interleaved orders, with lower values set
        // again in between: every order gives the same block.
        let peaks: Vec<f32> = (0..BLOCK_BUCKETS)
            .map(|index| 10f32.powi(index as i32 % 9 - 3) * (1.0 + index as f32 * 0.37))
            .collect();
        let build = |order: &[usize]| {
            let mut block = Block::EMPTY;
            for &index in order {
                block.set(index, peaks[index] * 0.5);
                if block
                    .get(index)
                    .is_none_or(|known| f64::from(peaks[index]) > known)
                {
                    block.set(index, peaks[index]);
                }
            }
            block
        };
        let ascending: Vec<usize> = (0..BLOCK_BUCKETS).collect();
        let descending: Vec<usize> = ascending.iter().rev().copied().collect();
        let interleaved: Vec<usize> = (0..BLOCK_BUCKETS).map(|index| index * 5 % 12).collect();
        assert_eq!(build(&ascending), build(&descending));
        assert_eq!(build(&ascending), build(&interleaved));
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
    fn the_history_keeps_8_days_in_2_5_kib_and_rebuilds_to_the_same_answer() {
        let history = history_of(hourly_batch, 16 * 24 * 60);
        // Watched for 16 days: every bucket fed, though only 8 days are kept.
        assert_eq!(history.span(), 16 * 24 * 60 / BUCKET_MINUTES as usize);
        let completed = history.completed.as_ref().expect("merged");
        assert!(completed.blocks.len() <= KEPT_BLOCKS);
        assert_eq!(completed.blocks.capacity(), KEPT_BLOCKS);
        let oldest_scored = completed.newest - KEPT_BUCKETS as i64 + 1;
        assert_eq!(completed.at(oldest_scored), Some(hourly_batch(0)));
        assert!(
            KEPT_BLOCKS * std::mem::size_of::<Block>() + std::mem::size_of::<Recent>() <= 2_600
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
