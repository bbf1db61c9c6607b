//! LearningChain's l-nearest aggregation (Chen et al. 2018): average the `l` updates
//! nearest the coordinate-wise median.
//!
//! The median is [`crate::Rule::Median`]'s; distances are exact squared Euclidean distances
//! (`u128`); the `l` smallest are chosen by (distance, index) and averaged with
//! [`div_round`](crate::div_round).

use crate::coordinate::median_values;
use crate::distance::{Kernel, distances_to};
use crate::par::Par;
use crate::{InputReport, Outcome, mean_of};

/// [`crate::Rule::LNearest`] with `1 ≤ l ≤ n`. Every input is reported with its squared
/// distance to the median; the `l` chosen are `Selected`, the others `Rejected`.
pub(crate) fn l_nearest(updates: &[&[i32]], l: usize, par: Par) -> (Vec<i32>, Vec<InputReport>) {
    let med = median_values(updates, par);
    // The median lies within the inputs' range, so their bound covers it.
    let d2 = distances_to(updates, &med, Kernel::of(updates), par);
    let mut order: Vec<usize> = (0..updates.len()).collect();
    order.sort_unstable_by_key(|&i| (d2[i], i));
    let chosen = &order[..l];
    let mut report: Vec<InputReport> = d2.iter().map(|&d| InputReport::new(Outcome::Rejected, Some(d))).collect();
    for &i in chosen {
        report[i].outcome = Outcome::Selected;
    }
    (mean_of(updates, chosen), report)
}

#[cfg(test)]
mod tests {
    use crate::{Outcome, Rule, aggregate, aggregate_with_report, mean};
    use proptest::prelude::*;

    #[test]
    fn known_values_and_tie() {
        // 1-D 0, 1, 2, 4, 100: median 2, squared distances 4, 1, 0, 4, 9604.
        let rows: Vec<Vec<i32>> = [0, 1, 2, 4, 100].iter().map(|&v| vec![v]).collect();
        let r: Vec<&[i32]> = rows.iter().map(|r| r.as_slice()).collect();
        assert_eq!(aggregate(Rule::LNearest { l: 1 }, &r), Ok(vec![2]));
        assert_eq!(aggregate(Rule::LNearest { l: 2 }, &r), Ok(vec![2])); // (2 + 1)/2 = 1.5 → 2
        // l = 3: #0 and #3 tie at 4; the lower index #0 goes in: (2 + 1 + 0)/3 = 1.
        let (out, rep) = aggregate_with_report(Rule::LNearest { l: 3 }, &r).expect("l-nearest");
        assert_eq!(out, vec![1]);
        let scores: Vec<Option<u128>> = rep.iter().map(|x| x.score).collect();
        assert_eq!(scores, vec![Some(4), Some(1), Some(0), Some(4), Some(9604)]);
        let sel: Vec<bool> = rep.iter().map(|x| x.outcome == Outcome::Selected).collect();
        assert_eq!(sel, vec![true, true, true, false, false]);
        assert_eq!(aggregate(Rule::LNearest { l: 4 }, &r), Ok(vec![2])); // 7/4 → 2
    }

    #[test]
    fn distance_is_to_the_even_median() {
        // 2-D, n = 4: the median takes div_round of the middle pair, x: 1, 2, 3, 9 →
        // (2 + 3)/2 = 2.5 → 3; y: −1, −2, −3, −9 → −2.5 → −3. From (3, −3) the squared
        // distances are 8, 2, 0, 72.
        let rows = [vec![1, -1], vec![2, -2], vec![3, -3], vec![9, -9]];
        let r: Vec<&[i32]> = rows.iter().map(|r| r.as_slice()).collect();
        let (out, rep) = aggregate_with_report(Rule::LNearest { l: 1 }, &r).expect("l-nearest");
        assert_eq!(out, vec![3, -3]);
        let scores: Vec<Option<u128>> = rep.iter().map(|x| x.score).collect();
        assert_eq!(scores, vec![Some(8), Some(2), Some(0), Some(72)]);
    }

    proptest! {
        /// l = n: every input is averaged — the mean.
        #[test]
        fn l_n_is_the_mean(rows in proptest::collection::vec(proptest::collection::vec(any::<i32>(), 4), 1..12)) {
            let r: Vec<&[i32]> = rows.iter().map(|r| r.as_slice()).collect();
            prop_assert_eq!(aggregate(Rule::LNearest { l: r.len() as u32 }, &r), mean(&r));
        }
    }
}
