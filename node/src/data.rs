//! Loading a node's local data as its config describes: a built-in set or a CSV file, the
//! shared train/test split, standardization, and this node's shard.
//!
//! Standardization statistics are fitted on the whole training split of the source *before*
//! sharding, so every node that loads the same source with the same split seed scales
//! features identically (a node with only its own CSV fits on its own data).

use anyhow::{Context, bail};
use learnchain_model::data::{self, Dataset, Standardizer};

use crate::config::DataConfig;

/// How the training split is cut into shards.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Partition {
    /// Uniformly at random.
    Iid,
    /// Class proportions per shard drawn from Dirichlet(α).
    Dirichlet(f64),
}

/// Parses `iid` or `dirichlet:ALPHA`.
pub fn parse_partition(s: &str) -> anyhow::Result<Partition> {
    if s == "iid" {
        return Ok(Partition::Iid);
    }
    if let Some(a) = s.strip_prefix("dirichlet:") {
        let alpha: f64 = a.parse().with_context(|| format!("dirichlet alpha {a:?} is not a number"))?;
        if !(alpha > 0.0 && alpha.is_finite()) {
            bail!("dirichlet alpha must be positive, got {alpha}");
        }
        return Ok(Partition::Dirichlet(alpha));
    }
    bail!("partition {s:?} is neither \"iid\" nor \"dirichlet:ALPHA\"")
}

/// Loads the full dataset named by `source`.
pub fn load_source(source: &str, label_column: &str) -> anyhow::Result<Dataset> {
    if let Some(name) = source.strip_prefix("builtin:") {
        return data::builtin(name).with_context(|| format!("data source {source:?}"));
    }
    if let Some(path) = source.strip_prefix("csv:") {
        return data::load_csv(path, label_column).with_context(|| format!("data source {source:?}"));
    }
    bail!("data source {source:?} must start with builtin: or csv:")
}

/// The train and test splits of a source, standardized with statistics of the train split.
pub fn load_splits(cfg: &DataConfig) -> anyhow::Result<Option<(Dataset, Dataset)>> {
    let Some(source) = &cfg.source else { return Ok(None) };
    let full = load_source(source, &cfg.label_column)?;
    let (mut train, mut test) = full.split(cfg.test_fraction, cfg.split_seed)?;
    let scaler = Standardizer::fit(&train)?;
    scaler.apply(&mut train)?;
    if !test.is_empty() {
        scaler.apply(&mut test)?;
    }
    Ok(Some((train, test)))
}

/// This node's local data: its shard of the chosen split, and the evaluation set (the test
/// split, when it is non-empty).
pub struct LocalData {
    /// Training shard (for a data source).
    pub train: Option<Dataset>,
    /// Evaluation set.
    pub eval: Option<Dataset>,
}

/// Loads this node's data as configured.
pub fn load_local(cfg: &DataConfig) -> anyhow::Result<LocalData> {
    let Some((train, test)) = load_splits(cfg)? else {
        return Ok(LocalData { train: None, eval: None });
    };
    let held = if cfg.split == "test" { test.clone() } else { train };
    let shard = if cfg.shards == 1 {
        held
    } else {
        let mut shards = match parse_partition(&cfg.partition)? {
            Partition::Iid => held.partition_iid(cfg.shards, cfg.partition_seed)?,
            Partition::Dirichlet(a) => held.partition_dirichlet(cfg.shards, a, cfg.partition_seed)?,
        };
        if cfg.shard >= shards.len() {
            bail!("data.shard {} is out of range for {} shards", cfg.shard, shards.len());
        }
        shards.swap_remove(cfg.shard)
    };
    let eval = (cfg.evaluate && !test.is_empty()).then_some(test);
    Ok(LocalData { train: Some(shard), eval })
}
