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

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::SeedableRng;
use learnchain_model::data::{Dataset, builtin};
use learnchain_proto::privacy::MAX_NOISE_MULTIPLIER;
use learnchain_proto::{AggregationRule, Fixed6, Genesis, Hash32, Probability, UpdateEncoding};
use serde::Serialize;
use tokio::sync::watch;

use crate::adversary::Adversary;
use crate::config::{DataConfig, NodeConfig, Role};
use crate::keys;
use crate::node::Node;
use crate::plot::history::{HeightMetrics, RunHistory, SourceLedger};
use crate::privacy::{PrivacyConfig, fixed};
use crate::service::{HeadSnapshot, wait_agree};

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
    /// this machine (see `plan_block_interval`).
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

/// Whether any watched head changes before the deadline.
async fn changes_before(w: &mut [watch::Receiver<HeadSnapshot>], deadline: tokio::time::Instant) -> bool {
    for r in w.iter_mut() {
        r.borrow_and_update();
    }
    let changed = futures::future::select_all(w.iter_mut().map(|r| Box::pin(r.changed())));
    tokio::time::timeout_at(deadline, changed).await.is_ok()
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

/// Rounds a data source's budget is planned for: every block, the round after the last
/// one (data sources train on the final head too), and headroom for retraining when a
/// reorg replaces the head with a block that is not a sibling of it (each release is
/// charged; a sibling's round reuses the released update, see `roles::datasource`).
pub fn planned_rounds(blocks: u64) -> u64 {
    blocks + 1 + (blocks / 10).max(2)
}

/// The Poisson sampling rate of a new devnet: [`DEVNET_SAMPLE_RATE`], or more when the
/// data sources' shards are so small (a hundred sources share breast-cancer's 455 training
/// examples) that its expected batch `q·n` would hold less than one example, which
/// validators refuse. Rounded up to a millionth.
fn plan_sample_rate(opts: &DevnetOptions) -> anyhow::Result<f64> {
    let cfg = DataConfig {
        source: Some(format!("builtin:{}", opts.dataset)),
        shards: opts.data_sources.max(1),
        partition: opts.partition.clone(),
        ..DataConfig::default()
    };
    let held = crate::data::load_splits(&cfg, None)?.map(|(train, _)| train);
    let train = held.as_ref().map_or(0, Dataset::len);
    // The shards the data sources will hold (none can be cut when there are more sources
    // than examples).
    let smallest = match held {
        Some(held) if opts.data_sources <= train => {
            crate::data::shards_of(held, &cfg)?.iter().map(Dataset::len).min().unwrap_or(0)
        }
        _ => 0,
    };
    if smallest == 0 {
        bail!(
            "--data-sources {} is more than the {train} training examples of {}: every data source needs at least one",
            opts.data_sources,
            opts.dataset
        );
    }
    let needed = (Fixed6::SCALE as f64 / smallest as f64).ceil() / Fixed6::SCALE as f64;
    Ok(opts.sample_rate.max(needed).min(1.0))
}

/// The noise multiplier for a new devnet at sampling rate `q`: the given one, or the
/// smallest (rounded up to a millionth) that keeps [`planned_rounds`] rounds within the
/// budget.
fn plan_noise(opts: &DevnetOptions, q: f64) -> anyhow::Result<Fixed6> {
    let rounds = planned_rounds(opts.blocks);
    let steps = rounds * u64::from(opts.local_steps);
    let sigma = match opts.noise_multiplier {
        Some(s) => s,
        // The data sources' ledgers account with PLD (the default), so plan with it: the
        // same budget buys less noise than under RDP.
        None => learnchain_privacy::Accountant::Pld.noise_for_epsilon(opts.epsilon_budget, opts.delta, q, steps)
            .with_context(|| format!("--epsilon-budget {} for {rounds} rounds at δ = {:e}", opts.epsilon_budget, opts.delta))?,
    };
    if !(sigma.is_finite() && sigma > 0.0) {
        bail!("--noise-multiplier must be positive, got {sigma}");
    }
    if opts.noise_multiplier.is_some() {
        // Every block needs submissions: the sources must afford all of them.
        let needed = opts.blocks + 1;
        let spent = learnchain_privacy::Accountant::Pld
            .epsilon(q, sigma, needed * u64::from(opts.local_steps), opts.delta)
            .with_context(|| format!("--noise-multiplier {sigma}"))?;
        if spent.epsilon > opts.epsilon_budget {
            bail!(
                "--noise-multiplier {sigma} spends ε = {:.3} over the {needed} rounds this devnet needs (--blocks + 1), above --epsilon-budget {}: the data sources would stop and the chain with them; raise the noise or the budget, or lower --blocks",
                spent.epsilon,
                opts.epsilon_budget
            );
        }
    }
    let fixed = Fixed6((sigma * Fixed6::SCALE as f64).ceil() as u64);
    if fixed > MAX_NOISE_MULTIPLIER {
        bail!(
            "--epsilon-budget {} is too small for {rounds} rounds of {} steps at q = {q}: it needs noise multiplier {sigma:.1}, above the protocol's maximum {MAX_NOISE_MULTIPLIER}",
            opts.epsilon_budget,
            opts.local_steps
        );
    }
    Ok(fixed)
}

/// `--hidden` as it was given: `0` for none, else the widths joined by commas.
fn hidden_flag(hidden: &[u32]) -> String {
    if hidden.is_empty() {
        return "0".to_owned();
    }
    hidden.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn genesis_for(opts: &DevnetOptions, members: Vec<Hash32>) -> anyhow::Result<Genesis> {
    let data = builtin(&opts.dataset)?;
    let mut g = Genesis::template("learnchain-devnet", data.features() as u32, data.classes, members);
    // One input scaling for every node: the built-in set's training-split statistics.
    g.model.input = Some(crate::data::reference_transform(&format!("builtin:{}", opts.dataset), "label")?);
    g.timestamp_ms = learnchain_chain::now_ms();
    g.training.local_steps = opts.local_steps;
    g.training.learning_rate = fixed("learning-rate", opts.learning_rate)?;
    g.privacy.max_local_steps = opts.local_steps;
    let q = plan_sample_rate(opts)?;
    g.privacy.max_sample_rate = fixed("sample-rate", q)?;
    g.privacy.clip_bound = fixed("clip", DEVNET_CLIP)?;
    g.privacy.min_noise_multiplier = plan_noise(opts, q)?;
    g.privacy.delta = Probability::from_f64(opts.delta).map_err(|e| anyhow::anyhow!("--delta: {e}"))?;
    // A block waits for all the data sources but one in twenty, so a straggler (one that
    // retrains after a fork, or stopped at its budget) does not hold every round to the
    // timeout; the miner adds the updates that arrive while it mines.
    g.consensus.quorum = (opts.data_sources - opts.data_sources / 20) as u32;
    g.consensus.max_submissions = (opts.data_sources as u32).max(16);
    g.consensus.aggregation = opts.aggregation;
    g.consensus.update_encoding = opts.update_encoding;
    if !opts.hidden.is_empty() {
        g.model.architecture = learnchain_proto::genesis::Architecture::Mlp;
        g.model.hidden = opts.hidden.clone();
    }
    // Size limits for this model, ring and block (a larger model needs larger messages).
    g.fit_limits();
    let flags = || {
        format!(
            "the devnet's flags make no valid genesis (--dataset {} --hidden {} --data-sources {} --update-encoding {})",
            opts.dataset,
            hidden_flag(&opts.hidden),
            opts.data_sources,
            opts.update_encoding
        )
    };
    if let Some(ms) = opts.block_interval_ms {
        g.pow.block_interval_ms = ms;
    }
    // Everything but the proof-of-work calibration first: an impossible model is named by
    // its flags before anything is timed with it.
    g.validate().with_context(flags)?;
    if opts.block_interval_ms.is_none() {
        g.pow.block_interval_ms = plan_block_interval(opts, &g)?;
    }
    // The round timeout is for stragglers, and must outlast a round: the first round of a
    // hundred data sources (connections, gossip meshes and ring caches all new) takes about
    // three planned intervals on two cores, and a block closed at a 5 s timeout carried
    // 81–94 of 100 updates.
    g.consensus.round_timeout_ms = g.consensus.round_timeout_ms.max(ROUND_TIMEOUT_INTERVALS * g.pow.block_interval_ms);
    // Calibrate: the miners share this machine with every other node, so aim for half the
    // hashes one core does in a block interval. The retarget takes it from there.
    let rate = measure_hash_rate();
    let difficulty = (rate * g.pow.block_interval_ms as f64 / 1000.0 / 2.0).max(1.0) as u64;
    g.pow.initial_target = learnchain_proto::genesis::target_for_difficulty(difficulty).min(g.pow.pow_limit);
    g.validate().with_context(flags)?;
    Ok(g)
}

/// The devnet's round timeout in planned block intervals (at least the genesis default).
const ROUND_TIMEOUT_INTERVALS: u64 = 5;

/// Wall time a round costs per data source beyond training and the bytes of its update:
/// ring-signing, announcing, fetching and the network stack of every node (measured: about
/// 13 ms per data source at 100 sources of a 62-parameter model on 2 cores).
const ROUND_COST_PER_SOURCE_MS: f64 = 15.0;

/// CPU time each node spends per byte of the blocks it receives: decoding, hashing,
/// checking, aggregating and storing them (measured: about 20 ns per byte on 2 cores, from
/// `validation_ms_per_block` over blocks of 0.1 to 6.4 MB).
const NODE_NS_PER_BLOCK_BYTE: f64 = 20.0;

/// The block interval of a devnet given no `--block-interval-ms`: what a round of its data
/// sources takes on this machine — one local training round is timed here, on the first
/// shard, and counted once per data source, and every node's work on the round's
/// [`NODE_NS_PER_BLOCK_BYTE`], both over the available cores, with
/// [`ROUND_COST_PER_SOURCE_MS`] per data source on top — and at least
/// [`DEFAULT_BLOCK_INTERVAL_MS`].
///
/// Below the round time the retarget lowers the difficulty until proof of work is
/// instant, and the two miners, both ready the moment the quorum is in, finish together:
/// every third or fourth block forks. At about the round time, proof of work still orders
/// them.
fn plan_block_interval(opts: &DevnetOptions, g: &Genesis) -> anyhow::Result<u64> {
    let cfg = DataConfig {
        source: Some(format!("builtin:{}", opts.dataset)),
        shards: opts.data_sources,
        shard: 0,
        partition: opts.partition.clone(),
        evaluate: false,
        ..DataConfig::default()
    };
    let train = crate::data::load_local(&cfg, g.model.input.as_ref())?.train.context("the devnet's dataset has no training split")?;
    let declaration = g.policy_declaration();
    let examples = u32::try_from(train.len()).unwrap_or(u32::MAX);
    let dp = crate::roles::datasource::dp_params(g, &declaration, examples);
    let mut training = g.training.clone();
    training.local_steps = declaration.steps;
    let weights = g.model.initial_weights();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let started = Instant::now();
    learnchain_model::train_local_dp(&g.model, &training, &dp, &weights, &train, &mut rng)
        .context("timing one training round for the block interval")?;
    let train_ms = started.elapsed().as_secs_f64() * 1000.0;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) as f64;
    let n = opts.data_sources as f64;
    let nodes = n + opts.miners as f64 + 1.0;
    let submission = g.consensus.update_encoding.max_update_bytes(&g.model)
        + learnchain_proto::genesis::submission_overhead_bytes(g.consensus.ring_size);
    let checking_ms = nodes * n * submission as f64 * NODE_NS_PER_BLOCK_BYTE / 1e6;
    let round_ms = (n * train_ms + checking_ms) / cores + n * ROUND_COST_PER_SOURCE_MS;
    Ok((round_ms.ceil() as u64).max(DEFAULT_BLOCK_INTERVAL_MS))
}

/// Header hashes per second on one core, measured over about 50 ms.
fn measure_hash_rate() -> f64 {
    let header = Genesis::template("calibrate", 1, 2, vec![Hash32([1; 32])]).header();
    let mut hasher = learnchain_chain::pow::PowHasher::new(&header);
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_millis(50) {
        for i in 0..10_000 {
            std::hint::black_box(hasher.hash(n + i));
        }
        n += 10_000;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Nodes a devnet of this size connects fully: each node dials every node started before it.
const FULL_MESH_NODES: usize = 8;
/// In a larger devnet, how many earlier non-miner nodes each node dials besides the miners.
const DEVNET_PEERS: usize = 4;

/// The bootnodes of the devnet's `i`-th node (in start order; the miners come first), from
/// the listen addresses of the nodes started before it. A small devnet is a full mesh. A
/// larger one is a mesh of bounded degree, as a real network is: every node dials the
/// miners and [`DEVNET_PEERS`] earlier nodes spread over the start order (the one just
/// before it and others at pseudo-random distances), so gossip crosses several hops and no
/// data source holds a hundred connections.
fn bootnodes_of(i: usize, miners: usize, started: &[Vec<String>]) -> Vec<String> {
    let earlier = started.len().min(i);
    if i < FULL_MESH_NODES {
        return started[..earlier].concat();
    }
    let mut picks: Vec<usize> = (0..miners.min(earlier)).collect();
    let others = miners..earlier;
    if !others.is_empty() {
        let span = others.len();
        for k in 0..DEVNET_PEERS {
            // k = 0: the node just before; then spread by a multiplicative hash of (i, k).
            let offset = if k == 0 { 0 } else { (i.wrapping_mul(2_654_435_761).wrapping_add(k * 40_503)) % span };
            let pick = earlier - 1 - offset;
            if !picks.contains(&pick) {
                picks.push(pick);
            }
        }
    }
    picks.into_iter().flat_map(|p| started[p].iter().cloned()).collect()
}

/// `max_peers` of every devnet node: room for every other node and a few outside peers.
fn devnet_max_peers(opts: &DevnetOptions) -> usize {
    (opts.miners + opts.data_sources + 1 + 8).max(learnchain_net::DEFAULT_MAX_PEERS)
}

fn node_config(
    dir: &Path,
    name: &str,
    roles: Vec<Role>,
    data: DataConfig,
    bootnodes: Vec<String>,
    opts: &DevnetOptions,
) -> NodeConfig {
    NodeConfig {
        name: name.into(),
        data_dir: dir.join(name),
        genesis: dir.join("genesis.toml"),
        roles,
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        bootnodes,
        rpc: "127.0.0.1:0".into(),
        metrics: None,
        data,
        member_key: None,
        member_key_passphrase_file: None,
        request_timeout_s: 10,
        bootnode_timeout_s: crate::config::DEFAULT_BOOTNODE_TIMEOUT_S,
        target_peers: learnchain_net::DEFAULT_TARGET_PEERS,
        // Every data source dials every miner: a miner of a large devnet holds a
        // connection to each node (see `bootnodes_of`).
        max_peers: devnet_max_peers(opts),
        mdns: false,
        // The devnet wires its own bounded-degree mesh (`bootnodes_of`); a hundred nodes
        // starting random walks at once would only add load to the round it times.
        discovery: false,
        gossip_scoring: true,
        enforce_peer_scores: true,
        prune: None,
        sync: crate::sync::snapshot::SyncMode::Snapshot,
        store_cache_mib: 16,
        adversary: None,
        privacy: PrivacyConfig {
            epsilon_budget: opts.epsilon_budget,
            delta: Some(opts.delta),
            ..PrivacyConfig::default()
        },
    }
}

/// On a resumed devnet, refuses to start when a data source cannot afford the rounds this
/// run needs (`--blocks` + 1): it would stop, and with every source stopped the chain stalls.
fn check_budgets_for_resume(opts: &DevnetOptions, dir: &Path, g: &Genesis) -> anyhow::Result<()> {
    let d = g.policy_declaration();
    for i in 1..=opts.data_sources {
        let path = dir.join(format!("source-{i}")).join(crate::privacy::LEDGER_FILE);
        if !path.exists() {
            continue;
        }
        let ledger = learnchain_privacy::PrivacyLedger::open(&path, opts.epsilon_budget, opts.delta)
            .with_context(|| format!("source-{i}'s privacy ledger (resume with the --epsilon-budget and --delta it was created with)"))?;
        let extra = learnchain_privacy::RoundParams {
            round: 0,
            q: d.sample_rate.to_f64(),
            sigma: d.noise_multiplier.to_f64(),
            steps: (opts.blocks + 1) * u64::from(d.steps),
        };
        let after = ledger.spent_with(&extra).map(|s| s.epsilon).unwrap_or(f64::INFINITY);
        if after.is_nan() || after > ledger.budget() {
            bail!(
                "source-{i} has spent ε = {:.3} of its budget {}; {} more blocks would take it to ε = {after:.3}, so it would stop and the chain with it: lower --blocks or start a new devnet",
                ledger.spent().epsilon,
                ledger.budget(),
                opts.blocks
            );
        }
    }
    Ok(())
}

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

/// The observer's test metrics of the canonical model at each height from `start_height`
/// to its head, and every data source's privacy ledger (its rounds, accountant and `δ`).
fn read_history(nodes: &[Node], start_height: u64) -> (Vec<HeightMetrics>, Vec<SourceLedger>) {
    let mut heights = Vec::new();
    if let Some(observer) = nodes.last() {
        let metas: Vec<learnchain_chain::BlockMeta> = {
            let st = observer.svc.lock();
            let head = st.chain.head().height;
            (start_height.min(head)..=head)
                .filter_map(|h| st.chain.canonical_hash(h).ok().flatten().and_then(|hash| st.chain.meta(&hash)))
                .collect()
        };
        for meta in metas {
            let m = observer.api.metrics_for(&meta).ok();
            heights.push(HeightMetrics { height: meta.height, accuracy: m.map(|m| m.accuracy), loss: m.map(|m| m.loss) });
        }
    }
    let ledgers = nodes
        .iter()
        .filter_map(|n| n.api.privacy.as_ref())
        .map(|gate| {
            let gate = crate::privacy::lock(gate);
            let ledger = gate.ledger();
            SourceLedger { rounds: ledger.rounds().to_vec(), accountant: ledger.accountant(), delta: ledger.delta() }
        })
        .collect();
    (heights, ledgers)
}

/// The run to plot: the metrics by height, and the data sources' largest ε spent by height
/// (at up to [`crate::plot::history::MAX_EPSILON_POINTS`] heights).
fn run_history(opts: &DevnetOptions, heights: Vec<HeightMetrics>, ledgers: &[SourceLedger]) -> RunHistory {
    let all: Vec<u64> = heights.iter().map(|m| m.height).collect();
    let at = crate::plot::history::epsilon_heights(&all);
    let eps = crate::plot::history::epsilon_max_by_height(ledgers, &at);
    let epsilon_max = at.into_iter().zip(eps).filter_map(|(h, e)| Some((h, e?))).collect();
    let mut title = format!("learnchain devnet: {}, {} data sources ({}), {}", opts.dataset, opts.data_sources, opts.partition, opts.aggregation);
    if opts.adversaries > 0 {
        title.push_str(&format!(", {} × {}", opts.adversaries, opts.adversary));
    }
    RunHistory { title, heights, epsilon_max, sources: ledgers.len(), epsilon_budget: opts.epsilon_budget, delta: opts.delta }
}

/// Calls `method` (no parameters) on every node's JSON-RPC at once; the answers in node
/// order, or the first failure, naming the node.
async fn ask_all<'a, T: serde::de::DeserializeOwned>(nodes: impl Iterator<Item = &'a Node>, method: &str) -> anyhow::Result<Vec<T>> {
    let calls = nodes.map(|n| async move {
        let addr = n.rpc_addr.context("devnet nodes run RPC")?;
        let v = learnchain_rpc::client::call(addr, method, serde_json::Value::Null)
            .await
            .with_context(|| format!("{method} on {}", n.name))?;
        serde_json::from_value(v).with_context(|| format!("{method} on {}", n.name))
    });
    futures::future::join_all(calls).await.into_iter().collect()
}

async fn drive(opts: &DevnetOptions, nodes: &[Node], dir: &Path, started: Instant) -> anyhow::Result<DevnetSummary> {
    let observer = nodes.last().context("no observer")?;
    let miner_names: Vec<(Hash32, String)> =
        nodes.iter().filter(|n| n.name.starts_with("miner")).map(|n| (n.node_key, n.name.clone())).collect();
    let start_height = observer.svc.head().meta.height;
    let target = start_height + opts.blocks;
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let mut events = observer.svc.head_events();
    if opts.verbose {
        println!(
            "learnchain devnet: {} nodes on 127.0.0.1, data in {}",
            nodes.len(),
            dir.display()
        );
        for n in nodes {
            println!("  {:<10} rpc http://{}", n.name, n.rpc_addr.map(|a| a.to_string()).unwrap_or_default());
        }
        if let Some(addr) = observer.rpc_addr {
            println!("explorer: http://{addr}/ (open it in a browser to watch the run live)");
        }
        println!("mining {} blocks (height {} → {})", opts.blocks, start_height, target);
        if let Some(g) = nodes.first().map(|n| n.svc.genesis().clone()) {
            println!(
                "DP-SGD on every data source: q = {}, σ = {}, C = {}, {} steps per round; budget ε = {} at δ = {:e}",
                g.privacy.max_sample_rate,
                g.privacy.min_noise_multiplier,
                g.privacy.clip_bound,
                g.training.local_steps,
                opts.epsilon_budget,
                opts.delta
            );
            println!(
                "anonymous members: {} registered keys; every update is ring-signed (bLSAG, rings of up to {}) with a per-round tag",
                g.members.len(),
                g.consensus.ring_size
            );
        }
        println!("{:>6}  {:<8}  {:<9}  {:>11}  {:>9}  {:>8}", "height", "block", "miner", "submissions", "accuracy", "time");
    }
    let mut blocks_mined = 0u64;
    let mining_started = Instant::now();
    let received = |nodes: &[Node]| nodes.iter().map(|n| n.net.traffic().bytes_in).sum::<u64>();
    let received_before = received(nodes);
    let validating = |nodes: &[Node]| nodes.iter().map(|n| n.svc.validation_nanos()).sum::<u64>();
    let validated_before = validating(nodes);
    while observer.svc.head().meta.height < target {
        let meta = match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(m)) => m,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(_)) => bail!("observer stopped"),
            Err(_) => bail!(
                "timed out after {:?} at height {} of {target}",
                opts.timeout,
                observer.svc.head().meta.height
            ),
        };
        blocks_mined += 1;
        if opts.verbose {
            let miner = miner_names.iter().find(|(k, _)| *k == meta.miner).map_or("?", |(_, n)| n.as_str());
            let acc = observer.api.metrics_for(&meta).map(|m| format!("{:.2}%", m.accuracy * 100.0)).unwrap_or_default();
            println!(
                "{:>6}  {:<8}  {:<9}  {:>11}  {:>9}  {:>7.1}s",
                meta.height,
                meta.hash.short(),
                miner,
                meta.submissions,
                acc,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let seconds_per_block = mining_started.elapsed().as_secs_f64() / opts.blocks.max(1) as f64;
    // Every byte a node sends another node receives: the mean received is the mean sent.
    let wire_bytes_per_node_per_round =
        received(nodes).saturating_sub(received_before) as f64 / nodes.len().max(1) as f64 / opts.blocks.max(1) as f64;
    let validation_ms_per_block =
        validating(nodes).saturating_sub(validated_before) as f64 / 1e6 / nodes.len().max(1) as f64 / opts.blocks.max(1) as f64;
    // Settle on one head: one miner keeps going until every node agrees (a block still in
    // flight when mining stopped may reach some nodes later), then it pauses too.
    let mut watches: Vec<watch::Receiver<HeadSnapshot>> = nodes.iter().map(Node::heads).collect();
    let miners: Vec<&Node> = nodes.iter().filter(|n| n.name.starts_with("miner")).collect();
    for m in miners.iter().skip(1) {
        m.set_mining(false);
    }
    let settle_deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = tokio::time::Instant::now();
        if now >= settle_deadline {
            break;
        }
        if wait_agree(&mut watches, (now + Duration::from_secs(5)).min(settle_deadline)).await {
            if let Some(m) = miners.first() {
                m.set_mining(false);
            }
            // A block mined just before the pause may still be on its way.
            let check = (tokio::time::Instant::now() + Duration::from_millis(500)).min(settle_deadline);
            if wait_agree(&mut watches, check).await && !changes_before(&mut watches, check).await {
                break;
            }
            if let Some(m) = miners.first() {
                m.set_mining(true);
            }
        }
    }
    // Ask every node over JSON-RPC, all at once.
    let heads: Vec<learnchain_rpc::HeadView> = ask_all(nodes.iter(), "chain_head").await?;
    let nodes_agree = heads.windows(2).all(|w| w[0].hash == w[1].hash && w[0].model_hash == w[1].model_hash);
    let privacy: Vec<learnchain_rpc::PrivacyStatusView> =
        ask_all(nodes.iter().filter(|n| n.name.starts_with("source")), "privacy_status").await?;
    let epsilon_spent_max = privacy.iter().filter_map(|p| p.epsilon_spent).fold(0.0, f64::max);
    let data_sources_stopped = privacy.iter().filter(|p| p.stopped).count();
    let noise_multiplier = privacy.first().and_then(|p| p.noise_multiplier).unwrap_or(f64::NAN);
    let head = observer.svc.head().meta;
    let accuracy = observer.api.metrics_for(&head).map(|m| m.accuracy).unwrap_or(f64::NAN);
    let (submissions, bytes_per_block) = {
        let st = observer.svc.lock();
        let mut total = 0u64;
        for h in 1..=head.height {
            if let Some(hash) = st.chain.canonical_hash(h)? {
                total += st.chain.meta(&hash).map_or(0, |m| u64::from(m.submissions));
            }
        }
        // The blocks of this run, as stored and served (the canonical encoding).
        let mut bytes = 0usize;
        let run = start_height + 1..=head.height;
        let count = run.clone().count();
        for h in run {
            if let Some(block) = st.chain.block_at(h)? {
                bytes += learnchain_proto::encoding::encoded_len(&block);
            }
        }
        (total, if count == 0 { 0.0 } else { bytes as f64 / count as f64 })
    };
    let summary = DevnetSummary {
        height: head.height,
        head_hash: head.hash.to_hex(),
        model_hash: head.model_hash.to_hex(),
        nodes_agree,
        test_accuracy: accuracy,
        elapsed_s: started.elapsed().as_secs_f64(),
        seconds_per_block,
        bytes_per_block,
        wire_bytes_per_node_per_round,
        validation_ms_per_block,
        submissions,
        blocks_mined,
        nodes: nodes.len(),
        data_dir: dir.display().to_string(),
        epsilon_spent_max,
        epsilon_budget: opts.epsilon_budget,
        delta: opts.delta,
        noise_multiplier,
        data_sources_stopped,
        aggregation: nodes.first().map(|n| n.svc.genesis().consensus.aggregation.to_string()).unwrap_or_default(),
        update_encoding: nodes.first().map(|n| n.svc.genesis().consensus.update_encoding.to_string()).unwrap_or_default(),
        block_interval_ms: nodes.first().map_or(0, |n| n.svc.genesis().pow.block_interval_ms),
        adversaries: opts.adversaries,
        adversary: (opts.adversaries > 0).then(|| opts.adversary.to_string()),
    };
    if opts.verbose {
        println!(
            "done: height {} head {} model {} — nodes agree: {}, test accuracy {:.2}%, {} submissions, {:.1}s",
            summary.height,
            &summary.head_hash[..8],
            &summary.model_hash[..8],
            summary.nodes_agree,
            summary.test_accuracy * 100.0,
            summary.submissions,
            summary.elapsed_s
        );
        println!(
            "scale: {:.2} s per block (interval {} ms, {} mined for {} heights), {:.0} bytes per block ({} updates), {:.0} bytes on the wire per node per block ({:.2} × the block)",
            summary.seconds_per_block,
            summary.block_interval_ms,
            summary.blocks_mined,
            opts.blocks,
            summary.bytes_per_block,
            summary.update_encoding,
            summary.wire_bytes_per_node_per_round,
            summary.wire_bytes_per_node_per_round / summary.bytes_per_block.max(1.0)
        );
        println!(
            "privacy: every data source at ε ≤ {:.3} (budget {}, δ = {:e}, noise multiplier {}); {} stopped at the budget",
            summary.epsilon_spent_max,
            summary.epsilon_budget,
            summary.delta,
            summary.noise_multiplier,
            summary.data_sources_stopped
        );
        if let Some(a) = &summary.adversary {
            println!("aggregation: {} against {} of {} data sources as {a} adversaries", summary.aggregation, summary.adversaries, opts.data_sources);
        }
    }
    Ok(summary)
}
