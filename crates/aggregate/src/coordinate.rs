//! Coordinate-wise order statistics: the median, the trimmed mean and Bulyan's second stage
//! are one kernel, [`trimmed`], which at every coordinate orders the values of a set of
//! inputs by (value, index), drops `k` from each end and averages the rest with
//! [`div_round`] in `i64`.
//!
//! The median is the case `k = ⌊(n − 1)/2⌋`: one middle value for odd `n`, the `div_round`
//! mean of the two middle values for even `n`. Since (value, index) keys are all distinct,
//! partial selection (`select_nth_unstable`) finds exactly the same kept set as a full sort;
//! the average depends only on the kept values, the report (which input was kept) on the
//! indices.

use crate::par::Par;
use crate::{InputReport, Outcome, div_round};

/// The sort key of value `v` of input `i`: ordering keys orders by (value, index).
/// `i < 2³²` since there are at most `MAX_INPUTS` inputs.
fn key(v: i32, i: usize) -> u64 {
    (u64::from(v.cast_unsigned() ^ 0x8000_0000) << 32) | i as u64
}

fn key_value(k: u64) -> i32 {
    ((k >> 32) as u32 ^ 0x8000_0000).cast_signed()
}

fn key_index(k: u64) -> usize {
    (k & 0xFFFF_FFFF) as usize
}

/// At every coordinate, over the inputs at `members` (distinct indices, `len > 2k`): drop
/// the `k` smallest and `k` largest by (value, index) and average the others with
/// [`div_round`]. Returns the aggregate and, per input index (`updates.len()` entries), the
/// number of coordinates at which it was kept.
pub(crate) fn trimmed(updates: &[&[i32]], members: &[usize], k: usize, par: Par) -> (Vec<i32>, Vec<u64>) {
    let len = updates.first().map_or(0, |u| u.len());
    let m = members.len();
    debug_assert!(m > 2 * k);
    let keep = m - 2 * k;
    let parts = par.map_ranges(len, m.max(1) * 8, 64, |range| {
        let mut keys = vec![0u64; m];
        let mut kept = vec![0u64; updates.len()];
        let mut out = Vec::with_capacity(range.len());
        for j in range {
            for (slot, &i) in keys.iter_mut().zip(members) {
                *slot = key(updates[i][j], i);
            }
            let middle: &[u64] = if k == 0 {
                &keys
            } else {
                // Ranks k..m−k: the k smallest go left of position k, then within the rest
                // the k largest go right of position keep − 1.
                keys.select_nth_unstable(k);
                let rest = &mut keys[k..];
                rest.select_nth_unstable(keep - 1);
                &rest[..keep]
            };
            let mut sum = 0i64;
            for &kk in middle {
                sum += i64::from(key_value(kk));
                kept[key_index(kk)] += 1;
            }
            // A mean of i32 values lies between them, so it fits i32.
            out.push(div_round(sum, keep as i64) as i32);
        }
        (out, kept)
    });
    let mut out = Vec::with_capacity(len);
    let mut kept = vec![0u64; updates.len()];
    for (o, kp) in parts {
        out.extend(o);
        for (a, b) in kept.iter_mut().zip(kp) {
            *a += b;
        }
    }
    (out, kept)
}

fn reports(kept: Vec<u64>, of: usize) -> Vec<InputReport> {
    kept.into_iter().map(|kept| InputReport::new(Outcome::Trimmed { kept, of: of as u64 }, None)).collect()
}

/// The coordinate-wise median values alone.
pub(crate) fn median_values(updates: &[&[i32]], par: Par) -> Vec<i32> {
    let all: Vec<usize> = (0..updates.len()).collect();
    trimmed(updates, &all, (updates.len() - 1) / 2, par).0
}

/// [`crate::Rule::Median`]; every input is reported `Trimmed` (kept where it was a middle
/// value).
pub(crate) fn median(updates: &[&[i32]], par: Par) -> (Vec<i32>, Vec<InputReport>) {
    let all: Vec<usize> = (0..updates.len()).collect();
    let (out, kept) = trimmed(updates, &all, (updates.len() - 1) / 2, par);
    let len = out.len();
    (out, reports(kept, len))
}

/// [`crate::Rule::TrimmedMean`] with `trim_ppm < 500 000`: `k = ⌊trim_ppm · n / 10⁶⌋`
/// from each side, so `n − 2k ≥ 1`.
pub(crate) fn trimmed_mean(updates: &[&[i32]], trim_ppm: u32, par: Par) -> (Vec<i32>, Vec<InputReport>) {
    let n = updates.len();
    // n ≤ 2²⁰ and trim_ppm < 2¹⁹: the product fits u64; k < n/2.
    let k = (u64::from(trim_ppm) * n as u64 / 1_000_000) as usize;
    let all: Vec<usize> = (0..n).collect();
    let (out, kept) = trimmed(updates, &all, k, par);
    let len = out.len();
    (out, reports(kept, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rule, aggregate, aggregate_with_report, mean};
    use proptest::prelude::*;

    fn trimmed_of(kept: &[u64], of: u64) -> Vec<InputReport> {
        kept.iter().map(|&kept| InputReport { outcome: Outcome::Trimmed { kept, of }, score: None }).collect()
    }

    #[test]
    fn keys_order_by_value_then_index() {
        let vals = [i32::MIN, -1, 0, 1, i32::MAX];
        for w in vals.windows(2) {
            assert!(key(w[0], 5) < key(w[1], 0));
        }
        assert!(key(3, 1) < key(3, 2));
        for &v in &vals {
            assert_eq!(key_value(key(v, 77)), v);
            assert_eq!(key_index(key(v, 77)), 77);
        }
    }

    #[test]
    fn median_odd_and_even_rounding() {
        // Odd: the middle value.
        assert_eq!(aggregate(Rule::Median, &[&[5, -1], &[1, -9], &[3, 100]]), Ok(vec![3, -1]));
        // Even: div_round of the two middle values, half away from zero.
        let a: [&[i32]; 2] = [&[1, -1, 1, -1, 7], &[2, -2, 4, -4, 7]];
        assert_eq!(aggregate(Rule::Median, &a), Ok(vec![2, -2, 3, -3, 7]));
        let b: [&[i32]; 4] = [&[10], &[0], &[3], &[4]];
        assert_eq!(aggregate(Rule::Median, &b), Ok(vec![4])); // (3 + 4) / 2 = 3.5 → 4
        let c: [&[i32]; 4] = [&[-10], &[0], &[-3], &[-4]];
        assert_eq!(aggregate(Rule::Median, &c), Ok(vec![-4])); // −3.5 → −4
        // Extremes do not overflow (the pair is summed in i64).
        let e: [&[i32]; 2] = [&[i32::MAX, i32::MIN], &[i32::MAX, i32::MIN]];
        assert_eq!(aggregate(Rule::Median, &e), Ok(vec![i32::MAX, i32::MIN]));
    }

    #[test]
    fn median_reports_the_middle_inputs_ties_to_lower_index() {
        // All equal: ordered by index, so the middle index is the one kept.
        let (out, rep) = aggregate_with_report(Rule::Median, &[&[7, 1], &[7, 2], &[7, 3]]).expect("median");
        assert_eq!(out, vec![7, 2]);
        assert_eq!(rep, trimmed_of(&[0, 2, 0], 2));
        // Even n: both middle inputs; with ties the lower indices fill the lower ranks.
        let (out, rep) = aggregate_with_report(Rule::Median, &[&[5], &[5], &[5], &[1]]).expect("median");
        assert_eq!(out, vec![5]);
        // Order: (1,#3) (5,#0) (5,#1) (5,#2) → middle #0 and #1.
        assert_eq!(rep, trimmed_of(&[1, 1, 0, 0], 1));
    }

    #[test]
    fn trimmed_mean_known_values() {
        // n = 5, β = 0.2: k = 1 from each side.
        let u: [&[i32]; 5] = [&[1, 0], &[100, 0], &[2, 0], &[3, 1], &[-50, 1]];
        let (out, rep) = aggregate_with_report(Rule::TrimmedMean { trim_ppm: 200_000 }, &u).expect("tm");
        // Coordinate 0: drop −50 and 100, mean(1, 2, 3) = 2. Coordinate 1: order (0,#0) (0,#1)
        // (0,#2) (1,#3) (1,#4), drop #0 and #4, mean(0, 0, 1) = 0.33 → 0.
        assert_eq!(out, vec![2, 0]);
        assert_eq!(rep, trimmed_of(&[1, 1, 2, 2, 0], 2));
        // β just below 0.2 at n = 5: k = ⌊0.999995⌋ = 0, the plain mean.
        assert_eq!(aggregate(Rule::TrimmedMean { trim_ppm: 199_999 }, &u), mean(&u));
        // Rounding half away from zero: mean(−1, −2) = −1.5 → −2 once k = 1 of 4 is trimmed.
        let v: [&[i32]; 4] = [&[-100], &[-1], &[-2], &[100]];
        assert_eq!(aggregate(Rule::TrimmedMean { trim_ppm: 250_000 }, &v), Ok(vec![-2]));
        // β = 0.499999 on n = 4 keeps 4 − 2·1 = 2 values (k = ⌊1.999996⌋ = 1).
        assert_eq!(aggregate(Rule::TrimmedMean { trim_ppm: 499_999 }, &v), Ok(vec![-2]));
    }

    #[test]
    fn trimmed_mean_ties_drop_lower_indices_first() {
        let u: [&[i32]; 5] = [&[7], &[7], &[7], &[7], &[7]];
        let (out, rep) = aggregate_with_report(Rule::TrimmedMean { trim_ppm: 200_000 }, &u).expect("tm");
        assert_eq!(out, vec![7]);
        assert_eq!(rep, trimmed_of(&[0, 1, 1, 1, 0], 1));
    }

    proptest! {
        #[test]
        fn trimmed_mean_with_zero_beta_is_the_mean(rows in proptest::collection::vec(proptest::collection::vec(any::<i32>(), 6), 1..15)) {
            let refs: Vec<&[i32]> = rows.iter().map(|r| r.as_slice()).collect();
            prop_assert_eq!(aggregate(Rule::TrimmedMean { trim_ppm: 0 }, &refs), mean(&refs));
        }

        /// Matches a full sort by (value, index) at every coordinate.
        #[test]
        fn matches_sorting(rows in proptest::collection::vec(proptest::collection::vec(-5i32..5, 4), 1..15), ppm in 0u32..500_000) {
            let refs: Vec<&[i32]> = rows.iter().map(|r| r.as_slice()).collect();
            let n = refs.len();
            let k = (u64::from(ppm) * n as u64 / 1_000_000) as usize;
            let (out, rep) = aggregate_with_report(Rule::TrimmedMean { trim_ppm: ppm }, &refs).expect("valid");
            let mut kept = vec![0u64; n];
            for j in 0..4 {
                let mut col: Vec<(i32, usize)> = (0..n).map(|i| (refs[i][j], i)).collect();
                col.sort();
                let mid = &col[k..n - k];
                let s: i64 = mid.iter().map(|&(v, _)| i64::from(v)).sum();
                prop_assert_eq!(i64::from(out[j]), div_round(s, mid.len() as i64));
                mid.iter().for_each(|&(_, i)| kept[i] += 1);
            }
            prop_assert_eq!(rep, trimmed_of(&kept, 4));
        }

        /// The output values depend only on the multiset of values at each coordinate, so
        /// they are invariant under any permutation of the inputs (ties included); only the
        /// report follows the indices.
        #[test]
        fn output_is_permutation_invariant(rows in proptest::collection::vec(proptest::collection::vec(-3i32..3, 5), 1..12), seed in any::<u64>(), ppm in 0u32..500_000) {
            let refs: Vec<&[i32]> = rows.iter().map(|r| r.as_slice()).collect();
            let perm = crate::robustness_tests::permutation(refs.len(), seed);
            let permuted: Vec<&[i32]> = perm.iter().map(|&p| refs[p]).collect();
            for rule in [Rule::Median, Rule::TrimmedMean { trim_ppm: ppm }] {
                prop_assert_eq!(aggregate(rule, &refs), aggregate(rule, &permuted));
            }
        }
    }
}
