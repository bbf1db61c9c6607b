//! The distance-score rules: Krum, Multi-Krum and Bulyan (whose first stage is iterated
//! Krum). All three compute the pairwise squared-distance matrix once
//! ([`Pairwise`]) and score inputs from it.
//!
//! The Krum score of input `i` within a set `S` of `r` inputs, for neighbour count `k`, is the
//! sum of the `k` smallest `‖x_i − x_j‖²` over `j ∈ S, j ≠ i` — a sum of the `k` smallest
//! values, which does not depend on how equal distances are ordered. For Krum and
//! Multi-Krum `S` is every input and `k = n − f − 2 ≥ f + 1`. The lowest score wins, ties to
//! the lower index.

use crate::coordinate::trimmed;
use crate::distance::Pairwise;
use crate::par::Par;
use crate::{InputReport, Outcome, mean_of};

/// Krum scores of the inputs `members` (in that order) within the set `members`, each the
/// sum of its `k` smallest distances to the others (`k < members.len()`).
fn scores(dist: &Pairwise, members: &[usize], k: usize) -> Vec<u128> {
    let mut buf = Vec::with_capacity(members.len());
    members
        .iter()
        .map(|&i| {
            buf.clear();
            buf.extend(members.iter().filter(|&&j| j != i).map(|&j| dist.get(i, j)));
            if k == 0 {
                return 0;
            }
            if k < buf.len() {
                buf.select_nth_unstable(k - 1);
            }
            // Within u128: a distance is below 2⁶⁴·len and n·len·4 bytes fit in memory.
            buf[..k.min(buf.len())].iter().sum()
        })
        .collect()
}

/// Positions `0..scores.len()` ordered by (score, position).
fn ranked(scores: &[u128]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by_key(|&i| (scores[i], i));
    order
}

/// All Krum scores with parameter `f` over all inputs (`n ≥ 2f + 3`).
pub(crate) fn krum_scores(updates: &[&[i32]], f: usize, par: Par) -> Vec<u128> {
    let n = updates.len();
    let dist = Pairwise::new(updates, par);
    let all: Vec<usize> = (0..n).collect();
    scores(&dist, &all, n - f - 2)
}

/// [`crate::Rule::Krum`]: the input with the lowest score (ties → lower index), copied. Every
/// input's score is reported; the winner is `Selected`, the others `Rejected`.
pub(crate) fn krum(updates: &[&[i32]], f: usize, par: Par) -> (Vec<i32>, Vec<InputReport>) {
    let sc = krum_scores(updates, f, par);
    let winner = ranked(&sc)[0];
    let report = sc
        .iter()
        .enumerate()
        .map(|(i, &s)| InputReport::new(if i == winner { Outcome::Selected } else { Outcome::Rejected }, Some(s)))
        .collect();
    (updates[winner].to_vec(), report)
}

/// [`crate::Rule::MultiKrum`]: the [`div_round`](crate::div_round) mean of the `m` inputs
/// with the lowest scores (ties → lower index), `1 ≤ m ≤ n`.
pub(crate) fn multi_krum(updates: &[&[i32]], f: usize, m: usize, par: Par) -> (Vec<i32>, Vec<InputReport>) {
    let sc = krum_scores(updates, f, par);
    let chosen = &ranked(&sc)[..m];
    let mut report: Vec<InputReport> = sc.iter().map(|&s| InputReport::new(Outcome::Rejected, Some(s))).collect();
    for &i in chosen {
        report[i].outcome = Outcome::Selected;
    }
    (mean_of(updates, chosen), report)
}

/// Bulyan's first stage: `θ = n − 2f` rounds of Krum on the remaining inputs. Returns the
/// chosen inputs in the order chosen, with the score each had in its round, and whether
/// every round's lowest score was unique (no tie had to be broken by index).
///
/// In a round with `r` inputs left the neighbour count is `k = max(r − f − 2, 1)` (at most
/// `r − 1`): Krum's own `r − f − 2` while the remaining set still meets Krum's precondition
/// `r ≥ 2f + 3`, and at least one neighbour in the last rounds, where `r` falls to `2f + 1`
/// (so the winner is still the input with the nearest neighbours rather than merely the
/// lowest index). Scores are recomputed each round from the shared distance matrix.
pub(crate) fn bulyan_select(dist: &Pairwise, n: usize, f: usize) -> (Vec<(usize, u128)>, bool) {
    let theta = n - 2 * f;
    let mut remaining: Vec<usize> = (0..n).collect();
    let mut chosen = Vec::with_capacity(theta);
    let mut tie_free = true;
    for _ in 0..theta {
        let r = remaining.len();
        let k = r.saturating_sub(f + 2).max(1).min(r - 1);
        let sc = scores(dist, &remaining, k);
        // `remaining` is in increasing index order, so the first position is the lower index.
        let order = ranked(&sc);
        let pos = order[0];
        tie_free &= order.get(1).is_none_or(|&p| sc[p] != sc[pos]);
        chosen.push((remaining.remove(pos), sc[pos]));
    }
    (chosen, tie_free)
}

/// [`crate::Rule::Bulyan`] with `n ≥ 4f + 3`: iterated Krum chooses `θ = n − 2f` inputs, then
/// at each coordinate the θ chosen values, ordered by (value, index), lose `f` from each end
/// and the other `θ − 2f ≥ 3` are averaged with [`div_round`](crate::div_round). Chosen
/// inputs are reported `Trimmed` with the score of the round that chose them, the others
/// `Rejected` with no score.
pub(crate) fn bulyan(updates: &[&[i32]], f: usize, par: Par) -> (Vec<i32>, Vec<InputReport>) {
    let n = updates.len();
    let dist = Pairwise::new(updates, par);
    let (chosen, _) = bulyan_select(&dist, n, f);
    let members: Vec<usize> = chosen.iter().map(|&(i, _)| i).collect();
    let (out, kept) = trimmed(updates, &members, f, par);
    let mut report = vec![InputReport::new(Outcome::Rejected, None); n];
    for &(i, s) in &chosen {
        report[i] = InputReport::new(Outcome::Trimmed { kept: kept[i], of: out.len() as u64 }, Some(s));
    }
    (out, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rule, aggregate, aggregate_with_report, mean};
    use proptest::prelude::*;

    fn one_d(values: &[i32]) -> Vec<Vec<i32>> {
        values.iter().map(|&v| vec![v]).collect()
    }

    fn refs(rows: &[Vec<i32>]) -> Vec<&[i32]> {
        rows.iter().map(|r| r.as_slice()).collect()
    }

    #[test]
    fn krum_known_values_and_tie() {
        // 1-D points 0, 1, 2, 3, 100 with f = 1: k = 5 − 1 − 2 = 2 neighbours.
        // score(0) = 1 + 4 = 5, score(1) = 1 + 1 = 2, score(2) = 1 + 1 = 2,
        // score(3) = 1 + 4 = 5, score(4) = 97² + 98² = 19013. #1 and #2 tie → #1.
        let rows = one_d(&[0, 1, 2, 3, 100]);
        let (out, rep) = aggregate_with_report(Rule::Krum { f: 1 }, &refs(&rows)).expect("krum");
        assert_eq!(out, vec![1]);
        let scores: Vec<Option<u128>> = rep.iter().map(|r| r.score).collect();
        assert_eq!(scores, vec![Some(5), Some(2), Some(2), Some(5), Some(19013)]);
        let outcomes: Vec<Outcome> = rep.iter().map(|r| r.outcome).collect();
        use Outcome::{Rejected as R, Selected as S};
        assert_eq!(outcomes, vec![R, S, R, R, R]);
    }

    #[test]
    fn krum_in_two_dimensions() {
        // A unit square and a far point, f = 1, k = 2: each corner has two neighbours at
        // distance 1 (score 2), the far point (10, 10) at 9² + 9² = 162 and 9² + 10² = 181
        // (score 343). All corners tie; the lowest index wins.
        let rows = vec![vec![10, 10], vec![1, 1], vec![0, 0], vec![1, 0], vec![0, 1]];
        let (out, rep) = aggregate_with_report(Rule::Krum { f: 1 }, &refs(&rows)).expect("krum");
        assert_eq!(out, vec![1, 1]);
        assert_eq!(rep[0].score, Some(343));
        assert!(rep[1..].iter().all(|r| r.score == Some(2)));
    }

    #[test]
    fn identical_inputs_pick_the_first() {
        let rows = vec![vec![4, -4]; 7];
        let (out, rep) = aggregate_with_report(Rule::Krum { f: 2 }, &refs(&rows)).expect("krum");
        assert_eq!(out, vec![4, -4]);
        assert_eq!(rep[0].outcome, Outcome::Selected);
        assert!(rep.iter().all(|r| r.score == Some(0)));
    }

    #[test]
    fn multi_krum_known_values() {
        // Scores as in `krum_known_values_and_tie`: order #1 #2 #0 #3 #4 (5 = 5 → #0 first).
        let rows = one_d(&[0, 1, 2, 3, 100]);
        let r = refs(&rows);
        assert_eq!(aggregate(Rule::MultiKrum { f: 1, m: 1 }, &r), Ok(vec![1]));
        assert_eq!(aggregate(Rule::MultiKrum { f: 1, m: 2 }, &r), Ok(vec![2])); // 1.5 → 2
        assert_eq!(aggregate(Rule::MultiKrum { f: 1, m: 3 }, &r), Ok(vec![1])); // (1+2+0)/3
        assert_eq!(aggregate(Rule::MultiKrum { f: 1, m: 4 }, &r), Ok(vec![2])); // 6/4 → 2
        let (_, rep) = aggregate_with_report(Rule::MultiKrum { f: 1, m: 3 }, &r).expect("mk");
        let sel: Vec<bool> = rep.iter().map(|x| x.outcome == Outcome::Selected).collect();
        assert_eq!(sel, vec![true, true, true, false, false]);
    }

    #[test]
    fn bulyan_known_values() {
        // 1-D 0, 1, 2, 3, 4, 5, 1000 with f = 1: θ = 5 rounds, then drop 1 from each end.
        // Round 1 (r = 7, k = 4): scores 30 15 10 10 15 30 huge → #2 (ties #3), score 10.
        // Round 2 (r = 6, k = 3): #0 26, #1 14, #3 9, #4 11, #5 21 → #3, score 9.
        // Round 3 (r = 5, k = 2): #0 17, #1 10, #4 10, #5 17 → #1 (ties #4), score 10.
        // Round 4 (r = 4, k = max(1, 1)): #0 16, #4 1, #5 1 → #4, score 1.
        // Round 5 (r = 3, k = max(0, 1) = 1): #0 25, #5 25, #6 995² → #0, score 25.
        // Chosen values 2 3 1 4 0 → drop 0 and 4 → mean(1, 2, 3) = 2.
        let rows = one_d(&[0, 1, 2, 3, 4, 5, 1000]);
        let (out, rep) = aggregate_with_report(Rule::Bulyan { f: 1 }, &refs(&rows)).expect("bulyan");
        assert_eq!(out, vec![2]);
        let scores: Vec<Option<u128>> = rep.iter().map(|r| r.score).collect();
        assert_eq!(scores, vec![Some(25), Some(10), Some(10), Some(9), Some(1), None, None]);
        let kept: Vec<Outcome> = rep.iter().map(|r| r.outcome).collect();
        let t = |kept| Outcome::Trimmed { kept, of: 1 };
        assert_eq!(kept, vec![t(0), t(1), t(1), t(1), t(0), Outcome::Rejected, Outcome::Rejected]);
    }

    proptest! {
        /// m = n: every input is averaged — the mean.
        #[test]
        fn multi_krum_with_m_n_is_the_mean(rows in proptest::collection::vec(proptest::collection::vec(any::<i32>(), 4), 3..12), f in 0u32..5) {
            let r = refs(&rows);
            prop_assume!(r.len() >= 2 * f as usize + 3);
            let m = r.len() as u32;
            prop_assert_eq!(aggregate(Rule::MultiKrum { f, m }, &r), mean(&r));
        }

        /// f = 0: θ = n, so iterated Krum chooses every input and nothing is trimmed —
        /// Bulyan reduces to the mean.
        #[test]
        fn bulyan_with_f_0_is_the_mean(rows in proptest::collection::vec(proptest::collection::vec(any::<i32>(), 4), 3..12)) {
            let r = refs(&rows);
            let (out, rep) = aggregate_with_report(Rule::Bulyan { f: 0 }, &r).expect("bulyan");
            prop_assert_eq!(Ok(out), mean(&r));
            let all_kept = Outcome::Trimmed { kept: 4, of: 4 };
            prop_assert!(rep.iter().all(|x| x.outcome == all_kept && x.score.is_some()));
        }

        /// Krum returns one of the inputs exactly; multi-krum with m = 1 is Krum.
        #[test]
        fn krum_returns_an_input(rows in proptest::collection::vec(proptest::collection::vec(any::<i32>(), 3), 5..12)) {
            let r = refs(&rows);
            let out = aggregate(Rule::Krum { f: 1 }, &r).expect("krum");
            prop_assert!(r.contains(&out.as_slice()));
            prop_assert_eq!(aggregate(Rule::MultiKrum { f: 1, m: 1 }, &r), Ok(out));
        }

        /// Scores match a direct computation by full sort.
        #[test]
        fn scores_match_definition(rows in proptest::collection::vec(proptest::collection::vec(-50i32..50, 3), 5..12), f in 0usize..4) {
            let r = refs(&rows);
            let n = r.len();
            prop_assume!(n >= 2 * f + 3);
            let sc = krum_scores(&r, f, Par::auto());
            for i in 0..n {
                let mut d: Vec<u128> = (0..n).filter(|&j| j != i)
                    .map(|j| (0..3).map(|c| (i128::from(r[i][c]) - i128::from(r[j][c])).pow(2) as u128).sum())
                    .collect();
                d.sort();
                prop_assert_eq!(sc[i], d[..n - f - 2].iter().sum::<u128>());
            }
        }
    }
}
