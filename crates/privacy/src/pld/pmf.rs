//! Discrete privacy loss distributions on the grid `ℤ·Δ`: reading `ε` and `δ` off one, and
//! composing many by FFT inside a Chernoff-bounded window (the method is in the [parent
//! module](super)'s docs).

use std::cell::RefCell;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::MAX_PLD_LEN;

/// Fourier coefficients below `e^{−80}` in modulus are set to zero after exponentiation
/// (they change no output by more than `e^{−80}`).
const LOG_NEGLIGIBLE: f64 = -80.0;

/// A grid or FFT would exceed [`MAX_PLD_LEN`]: coarsen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TooLarge;

/// A privacy loss distribution on the grid `ℤ·Δ`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pmf {
    /// Grid index of `probs[0]`: its loss is `lower · Δ`.
    pub(super) lower: i64,
    /// Probability of each grid loss, from `lower` up.
    pub(super) probs: Vec<f64>,
    /// Probability of an infinite loss (including truncated tails).
    pub(super) infinity: f64,
}

impl Pmf {
    /// Loss 0 with probability 1: the composition of nothing.
    pub(super) fn identity() -> Self {
        Self {
            lower: 0,
            probs: vec![1.0],
            infinity: 0.0,
        }
    }

    /// Drops zero masses at both ends.
    pub(super) fn trimmed(mut self) -> Self {
        let end = self
            .probs
            .iter()
            .rposition(|&p| p > 0.0)
            .map_or(0, |i| i + 1);
        self.probs.truncate(end);
        let start = self.probs.iter().position(|&p| p > 0.0).unwrap_or(0);
        self.probs.drain(..start);
        self.lower += start as i64;
        self
    }

    /// The smallest `ε ≥ 0` with `δ(ε) ≤ delta`; `+∞` if the infinite-loss mass exceeds
    /// `delta`. On `[l_{k−1}, l_k]`, `δ(ε) = p_∞ + A_k − e^{ε − l_k} B_k` with
    /// `A_k = Σ_{j≥k} p_j` and `B_k = Σ_{j≥k} p_j e^{l_k − l_j} ≤ A_k` (no overflow).
    pub(super) fn epsilon_for_delta(&self, delta: f64, d: f64) -> f64 {
        if self.infinity > delta {
            return f64::INFINITY;
        }
        let decay = (-d).exp();
        let (mut a, mut b) = (0.0_f64, 0.0_f64);
        for (k, &p) in self.probs.iter().enumerate().rev() {
            let l_k = (self.lower + k as i64) as f64 * d;
            // δ(l_k) ≤ delta is known here (from the step above, or δ = p_∞ at the top).
            if l_k <= 0.0 {
                return 0.0;
            }
            a += p;
            b = b * decay + p;
            let at_left = self.infinity + a - decay * b;
            if k == 0 || at_left > delta {
                let excess = self.infinity + a - delta;
                if excess <= 0.0 {
                    // Only possible below the grid: δ stays ≤ delta down to ε = −∞.
                    return 0.0;
                }
                return (l_k + (excess / b).ln()).clamp(0.0, l_k);
            }
        }
        0.0
    }

    /// `δ(ε) = p_∞ + Σ_{l > ε} p(l)(1 − e^{ε−l})`.
    pub(super) fn delta_for_epsilon(&self, eps: f64, d: f64) -> f64 {
        let mut s = self.infinity;
        for (k, &p) in self.probs.iter().enumerate().rev() {
            let l = (self.lower + k as i64) as f64 * d;
            if l <= eps {
                break;
            }
            s += p * -(eps - l).exp_m1();
        }
        s.min(1.0)
    }

    /// `ln Σ_k p_k e^{λk}` (`k` from 0, grid units), rounded up: summed outward from the end
    /// that `λ` weights most, stopping (and adding a bound for the rest) once weights are
    /// negligible.
    fn log_mgf(&self, lambda: f64) -> f64 {
        let n = self.probs.len();
        if n == 0 {
            return f64::NEG_INFINITY;
        }
        let rate = lambda.abs();
        let sum = if lambda > 0.0 {
            weighted_sum(self.probs.iter().rev(), rate)
        } else {
            weighted_sum(self.probs.iter(), rate)
        };
        let shift = if lambda > 0.0 {
            lambda * (n - 1) as f64
        } else {
            0.0
        };
        // A margin for the rounding of the weights (≤ 64 products, ~1e-14) and of the sum
        // (at most n·u ≤ 2.4e-10 relative for n ≤ MAX_PLD_LEN).
        shift + sum.ln() + 1e-9
    }
}

/// `Σ_j p_j e^{−rate·j}` over `probs` in order, stopping once the weight is below `10⁻⁴⁰`
/// of the sum and adding the weight itself, which bounds the rest (it has mass ≤ 1).
fn weighted_sum<'a>(probs: impl Iterator<Item = &'a f64>, rate: f64) -> f64 {
    let step = (-rate).exp();
    let (mut sum, mut w) = (0.0_f64, 1.0_f64);
    for (j, &p) in probs.enumerate() {
        if j % 64 == 0 {
            // Re-anchor the weight so its rounding does not accumulate.
            w = (-rate * j as f64).exp();
        }
        if w < 1e-40 * sum {
            return sum + w;
        }
        sum += p * w;
        w *= step;
    }
    sum
}

/// A forward and an inverse real FFT plan of one length.
type Plans = (
    usize,
    Arc<dyn RealToComplex<f64>>,
    Arc<dyn ComplexToReal<f64>>,
);

/// FFT plans kept per thread: the two directions of a composition usually need two lengths.
const KEPT_PLANS: usize = 2;

thread_local! {
    /// The last FFT plans made on this thread, most recent last. Planning costs a few
    /// milliseconds and a noise search or a ledger recomputes compositions of the same
    /// lengths; keeping only [`KEPT_PLANS`] lengths bounds the memory held between calls.
    static LAST_PLANS: RefCell<Vec<Plans>> = const { RefCell::new(Vec::new()) };
}

/// Forward and inverse real FFT plans of length `n`.
fn plans(n: usize) -> (Arc<dyn RealToComplex<f64>>, Arc<dyn ComplexToReal<f64>>) {
    LAST_PLANS.with(|cell| {
        let mut kept = cell.borrow_mut();
        if let Some(i) = kept.iter().position(|p| p.0 == n) {
            let hit = kept.remove(i);
            let plans = (Arc::clone(&hit.1), Arc::clone(&hit.2));
            kept.push(hit);
            return plans;
        }
        if kept.len() >= KEPT_PLANS {
            // Drop the oldest before making new ones.
            kept.remove(0);
        }
        let mut planner = RealFftPlanner::<f64>::new();
        let (forward, inverse) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
        kept.push((n, Arc::clone(&forward), Arc::clone(&inverse)));
        (forward, inverse)
    })
}

/// The composition of `count` copies of each `Pmf` (see the module docs).
pub(super) fn compose(parts: &[(Pmf, u64)], tail: f64) -> std::result::Result<Pmf, TooLarge> {
    if let [(pmf, 1)] = parts {
        return Ok(pmf.clone());
    }
    // Relative grid index of the composed loss: S = Σ (k_i), 0 ≤ S ≤ max_rel.
    let max_rel: f64 = parts
        .iter()
        .map(|(p, c)| *c as f64 * (p.probs.len().max(1) - 1) as f64)
        .sum();
    let offset: i128 = parts
        .iter()
        .map(|(p, c)| i128::from(p.lower) * i128::from(*c))
        .sum();
    let (lo_rel, hi_rel) = chernoff_window(parts, tail, max_rel);
    let truncated = lo_rel > 0.0 || hi_rel < max_rel;
    let width = hi_rel - lo_rel + 1.0;
    let longest = parts.iter().map(|(p, _)| p.probs.len()).max().unwrap_or(1);
    if width.is_nan() || width > MAX_PLD_LEN as f64 || longest > MAX_PLD_LEN {
        return Err(TooLarge);
    }
    let (lo_rel, width) = (lo_rel as u64, width as usize);
    let lower = i64::try_from(offset + i128::from(lo_rel)).map_err(|_| TooLarge)?;
    let n = fft_len(width.max(longest));
    if n > MAX_PLD_LEN {
        return Err(TooLarge);
    }

    let (forward, inverse) = plans(n);
    let mut acc = vec![Complex::new(1.0, 0.0); n / 2 + 1];
    let mut buf = vec![0.0; n];
    let mut spectrum = forward.make_output_vec();
    for (pmf, count) in parts {
        buf.fill(0.0);
        buf[..pmf.probs.len()].copy_from_slice(&pmf.probs);
        // Lengths are consistent by construction, so this cannot fail.
        forward
            .process(&mut buf, &mut spectrum)
            .map_err(|_| TooLarge)?;
        multiply_power(&mut acc, &spectrum, *count as f64);
    }
    // A real signal's spectrum: the first and (n even) last bins are real.
    acc[0].im = 0.0;
    acc[n / 2].im = 0.0;
    inverse.process(&mut acc, &mut buf).map_err(|_| TooLarge)?;
    let scale = 1.0 / n as f64;
    let probs: Vec<f64> = (0..width as u64)
        .map(|k| (buf[((lo_rel + k) % n as u64) as usize] * scale).max(0.0))
        .collect();

    let log_keep: f64 = parts
        .iter()
        .map(|(p, c)| *c as f64 * (-p.infinity).ln_1p())
        .sum();
    let infinity = (-log_keep.exp_m1() + if truncated { tail } else { 0.0 }).min(1.0);
    Ok(Pmf {
        lower,
        probs,
        infinity,
    }
    .trimmed())
}

/// `acc[k] *= z[k]^count` in polar form, zeroing products below `e^{LOG_NEGLIGIBLE}`.
fn multiply_power(acc: &mut [Complex<f64>], z: &[Complex<f64>], count: f64) {
    for (a, z) in acc.iter_mut().zip(z) {
        let a2 = a.norm_sqr();
        let z2 = z.norm_sqr();
        let log_z = 0.5 * z2.ln();
        if a2 == 0.0 || 0.5 * a2.ln() + count * log_z < LOG_NEGLIGIBLE || z2 == 0.0 {
            *a = Complex::new(0.0, 0.0);
            continue;
        }
        let (sin, cos) = (count * z.im.atan2(z.re)).sin_cos();
        let mag = (count * log_z).exp();
        *a *= Complex::new(mag * cos, mag * sin);
    }
}

/// The relative-index window `[lo, hi] ⊆ [0, max_rel]` outside which each tail of the
/// composition has mass at most `tail/2`, by the Chernoff bound minimised over `λ`.
fn chernoff_window(parts: &[(Pmf, u64)], tail: f64, max_rel: f64) -> (f64, f64) {
    if tail <= 0.0 {
        return (0.0, max_rel);
    }
    let log_2_over_tail = (2.0 / tail).ln();
    // Σ_g T_g ψ_g(λ) + ln(2/τ), divided by |λ|: for λ > 0 a bound above which mass ≤ τ/2;
    // for λ < 0, its negation bounds from below.
    let bound = |lambda: f64| -> f64 {
        let psi: f64 = parts
            .iter()
            .map(|(p, c)| *c as f64 * p.log_mgf(lambda))
            .sum();
        (psi + log_2_over_tail) / lambda.abs()
    };
    let hi = minimize_log_scale(bound, 1e-12, 1e3).ceil().min(max_rel);
    let lo = (-minimize_log_scale(|l| bound(-l), 1e-12, 1e3))
        .floor()
        .max(0.0);
    // Both are valid bounds; if rounding crossed them, keep the whole range between.
    if lo <= hi { (lo, hi) } else { (0.0, max_rel) }
}

/// The smallest value of `f` seen in a golden-section search over `ln λ ∈ [ln a, ln b]`
/// (`f` is unimodal there: the Chernoff bound's derivative changes sign once). Every value
/// of `f` is a valid bound, so the smallest seen is returned even if not the optimum.
fn minimize_log_scale(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    let ratio = (5.0_f64.sqrt() - 1.0) / 2.0;
    let (mut x0, mut x3) = (a.ln(), b.ln());
    let mut x1 = x3 - ratio * (x3 - x0);
    let mut x2 = x0 + ratio * (x3 - x0);
    let (mut f1, mut f2) = (f(x1.exp()), f(x2.exp()));
    let mut best = f1.min(f2);
    for _ in 0..60 {
        if f1 <= f2 {
            x3 = x2;
            x2 = x1;
            f2 = f1;
            x1 = x3 - ratio * (x3 - x0);
            f1 = f(x1.exp());
            best = best.min(f1);
        } else {
            x0 = x1;
            x1 = x2;
            f1 = f2;
            x2 = x0 + ratio * (x3 - x0);
            f2 = f(x2.exp());
            best = best.min(f2);
        }
        // λ within 2 % of the optimum: the bound is then within a fraction of a percent.
        if x3 - x0 < 0.02 {
            break;
        }
    }
    if best.is_nan() { f64::INFINITY } else { best }
}

/// The smallest FFT length `≥ n` of the form `2^a`, `3·2^a` or `5·2^a` (even, at least 2).
fn fft_len(n: usize) -> usize {
    let n = n.max(2);
    [1usize, 3, 5]
        .iter()
        .filter_map(|&m| {
            let mut len = 2 * m;
            while len < n {
                len = len.checked_mul(2)?;
            }
            Some(len)
        })
        .min()
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pld::mechanism::{Side, single_step};

    /// Direct O(n·m) convolution of two PMFs, for checking the FFT.
    fn convolve(a: &Pmf, b: &Pmf) -> Pmf {
        let mut probs = vec![0.0; a.probs.len() + b.probs.len() - 1];
        for (i, x) in a.probs.iter().enumerate() {
            for (j, y) in b.probs.iter().enumerate() {
                probs[i + j] += x * y;
            }
        }
        Pmf {
            lower: a.lower + b.lower,
            probs,
            infinity: 1.0 - (1.0 - a.infinity) * (1.0 - b.infinity),
        }
    }

    #[test]
    fn fft_composition_matches_direct_convolution() {
        let d = 0.02;
        let a = single_step(0.3, 1.0, Side::Add, d).expect("fits");
        let b = single_step(0.1, 2.0, Side::Add, d).expect("fits");
        let direct = convolve(&convolve(&a, &a), &b);
        // Without truncation the FFT result is the same distribution.
        let fft = compose(&[(a.clone(), 2), (b.clone(), 1)], 0.0).expect("fits");
        let shift = usize::try_from(fft.lower - direct.lower).expect("fft window starts inside");
        let mut worst = 0.0_f64;
        for (k, &p) in direct.probs.iter().enumerate() {
            let got = k
                .checked_sub(shift)
                .and_then(|i| fft.probs.get(i))
                .copied()
                .unwrap_or(0.0);
            worst = worst.max((got - p).abs());
        }
        assert!(worst < 1e-15, "max difference {worst:e}");
        assert!((fft.infinity - direct.infinity).abs() < 1e-18);
        // With truncation, the window keeps everything but ≤ τ and τ is charged to infinity.
        let tail = 1e-10;
        let cut = compose(&[(a, 2), (b, 1)], tail).expect("fits");
        assert!(cut.probs.len() <= direct.probs.len());
        assert!(cut.infinity >= direct.infinity + tail * 0.999);
        for e in [0.0, 0.1, 0.5, 1.0] {
            assert!(cut.delta_for_epsilon(e, d) >= direct.delta_for_epsilon(e, d) - 1e-15);
        }
    }

    #[test]
    fn fft_lengths() {
        assert_eq!(fft_len(0), 2);
        assert_eq!(fft_len(2), 2);
        assert_eq!(fft_len(7), 8);
        assert_eq!(fft_len(11), 12);
        assert_eq!(fft_len(81), 96);
        assert_eq!(fft_len(1025), 1280);
        for n in 1..5000 {
            let l = fft_len(n);
            assert!(
                l >= n && l.is_multiple_of(2) && l <= n.max(2) * 4 / 3 + 2,
                "{n} → {l}"
            );
        }
    }
}
