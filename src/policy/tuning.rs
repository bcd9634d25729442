//! Choosing the scale-in window from the target's own history, at the cost of the
//! configured one (`choose_window`).
//!
//! Which window serves best depends on the load's shape. On a noisy load a dip is soon
//! followed by another peak, so a long window, holding the last hour's peak at a
//! higher target, spills less than a short one at a lower target for the same
//! unit-hours. On rare bursts holding a burst's capacity is what costs, so a short
//! window at a lower target spills less. The history shows which: every 6 hours, each
//! candidate window is replayed over the last two days of 5-minute peaks, idealised
//! (capacity is the window's peak ÷ target, one bucket late), at the target that makes
//! it provision what the configured window and target would have. The candidate that
//! would have spilled least is used when it beats the configured pair by [`MIN_GAIN`]
//! over both days and spills no more than it in each half of them alone.
//!
//! Pure and deterministic: a function of the peaks and the configuration only, so a
//! history rebuilt after a restart gives the same choice. What it must not do: choose a
//! pair that would have cost more than the configured one over the days replayed (the
//! target is scaled to equal cost, and a candidate that rounding makes dearer is
//! dropped), choose on less than a day, or aim above utilization 1 (for the
//! concurrency and utilization metrics).

/// Candidate windows, in minutes, about √2 apart from 10 minutes on: a coarser set
/// misses the best by enough to matter (on the shared ELB trace, 0.25 of Application
/// Auto Scaling's spillover at equal cost with 5, 10, 15, 30, 60 and 120; 0.20 with
/// these). The configured window is always compared too.
const CANDIDATE_MINUTES: [u32; 9] = [5, 10, 15, 20, 30, 45, 60, 90, 120];
/// Minutes per bucket of the peaks replayed.
const BUCKET_MINUTES: u32 = super::forecast::BUCKET_MINUTES as u32;
/// Buckets between a demand and the capacity that follows it: the metric's delay and
/// the allocation, about 5 minutes.
const LAG_BUCKETS: usize = 1;
/// Buckets replayed: the last two days.
pub const REPLAYED_BUCKETS: usize = 2 * 24 * 60 / BUCKET_MINUTES as usize;
/// The window is chosen again every this many buckets (6 hours): two days move
/// little in 6 hours, and choosing costs about 35 µs.
pub const RETUNE_BUCKETS: i64 = 6 * 60 / BUCKET_MINUTES as i64;
/// Fewer buckets than a day say too little about a load's shape.
pub const MIN_BUCKETS: usize = 24 * 60 / BUCKET_MINUTES as usize;
/// A candidate is used only when it would have spilled at least this fraction less
/// than the configured pair: a smaller gain on the past is within what the next days
/// vary by. At 0.2 the shared Twitter and ELB traces kept the configured window, where
/// `simulate --split` puts a fifth and four fifths of their gap to the reactive bound;
/// at 0.15 both choose, and no trace of `scripts/compare.py` spills more at its cost.
pub const MIN_GAIN: f64 = 0.15;
/// With rounding to whole units, a candidate's cost may exceed the configured one's by
/// at most this fraction.
const MAX_EXTRA_COST: f64 = 0.02;
/// A tuned target stays within this factor of the configured one either way.
const MAX_TARGET_FACTOR: f64 = 1.5;

/// The window and target tracking uses instead of the configured pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuned {
    pub window_minutes: u32,
    pub target: f64,
    /// The fraction of the configured pair's spillover the choice would have saved
    /// over the replayed history.
    pub gain: f64,
}

impl std::fmt::Display for Tuned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} min at target {:.2}: {:.0}% less spillover than the configured pair at equal cost over the last 2 days",
            self.window_minutes,
            self.target,
            self.gain * 100.0
        )
    }
}

/// What a candidate would have done over the replayed history.
struct CandidateRun {
    /// The sum of the window's peak over the buckets replayed: the cost at target 1.
    held: f64,
    spill: f64,
    cost: f64,
}

/// The best window for `peaks` (oldest first, one per 5-minute bucket, 0 where
/// nothing was seen), or `None` when the configured pair is best or the history is
/// too short. `utilization` caps the tuned target at 1.
pub fn choose(
    peaks: &[f64],
    configured_minutes: u32,
    configured_target: f64,
    utilization: bool,
) -> Option<Tuned> {
    let configured_buckets = buckets_of(configured_minutes);
    let longest = CANDIDATE_MINUTES
        .iter()
        .map(|minutes| buckets_of(*minutes))
        .chain([configured_buckets])
        .max()
        .expect("candidates are not empty");
    // Every candidate is replayed over the same buckets: the first ones only fill the
    // longest window.
    let warm_up = longest + LAG_BUCKETS - 1;
    if peaks.len() < warm_up + MIN_BUCKETS {
        return None;
    }
    let windows = WindowPeaks::new(peaks, longest);
    let configured = windows.replay(warm_up, configured_buckets, configured_target);
    if configured.held <= 0.0 || configured.spill <= 0.0 {
        return None;
    }
    let middle = warm_up + (peaks.len() - warm_up) / 2;
    let halves = [(warm_up, middle), (middle, peaks.len())];
    let configured_halves = halves
        .map(|(from, to)| windows.replay_range(from, to, configured_buckets, configured_target));
    let most = if utilization { 1.0 } else { f64::INFINITY };
    let mut best: Option<Tuned> = None;
    for minutes in CANDIDATE_MINUTES {
        let buckets = buckets_of(minutes);
        if buckets == configured_buckets {
            continue;
        }
        let held = windows.held(warm_up, buckets);
        let target = configured_target * held / configured.held;
        let factor = target / configured_target;
        if target > most || !(1.0 / MAX_TARGET_FACTOR..=MAX_TARGET_FACTOR).contains(&factor) {
            continue;
        }
        let candidate = windows.replay(warm_up, buckets, target);
        if candidate.cost > configured.cost * (1.0 + MAX_EXTRA_COST) {
            continue;
        }
        let gain = 1.0 - candidate.spill / configured.spill;
        if gain < MIN_GAIN || best.is_some_and(|best| gain <= best.gain) {
            continue;
        }
        // A gain that comes from one half of the history alone is chance (bursts that
        // happened to fall close together), not the load's shape.
        let in_both_halves =
            halves
                .iter()
                .zip(&configured_halves)
                .all(|(&(from, to), configured)| {
                    windows.replay_range(from, to, buckets, target).spill <= configured.spill
                });
        if in_both_halves {
            best = Some(Tuned {
                window_minutes: minutes,
                target,
                gain,
            });
        }
    }
    best
}

/// `units.ceil().max(0.0)` for the capacities a replay meets (below 2^63): the
/// baseline x86-64 target has no rounding instruction, so `ceil` is a call, and the
/// replays round ten thousand times an hour.
fn round_up(units: f64) -> f64 {
    let truncated = units as i64 as f64;
    let rounded = if truncated < units {
        truncated + 1.0
    } else {
        truncated
    };
    rounded.max(0.0)
}

fn buckets_of(minutes: u32) -> usize {
    minutes.div_ceil(BUCKET_MINUTES).max(1) as usize
}

/// The peak of any window of up to `longest` buckets ending anywhere, in two reads: a
/// sparse table, `levels[k][i]` the peak of the 2^k buckets ending at `i`. Built once
/// per choice, it makes each of the ten candidates' replays a plain pass (a sliding
/// maximum per candidate took four times as long).
struct WindowPeaks<'a> {
    peaks: &'a [f64],
    levels: Vec<Vec<f64>>,
}

impl<'a> WindowPeaks<'a> {
    fn new(peaks: &'a [f64], longest: usize) -> Self {
        let mut levels = vec![peaks.to_vec()];
        let mut span = 1;
        while span * 2 <= longest {
            let below = levels.last().expect("level 0 is there");
            let level = (0..below.len())
                .map(|index| match index.checked_sub(span) {
                    Some(earlier) => below[index].max(below[earlier]),
                    None => below[index],
                })
                .collect();
            levels.push(level);
            span *= 2;
        }
        WindowPeaks { peaks, levels }
    }

    /// The peak of the `window` buckets ending at `end` (`end + 1 >= window`).
    fn peak(&self, end: usize, window: usize) -> f64 {
        let level = window.ilog2() as usize;
        let table = &self.levels[level];
        table[end].max(table[end + (1 << level) - window])
    }

    /// The sum over `peaks[from..]` of the peak of the `window` buckets ending
    /// `LAG_BUCKETS` before each: what the window holds, the cost at target 1 before
    /// rounding.
    fn held(&self, from: usize, window: usize) -> f64 {
        (from..self.peaks.len())
            .map(|index| self.peak(index - LAG_BUCKETS, window))
            .sum()
    }

    /// The idealised replay of one window at one target over `peaks[from..]`: capacity
    /// in each bucket is the peak of the `window` buckets ending `LAG_BUCKETS` before
    /// it, ÷ `target`, rounded up.
    fn replay(&self, from: usize, window: usize, target: f64) -> CandidateRun {
        self.replay_range(from, self.peaks.len(), window, target)
    }

    fn replay_range(&self, from: usize, to: usize, window: usize, target: f64) -> CandidateRun {
        let mut replayed = CandidateRun {
            held: 0.0,
            spill: 0.0,
            cost: 0.0,
        };
        let per_unit = 1.0 / target;
        for (index, &demand) in self.peaks.iter().enumerate().take(to).skip(from) {
            let held = self.peak(index - LAG_BUCKETS, window);
            let capacity = round_up(held * per_unit - 1e-9);
            replayed.held += held;
            replayed.cost += capacity;
            replayed.spill += (demand - capacity).max(0.0);
        }
        replayed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random sequence in [0, 1).
    fn noise(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn a_noisy_load_gets_a_longer_window_at_a_higher_target() {
        let mut next = noise(7);
        let peaks: Vec<f64> = (0..REPLAYED_BUCKETS)
            .map(|_| 40.0 + 30.0 * next())
            .collect();
        let tuned = choose(&peaks, 15, 0.7, true).expect("a longer window pays on noise");
        assert!(tuned.window_minutes > 15, "{tuned:?}");
        assert!(tuned.target > 0.7 && tuned.target <= 1.0, "{tuned:?}");
    }

    #[test]
    fn rare_bursts_get_a_shorter_window_at_a_lower_target() {
        // A burst every 8 hours, rising and falling over 25 minutes.
        const BURST: [f64; 5] = [60.0, 120.0, 240.0, 120.0, 60.0];
        let peaks: Vec<f64> = (0..REPLAYED_BUCKETS)
            .map(|bucket| BURST.get(bucket % 96).copied().unwrap_or(20.0))
            .collect();
        let tuned = choose(&peaks, 15, 0.7, true).expect("a short window pays on bursts");
        assert!(tuned.window_minutes < 15, "{tuned:?}");
        assert!(tuned.target < 0.7, "{tuned:?}");
    }

    #[test]
    fn less_than_a_day_or_no_spillover_keeps_the_configured_window() {
        let mut next = noise(3);
        let day: Vec<f64> = (0..MIN_BUCKETS).map(|_| 40.0 + 30.0 * next()).collect();
        assert_eq!(choose(&day, 15, 0.7, true), None);
        let steady = vec![40.0; REPLAYED_BUCKETS];
        assert_eq!(choose(&steady, 15, 0.7, true), None);
    }

    #[test]
    fn a_choice_costs_no_more_than_the_configured_pair() {
        for seed in 0..50 {
            let mut next = noise(seed);
            let level = 0.5 + 100.0 * next();
            let spread = next();
            let peaks: Vec<f64> = (0..REPLAYED_BUCKETS)
                .map(|_| level * (1.0 + spread * 4.0 * next().powi(3)))
                .collect();
            let warm_up = buckets_of(120) + LAG_BUCKETS - 1;
            let windows = WindowPeaks::new(&peaks, buckets_of(120));
            let configured = windows.replay(warm_up, buckets_of(15), 0.7);
            if let Some(tuned) = choose(&peaks, 15, 0.7, true) {
                let chosen =
                    windows.replay(warm_up, buckets_of(tuned.window_minutes), tuned.target);
                assert!(
                    chosen.cost <= configured.cost * (1.0 + MAX_EXTRA_COST),
                    "seed {seed}"
                );
                assert!(
                    chosen.spill <= configured.spill * (1.0 - MIN_GAIN),
                    "seed {seed}"
                );
                assert!(tuned.target <= 1.0, "seed {seed}");
            }
        }
    }

    #[test]
    fn a_window_peak_read_from_the_table_is_the_peak_of_its_buckets() {
        let mut next = noise(5);
        let peaks: Vec<f64> = (0..200).map(|_| next()).collect();
        let windows = WindowPeaks::new(&peaks, 72);
        for window in 1..=72 {
            for end in window - 1..peaks.len() {
                let expected = peaks[end + 1 - window..=end]
                    .iter()
                    .copied()
                    .fold(0.0, f64::max);
                assert_eq!(
                    windows.peak(end, window),
                    expected,
                    "window {window} at {end}"
                );
            }
        }
    }

    #[test]
    fn rounding_up_is_ceil_clamped_at_zero() {
        let mut next = noise(9);
        let values = (0..10_000).map(|_| (next() - 0.2) * 1_000.0);
        for value in values.chain([-1.0, -0.0, 0.0, 1.0, 2.5, 1e12, 3.0 - 1e-9]) {
            assert_eq!(round_up(value), value.ceil().max(0.0), "{value}");
        }
    }
}
