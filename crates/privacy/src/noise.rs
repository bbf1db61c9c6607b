//! The two data-touching halves of a DP-SGD step: per-example L2 clipping and Gaussian
//! noise.
//!
//! DP-SGD (Abadi et al., *Deep Learning with Differential Privacy*, CCS 2016) bounds each
//! example's influence by scaling its gradient `g` to `g·min(1, C/‖g‖₂)` ([`clip_l2`]), so
//! the sum of clipped gradients has L2 sensitivity `C`, and then adds `N(0, σ²C²)` to every
//! coordinate of that sum ([`add_gaussian_noise`] with `std = σ·C`). The accountant's `σ`
//! is this noise multiplier.
//!
//! # Randomness
//!
//! The Gaussian mechanism is only private if the noise is unpredictable to the adversary:
//! [`add_gaussian_noise`] requires a [`CryptoRng`], and it must be seeded from the
//! operating system — `rand::rngs::OsRng` itself, or `rand_chacha::ChaCha20Rng` /
//! `StdRng` created with `from_entropy()` or `from_rng(OsRng)`. Never seed it from a
//! constant, a clock, a block hash or anything else an observer could learn; a seeded RNG
//! is acceptable only in tests. Samples come from `rand_distr::Normal` (the ziggurat
//! method). Floating-point Gaussian sampling has known tiny deviations from the ideal
//! distribution (Mironov, *On Significance of the Least Significant Bits for Differential
//! Privacy*, CCS 2012); learnchain accepts that, as TensorFlow Privacy and Opacus do,
//! because the model update is quantized to fixed point before it leaves the node.
//!
//! # Numerics of clipping
//!
//! The norm is computed directly when the sum of squares is a normal finite number and
//! otherwise with the scaling of BLAS `nrm2` (divide by the largest magnitude first), so
//! entries near `1e±200` neither overflow nor underflow. A gradient with a NaN or infinite
//! entry has no meaningful norm: it is zeroed (it then contributes nothing, which keeps the
//! sensitivity bound) and its non-finite norm is returned so the caller can count it.

use rand::{CryptoRng, RngCore};
use rand_distr::{Distribution, Normal};

use crate::error::{PrivacyError, Result};

/// Adds independent `N(0, std²)` noise to every entry of `values`.
///
/// `rng` must be a cryptographically secure generator seeded from the operating system
/// (see the module docs); `std = σ·C` for noise multiplier `σ` and clip bound `C`.
/// `std = 0` leaves `values` unchanged. Errors if `std` is negative or not finite.
pub fn add_gaussian_noise(
    values: &mut [f64],
    std: f64,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<()> {
    if !(std.is_finite() && std >= 0.0) {
        return Err(PrivacyError::NoiseStd(std));
    }
    if std == 0.0 {
        return Ok(());
    }
    let normal = Normal::new(0.0, std).map_err(|_| PrivacyError::NoiseStd(std))?;
    for v in values.iter_mut() {
        *v += normal.sample(rng);
    }
    Ok(())
}

/// The Euclidean norm of `v`, without spurious overflow or underflow; NaN if an entry is
/// NaN, `+∞` if an entry is infinite.
pub fn l2_norm(v: &[f64]) -> f64 {
    let sum_sq: f64 = v.iter().map(|x| x * x).sum();
    if sum_sq.is_finite() && sum_sq >= f64::MIN_POSITIVE {
        return sum_sq.sqrt();
    }
    if sum_sq.is_nan() {
        return f64::NAN;
    }
    let max = v.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        // All zero, or an infinite entry (NaN was caught above).
        return max;
    }
    let scaled: f64 = v.iter().map(|x| (x / max) * (x / max)).sum();
    max * scaled.sqrt()
}

/// Clips `grad` in place to L2 norm at most `c` — scales it by `min(1, c/‖grad‖₂)` — and
/// returns its original norm.
///
/// A gradient with a NaN or infinite entry is zeroed and its (non-finite) norm returned.
///
/// # Panics
///
/// If `c` is not finite and positive: the clip bound is a validated genesis parameter, so
/// a bad one is a programming error, and clipping with it would void the privacy guarantee.
pub fn clip_l2(grad: &mut [f64], c: f64) -> f64 {
    assert!(c.is_finite() && c > 0.0, "clip bound must be finite and > 0, got {c}");
    let norm = l2_norm(grad);
    if !norm.is_finite() {
        grad.iter_mut().for_each(|x| *x = 0.0);
        return norm;
    }
    if norm > c {
        let scale = c / norm;
        grad.iter_mut().for_each(|x| *x *= scale);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// Deterministic CSPRNG for reproducible tests only.
    fn test_rng() -> StdRng {
        StdRng::seed_from_u64(0x1ea7_c4a1)
    }

    #[test]
    fn noise_has_requested_std() -> Result<()> {
        let mut rng = test_rng();
        for &std in &[0.1, 1.0, 3.7, 250.0] {
            let n = 200_000;
            let mut v = vec![5.0; n];
            add_gaussian_noise(&mut v, std, &mut rng)?;
            let mean = v.iter().sum::<f64>() / n as f64;
            let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n as f64 - 1.0);
            // Standard error of the mean is std/√n ≈ 0.0022·std; of the sample std ≈ 0.0016·std.
            assert!((mean - 5.0).abs() < 0.012 * std, "mean {mean} for std {std}");
            assert!((var.sqrt() / std - 1.0).abs() < 0.01, "std {} for {std}", var.sqrt());
        }
        Ok(())
    }

    #[test]
    fn noise_is_independent_per_coordinate() -> Result<()> {
        let mut rng = test_rng();
        let n = 100_000;
        let mut v = vec![0.0; n];
        add_gaussian_noise(&mut v, 1.0, &mut rng)?;
        // Lag-1 autocorrelation of i.i.d. draws is ~N(0, 1/n): |ρ| < 5/√n.
        let rho = v.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / n as f64;
        assert!(rho.abs() < 5.0 / (n as f64).sqrt(), "rho {rho}");
        Ok(())
    }

    #[test]
    fn noise_rejects_bad_std_and_zero_is_identity() -> Result<()> {
        let mut rng = test_rng();
        let mut v = vec![1.0, 2.0];
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                add_gaussian_noise(&mut v, bad, &mut rng),
                Err(PrivacyError::NoiseStd(_))
            ));
        }
        add_gaussian_noise(&mut v, 0.0, &mut rng)?;
        assert_eq!(v, vec![1.0, 2.0]);
        Ok(())
    }

    #[test]
    fn works_with_os_rng() -> Result<()> {
        let mut v = vec![0.0; 8];
        add_gaussian_noise(&mut v, 1.0, &mut rand::rngs::OsRng)?;
        assert!(v.iter().any(|&x| x != 0.0));
        Ok(())
    }

    #[test]
    fn clip_examples() {
        let mut g = vec![3.0, 4.0];
        assert_eq!(clip_l2(&mut g, 1.0), 5.0);
        assert!((g[0] - 0.6).abs() < 1e-15 && (g[1] - 0.8).abs() < 1e-15);

        let mut small = vec![0.3, 0.4];
        assert_eq!(clip_l2(&mut small, 1.0), 0.5);
        assert_eq!(small, vec![0.3, 0.4]);

        let mut zero = vec![0.0; 3];
        assert_eq!(clip_l2(&mut zero, 1.0), 0.0);

        let mut empty: Vec<f64> = vec![];
        assert_eq!(clip_l2(&mut empty, 1.0), 0.0);

        let mut huge = vec![3e200, 4e200];
        assert!((clip_l2(&mut huge, 2.0) / 5e200 - 1.0).abs() < 1e-15);
        assert!((l2_norm(&huge) - 2.0).abs() < 1e-14);

        let mut tiny = vec![3e-200, 4e-200];
        assert!((clip_l2(&mut tiny, 1.0) / 5e-200 - 1.0).abs() < 1e-15);

        let mut bad = vec![1.0, f64::NAN];
        assert!(clip_l2(&mut bad, 1.0).is_nan());
        assert_eq!(bad, vec![0.0, 0.0]);
        let mut inf = vec![1.0, f64::NEG_INFINITY];
        assert_eq!(clip_l2(&mut inf, 1.0), f64::INFINITY);
        assert_eq!(inf, vec![0.0, 0.0]);
    }

    #[test]
    #[should_panic(expected = "clip bound")]
    fn clip_rejects_bad_bound() {
        clip_l2(&mut [1.0], 0.0);
    }

    proptest! {
        #[test]
        fn clipping_bound_holds(
            g in prop::collection::vec(-1e6f64..1e6, 0..64),
            c in 1e-3f64..1e3,
        ) {
            let before = l2_norm(&g);
            let mut clipped = g.clone();
            let norm = clip_l2(&mut clipped, c);
            prop_assert!((norm - before).abs() <= 1e-12 * before.max(1e-300));
            let after = l2_norm(&clipped);
            prop_assert!(after <= c * (1.0 + 1e-12), "norm {after} > {c}");
            if before <= c {
                prop_assert_eq!(&clipped, &g);
            } else {
                // Direction is preserved: clipped = g · (c/‖g‖).
                for (x, y) in clipped.iter().zip(&g) {
                    prop_assert!((x - y * c / before).abs() <= 1e-12 * (y.abs() + 1e-300));
                }
            }
        }
    }
}
