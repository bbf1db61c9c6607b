//! A data source's privacy: the plan it trains with, and the gate in front of every release.
//!
//! [`PrivacyPlan::resolve`] turns the operator's settings (`[privacy]` in the config, or
//! `--epsilon-budget`, `--delta`, `--noise-multiplier`, `--sample-rate`, `--clip`) and the
//! genesis policy into the DP-SGD parameters this node declares in every submission. Unset
//! values take the policy's weakest allowed value (largest `q` and `C`, smallest `σ`) and
//! the genesis `δ`, and the accountant (`--accountant`, PLD by default). It refuses, naming the flag, a setting validators would reject and a
//! budget that cannot pay for even one round.
//!
//! [`PrivacyGate`] owns the node's [`PrivacyLedger`] (`DATA_DIR/privacy-ledger.json`). The
//! data source asks it before training whether one more round fits the budget
//! ([`PrivacyGate::admit`]); once it does not, the gate is stopped for good and the node
//! runs on as an observer. After training and before the update leaves the node, the
//! round is recorded durably ([`PrivacyGate::record`]). An update that is trained but never
//! released (the head moved meanwhile) is not charged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, bail};
use learnchain_privacy::Accountant;
use learnchain_privacy::ledger::{PrivacyLedger, RoundParams};
use learnchain_proto::privacy::PolicyViolation;
use learnchain_proto::{DpDeclaration, Fixed6, Genesis};
use learnchain_rpc::PrivacyStatusView;
use serde::{Deserialize, Serialize};

/// File name of the ledger in the data dir.
pub const LEDGER_FILE: &str = "privacy-ledger.json";

/// Default `ε` budget of a data source that sets none.
pub const DEFAULT_EPSILON_BUDGET: f64 = 10.0;

/// The `[privacy]` section of the node config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Total `ε` this data source may spend, at `delta`. Fixed when the ledger is created.
    pub epsilon_budget: f64,
    /// `δ` of the accounting (default: the genesis `privacy.delta`).
    pub delta: Option<f64>,
    /// Noise multiplier `σ` (default: the genesis minimum).
    pub noise_multiplier: Option<f64>,
    /// Poisson sampling rate `q` (default: the genesis maximum).
    pub sample_rate: Option<f64>,
    /// Per-example clip bound `C` (default: the genesis clip bound).
    pub clip: Option<f64>,
    /// The accountant of the ledger and its budget gate: `pld` (default; the tighter
    /// bound) or `rdp`. A local choice: validators check only the declared parameters.
    pub accountant: Accountant,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            epsilon_budget: DEFAULT_EPSILON_BUDGET,
            delta: None,
            noise_multiplier: None,
            sample_rate: None,
            clip: None,
            accountant: Accountant::default(),
        }
    }
}

/// What a data source trains with and declares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrivacyPlan {
    /// The declaration every submission carries.
    pub declaration: DpDeclaration,
    /// `δ` of the accounting.
    pub delta: f64,
    /// `ε` budget.
    pub budget: f64,
    /// `ε` of one round alone.
    pub one_round_epsilon: f64,
    /// The accountant of the ledger.
    pub accountant: Accountant,
}

/// A decimal flag value as the genesis carries it (integer millionths); the error names the
/// flag.
pub fn fixed(flag: &str, v: f64) -> anyhow::Result<Fixed6> {
    Fixed6::from_f64(v).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

impl PrivacyPlan {
    /// Resolves the plan for a data source holding `examples` training examples.
    pub fn resolve(cfg: &PrivacyConfig, genesis: &Genesis, examples: usize) -> anyhow::Result<Self> {
        let policy = &genesis.privacy;
        let budget = cfg.epsilon_budget;
        if !(budget.is_finite() && budget > 0.0) {
            bail!("--epsilon-budget must be a positive number, got {budget}");
        }
        let delta = cfg.delta.unwrap_or(policy.delta.to_f64());
        if !(delta > 0.0 && delta < 1.0) {
            bail!("--delta must be in (0, 1), got {delta}");
        }
        let declaration = DpDeclaration {
            sample_rate: cfg.sample_rate.map(|v| fixed("sample-rate", v)).transpose()?.unwrap_or(policy.max_sample_rate),
            noise_multiplier: cfg
                .noise_multiplier
                .map(|v| fixed("noise-multiplier", v))
                .transpose()?
                .unwrap_or(policy.min_noise_multiplier),
            clip: cfg.clip.map(|v| fixed("clip", v)).transpose()?.unwrap_or(policy.clip_bound),
            steps: genesis.training.local_steps,
        };
        let n = u32::try_from(examples).unwrap_or(u32::MAX);
        if let Err(v) = policy.check(&declaration, n) {
            let flag = match v {
                PolicyViolation::NoiseMultiplier { .. } => "--noise-multiplier",
                PolicyViolation::Clip { .. } => "--clip",
                PolicyViolation::SampleRate { .. } | PolicyViolation::EmptyBatch { .. } => "--sample-rate",
                PolicyViolation::Steps { .. } => "the genesis training.local_steps",
            };
            bail!("{flag}: {v}; validators would reject every update of this data source");
        }
        let one = cfg.accountant.epsilon(
            declaration.sample_rate.to_f64(),
            declaration.noise_multiplier.to_f64(),
            u64::from(declaration.steps),
            delta,
        )
        .context("cannot account one round with these parameters")?;
        if one.epsilon.is_nan() || one.epsilon > budget {
            bail!(
                "--epsilon-budget {budget} can never allow one round: one round (q = {}, σ = {}, {} steps) costs ε = {:.4} at δ = {delta:e}; raise the budget or --noise-multiplier",
                declaration.sample_rate,
                declaration.noise_multiplier,
                declaration.steps,
                one.epsilon
            );
        }
        Ok(PrivacyPlan { declaration, delta, budget, one_round_epsilon: one.epsilon, accountant: cfg.accountant })
    }

    fn round(&self, round: u64) -> RoundParams {
        RoundParams {
            round,
            q: self.declaration.sample_rate.to_f64(),
            sigma: self.declaration.noise_multiplier.to_f64(),
            steps: u64::from(self.declaration.steps),
        }
    }
}

/// Whether one more round may be trained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Admission {
    /// Go ahead.
    Go,
    /// The next round would pass the budget; the gate is now stopped.
    Stop {
        /// `ε` spent so far.
        spent: f64,
        /// `ε` after one more round.
        next: f64,
        /// The budget.
        budget: f64,
    },
}

/// The ledger and plan of one data source (see the module docs).
#[derive(Debug)]
pub struct PrivacyGate {
    plan: PrivacyPlan,
    ledger: PrivacyLedger,
    stopped: bool,
    /// Bumped on every recorded round and when the gate stops.
    changes: tokio::sync::watch::Sender<u64>,
}

/// A gate shared by the data-source task and the RPC server.
pub type SharedGate = Arc<Mutex<PrivacyGate>>;

/// Locks a shared gate (a poisoned lock still holds a consistent ledger: every change is
/// made only after the file is written).
pub fn lock(g: &SharedGate) -> MutexGuard<'_, PrivacyGate> {
    g.lock().unwrap_or_else(|p| p.into_inner())
}

impl PrivacyGate {
    /// Opens (or creates) the ledger in `data_dir` for `plan`.
    pub fn open(data_dir: &Path, plan: PrivacyPlan) -> anyhow::Result<Self> {
        let path: PathBuf = data_dir.join(LEDGER_FILE);
        let ledger = PrivacyLedger::open_with(&path, plan.budget, plan.delta, plan.accountant)
            .with_context(|| format!("cannot open the privacy ledger {}", path.display()))?;
        Ok(PrivacyGate { plan, ledger, stopped: false, changes: tokio::sync::watch::Sender::new(0) })
    }

    /// The plan.
    pub fn plan(&self) -> &PrivacyPlan {
        &self.plan
    }

    /// The ledger.
    pub fn ledger(&self) -> &PrivacyLedger {
        &self.ledger
    }

    /// A receiver that changes whenever a round is recorded or the gate stops.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn bump(&self) {
        self.changes.send_modify(|v| *v += 1);
    }

    /// Whether the gate has stopped.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// `ε` after one more round (`+∞` if it cannot be computed).
    fn next_epsilon(&self, round: u64) -> f64 {
        self.ledger.spent_with(&self.plan.round(round)).map(|s| s.epsilon).unwrap_or(f64::INFINITY)
    }

    /// Asks whether round `round` may be trained and released. Once refused, always refused.
    pub fn admit(&mut self, round: u64) -> Admission {
        let next = self.next_epsilon(round);
        if self.stopped || next.is_nan() || next > self.plan.budget {
            if !self.stopped {
                self.stopped = true;
                self.bump();
            }
            return Admission::Stop { spent: self.ledger.spent().epsilon, next, budget: self.plan.budget };
        }
        Admission::Go
    }

    /// Records round `round` durably; call before the update leaves the node. Returns `ε`
    /// spent afterwards.
    pub fn record(&mut self, round: u64) -> anyhow::Result<f64> {
        let spent = self
            .ledger
            .record(self.plan.round(round))
            .with_context(|| format!("privacy ledger {} refused round {round}", self.ledger.path().display()))?;
        self.bump();
        Ok(spent.epsilon)
    }

    /// The RPC view.
    pub fn status(&self) -> PrivacyStatusView {
        let spent = self.ledger.spent();
        let d = &self.plan.declaration;
        let finite = |v: f64| v.is_finite().then_some(v);
        PrivacyStatusView {
            data_source: true,
            budget_epsilon: Some(self.plan.budget),
            epsilon_spent: finite(spent.epsilon),
            delta: Some(self.plan.delta),
            alpha: spent.rdp_order.and_then(finite),
            accountant: Some(self.plan.accountant.to_string()),
            rounds_contributed: Some(self.ledger.rounds().len() as u64),
            epsilon_after_next_round: finite(self.next_epsilon(u64::MAX)),
            stopped: self.stopped,
            sample_rate: Some(d.sample_rate.to_f64()),
            noise_multiplier: Some(d.noise_multiplier.to_f64()),
            clip: Some(d.clip.to_f64()),
            steps_per_round: Some(d.steps),
            ledger_path: Some(self.ledger.path().display().to_string()),
        }
    }
}

/// The view of a node without a ledger.
pub fn not_a_data_source() -> PrivacyStatusView {
    PrivacyStatusView {
        data_source: false,
        budget_epsilon: None,
        epsilon_spent: None,
        delta: None,
        alpha: None,
        accountant: None,
        rounds_contributed: None,
        epsilon_after_next_round: None,
        stopped: false,
        sample_rate: None,
        noise_multiplier: None,
        clip: None,
        steps_per_round: None,
        ledger_path: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnchain_proto::Hash32;

    fn genesis() -> Genesis {
        let mut g = Genesis::template("privacy-test", 30, 2, vec![Hash32([1; 32])]);
        g.training.local_steps = 5;
        g.privacy.max_local_steps = 5;
        g.privacy.min_noise_multiplier = Fixed6(1_000_000);
        g.privacy.max_sample_rate = Fixed6(100_000);
        g
    }

    fn cfg(budget: f64) -> PrivacyConfig {
        PrivacyConfig { epsilon_budget: budget, ..PrivacyConfig::default() }
    }

    #[test]
    fn plan_defaults_to_the_policy_and_refuses_what_validators_would() {
        let g = genesis();
        let p = PrivacyPlan::resolve(&cfg(5.0), &g, 100).expect("valid plan");
        assert_eq!(p.declaration, g.policy_declaration());
        assert_eq!(p.delta, 1e-5);
        let weak = PrivacyConfig { noise_multiplier: Some(0.5), ..cfg(5.0) };
        let err = PrivacyPlan::resolve(&weak, &g, 100).expect_err("below minimum").to_string();
        assert!(err.contains("--noise-multiplier") && err.contains("0.5"), "{err}");
        let fast = PrivacyConfig { sample_rate: Some(0.5), ..cfg(5.0) };
        assert!(PrivacyPlan::resolve(&fast, &g, 100).expect_err("above maximum").to_string().contains("--sample-rate"));
        let wide = PrivacyConfig { clip: Some(3.0), ..cfg(5.0) };
        assert!(PrivacyPlan::resolve(&wide, &g, 100).expect_err("above bound").to_string().contains("--clip"));
        assert!(PrivacyPlan::resolve(&cfg(5.0), &g, 5).expect_err("q·n < 1").to_string().contains("expected batch"));
        let bad_delta = PrivacyConfig { delta: Some(1.0), ..cfg(5.0) };
        assert!(PrivacyPlan::resolve(&bad_delta, &g, 100).expect_err("δ = 1").to_string().contains("--delta"));
        assert!(PrivacyPlan::resolve(&cfg(-1.0), &g, 100).is_err());
    }

    #[test]
    fn a_budget_below_one_round_is_refused() {
        let err = PrivacyPlan::resolve(&cfg(0.01), &genesis(), 100).expect_err("too small").to_string();
        assert!(err.contains("can never allow one round"), "{err}");
    }

    #[test]
    fn gate_stops_at_the_budget_and_remembers_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = genesis();
        let plan = PrivacyPlan::resolve(&cfg(8.0), &g, 100).expect("valid plan");
        let mut gate = PrivacyGate::open(dir.path(), plan).expect("opens");
        let mut rounds = 0;
        while gate.admit(rounds + 1) == Admission::Go {
            rounds += 1;
            let spent = gate.record(rounds).expect("records");
            assert!(spent <= 8.0);
        }
        assert!(rounds >= 2, "several rounds fit: {rounds}");
        assert!(gate.stopped());
        assert!(matches!(gate.admit(rounds + 1), Admission::Stop { .. }), "stopped stays stopped");
        let status = gate.status();
        assert_eq!(status.rounds_contributed, Some(rounds));
        assert!(status.stopped);
        let spent = status.epsilon_spent.expect("finite");
        drop(gate);

        // A restart reads the same spend and stops at once.
        let mut again = PrivacyGate::open(dir.path(), plan).expect("reopens");
        assert_eq!(again.ledger().rounds().len() as u64, rounds);
        assert_eq!(again.status().epsilon_spent, Some(spent));
        assert!(matches!(again.admit(rounds + 1), Admission::Stop { .. }));

        // A different budget on the same ledger is refused, not silently adopted.
        let other = PrivacyPlan::resolve(&cfg(9.0), &g, 100).expect("valid plan");
        let err = format!("{:#}", PrivacyGate::open(dir.path(), other).expect_err("conflict"));
        assert!(err.contains("budget"), "{err}");
    }
}
