//! Encoding a trained update in the genesis update encoding (see
//! `learnchain_proto::update` for the formats and the decoding).
//!
//! Data enters as the trained float parameters and the fixed-point global model they were
//! trained from (or, for a hostile data source, an integer update), and leaves as the
//! [`EncodedUpdate`] a submission carries:
//!
//! * `i32`: [`crate::fixed::quantize_delta`], exactly as before encodings existed (round half
//!   away from zero to the grid, clamp to `max_update_abs`);
//! * `i16` / `i8`: the real-valued update in grid units ([`grid_update`]) is cut into the
//!   encoding's groups (tensors or chunks); each group's scale is the smallest integer
//!   number of grid units `s ≥ 1` with `max|x| ≤ s·max_level`, and each level is `x/s`
//!   rounded stochastically ([`stochastic_round`]) with the caller's CSPRNG.
//!
//! **Post-processing.** This runs after DP-SGD has noised and projected every step; it reads
//! only that private output and fresh randomness independent of the data, so it costs no
//! privacy: the ledger records the DP-SGD round and nothing else.
//!
//! **Error.** Stochastic rounding is unbiased, `E[level·s] = x`, and moves each coordinate
//! by less than one step `s`, with variance `s²·p(1 − p) ≤ s²/4` where `p = frac(x/s)`.
//!
//! **The norm bound.** Validators check `‖decoded‖² ≤ B²` exactly. Rounding up can take an
//! update that was within the bound over it, so [`quantize`] checks the decoded integers
//! against `B` itself; if they are over, it shrinks the real-valued update onto the bound
//! and quantises again (a few times, fresh randomness each), and finally rounds toward zero,
//! which never increases a coordinate's magnitude, so an update within the bound stays
//! within it. An honest update therefore always passes.

use learnchain_proto::model::ModelSpec;
use learnchain_proto::privacy::norm_sq;
use learnchain_proto::update::{EncodedUpdate, ScaleGroups, UpdateEncoding, Width};
use rand::{CryptoRng, Rng, RngCore};

use crate::fixed::quantize_delta;

/// What validators accept of an update: the coordinate bound and the norm bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateBounds {
    /// The genesis `max_update_abs`.
    pub max_abs: i32,
    /// The update-norm bound `B` in grid units (`learnchain_proto::privacy`).
    pub norm_bound: u128,
}

/// Stochastic rounding: `⌊y⌋ + 1` with probability `y − ⌊y⌋`, else `⌊y⌋`. Unbiased, and
/// always within one unit of `y`. A non-finite `y` rounds to 0.
pub fn stochastic_round(y: f64, rng: &mut (impl RngCore + CryptoRng)) -> f64 {
    if !y.is_finite() {
        return 0.0;
    }
    let floor = y.floor();
    if rng.r#gen::<f64>() < y - floor { floor + 1.0 } else { floor }
}

/// The real-valued update from `global` to `local` in grid units, `local·2^f − global`,
/// clamped to `±max_abs` (a NaN or missing coordinate is 0, as in
/// [`crate::fixed::quantize_delta`]).
pub fn grid_update(global: &[i32], local: &[f64], frac_bits: u8, max_abs: i32) -> Vec<f64> {
    let scale = 2f64.powi(i32::from(frac_bits));
    let bound = f64::from(max_abs.max(0));
    global
        .iter()
        .enumerate()
        .map(|(i, &g)| match local.get(i) {
            Some(&x) if !x.is_nan() => (x * scale - f64::from(g)).clamp(-bound, bound),
            _ => 0.0,
        })
        .collect()
}

/// The update a data source that trained `local` from `global` submits, in `encoding`.
pub fn encode_trained(
    encoding: UpdateEncoding,
    spec: &ModelSpec,
    global: &[i32],
    local: &[f64],
    bounds: UpdateBounds,
    rng: &mut (impl RngCore + CryptoRng),
) -> EncodedUpdate {
    match encoding {
        UpdateEncoding::I32 => EncodedUpdate::I32(quantize_delta(global, local, spec.frac_bits, bounds.max_abs)),
        UpdateEncoding::Quantized { width, groups } => {
            quantize(width, groups, spec, &grid_update(global, local, spec.frac_bits, bounds.max_abs), bounds, rng)
        }
    }
}

/// An integer update (grid units; e.g. a hostile data source's) in `encoding`: as it is for
/// `i32`, quantised like a trained one otherwise.
pub fn encode_integers(
    encoding: UpdateEncoding,
    spec: &ModelSpec,
    delta: &[i32],
    bounds: UpdateBounds,
    rng: &mut (impl RngCore + CryptoRng),
) -> EncodedUpdate {
    match encoding {
        UpdateEncoding::I32 => EncodedUpdate::I32(delta.to_vec()),
        UpdateEncoding::Quantized { width, groups } => {
            let x: Vec<f64> = delta.iter().map(|&v| f64::from(v)).collect();
            quantize(width, groups, spec, &x, bounds, rng)
        }
    }
}

/// Stochastic-rounding attempts before [`quantize`] falls back to rounding toward zero.
pub const STOCHASTIC_ATTEMPTS: usize = 4;

/// Quantises the real-valued update `x` (grid units, one per parameter of `spec`) to
/// `width`-bit levels with one scale per group, so that the decoded integers stay within
/// `bounds` (see the module docs).
pub fn quantize(
    width: Width,
    groups: ScaleGroups,
    spec: &ModelSpec,
    x: &[f64],
    bounds: UpdateBounds,
    rng: &mut (impl RngCore + CryptoRng),
) -> EncodedUpdate {
    let ranges = groups.ranges(spec);
    let max_level = width.max_level();
    let max_scale = (bounds.max_abs / max_level).max(1);
    let limit = bounds.norm_bound.saturating_mul(bounds.norm_bound);
    let top = f64::from(bounds.max_abs.max(0));
    let mut x: Vec<f64> = x.iter().map(|&v| if v.is_nan() { 0.0 } else { v.clamp(-top, top) }).collect();
    let mut attempt = 0;
    loop {
        let stochastic = attempt < STOCHASTIC_ATTEMPTS;
        let mut scales = Vec::with_capacity(ranges.len());
        let mut levels = vec![0i32; x.len()];
        let mut decoded = Vec::with_capacity(x.len());
        for range in &ranges {
            let group = x.get(range.clone()).unwrap_or(&[]);
            let scale = group_scale(group, max_level, max_scale);
            let s = f64::from(scale);
            for (i, &v) in range.clone().zip(group) {
                let level = if stochastic { stochastic_round(v / s, rng) } else { toward_zero(v, s) };
                let level = (level as i32).clamp(-max_level, max_level);
                levels[i] = level;
                decoded.push(level * scale);
            }
            scales.push(scale as u32);
        }
        let n = norm_sq(&decoded);
        if n <= limit {
            return EncodedUpdate::quantized(width, groups, scales, &levels);
        }
        // Over the bound: shrink onto it and quantise again.
        let factor = ((limit as f64) / (n as f64)).sqrt() * 0.999;
        x.iter_mut().for_each(|v| *v *= factor);
        attempt += 1;
    }
}

/// The smallest integer scale `s ≥ 1` with `max|x| ≤ s·max_level`, at most `max_scale`.
fn group_scale(group: &[f64], max_level: i32, max_scale: i32) -> i32 {
    let top = group.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let m = f64::from(max_level);
    let mut s = ((top / m).ceil() as i64).clamp(1, i64::from(max_scale));
    // Correct the float estimate in exact terms (s·m is an exact integer in f64).
    while s > 1 && ((s - 1) as f64) * m >= top {
        s -= 1;
    }
    while s < i64::from(max_scale) && (s as f64) * m < top {
        s += 1;
    }
    s as i32
}

/// `x/s` rounded toward zero, such that `|level·s| ≤ |x|` exactly.
fn toward_zero(x: f64, s: f64) -> f64 {
    let mut level = (x / s).trunc();
    if (level * s).abs() > x.abs() {
        level -= level.signum();
    }
    level
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnchain_proto::model::Architecture;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    fn spec(features: u32, classes: u32) -> ModelSpec {
        ModelSpec { architecture: Architecture::Softmax, features, classes, hidden: vec![], input: None, init_seed: 1, frac_bits: 16 }
    }

    fn decode(u: &EncodedUpdate, spec: &ModelSpec, max_abs: i32) -> Vec<i32> {
        u.decode(u.encoding(), spec, max_abs).expect("a quantised update decodes").into_owned()
    }

    const LOOSE: UpdateBounds = UpdateBounds { max_abs: 1 << 24, norm_bound: u128::MAX >> 64 };

    #[test]
    fn stochastic_rounding_is_unbiased_and_within_one_step() {
        let mut r = rng(1);
        for y in [0.3, -2.7, 5.5, -0.01, 126.99, 0.0, -3.0] {
            let draws = 200_000;
            let mut sum = 0.0;
            let mut sq = 0.0;
            for _ in 0..draws {
                let l = stochastic_round(y, &mut r);
                assert!((l - y).abs() < 1.0, "{y} → {l}");
                assert_eq!(l, l.round(), "an integer");
                sum += l - y;
                sq += (l - y).powi(2);
            }
            let mean = sum / f64::from(draws);
            let p = y - y.floor();
            assert!(mean.abs() < 0.005, "{y}: mean error {mean}");
            let var = sq / f64::from(draws) - mean * mean;
            assert!((var - p * (1.0 - p)).abs() < 0.005 && var <= 0.25 + 0.005, "{y}: variance {var}");
        }
        assert_eq!(stochastic_round(f64::NAN, &mut r), 0.0);
        assert_eq!(stochastic_round(f64::INFINITY, &mut r), 0.0);
    }

    #[test]
    fn scales_are_the_smallest_that_fit() {
        for (xs, want) in [(vec![0.0], 1), (vec![127.0], 1), (vec![127.5], 2), (vec![-254.0, 3.0], 2), (vec![254.1], 3), (vec![1e9], 1000)] {
            assert_eq!(group_scale(&xs, 127, 1000), want, "{xs:?}");
        }
        assert_eq!(group_scale(&[32767.0 * 5.0], 32767, 1 << 20), 5);
    }

    #[test]
    fn toward_zero_never_grows() {
        for (x, s) in [(2.9999999, 1.0), (-7.0, 7.0), (-6.99, 7.0), (300.0, 3.0), (299.9, 3.0), (0.5, 1.0)] {
            let l = toward_zero(x, s);
            assert!((l * s).abs() <= x.abs(), "{x}/{s} → {l}");
            assert!((x.abs() - (l * s).abs()) < s, "{x}/{s} → {l}: more than a step lost");
        }
    }

    /// The i32 encoding is today's rounding, exactly.
    #[test]
    fn i32_is_quantize_delta() {
        let s = spec(3, 2);
        let global: Vec<i32> = (0..8).map(|i| i * 1000 - 3000).collect();
        let local: Vec<f64> = (0..8).map(|i| f64::from(i) * 0.37 - 1.1).collect();
        let u = encode_trained(UpdateEncoding::I32, &s, &global, &local, LOOSE, &mut rng(2));
        assert_eq!(u, EncodedUpdate::I32(quantize_delta(&global, &local, 16, 1 << 24)));
        let ints = encode_integers(UpdateEncoding::I32, &s, &[1, -2, 3], LOOSE, &mut rng(2));
        assert_eq!(ints, EncodedUpdate::I32(vec![1, -2, 3]));
    }

    /// Over many draws the decoded update averages to the real one (unbiased), and every
    /// draw is within one scale step of it at every coordinate.
    #[test]
    fn quantized_update_is_unbiased_and_within_one_step() {
        let s = spec(40, 5);
        let d = s.param_count() as usize;
        let x: Vec<f64> = (0..d).map(|i| ((i * 7919) % 1000) as f64 * 3.3 - 1650.0 + (i as f64 * 0.123).sin()).collect();
        for enc in ["i8", "i16", "i8:128"] {
            let UpdateEncoding::Quantized { width, groups } = enc.parse().expect("valid") else { unreachable!("quantised") };
            let ranges = groups.ranges(&s);
            let mut r = rng(3);
            let mut mean = vec![0.0; d];
            let draws = 2_000;
            for _ in 0..draws {
                let u = quantize(width, groups, &s, &x, LOOSE, &mut r);
                let out = decode(&u, &s, LOOSE.max_abs);
                let scales = match &u {
                    EncodedUpdate::I8 { scales, .. } | EncodedUpdate::I16 { scales, .. } => scales.clone(),
                    EncodedUpdate::I32(_) => unreachable!("quantised"),
                };
                for (g, range) in ranges.iter().enumerate() {
                    let step = f64::from(scales[g]);
                    let top = x[range.clone()].iter().fold(0.0f64, |m, v| m.max(v.abs()));
                    assert!(top <= step * f64::from(width.max_level()), "{enc}: the scale fits the group");
                    assert!(scales[g] == 1 || top > (step - 1.0) * f64::from(width.max_level()), "{enc}: smallest scale");
                    for i in range.clone() {
                        assert!((f64::from(out[i]) - x[i]).abs() < step, "{enc}: coordinate {i} off by a step or more");
                    }
                }
                for (m, v) in mean.iter_mut().zip(&out) {
                    *m += f64::from(*v) / f64::from(draws);
                }
            }
            let worst_bias = mean.iter().zip(&x).map(|(m, v)| (m - v).abs()).fold(0.0, f64::max);
            // Per-tensor i8 steps here are about 13 grid units: a bias-free mean of 2000
            // draws is within ~4·13·0.5/√2000 ≈ 0.6 units.
            let step = match width { Width::I8 => 14.0, Width::I16 => 1.0 };
            assert!(worst_bias < 0.1 * step, "{enc}: bias {worst_bias}");
        }
    }

    proptest! {
        /// An update within the norm bound is always encoded within it, however tight the
        /// bound and whatever the rounding draws; every coordinate within max_update_abs.
        #[test]
        fn an_update_within_the_bound_stays_within_it(
            raw in prop::collection::vec(-1.0f64..1.0, 62),
            norm in 1.0f64..5_000.0,
            seed in any::<u64>(),
            enc in prop::sample::select(vec!["i8", "i16", "i8:128", "i16:128"]),
        ) {
            let s = spec(30, 2);
            let len = raw.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-9);
            let x: Vec<f64> = raw.iter().map(|v| v / len * norm).collect();
            // The integer bound, at the real norm rounded up: as tight as it gets.
            let bounds = UpdateBounds { max_abs: 1 << 24, norm_bound: norm.ceil() as u128 };
            let UpdateEncoding::Quantized { width, groups } = enc.parse().expect("valid") else { unreachable!("quantised") };
            let u = quantize(width, groups, &s, &x, bounds, &mut rng(seed));
            let out = decode(&u, &s, bounds.max_abs);
            prop_assert!(norm_sq(&out) <= bounds.norm_bound * bounds.norm_bound);
        }

        /// A hostile integer update (already within the bounds) re-encoded stays within them.
        #[test]
        fn integer_updates_stay_within_the_bounds(
            delta in prop::collection::vec(-100_000i32..100_000, 62),
            seed in any::<u64>(),
        ) {
            let s = spec(30, 2);
            let bound = (norm_sq(&delta) as f64).sqrt().ceil() as u128;
            let bounds = UpdateBounds { max_abs: 100_000, norm_bound: bound };
            for enc in ["i8", "i16:128"] {
                let u = encode_integers(enc.parse().expect("valid"), &s, &delta, bounds, &mut rng(seed));
                let out = decode(&u, &s, bounds.max_abs);
                prop_assert!(norm_sq(&out) <= bound * bound);
                prop_assert!(out.iter().all(|v| v.unsigned_abs() <= 100_000));
            }
        }
    }

    /// With a bound of zero only the zero update fits: the fallback gets there.
    #[test]
    fn a_zero_bound_gives_the_zero_update() {
        let s = spec(3, 2);
        let x = vec![1000.0; 8];
        let u = quantize(Width::I8, ScaleGroups::PerTensor, &s, &x, UpdateBounds { max_abs: 1 << 24, norm_bound: 0 }, &mut rng(4));
        assert!(decode(&u, &s, 1 << 24).iter().all(|&v| v == 0));
    }

    /// DP-SGD then i8: the honest update of a real training run passes the validators'
    /// integer norm bound, and stays close to the i32 update.
    #[test]
    fn dp_trained_updates_encode_within_the_validators_bound() {
        use crate::data::builtin;
        use crate::dp::{DpParams, train_local_dp};
        use learnchain_proto::Fixed6;
        use learnchain_proto::genesis::TrainingParams;
        use learnchain_proto::privacy::{BoundContext, DpDeclaration, step_radius, update_norm_bound_units};
        let data = builtin("breast-cancer").expect("built in");
        let (mut train, _) = data.split(0.2, 1).expect("splits");
        let st = crate::Standardizer::fit(&train).expect("non-empty");
        st.apply(&mut train).expect("same width");
        let s = spec(30, 2);
        let global = vec![0i32; 62];
        let n = u32::try_from(train.len()).expect("small");
        let decl = DpDeclaration {
            sample_rate: Fixed6::from_f64(0.05).expect("valid"),
            noise_multiplier: Fixed6::from_f64(4.0).expect("valid"),
            clip: Fixed6::from_f64(1.0).expect("valid"),
            steps: 10,
        };
        let params = TrainingParams { learning_rate: Fixed6(500_000), local_steps: 10, batch_size: 16, weight_decay: Fixed6(0) };
        let ctx = BoundContext { learning_rate: params.learning_rate, weight_decay: params.weight_decay, frac_bits: 16, params: 62, base_norm_sq: 0 };
        let bound = update_norm_bound_units(&decl, n, &ctx);
        let dp = DpParams { sample_rate: 0.05, noise_multiplier: 4.0, clip: 1.0, max_step_norm: step_radius(&decl, n, 62) };
        let bounds = UpdateBounds { max_abs: 1 << 24, norm_bound: bound };
        for seed in 0..10 {
            let u = train_local_dp(&s, &params, &dp, &global, &train, &mut rng(seed)).expect("trains");
            let exact = quantize_delta(&global, &u.params, 16, 1 << 24);
            for enc in ["i8", "i8:128", "i16"] {
                let e = encode_trained(enc.parse().expect("valid"), &s, &global, &u.params, bounds, &mut rng(seed + 100));
                let out = decode(&e, &s, 1 << 24);
                assert!(norm_sq(&out) <= bound * bound, "{enc}: over the bound");
                let err: f64 = out.iter().zip(&exact).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum::<f64>().sqrt();
                let size = (norm_sq(&exact) as f64).sqrt();
                assert!(err < 0.05 * size, "{enc}: quantisation error {err} against an update of {size}");
            }
        }
    }
}
