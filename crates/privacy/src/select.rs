//! The choice of privacy accountant, [`Accountant`] (`pld` or `rdp`), and one result type,
//! [`Guarantee`], for callers that let an operator pick (a CLI `--accountant pld|rdp`, the
//! ledger's [`spent_by`](crate::PrivacyLedger::spent_by)).
//!
//! Both accountants bound the same mechanism, the Poisson-subsampled Gaussian of DP-SGD
//! under add-or-remove-one neighbouring; both results are valid `(ε, δ)` guarantees. The PLD
//! accountant ([`pld`]) is tighter (10–25 % lower `ε` over thousands of steps,
//! several times lower over a few) and the default; the RDP accountant
//! ([`accountant`]) is cheaper (microseconds against tens of
//! milliseconds), and it is what the ledger gates on.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::accountant::{self, RdpAccountant};
use crate::error::{PrivacyError, Result, check_delta};
use crate::ledger::RoundParams;
use crate::pld::{self, PldAccountant};

/// Which accountant turns DP-SGD parameters into `(ε, δ)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accountant {
    /// The privacy-loss-distribution accountant ([`pld`]): numerical
    /// composition, near-tight.
    #[default]
    Pld,
    /// The Rényi-DP accountant ([`accountant`]).
    Rdp,
}

impl Accountant {
    /// Both accountants, the default first.
    pub const ALL: [Accountant; 2] = [Accountant::Pld, Accountant::Rdp];

    /// The accountant's name: `"pld"` or `"rdp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Accountant::Pld => "pld",
            Accountant::Rdp => "rdp",
        }
    }

    /// `ε` at `delta` after `steps` steps with sampling rate `q` and noise multiplier
    /// `sigma` ([`pld::pld_epsilon`] or [`accountant::epsilon`]).
    pub fn epsilon(self, q: f64, sigma: f64, steps: u64, delta: f64) -> Result<Guarantee> {
        match self {
            Accountant::Pld => pld::pld_epsilon(q, sigma, steps, delta).map(Guarantee::from),
            Accountant::Rdp => {
                accountant::epsilon(q, sigma, steps, delta).map(|s| Guarantee::from_rdp(s, delta))
            }
        }
    }

    /// The smallest noise multiplier meeting `target_eps` at `delta` for `steps` steps at
    /// sampling rate `q` ([`pld::pld_noise_for_epsilon`] or
    /// [`accountant::noise_for_epsilon`]).
    pub fn noise_for_epsilon(self, target_eps: f64, delta: f64, q: f64, steps: u64) -> Result<f64> {
        match self {
            Accountant::Pld => pld::pld_noise_for_epsilon(target_eps, delta, q, steps),
            Accountant::Rdp => accountant::noise_for_epsilon(target_eps, delta, q, steps),
        }
    }

    /// `ε` at `delta` of all of `rounds` composed (rounds with the same `(q, σ)` are
    /// grouped); `ε = 0` for no rounds. Every round is validated first.
    pub fn epsilon_of_rounds(self, rounds: &[RoundParams], delta: f64) -> Result<Guarantee> {
        self.epsilon_of_groups(&group_rounds(rounds)?, delta)
    }

    /// `ε` at `delta` of the grouped history `groups` ([`group_rounds`]).
    pub(crate) fn epsilon_of_groups(self, groups: &RoundGroups, delta: f64) -> Result<Guarantee> {
        check_delta(delta)?;
        let params = groups
            .iter()
            .map(|(&(q, s), &t)| (f64::from_bits(q), f64::from_bits(s), t));
        match self {
            Accountant::Pld => {
                let mut acc = PldAccountant::new();
                for (q, sigma, steps) in params {
                    acc.compose(q, sigma, steps)?;
                }
                acc.spent(delta).map(Guarantee::from)
            }
            Accountant::Rdp => {
                if groups.is_empty() {
                    return Ok(Guarantee {
                        epsilon: 0.0,
                        delta,
                        accountant: self,
                        rdp_order: None,
                    });
                }
                let mut acc = RdpAccountant::new();
                for (q, sigma, steps) in params {
                    acc.compose(q, sigma, steps)?;
                }
                acc.spent(delta).map(|s| Guarantee::from_rdp(s, delta))
            }
        }
    }
}

/// A history grouped by `(q, σ)` (keyed by their bit patterns, so the order and the
/// grouping are exact) with the steps of each group summed: rounds with the same `(q, σ)`
/// compose as one run of all their steps under either accountant.
pub(crate) type RoundGroups = BTreeMap<(u64, u64), u64>;

/// Validates every round and groups them ([`RoundGroups`]).
pub(crate) fn group_rounds<'a>(rounds: impl IntoIterator<Item = &'a RoundParams>) -> Result<RoundGroups> {
    let mut groups = RoundGroups::new();
    for r in rounds {
        r.validate()?;
        let steps = groups.entry((r.q.to_bits(), r.sigma.to_bits())).or_insert(0);
        *steps = steps.saturating_add(r.steps);
    }
    Ok(groups)
}

impl fmt::Display for Accountant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Accountant {
    type Err = PrivacyError;

    /// `"pld"` or `"rdp"`, in any case, surrounding spaces ignored.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        Accountant::ALL
            .into_iter()
            .find(|a| t.eq_ignore_ascii_case(a.as_str()))
            .ok_or_else(|| PrivacyError::UnknownAccountant(s.to_owned()))
    }
}

/// An `(ε, δ)` guarantee from either accountant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Guarantee {
    /// The privacy loss `ε` (≥ 0).
    pub epsilon: f64,
    /// The `δ` it is stated at.
    pub delta: f64,
    /// The accountant that computed it.
    pub accountant: Accountant,
    /// For the RDP accountant, the order `α` that gave the bound (`None` for PLD, and for
    /// an RDP composition of nothing).
    pub rdp_order: Option<f64>,
}

impl Guarantee {
    /// From the RDP accountant's [`Spent`](crate::Spent) at `delta`.
    fn from_rdp(s: accountant::Spent, delta: f64) -> Self {
        Self {
            epsilon: s.epsilon,
            delta,
            accountant: Accountant::Rdp,
            rdp_order: Some(s.alpha),
        }
    }
}

impl From<pld::PldSpent> for Guarantee {
    fn from(s: pld::PldSpent) -> Self {
        Self {
            epsilon: s.epsilon,
            delta: s.delta,
            accountant: Accountant::Pld,
            rdp_order: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() -> Result<()> {
        assert_eq!(Accountant::default(), Accountant::Pld);
        for a in Accountant::ALL {
            assert_eq!(a.to_string().parse::<Accountant>()?, a);
            assert_eq!(a.as_str().to_uppercase().parse::<Accountant>()?, a);
        }
        assert_eq!(" rdp ".parse::<Accountant>()?, Accountant::Rdp);
        assert_eq!(Accountant::Pld.to_string(), "pld");
        assert_eq!(Accountant::Rdp.to_string(), "rdp");
        for bad in ["", "gdp", "pld,rdp", "r d p"] {
            match bad.parse::<Accountant>() {
                Err(e @ PrivacyError::UnknownAccountant(_)) => {
                    assert!(e.to_string().contains("\"pld\" or \"rdp\""))
                }
                other => panic!("{bad:?} parsed as {other:?}"),
            }
        }
        // Serde uses the same names.
        let json = serde_json::to_string(&Accountant::Rdp)
            .map_err(|e| PrivacyError::UnknownAccountant(e.to_string()))?;
        assert_eq!(json, "\"rdp\"");
        let back: Accountant = serde_json::from_str("\"pld\"")
            .map_err(|e| PrivacyError::UnknownAccountant(e.to_string()))?;
        assert_eq!(back, Accountant::Pld);
        Ok(())
    }

    #[test]
    fn dispatches_to_both() -> Result<()> {
        let pld = Accountant::Pld.epsilon(0.01, 1.1, 1000, 1e-5)?;
        let rdp = Accountant::Rdp.epsilon(0.01, 1.1, 1000, 1e-5)?;
        assert_eq!(
            pld.epsilon,
            pld::pld_epsilon(0.01, 1.1, 1000, 1e-5)?.epsilon
        );
        assert_eq!(
            rdp.epsilon,
            accountant::epsilon(0.01, 1.1, 1000, 1e-5)?.epsilon
        );
        assert_eq!(
            (pld.accountant, pld.rdp_order, pld.delta),
            (Accountant::Pld, None, 1e-5)
        );
        assert_eq!(rdp.accountant, Accountant::Rdp);
        assert_eq!(
            rdp.rdp_order,
            Some(accountant::epsilon(0.01, 1.1, 1000, 1e-5)?.alpha)
        );
        assert!(pld.epsilon < rdp.epsilon);
        let s_rdp = Accountant::Rdp.noise_for_epsilon(2.0, 1e-5, 0.01, 1000)?;
        assert_eq!(s_rdp, accountant::noise_for_epsilon(2.0, 1e-5, 0.01, 1000)?);
        assert!(matches!(
            Accountant::Pld.epsilon(0.0, 1.1, 10, 1e-5),
            Err(PrivacyError::SamplingRate(_))
        ));
        assert!(matches!(
            Accountant::Rdp.noise_for_epsilon(-1.0, 1e-5, 0.1, 10),
            Err(PrivacyError::TargetEpsilon(_))
        ));
        Ok(())
    }

    #[test]
    fn rounds_are_grouped_and_validated() -> Result<()> {
        let round = |round, q, sigma, steps| RoundParams {
            round,
            q,
            sigma,
            steps,
        };
        let rounds: Vec<RoundParams> = (1..=10).map(|r| round(r, 0.01, 1.1, 100)).collect();
        for a in Accountant::ALL {
            let whole = a.epsilon(0.01, 1.1, 1000, 1e-5)?;
            let grouped = a.epsilon_of_rounds(&rounds, 1e-5)?;
            assert_eq!(grouped, whole, "{a}");
            let none = a.epsilon_of_rounds(&[], 1e-5)?;
            assert_eq!((none.epsilon, none.rdp_order), (0.0, None));
            let bad = [round(1, 0.01, 1.1, 10), round(2, 0.01, 0.0, 10)];
            assert!(matches!(
                a.epsilon_of_rounds(&bad, 1e-5),
                Err(PrivacyError::NoiseMultiplier(_))
            ));
            assert!(matches!(
                a.epsilon_of_rounds(&rounds, 0.0),
                Err(PrivacyError::Delta(_))
            ));
        }
        let mixed = [
            round(1, 0.02, 0.9, 50),
            round(2, 0.1, 2.0, 30),
            round(3, 0.02, 0.9, 50),
        ];
        let pld = Accountant::Pld.epsilon_of_rounds(&mixed, 1e-6)?;
        let rdp = Accountant::Rdp.epsilon_of_rounds(&mixed, 1e-6)?;
        assert!(pld.epsilon < rdp.epsilon, "{pld:?} vs {rdp:?}");
        Ok(())
    }
}
