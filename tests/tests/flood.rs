//! Floods that change nothing: a hostile peer sends up to 10,000 invalid messages of each kind
//! (garbage, bad proof of work, bad signatures, oversized, wrong chain, sync abuse, and
//! replays of honest history) to the observer of an honest testnet (a miner, two data
//! sources, the observer). For every kind of invalid message the observer's peer manager
//! disconnects the sender after at most 50 of them and, for invalid content, bans it, so
//! that it cannot reconnect; replays cost nothing and are not punished. The honest nodes
//! keep agreeing and advancing throughout. One bad message among good ones does not get a
//! peer banned, and its score decays (`one_bad_message_is_forgiven`).
//!
//! Each kind comes from a fresh identity (a ban is per peer id). The test prints, for
//! `scripts/mesh.sh`, how many messages each flood got through and the process's peak
//! resident memory. Waits are on events (peer counts, heads) with deadlines.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use learnchain_chain::auth::{BaseRings, sign_submission};
use learnchain_chain::pow::meets_target;
use learnchain_net::{Multiaddr, NetConfig, NetError, NetEvent, NetworkHandle, PeerId, TopicKind, Verdict};
use learnchain_node::Node;
use learnchain_proto::{
    Block, Hash32, Registration, RegistrationKind, Signature64, Submission, SubmissionAnnouncement, SyncRequest,
    SyncResponse, encode,
};
use learnchain_tests::{Kind, Testnet, bare, garbage};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const T: Duration = Duration::from_secs(30);
const MINER: usize = 0;
const OBSERVER: usize = 3;
/// Messages of each kind a hostile peer tries to send.
const FLOOD: usize = 10_000;
/// Most invalid messages the observer may judge from one peer before it disconnects it.
const MAX_JUDGED: u64 = 50;

/// A bare libp2p peer: publishes what it is told, serves submission fetches from a map,
/// ignores all gossip, and follows which peers it is connected to (discovery may connect it
/// to other nodes than the one it dialled).
struct Outsider {
    net: NetworkHandle,
    serves: Arc<Mutex<HashMap<Hash32, Submission>>>,
    peers: watch::Receiver<HashSet<PeerId>>,
    /// Connections established so far to the node it floods.
    connections: watch::Receiver<u64>,
    /// The node it floods.
    target: PeerId,
    tasks: Vec<JoinHandle<()>>,
}

impl Outsider {
    /// An outsider on `chain_id` that may publish blocks up to `max_block_bytes`.
    async fn start(chain_id: Hash32, max_block_bytes: usize, target: PeerId) -> anyhow::Result<Outsider> {
        let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse()?;
        let config = NetConfig { max_block_bytes, ..bare(chain_id, listen) };
        let (net, mut events, event_loop) = learnchain_net::new(config)?;
        let serves: Arc<Mutex<HashMap<Hash32, Submission>>> = Arc::default();
        let (peers_tx, peers) = watch::channel(HashSet::new());
        let (connections_tx, connections) = watch::channel(0u64);
        let handle = net.clone();
        let serving = serves.clone();
        let consumer = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    NetEvent::Gossip { id, .. } => handle.report_validation(id, Verdict::Ignore).await,
                    NetEvent::SyncRequest { request: SyncRequest::PoolItems { submissions, .. }, responder, .. } => {
                        let served = {
                            let map = serving.lock().unwrap_or_else(|p| p.into_inner());
                            submissions.iter().filter_map(|id| map.get(id).cloned()).collect()
                        };
                        handle.respond(responder, SyncResponse::BodyItems { registrations: vec![], submissions: served }).await;
                    }
                    NetEvent::SyncRequest { responder, .. } => drop(responder),
                    NetEvent::PeerConnected(p) => {
                        peers_tx.send_modify(|s| {
                            s.insert(p);
                        });
                        if p == target {
                            connections_tx.send_modify(|n| *n += 1);
                        }
                    }
                    NetEvent::PeerDisconnected(p) => {
                        peers_tx.send_modify(|s| {
                            s.remove(&p);
                        });
                    }
                    _ => {}
                }
            }
        });
        let event_loop = tokio::spawn(event_loop.run());
        Ok(Outsider { net, serves, peers, connections, target, tasks: vec![event_loop, consumer] })
    }

    fn id(&self) -> PeerId {
        self.net.local_peer_id()
    }

    /// Dials `addr` and waits until the node it floods is on every gossip topic (other
    /// peers it meets through discovery may subscribe first: each subscription is an event).
    async fn connect(&self, addr: Multiaddr) -> anyhow::Result<()> {
        self.net.dial(addr).await.context("dial")?;
        let deadline = tokio::time::Instant::now() + T;
        for kind in TopicKind::ALL {
            let mut min = 1;
            loop {
                let peers = tokio::time::timeout_at(deadline, self.net.wait_for_topic_peers(kind, min))
                    .await
                    .with_context(|| format!("the flooded node never subscribed to {kind:?}"))??;
                if peers.contains(&self.target) {
                    break;
                }
                min = peers.len() + 1;
            }
        }
        Ok(())
    }

    /// Dials the node it floods again: returns once the dial failed, or the connection was
    /// established and closed again.
    async fn redial(&mut self, addr: Multiaddr, what: &str) -> anyhow::Result<()> {
        let before = *self.connections.borrow_and_update();
        // A dial can fail in the handshake before the node has seen who dials (the node
        // still closing the last connection): dial again, at most three times, so the node
        // gets to judge the returning peer.
        let mut attempt = 0;
        while let Err(e) = self.net.dial(addr.clone()).await {
            println!("redial of the {what} flooder failed: {e}");
            attempt += 1;
            if attempt == 3 {
                return Ok(());
            }
        }
        let deadline = tokio::time::Instant::now() + T;
        while *self.connections.borrow_and_update() == before {
            tokio::time::timeout_at(deadline, self.connections.changed())
                .await
                .with_context(|| format!("the {what} flooder's redial never connected"))??;
        }
        self.wait_alone(what).await
    }

    /// Whether it is connected to the node it floods.
    fn connected(&self) -> bool {
        self.peers.borrow().contains(&self.target)
    }

    /// Waits until it is not connected to the node it floods.
    async fn wait_alone(&mut self, what: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            if !self.peers.borrow_and_update().contains(&self.target) {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, self.peers.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => bail!("outsider stopped"),
                Err(_) => bail!("the {what} flooder is still connected"),
            }
        }
    }

    /// Publishes each payload in turn until one finds no peer; returns how many went out.
    async fn flood(&self, kind: TopicKind, payloads: impl Iterator<Item = Vec<u8>>) -> anyhow::Result<usize> {
        let mut sent = 0;
        for data in payloads {
            match self.net.publish(kind, data).await {
                Ok(()) => sent += 1,
                Err(NetError::NoPeers) => break,
                // Its own send queue is full: the flood goes on.
                Err(NetError::Duplicate | NetError::Publish(_)) => {}
                Err(e) => bail!("publish failed: {e}"),
            }
        }
        Ok(sent)
    }
}

impl Drop for Outsider {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The genesis of the flood tests: the testnet's, with an enrolment authority (so forged
/// authority signatures are checked) and the smallest block limit that fits a full block
/// (so an oversized payload is small).
fn genesis() -> learnchain_proto::Genesis {
    let mut g = Testnet::genesis(2);
    let authority = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    g.enrolment.authority = Some(Hash32(authority.to_bytes()));
    g.enrolment.max_per_block = 4;
    g.limits.max_block_bytes = 0;
    g.fit_limits();
    g
}

/// `peer`'s offences as `observer` counted them, and whether it is banned there.
fn judged(observer: &Node, peer: &PeerId) -> (u64, bool) {
    let offences = observer.net.standing(peer).offences;
    (offences, observer.net.bans().iter().any(|b| b.peer_id == *peer))
}

/// After a flood: `outsider` was cut off after at most [`MAX_JUDGED`] judged messages, and
/// when it tries again it is banned and the connection does not hold.
async fn check_cut_off(net: &Testnet, outsider: &mut Outsider, what: &str, sent: usize) -> anyhow::Result<()> {
    let observer = net.node(OBSERVER)?;
    if let Err(e) = outsider.wait_alone(what).await {
        let standing = observer.net.standing(&outsider.id());
        let peers = observer.net.peers().await;
        let view = peers.iter().find(|p| p.peer_id == outsider.id());
        bail!("{e} (sent {sent}; the observer counts {standing:?}; its view: {view:?})");
    }
    let (offences, _) = judged(observer, &outsider.id());
    ensure!((1..=MAX_JUDGED).contains(&offences), "the {what} flood was judged {offences} times before the cut-off");
    let addr = observer.listen_addrs[0].clone();
    outsider.redial(addr.clone(), what).await?;
    let (after, banned) = judged(observer, &outsider.id());
    println!("flood figures: kind={what:?} sent={sent} judged_invalid={offences} banned={banned}");
    ensure!(banned, "the {what} flooder was not banned when it came back");
    ensure!(after == offences, "the {what} flooder was judged again after its cut-off");
    // Banned, it cannot get a connection through.
    outsider.redial(addr, what).await?;
    ensure!(
        !observer.net.peers().await.iter().any(|p| p.peer_id == outsider.id()),
        "the {what} flooder reconnected"
    );
    Ok(())
}

/// Block 1 of the honest chain, and `n` variants of it made invalid by `spoil`, each with its
/// own nonce (message ids are content hashes, so every one is a new message).
fn spoiled_blocks<'a>(block1: &'a Block, spoil: impl Fn(&mut Block, u64) -> bool + 'a) -> impl Iterator<Item = Vec<u8>> + 'a {
    (1u64..).filter_map(move |i| {
        let mut b = block1.clone();
        spoil(&mut b, i).then(|| encode(&b))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_invalid_messages_change_nothing() -> anyhow::Result<()> {
    let mut net = Testnet::empty(genesis())?;
    net.add_all(&[Kind::Miner, Kind::Source(0), Kind::Source(1), Kind::Observer]).await?;
    let g = net.genesis.clone();
    let chain_id = g.chain_id();
    let max_block = g.limits.max_block_bytes as usize;
    let honest = net.running();
    net.wait_height(OBSERVER, 2, T).await?;
    let start = net.head(MINER)?.meta.height;
    let observer_addr = net.node(OBSERVER)?.listen_addrs[0].clone();
    let observer_id = net.node(OBSERVER)?.peer_id;
    let block1 = net.node(OBSERVER)?.svc.lock().chain.block_at(1)?.context("block 1")?;

    // Garbage on the blocks topic.
    let mut o = Outsider::start(chain_id, max_block * 2, observer_id).await?;
    o.connect(observer_addr.clone()).await?;
    let sent = o.flood(TopicKind::Blocks, (0..FLOOD as u64).map(|i| garbage(i + 1, 1 + (i as usize % 300)))).await?;
    check_cut_off(&net, &mut o, "garbage", sent).await?;

    // Blocks whose proof of work misses the target.
    let mut o = Outsider::start(chain_id, max_block * 2, observer_id).await?;
    o.connect(observer_addr.clone()).await?;
    let bad_pow = spoiled_blocks(&block1, |b, i| {
        b.header.nonce = b.header.nonce.wrapping_add(i);
        !meets_target(&b.header.hash(), &b.header.target)
    });
    let sent = o.flood(TopicKind::Blocks, bad_pow.take(FLOOD)).await?;
    check_cut_off(&net, &mut o, "bad proof of work", sent).await?;

    // Blocks of another chain.
    let mut o = Outsider::start(chain_id, max_block * 2, observer_id).await?;
    o.connect(observer_addr.clone()).await?;
    let wrong_chain = spoiled_blocks(&block1, |b, i| {
        b.header.chain_id = Hash32([9; 32]);
        b.header.nonce = i;
        true
    });
    let sent = o.flood(TopicKind::Blocks, wrong_chain.take(FLOOD)).await?;
    check_cut_off(&net, &mut o, "wrong chain", sent).await?;

    // Payloads one byte over the block limit.
    let mut o = Outsider::start(chain_id, max_block * 2, observer_id).await?;
    o.connect(observer_addr.clone()).await?;
    let sent = o.flood(TopicKind::Blocks, (0..FLOOD as u64).map(|i| garbage(i + 50_000, max_block + 1))).await?;
    check_cut_off(&net, &mut o, "oversized", sent).await?;

    // Registrations with forged authority signatures.
    let mut o = Outsider::start(chain_id, max_block * 2, observer_id).await?;
    o.connect(observer_addr.clone()).await?;
    let member = Hash32(learnchain_identity::MemberSecret::from_seed(&[0x55; 32]).public().to_bytes());
    let forged = (0..FLOOD as u64).map(|i| {
        let mut sig = [0u8; 64];
        sig[..8].copy_from_slice(&i.to_le_bytes());
        encode(&Registration {
            chain_id,
            member,
            kind: RegistrationKind::Authorised { possession: Signature64(sig), authority: Signature64(sig) },
        })
    });
    let sent = o.flood(TopicKind::Registrations, forged).await?;
    check_cut_off(&net, &mut o, "forged registration", sent).await?;

    // Submissions with bad ring signatures, announced and served: judged against a frozen
    // head (an announcement for a round already past is ignored, not punished; a block
    // still in flight as mining pauses moves the head once more, and then the flood is
    // made again for the new head).
    net.set_mining(false);
    let mut flooded = false;
    for _ in 0..3 {
        let head = net.wait_agree(&honest, T).await?;
        let mut o = Outsider::start(chain_id, max_block * 2, observer_id).await?;
        o.connect(observer_addr.clone()).await?;
        let rings: Arc<BaseRings> = net.node(OBSERVER)?.svc.lock().chain.rings_at(&head.meta.hash)?;
        let mut signed = Submission {
            chain_id,
            base: head.meta.hash,
            round: head.meta.height + 1,
            num_examples: 100,
            dp: g.policy_declaration(),
            update: learnchain_proto::EncodedUpdate::I32(vec![0; g.param_count()]),
            auth: learnchain_chain::auth::unsigned(),
        };
        sign_submission(&mut signed, &Testnet::member_key(3), &rings, &mut rand::rngs::OsRng)?;
        let tampered = (0..FLOOD as i32).map(|i| {
            let mut s = signed.clone();
            s.update.as_i32_mut().expect("i32 update")[0] = i + 1;
            let id = s.id();
            o.serves.lock().unwrap_or_else(|p| p.into_inner()).insert(id, s.clone());
            encode(&SubmissionAnnouncement::of(&s, id))
        });
        let sent = o.flood(TopicKind::Submissions, tampered).await?;
        if net.head(OBSERVER)?.meta.hash != head.meta.hash && net.node(OBSERVER)?.net.standing(&o.id()).offences == 0 {
            continue;
        }
        check_cut_off(&net, &mut o, "bad ring signature", sent).await?;
        flooded = true;
        break;
    }
    ensure!(flooded, "the head kept moving while mining was paused");
    net.set_mining(true);

    // Sync abuse: requests as fast as it can, 32 at a time, until it is cut off.
    let mut o = Outsider::start(chain_id, max_block * 2, observer_id).await?;
    o.connect(observer_addr.clone()).await?;
    let mut sent = 0usize;
    let mut refused = 0usize;
    while sent < FLOOD && o.connected() {
        let wave: Vec<_> = (0..32)
            .map(|i| {
                let h = o.net.clone();
                let request = if i % 2 == 0 {
                    SyncRequest::BlocksByRange { start: 0, count: u32::MAX }
                } else {
                    SyncRequest::Status
                };
                tokio::spawn(async move { h.request(observer_id, request).await })
            })
            .collect();
        for task in wave {
            sent += 1;
            // Errors (streams refused over the per-connection limit, the connection
            // closing under it) are part of the flood.
            if let Ok(SyncResponse::Refused(_)) = task.await? {
                refused += 1;
            }
        }
    }
    ensure!(refused > 0, "no sync request of {sent} was refused");
    check_cut_off(&net, &mut o, "sync abuse", sent).await?;

    // Replays of honest history: old blocks again and again. Nothing is invalid, so nothing
    // is counted against the peer and it stays connected.
    let o = Outsider::start(chain_id, max_block * 2, observer_id).await?;
    o.connect(observer_addr.clone()).await?;
    let history: Vec<Vec<u8>> = {
        let st = net.node(OBSERVER)?.svc.lock();
        (1..=st.chain.head().height).filter_map(|h| st.chain.block_at(h).ok().flatten()).map(|b| encode(&b)).collect()
    };
    let sent = o.flood(TopicKind::Blocks, history.iter().cycle().take(FLOOD).cloned()).await?;
    let (offences, banned) = judged(net.node(OBSERVER)?, &o.id());
    println!("flood figures: kind=\"replay\" sent={sent} judged_invalid={offences} banned={banned}");
    ensure!(offences == 0 && !banned, "replays were punished: {offences} offences");
    ensure!(o.connected(), "the replaying peer was disconnected");

    // The honest network never noticed: it advanced, agrees, and its members charged each
    // other with nothing.
    for &i in &honest {
        net.wait_height(i, start + 3, T).await?;
    }
    net.wait_agree(&honest, T).await?;
    for &i in &honest {
        for &j in &honest {
            let other = net.node(j)?.peer_id;
            ensure!(net.node(i)?.net.standing(&other).offences == 0, "node {i} charged honest node {j}");
        }
    }
    let peak_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string()))
        .unwrap_or_default();
    println!("flood figures: peak_rss_kib={peak_kib} (the whole test process: four nodes and the outsiders)");
    net.shutdown().await;
    Ok(())
}

/// One invalid block among valid traffic costs its sender a little, and the cost decays:
/// the peer stays connected and is never banned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_message_is_forgiven() -> anyhow::Result<()> {
    let mut net = Testnet::empty(genesis())?;
    net.add_all(&[Kind::Miner, Kind::Source(0), Kind::Source(1), Kind::Observer]).await?;
    let chain_id = net.genesis.chain_id();
    let max_block = net.genesis.limits.max_block_bytes as usize;
    net.wait_height(OBSERVER, 2, T).await?;
    let observer = net.node(OBSERVER)?;
    let block1 = observer.svc.lock().chain.block_at(1)?.context("block 1")?;
    let o = Outsider::start(chain_id, max_block, observer.peer_id).await?;
    o.connect(observer.listen_addrs[0].clone()).await?;
    // Good traffic: the honest history (already known: ignored, not punished)...
    let history: Vec<Vec<u8>> = {
        let st = observer.svc.lock();
        (1..=st.chain.head().height).filter_map(|h| st.chain.block_at(h).ok().flatten()).map(|b| encode(&b)).collect()
    };
    o.flood(TopicKind::Blocks, history.iter().cloned()).await?;
    // ...and one block with a bad nonce among it.
    let bad = spoiled_blocks(&block1, |b, i| {
        b.header.nonce = b.header.nonce.wrapping_add(i);
        !meets_target(&b.header.hash(), &b.header.target)
    })
    .next()
    .context("a bad nonce")?;
    o.flood(TopicKind::Blocks, std::iter::once(bad)).await?;
    // Judged once the observer's next head arrives (gossip from one peer is handled in
    // order, and a block takes longer than a message): wait for the offence.
    let deadline = tokio::time::Instant::now() + T;
    let mut heads = observer.heads();
    while observer.net.standing(&o.id()).offences == 0 {
        tokio::time::timeout_at(deadline, heads.changed()).await.context("the bad block was never judged")??;
    }
    let standing = observer.net.standing(&o.id());
    ensure!(standing.offences == 1, "{standing:?}");
    ensure!(standing.score < 0.0 && standing.score > learnchain_net::DISCONNECT_SCORE, "{standing:?}");
    ensure!(observer.net.bans().is_empty(), "banned for one bad block");
    ensure!(observer.net.peers().await.iter().any(|p| p.peer_id == o.id()), "disconnected for one bad block");
    // The RPC shows the peer with its score and offence.
    let addr = observer.rpc_addr.context("rpc")?;
    let peers = learnchain_rpc::client::call(addr, "net_peers", serde_json::Value::Null).await?;
    let me = o.id().to_string();
    let view = peers.as_array().and_then(|a| a.iter().find(|p| p["peer_id"] == me.as_str())).context("not in net_peers")?;
    ensure!(view["offences"] == 1 && view["last_offence"] == "invalid_block", "{view}");
    ensure!(view["score"].as_f64().is_some_and(|s| s < 0.0), "{view}");
    ensure!(view["direction"] == "inbound", "{view}");
    let bans = learnchain_rpc::client::call(addr, "net_bans", serde_json::Value::Null).await?;
    ensure!(bans.as_array().is_some_and(Vec::is_empty), "{bans}");
    net.shutdown().await;
    Ok(())
}
