//! Deliberately hostile data sources, for tests and demos of the aggregation rules.
//!
//! An adversary speaks the protocol correctly — it is a registered member, signs with its
//! ring, declares DP parameters that meet the genesis policy and keeps its update within
//! the coordinate bound and the update-norm bound validators enforce — and only its update
//! is hostile:
//!
//! | kind | update |
//! |---|---|
//! | `sign-flip[:K]` | the honest update, negated (and times K, default 1) |
//! | `scale:K` | the honest update times K |
//! | `gaussian:S` | the honest update plus N(0, S²) noise per coordinate (S in model units) |
//! | `label-flip` | an honest update trained on labels mapped `y → classes − 1 − y` |
//! | `zero` | all zeros |
//! | `replay-stale` | the update it computed for the previous round, submitted on the new base |
//!
//! A hostile update longer than its declaration allows would simply be rejected, so the
//! adversary shrinks it onto the norm bound ([`Adversary::corrupt`]): the strongest attack
//! the validators let through. A node run as an adversary says so at start-up, in a
//! warning, and in `node_info`.

use std::fmt;
use std::str::FromStr;

use learnchain_model::Dataset;
use learnchain_proto::privacy::{BoundContext, norm_sq, update_norm_bound_units};
use learnchain_proto::{DpDeclaration, Genesis};
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// What validators accept of one update: the coordinate bound, and the norm bound its
/// declaration implies on its base model.
#[derive(Clone, Copy, Debug)]
pub struct UpdateLimits {
    /// Largest absolute coordinate (genesis `max_update_abs`).
    pub max_abs: i32,
    /// Grid units per model unit (`2^frac_bits`).
    pub scale: f64,
    /// The update-norm bound in grid units.
    pub norm_bound: u128,
}

impl UpdateLimits {
    /// The limits of an update declared with `declaration` over `examples` examples, on the
    /// model `base`.
    pub fn new(genesis: &Genesis, declaration: &DpDeclaration, examples: u32, base: &[i32]) -> Self {
        let base_norm = if genesis.training.weight_decay.0 == 0 { 0 } else { norm_sq(base) };
        let ctx = BoundContext::for_genesis(genesis, base_norm);
        UpdateLimits {
            max_abs: genesis.consensus.max_update_abs,
            scale: genesis.model.scale(),
            norm_bound: update_norm_bound_units(declaration, examples, &ctx),
        }
    }
}

/// A kind of hostile data source.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Adversary {
    /// Negates its honest update and multiplies it by this factor (1 by default).
    SignFlip(f64),
    /// Multiplies its honest update by this factor.
    Scale(f64),
    /// Adds Gaussian noise of this standard deviation (model units) to every coordinate.
    Gaussian(f64),
    /// Trains on flipped labels.
    LabelFlip,
    /// Submits zeros.
    Zero,
    /// Submits the previous round's update again.
    ReplayStale,
}

impl fmt::Display for Adversary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Adversary::SignFlip(k) if *k == 1.0 => f.write_str("sign-flip"),
            Adversary::SignFlip(k) => write!(f, "sign-flip:{k}"),
            Adversary::Scale(k) => write!(f, "scale:{k}"),
            Adversary::Gaussian(s) => write!(f, "gaussian:{s}"),
            Adversary::LabelFlip => f.write_str("label-flip"),
            Adversary::Zero => f.write_str("zero"),
            Adversary::ReplayStale => f.write_str("replay-stale"),
        }
    }
}

impl FromStr for Adversary {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let number = |p: Option<&str>, what: &str| -> Result<f64, String> {
            let p = p.ok_or_else(|| format!("{s}: give {what}, e.g. {s}:10"))?;
            let v: f64 = p.trim().parse().map_err(|_| format!("{s}: {what} must be a number, got {p:?}"))?;
            if v.is_finite() && v > 0.0 { Ok(v) } else { Err(format!("{s}: {what} must be a positive number, got {v}")) }
        };
        let (name, param) = match s.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        };
        match (name, param) {
            ("sign-flip", None) => Ok(Adversary::SignFlip(1.0)),
            ("sign-flip", p) => Ok(Adversary::SignFlip(number(p, "the factor K")?)),
            ("scale", p) => Ok(Adversary::Scale(number(p, "the factor K")?)),
            ("gaussian", p) => Ok(Adversary::Gaussian(number(p, "the standard deviation S")?)),
            ("label-flip", None) => Ok(Adversary::LabelFlip),
            ("zero", None) => Ok(Adversary::Zero),
            ("replay-stale", None) => Ok(Adversary::ReplayStale),
            ("label-flip" | "zero" | "replay-stale", Some(_)) => Err(format!("{name} takes no parameter")),
            _ => Err(format!(
                "unknown adversary {s:?}: expected sign-flip[:K], scale:K, gaussian:S, label-flip, zero or replay-stale"
            )),
        }
    }
}

impl Adversary {
    /// The training data this adversary trains on: labels flipped for `label-flip`, else
    /// the data as it is.
    pub fn training_data(&self, data: &Dataset) -> Dataset {
        let mut d = data.clone();
        if *self == Adversary::LabelFlip {
            let top = d.classes.saturating_sub(1);
            for y in d.y.iter_mut() {
                *y = top - (*y).min(top);
            }
        }
        d
    }

    /// Turns the honest quantized update `honest` into this adversary's, given the update
    /// it computed last round (for `replay-stale`), then keeps it within what validators
    /// accept (`limits`).
    pub fn corrupt<R: Rng>(&self, honest: Vec<i32>, previous: Option<&[i32]>, limits: &UpdateLimits, rng: &mut R) -> Vec<i32> {
        let scale = limits.scale;
        let max = i64::from(limits.max_abs);
        let clamp = |v: f64| -> i32 {
            let r = v.round();
            if r.is_nan() { 0 } else { r.clamp(-(max as f64), max as f64) as i32 }
        };
        let mut delta: Vec<i32> = match self {
            Adversary::SignFlip(k) => honest.iter().map(|&v| clamp(-f64::from(v) * k)).collect(),
            Adversary::Scale(k) => honest.iter().map(|&v| clamp(f64::from(v) * k)).collect(),
            // S was checked positive and finite when parsed; should the product not be a
            // valid deviation, the update stays honest rather than the node failing.
            Adversary::Gaussian(s) => match Normal::new(0.0, s * scale) {
                Ok(noise) => honest.iter().map(|&v| clamp(f64::from(v) + noise.sample(rng))).collect(),
                Err(_) => honest,
            },
            Adversary::LabelFlip => honest,
            Adversary::Zero => vec![0; honest.len()],
            Adversary::ReplayStale => match previous {
                Some(p) if p.len() == honest.len() => p.to_vec(),
                _ => honest,
            },
        };
        // Onto the norm bound, exactly as validators check it (integers, squares).
        let bound = limits.norm_bound;
        let limit = bound.saturating_mul(bound);
        // Truncation toward zero only shortens the vector, so this ends (at worst at zero).
        while norm_sq(&delta) > limit {
            let factor = bound as f64 / (norm_sq(&delta) as f64).sqrt() * 0.999_999;
            delta = delta.iter().map(|&v| (f64::from(v) * factor).trunc() as i32).collect();
        }
        delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn genesis() -> Genesis {
        let mut g = Genesis::template("adv", 3, 2, vec![]);
        g.enrolment.open_stamp_bits = 1;
        g
    }

    #[test]
    fn parses_and_prints() {
        for s in ["sign-flip", "sign-flip:4", "scale:10", "gaussian:0.5", "label-flip", "zero", "replay-stale"] {
            let a: Adversary = s.parse().expect(s);
            assert_eq!(a.to_string(), s);
        }
        for bad in ["flip", "scale", "scale:-1", "gaussian:x", "zero:1", ""] {
            assert!(bad.parse::<Adversary>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hostile_updates_stay_acceptable() {
        let g = genesis();
        let d = g.policy_declaration();
        let n = g.param_count();
        let base = g.model.initial_weights();
        let honest: Vec<i32> = (0..n as i32).map(|i| (i % 7 - 3) * 500).collect();
        let ctx = BoundContext::for_genesis(&g, 0);
        let bound = update_norm_bound_units(&d, 100, &ctx);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let limits = UpdateLimits::new(&g, &d, 100, &base);
        for a in [Adversary::SignFlip(1.0), Adversary::SignFlip(1e6), Adversary::Scale(1e6), Adversary::Gaussian(100.0), Adversary::Zero, Adversary::ReplayStale] {
            let out = a.corrupt(honest.clone(), Some(&honest), &limits, &mut rng);
            assert_eq!(out.len(), n);
            assert!(norm_sq(&out) <= bound * bound, "{a}: norm over the bound");
            assert!(out.iter().all(|v| v.unsigned_abs() <= g.consensus.max_update_abs.unsigned_abs()));
        }
        assert_eq!(Adversary::SignFlip(1.0).corrupt(honest.clone(), None, &limits, &mut rng)[1], -honest[1]);
        assert!(Adversary::Zero.corrupt(honest.clone(), None, &limits, &mut rng).iter().all(|&v| v == 0));
        let big = Adversary::Scale(1e6).corrupt(honest.clone(), None, &limits, &mut rng);
        assert!(norm_sq(&big) * 10 > bound * bound * 9, "scaled onto the bound, not far below it");
        let prev = vec![7; n];
        assert_eq!(Adversary::ReplayStale.corrupt(honest.clone(), Some(&prev), &limits, &mut rng), prev);
    }

    /// Under every update encoding, a hostile update encoded the way the data source encodes
    /// it decodes to something validators accept: the genesis encoding, the coordinate
    /// bound and the norm bound.
    #[test]
    fn hostile_updates_stay_acceptable_in_every_encoding() {
        use learnchain_model::quantize::{UpdateBounds, encode_integers};
        for enc in ["i32", "i16", "i8", "i16:128", "i8:128"] {
            let mut g = genesis();
            g.consensus.update_encoding = enc.parse().expect("valid");
            g.validate().expect(enc);
            let d = g.policy_declaration();
            let n = g.param_count();
            let base = g.model.initial_weights();
            let honest: Vec<i32> = (0..n as i32).map(|i| (i % 7 - 3) * 500).collect();
            let limits = UpdateLimits::new(&g, &d, 100, &base);
            let bounds = UpdateBounds { max_abs: limits.max_abs, norm_bound: limits.norm_bound };
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
            for a in [Adversary::SignFlip(10.0), Adversary::Scale(1e6), Adversary::Gaussian(100.0), Adversary::Zero, Adversary::ReplayStale] {
                let out = a.corrupt(honest.clone(), Some(&honest), &limits, &mut rng);
                let encoded = encode_integers(g.consensus.update_encoding, &g.model, &out, bounds, &mut rng);
                let decoded = encoded
                    .decode(g.consensus.update_encoding, &g.model, g.consensus.max_update_abs)
                    .unwrap_or_else(|e| panic!("{enc} {a}: {e}"));
                assert!(norm_sq(&decoded) <= limits.norm_bound * limits.norm_bound, "{enc} {a}: over the bound");
                if a == Adversary::SignFlip(10.0) {
                    // Still an attack: pointing against the honest update.
                    let dot: i64 = decoded.iter().zip(&honest).map(|(x, y)| i64::from(*x) * i64::from(*y)).sum();
                    assert!(dot < 0, "{enc}: the flipped update points away from the honest one");
                }
            }
        }
    }

    #[test]
    fn label_flip_flips_labels() {
        let x = ndarray::Array2::zeros((3, 1));
        let data = Dataset::new(x, vec![0, 1, 1], 2, vec!["a".into()]).expect("data");
        assert_eq!(Adversary::LabelFlip.training_data(&data).y, vec![1, 0, 0]);
        assert_eq!(Adversary::Zero.training_data(&data).y, vec![0, 1, 1]);
    }
}
