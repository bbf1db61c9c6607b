//! A node's local data: its `[data]` config ([`DataConfig`]) and loading what it describes: a built-in set or a CSV file, the
//! shared train/test split, the input scaling, and this node's shard.
//!
//! When the genesis carries the model's input transform (`[model.input]`), that is the
//! scaling: the data's columns must be the model's (names, order and count) and its labels
//! the model's classes, and no statistic of the node's own data is used. A chain whose
//! genesis predates the transform keeps the old rule: statistics fitted on the whole
//! training split of the source *before* sharding (so nodes sharing a source agree, and a
//! node with only its own CSV fits on its own data).

use anyhow::{Context, bail};
use learnchain_model::data::{self, Dataset, Standardizer};
use learnchain_proto::model::InputTransform;

use serde::{Deserialize, Serialize};

/// Where a node's local data comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// `builtin:breast-cancer`, `builtin:digits` or `csv:PATH`.
    pub source: Option<String>,
    /// Label column of a CSV file.
    pub label_column: String,
    /// Fraction held out as the test split.
    pub test_fraction: f64,
    /// Seed of the train/test split (every node of a network must use the same).
    pub split_seed: u64,
    /// Which split this node trains on / evaluates: `train` or `test`.
    pub split: String,
    /// Number of shards the training split is cut into (1 = all of it).
    pub shards: usize,
    /// Which shard this node holds (0-based).
    pub shard: usize,
    /// `iid` or `dirichlet:ALPHA`.
    pub partition: String,
    /// Seed of the partition.
    pub partition_seed: u64,
    /// Evaluate the head model on the test split (for `model_metrics`).
    pub evaluate: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: None,
            label_column: "label".into(),
            test_fraction: 0.2,
            split_seed: 42,
            split: "train".into(),
            shards: 1,
            shard: 0,
            partition: "iid".into(),
            partition_seed: 7,
            evaluate: true,
        }
    }
}

impl DataConfig {
    /// Checks what serde cannot: the split fraction, the shard, the split name, the partition.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(0.0..1.0).contains(&self.test_fraction) {
            bail!("data.test_fraction must be in [0, 1), got {}", self.test_fraction);
        }
        if self.shards == 0 || self.shard >= self.shards {
            bail!("data.shard must be below data.shards (got shard {} of {})", self.shard, self.shards);
        }
        if self.split != "train" && self.split != "test" {
            bail!("data.split must be \"train\" or \"test\", got {:?}", self.split);
        }
        parse_partition(&self.partition)?;
        Ok(())
    }
}

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

/// Loads the full dataset named by `source`, raw. With `classes` (a model's class labels)
/// a CSV's labels must be among them and the dataset has exactly those classes.
pub fn load_source(source: &str, label_column: &str, classes: Option<&[String]>) -> anyhow::Result<Dataset> {
    if let Some(name) = source.strip_prefix("builtin:") {
        return data::builtin(name).with_context(|| format!("data source {source:?}"));
    }
    if let Some(path) = source.strip_prefix("csv:") {
        let loaded = match classes {
            Some(classes) => data::load_csv_for_classes(path, label_column, classes),
            None => data::load_csv(path, label_column),
        };
        return loaded.with_context(|| format!("data source {source:?}"));
    }
    bail!("data source {source:?} must start with builtin: or csv:")
}

/// `source` loaded and turned into inputs of a model with the input transform `transform`
/// (columns checked, classes mapped, features scaled).
pub fn load_transformed(source: &str, label_column: &str, transform: &InputTransform) -> anyhow::Result<Dataset> {
    let mut full = load_source(source, label_column, Some(&transform.classes))?;
    data::apply_transform(transform, &mut full)
        .with_context(|| format!("data source {source:?} does not fit the model's input ([model.input] of the genesis)"))?;
    Ok(full)
}

/// The input transform fitted on the training split of `source` (the split every node
/// makes by default: [`DataConfig::default`]'s fraction and seed), for a new genesis.
pub fn reference_transform(source: &str, label_column: &str) -> anyhow::Result<InputTransform> {
    let defaults = DataConfig::default();
    let full = load_source(source, label_column, None)?;
    let (train, _) = full.split(defaults.test_fraction, defaults.split_seed)?;
    data::fit_transform(&train).with_context(|| format!("cannot fit an input transform on {source:?}"))
}

/// The train and test splits of a source, scaled with the model's input transform, or
/// (without one) standardized with statistics of the train split.
pub fn load_splits(cfg: &DataConfig, transform: Option<&InputTransform>) -> anyhow::Result<Option<(Dataset, Dataset)>> {
    let Some(source) = &cfg.source else { return Ok(None) };
    if let Some(transform) = transform {
        let full = load_transformed(source, &cfg.label_column, transform)?;
        return Ok(Some(full.split(cfg.test_fraction, cfg.split_seed)?));
    }
    let full = load_source(source, &cfg.label_column, None)?;
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

/// Loads this node's data as configured, for a model with the input transform `transform`
/// (`None`: a genesis without one).
pub fn load_local(cfg: &DataConfig, transform: Option<&InputTransform>) -> anyhow::Result<LocalData> {
    let Some((train, test)) = load_splits(cfg, transform)? else {
        return Ok(LocalData { train: None, eval: None });
    };
    let held = if cfg.split == "test" { test.clone() } else { train };
    let mut shards = shards_of(held, cfg)?;
    if cfg.shard >= shards.len() {
        bail!("data.shard {} is out of range for {} shards", cfg.shard, shards.len());
    }
    let shard = shards.swap_remove(cfg.shard);
    let eval = (cfg.evaluate && !test.is_empty()).then_some(test);
    Ok(LocalData { train: Some(shard), eval })
}

/// `held` cut into `cfg.shards` shards by `cfg.partition` and `cfg.partition_seed` (one
/// shard, `held` itself, when `cfg.shards` is 1): every node's shard of a shared split.
pub fn shards_of(held: Dataset, cfg: &DataConfig) -> anyhow::Result<Vec<Dataset>> {
    if cfg.shards == 1 {
        return Ok(vec![held]);
    }
    Ok(match parse_partition(&cfg.partition)? {
        Partition::Iid => held.partition_iid(cfg.shards, cfg.partition_seed)?,
        Partition::Dirichlet(a) => held.partition_dirichlet(cfg.shards, a, cfg.partition_seed)?,
    })
}
