//! Differentially private local training: DP-SGD (Abadi et al., CCS 2016) on a data
//! source's own shard, starting from the global model.
//!
//! [`train_local_dp`] is [`crate::train_local`] with the two data-touching parts of a step
//! replaced, as the seam in [`crate::train`] describes. Each of the `local_steps` steps:
//!
//! 1. **Poisson sampling** ([`poisson_sample`]): every example of the shard joins the batch
//!    independently with probability `q` ([`DpParams::sample_rate`]), drawn from the
//!    caller's CSPRNG. The batch size is random (mean `q·n`) and may be zero.
//! 2. **Per-example clipping** ([`clipped_example_gradient`]): the gradient of each sampled
//!    example alone is computed and scaled to L2 norm at most `C` ([`DpParams::clip`]),
//!    measured over *all* parameters as one flat vector.
//! 3. **Sum and noise**: the clipped gradients are summed and `N(0, σ²C²)` is added to every
//!    coordinate (`σ` = [`DpParams::noise_multiplier`]), also when the batch is empty.
//! 4. **Normalisation**: the noisy sum is divided by the *expected* batch size `q·n`, not by
//!    the realised one, so the L2 sensitivity of the averaged gradient stays `C/(q·n)`.
//!    The result is then scaled down to L2 norm [`DpParams::max_step_norm`] if it is longer
//!    (post-processing of the noised sum with a public radius: no privacy cost). Data sources
//!    use the step radius of `learnchain_proto::privacy::step_radius`, which is what lets
//!    validators bound the norm of the whole update.
//! 5. **Weight decay** ([`Network::add_weight_decay`]) is added after the noise: it depends
//!    only on the current model, which is already private, never on the data.
//! 6. **SGD step** `θ ← θ − lr · g`.
//!
//! Everything stays in `f64`; the caller quantizes the result with
//! [`crate::fixed::quantize_delta`] or encodes it with [`crate::quantize::encode_trained`]
//! afterwards, so the noise is added before quantization (quantization, stochastic rounding
//! included, is post-processing).
//!
//! # What is private
//!
//! The guarantee is *example-level* differential privacy for the records of this data
//! source's shard, for one round: adding or removing one record changes the distribution of
//! the returned [`LocalUpdate::params`] by at most the privacy loss of
//! `T = local_steps` compositions of the Poisson-subsampled Gaussian mechanism with sampling
//! rate `q` and noise multiplier `σ`. That is exactly what the
//! accountants of `learnchain_privacy` (PLD by default, RDP beside it) account for; the caller records
//! `(q, σ, T)` per round in the privacy ledger, and rounds compose. Nothing protects
//! a whole data source (user-level DP), and the hyper-parameters themselves (`q`, `σ`, `C`,
//! the learning rate, `n` through `q·n`) are treated as public.
//!
//! [`LocalUpdate::final_loss`] and [`LocalUpdate::examples`] are **not** covered: the loss
//! is computed from the raw (unclipped, un-noised) sampled examples and the example count
//! is exact. They are for local logging only and must not be published. A
//! [`TrainError::Diverged`] error, too, is data-dependent and local.
//!
//! # Randomness
//!
//! Both the sampling and the noise are drawn from the `rng` passed in, which must be a
//! cryptographically secure generator seeded from the operating system — e.g.
//! `rand_chacha::ChaCha20Rng::from_rng(rand::rngs::OsRng)` or `rand::rngs::OsRng` itself.
//! A generator seeded from a constant, a clock, a block hash or anything an observer could
//! learn voids the guarantee (the noise could be subtracted again); seeded generators are
//! for tests only. Unlike [`crate::train_local`], a run is therefore not reproducible.
//!
//! # Cost
//!
//! Per-example gradients are computed with one [`Network::gradient`] call per sampled
//! example (a 1-row batch), so a step costs about `q·n` single-example forward and backward
//! passes plus `q·n + 1` passes over the parameter vector (clip, accumulate, noise): the
//! same arithmetic as one batched gradient of `q·n` rows, but without the matrix-multiply
//! batching. `TrainingParams::batch_size` is not used: the batch size is set by `q`.

use learnchain_privacy::{add_gaussian_noise, clip_l2};
use learnchain_proto::genesis::TrainingParams;
use learnchain_proto::model::ModelSpec;
use ndarray::{Axis, Slice};
use rand::{CryptoRng, Rng, RngCore};

use crate::data::Dataset;
use crate::network::Network;
use crate::train::{LocalUpdate, TrainError, check_dataset, check_local_steps, finish, sgd_step};

/// The DP-SGD parameters of one round of local training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DpParams {
    /// Poisson sampling rate `q`: the probability that an example joins a step's batch.
    /// In `(0, 1]`.
    pub sample_rate: f64,
    /// Noise multiplier `σ`: the noise std on the summed gradient is `σ·C`. Finite and
    /// `≥ 0` (`0` means no privacy, for testing).
    pub noise_multiplier: f64,
    /// Clip bound `C` on each example's gradient L2 norm. Finite and `> 0`.
    pub clip: f64,
    /// Largest L2 norm of one step's noisy averaged gradient (before weight decay); a longer
    /// one is scaled down to it. `> 0`; `f64::INFINITY` disables the projection.
    pub max_step_norm: f64,
}

impl DpParams {
    /// Checks the ranges documented on the fields (and that `σ·C` is finite); the error
    /// is [`TrainError::InvalidParams`] naming the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let invalid = |field, reason| Err(TrainError::InvalidParams { field, reason });
        if !(self.sample_rate > 0.0 && self.sample_rate <= 1.0) {
            return invalid("sample_rate", "must be in (0, 1]");
        }
        if !(self.noise_multiplier.is_finite() && self.noise_multiplier >= 0.0) {
            return invalid("noise_multiplier", "must be finite and >= 0");
        }
        if !(self.clip.is_finite() && self.clip > 0.0) {
            return invalid("clip", "must be finite and > 0");
        }
        if self.max_step_norm.is_nan() || self.max_step_norm <= 0.0 {
            return invalid("max_step_norm", "must be > 0 (or infinite)");
        }
        if !(self.noise_multiplier * self.clip).is_finite() {
            return invalid(
                "noise_multiplier",
                "the noise std noise_multiplier * clip overflows",
            );
        }
        Ok(())
    }
}

/// Runs `params.local_steps` steps of DP-SGD on `data` from the fixed-point model `global`
/// (see the module docs for the step, the guarantee and the requirements on `rng`).
///
/// `params.batch_size` is ignored (the batch is Poisson-sampled with rate
/// `dp.sample_rate`); `params.learning_rate` and `params.weight_decay` are used as in
/// [`crate::train_local`].
pub fn train_local_dp(
    spec: &ModelSpec,
    params: &TrainingParams,
    dp: &DpParams,
    global: &[i32],
    data: &Dataset,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<LocalUpdate, TrainError> {
    check_local_steps(params)?;
    dp.validate()?;
    check_dataset(spec, data)?;
    let mut net = Network::from_fixed(spec, global)?;
    let lr = params.learning_rate.to_f64();
    let l2 = params.weight_decay.to_f64();
    let n = data.len();
    let expected_batch = dp.sample_rate * n as f64;
    let noise_std = dp.noise_multiplier * dp.clip;
    let mut final_loss = f64::NAN;

    for step in 0..params.local_steps {
        let rows = poisson_sample(n, dp.sample_rate, rng);
        let mut grad = vec![0.0; net.params().len()];
        let mut loss_sum = 0.0;
        for &row in &rows {
            let (loss, g) = clipped_example_gradient(&net, data, row, dp.clip)?;
            loss_sum += loss;
            for (s, v) in grad.iter_mut().zip(&g) {
                *s += v;
            }
        }
        if !loss_sum.is_finite() {
            return Err(TrainError::Diverged { step });
        }
        add_gaussian_noise(&mut grad, noise_std, rng).map_err(|_| TrainError::InvalidParams {
            field: "noise_multiplier",
            reason: "the noise std noise_multiplier * clip is not usable",
        })?;
        grad.iter_mut().for_each(|g| *g /= expected_batch);
        if dp.max_step_norm.is_finite() {
            clip_l2(&mut grad, dp.max_step_norm);
        }
        let penalty = net.add_weight_decay(l2, &mut grad);
        let data_loss = if rows.is_empty() {
            0.0
        } else {
            loss_sum / rows.len() as f64
        };
        sgd_step(&mut net, lr, &grad);
        final_loss = data_loss + penalty;
    }
    finish(net, params, n, final_loss)
}

/// Poisson sampling: the indices `0..n` that each join, independently, with probability
/// `q` (one uniform draw from `rng` per index, in increasing order). `q ≥ 1` takes every
/// index, `q ≤ 0` none.
pub fn poisson_sample(n: usize, q: f64, rng: &mut (impl RngCore + CryptoRng)) -> Vec<usize> {
    (0..n).filter(|_| rng.r#gen::<f64>() < q).collect()
}

/// The cross-entropy loss of example `row` of `data` alone, and its gradient with respect
/// to every parameter (flat, no weight decay), clipped to L2 norm at most `clip`.
///
/// A gradient with a NaN or infinite entry is zeroed (see `learnchain_privacy::clip_l2`);
/// the returned loss then shows the problem. `clip` must be finite and positive
/// ([`DpParams::validate`]).
///
/// # Panics
///
/// If `row >= data.len()`.
pub fn clipped_example_gradient(
    net: &Network,
    data: &Dataset,
    row: usize,
    clip: f64,
) -> Result<(f64, Vec<f64>), TrainError> {
    let x = data.x.slice_axis(Axis(0), Slice::from(row..=row));
    let (loss, mut grad) = net.gradient(x, &data.y[row..=row])?;
    clip_l2(&mut grad, clip);
    Ok((loss, grad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::builtin;
    use crate::eval::evaluate;
    use crate::fixed::{quantize_delta, to_float};
    use crate::train::train_local;
    use learnchain_privacy::noise::l2_norm;
    use learnchain_proto::Fixed6;
    use learnchain_proto::model::Architecture;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// Deterministic CSPRNG: for tests only (see the module docs).
    fn test_rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    fn training(lr: f64, steps: u32, decay: f64) -> TrainingParams {
        TrainingParams {
            learning_rate: Fixed6::from_f64(lr).expect("valid learning rate"),
            local_steps: steps,
            batch_size: 1,
            weight_decay: Fixed6::from_f64(decay).expect("valid weight decay"),
        }
    }

    fn dp(q: f64, sigma: f64, c: f64) -> DpParams {
        DpParams {
            sample_rate: q,
            noise_multiplier: sigma,
            clip: c,
            max_step_norm: f64::INFINITY,
        }
    }

    fn softmax(features: u32, classes: u32) -> ModelSpec {
        ModelSpec {
            architecture: Architecture::Softmax,
            features,
            classes,
            hidden: vec![], input: None,
            init_seed: 0,
            frac_bits: 16,
        }
    }

    /// Standardized train/test split of a built-in set.
    fn prepared(name: &str) -> (Dataset, Dataset) {
        let data = builtin(name).expect("built-in dataset");
        let (mut train, mut test) = data.split(0.2, 7).expect("valid split");
        let standardizer = crate::Standardizer::fit(&train).expect("non-empty");
        standardizer.apply(&mut train).expect("same width");
        standardizer.apply(&mut test).expect("same width");
        (train, test)
    }

    fn tiny() -> (ModelSpec, Dataset) {
        let x = ndarray::array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]];
        let data = Dataset::new(x, vec![0, 1, 1, 0], 2, vec!["a".into(), "b".into()])
            .expect("valid dataset");
        (softmax(2, 2), data)
    }

    #[test]
    fn without_noise_or_clipping_equals_full_batch_sgd() {
        let (train, _) = prepared("breast-cancer");
        let mut specs = vec![softmax(30, 2)];
        specs.push(ModelSpec {
            architecture: Architecture::Mlp,
            hidden: vec![8], input: None,
            init_seed: 5,
            ..softmax(30, 2)
        });
        for spec in &specs {
            let global = spec.initial_weights();
            for steps in [1, 3] {
                let params = TrainingParams {
                    batch_size: u32::try_from(train.len()).expect("small"),
                    ..training(0.2, steps, 0.01)
                };
                let plain = train_local(spec, &params, &global, &train, 0).expect("trains");
                let private = train_local_dp(
                    spec,
                    &params,
                    &dp(1.0, 0.0, 1e12),
                    &global,
                    &train,
                    &mut test_rng(1),
                )
                .expect("trains");
                assert_eq!(private.examples, plain.examples);
                assert!((private.final_loss - plain.final_loss).abs() < 1e-9);
                for (a, b) in private.params.iter().zip(&plain.params) {
                    assert!((a - b).abs() < 1e-10, "{a} vs {b}");
                }
            }
        }
    }

    /// With the declared step radius, the quantized update of an honest run passes the
    /// validators' integer norm bound, also with heavy noise, a tiny batch and weight decay;
    /// without the projection a tiny batch's noise would break it.
    #[test]
    fn projected_updates_stay_within_the_validators_bound() {
        use learnchain_proto::privacy::{BoundContext, DpDeclaration, norm_sq, step_radius, update_norm_bound_units};
        let (train, _) = prepared("breast-cancer");
        let spec = softmax(30, 2);
        let global: Vec<i32> = (0..62).map(|i| (i * 7919 % 131_071) - 65_536).collect();
        let n = u32::try_from(train.len()).expect("small");
        for (q, sigma, c, steps, lr, decay) in
            [(0.1, 1.0, 1.0, 10, 0.5, 0.0), (0.01, 8.0, 2.0, 5, 1.0, 0.0), (0.3, 0.5, 0.5, 20, 0.2, 0.05)]
        {
            let decl = DpDeclaration {
                sample_rate: Fixed6::from_f64(q).expect("valid"),
                noise_multiplier: Fixed6::from_f64(sigma).expect("valid"),
                clip: Fixed6::from_f64(c).expect("valid"),
                steps,
            };
            let params = training(lr, steps, decay);
            let ctx = BoundContext {
                learning_rate: params.learning_rate,
                weight_decay: params.weight_decay,
                frac_bits: spec.frac_bits,
                params: spec.param_count(),
                base_norm_sq: norm_sq(&global),
            };
            let bound = update_norm_bound_units(&decl, n, &ctx);
            let mut worst = 0.0f64;
            for seed in 0..20 {
                let radius = step_radius(&decl, n, spec.param_count());
                let dp = DpParams { max_step_norm: radius, ..dp(q, sigma, c) };
                let u = train_local_dp(&spec, &params, &dp, &global, &train, &mut test_rng(seed)).expect("trains");
                let delta = quantize_delta(&global, &u.params, spec.frac_bits, i32::MAX);
                let norm = (norm_sq(&delta) as f64).sqrt();
                assert!(norm_sq(&delta) <= bound * bound, "norm {norm} above bound {bound}");
                worst = worst.max(norm / bound as f64);
            }
            assert!(worst > 0.05, "the bound should not be vacuous: worst ratio {worst}");
        }
    }

    #[test]
    fn every_contributing_gradient_is_clipped() {
        let (train, _) = prepared("breast-cancer");
        let spec = softmax(30, 2);
        // Large random weights make the raw per-example gradients far longer than C.
        let global: Vec<i32> = (0..62).map(|i| (i * 7919 % 131_071) - 65_536).collect();
        let net = Network::from_fixed(&spec, &global).expect("valid model");
        let clip = 0.05;
        let rows = poisson_sample(train.len(), 0.1, &mut test_rng(2));
        assert!(!rows.is_empty());
        let mut sum = vec![0.0; global.len()];
        let mut clipped = 0;
        for &row in &rows {
            let x = train.x.slice_axis(Axis(0), Slice::from(row..=row));
            let (_, raw) = net.gradient(x, &train.y[row..=row]).expect("gradient");
            let (_, g) = clipped_example_gradient(&net, &train, row, clip).expect("gradient");
            let norm = l2_norm(&g);
            assert!(norm <= clip * (1.0 + 1e-12), "norm {norm}");
            if l2_norm(&raw) > clip {
                clipped += 1;
                assert!((norm - clip).abs() < 1e-12);
            } else {
                assert_eq!(g, raw);
            }
            sum.iter_mut().zip(&g).for_each(|(s, v)| *s += v);
        }
        assert!(clipped > 0, "the test should exercise clipping");
        assert!(l2_norm(&sum) <= rows.len() as f64 * clip * (1.0 + 1e-12));
    }

    /// A model whose per-example gradients are exactly zero: every example has x = 100 and
    /// label 0, and W = [10, −10] puts the logits 2000 apart, so the softmax is exactly
    /// one-hot in f64. Whatever moves the parameters is the noise alone.
    fn zero_gradient() -> (ModelSpec, Vec<i32>, Dataset) {
        let spec = softmax(1, 2);
        let global = vec![10 << 16, -(10 << 16), 0, 0];
        let n = 50;
        let data = Dataset::new(
            ndarray::Array2::from_elem((n, 1), 100.0),
            vec![0; n],
            2,
            vec!["x".into()],
        )
        .expect("valid dataset");
        (spec, global, data)
    }

    #[test]
    fn noise_has_the_dp_sgd_scale() {
        let (spec, global, data) = zero_gradient();
        let start = to_float(&spec, &global);
        let params = training(0.1, 1, 0.0);
        let mut rng = test_rng(3);
        let silent = train_local_dp(&spec, &params, &dp(0.2, 0.0, 0.5), &global, &data, &mut rng)
            .expect("trains");
        assert_eq!(silent.params, start, "the setup must have a zero gradient");

        let (q, sigma, c) = (0.2, 1.5, 0.5);
        let expected = sigma * c / (q * data.len() as f64) * 0.1;
        let mut moves = Vec::new();
        for _ in 0..2_000 {
            let update = train_local_dp(&spec, &params, &dp(q, sigma, c), &global, &data, &mut rng)
                .expect("trains");
            moves.extend(update.params.iter().zip(&start).map(|(p, s)| p - s));
        }
        let m = moves.len() as f64;
        let mean = moves.iter().sum::<f64>() / m;
        let std = (moves.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (m - 1.0)).sqrt();
        // 8000 draws: the sample std is within ~0.8% (1 s.e.) of the truth.
        assert!(mean.abs() < 0.05 * expected, "mean {mean}");
        assert!(
            (std / expected - 1.0).abs() < 0.04,
            "std {std}, expected {expected}"
        );
    }

    #[test]
    fn noise_is_added_to_an_empty_batch() {
        let (spec, data) = tiny();
        let global = spec.initial_weights();
        let params = training(0.1, 1, 0.0);
        let mut rng = test_rng(4);
        // q tiny: the batch is almost surely empty, yet the update is noise.
        let update = train_local_dp(
            &spec,
            &params,
            &dp(1e-12, 1.0, 1.0),
            &global,
            &data,
            &mut rng,
        )
        .expect("trains");
        assert!(
            update
                .params
                .iter()
                .zip(to_float(&spec, &global))
                .any(|(p, s)| *p != s)
        );
        assert!(update.final_loss.is_finite());
    }

    #[test]
    fn poisson_sample_sizes_average_q_n() {
        let mut rng = test_rng(5);
        let (n, q, runs) = (1_000, 0.05, 2_000);
        let sizes: Vec<f64> = (0..runs)
            .map(|_| {
                let rows = poisson_sample(n, q, &mut rng);
                assert!(rows.windows(2).all(|w| w[0] < w[1]) && rows.iter().all(|&r| r < n));
                rows.len() as f64
            })
            .collect();
        let mean = sizes.iter().sum::<f64>() / f64::from(runs);
        let var = sizes.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / f64::from(runs - 1);
        let (mu, sd2) = (q * n as f64, q * (1.0 - q) * n as f64);
        // Standard error of the mean: √(47.5 / 2000) ≈ 0.15.
        assert!((mean - mu).abs() < 0.8, "mean {mean}, expected {mu}");
        assert!(
            (var / sd2 - 1.0).abs() < 0.15,
            "variance {var}, expected {sd2}"
        );
        assert_eq!(poisson_sample(7, 1.0, &mut rng), (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn softmax_learns_breast_cancer_with_dp() {
        let (train, test) = prepared("breast-cancer");
        let spec = softmax(30, 2);
        let global = vec![0; 62];
        let update = train_local_dp(
            &spec,
            &training(0.5, 200, 0.0),
            &dp(0.05, 1.0, 1.0),
            &global,
            &train,
            &mut test_rng(6),
        )
        .expect("training runs");
        assert!(update.final_loss.is_finite());
        let delta = quantize_delta(&global, &update.params, spec.frac_bits, i32::MAX);
        let next: Vec<i32> = global.iter().zip(&delta).map(|(g, d)| g + d).collect();
        let accuracy = evaluate(&spec, &next, &test)
            .expect("evaluation runs")
            .accuracy;
        assert!(accuracy >= 0.90, "test accuracy {accuracy}");
    }

    #[test]
    fn works_with_an_os_seeded_rng() {
        let (spec, data) = tiny();
        let global = spec.initial_weights();
        let mut rng = ChaCha20Rng::from_rng(rand::rngs::OsRng).expect("OS randomness");
        let update = train_local_dp(
            &spec,
            &training(0.1, 5, 0.0),
            &dp(0.5, 1.0, 1.0),
            &global,
            &data,
            &mut rng,
        )
        .expect("trains");
        assert!(update.params.iter().all(|p| p.is_finite()));
    }

    #[test]
    fn refuses_bad_params() {
        let (spec, data) = tiny();
        let global = spec.initial_weights();
        let params = training(0.1, 1, 0.0);
        let field_of = |d: DpParams| match train_local_dp(
            &spec,
            &params,
            &d,
            &global,
            &data,
            &mut test_rng(7),
        ) {
            Err(TrainError::InvalidParams { field, .. }) => field,
            other => panic!("expected InvalidParams for {d:?}, got {other:?}"),
        };
        for q in [0.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert_eq!(field_of(dp(q, 1.0, 1.0)), "sample_rate");
        }
        for sigma in [-1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(field_of(dp(0.5, sigma, 1.0)), "noise_multiplier");
        }
        assert_eq!(field_of(dp(0.5, 1e300, 1e300)), "noise_multiplier");
        for c in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(field_of(dp(0.5, 1.0, c)), "clip");
        }
        assert!(dp(1.0, 0.0, 1e-9).validate().is_ok());
        assert!(matches!(
            train_local_dp(
                &spec,
                &training(0.1, 0, 0.0),
                &dp(0.5, 1.0, 1.0),
                &global,
                &data,
                &mut test_rng(7)
            ),
            Err(TrainError::InvalidParams {
                field: "local_steps",
                ..
            })
        ));
        assert_eq!(
            train_local_dp(
                &spec,
                &params,
                &dp(0.5, 1.0, 1.0),
                &global[1..],
                &data,
                &mut test_rng(7)
            ),
            Err(TrainError::WeightCount {
                expected: 6,
                found: 5
            })
        );
    }
}
