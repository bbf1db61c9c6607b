//! Discovery at the scale of a small real network: 30 in-process nodes whose only bootnode
//! is node 0 find each other through Kademlia and end with between 4 and `max_peers` peers;
//! node 0 stops; a newcomer that knows only node 7 joins, learns the network from it and
//! syncs; blocks keep reaching every node.
//!
//! The test also prints what the network looks like, for `scripts/mesh.sh`: the median
//! number of peers, the hops from the miner to every node over the connection graph, and
//! how long new blocks take to reach every node (p50 and p99 over nodes and blocks, from the
//! miner's head change to each node's). Those are figures, not assertions: timing on a
//! loaded 2-core machine says little, and the script runs it in release.
//!
//! Every wait is on an event (peer counts and heads, both watch channels) with a deadline.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use learnchain_tests::{Kind, Testnet};
use tokio::sync::watch;

/// Nodes of the network before the newcomer.
const NODES: usize = 30;
const MINER: usize = 1;
const T: Duration = Duration::from_secs(90);

/// Waits until every node in `which` has at least `min` peers.
async fn wait_peers(net: &Testnet, which: &[usize], min: usize) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + T;
    for &i in which {
        let mut count = net.node(i)?.peer_count();
        loop {
            if *count.borrow_and_update() >= min {
                break;
            }
            match tokio::time::timeout_at(deadline, count.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => bail!("node {i} stopped"),
                Err(_) => bail!("node {i} has {} peers, {min} wanted", *count.borrow()),
            }
        }
    }
    Ok(())
}

/// Peer ids of every node's peers, by node index.
async fn graph(net: &Testnet, which: &[usize]) -> anyhow::Result<HashMap<usize, Vec<usize>>> {
    let index: HashMap<_, usize> = which.iter().map(|&i| Ok((net.node(i)?.peer_id, i))).collect::<anyhow::Result<_>>()?;
    let mut out = HashMap::new();
    for &i in which {
        let peers = net.node(i)?.net.peers().await;
        out.insert(i, peers.iter().filter_map(|p| index.get(&p.peer_id).copied()).collect());
    }
    Ok(out)
}

/// Hops from `from` to every node it reaches.
fn hops(graph: &HashMap<usize, Vec<usize>>, from: usize) -> HashMap<usize, usize> {
    let mut dist = HashMap::from([(from, 0)]);
    let mut queue = VecDeque::from([from]);
    while let Some(n) = queue.pop_front() {
        let d = dist[&n];
        for &m in graph.get(&n).into_iter().flatten() {
            if let std::collections::hash_map::Entry::Vacant(e) = dist.entry(m) {
                e.insert(d + 1);
                queue.push_back(m);
            }
        }
    }
    dist
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// For `blocks` new blocks: how long after the miner's head moved each other node's did.
async fn propagation(net: &Testnet, which: &[usize], blocks: usize) -> anyhow::Result<Vec<Duration>> {
    let mut miner = net.node(MINER)?.heads();
    let mut rxs: Vec<(usize, watch::Receiver<_>)> =
        which.iter().filter(|&&i| i != MINER).map(|&i| Ok((i, net.node(i)?.heads()))).collect::<anyhow::Result<_>>()?;
    let mut delays = Vec::new();
    miner.borrow_and_update();
    for _ in 0..blocks {
        tokio::time::timeout(T, miner.changed()).await.context("the miner made no block")??;
        let mined = Instant::now();
        let hash = miner.borrow_and_update().meta.hash;
        let deadline = tokio::time::Instant::now() + T;
        let mut pending: HashSet<usize> = rxs.iter().map(|(i, _)| *i).collect();
        while !pending.is_empty() {
            let mut changed = Vec::new();
            for (i, rx) in rxs.iter_mut() {
                if pending.contains(i) {
                    let h = rx.borrow_and_update();
                    // Reached this block or already past it.
                    if h.meta.hash == hash || net.node(*i)?.svc.lock().chain.contains(&hash) {
                        changed.push(*i);
                    }
                }
            }
            for i in changed {
                pending.remove(&i);
                delays.push(mined.elapsed());
            }
            if pending.is_empty() {
                break;
            }
            let waits = rxs.iter_mut().filter(|(i, _)| pending.contains(i)).map(|(_, rx)| Box::pin(rx.changed()));
            match tokio::time::timeout_at(deadline, futures::future::select_all(waits)).await {
                Ok(_) => {}
                Err(_) => bail!("block {} never reached nodes {pending:?}", hash.short()),
            }
        }
    }
    delays.sort();
    Ok(delays)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_nodes_find_each_other_and_outlive_their_bootnode() -> anyhow::Result<()> {
    let mut net = Testnet::empty(Testnet::genesis(2))?;
    // Node 0, the only bootnode, is an observer so that the chain goes on without it.
    net.add(Kind::Observer, vec![]).await?;
    let boot = net.all_addrs();
    net.add(Kind::Miner, boot.clone()).await?;
    net.add(Kind::Source(0), boot.clone()).await?;
    net.add(Kind::Source(1), boot.clone()).await?;
    while net.nodes.len() < NODES {
        net.add(Kind::Observer, boot.clone()).await?;
    }
    let all = net.running();
    let max_peers = net.max_peers;

    // Everyone finds at least four peers through discovery, though each was told of one.
    wait_peers(&net, &all, 4).await?;
    net.wait_height(MINER, 2, T).await?;
    let g = graph(&net, &all).await?;
    let mut degrees: Vec<usize> = all.iter().map(|i| g[i].len()).collect();
    for (&i, peers) in &g {
        assert!(peers.len() <= max_peers, "node {i} has {} peers, more than {max_peers}", peers.len());
    }
    degrees.sort();
    let from_miner = hops(&g, MINER);
    assert_eq!(from_miner.len(), NODES, "every node is reachable from the miner");
    let max_hops = from_miner.values().max().copied().unwrap_or(0);
    let delays = propagation(&net, &all, 5).await?;
    println!(
        "mesh figures: nodes={NODES} median_peers={} min_peers={} max_peers={} max_hops_from_miner={max_hops} propagation_p50_ms={} propagation_p99_ms={} samples={}",
        degrees[degrees.len() / 2],
        degrees[0],
        degrees[degrees.len() - 1],
        percentile(&delays, 0.5).as_millis(),
        percentile(&delays, 0.99).as_millis(),
        delays.len(),
    );

    // The bootnode goes away; a newcomer knows only node 7.
    net.stop(0).await?;
    let through = net.node(7)?.listen_addrs.iter().map(ToString::to_string).collect();
    let newcomer = net.add(Kind::Observer, through).await?;
    let rest = net.running();
    wait_peers(&net, &[newcomer], 4).await?;
    let head = net.head(MINER)?;
    net.wait_height(newcomer, head.meta.height, T).await?;
    // Blocks keep reaching every node, the newcomer included.
    for &i in &rest {
        net.wait_height(i, head.meta.height + 3, T).await?;
    }
    net.wait_agree(&rest, T).await?;
    let newcomer_peers = net.node(newcomer)?.net.peers().await.len();
    assert!((4..=max_peers).contains(&newcomer_peers), "the newcomer has {newcomer_peers} peers");
    net.shutdown().await;
    Ok(())
}
