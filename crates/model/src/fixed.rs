//! The boundary between the fixed-point global model and local floats.
//!
//! The global model is `i32` fixed point with `frac_bits` fractional bits: value =
//! q / 2^frac_bits. [`to_float`] is exact (every `i32` divided by a power of two is an
//! `f64`). [`quantize_delta`] is the only way a float enters consensus state: a data source
//! rounds its trained parameters to the grid (half away from zero, the rule `f64::round`
//! implements on every platform), subtracts the global model in `i64`, and clamps each
//! coordinate to the genesis bound `max_abs`. The result is what a submission carries.

use learnchain_proto::model::ModelSpec;

/// The fixed-point weights as floats: `q / 2^frac_bits` for each coordinate.
pub fn to_float(spec: &ModelSpec, weights: &[i32]) -> Vec<f64> {
    let scale = spec.scale();
    weights.iter().map(|&q| f64::from(q) / scale).collect()
}

/// The quantized update from `global` to the trained float parameters `local`.
///
/// Coordinate `i` is `round_half_away(local[i] · 2^frac_bits) − global[i]`, computed in `i64`
/// (saturating, so it cannot overflow) and clamped to `[-max_abs, max_abs]` (a negative
/// `max_abs` counts as 0). A NaN coordinate counts as unchanged (delta 0); ±∞ saturates to
/// the clamp bound. The output has `global.len()` coordinates: `local` must be as long as
/// `global`, and a missing local coordinate counts as unchanged, an extra one is ignored
/// (callers pass a [`crate::LocalUpdate`] trained from `global`, which always matches).
pub fn quantize_delta(global: &[i32], local: &[f64], frac_bits: u8, max_abs: i32) -> Vec<i32> {
    debug_assert_eq!(
        global.len(),
        local.len(),
        "update length differs from the model's"
    );
    // 2^frac_bits is exact in f64 for any u8 exponent, and so is the product below.
    let scale = 2f64.powi(i32::from(frac_bits));
    let bound = i64::from(max_abs.max(0));
    global
        .iter()
        .enumerate()
        .map(|(i, &g)| {
            let Some(&x) = local.get(i) else { return 0 };
            if x.is_nan() {
                return 0;
            }
            // `as` saturates at i64::MIN / i64::MAX, and saturating_sub keeps it there.
            let q = (x * scale).round() as i64;
            let delta = q.saturating_sub(i64::from(g)).clamp(-bound, bound);
            // |delta| ≤ bound ≤ i32::MAX, so this cannot truncate.
            delta as i32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnchain_proto::model::Architecture;
    use proptest::prelude::*;

    fn spec(frac_bits: u8) -> ModelSpec {
        ModelSpec {
            architecture: Architecture::Softmax,
            features: 1,
            classes: 2,
            hidden: vec![], input: None,
            init_seed: 0,
            frac_bits,
        }
    }

    #[test]
    fn rounds_half_away_from_zero() {
        let half = 0.5 / 65536.0;
        let d = quantize_delta(
            &[0, 0, 0, 0],
            &[half, -half, 3.0 * half, -3.0 * half],
            16,
            100,
        );
        assert_eq!(d, vec![1, -1, 2, -2]);
    }

    #[test]
    fn non_finite_values() {
        let d = quantize_delta(
            &[5, 5, -5],
            &[f64::NAN, f64::INFINITY, f64::NEG_INFINITY],
            8,
            9,
        );
        assert_eq!(d, vec![0, 9, -9]);
    }

    #[test]
    fn extremes_do_not_overflow() {
        let d = quantize_delta(&[i32::MIN, i32::MAX], &[1e300, -1e300], 24, i32::MAX);
        assert_eq!(d, vec![i32::MAX, -i32::MAX]);
        let d = quantize_delta(&[i32::MIN], &[f64::from(i32::MAX) / 16.0], 4, i32::MAX);
        assert_eq!(d, vec![i32::MAX]);
    }

    proptest! {
        #[test]
        fn round_trip_is_exact(
            frac_bits in 0u8..=24,
            pairs in prop::collection::vec((any::<i32>(), any::<i32>()), 1..32),
        ) {
            let (global, target): (Vec<i32>, Vec<i32>) = pairs.into_iter().unzip();
            let local = to_float(&spec(frac_bits), &target);
            let delta = quantize_delta(&global, &local, frac_bits, i32::MAX);
            for ((g, t), d) in global.iter().zip(&target).zip(&delta) {
                let max = i64::from(i32::MAX);
                let want = (i64::from(*t) - i64::from(*g)).clamp(-max, max);
                prop_assert_eq!(i64::from(*d), want);
            }
            // Applying an unclamped delta lands exactly on the target.
            let zero = vec![0; target.len()];
            let from_zero = quantize_delta(&zero, &local, frac_bits, i32::MAX);
            for (t, d) in target.iter().zip(&from_zero) {
                if *t != i32::MIN {
                    prop_assert_eq!(d, t);
                }
            }
        }

        #[test]
        fn clamps_to_bound(
            frac_bits in 0u8..=24,
            max_abs in -5i32..1_000_000,
            global in prop::collection::vec(any::<i32>(), 1..16),
            shift in -1e7f64..1e7,
        ) {
            let floats = to_float(&spec(frac_bits), &global);
            let local: Vec<f64> = floats.iter().map(|v| v + shift).collect();
            let delta = quantize_delta(&global, &local, frac_bits, max_abs);
            let bound = max_abs.max(0);
            prop_assert!(delta.iter().all(|d| d.abs() <= bound));
            for ((g, l), d) in global.iter().zip(&local).zip(&delta) {
                let exact = (l * 2f64.powi(i32::from(frac_bits))).round() - f64::from(*g);
                let want = exact.clamp(-f64::from(bound), f64::from(bound));
                prop_assert_eq!(f64::from(*d), want);
            }
        }
    }
}
