//! Snapshot sync against peers that lie.
//!
//! The honest network is a miner and two data sources, stopped once the chain is past its
//! first snapshot height. Each newcomer starts with an empty data dir and meets a *liar*
//! first: a bare libp2p peer that answers every sync request with what the miner would
//! answer (it asks the miner's chain service in-process), except for one lie — a flipped
//! bit, a truncated or an oversized chunk, a snapshot of a block no header leads to, a
//! header without the work its target asks for. The newcomer must refuse the snapshot, charge
//! the liar, install nothing, and then start from the honest miner's snapshot once it meets
//! it. A newcomer killed in the middle of a snapshot download (the liar never answers the
//! chunk) starts again cleanly on restart.
//!
//! Waits are on events: the liar reports each request it gets, heads come from the node's
//! watch channel. The one poll is on the newcomer's peer scoreboard, which has no change
//! notification; it runs under the same deadline.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use learnchain_chain::pow::meets_target;
use learnchain_chain::store::CHECKPOINT_INTERVAL;
use learnchain_net::{Multiaddr, NetEvent, NetworkHandle, Offence, PeerId, SyncResponder, Verdict};
use learnchain_node::service::ChainService;
use learnchain_proto::{Hash32, SyncRequest, SyncResponse};
use learnchain_tests::{Kind, Testnet, bare};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

const T: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Lie {
    FlippedBit,
    TruncatedChunk,
    OversizedChunk,
    UnknownBlock,
    HeaderWithoutWork,
    /// Never answers a chunk request.
    StallChunks,
}

/// A peer that serves the honest miner's answers, with one lie.
struct Liar {
    net: NetworkHandle,
    id: PeerId,
    /// Every sync request it got, in order.
    requests: mpsc::UnboundedReceiver<SyncRequest>,
    tasks: Vec<JoinHandle<()>>,
}

impl Liar {
    async fn start(chain_id: Hash32, honest: ChainService, lie: Lie) -> anyhow::Result<Liar> {
        let (net, mut events, event_loop) = learnchain_net::new(bare(chain_id, "/ip4/127.0.0.1/tcp/0".parse()?))?;
        let (seen, requests) = mpsc::unbounded_channel();
        let handle = net.clone();
        // Held, never answered: a stalled chunk request.
        let held: Arc<Mutex<Vec<SyncResponder>>> = Arc::default();
        let consumer = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    NetEvent::Gossip { id, .. } => handle.report_validation(id, Verdict::Ignore).await,
                    NetEvent::SyncRequest { request, responder, .. } => {
                        let _ = seen.send(request.clone());
                        if lie == Lie::StallChunks && matches!(request, SyncRequest::SnapshotChunk { .. }) {
                            held.lock().await.push(responder);
                            continue;
                        }
                        let svc = honest.clone();
                        let answer = tokio::task::spawn_blocking(move || learnchain_node::sync::serve(&svc, request).into_value())
                            .await
                            .unwrap_or_else(|e| SyncResponse::Refused(e.to_string()));
                        handle.respond(responder, lie_about(lie, answer)).await;
                    }
                    _ => {}
                }
            }
        });
        let id = net.local_peer_id();
        let event_loop = tokio::spawn(event_loop.run());
        Ok(Liar { net, id, requests, tasks: vec![event_loop, consumer] })
    }

    /// Waits for a request that `pred` picks.
    async fn wait_request(&mut self, what: &str, pred: impl Fn(&SyncRequest) -> bool) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            match tokio::time::timeout_at(deadline, self.requests.recv()).await {
                Ok(Some(r)) if pred(&r) => return Ok(()),
                Ok(Some(_)) => {}
                Ok(None) => bail!("the liar stopped"),
                Err(_) => bail!("the liar never got {what}"),
            }
        }
    }

    fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

fn lie_about(lie: Lie, answer: SyncResponse) -> SyncResponse {
    match (lie, answer) {
        (Lie::FlippedBit, SyncResponse::SnapshotChunk { block, index, mut bytes }) => {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x10;
            SyncResponse::SnapshotChunk { block, index, bytes }
        }
        (Lie::TruncatedChunk, SyncResponse::SnapshotChunk { block, index, mut bytes }) => {
            bytes.pop();
            SyncResponse::SnapshotChunk { block, index, bytes }
        }
        (Lie::OversizedChunk, SyncResponse::SnapshotChunk { block, index, mut bytes }) => {
            bytes.push(0);
            SyncResponse::SnapshotChunk { block, index, bytes }
        }
        (Lie::UnknownBlock, SyncResponse::Snapshots(mut list)) => {
            for s in &mut list {
                s.block = Hash32([0xab; 32]);
            }
            SyncResponse::Snapshots(list)
        }
        (Lie::HeaderWithoutWork, SyncResponse::Headers(mut headers)) => {
            // Header 5 with a nonce whose hash misses its target; the headers after it, and
            // so the snapshot block at the end, are unchanged.
            if let Some(h) = headers.iter_mut().find(|h| h.height == 5) {
                while meets_target(&h.hash(), &h.target) {
                    h.nonce = h.nonce.wrapping_add(1);
                }
            }
            SyncResponse::Headers(headers)
        }
        (_, answer) => answer,
    }
}

/// Waits until `node` has charged `peer` with an offence; returns the offence.
async fn wait_charged(node: &learnchain_node::Node, peer: &PeerId) -> anyhow::Result<Offence> {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let standing = node.net.standing(peer);
        if let Some(o) = standing.last_offence.filter(|_| standing.offences > 0) {
            return Ok(o);
        }
        ensure!(tokio::time::Instant::now() < deadline, "the liar was never charged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The miner's first listen address.
fn miner_addr(net: &Testnet) -> anyhow::Result<Multiaddr> {
    net.node(0)?.listen_addrs.first().cloned().context("the miner listens nowhere")
}

/// A newcomer that meets the honest miner after `liar` and ends on its head from its
/// snapshot.
async fn ends_on_the_honest_snapshot(net: &Testnet, newcomer: usize) -> anyhow::Result<()> {
    net.node(newcomer)?.net.dial(miner_addr(net)?).await?;
    net.wait_until(newcomer, "the honest snapshot installed", |c| Ok(c.body_floor() > 0), T).await?;
    let head = net.wait_agree(&net.running(), T).await?;
    let (ours, theirs) = (net.node(newcomer)?.svc.clone(), net.node(0)?.svc.clone());
    let (ours, theirs) = (ours.lock(), theirs.lock());
    ensure!(ours.chain.body_floor() == CHECKPOINT_INTERVAL + 1, "installed at {}", ours.chain.body_floor() - 1);
    ensure!(ours.chain.head_model() == theirs.chain.head_model(), "models differ at {}", head.meta.height);
    ensure!(ours.chain.registry().hash() == theirs.chain.registry().hash(), "registries differ");
    Ok(())
}

/// The honest network, stopped a few blocks past its first snapshot height.
async fn past_the_first_snapshot() -> anyhow::Result<Testnet> {
    let net = Testnet::new(&[Kind::Miner, Kind::Source(0), Kind::Source(1)]).await?;
    net.wait_height(0, CHECKPOINT_INTERVAL + 3, T * 3).await?;
    net.set_mining(false);
    net.wait_agree(&net.running(), T).await?;
    Ok(net)
}

/// A newcomer with an empty data dir whose first peer is a liar telling `lie`.
async fn newcomer_meeting(net: &mut Testnet, lie: Lie) -> anyhow::Result<(usize, Liar)> {
    let liar = Liar::start(net.genesis.chain_id(), net.node(0)?.svc.clone(), lie).await?;
    let newcomer = net.add(Kind::Observer, vec![]).await?;
    let addr = net.node(newcomer)?.listen_addrs.first().cloned().context("newcomer address")?;
    liar.net.dial(addr).await?;
    Ok((newcomer, liar))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_snapshot_peer_is_charged_and_the_node_starts_from_an_honest_one() -> anyhow::Result<()> {
    let mut net = past_the_first_snapshot().await?;
    let cases = [
        (Lie::FlippedBit, Offence::BadSyncResponse),
        (Lie::TruncatedChunk, Offence::BadSyncResponse),
        (Lie::OversizedChunk, Offence::BadSyncResponse),
        (Lie::UnknownBlock, Offence::BadSyncResponse),
        (Lie::HeaderWithoutWork, Offence::InvalidBlock),
    ];
    for (lie, offence) in cases {
        let (newcomer, liar) = newcomer_meeting(&mut net, lie).await?;
        let charged = wait_charged(net.node(newcomer)?, &liar.id).await.with_context(|| format!("{lie:?}"))?;
        ensure!(charged == offence, "{lie:?}: charged with {charged:?}, {offence:?} expected");
        ensure!(net.node(newcomer)?.svc.lock().chain.is_fresh(), "{lie:?}: something was installed");
        ends_on_the_honest_snapshot(&net, newcomer).await.with_context(|| format!("after {lie:?}"))?;
        liar.stop();
        net.stop(newcomer).await?;
    }
    net.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_in_the_middle_of_a_snapshot_sync_starts_it_again_cleanly() -> anyhow::Result<()> {
    let mut net = past_the_first_snapshot().await?;
    let (newcomer, mut liar) = newcomer_meeting(&mut net, Lie::StallChunks).await?;
    // Headers downloaded, the state half way: stopped while the chunk request is out.
    liar.wait_request("a chunk request", |r| matches!(r, SyncRequest::SnapshotChunk { .. })).await?;
    net.stop(newcomer).await?;
    liar.stop();
    net.restart(newcomer, vec![miner_addr(&net)?.to_string()]).await?;
    ensure!(net.head(newcomer)?.meta.height == 0, "the stopped download left a head behind");
    ends_on_the_honest_snapshot(&net, newcomer).await?;
    net.shutdown().await;
    Ok(())
}
