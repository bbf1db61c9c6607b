//! Rényi-DP accountant for the Poisson-subsampled Gaussian mechanism (one DP-SGD step),
//! its composition over steps and rounds, and the conversion to `(ε, δ)`-DP.
//!
//! # The mechanism and its RDP
//!
//! One DP-SGD step includes each record independently with probability `q` (Poisson
//! sampling), clips each per-example gradient to L2 norm `C` and adds `N(0, σ²C²)` noise to
//! the sum. With sensitivity normalised to 1, Mironov, Talwar and Zhang, *Rényi
//! Differential Privacy of the Sampled Gaussian Mechanism* (2019, arXiv:1908.10530), show
//! that its Rényi divergence of order `α` is at most `ε(α) = ln(A_α) / (α − 1)` with
//!
//! ```text
//! A_α = E_{z∼μ0} [ ((1 − q) + q·μ1(z)/μ0(z))^α ],   μ0 = N(0, σ²), μ1 = N(1, σ²).
//! ```
//!
//! * **Integer `α`** (§3): expanding the binomial and using
//!   `E_{μ0}[(μ1/μ0)^i] = exp((i² − i)/(2σ²))` gives a finite sum of positive terms,
//!   computed exactly in log space (in the form `A_α − 1 = Σ_{i≥2} … expm1(…)`, so that
//!   tiny `q` keeps full relative precision):
//!
//!   ```text
//!   A_α = Σ_{i=0}^{α} C(α, i) (1 − q)^{α−i} q^i exp((i² − i)/(2σ²)).
//!   ```
//!
//! * **Fractional `α`** (§3.3): split the integral at `z0 = σ² ln(1/q − 1) + 1/2`, where
//!   `q·μ1 = (1 − q)·μ0`, so that each half is a convergent generalised binomial series:
//!
//!   ```text
//!   A_α ≤ Σ_{i≥0} |C(α, i)| [ q^i (1−q)^{α−i} exp((i²−i)/(2σ²)) · ½ erfc((i − z0)/(√2 σ))
//!                           + q^{α−i} (1−q)^i exp((j²−j)/(2σ²)) · ½ erfc((z0 − j)/(√2 σ)) ],
//!   j = α − i.
//!   ```
//!
//!   Taking `|C(α, i)|` (the coefficients alternate in sign for `i > α`) gives an upper
//!   bound, so the result stays a valid privacy guarantee; this is exactly what TensorFlow
//!   Privacy's and Google `dp-accounting`'s `_compute_log_a_frac` compute. The series is
//!   summed until both halves' terms decrease and fall below `e^{-30}` of the total; if
//!   that takes more than [`MAX_FRACTIONAL_TERMS`] terms the order is reported as `+∞`
//!   and thus ignored by the conversion, as the reference implementation does (this
//!   happens at the lowest orders when `q ≳ 0.1` and `σ ≲ 1.5`; dropping an order can only
//!   loosen `ε`, never understate it).
//! * `q = 1` is the plain Gaussian mechanism: `ε(α) = α/(2σ²)` (Mironov 2017, *Rényi
//!   Differential Privacy*, Table II); `q = 0` releases nothing: `ε(α) = 0`.
//! * `α = ∞` is excluded: orders must be finite, `> 1` and at most [`MAX_ORDER`].
//!
//! # Composition
//!
//! RDP composes additively at each fixed order (Mironov 2017, Prop. 1): `T` steps cost
//! `T·ε(α)`, and rounds with different `(q, σ, T)` cost the sum of their RDP vectors. An
//! [`RdpAccountant`] holds that running vector over a fixed set of orders.
//!
//! # Conversion to `(ε, δ)`
//!
//! Balle, Barthe, Gaboardi, Hsu and Sato, *Hypothesis Testing Interpretations and Rényi
//! Differential Privacy* (AISTATS 2020, Thm. 21): an `(α, ρ)`-RDP mechanism is
//! `(ε, δ)`-DP with
//!
//! ```text
//! ε = ρ + ln((α − 1)/α) − (ln δ + ln α)/(α − 1),
//! ```
//!
//! tighter than Mironov's `ρ + ln(1/δ)/(α − 1)`. We take the minimum over the orders and
//! clamp it at 0, and report the optimal order. As `dp-accounting` does, an order whose RDP
//! `ρ` is so small that `δ ≥ √(1 − e^{−ρ})` yields `ε = 0` directly: `ρ` bounds the KL
//! divergence (Rényi divergence grows with `α`), and Bretagnolle–Huber bounds total
//! variation by `√(1 − e^{−KL})`, and total variation `≤ δ` is `(0, δ)`-DP.
//!
//! # Numeric strategy
//!
//! Everything is summed in log space with a streaming log-sum-exp (no overflow at
//! `α = 512`, `σ = 0.5`, no underflow at `q = 10⁻⁶`); `ln(1 − q)` is `ln_1p(−q)`;
//! `ln |C(α, i)|` is accumulated incrementally as `Σ ln|α − k + 1| − ln k`; `ln erfc` is
//! evaluated without ever forming `erfc` for large arguments (see `special.rs`). The
//! test vectors below agree with Google's `dp-accounting` 0.6.0 to about 10⁻¹³ relative.
//!
//! # Choosing σ
//!
//! [`noise_for_epsilon`] finds the smallest `σ` whose `ε` stays within a target by
//! bisection (in `ln σ`) to a relative tolerance of [`NOISE_SEARCH_TOLERANCE`]; `ε` is
//! non-increasing in `σ` because more noise is post-processing of less.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{
    PrivacyError, Result, check_delta, check_order, check_q, check_sigma, check_steps,
};
use crate::special::{LN_HALF, LogSumExp, log_erfc};

pub use crate::error::MAX_ORDER;

/// Terms of the fractional-order series tried before giving up on an order (the value used
/// by TensorFlow Privacy and `dp-accounting`).
pub const MAX_FRACTIONAL_TERMS: u32 = 1000;

/// Smallest noise multiplier [`noise_for_epsilon`] returns.
pub const NOISE_SEARCH_MIN: f64 = 1e-3;

/// Largest noise multiplier [`noise_for_epsilon`] tries before declaring a target
/// unreachable.
pub const NOISE_SEARCH_MAX: f64 = 1e6;

/// Relative tolerance of the noise-multiplier bisection.
pub const NOISE_SEARCH_TOLERANCE: f64 = 1e-4;

/// The default RDP orders: 1.1 to 10.9 in steps of 0.1, 1.25, 1.75, 12 to 63, and 128,
/// 256, 512, sorted ascending. This is the order set of TensorFlow Privacy's DP-SGD
/// tutorials (with the quarter points), dense where DP-SGD's optimal order usually lies.
pub fn default_orders() -> &'static [f64] {
    static ORDERS: OnceLock<Vec<f64>> = OnceLock::new();
    ORDERS.get_or_init(|| {
        let mut orders: Vec<f64> = (11..=109).map(|k| f64::from(k) / 10.0).collect();
        orders.extend([1.25, 1.5, 1.75]);
        orders.extend((12..=63).map(f64::from));
        orders.extend([128.0, 256.0, 512.0]);
        orders.sort_by(f64::total_cmp);
        orders.dedup();
        orders
    })
}

/// An `(ε, δ)` guarantee: the `ε` reached at the caller's `δ`, and the RDP order that
/// gave the tightest bound.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spent {
    /// The privacy loss `ε` (≥ 0).
    pub epsilon: f64,
    /// The RDP order `α` at which the minimum was attained.
    pub alpha: f64,
}

/// RDP of `T = 1` step of the Poisson-subsampled Gaussian mechanism at order `alpha`:
/// sampling rate `q ∈ [0, 1]`, noise multiplier `sigma > 0`.
///
/// Returns `+∞` when the fractional-order series does not converge within
/// [`MAX_FRACTIONAL_TERMS`] terms (the conversion then ignores that order).
pub fn rdp_sampled_gaussian(q: f64, sigma: f64, alpha: f64) -> Result<f64> {
    if q != 0.0 {
        check_q(q)?;
    }
    check_sigma(sigma)?;
    check_order(alpha)?;
    Ok(rdp_unchecked(q, sigma, alpha))
}

/// [`rdp_sampled_gaussian`] for already validated parameters.
fn rdp_unchecked(q: f64, sigma: f64, alpha: f64) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if q == 1.0 {
        return alpha / (2.0 * sigma * sigma);
    }
    let log_a = if alpha.fract() == 0.0 {
        // α ≤ MAX_ORDER, so the conversion is exact.
        log_a_integer(q, sigma, alpha as u64)
    } else {
        log_a_fractional(q, sigma, alpha)
    };
    // ln A_α ≥ 0 mathematically (A_α ≥ 1 by Jensen); clamp rounding noise at tiny q.
    log_a.max(0.0) / (alpha - 1.0)
}

/// `ln A_α` for integer `α` (MTZ 2019 §3), a finite sum of positive terms.
///
/// Because `Σ_i C(α, i) (1 − q)^{α−i} q^i = 1` and the `i = 0, 1` terms have exponent 0,
/// `A_α − 1 = Σ_{i≥2} C(α, i) (1 − q)^{α−i} q^i expm1((i² − i)/(2σ²))` — still positive
/// terms, with no cancellation — and `ln A_α = ln_1p(A_α − 1)`. This keeps full relative
/// precision when `A_α − 1` is tiny (small `q`, large `σ`), where summing `A_α` itself
/// would lose the digits that matter.
fn log_a_integer(q: f64, sigma: f64, alpha: u64) -> f64 {
    let ln_q = q.ln();
    let ln_1mq = (-q).ln_1p();
    let inv_2s2 = 1.0 / (2.0 * sigma * sigma);
    let a = alpha as f64;
    let mut sum = LogSumExp::new(); // ln(A_α − 1)
    let mut ln_binom = 0.0;
    for i in 1..=alpha {
        let fi = i as f64;
        ln_binom += (a - fi + 1.0).ln() - fi.ln();
        if i < 2 {
            continue;
        }
        let x = (fi * fi - fi) * inv_2s2;
        // ln(expm1(x)) for x > 0; = x + ln(1 − e^{−x}) once expm1 would overflow.
        let ln_expm1 = if x > 30.0 { x + (-(-x).exp()).ln_1p() } else { x.exp_m1().ln() };
        sum.add(ln_binom + fi * ln_q + (a - fi) * ln_1mq + ln_expm1);
    }
    ln_1p_exp(sum.value())
}

/// `ln(1 + e^l)` without overflow or loss of precision.
fn ln_1p_exp(l: f64) -> f64 {
    if l > 0.0 { l + (-l).exp().ln_1p() } else { l.exp().ln_1p() }
}

/// `ln A_α` for fractional `α` (MTZ 2019 §3.3), or `+∞` if the series does not converge.
fn log_a_fractional(q: f64, sigma: f64, alpha: f64) -> f64 {
    let ln_q = q.ln();
    let ln_1mq = (-q).ln_1p();
    let inv_2s2 = 1.0 / (2.0 * sigma * sigma);
    let sqrt2_sigma = std::f64::consts::SQRT_2 * sigma;
    // z0 = σ² ln(1/q − 1) + 1/2, with ln(1/q − 1) = ln(1 − q) − ln q.
    let z0 = sigma * sigma * (ln_1mq - ln_q) + 0.5;

    let mut a0 = LogSumExp::new();
    let mut a1 = LogSumExp::new();
    let mut last_s0 = f64::NEG_INFINITY;
    let mut last_s1 = f64::NEG_INFINITY;
    let mut ln_binom = 0.0; // ln |C(α, i)|
    for i in 0..MAX_FRACTIONAL_TERMS {
        let fi = f64::from(i);
        if i > 0 {
            ln_binom += (alpha - fi + 1.0).abs().ln() - fi.ln();
        }
        let j = alpha - fi;
        let ln_t0 = ln_binom + fi * ln_q + j * ln_1mq;
        let ln_t1 = ln_binom + j * ln_q + fi * ln_1mq;
        let ln_e0 = LN_HALF + log_erfc((fi - z0) / sqrt2_sigma);
        let ln_e1 = LN_HALF + log_erfc((z0 - j) / sqrt2_sigma);
        let s0 = ln_t0 + (fi * fi - fi) * inv_2s2 + ln_e0;
        let s1 = ln_t1 + (j * j - j) * inv_2s2 + ln_e1;
        a0.add(s0);
        a1.add(s1);
        let mut total = a0;
        total.add(a1.value());
        let total = total.value();
        if s0 < last_s0 && s1 < last_s1 && s0.max(s1) < total - 30.0 {
            return total;
        }
        last_s0 = s0;
        last_s1 = s1;
    }
    f64::INFINITY
}

/// Converts an RDP curve to `(ε, δ)` by Balle et al. 2020, Thm. 21 (see the module docs),
/// minimising over the orders. Orders with infinite or NaN RDP are skipped.
pub fn rdp_to_epsilon(orders: &[f64], rdp: &[f64], delta: f64) -> Result<Spent> {
    check_delta(delta)?;
    if orders.is_empty() {
        return Err(PrivacyError::NoOrders);
    }
    if orders.len() != rdp.len() {
        return Err(PrivacyError::LengthMismatch { orders: orders.len(), rdp: rdp.len() });
    }
    for &a in orders {
        check_order(a)?;
    }
    let ln_delta = delta.ln();
    let mut best: Option<Spent> = None;
    for (&alpha, &r) in orders.iter().zip(rdp) {
        if !r.is_finite() {
            continue;
        }
        let r = r.max(0.0);
        let epsilon = if delta * delta + (-r).exp_m1() > 0.0 {
            // Total variation ≤ √(1 − e^{−r}) < δ: (0, δ)-DP.
            0.0
        } else {
            r + (-1.0 / alpha).ln_1p() - (ln_delta + alpha.ln()) / (alpha - 1.0)
        };
        if best.is_none_or(|b| epsilon < b.epsilon) {
            best = Some(Spent { epsilon, alpha });
        }
    }
    let best = best.ok_or(PrivacyError::NoFiniteBound)?;
    Ok(Spent { epsilon: best.epsilon.max(0.0), alpha: best.alpha })
}

/// A running RDP curve over a fixed set of orders: compose mechanisms into it, read the
/// `(ε, δ)` guarantee out of it.
#[derive(Debug, Clone, PartialEq)]
pub struct RdpAccountant {
    orders: Vec<f64>,
    rdp: Vec<f64>,
}

impl Default for RdpAccountant {
    fn default() -> Self {
        Self::new()
    }
}

impl RdpAccountant {
    /// An empty accountant over [`default_orders`].
    pub fn new() -> Self {
        let orders = default_orders().to_vec();
        let rdp = vec![0.0; orders.len()];
        Self { orders, rdp }
    }

    /// An empty accountant over the given orders (each finite, `> 1`, `≤ MAX_ORDER`).
    pub fn with_orders(orders: &[f64]) -> Result<Self> {
        if orders.is_empty() {
            return Err(PrivacyError::NoOrders);
        }
        for &a in orders {
            check_order(a)?;
        }
        Ok(Self { orders: orders.to_vec(), rdp: vec![0.0; orders.len()] })
    }

    /// The orders tracked.
    pub fn orders(&self) -> &[f64] {
        &self.orders
    }

    /// The accumulated RDP at each order (same indexing as [`orders`](Self::orders)).
    pub fn rdp(&self) -> &[f64] {
        &self.rdp
    }

    /// Composes `steps` steps of the Poisson-subsampled Gaussian mechanism with sampling
    /// rate `q ∈ (0, 1]` and noise multiplier `sigma`.
    pub fn compose(&mut self, q: f64, sigma: f64, steps: u64) -> Result<()> {
        check_q(q)?;
        check_sigma(sigma)?;
        check_steps(steps)?;
        let t = steps as f64;
        for (r, &alpha) in self.rdp.iter_mut().zip(&self.orders) {
            *r += t * rdp_unchecked(q, sigma, alpha);
        }
        Ok(())
    }

    /// The `(ε, δ)` guarantee of everything composed so far.
    pub fn spent(&self, delta: f64) -> Result<Spent> {
        rdp_to_epsilon(&self.orders, &self.rdp, delta)
    }
}

/// `ε` at `δ` after `steps` steps of DP-SGD with sampling rate `q` and noise multiplier
/// `sigma`, over the [`default_orders`].
pub fn epsilon(q: f64, sigma: f64, steps: u64, delta: f64) -> Result<Spent> {
    check_delta(delta)?;
    let mut acc = RdpAccountant::new();
    acc.compose(q, sigma, steps)?;
    acc.spent(delta)
}

/// The smallest noise multiplier `σ ∈ [NOISE_SEARCH_MIN, NOISE_SEARCH_MAX]` for which
/// `steps` steps at sampling rate `q` stay within `target_eps` at `delta`, to a relative
/// tolerance of [`NOISE_SEARCH_TOLERANCE`]: the returned `σ` always satisfies
/// `epsilon(q, σ, steps, delta) ≤ target_eps`, and `σ·(1 − NOISE_SEARCH_TOLERANCE)` does
/// not (unless `σ = NOISE_SEARCH_MIN`).
///
/// Errors if a parameter is invalid, or with [`PrivacyError::Unreachable`] if even
/// `σ = NOISE_SEARCH_MAX` exceeds the target.
pub fn noise_for_epsilon(target_eps: f64, delta: f64, q: f64, steps: u64) -> Result<f64> {
    check_noise_search(target_eps, delta, q, steps)?;
    // ε as a plain number; +∞ when no order gives a bound.
    smallest_noise(target_eps, |sigma| match epsilon(q, sigma, steps, delta) {
        Ok(s) => Ok(s.epsilon),
        Err(PrivacyError::NoFiniteBound) => Ok(f64::INFINITY),
        Err(e) => Err(e),
    })
}

/// The parameter checks of a noise search: `target_eps` finite and `> 0`, then `δ`, `q`
/// and `steps`.
pub(crate) fn check_noise_search(target_eps: f64, delta: f64, q: f64, steps: u64) -> Result<()> {
    if !(target_eps.is_finite() && target_eps > 0.0) {
        return Err(PrivacyError::TargetEpsilon(target_eps));
    }
    check_delta(delta)?;
    check_q(q)?;
    check_steps(steps)
}

/// The search behind [`noise_for_epsilon`], for any accountant whose `ε` (given by `eps_at`,
/// `+∞` when unbounded) does not increase with `σ`: bracket by factors of 4 from `σ = 1`,
/// then bisect geometrically to the relative tolerance [`NOISE_SEARCH_TOLERANCE`]. The
/// returned `σ` always satisfies `eps_at(σ) ≤ target_eps`.
pub(crate) fn smallest_noise(
    target_eps: f64,
    mut eps_at: impl FnMut(f64) -> Result<f64>,
) -> Result<f64> {
    // Bracket: ε(lo) > target ≥ ε(hi).
    let mut lo: f64;
    let mut hi: f64 = 1.0;
    if eps_at(1.0)? > target_eps {
        loop {
            lo = hi;
            hi = (hi * 4.0).min(NOISE_SEARCH_MAX);
            let e = eps_at(hi)?;
            if e <= target_eps {
                break;
            }
            if hi >= NOISE_SEARCH_MAX {
                return Err(PrivacyError::Unreachable {
                    target: target_eps,
                    max_sigma: NOISE_SEARCH_MAX,
                    achieved: e,
                });
            }
        }
    } else {
        loop {
            lo = (hi / 4.0).max(NOISE_SEARCH_MIN);
            if eps_at(lo)? > target_eps {
                break;
            }
            if lo <= NOISE_SEARCH_MIN {
                return Ok(NOISE_SEARCH_MIN);
            }
            hi = lo;
        }
    }

    // Geometric bisection until the bracket is within the relative tolerance.
    while hi - lo > NOISE_SEARCH_TOLERANCE * hi {
        let mid = (lo * hi).sqrt();
        if eps_at(mid)? <= target_eps {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rel(a: f64, b: f64) -> f64 {
        if b == 0.0 { a.abs() } else { ((a - b) / b).abs() }
    }

    /// `(q, σ, steps, δ, ε, optimal α)` from Google's `dp-accounting` 0.6.0 (PyPI), computed
    /// offline (not at test time) with
    /// `RdpAccountant(orders).compose(PoissonSampledDpEvent(q, GaussianDpEvent(σ)), steps)`
    /// and `get_epsilon_and_optimal_order(δ)`, where `orders` is exactly
    /// [`default_orders`] (`sorted({k/10 for k in 11..=109} ∪ {1.25, 1.75} ∪ {12..=63} ∪
    /// {128, 256, 512})`). In several of them (q ≥ 0.1 with small σ) the fractional series
    /// does not converge at the lowest orders, which both implementations then skip.
    #[allow(clippy::excessive_precision)]
    const DP_ACCOUNTING_VECTORS: &[(f64, f64, u64, f64, f64, f64)] = &[
        (0.01, 1.1, 1000, 1e-05, 1.7117701662429012, 9.6),
        (0.001, 0.8, 100000, 1e-07, 3.541120945883255, 7.6),
        (1.0, 5.0, 10, 1e-05, 2.8136532471298397, 7.9),
        (1.0, 1.0, 1, 0.001, 3.5365620688888635, 4.3),
        (0.1, 0.5, 1, 0.001, 4.766569279919652, 2.6),
        (0.05, 2.0, 5000, 1e-06, 11.037621491603753, 3.6),
        (0.25, 10.0, 100000, 1e-05, 72.92045593041004, 2.0),
        (0.5, 1.5, 100, 0.0001, 20.918615279187883, 2.0),
        (0.002, 4.0, 20000, 1e-07, 0.340988077564531, 63.0),
        (0.004266666666666667, 1.0, 14063, 1e-05, 3.0787909699693463, 7.1),
        (0.001, 10.0, 1, 1e-05, 0.008369666463237254, 512.0),
        (0.3, 0.7, 1000, 1e-05, 389.03911878989805, 1.8),
        (0.02, 0.6, 3000, 1e-06, 30.456935640656926, 1.9),
        (0.8, 3.0, 50, 0.001, 7.973568752728129, 2.8),
    ];

    /// `(q, σ, α, RDP of one step)` from `dp-accounting` 0.6.0's
    /// `_compute_rdp_poisson_subsampled_gaussian(q, σ, [α])`; `inf` marks an order where
    /// its fractional series does not converge within 1000 terms.
    #[allow(clippy::excessive_precision)]
    const DP_ACCOUNTING_RDP: &[(f64, f64, f64, f64)] = &[
        (0.01, 1.1, 1.5, 9.858756968009191e-05),
        (0.01, 1.1, 10.7, 0.001116644528803512),
        (0.01, 1.1, 2.0, 0.00012851008160516542),
        (0.01, 1.1, 512.0, 206.95606567316818),
        (0.5, 0.5, 2.5, 3.849489983604059),
        (0.5, 0.5, 64.0, 127.29585048324068),
        (1e-06, 3.0, 3.3, 1.9390649555838504e-13),
        (0.999, 1.0, 4.2, 2.098740402174815),
        (0.2, 0.8, 1.1, f64::INFINITY),
        (0.05, 2.0, 7.0, 0.0026852815677708987),
        (0.3, 0.7, 1.25, f64::INFINITY),
        (0.001, 50.0, 100.5, 2.0104812155259614e-08),
    ];

    /// `(target ε, δ, q, steps, σ)` from `dp-accounting` 0.6.0's `calibrate_dp_mechanism`
    /// (same accountant and orders, `tol = 1e-7`).
    #[allow(clippy::excessive_precision)]
    const DP_ACCOUNTING_CALIBRATION: &[(f64, f64, f64, u64, f64)] = &[
        (1.0, 1e-05, 0.01, 1000, 1.5131221626359375),
        (3.0, 1e-06, 0.004, 15000, 1.0568201496358827),
        (8.0, 1e-05, 1.0, 1, 0.6376701890733899),
        (0.5, 1e-07, 0.001, 100000, 3.122958231601604),
    ];

    #[test]
    fn classic_vector() -> Result<()> {
        // The DP-SGD tutorial example, ε ≈ 1.7118 at δ = 1e-5.
        let s = epsilon(0.01, 1.1, 1000, 1e-5)?;
        assert!(rel(s.epsilon, 1.7118) < 0.01, "got {s:?}");
        Ok(())
    }

    #[test]
    fn default_orders_are_as_documented() {
        let o = default_orders();
        assert_eq!(o.len(), 99 + 2 + 52 + 3);
        assert_eq!(o[0], 1.1);
        assert!(o.contains(&1.25) && o.contains(&1.75) && o.contains(&10.9));
        assert!(o.contains(&12.0) && o.contains(&63.0) && !o.contains(&64.0));
        assert_eq!(&o[o.len() - 3..], &[128.0, 256.0, 512.0]);
        assert!(o.windows(2).all(|w| w[0] < w[1]));
        assert!(o.iter().all(|&a| check_order(a).is_ok()));
    }

    #[test]
    fn matches_dp_accounting_epsilon() -> Result<()> {
        let mut worst = 0.0_f64;
        for &(q, sigma, steps, delta, want, want_alpha) in DP_ACCOUNTING_VECTORS {
            let got = epsilon(q, sigma, steps, delta)?;
            let err = rel(got.epsilon, want);
            worst = worst.max(err);
            assert!(
                err < 1e-9,
                "q={q} σ={sigma} T={steps} δ={delta}: ε {} vs {want} (rel {err:e})",
                got.epsilon
            );
            assert_eq!(got.alpha, want_alpha, "optimal order for q={q} σ={sigma}");
        }
        assert!(worst < 0.01);
        Ok(())
    }

    #[test]
    fn matches_dp_accounting_rdp() -> Result<()> {
        for &(q, sigma, alpha, want) in DP_ACCOUNTING_RDP {
            let got = rdp_sampled_gaussian(q, sigma, alpha)?;
            if want.is_infinite() {
                assert!(got.is_infinite(), "q={q} σ={sigma} α={alpha}: {got}, want inf");
            } else {
                let err = rel(got, want);
                assert!(err < 1e-9, "q={q} σ={sigma} α={alpha}: {got} vs {want} (rel {err:e})");
            }
        }
        Ok(())
    }

    #[test]
    fn matches_dp_accounting_calibration() -> Result<()> {
        for &(target, delta, q, steps, want) in DP_ACCOUNTING_CALIBRATION {
            let got = noise_for_epsilon(target, delta, q, steps)?;
            assert!(rel(got, want) < 2.0 * NOISE_SEARCH_TOLERANCE, "σ {got} vs {want}");
            assert!(epsilon(q, got, steps, delta)?.epsilon <= target);
        }
        Ok(())
    }

    #[test]
    fn special_cases() -> Result<()> {
        // q = 1: the plain Gaussian mechanism, α/(2σ²).
        assert_eq!(rdp_sampled_gaussian(1.0, 2.0, 3.5)?, 3.5 / 8.0);
        // q = 0: nothing released.
        assert_eq!(rdp_sampled_gaussian(0.0, 2.0, 3.5)?, 0.0);
        // Integer orders via the fractional path agree with the exact sum.
        for &(q, sigma) in &[(0.01, 1.1), (0.1, 2.0), (0.001, 0.7)] {
            for alpha in [2u64, 3, 8, 32] {
                let exact = log_a_integer(q, sigma, alpha);
                let series = log_a_fractional(q, sigma, alpha as f64);
                if series.is_finite() {
                    assert!(rel(series, exact) < 1e-9, "q={q} σ={sigma} α={alpha}: {series} vs {exact}");
                }
            }
        }
        // Tiny q: A_α = 1 + O(q²) keeps full precision (mpmath 50-digit quadrature of
        // the defining integral gives 1.7627862464037381e-13).
        let r = rdp_sampled_gaussian(1e-6, 3.0, 3.0)?;
        assert!(rel(r, 1.762_786_246_403_738e-13) < 1e-9, "{r}");
        // Tiny q: no underflow to a negative or NaN RDP.
        let r = rdp_sampled_gaussian(1e-12, 1.0, 512.0)?;
        assert!(r.is_finite() && r >= 0.0);
        // Small σ and large α: huge but finite, no overflow.
        let r = rdp_sampled_gaussian(0.5, 0.3, 512.0)?;
        assert!(r.is_finite() && r > 1000.0);
        Ok(())
    }

    #[test]
    fn zero_epsilon_when_total_variation_is_below_delta() -> Result<()> {
        let s = epsilon(1e-4, 100.0, 1, 1e-3)?;
        assert_eq!(s.epsilon, 0.0);
        Ok(())
    }

    #[test]
    fn bad_parameters_are_named() {
        assert!(matches!(epsilon(0.0, 1.0, 1, 1e-5), Err(PrivacyError::SamplingRate(_))));
        assert!(matches!(epsilon(1.5, 1.0, 1, 1e-5), Err(PrivacyError::SamplingRate(_))));
        assert!(matches!(epsilon(f64::NAN, 1.0, 1, 1e-5), Err(PrivacyError::SamplingRate(_))));
        assert!(matches!(epsilon(0.1, 0.0, 1, 1e-5), Err(PrivacyError::NoiseMultiplier(_))));
        assert!(matches!(epsilon(0.1, -1.0, 1, 1e-5), Err(PrivacyError::NoiseMultiplier(_))));
        assert!(matches!(epsilon(0.1, f64::INFINITY, 1, 1e-5), Err(PrivacyError::NoiseMultiplier(_))));
        assert!(matches!(epsilon(0.1, 1.0, 0, 1e-5), Err(PrivacyError::ZeroSteps)));
        assert!(matches!(epsilon(0.1, 1.0, 1, 0.0), Err(PrivacyError::Delta(_))));
        assert!(matches!(epsilon(0.1, 1.0, 1, 1.0), Err(PrivacyError::Delta(_))));
        assert!(matches!(rdp_sampled_gaussian(0.1, 1.0, 1.0), Err(PrivacyError::Order(_))));
        assert!(matches!(rdp_sampled_gaussian(0.1, 1.0, f64::INFINITY), Err(PrivacyError::Order(_))));
        assert!(matches!(RdpAccountant::with_orders(&[]), Err(PrivacyError::NoOrders)));
        assert!(matches!(RdpAccountant::with_orders(&[2.0, 0.5]), Err(PrivacyError::Order(_))));
        assert!(matches!(rdp_to_epsilon(&[2.0], &[1.0, 2.0], 1e-5), Err(PrivacyError::LengthMismatch { .. })));
        assert!(matches!(rdp_to_epsilon(&[2.0], &[f64::INFINITY], 1e-5), Err(PrivacyError::NoFiniteBound)));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(noise_for_epsilon(bad, 1e-5, 0.01, 100), Err(PrivacyError::TargetEpsilon(_))));
        }
        let msg = epsilon(2.0, 1.0, 1, 1e-5).map(|_| ()).expect_err("q = 2 is invalid").to_string();
        assert!(msg.contains("sampling rate q"), "{msg}");
    }

    #[test]
    fn unreachable_target_is_an_error() {
        // 10⁶ steps at q = 1 cannot reach ε = 10⁻⁶ at δ = 10⁻⁹ even with σ = 10⁶.
        match noise_for_epsilon(1e-6, 1e-9, 1.0, 1_000_000) {
            Err(PrivacyError::Unreachable { target, max_sigma, achieved }) => {
                assert_eq!(target, 1e-6);
                assert_eq!(max_sigma, NOISE_SEARCH_MAX);
                assert!(achieved > target);
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }

    #[test]
    fn composition_is_additive() -> Result<()> {
        let mut a = RdpAccountant::new();
        a.compose(0.02, 1.3, 300)?;
        a.compose(0.02, 1.3, 700)?;
        let mut b = RdpAccountant::new();
        b.compose(0.02, 1.3, 1000)?;
        for (x, y) in a.rdp().iter().zip(b.rdp()) {
            assert!(rel(*x, *y) < 1e-12);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn monotone_in_steps(q in 1e-3f64..1.0, sigma in 0.5f64..10.0, t in 1u64..50_000, extra in 1u64..50_000, delta_exp in 3i32..8) {
            let delta = 10f64.powi(-delta_exp);
            let a = epsilon(q, sigma, t, delta).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let b = epsilon(q, sigma, t + extra, delta).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(b.epsilon >= a.epsilon, "{a:?} then {b:?}");
        }

        #[test]
        fn monotone_in_q(q in 1e-3f64..0.5, dq in 1e-3f64..0.5, sigma in 0.5f64..10.0, t in 1u64..10_000) {
            let a = epsilon(q, sigma, t, 1e-5).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let b = epsilon(q + dq, sigma, t, 1e-5).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(b.epsilon >= a.epsilon * (1.0 - 1e-12), "{a:?} then {b:?}");
        }

        #[test]
        fn decreasing_in_sigma(q in 1e-3f64..1.0, sigma in 0.5f64..10.0, ds in 1e-3f64..5.0, t in 1u64..10_000) {
            let a = epsilon(q, sigma, t, 1e-5).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let b = epsilon(q, sigma + ds, t, 1e-5).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(b.epsilon <= a.epsilon * (1.0 + 1e-12), "{a:?} then {b:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        #[test]
        fn noise_for_epsilon_round_trips(target in 0.3f64..20.0, q in 1e-3f64..1.0, t in 1u64..20_000, delta_exp in 3i32..8) {
            let delta = 10f64.powi(-delta_exp);
            let sigma = noise_for_epsilon(target, delta, q, t).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let at = epsilon(q, sigma, t, delta).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(at.epsilon <= target, "ε({sigma}) = {} > {target}", at.epsilon);
            if sigma > NOISE_SEARCH_MIN {
                let below = epsilon(q, sigma * (1.0 - NOISE_SEARCH_TOLERANCE), t, delta)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(below.epsilon > target, "σ {sigma} is not the smallest: {below:?}");
            }
        }
    }
}
