//! Deterministic integer aggregation of model updates — a consensus rule.
//!
//! Every validator recomputes the aggregate of a block's submissions and must reach the same
//! bits, so everything here is integer arithmetic over the fixed-point `i32` updates, with
//! the inputs in a fixed order (the caller passes them sorted by submission id) and every
//! rounding written down in this module:
//!
//! * sums are taken in `i64` (at most [`MAX_INPUTS`] inputs of `i32` cannot overflow it);
//! * a quotient is rounded **half away from zero**: `q = sign(s) · ⌊(|s| + ⌊n/2⌋) / n⌋`
//!   ([`div_round`]);
//! * applying an aggregate to the model is checked addition: a block whose aggregate would
//!   push a weight outside `i32` is invalid ([`apply`]), so the model never wraps and a reorg
//!   can rewind a block exactly with [`unapply`].
//!
//! The mean (FedAvg with equal weights) lives in [`mean`]; the robust rules of the next
//! issues (median, trimmed mean, Krum, Bulyan, geometric median, l-nearest) will sit beside
//! it behind [`aggregate`], each a plain function over `&[&[i32]]`.

use thiserror::Error;

/// Most inputs one aggregation accepts.
pub const MAX_INPUTS: usize = 1 << 20;

/// A named aggregation rule, as the genesis selects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Coordinate-wise mean, rounded half away from zero.
    Mean,
}

/// Why an aggregate could not be computed or applied.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AggregateError {
    /// No updates were given.
    #[error("no updates to aggregate")]
    Empty,
    /// More inputs than [`MAX_INPUTS`].
    #[error("{0} updates exceed the limit of {MAX_INPUTS}")]
    TooMany(usize),
    /// Updates of different lengths.
    #[error("update {index} has {len} coordinates, expected {expected}")]
    LengthMismatch {
        /// Position of the offending update.
        index: usize,
        /// Its length.
        len: usize,
        /// The length of the first update.
        expected: usize,
    },
    /// Applying the aggregate would leave `i32` at some coordinate.
    #[error("model coordinate {index} would overflow")]
    Overflow {
        /// The coordinate.
        index: usize,
    },
}

/// Divides `s` by `n > 0`, rounding half away from zero.
pub fn div_round(s: i64, n: i64) -> i64 {
    debug_assert!(n > 0);
    let half = n / 2;
    if s >= 0 { (s + half) / n } else { -((-s + half) / n) }
}

fn check_inputs(updates: &[&[i32]]) -> Result<usize, AggregateError> {
    let first = updates.first().ok_or(AggregateError::Empty)?;
    if updates.len() > MAX_INPUTS {
        return Err(AggregateError::TooMany(updates.len()));
    }
    let expected = first.len();
    for (index, u) in updates.iter().enumerate() {
        if u.len() != expected {
            return Err(AggregateError::LengthMismatch { index, len: u.len(), expected });
        }
    }
    Ok(expected)
}

/// Aggregates `updates` (sorted by submission id) under `rule`.
pub fn aggregate(rule: Rule, updates: &[&[i32]]) -> Result<Vec<i32>, AggregateError> {
    match rule {
        Rule::Mean => mean(updates),
    }
}

/// Coordinate-wise mean with [`div_round`]. The result always fits `i32`, since a mean lies
/// between the smallest and largest input.
pub fn mean(updates: &[&[i32]]) -> Result<Vec<i32>, AggregateError> {
    let len = check_inputs(updates)?;
    let mut sums = vec![0i64; len];
    for u in updates {
        for (s, &v) in sums.iter_mut().zip(u.iter()) {
            *s += i64::from(v);
        }
    }
    let n = updates.len() as i64;
    Ok(sums.into_iter().map(|s| div_round(s, n) as i32).collect())
}

/// Adds `delta` to `model` coordinate-wise; on overflow leaves `model` unchanged and errs.
pub fn apply(model: &mut [i32], delta: &[i32]) -> Result<(), AggregateError> {
    combine(model, delta, i32::checked_add)
}

/// Subtracts `delta` from `model` (the exact inverse of a successful [`apply`]).
pub fn unapply(model: &mut [i32], delta: &[i32]) -> Result<(), AggregateError> {
    combine(model, delta, i32::checked_sub)
}

fn combine(
    model: &mut [i32],
    delta: &[i32],
    op: fn(i32, i32) -> Option<i32>,
) -> Result<(), AggregateError> {
    if model.len() != delta.len() {
        return Err(AggregateError::LengthMismatch { index: 0, len: delta.len(), expected: model.len() });
    }
    if let Some(index) = model.iter().zip(delta).position(|(&m, &d)| op(m, d).is_none()) {
        return Err(AggregateError::Overflow { index });
    }
    for (m, &d) in model.iter_mut().zip(delta) {
        // Checked above: cannot fail.
        *m = op(*m, d).unwrap_or(*m);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rounding_rule() {
        assert_eq!(div_round(1, 2), 1);
        assert_eq!(div_round(-1, 2), -1);
        assert_eq!(div_round(1, 3), 0);
        assert_eq!(div_round(2, 3), 1);
        assert_eq!(div_round(-2, 3), -1);
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(0, 7), 0);
    }

    #[test]
    fn mean_of_known_values() {
        let a = [1, -1, 10, i32::MAX];
        let b = [2, -2, 11, i32::MAX];
        assert_eq!(mean(&[&a, &b]), Ok(vec![2, -2, 11, i32::MAX]));
        assert_eq!(mean(&[]), Err(AggregateError::Empty));
        assert!(matches!(mean(&[&a, &b[..2]]), Err(AggregateError::LengthMismatch { index: 1, .. })));
    }

    #[test]
    fn overflow_is_refused_and_model_untouched() {
        let mut m = vec![i32::MAX - 1, 0];
        assert_eq!(apply(&mut m, &[5, 5]), Err(AggregateError::Overflow { index: 0 }));
        assert_eq!(m, vec![i32::MAX - 1, 0]);
    }

    proptest! {
        #[test]
        fn mean_matches_exact_rational_rounding(rows in proptest::collection::vec(proptest::collection::vec(any::<i32>(), 5), 1..20)) {
            let refs: Vec<&[i32]> = rows.iter().map(|r| r.as_slice()).collect();
            let m = mean(&refs).expect("same lengths");
            for j in 0..5 {
                let s: i128 = rows.iter().map(|r| i128::from(r[j])).sum();
                let n = rows.len() as i128;
                // |m·n − s| ≤ n/2, and ties go away from zero.
                let diff = i128::from(m[j]) * n - s;
                prop_assert!(2 * diff.abs() <= n);
                if 2 * diff.abs() == n {
                    prop_assert!(diff.signum() == s.signum());
                }
            }
        }

        #[test]
        fn mean_is_order_dependent_only_through_the_caller(rows in proptest::collection::vec(proptest::collection::vec(-1000i32..1000, 8), 1..10)) {
            let refs: Vec<&[i32]> = rows.iter().map(|r| r.as_slice()).collect();
            let mut rev = refs.clone();
            rev.reverse();
            // The mean happens to be symmetric; the contract still sorts inputs by id.
            prop_assert_eq!(mean(&refs), mean(&rev));
        }

        #[test]
        fn apply_then_unapply_is_identity(m in proptest::collection::vec(-1_000_000i32..1_000_000, 10), d in proptest::collection::vec(-1_000_000i32..1_000_000, 10)) {
            let mut x = m.clone();
            apply(&mut x, &d).expect("no overflow in range");
            unapply(&mut x, &d).expect("inverse");
            prop_assert_eq!(x, m);
        }
    }
}
