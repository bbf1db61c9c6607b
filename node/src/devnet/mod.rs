//! `learnchain devnet`: a whole local network in one process, on loopback, with built-in
//! data.
//!
//! By default: 2 miners, 4 data sources (breast-cancer's training split in 4 IID shards) and
//! 1 observer holding the test split, each a full node with its own data directory, libp2p
//! port and JSON-RPC port, and a block interval sized to a round on this machine. It prints every new head as the observer sees it (height, miner,
//! submissions, test accuracy, time), stops mining once the head is `--blocks` higher than
//! where it started, waits until every node has the same head, asks each node over its
//! JSON-RPC for its head and model hash, and prints (and optionally writes) a summary.
//! With `--plot`, it then reads the observer's test metrics at every height of the run and
//! the data sources' privacy ledgers, and draws them ([`crate::plot::history`]).
//!
//! A `--data-dir` that already holds a devnet is resumed: the same genesis and keys, each
//! node starting from its stored head.
//!
//! This module holds the options, the summary and [`run`], which starts the nodes; `plan`
//! works out the genesis, the block interval, who dials whom and each node's config before
//! anything runs, and `drive` follows the run to its end.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use learnchain_proto::{AggregationRule, Hash32, UpdateEncoding};
use serde::Serialize;

use crate::adversary::Adversary;
use crate::config::{DataConfig, Role};
use crate::keys;
use crate::node::Node;

mod drive;
mod plan;

pub use plan::planned_rounds;
use drive::{drive, read_history, run_history};
use plan::{check_budgets_for_resume, genesis_for, node_config, bootnodes_of};

/// What to run.
#[derive(Clone, Debug)]
pub struct DevnetOptions {
    /// Where nodes keep their data (a fresh temporary directory when `None`).
    pub data_dir: Option<PathBuf>,
    /// Blocks to mine.
    pub blocks: u64,
    /// Where to write the summary JSON.
    pub summary_json: Option<PathBuf>,
    /// Where to draw test accuracy and ε spent against height (`.svg` or `.png`).
    pub plot: Option<PathBuf>,
    /// Miner nodes.
    pub miners: usize,
    /// Data-source nodes.
    pub data_sources: usize,
    /// Built-in dataset.
    pub dataset: String,
    /// Target block interval of a new genesis; `None` sizes it to a round of this devnet on
    /// this machine (see `plan::plan_block_interval`).
    pub block_interval_ms: Option<u64>,
    /// Give up after this long.
    pub timeout: Duration,
    /// Print each block.
    pub verbose: bool,
    /// `ε` budget of every data source (at `delta`).
    pub epsilon_budget: f64,
    /// `δ` of the accounting.
    pub delta: f64,
    /// Noise multiplier of a new genesis; `None` plans the smallest one that lets every
    /// data source contribute to every block within its budget.
    pub noise_multiplier: Option<f64>,
    /// Aggregation rule of a new genesis.
    pub aggregation: AggregationRule,
    /// Hidden layers of a new genesis's model: none for softmax regression, else the width
    /// of each hidden layer of an MLP.
    pub hidden: Vec<u32>,
    /// How the training split is cut among the data sources: `iid` or `dirichlet:ALPHA`.
    pub partition: String,
    /// DP-SGD steps per round of a new genesis.
    pub local_steps: u32,
    /// Poisson sampling rate of a new genesis (raised where a shard is too small for it).
    pub sample_rate: f64,
    /// Learning rate of a new genesis.
    pub learning_rate: f64,
    /// Update encoding of a new genesis.
    pub update_encoding: UpdateEncoding,
    /// How many of the data sources (the last ones) are adversaries.
    pub adversaries: usize,
    /// What the adversaries do.
    pub adversary: Adversary,
}

impl Default for DevnetOptions {
    fn default() -> Self {
        DevnetOptions {
            data_dir: None,
            blocks: 20,
            summary_json: None,
            plot: None,
            miners: 2,
            data_sources: 4,
            dataset: "breast-cancer".into(),
            block_interval_ms: None,
            timeout: Duration::from_secs(300),
            verbose: true,
            epsilon_budget: 2.0,
            delta: 1e-5,
            noise_multiplier: None,
            aggregation: AggregationRule::Mean,
            hidden: Vec::new(),
            partition: "iid".into(),
            local_steps: DEVNET_LOCAL_STEPS,
            sample_rate: DEVNET_SAMPLE_RATE,
            learning_rate: DEVNET_LEARNING_RATE,
            update_encoding: UpdateEncoding::I32,
            adversaries: 0,
            adversary: Adversary::SignFlip(1.0),
        }
    }
}

/// The devnet's result.
#[derive(Clone, Debug, Serialize)]
pub struct DevnetSummary {
    /// Final head height.
    pub height: u64,
    /// Final head hash.
    pub head_hash: String,
    /// Model hash at the head.
    pub model_hash: String,
    /// Whether every node reported the same head and model hash over JSON-RPC.
    pub nodes_agree: bool,
    /// Test accuracy of the head model on the observer's test split.
    pub test_accuracy: f64,
    /// Wall time in seconds.
    pub elapsed_s: f64,
    /// Seconds from the start of mining until the observer's head was `--blocks` higher,
    /// divided by `--blocks`.
    pub seconds_per_block: f64,
    /// Mean size of this run's canonical blocks, in bytes of their canonical encoding (as
    /// stored and as sync serves them).
    pub bytes_per_block: f64,
    /// Bytes each node received (= sent, on average) per block while mining, at the
    /// transport (every protocol, gossip duplicates and framing included), averaged over the
    /// nodes.
    pub wire_bytes_per_node_per_round: f64,
    /// Milliseconds each node spent per block checking submissions and registrations for
    /// its pools and importing blocks (store commit included), averaged over the nodes.
    /// The nodes of a devnet share pure results (a ring signature verified by one is not
    /// verified again by the others), so this is each node's share of the protocol's work.
    pub validation_ms_per_block: f64,
    /// Submissions included in the canonical chain.
    pub submissions: u64,
    /// Blocks mined during this run (more than the height gained when miners forked).
    pub blocks_mined: u64,
    /// The genesis's target block interval (chosen for this machine unless given).
    pub block_interval_ms: u64,
    /// Nodes in the network.
    pub nodes: usize,
    /// Where the nodes' data is.
    pub data_dir: String,
    /// The largest `ε` any data source has spent (at `delta`), from its `privacy_status`.
    pub epsilon_spent_max: f64,
    /// The data sources' `ε` budget.
    pub epsilon_budget: f64,
    /// `δ` of the accounting.
    pub delta: f64,
    /// The noise multiplier the data sources trained with.
    pub noise_multiplier: f64,
    /// Data sources that stopped at their budget.
    pub data_sources_stopped: usize,
    /// The genesis aggregation rule (`RULE[:PARAMS]`).
    pub aggregation: String,
    /// The genesis update encoding (`i32`, `i8`, `i16:256`, …).
    pub update_encoding: String,
    /// How many data sources were adversaries.
    pub adversaries: usize,
    /// What they did (`null` without adversaries).
    pub adversary: Option<String>,
}

/// Shortest block interval of a new devnet genesis. Short: a devnet's blocks are made as
/// soon as a round's submissions are in, and proof of work only orders them.
pub const DEFAULT_BLOCK_INTERVAL_MS: u64 = 200;

/// DP-SGD settings of a new devnet genesis (breast-cancer, softmax): steps per round,
/// Poisson sampling rate, clip bound, learning rate.
pub const DEVNET_LOCAL_STEPS: u32 = 10;
/// Poisson sampling rate of a new devnet genesis.
pub const DEVNET_SAMPLE_RATE: f64 = 0.2;
/// Clip bound of a new devnet genesis.
pub const DEVNET_CLIP: f64 = 1.0;
/// Learning rate of a new devnet genesis.
pub const DEVNET_LEARNING_RATE: f64 = 0.1;

/// Runs the devnet to completion.
pub async fn run(opts: DevnetOptions) -> anyhow::Result<DevnetSummary> {
    if opts.miners == 0 || opts.data_sources == 0 {
        bail!("a devnet needs at least one miner and one data source");
    }
    if opts.adversaries > opts.data_sources {
        bail!("--adversaries {} is more than the {} data sources", opts.adversaries, opts.data_sources);
    }
    let needed = opts.aggregation.min_inputs();
    if opts.data_sources < needed {
        bail!("--aggregation {} needs at least {needed} data sources (blocks of fewer submissions are invalid); give --data-sources {needed} or more", opts.aggregation);
    }
    if !(opts.epsilon_budget.is_finite() && opts.epsilon_budget > 0.0) {
        bail!("--epsilon-budget must be a positive number, got {}", opts.epsilon_budget);
    }
    if !(opts.delta > 0.0 && opts.delta < 1.0) {
        bail!("--delta must be in (0, 1), got {}", opts.delta);
    }
    if let Some(p) = &opts.plot {
        crate::plot::check_output(p).context("--plot")?;
    }
    let started = Instant::now();
    let dir = match &opts.data_dir {
        Some(d) => d.clone(),
        None => tempfile::Builder::new().prefix("learnchain-devnet-").tempdir()?.keep(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let genesis_path = dir.join("genesis.toml");
    let mut members = Vec::new();
    for i in 1..=opts.data_sources {
        let key = keys::member_key(&dir.join(format!("source-{i}")).join("member.key"), None)?;
        members.push(Hash32(key.public().to_bytes()));
    }
    let genesis = if genesis_path.exists() {
        let g = crate::config::load_genesis(&genesis_path)?;
        check_budgets_for_resume(&opts, &dir, &g)?;
        g
    } else {
        let g = genesis_for(&opts, members)?;
        std::fs::write(&genesis_path, g.to_toml_string())?;
        g
    };
    let dataset = format!("builtin:{}", opts.dataset);
    let mut nodes: Vec<Node> = Vec::new();
    // Listen addresses of every node started so far, by start order.
    let mut boot: Vec<Vec<String>> = Vec::new();
    let mut plan: Vec<(String, Vec<Role>, DataConfig)> = Vec::new();
    for i in 1..=opts.miners {
        plan.push((format!("miner-{i}"), vec![Role::Miner], DataConfig::default()));
    }
    for i in 1..=opts.data_sources {
        let data = DataConfig {
            source: Some(dataset.clone()),
            shards: opts.data_sources,
            shard: i - 1,
            partition: opts.partition.clone(),
            evaluate: false,
            ..DataConfig::default()
        };
        plan.push((format!("source-{i}"), vec![Role::DataSource], data));
    }
    let observer_data = DataConfig { source: Some(dataset.clone()), split: "test".into(), ..DataConfig::default() };
    plan.push(("observer".into(), vec![Role::Observer], observer_data));
    let first_adversary = opts.data_sources - opts.adversaries.min(opts.data_sources) + 1;
    // One process: the nodes share the results of pure computations (a ring signature
    // checked against a ring, a block's aggregate), so the devnet measures the protocol and
    // not a hundred copies of one verification. Every node still runs every check.
    let caches = learnchain_chain::ChainCaches::shared(plan.len());
    for (i, (name, roles, data)) in plan.into_iter().enumerate() {
        let mut cfg = node_config(&dir, &name, roles, data, bootnodes_of(i, opts.miners, &boot), &opts);
        if let Some(i) = name.strip_prefix("source-").and_then(|i| i.parse::<usize>().ok())
            && i >= first_adversary
        {
            cfg.adversary = Some(opts.adversary.to_string());
        }
        let node = Node::start_with_caches(cfg, genesis.clone(), caches.clone())
            .await
            .with_context(|| format!("starting {name}"))?;
        // The miners wait for the whole network: started one by one, a hundred nodes
        // take longer than a round timeout, and the first block would close on the data
        // sources that happened to start early.
        if name.starts_with("miner") {
            node.set_mining(false);
        }
        boot.push(node.listen_addrs.iter().map(ToString::to_string).collect());
        nodes.push(node);
    }
    let start_height = nodes.last().map_or(0, |n| n.svc.head().meta.height);
    for m in nodes.iter().filter(|n| n.name.starts_with("miner")) {
        m.set_mining(true);
    }
    let result = drive(&opts, &nodes, &dir, started).await;
    // What the plot needs is read while the nodes run (also after a timeout), and drawn
    // once they have stopped.
    let history = opts.plot.as_ref().map(|_| read_history(&nodes, start_height));
    futures::future::join_all(nodes.into_iter().map(Node::shutdown)).await;
    let plotted = match (&opts.plot, history) {
        (Some(path), Some((heights, ledgers))) => {
            let run = run_history(&opts, heights, &ledgers);
            Some(
                crate::plot::write(&crate::plot::history::devnet_chart(&run), path)
                    .with_context(|| format!("cannot write the plot {}", path.display())),
            )
        }
        _ => None,
    };
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            match (plotted, &opts.plot) {
                (Some(Err(p)), _) => tracing::warn!("{p:#}"),
                (Some(Ok(())), Some(path)) if opts.verbose => {
                    println!("plot: test accuracy and ε spent by height, up to the height reached, in {}", path.display());
                }
                _ => {}
            }
            return Err(e);
        }
    };
    if let Some(path) = &opts.summary_json {
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(plotted) = plotted {
        plotted?;
        if opts.verbose
            && let Some(path) = &opts.plot
        {
            println!("plot: test accuracy and ε spent by height in {}", path.display());
        }
    }
    Ok(summary)
}
