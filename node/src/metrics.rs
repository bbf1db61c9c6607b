//! The node's own Prometheus metrics, in one place: [`NodeMetrics`].
//!
//! The metrics are made with the [`crate::service::ChainService`] (which updates the chain
//! and pool ones as blocks, submissions and registrations enter it) and handed by clone to
//! the tasks that own the rest: the data source (training time, ε), the head task
//! (the observer's test accuracy and loss) and the miner (blocks mined). Each is a
//! `prometheus_client` handle over atomics, so an update never waits and never blocks the
//! node, whether or not anything scrapes it.
//!
//! [`NodeMetrics::register`] puts them in the node's registry (prefix `learnchain_`, beside
//! the network's from `learnchain_net`), which `--metrics ADDR` serves
//! ([`learnchain_rpc::metrics`]); a node without `--metrics` builds no registry (and keeps
//! no libp2p or gossipsub metrics), and its own counters count into nothing read. Every name, with its labels, is listed in the README's
//! "Metrics" section; a test there keeps the list and this module in step.

use std::time::Duration;

use learnchain_chain::{BlockError, ImportOutcome, RegistrationError, SubmissionError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

/// A `reason` label (a validation error's [`reason`](BlockError::reason) name).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// An `outcome` label of imported blocks: `extended`, `reorg` or `side_chain`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric of the node itself (the network's are in `learnchain_net`).
#[derive(Clone, Debug)]
pub struct NodeMetrics {
    head_height: Gauge,
    total_work: FloatGauge,
    reorg_depth: Histogram,
    blocks_imported: Family<Outcome, Counter>,
    blocks_rejected: Family<Reason, Counter>,
    block_import: Histogram,
    pool_submissions: Gauge,
    pool_registrations: Gauge,
    submissions_accepted: Counter,
    submissions_rejected: Family<Reason, Counter>,
    registrations_accepted: Counter,
    registrations_rejected: Family<Reason, Counter>,
    round_latency: Histogram,
    epsilon_spent: FloatGauge,
    epsilon_budget: FloatGauge,
    rounds_contributed: Gauge,
    training: Histogram,
    test_accuracy: FloatGauge,
    test_loss: FloatGauge,
    evaluated_height: Gauge,
    blocks_mined: Counter,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeMetrics {
    /// Fresh metrics, not yet in any registry.
    pub fn new() -> Self {
        NodeMetrics {
            head_height: Gauge::default(),
            total_work: FloatGauge::default(),
            // 1, 2, 4, … 512 blocks.
            reorg_depth: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            blocks_imported: Family::default(),
            blocks_rejected: Family::default(),
            // 0.25 ms … 8 s.
            block_import: Histogram::new(exponential_buckets(0.000_25, 2.0, 16)),
            pool_submissions: Gauge::default(),
            pool_registrations: Gauge::default(),
            submissions_accepted: Counter::default(),
            submissions_rejected: Family::default(),
            registrations_accepted: Counter::default(),
            registrations_rejected: Family::default(),
            // 50 ms … 27 min.
            round_latency: Histogram::new(exponential_buckets(0.05, 2.0, 16)),
            epsilon_spent: FloatGauge::default(),
            epsilon_budget: FloatGauge::default(),
            rounds_contributed: Gauge::default(),
            // 10 ms … 5.5 min.
            training: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            test_accuracy: FloatGauge::default(),
            test_loss: FloatGauge::default(),
            evaluated_height: Gauge::default(),
            blocks_mined: Counter::default(),
        }
    }

    /// Registers every metric in `registry` (clones share the values), with a build-info
    /// metric naming this version.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "build",
            "The learnchain version of this node",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let chain = registry.sub_registry_with_prefix("chain");
        chain.register("head_height", "Height of the head of the best chain", self.head_height.clone());
        chain.register(
            "total_work",
            "Cumulative proof-of-work of the best chain (expected hashes; a float, for graphs only)",
            self.total_work.clone(),
        );
        chain.register("reorg_depth", "Reorganisations of the best chain, by depth in blocks", self.reorg_depth.clone());
        chain.register(
            "blocks_imported",
            "Blocks validated and stored: extended (new head on top), reorg (new head on another branch), side_chain (stored, not the head)",
            self.blocks_imported.clone(),
        );
        chain.register(
            "blocks_rejected",
            "Blocks refused by validation, by reason (already_known counts duplicates)",
            self.blocks_rejected.clone(),
        );
        chain.register_with_unit(
            "block_import",
            "Time to validate and durably store one block that was imported",
            Unit::Seconds,
            self.block_import.clone(),
        );
        let pool = registry.sub_registry_with_prefix("pool");
        pool.register("submissions", "Submissions waiting in the pool for the next block", self.pool_submissions.clone());
        pool.register(
            "registrations",
            "Registry changes waiting in the pool for a block",
            self.pool_registrations.clone(),
        );
        registry.register(
            "submissions_accepted",
            "Submissions that passed validation into the pool (gossip, pool pulls and this node's own)",
            self.submissions_accepted.clone(),
        );
        registry.register(
            "submissions_rejected",
            "Submissions refused, by reason (duplicate and not_on_head are ignored, not penalised)",
            self.submissions_rejected.clone(),
        );
        registry.register(
            "registrations_accepted",
            "Registry changes that passed validation into the pool",
            self.registrations_accepted.clone(),
        );
        registry.register("registrations_rejected", "Registry changes refused, by reason", self.registrations_rejected.clone());
        registry.register_with_unit(
            "round_latency",
            "From the first submission this node pooled for a round to the block of that round becoming its head",
            Unit::Seconds,
            self.round_latency.clone(),
        );
        let privacy = registry.sub_registry_with_prefix("privacy");
        privacy.register(
            "epsilon_spent",
            "Differential-privacy ε this data source has spent (at its δ); 0 on nodes that are not data sources",
            self.epsilon_spent.clone(),
        );
        privacy.register("epsilon_budget", "The ε budget of this data source", self.epsilon_budget.clone());
        privacy.register(
            "rounds_contributed",
            "Rounds whose update left this data source (each charged to its ledger)",
            self.rounds_contributed.clone(),
        );
        registry.register_with_unit(
            "training",
            "Local DP-SGD training of one round's update on this data source",
            Unit::Seconds,
            self.training.clone(),
        );
        let model = registry.sub_registry_with_prefix("model");
        model.register(
            "test_accuracy",
            "Accuracy of the global model after the last evaluated head on this node's evaluation data (0 to 1)",
            self.test_accuracy.clone(),
        );
        model.register(
            "test_loss",
            "Mean cross-entropy of the global model after the last evaluated head on this node's evaluation data",
            self.test_loss.clone(),
        );
        model.register("evaluated_height", "Height of the last head the node evaluated", self.evaluated_height.clone());
        registry.register("miner_blocks_mined", "Blocks this node mined and imported", self.blocks_mined.clone());
    }

    /// A block import took `took` and ended with `result`.
    pub(crate) fn on_import(&self, result: &Result<ImportOutcome, BlockError>, took: Duration) {
        match result {
            Ok(outcome) => {
                self.block_import.observe(took.as_secs_f64());
                let label = match outcome {
                    ImportOutcome::Extended { .. } => "extended",
                    ImportOutcome::Reorg { depth, .. } => {
                        self.reorg_depth.observe(*depth as f64);
                        "reorg"
                    }
                    ImportOutcome::SideChain { .. } => "side_chain",
                };
                self.blocks_imported.get_or_create(&Outcome { outcome: label }).inc();
            }
            Err(e) => {
                self.blocks_rejected.get_or_create(&Reason { reason: e.reason() }).inc();
            }
        }
    }

    /// The head is now at `height` with cumulative work `total_work` (big-endian bytes).
    pub(crate) fn on_head(&self, height: u64, total_work: &[u8]) {
        self.head_height.set(i64::try_from(height).unwrap_or(i64::MAX));
        let work = total_work.iter().fold(0.0f64, |acc, b| acc * 256.0 + f64::from(*b));
        self.total_work.set(work);
    }

    /// The pools hold `submissions` and `registrations` now.
    pub(crate) fn on_pools(&self, submissions: usize, registrations: usize) {
        self.pool_submissions.set(i64::try_from(submissions).unwrap_or(i64::MAX));
        self.pool_registrations.set(i64::try_from(registrations).unwrap_or(i64::MAX));
    }

    /// A submission was checked.
    pub(crate) fn on_submission<T>(&self, result: &Result<T, SubmissionError>) {
        match result {
            Ok(_) => self.submissions_accepted.inc(),
            Err(e) => self.submissions_rejected.get_or_create(&Reason { reason: e.reason() }).inc(),
        };
    }

    /// A registration was checked.
    pub(crate) fn on_registration<T>(&self, result: &Result<T, RegistrationError>) {
        match result {
            Ok(_) => self.registrations_accepted.inc(),
            Err(e) => self.registrations_rejected.get_or_create(&Reason { reason: e.reason() }).inc(),
        };
    }

    /// A round's block became the head `took` after the round's first pooled submission.
    pub(crate) fn on_round(&self, took: Duration) {
        self.round_latency.observe(took.as_secs_f64());
    }

    /// A data source's ledger: `spent` of `budget`, after `rounds` rounds.
    pub(crate) fn on_privacy(&self, spent: f64, budget: f64, rounds: u64) {
        self.epsilon_spent.set(spent);
        self.epsilon_budget.set(budget);
        self.rounds_contributed.set(i64::try_from(rounds).unwrap_or(i64::MAX));
    }

    /// One round of local training took `took`.
    pub(crate) fn on_training(&self, took: Duration) {
        self.training.observe(took.as_secs_f64());
    }

    /// The model after the head at `height` scored `accuracy` and `loss` on the evaluation data.
    pub(crate) fn on_evaluation(&self, height: u64, accuracy: f64, loss: f64) {
        // The height last: a scrape that sees it sees its accuracy and loss.
        self.test_accuracy.set(accuracy);
        self.test_loss.set(loss);
        self.evaluated_height.set(i64::try_from(height).unwrap_or(i64::MAX));
    }

    /// This node mined a block that it imported.
    pub(crate) fn on_mined(&self) {
        self.blocks_mined.inc();
    }
}

/// Starts the `--metrics` endpoint on `addr`, serving `registry`.
pub(crate) async fn serve(
    addr: std::net::SocketAddr,
    registry: std::sync::Arc<Registry>,
) -> anyhow::Result<learnchain_rpc::metrics::MetricsHandle> {
    match learnchain_rpc::metrics::MetricsServer::default().start(addr, registry).await {
        Ok(handle) => Ok(handle),
        Err(learnchain_rpc::RpcError::Bind { source, .. }) if source.kind() == std::io::ErrorKind::AddrInUse => {
            anyhow::bail!(
                "cannot serve metrics on {addr}: the port is already in use (another node, or another program, holds \
                 it); give this node another --metrics address"
            )
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot serve metrics on {addr}"))),
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_units_and_labels() {
        let mut registry = Registry::with_prefix("learnchain");
        let m = NodeMetrics::new();
        m.register(&mut registry);
        m.on_head(7, &[0, 0, 1, 0]);
        m.on_import(&Err(BlockError::InsufficientWork), Duration::from_millis(1));
        m.on_import(&Err(BlockError::AlreadyKnown), Duration::from_millis(1));
        m.on_submission::<()>(&Err(SubmissionError::Duplicate));
        m.on_submission(&Ok(()));
        m.on_privacy(0.5, 2.0, 3);
        m.on_evaluation(7, 0.9, 0.25);
        m.on_round(Duration::from_secs(2));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for line in [
            "learnchain_build_info{version=\"",
            "learnchain_chain_head_height 7",
            "learnchain_chain_total_work 256.0",
            "learnchain_chain_blocks_rejected_total{reason=\"insufficient_work\"} 1",
            "learnchain_chain_blocks_rejected_total{reason=\"already_known\"} 1",
            "learnchain_submissions_rejected_total{reason=\"duplicate\"} 1",
            "learnchain_submissions_accepted_total 1",
            "learnchain_privacy_epsilon_spent 0.5",
            "learnchain_privacy_epsilon_budget 2.0",
            "learnchain_model_test_accuracy 0.9",
            "learnchain_model_test_loss 0.25",
            "learnchain_round_latency_seconds_count 1",
            "learnchain_chain_block_import_seconds_count 0",
            "# TYPE learnchain_chain_reorg_depth histogram",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
