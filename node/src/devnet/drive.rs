//! A devnet while it runs and when it ends: following the observer's heads and printing
//! them, stopping the miners at the target height, checking that every node agrees over its
//! JSON-RPC, reading the run's history for `--plot`, and the summary.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use learnchain_proto::Hash32;
use tokio::sync::watch;

use crate::node::Node;
use crate::plot::history::{HeightMetrics, RunHistory, SourceLedger};
use crate::service::{HeadSnapshot, wait_agree};

use super::{DevnetOptions, DevnetSummary};

/// Whether any watched head changes before the deadline.
async fn changes_before(w: &mut [watch::Receiver<HeadSnapshot>], deadline: tokio::time::Instant) -> bool {
    for r in w.iter_mut() {
        r.borrow_and_update();
    }
    let changed = futures::future::select_all(w.iter_mut().map(|r| Box::pin(r.changed())));
    tokio::time::timeout_at(deadline, changed).await.is_ok()
}

/// The observer's test metrics of the canonical model at each height from `start_height`
/// to its head, and every data source's privacy ledger (its rounds, accountant and `δ`).
pub(super) fn read_history(nodes: &[Node], start_height: u64) -> (Vec<HeightMetrics>, Vec<SourceLedger>) {
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
pub(super) fn run_history(opts: &DevnetOptions, heights: Vec<HeightMetrics>, ledgers: &[SourceLedger]) -> RunHistory {
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

pub(super) async fn drive(opts: &DevnetOptions, nodes: &[Node], dir: &Path, started: Instant) -> anyhow::Result<DevnetSummary> {
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

