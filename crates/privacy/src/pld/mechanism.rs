//! One step of the Poisson-subsampled Gaussian mechanism as a discrete privacy loss
//! distribution: the exact hockey-stick curves of both directions of add-or-remove-one
//! neighbouring and their pessimistic connect-the-dots discretisation (the method is in the
//! [parent module](super)'s docs). Parameters enter already validated; a [`Pmf`] leaves.

use std::sync::OnceLock;

use super::pmf::{Pmf, TooLarge};
use super::{MAX_PLD_LEN, NOISE_TAIL_LOG_MASS};
use crate::special::{log_ndtr, ndtr};

/// The two directions of add-or-remove-one neighbouring (see the [parent module](super)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// `P = (1 − q)·μ + q·μ(· + 1)`, `Q = μ`.
    Remove,
    /// `P = μ`, `Q = (1 − q)·μ + q·μ(· − 1)`.
    Add,
}

impl Side {
    /// The exact hockey-stick divergence `δ(ε)` of one step in this direction.
    pub(super) fn delta(self, q: f64, sigma: f64, eps: f64) -> f64 {
        match self {
            Side::Remove => {
                let m = eps.exp_m1();
                if m <= -q {
                    // ε ≤ ln(1 − q): every outcome has loss above ε.
                    return (-m).min(1.0);
                }
                (q * gaussian_delta(sigma, (m / q).ln_1p())).min(1.0)
            }
            Side::Add => {
                let m = (-eps).exp_m1();
                if m <= -q {
                    // ε ≥ −ln(1 − q), the largest loss.
                    return 0.0;
                }
                let eta = -(m / q).ln_1p();
                (q * (eps - eta).exp() * gaussian_delta(sigma, eta)).min(1.0)
            }
        }
    }

    /// `[ε_lo, ε_hi]`: the losses at the noise quantiles `½e^{−50}` either side.
    fn loss_range(self, q: f64, sigma: f64) -> (f64, f64) {
        // x_lo = σz − 1 (remove) or σz (add), x_hi = −σz (remove) or 1 − σz (add); at
        // those points (x + ½)/σ² and (x − ½)/σ² are ±w.
        let w = (0.5 - sigma * noise_tail_quantile()) / (sigma * sigma);
        match self {
            Side::Remove => (log_mixture(q, -w), log_mixture(q, w)),
            Side::Add => (-log_mixture(q, w), -log_mixture(q, -w)),
        }
    }
}

/// The Gaussian mechanism's hockey-stick divergence at loss `eta` (sensitivity 1, noise
/// `σ`): `Φ(1/(2σ) − ση) − e^η Φ(−1/(2σ) − ση)`, for any real `eta`.
pub(super) fn gaussian_delta(sigma: f64, eta: f64) -> f64 {
    if eta == f64::INFINITY {
        return 0.0;
    }
    if eta == f64::NEG_INFINITY {
        return 1.0;
    }
    let a = 0.5 / sigma - sigma * eta;
    let b = a - 1.0 / sigma;
    (ndtr(a) - (eta + log_ndtr(b)).exp()).clamp(0.0, 1.0)
}

/// `ln(1 − q + q·e^t)` without overflow or cancellation.
fn log_mixture(q: f64, t: f64) -> f64 {
    if t > 0.0 {
        t + (q + (1.0 - q) * (-t).exp()).ln()
    } else {
        (q * t.exp_m1()).ln_1p()
    }
}

/// The standard normal quantile `z < 0` with `Φ(z) = ½e^{−50}`, by bisection.
fn noise_tail_quantile() -> f64 {
    static Z: OnceLock<f64> = OnceLock::new();
    *Z.get_or_init(|| {
        let target = NOISE_TAIL_LOG_MASS - std::f64::consts::LN_2;
        let (mut lo, mut hi) = (-40.0_f64, 0.0_f64);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if log_ndtr(mid) < target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        // The lower end: its tail mass is below the target.
        lo
    })
}

/// One step of the Poisson-subsampled Gaussian mechanism in direction `side`, by pessimistic
/// connect-the-dots on the grid of width `d`.
pub(super) fn single_step(
    q: f64,
    sigma: f64,
    side: Side,
    d: f64,
) -> std::result::Result<Pmf, TooLarge> {
    let (lo, hi) = side.loss_range(q, sigma);
    let (i_lo, i_hi) = ((lo / d).floor(), (hi / d).ceil());
    let n = i_hi - i_lo + 1.0;
    if !(n.is_finite() && n <= MAX_PLD_LEN as f64 && i_lo.abs() < 1e15) {
        return Err(TooLarge);
    }
    let (lower, n) = (i_lo as i64, n as usize);
    let mut deltas: Vec<f64> = (0..n)
        .map(|k| side.delta(q, sigma, (lower + k as i64) as f64 * d))
        .collect();
    // δ is non-increasing; enforce it against rounding.
    for k in 1..n {
        deltas[k] = deltas[k].min(deltas[k - 1]);
    }
    let (probs, infinity) = connect_the_dots(&deltas, d);
    Ok(Pmf {
        lower,
        probs,
        infinity,
    }
    .trimmed())
}

/// The masses on a contiguous grid of width `d` (and on `+∞`) whose hockey-stick curve
/// passes through `deltas` at the grid points (Doroshenko et al. 2022, Algorithm 1, for a
/// fixed gap); negative masses from rounding become 0.
fn connect_the_dots(deltas: &[f64], d: f64) -> (Vec<f64>, f64) {
    let n = deltas.len();
    let last = deltas[n - 1];
    if n == 1 {
        return (vec![(1.0 - last).max(0.0)], last);
    }
    let up = d.exp_m1(); // e^Δ − 1
    let down = (-d).exp_m1(); // e^−Δ − 1
    let grow = d.exp();
    let mut probs = Vec::with_capacity(n);
    probs.push(1.0 - deltas[0] + (deltas[1] - deltas[0]) / up);
    for w in deltas.windows(3) {
        probs.push(((w[2] - w[1]) - grow * (w[1] - w[0])) / up);
    }
    probs.push((deltas[n - 1] - deltas[n - 2]) / down);
    for p in &mut probs {
        *p = p.max(0.0);
    }
    (probs, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pld::rel;

    #[test]
    fn closed_forms_agree_at_q_one_and_in_limits() {
        for &(sigma, e) in &[(1.0, 0.3), (2.5, 1.7), (0.6, -0.4)] {
            let g = gaussian_delta(sigma, e);
            assert!(rel(Side::Remove.delta(1.0, sigma, e), g) < 1e-13);
            assert!(rel(Side::Add.delta(1.0, sigma, e), g) < 1e-13);
        }
        let (q, sigma) = (0.1_f64, 1.0);
        // Remove: δ = 1 − e^ε at and below ε = ln(1 − q); add: 0 from −ln(1 − q) on.
        let e = (1.0 - q).ln() - 0.01;
        assert!(rel(Side::Remove.delta(q, sigma, e), -e.exp_m1()) < 1e-15);
        assert_eq!(Side::Add.delta(q, sigma, -(1.0 - q).ln() + 1e-9), 0.0);
        assert!(Side::Add.delta(q, sigma, -30.0) > 1.0 - 1e-12);
        assert_eq!(gaussian_delta(1.0, f64::INFINITY), 0.0);
        assert_eq!(gaussian_delta(1.0, f64::NEG_INFINITY), 1.0);
        // Φ(z) = ½e^{−50} at the tail quantile.
        let z = noise_tail_quantile();
        assert!(
            (log_ndtr(z) - (NOISE_TAIL_LOG_MASS - std::f64::consts::LN_2)).abs() < 1e-9,
            "{z}"
        );
    }

    #[test]
    fn connect_the_dots_reproduces_its_deltas() {
        // The discrete distribution's own hockey-stick curve passes through the input points,
        // and the masses sum to 1.
        let (q, sigma, d) = (0.05, 0.9, 0.01);
        let pmf = single_step(q, sigma, Side::Remove, d).expect("fits");
        let total: f64 = pmf.probs.iter().sum::<f64>() + pmf.infinity;
        assert!((total - 1.0).abs() < 1e-12, "{total}");
        for k in (0..pmf.probs.len()).step_by(37) {
            let e = (pmf.lower + k as i64) as f64 * d;
            let want = Side::Remove.delta(q, sigma, e);
            let got = pmf.delta_for_epsilon(e, d);
            assert!((got - want).abs() < 1e-12, "ε={e}: {got} vs {want}");
        }
    }
}
