//! What a devnet is made of before it runs: its genesis (the sampling rate and noise planned
//! from the budget, the block interval from a timed round and this machine's hash rate),
//! who dials whom, each node's config, and the check that a resumed devnet's data sources
//! can still pay for the rounds asked. Everything here is computed from the
//! [`DevnetOptions`](super::DevnetOptions); nothing runs a node.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::SeedableRng;
use learnchain_model::data::{Dataset, builtin};
use learnchain_proto::privacy::MAX_NOISE_MULTIPLIER;
use learnchain_proto::{Fixed6, Genesis, Hash32, Probability};

use crate::config::{DataConfig, NodeConfig, Role};
use crate::privacy::{PrivacyConfig, fixed};

use super::{DevnetOptions, DEFAULT_BLOCK_INTERVAL_MS, DEVNET_CLIP};

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

pub(super) fn genesis_for(opts: &DevnetOptions, members: Vec<Hash32>) -> anyhow::Result<Genesis> {
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
pub(super) fn bootnodes_of(i: usize, miners: usize, started: &[Vec<String>]) -> Vec<String> {
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

pub(super) fn node_config(
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
pub(super) fn check_budgets_for_resume(opts: &DevnetOptions, dir: &Path, g: &Genesis) -> anyhow::Result<()> {
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

