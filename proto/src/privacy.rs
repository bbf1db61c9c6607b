//! The network's differential-privacy policy, what a submission declares about how it was
//! trained, and the update-norm bound validators enforce (DESIGN.md, decision 4).
//!
//! # Policy and declaration
//!
//! The genesis carries a [`PrivacyPolicy`]: the smallest noise multiplier `σ`, the largest
//! per-example clip bound `C`, the most DP-SGD steps per round `T` and the largest Poisson
//! sampling rate `q` a submission may use, and the `δ` data sources account at by default.
//! Every submission carries a [`DpDeclaration`] of its own `(q, σ, C, T)`, covered by its
//! signature. Validators refuse a declaration weaker than the policy (smaller `σ`, larger
//! `C`, `T` or `q`) — see [`PrivacyPolicy::check`] — and an update whose norm exceeds
//! the bound its declaration implies ([`update_norm_bound_units`]).
//!
//! A declaration is a claim: validators cannot re-run training, so they cannot see whether
//! noise was really added. What they can enforce is that the update is no larger than an
//! honest run with the declared parameters could have produced. That bounds how far one
//! update can move the model; the robust aggregation rules bound the rest.
//!
//! # The step and the bound
//!
//! One DP-SGD step of an honest data source with `n` examples (`n` =
//! [`crate::Submission::num_examples`]) and expected batch `b = q·n`:
//!
//! ```text
//!   s_t = Σ_{i ∈ B_t} clip_C(∇ℓ_i) + N(0, σ²C²·I_d)      (the Gaussian mechanism)
//!   g_t = proj_R(s_t / b)                                  (post-processing: no privacy cost)
//!   W_{t+1} = W_t − η·(g_t + λ·W_t)                        (λ = weight decay, on the model)
//! ```
//!
//! where `proj_R` scales a vector down to L2 norm `R` if it is longer, with the *step radius*
//!
//! ```text
//!   R = C·(1 + κ) + σ·C·(√d + τ) / b,      κ = 1,  τ = 10.
//! ```
//!
//! `C·(1 + κ)` is the signal a batch of up to `(1 + κ)·b = 2b` examples can carry
//! (a Poisson batch rarely exceeds twice its mean when `b ≥ 10`; a larger one is scaled
//! down, which only shortens that step). `σ·C·(√d + τ)/b` is the noise slack: the norm of
//! `N(0, σ²C²·I_d)` exceeds `σC(√d + t)` with probability at most `exp(−t²/2)` (Gaussian
//! concentration of a 1-Lipschitz function), about `2·10⁻²²` at `τ = 10`. Because `proj_R`
//! acts on the already noised sum and `R` depends only on public values, the privacy
//! guarantee is exactly that of the unprojected mechanism.
//!
//! From the recursion, with `0 ≤ ηλ ≤ 1` (a genesis rule) and `W_0` the base model,
//!
//! ```text
//!   ‖W_T − W_0‖ ≤ min(1, T·η·λ)·‖W_0‖ + T·η·R.
//! ```
//!
//! (`W_T − W_0 = ((1−ηλ)^T − 1)·W_0 − η·Σ_t (1−ηλ)^{T−1−t}·g_t`, and `|(1−ηλ)^T − 1| ≤
//! min(1, Tηλ)`.) The submitted update is that difference rounded to the fixed-point grid,
//! which moves each coordinate by at most half a unit and so the norm by at most `√d/2`
//! units; clamping to `max_update_abs` only shrinks it. Validators therefore accept an
//! update `Δ` (in grid units of `2^-frac_bits`) when
//!
//! ```text
//!   ‖Δ‖² ≤ B²,   B = ⌈2^f·(min(1, Tηλ)·‖W_0‖ + T·η·R)⌉ + ⌈√d/2⌉,
//! ```
//!
//! computed by [`update_norm_bound_units`] in integers from the declared and genesis values
//! (all carried as integer millionths), every division and square root rounded *up*, so the
//! bound never falls below the real-valued one and every node computes the same number.
//! The honest trainer projects to `R·(1 − 10⁻⁹)` ([`step_radius`]) so float rounding can
//! never take it over.
//!
//! What the declared values can buy: a larger declared `σ` or a smaller `n` enlarges the
//! noise slack. `σ` is capped at [`MAX_NOISE_MULTIPLIER`] and `b = q·n` must be at least one
//! example, so the bound is always finite and at most that of `b = 1`.

use serde::{Deserialize, Serialize};

use crate::fixed::{Fixed6, Probability};

/// Signal slack `κ` of the step radius: batches up to `(1 + κ)` times their expected size
/// pass unscaled.
pub const SIGNAL_SLACK: u64 = 1;
/// Noise tail `τ` of the step radius: the noise norm exceeds `σC(√d + τ)` with
/// probability at most `exp(−τ²/2)`.
pub const NOISE_TAIL: u64 = 10;
/// Largest noise multiplier a submission may declare (an update at `σ = 10⁴` is noise).
pub const MAX_NOISE_MULTIPLIER: Fixed6 = Fixed6(10_000 * Fixed6::SCALE);
/// Largest clip bound a genesis may set.
pub const MAX_CLIP_BOUND: Fixed6 = Fixed6(1_000 * Fixed6::SCALE);
/// Relative margin by which the honest trainer's projection radius stays below the bound's.
pub const RADIUS_MARGIN: f64 = 1e-9;

/// The network's privacy policy (genesis section `[privacy]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyPolicy {
    /// The `δ` at which data sources account their `ε` unless their operator picks a
    /// smaller one. In `(0, 1)`.
    pub delta: Probability,
    /// Smallest noise multiplier `σ` a submission may declare. `> 0`.
    pub min_noise_multiplier: Fixed6,
    /// Largest per-example clip bound `C` a submission may declare. `> 0`.
    pub clip_bound: Fixed6,
    /// Most DP-SGD steps a submission may declare for one round. At least
    /// `training.local_steps`.
    pub max_local_steps: u32,
    /// Largest Poisson sampling rate `q` a submission may declare. In `(0, 1]`.
    pub max_sample_rate: Fixed6,
}

/// How one submission says it was trained: DP-SGD with these parameters (covered by the
/// submission's signature).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DpDeclaration {
    /// Poisson sampling rate `q`.
    pub sample_rate: Fixed6,
    /// Noise multiplier `σ`.
    pub noise_multiplier: Fixed6,
    /// Per-example clip bound `C`.
    pub clip: Fixed6,
    /// DP-SGD steps in the round, `T`.
    pub steps: u32,
}

/// Why a declaration breaks the policy; the message names the parameter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// `σ` below the policy's minimum (or above [`MAX_NOISE_MULTIPLIER`]).
    #[error("declared noise multiplier {declared} is outside [{min}, {max}] (the network's policy)")]
    NoiseMultiplier {
        /// Declared `σ`.
        declared: Fixed6,
        /// Policy minimum.
        min: Fixed6,
        /// Protocol maximum.
        max: Fixed6,
    },
    /// `C` zero or above the clip bound.
    #[error("declared clip bound {declared} is outside (0, {max}] (the network's policy)")]
    Clip {
        /// Declared `C`.
        declared: Fixed6,
        /// Policy maximum.
        max: Fixed6,
    },
    /// `T` zero or above the maximum.
    #[error("declared local steps {declared} are outside [1, {max}] (the network's policy)")]
    Steps {
        /// Declared `T`.
        declared: u32,
        /// Policy maximum.
        max: u32,
    },
    /// `q` zero or above the maximum.
    #[error("declared sampling rate {declared} is outside (0, {max}] (the network's policy)")]
    SampleRate {
        /// Declared `q`.
        declared: Fixed6,
        /// Policy maximum.
        max: Fixed6,
    },
    /// `q·n < 1`: the expected batch holds less than one example.
    #[error("declared sampling rate {q} times {n} examples is an expected batch below one example")]
    EmptyBatch {
        /// Declared `q`.
        q: Fixed6,
        /// Declared examples.
        n: u32,
    },
}

impl PrivacyPolicy {
    /// Checks a declaration (with the submission's example count `n`) against the policy.
    pub fn check(&self, d: &DpDeclaration, n: u32) -> Result<(), PolicyViolation> {
        if d.noise_multiplier < self.min_noise_multiplier || d.noise_multiplier > MAX_NOISE_MULTIPLIER {
            return Err(PolicyViolation::NoiseMultiplier {
                declared: d.noise_multiplier,
                min: self.min_noise_multiplier,
                max: MAX_NOISE_MULTIPLIER,
            });
        }
        if d.clip.0 == 0 || d.clip > self.clip_bound {
            return Err(PolicyViolation::Clip { declared: d.clip, max: self.clip_bound });
        }
        if d.steps == 0 || d.steps > self.max_local_steps {
            return Err(PolicyViolation::Steps { declared: d.steps, max: self.max_local_steps });
        }
        if d.sample_rate.0 == 0 || d.sample_rate > self.max_sample_rate {
            return Err(PolicyViolation::SampleRate { declared: d.sample_rate, max: self.max_sample_rate });
        }
        if u128::from(d.sample_rate.0) * u128::from(n) < u128::from(Fixed6::SCALE) {
            return Err(PolicyViolation::EmptyBatch { q: d.sample_rate, n });
        }
        Ok(())
    }
}

/// `⌈√x⌉` for any `u128`.
pub fn isqrt_ceil(x: u128) -> u128 {
    let r = x.isqrt();
    if r * r == x { r } else { r + 1 }
}

fn div_ceil(a: u128, b: u128) -> u128 {
    a.div_ceil(b.max(1))
}

/// The step radius `R` of the module docs, in millionths, rounded up; `None` on overflow.
fn step_radius_millionths(d: &DpDeclaration, n: u32, params: u64) -> Option<u128> {
    const S: u128 = Fixed6::SCALE as u128;
    let b = (u128::from(d.sample_rate.0) * u128::from(n)).max(1); // millionths of examples
    let sqrt_d = isqrt_ceil(u128::from(params).checked_mul(S * S)?); // millionths
    let s = sqrt_d.checked_add(u128::from(NOISE_TAIL) * S)?;
    let noise = u128::from(d.noise_multiplier.0)
        .checked_mul(u128::from(d.clip.0))?
        .checked_mul(s)?;
    let noise = div_ceil(noise, b.checked_mul(S)?);
    u128::from(d.clip.0).checked_mul(1 + u128::from(SIGNAL_SLACK))?.checked_add(noise)
}

/// The honest trainer's projection radius for one step: `R·(1 − 10⁻⁹)` of the module docs,
/// as a float, for a declaration `d`, `n` examples and `params` model parameters.
pub fn step_radius(d: &DpDeclaration, n: u32, params: u64) -> f64 {
    let c = d.clip.to_f64();
    let b = d.sample_rate.to_f64() * f64::from(n);
    let r = c * (1.0 + SIGNAL_SLACK as f64)
        + d.noise_multiplier.to_f64() * c * ((params as f64).sqrt() + NOISE_TAIL as f64) / b;
    r * (1.0 - RADIUS_MARGIN)
}

/// The inputs of the update-norm bound that come from the genesis and the base model.
#[derive(Clone, Copy, Debug)]
pub struct BoundContext {
    /// Learning rate `η`.
    pub learning_rate: Fixed6,
    /// Weight decay `λ`.
    pub weight_decay: Fixed6,
    /// Fractional bits `f` of the fixed-point grid.
    pub frac_bits: u8,
    /// Model parameters `d`.
    pub params: u64,
    /// `Σ w_i²` of the base model in grid units (only read when `λ > 0`).
    pub base_norm_sq: u128,
}

impl BoundContext {
    /// The context of a chain with genesis `g`, for a base model whose `Σ w_i²` is
    /// `base_norm_sq`.
    pub fn for_genesis(g: &crate::Genesis, base_norm_sq: u128) -> Self {
        BoundContext {
            learning_rate: g.training.learning_rate,
            weight_decay: g.training.weight_decay,
            frac_bits: g.model.frac_bits,
            params: g.model.param_count(),
            base_norm_sq,
        }
    }
}

/// `B` of the module docs: the largest L2 norm, in grid units, of an update an honest data
/// source could submit with declaration `d` and `n` examples. `u128::MAX` (no bound beyond
/// `max_update_abs`) if any intermediate product overflows, which the policy's caps on `σ`
/// and `C` keep out of reach for genesis-valid models.
pub fn update_norm_bound_units(d: &DpDeclaration, n: u32, ctx: &BoundContext) -> u128 {
    bound_checked(d, n, ctx).unwrap_or(u128::MAX)
}

fn bound_checked(d: &DpDeclaration, n: u32, ctx: &BoundContext) -> Option<u128> {
    const S: u128 = Fixed6::SCALE as u128;
    let r = step_radius_millionths(d, n, ctx.params)?;
    let steps = u128::from(d.steps);
    let eta = u128::from(ctx.learning_rate.0);
    let grid = 1u128.checked_shl(u32::from(ctx.frac_bits))?;
    // T·η·R·2^f: millionths × millionths → divide by S².
    let travel = div_ceil(steps.checked_mul(eta)?.checked_mul(r)?.checked_mul(grid)?, S * S);
    let decay = if ctx.weight_decay.0 == 0 {
        0
    } else {
        let factor = div_ceil(steps.checked_mul(eta)?.checked_mul(u128::from(ctx.weight_decay.0))?, S).min(S);
        div_ceil(factor.checked_mul(isqrt_ceil(ctx.base_norm_sq))?, S)
    };
    let sqrt_d = isqrt_ceil(u128::from(ctx.params).checked_mul(S * S)?);
    let rounding = div_ceil(sqrt_d, 2 * S);
    travel.checked_add(decay)?.checked_add(rounding)
}

/// `Σ v_i²` of a fixed-point vector, exactly (`u128` holds it for any `i32` vector of
/// up to 2^64 entries).
pub fn norm_sq(v: &[i32]) -> u128 {
    // |x|² ≤ 2^62 fits u64; only the running sum needs u128 (one add with carry).
    v.iter().map(|&x| u128::from(u64::from(x.unsigned_abs()).pow(2))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f6(v: f64) -> Fixed6 {
        Fixed6::from_f64(v).expect("valid")
    }

    fn decl(q: f64, sigma: f64, c: f64, steps: u32) -> DpDeclaration {
        DpDeclaration { sample_rate: f6(q), noise_multiplier: f6(sigma), clip: f6(c), steps }
    }

    fn policy() -> PrivacyPolicy {
        PrivacyPolicy {
            delta: Probability::from_f64(1e-5).expect("valid"),
            min_noise_multiplier: f6(1.0),
            clip_bound: f6(1.0),
            max_local_steps: 10,
            max_sample_rate: f6(0.2),
        }
    }

    fn ctx(lr: f64, decay: f64, params: u64, base_norm_sq: u128) -> BoundContext {
        BoundContext { learning_rate: f6(lr), weight_decay: f6(decay), frac_bits: 16, params, base_norm_sq }
    }

    #[test]
    fn policy_refuses_each_weaker_parameter() {
        let p = policy();
        assert_eq!(p.check(&decl(0.2, 1.0, 1.0, 10), 100), Ok(()));
        assert_eq!(p.check(&decl(0.1, 3.0, 0.5, 1), 100), Ok(()));
        assert!(matches!(p.check(&decl(0.2, 0.99, 1.0, 10), 100), Err(PolicyViolation::NoiseMultiplier { .. })));
        assert!(matches!(p.check(&decl(0.2, 20_000.0, 1.0, 10), 100), Err(PolicyViolation::NoiseMultiplier { .. })));
        assert!(matches!(p.check(&decl(0.2, 1.0, 1.01, 10), 100), Err(PolicyViolation::Clip { .. })));
        assert!(matches!(p.check(&decl(0.2, 1.0, 0.0, 10), 100), Err(PolicyViolation::Clip { .. })));
        assert!(matches!(p.check(&decl(0.2, 1.0, 1.0, 11), 100), Err(PolicyViolation::Steps { .. })));
        assert!(matches!(p.check(&decl(0.2, 1.0, 1.0, 0), 100), Err(PolicyViolation::Steps { .. })));
        assert!(matches!(p.check(&decl(0.21, 1.0, 1.0, 10), 100), Err(PolicyViolation::SampleRate { .. })));
        assert!(matches!(p.check(&decl(0.0, 1.0, 1.0, 10), 100), Err(PolicyViolation::SampleRate { .. })));
        assert!(matches!(p.check(&decl(0.2, 1.0, 1.0, 10), 4), Err(PolicyViolation::EmptyBatch { .. })));
        assert_eq!(p.check(&decl(0.2, 1.0, 1.0, 10), 5), Ok(()));
        let msg = p.check(&decl(0.2, 0.5, 1.0, 10), 100).expect_err("weaker").to_string();
        assert!(msg.contains("noise multiplier 0.5"), "{msg}");
    }

    /// The integer bound is the real-valued formula rounded up, never below it, and within
    /// a few units of it.
    #[test]
    fn integer_bound_matches_the_formula() {
        for (q, sigma, c, steps, n, lr, decay, params, base) in [
            (0.1, 1.0, 1.0, 20u32, 114u32, 0.1, 0.0, 62u64, 0u128),
            (0.05, 3.7, 0.5, 5, 1000, 0.5, 0.0, 100_000, 0),
            (1.0, 0.3, 2.0, 1, 1, 1.0, 0.01, 10, 4_000_000_000),
            (0.3, 10.0, 0.1, 100, 77, 0.05, 0.5, 1_000_000, 1 << 50),
        ] {
            let d = decl(q, sigma, c, steps);
            let cx = ctx(lr, decay, params, base);
            let got = update_norm_bound_units(&d, n, &cx) as f64;
            let r = c * 2.0 + sigma * c * ((params as f64).sqrt() + 10.0) / (q * n as f64);
            let base_norm = (base as f64).sqrt();
            let exact = 65536.0 * (f64::min(1.0, steps as f64 * lr * decay) * base_norm / 65536.0 + steps as f64 * lr * r)
                + (params as f64).sqrt() / 2.0;
            assert!(got >= exact - 1e-6 * exact, "bound {got} below {exact}");
            assert!(got <= exact * (1.0 + 1e-5) + 4.0, "bound {got} far above {exact}");
            // The trainer's radius stays under the integer radius.
            assert!(step_radius(&d, n, params) * 1e6 <= step_radius_millionths(&d, n, params).expect("no overflow") as f64);
        }
    }

    #[test]
    fn bound_grows_with_each_parameter_and_saturates() {
        let cx = ctx(0.1, 0.0, 62, 0);
        let base = update_norm_bound_units(&decl(0.1, 1.0, 1.0, 10), 100, &cx);
        assert!(update_norm_bound_units(&decl(0.1, 2.0, 1.0, 10), 100, &cx) > base);
        assert!(update_norm_bound_units(&decl(0.1, 1.0, 2.0, 10), 100, &cx) > base);
        assert!(update_norm_bound_units(&decl(0.1, 1.0, 1.0, 20), 100, &cx) > base);
        assert!(update_norm_bound_units(&decl(0.1, 1.0, 1.0, 10), 50, &cx) > base);
        let huge = DpDeclaration { sample_rate: Fixed6(1), noise_multiplier: Fixed6(u64::MAX), clip: Fixed6(u64::MAX), steps: u32::MAX };
        let big = BoundContext { learning_rate: Fixed6(u64::MAX), weight_decay: Fixed6(u64::MAX), frac_bits: 24, params: 4_000_000, base_norm_sq: u128::MAX };
        assert_eq!(update_norm_bound_units(&huge, 1, &big), u128::MAX);
    }

    #[test]
    fn isqrt_ceil_is_exact() {
        for x in [0u128, 1, 2, 3, 4, 15, 16, 17, u128::from(u64::MAX), u128::MAX] {
            let r = isqrt_ceil(x);
            assert!(r.checked_mul(r).is_none_or(|sq| sq >= x));
            assert!(r == 0 || (r - 1) * (r - 1) < x);
        }
        assert_eq!(norm_sq(&[3, -4, i32::MIN]), 25 + (1u128 << 62));
    }
}
