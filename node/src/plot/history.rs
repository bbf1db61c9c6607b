//! `learnchain devnet --plot`: what a devnet run looked like, height by height. The devnet
//! hands in the observer's test accuracy and loss of the canonical chain's model at each
//! height of the run, and every data source's privacy ledger; this module works out the ε
//! each source had spent by each height and builds the [`Chart`]: test accuracy (and loss)
//! on the left axis, ε spent on the right, against height.
//!
//! "ε spent by height h" is the spend of the updates a source released for blocks 1 to h
//! (the ledger rounds numbered ≤ h, retraining after a reorg included), computed by the
//! source's own accountant at its `δ` — so the last point is a round short of the
//! summary's `epsilon_spent_max`, which also counts the update trained on the final head.

use std::collections::{BTreeMap, HashMap};

use learnchain_privacy::{Accountant, RoundParams};

use super::chart::{Axis, Chart, Series, XAxis};

/// The test metrics of the canonical model at one height.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeightMetrics {
    /// The block height.
    pub height: u64,
    /// Test accuracy in `[0, 1]` (`None` when it could not be evaluated).
    pub accuracy: Option<f64>,
    /// Mean test cross-entropy.
    pub loss: Option<f64>,
}

/// A data source's privacy ledger, as the devnet read it at the end of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceLedger {
    /// Every round it released an update for.
    pub rounds: Vec<RoundParams>,
    /// The accountant it gates with.
    pub accountant: Accountant,
    /// Its `δ`.
    pub delta: f64,
}

/// A devnet run, ready to plot.
#[derive(Clone, Debug, PartialEq)]
pub struct RunHistory {
    /// The chart's title.
    pub title: String,
    /// Metrics by height, ascending.
    pub heights: Vec<HeightMetrics>,
    /// `(height, ε)`: the largest ε spent by any data source by that height.
    pub epsilon_max: Vec<(u64, f64)>,
    /// How many data sources `epsilon_max` is over.
    pub sources: usize,
    /// The data sources' ε budget.
    pub epsilon_budget: f64,
    /// `δ` of the accounting.
    pub delta: f64,
}

/// The highest the left axis goes for the loss (ln 10 ≈ 2.3 is a 10-class model's loss
/// at the start).
const LOSS_CAP: f64 = 3.0;

/// Heights at which ε is computed at most (evenly spread, first and last included): each
/// is an accountant run per distinct history (about 20–40 ms with PLD).
pub const MAX_EPSILON_POINTS: usize = 200;

/// The heights of `heights` at which to compute ε: all of them, or
/// [`MAX_EPSILON_POINTS`] spread evenly.
pub fn epsilon_heights(heights: &[u64]) -> Vec<u64> {
    if heights.len() <= MAX_EPSILON_POINTS {
        return heights.to_vec();
    }
    let last = heights.len() - 1;
    let mut picked: Vec<u64> = (0..MAX_EPSILON_POINTS).map(|i| heights[i * last / (MAX_EPSILON_POINTS - 1)]).collect();
    picked.dedup();
    picked
}

/// The history of one ledger's rounds up to a height, grouped as the accountants compose
/// it: total steps per (q, σ), with the accountant and δ.
type HistoryKey = (Accountant, u64, Vec<(u64, u64, u64)>);

/// For each of `heights` (ascending), the largest ε spent by any of `ledgers` on the rounds
/// numbered at most that height (`None` when no source has a finite bound there). Equal
/// histories are computed once.
pub fn epsilon_max_by_height(ledgers: &[SourceLedger], heights: &[u64]) -> Vec<Option<f64>> {
    let mut memo: HashMap<HistoryKey, Option<f64>> = HashMap::new();
    let mut best: Vec<Option<f64>> = vec![None; heights.len()];
    for ledger in ledgers {
        let mut rounds = ledger.rounds.clone();
        rounds.sort_by_key(|r| r.round);
        let mut groups: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        let mut next = 0;
        for (i, h) in heights.iter().enumerate() {
            while next < rounds.len() && rounds[next].round <= *h {
                let r = &rounds[next];
                *groups.entry((r.q.to_bits(), r.sigma.to_bits())).or_insert(0) += r.steps;
                next += 1;
            }
            let key: HistoryKey =
                (ledger.accountant, ledger.delta.to_bits(), groups.iter().map(|(&(q, s), &t)| (q, s, t)).collect());
            let eps = *memo.entry(key).or_insert_with(|| {
                if groups.is_empty() {
                    return Some(0.0);
                }
                // One round per (q, σ) with the group's steps composes the same history.
                let grouped: Vec<RoundParams> = groups
                    .iter()
                    .map(|(&(q, s), &steps)| RoundParams { round: 0, q: f64::from_bits(q), sigma: f64::from_bits(s), steps })
                    .collect();
                ledger
                    .accountant
                    .epsilon_of_rounds(&grouped, ledger.delta)
                    .ok()
                    .map(|g| g.epsilon)
                    .filter(|e| e.is_finite())
            });
            if let Some(e) = eps {
                best[i] = Some(best[i].map_or(e, |b: f64| b.max(e)));
            }
        }
    }
    best
}

/// The chart of a run: test accuracy (and loss, dashed) on the left axis, the data
/// sources' largest ε spent and their budget (dashed) on the right, against height.
pub fn devnet_chart(run: &RunHistory) -> Chart {
    let at = |f: fn(&HeightMetrics) -> Option<f64>| -> Vec<(f64, f64)> {
        run.heights.iter().map(|m| (m.height as f64, f(m).unwrap_or(f64::NAN))).collect()
    };
    let accuracy = at(|m| m.accuracy);
    let mut loss = at(|m| m.loss);
    let loss_max = loss.iter().map(|(_, l)| *l).filter(|l| l.is_finite()).fold(0.0, f64::max);
    // Accuracy's [0, 1], stretched in halves when the loss is above it, but never past
    // LOSS_CAP: a diverging model (an attack that wins) would flatten accuracy to nothing.
    let left_top = if loss_max > 1.0 { ((loss_max.min(LOSS_CAP)) * 2.0).ceil() / 2.0 } else { 1.0 };
    let mut series = vec![Series::new("test accuracy", accuracy)];
    if loss.iter().any(|(_, l)| l.is_finite()) {
        let name = if loss_max > left_top {
            for p in &mut loss {
                if p.1 > left_top {
                    p.1 = f64::NAN;
                }
            }
            format!("test loss (cross-entropy; above {left_top} not drawn)")
        } else {
            "test loss (cross-entropy)".to_owned()
        };
        series.push(Series::new(name, loss).dashed());
    }
    let eps: Vec<(f64, f64)> = run.epsilon_max.iter().map(|(h, e)| (*h as f64, *e)).collect();
    let sources = if run.sources == 1 { "1 data source".to_owned() } else { format!("{} data sources", run.sources) };
    series.push(Series::new(format!("ε spent (max over {sources})"), eps).on_right());
    let span = match (run.heights.first(), run.heights.last()) {
        (Some(a), Some(b)) => vec![(a.height as f64, run.epsilon_budget), (b.height as f64, run.epsilon_budget)],
        _ => Vec::new(),
    };
    if run.epsilon_budget.is_finite() {
        series.push(Series::new("ε budget", span).on_right().dashed());
    }
    let eps_top = run.epsilon_max.iter().map(|(_, e)| *e).fold(run.epsilon_budget, f64::max);
    // A little headroom, so the budget line is not drawn on the frame.
    let eps_top = if eps_top.is_finite() && eps_top > 0.0 { eps_top * 1.05 } else { 1.0 };
    Chart {
        title: run.title.clone(),
        x: XAxis::Numeric(Axis::linear("height")),
        y: Axis::fixed(if left_top > 1.0 { "test accuracy, loss" } else { "test accuracy" }, 0.0, left_top),
        y2: Some(Axis { label: format!("ε spent (δ = {:e})", run.delta), range: Some((0.0, nice_top(eps_top))), scale: super::chart::Scale::Linear }),
        series,
    }
}

/// `v` rounded up to a tick of [`super::ticks::linear`] over `[0, v]`.
fn nice_top(v: f64) -> f64 {
    super::ticks::linear(0.0, v, 5).hi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(round: u64) -> RoundParams {
        RoundParams { round, q: 0.2, sigma: 1.5, steps: 10 }
    }

    #[test]
    fn epsilon_grows_with_the_rounds_up_to_each_height() {
        let a = SourceLedger { rounds: (1..=4).map(round).collect(), accountant: Accountant::Rdp, delta: 1e-5 };
        // A second source that missed round 2 (stopped, or joined late).
        let b = SourceLedger { rounds: vec![round(1), round(3)], accountant: Accountant::Rdp, delta: 1e-5 };
        let eps = epsilon_max_by_height(&[b, a.clone()], &[0, 1, 2, 3, 4]);
        assert_eq!(eps[0], Some(0.0));
        let vals: Vec<f64> = eps.iter().map(|e| e.expect("finite")).collect();
        assert!(vals.windows(2).all(|w| w[0] < w[1]), "{vals:?}");
        // The max is the source with every round: the accountant's ε for 40 steps.
        let direct = Accountant::Rdp.epsilon(0.2, 1.5, 40, 1e-5).expect("ε").epsilon;
        assert!((vals[4] - direct).abs() < 1e-9, "{} vs {direct}", vals[4]);
        // A retrained round (after a reorg) is charged again.
        let mut again = a;
        again.rounds.push(round(4));
        let more = epsilon_max_by_height(&[again], &[4]);
        assert!(more[0].expect("finite") > vals[4]);
    }

    #[test]
    fn no_sources_no_epsilon() {
        assert_eq!(epsilon_max_by_height(&[], &[0, 1]), vec![None, None]);
    }

    #[test]
    fn long_runs_compute_epsilon_at_spread_heights() {
        let heights: Vec<u64> = (0..1000).collect();
        let picked = epsilon_heights(&heights);
        assert_eq!(picked.len(), MAX_EPSILON_POINTS);
        assert_eq!((picked[0], picked[picked.len() - 1]), (0, 999));
        assert_eq!(epsilon_heights(&heights[..10]), heights[..10].to_vec());
    }

    #[test]
    fn the_chart_puts_accuracy_left_and_epsilon_right() {
        let run = RunHistory {
            title: "devnet".into(),
            heights: (0..4).map(|h| HeightMetrics { height: h, accuracy: Some(0.5 + h as f64 / 10.0), loss: Some(0.6) }).collect(),
            epsilon_max: (0..4).map(|h| (h, h as f64 * 0.4)).collect(),
            sources: 4,
            epsilon_budget: 2.0,
            delta: 1e-5,
        };
        let c = devnet_chart(&run);
        assert_eq!(c.y.range, Some((0.0, 1.0)));
        let names: Vec<&str> = c.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["test accuracy", "test loss (cross-entropy)", "ε spent (max over 4 data sources)", "ε budget"]);
        assert_eq!(c.series[0].points.len(), 4);
        assert_eq!(c.series[2].side, crate::plot::chart::Side::Right);
        assert!(c.y2.as_ref().and_then(|a| a.range).is_some_and(|(_, hi)| hi >= 2.0));
        // A loss above 1 stretches the left axis.
        let mut lossy = run;
        lossy.heights[0].loss = Some(2.2);
        assert_eq!(devnet_chart(&lossy).y.range, Some((0.0, 2.5)));
        // A diverging loss does not flatten accuracy: the axis stops at 3, and the loss
        // above it is left out, as its legend says.
        lossy.heights[1].loss = Some(45.0);
        let c = devnet_chart(&lossy);
        assert_eq!(c.y.range, Some((0.0, LOSS_CAP)));
        assert!(c.series[1].points[1].1.is_nan());
        assert_eq!(c.series[1].points[0].1, 2.2);
        assert_eq!(c.series[1].name, "test loss (cross-entropy; above 3 not drawn)");
    }
}
