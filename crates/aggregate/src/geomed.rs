//! The geometric median by Weiszfeld's algorithm in fixed point, all integer.
//!
//! `z₀` is the coordinate-wise [`div_round`](crate::div_round) mean. Each of the `iterations`
//! rounds (no early stop, so the work is fixed):
//!
//! * `dist_i = max(1, ⌊√‖x_i − z‖²⌋)` — exact `u128` squared norm, exact integer square root;
//! * `w_i = max(1, ⌊2⁴⁰ / dist_i⌋)`;
//! * `z_j = round(Σ_i w_i·x_ij / Σ_i w_i)`, half away from zero, in `i128`.
//!
//! Bounds: `w_i ≤ 2⁴⁰`, `|x_ij| ≤ 2³¹` and `n ≤ 2²⁰` give `|Σ w_i·x_ij| ≤ 2⁹¹` and
//! `Σ w_i ≤ 2⁶⁰`; the weighted mean of integers lies between the smallest and largest of
//! them, so it fits `i32`. A point at distance 0 gets the largest weight 2⁴⁰, which is how
//! the iteration settles on an input point instead of dividing by zero.

use crate::arith::{div_round_i128, isqrt, narrow};
use crate::distance::{Kernel, distances_to};
use crate::par::Par;
use crate::{InputReport, Outcome, mean_of};

/// The weight numerator: 2⁴⁰.
const WEIGHT_ONE: u128 = 1 << 40;
/// Coordinates per accumulator tile of the weighted sum.
const TILE: usize = 1024;

/// Weiszfeld weights for the squared distances `d2`.
fn weights(d2: &[u128]) -> Vec<u128> {
    d2.iter().map(|&d| (WEIGHT_ONE / isqrt(d).max(1)).max(1)).collect()
}

/// `round(Σ_i w_i·x_ij / Σ_i w_i)` at every coordinate.
fn weighted_mean(updates: &[&[i32]], w: &[u128], par: Par) -> Vec<i32> {
    let len = updates.first().map_or(0, |u| u.len());
    // Each w_i ≤ 2⁴⁰ fits i64 (and Σ w_i ≤ 2⁶⁰ fits i128).
    let wi: Vec<i64> = w.iter().map(|&x| i64::try_from(x).unwrap_or(i64::MAX)).collect();
    let total: i128 = wi.iter().map(|&x| i128::from(x)).sum();
    let parts = par.map_ranges(len, updates.len().max(1) * 4, TILE, |range| {
        let mut out = Vec::with_capacity(range.len());
        let mut acc = vec![0i128; TILE];
        let mut start = range.start;
        while start < range.end {
            let end = start.saturating_add(TILE).min(range.end);
            let acc = &mut acc[..end - start];
            acc.fill(0);
            for (u, &w) in updates.iter().zip(&wi) {
                for (a, &x) in acc.iter_mut().zip(&u[start..end]) {
                    *a += i128::from(w) * i128::from(x);
                }
            }
            out.extend(acc.iter().map(|&s| narrow(div_round_i128(s, total))));
            start = end;
        }
        out
    });
    parts.concat()
}

/// [`crate::Rule::GeometricMedian`] with `1 ≤ iterations ≤ 100`. Each input is reported
/// `Weighted` with its share of the last round's weights, `round(10⁶·w_i / Σw)` (half up).
pub(crate) fn geometric_median(updates: &[&[i32]], iterations: u32, par: Par) -> (Vec<i32>, Vec<InputReport>) {
    let n = updates.len();
    let all: Vec<usize> = (0..n).collect();
    let mut z = mean_of(updates, &all);
    // z stays within the inputs' range, so the inputs' bound covers it.
    let kernel = Kernel::of(updates);
    let mut w = vec![1u128; n];
    for _ in 0..iterations {
        w = weights(&distances_to(updates, &z, kernel, par));
        z = weighted_mean(updates, &w, par);
    }
    let total: u128 = w.iter().sum();
    let report = w
        .iter()
        .map(|&wi| {
            let ppm = (wi * 1_000_000 + total / 2) / total;
            InputReport::new(Outcome::Weighted { ppm: u32::try_from(ppm).unwrap_or(u32::MAX) }, None)
        })
        .collect();
    (z, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rule, aggregate, aggregate_with_report};
    use proptest::prelude::*;

    fn refs(rows: &[Vec<i32>]) -> Vec<&[i32]> {
        rows.iter().map(|r| r.as_slice()).collect()
    }

    fn ppm(rep: &[InputReport]) -> Vec<u32> {
        rep.iter()
            .map(|r| match r.outcome {
                Outcome::Weighted { ppm } => ppm,
                o => panic!("unexpected {o:?}"),
            })
            .collect()
    }

    #[test]
    fn one_iteration_by_hand() {
        // 1-D 0, 3, 9: z₀ = 4; distances 4, 1, 5; weights 2³⁸, 2⁴⁰, ⌊2⁴⁰/5⌋ = 219902325555.
        // Σw = 1594291860275, Σw·x = 3·2⁴⁰ + 9·219902325555 = 5277655813323,
        // z₁ = 3.3103… → 3.
        let rows = vec![vec![0], vec![3], vec![9]];
        let (out, rep) = aggregate_with_report(Rule::GeometricMedian { iterations: 1 }, &refs(&rows)).expect("gm");
        assert_eq!(out, vec![3]);
        // Shares: 2³⁸/Σw = 0.172414…, 2⁴⁰/Σw = 0.689655…, the rest 0.137931….
        assert_eq!(ppm(&rep), vec![172_414, 689_655, 137_931]);
        // Next round from z = 3: #1 at distance 0 weighs 2⁴⁰, #0 2⁴⁰/3, #2 2⁴⁰/6, and
        // (2⁴⁰·3 + ⌊2⁴⁰/6⌋·9) / (2⁴⁰ + ⌊2⁴⁰/3⌋ + ⌊2⁴⁰/6⌋) = 3.
        assert_eq!(aggregate(Rule::GeometricMedian { iterations: 2 }, &refs(&rows)), Ok(vec![3]));
    }

    #[test]
    fn symmetric_pair_stays_at_the_midpoint() {
        let rows = vec![vec![0, -10], vec![4, 10]];
        let (out, rep) = aggregate_with_report(Rule::GeometricMedian { iterations: 5 }, &refs(&rows)).expect("gm");
        assert_eq!(out, vec![2, 0]);
        assert_eq!(ppm(&rep), vec![500_000, 500_000]);
    }

    #[test]
    fn identical_points() {
        let rows = vec![vec![7, -3, i32::MAX, i32::MIN]; 5];
        let (out, rep) = aggregate_with_report(Rule::GeometricMedian { iterations: 3 }, &refs(&rows)).expect("gm");
        assert_eq!(out, rows[0]);
        assert_eq!(ppm(&rep), vec![200_000; 5]);
    }

    #[test]
    fn collinear_odd_count_converges_to_the_middle_point() {
        // On the line y = 2x the geometric median of an odd number of points is the middle
        // one, however far the outlier. At a fixed-point scale (here 1000 units per step)
        // the iteration lands on it exactly.
        let line = |s: i32| -> Vec<Vec<i32>> {
            [0, 1, 2, 3, 1000].iter().map(|&t| vec![t * s, 2 * t * s]).collect()
        };
        let rows = line(1000);
        let (out, rep) = aggregate_with_report(Rule::GeometricMedian { iterations: 20 }, &refs(&rows)).expect("gm");
        assert_eq!(out, vec![2000, 4000]);
        // The middle point carries almost all the weight, the outlier almost none.
        assert_eq!(ppm(&rep), vec![223, 447, 998_883, 447, 0]);
        // At unit scale distances are resolved only to whole units (⌊√2⌋ = 1 = the clamp),
        // so the iteration may stop a unit away from the middle point.
        let out = aggregate(Rule::GeometricMedian { iterations: 20 }, &refs(&line(1))).expect("gm");
        assert!(out[0].abs_diff(2) <= 1 && out[1].abs_diff(4) <= 1, "{out:?}");
        // Three points: the middle one again.
        let rows = vec![vec![-5000, 5000, 1], vec![0, 0, 1], vec![100_000, -100_000, 1]];
        let out = aggregate(Rule::GeometricMedian { iterations: 30 }, &refs(&rows)).expect("gm");
        assert_eq!(out, vec![0, 0, 1]);
    }

    #[test]
    fn collinear_even_count_lands_on_the_middle_segment() {
        // Any point of the middle segment is a geometric median; the iteration ends on it,
        // within a unit of rounding — here between (2000, 4000) and (3000, 6000).
        let rows = vec![vec![0, 0], vec![2000, 4000], vec![3000, 6000], vec![1_000_000, 2_000_000]];
        let out = aggregate(Rule::GeometricMedian { iterations: 50 }, &refs(&rows)).expect("gm");
        assert!((2000..=3000).contains(&out[0]), "{out:?}");
        assert!((2 * out[0] - out[1]).abs() <= 2, "{out:?} is off the line y = 2x");
    }

    #[test]
    fn ppm_shares_sum_to_a_million() {
        let rows: Vec<Vec<i32>> = (0..9).map(|i| vec![i * i * 37 - 100, 5 - i * 11]).collect();
        let (_, rep) = aggregate_with_report(Rule::GeometricMedian { iterations: 10 }, &refs(&rows)).expect("gm");
        let sum: u64 = ppm(&rep).iter().map(|&p| u64::from(p)).sum();
        assert!(sum.abs_diff(1_000_000) <= 9, "{sum}");
    }

    proptest! {
        /// Every coordinate of the result lies within the inputs' range there (a weighted
        /// mean with positive weights, rounded to an integer between integer bounds).
        #[test]
        fn stays_in_the_bounding_box(rows in proptest::collection::vec(proptest::collection::vec(any::<i32>(), 3), 1..10), it in 1u32..6) {
            let r = refs(&rows);
            let out = aggregate(Rule::GeometricMedian { iterations: it }, &r).expect("gm");
            for j in 0..3 {
                let lo = r.iter().map(|u| u[j]).min().unwrap_or(0);
                let hi = r.iter().map(|u| u[j]).max().unwrap_or(0);
                prop_assert!(lo <= out[j] && out[j] <= hi);
            }
        }
    }
}
