//! A hostile peer against an honest in-process testnet.
//!
//! The honest network is a miner, two data sources and an observer ([`Testnet`]). Two
//! extra libp2p peers are built straight from `learnchain-net`, with no chain behind them:
//! the *hostile* peer, connected to the observer, publishes garbage and forged blocks and
//! submissions; the *listener*, connected only to the miner, records every gossip payload
//! that reaches it and forwards nothing.
//!
//! Gossip verdicts are internal to the nodes, so the test observes their effects instead:
//! - submissions travel as announcements, and the hostile peer serves what it announced
//!   (or something else, or nothing) to whoever fetches it;
//! - after the junk, the hostile peer announces one *valid* submission (it holds the key of
//!   genesis member 3, which no honest node uses). Gossip from one peer arrives in order,
//!   the observer's node loop handles it in order, and the announcements one peer forwards
//!   are fetched and judged in the order they came, so once that marker is in the
//!   observer's pool, every earlier message has been judged;
//! - the marker reaching the listener (observer → miner → listener) shows that what the
//!   observer accepts is forwarded, so the junk *not* reaching it shows it was not;
//! - no honest node stores a forged block, the pool holds only valid submissions, and once
//!   mining resumes every node advances on one chain whose stored blocks check out.
//!
//! Every wait is on an event (head and pool watch channels, gossip arrival) with a
//! deadline as a safety net.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use learnchain_chain::auth::{BaseRings, sign_submission, sign_with_ring, unsigned};
use learnchain_identity::{MemberSecret, Ring};
use learnchain_chain::pow::{self, meets_target};
use learnchain_net::{Multiaddr, NetError, NetEvent, NetworkHandle, TopicKind, Verdict};
use learnchain_proto::announce::MAX_ANNOUNCEMENT_BYTES;
use learnchain_proto::block::body_root;
use learnchain_proto::hash::{model_hash, sha256};
use learnchain_proto::privacy::{BoundContext, norm_sq, update_norm_bound_units};
use learnchain_proto::{
    Block, Genesis, Hash32, Header, Registration, RegistrationKind, Signature64, Submission, SubmissionAnnouncement, SyncRequest,
    SyncResponse, encode,
};
use learnchain_node::{HeadSnapshot, Node};
use learnchain_tests::{Kind, Testnet, bare, garbage};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const T: Duration = Duration::from_secs(30);

const MINER: usize = 0;
const OBSERVER: usize = 3;

/// A bare libp2p peer on the chain's topics that judges nothing: it reports `Ignore` for
/// every gossip message it receives (so it never forwards), answers submission fetches
/// from what it was told to serve, and drops every other sync request.
struct Peer {
    net: NetworkHandle,
    /// What it answers a fetch of each announced id with.
    serves: Arc<Mutex<HashMap<Hash32, Submission>>>,
    /// SHA-256 of every gossip payload received.
    seen: Arc<Mutex<HashSet<Hash32>>>,
    seen_count: watch::Receiver<usize>,
    tasks: Vec<JoinHandle<()>>,
}

impl Peer {
    async fn start(chain_id: Hash32) -> anyhow::Result<Peer> {
        let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse()?;
        let (net, mut events, event_loop) = learnchain_net::new(bare(chain_id, listen))?;
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let (count_tx, seen_count) = watch::channel(0usize);
        let handle = net.clone();
        let record = seen.clone();
        let serves: Arc<Mutex<HashMap<Hash32, Submission>>> = Arc::default();
        let serving = serves.clone();
        let consumer = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    NetEvent::Gossip { id, data, .. } => {
                        let n = {
                            let mut s = record.lock().unwrap_or_else(|p| p.into_inner());
                            s.insert(sha256(&data));
                            s.len()
                        };
                        count_tx.send_replace(n);
                        handle.report_validation(id, Verdict::Ignore).await;
                    }
                    NetEvent::SyncRequest { request: SyncRequest::PoolItems { submissions, .. }, responder, .. } => {
                        let served = {
                            let map = serving.lock().unwrap_or_else(|p| p.into_inner());
                            submissions.iter().filter_map(|id| map.get(id).cloned()).collect()
                        };
                        let answer = SyncResponse::BodyItems { registrations: vec![], submissions: served };
                        handle.respond(responder, answer).await;
                    }
                    NetEvent::SyncRequest { responder, .. } => drop(responder),
                    _ => {}
                }
            }
        });
        let event_loop = tokio::spawn(event_loop.run());
        Ok(Peer { net, serves, seen, seen_count, tasks: vec![event_loop, consumer] })
    }

    /// Dials `addr` and waits until the peer there is on both gossip topics.
    async fn connect(&self, addr: Multiaddr) -> anyhow::Result<()> {
        self.net.dial(addr).await.context("dial")?;
        for kind in TopicKind::ALL {
            tokio::time::timeout(T, self.net.wait_for_topic_peers(kind, 1))
                .await
                .with_context(|| format!("no peer on {kind:?}"))??;
        }
        Ok(())
    }

    fn has_seen(&self, h: &Hash32) -> bool {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).contains(h)
    }

    /// Waits until a payload with hash `h` has arrived.
    async fn wait_seen(&mut self, h: &Hash32) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            self.seen_count.borrow_and_update();
            if self.has_seen(h) {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, self.seen_count.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => bail!("peer stopped"),
                Err(_) => bail!("payload {} never arrived", h.short()),
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Finds a nonce meeting the header's target, on a blocking thread, within a bound.
async fn mine(mut header: Header) -> anyhow::Result<Header> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let h = header.clone();
    let search = tokio::task::spawn_blocking(move || pow::search(&h, 0, u64::MAX, &flag));
    match tokio::time::timeout(Duration::from_secs(20), search).await {
        Ok(found) => {
            header.nonce = found?.context("nonce search gave up")?;
            Ok(header)
        }
        Err(_) => {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            bail!("proof of work took too long")
        }
    }
}

/// A submission ring-signed by `key` over its group in `rings`, or — for a key that is no
/// member there — over a ring of its own making (group 0 with the key swapped in).
fn submission(g: &Genesis, rings: &BaseRings, base: Hash32, round: u64, delta: Vec<i32>, key: &MemberSecret) -> Submission {
    let mut s = Submission {
        chain_id: g.chain_id(),
        base,
        round,
        num_examples: 100,
        dp: g.policy_declaration(),
        update: learnchain_proto::EncodedUpdate::I32(delta),
        auth: unsigned(),
    };
    sign(&mut s, rings, key);
    s
}

/// (Re-)signs `s` as [`submission`] does.
fn sign(s: &mut Submission, rings: &BaseRings, key: &MemberSecret) {
    if sign_submission(s, key, rings, &mut rand::rngs::OsRng).is_ok() {
        return;
    }
    let mut keys = rings.ring(0).map(|r| r.keys().to_vec()).unwrap_or_default();
    match keys.first_mut() {
        Some(k) => *k = key.public(),
        None => keys.push(key.public()),
    }
    if let Ok(ring) = Ring::new(keys) {
        let _ = sign_with_ring(s, key, 0, &ring, &mut rand::rngs::OsRng);
    }
}

/// `header` with `subs` as its body: sorted by id, body root recomputed.
fn with_body(mut header: Header, mut subs: Vec<Submission>) -> Block {
    subs.sort_by_key(Submission::id);
    let ids: Vec<Hash32> = subs.iter().map(Submission::id).collect();
    header.body_root = body_root(&[], &ids);
    Block { header, registrations: vec![], submissions: subs }
}

fn member(key: &MemberSecret) -> Hash32 {
    Hash32(key.public().to_bytes())
}

/// One message the hostile peer publishes.
struct Attack {
    what: &'static str,
    kind: TopicKind,
    data: Vec<u8>,
    /// For a submission announcement: the announced id and what the peer answers a fetch
    /// of it with (nothing: it cannot serve it).
    serves: Option<(Hash32, Submission)>,
    /// A copy of something honest nodes already have: the publish may be refused locally as
    /// a duplicate, and the content is not hostile in itself.
    replay: bool,
}

/// Pauses mining between rounds: just after the miner's head moves, while its pool is
/// below the quorum, so (normally) no proof-of-work race is in flight. Returns at once if
/// the pause could not be timed that way within a few blocks; [`settle`] copes with one
/// more block either way.
async fn pause_between_rounds(net: &Testnet) -> anyhow::Result<()> {
    let miner = net.node(MINER)?;
    let quorum = net.genesis.consensus.quorum as usize;
    let mut heads = miner.heads();
    heads.borrow_and_update();
    for _ in 0..10 {
        tokio::time::timeout(T, heads.changed()).await.context("the miner stopped mining")??;
        let head = heads.borrow_and_update().meta.hash;
        let pool = *miner.svc.pool_status().borrow();
        if pool.base != head || pool.count < quorum {
            break;
        }
    }
    net.set_mining(false);
    Ok(())
}

/// With mining paused: waits until every node in `all` has the same head and the
/// observer's pool holds the `expected` honest submissions for the next round. A block
/// still arriving after the pause moves the head once more; then it waits again.
async fn settle(net: &Testnet, all: &[usize], expected: usize) -> anyhow::Result<HeadSnapshot> {
    let observer = net.node(OBSERVER)?;
    for _ in 0..5 {
        let agreed = net.wait_agree(all, T).await?;
        let mut pool = observer.svc.pool_status();
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let st = *pool.borrow_and_update();
            if (st.base == agreed.meta.hash && st.count >= expected) || observer.svc.head().meta.hash != agreed.meta.hash {
                break;
            }
            tokio::time::timeout_at(deadline, pool.changed())
                .await
                .context("the honest submissions never reached the observer's pool")??;
        }
        if all.iter().all(|&i| net.head(i).is_ok_and(|h| h.meta.hash == agreed.meta.hash)) {
            return Ok(agreed);
        }
    }
    bail!("the head did not settle after pausing mining")
}

/// Waits until the observer pools the submission `id` (true) or its head leaves `head`
/// (false: the round's messages were judged against another head).
async fn pooled_or_moved(observer: &Node, id: &Hash32, head: &Hash32) -> anyhow::Result<bool> {
    let mut pool = observer.svc.pool_status();
    let mut heads = observer.heads();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        pool.borrow_and_update();
        heads.borrow_and_update();
        if observer.svc.lock().pool.contains(id) {
            return Ok(true);
        }
        if observer.svc.head().meta.hash != *head {
            return Ok(false);
        }
        tokio::select! {
            r = pool.changed() => r?,
            r = heads.changed() => r?,
            _ = tokio::time::sleep_until(deadline) => bail!("the marker never reached the observer's pool"),
        }
    }
}

/// Messages that are invalid whatever the head: garbage, malformed encodings, and forged
/// variants of block 1. Returns them with the hashes of the forged blocks.
async fn headless_attacks(g: &Genesis, block1: &Block) -> anyhow::Result<(Vec<Attack>, Vec<(&'static str, Hash32)>)> {
    let mut attacks = Vec::new();
    let mut forged = Vec::new();
    let mut push_block = |attacks: &mut Vec<Attack>, what: &'static str, b: &Block| {
        forged.push((what, b.hash()));
        attacks.push(Attack { what, kind: TopicKind::Blocks, data: encode(b), serves: None, replay: false });
    };
    // Garbage, on both topics (distinct bytes: message ids are content hashes).
    for (i, len) in [1usize, 97, 4096].into_iter().enumerate() {
        attacks.push(Attack { what: "garbage block", kind: TopicKind::Blocks, data: garbage(i as u64 + 1, len), serves: None, replay: false });
        // (An announcement is small: the topic refuses more than its limit before it is sent.)
        let len = len.min(MAX_ANNOUNCEMENT_BYTES);
        attacks.push(Attack { what: "garbage submission announcement", kind: TopicKind::Submissions, data: garbage(i as u64 + 100, len), serves: None, replay: false });
    }
    // Registrations this chain (closed enrolment, no authority) must refuse: garbage, a
    // stamp, a forged authority signature, a revocation, a key that is no point.
    attacks.push(Attack { what: "garbage registration", kind: TopicKind::Registrations, data: garbage(200, 150), serves: None, replay: false });
    let key = Hash32(MemberSecret::from_seed(&[0x79; 32]).public().to_bytes());
    let reg = |member: Hash32, kind: RegistrationKind| Registration { chain_id: g.chain_id(), member, kind };
    for (what, r) in [
        ("stamped registration on a closed chain", reg(key, RegistrationKind::Stamped { possession: Signature64([1; 64]), nonce: 7 })),
        (
            "registration with a forged authority signature",
            reg(key, RegistrationKind::Authorised { possession: Signature64([1; 64]), authority: Signature64([2; 64]) }),
        ),
        ("revocation without an authority", reg(g.members[0], RegistrationKind::Revoked { authority: Signature64([3; 64]) })),
        ("registration of a non-key", reg(Hash32([0xff; 32]), RegistrationKind::Stamped { possession: Signature64([1; 64]), nonce: 0 })),
    ] {
        attacks.push(Attack { what, kind: TopicKind::Registrations, data: encode(&r), serves: None, replay: false });
    }
    // The right version byte, then junk; a real block cut short; a real block with a tail.
    let mut versioned = vec![1u8];
    versioned.extend(garbage(7, 300));
    attacks.push(Attack { what: "versioned junk block", kind: TopicKind::Blocks, data: versioned.clone(), serves: None, replay: false });
    versioned.truncate(MAX_ANNOUNCEMENT_BYTES - 1);
    versioned.push(0);
    attacks.push(Attack { what: "versioned junk announcement", kind: TopicKind::Submissions, data: versioned, serves: None, replay: false });
    let encoded1 = encode(block1);
    attacks.push(Attack { what: "truncated block", kind: TopicKind::Blocks, data: encoded1[..encoded1.len() / 2].to_vec(), serves: None, replay: false });
    let mut trailing = encoded1.clone();
    trailing.push(0);
    attacks.push(Attack { what: "block with a trailing byte", kind: TopicKind::Blocks, data: trailing, serves: None, replay: false });

    // Bad proof of work: block 1 with a nonce that misses the target.
    let mut bad_pow = block1.clone();
    loop {
        bad_pow.header.nonce = bad_pow.header.nonce.wrapping_add(1);
        if !meets_target(&bad_pow.header.hash(), &bad_pow.header.target) {
            break;
        }
    }
    push_block(&mut attacks, "block with bad proof of work", &bad_pow);
    // Valid work against a target easier than the retarget rule allows.
    let mut easy = block1.clone();
    easy.header.target = g.pow.pow_limit;
    easy.header = mine(easy.header).await?;
    assert_ne!(easy.header.target, block1.header.target);
    push_block(&mut attacks, "block with the wrong target", &easy);
    // Valid work, wrong post-state (state root).
    let mut wrong_model = block1.clone();
    wrong_model.header.state_root = Hash32([0xab; 32]);
    wrong_model.header = mine(wrong_model.header).await?;
    push_block(&mut attacks, "block with a wrong state root", &wrong_model);
    // Valid work and a consistent body, on an unknown parent.
    let fake_parent = Hash32([0x5a; 32]);
    let subs = block1.submissions.iter().map(|s| Submission { base: fake_parent, ..s.clone() }).collect();
    let mut orphan = with_body(block1.header.clone(), subs);
    orphan.header.parent = fake_parent;
    orphan.header = mine(orphan.header).await?;
    push_block(&mut attacks, "block with an unknown parent", &orphan);

    // Replays of honest history.
    attacks.push(Attack { what: "replayed block", kind: TopicKind::Blocks, data: encoded1, serves: None, replay: true });
    attacks.push(Attack {
        what: "replayed submission",
        kind: TopicKind::Submissions,
        data: encode(&SubmissionAnnouncement::of(&block1.submissions[0], block1.submissions[0].id())),
        serves: Some((block1.submissions[0].id(), block1.submissions[0].clone())),
        replay: true,
    });
    Ok((attacks, forged))
}

/// Forged messages for the round after `head`.
struct RoundAttacks {
    attacks: Vec<Attack>,
    forged_blocks: Vec<(&'static str, Hash32)>,
    forged_subs: Vec<Hash32>,
    /// A valid submission by genesis member 3, published last.
    marker: Submission,
}

async fn round_attacks(g: &Genesis, observer: &Node, head: &HeadSnapshot) -> anyhow::Result<RoundAttacks> {
    let base = head.meta.hash;
    let round = head.meta.height + 1;
    let n = g.param_count();
    let (m0, m2, m3) = (Testnet::member_key(0), Testnet::member_key(2), Testnet::member_key(3));
    let outsider = MemberSecret::from_seed(&[0x77; 32]);
    let outsider2 = MemberSecret::from_seed(&[0x78; 32]);
    assert!(!g.members.contains(&member(&outsider)) && !g.members.contains(&member(&outsider2)));
    let (rings, genesis_rings) = {
        let st = observer.svc.lock();
        let genesis_hash = st.chain.canonical_hash(0)?.context("genesis")?;
        (st.chain.rings_at(&base)?, st.chain.rings_at(&genesis_hash)?)
    };
    let rings = &*rings;
    let mut r = RoundAttacks {
        attacks: vec![],
        forged_blocks: vec![],
        forged_subs: vec![],
        marker: submission(g, rings, base, round, vec![0; n], &m3),
    };

    // A block on the head, valid in every way but that its updates are signed by keys
    // outside the genesis (two of them, to meet the quorum); zero updates keep the model.
    let (target, median, obs_state_root) = {
        let st = observer.svc.lock();
        (st.chain.required_target(&head.meta), st.chain.median_time_past(&head.meta), st.chain.head().state_root)
    };
    let header = Header {
        version: learnchain_proto::header::HEADER_VERSION,
        chain_id: g.chain_id(),
        height: round,
        parent: base,
        timestamp_ms: learnchain_chain::now_ms().max(median + 1),
        target,
        miner: Hash32([0x66; 32]),
        body_root: Hash32::ZERO,
        state_root: obs_state_root,
        nonce: 0,
    };
    let body = vec![
        submission(g, rings, base, round, vec![0; n], &outsider),
        submission(g, rings, base, round, vec![0; n], &outsider2),
    ];
    let mut block = with_body(header, body);
    block.header = mine(block.header).await?;
    r.forged_blocks.push(("block of non-member updates", block.hash()));
    r.attacks.push(Attack { what: "block of non-member updates", kind: TopicKind::Blocks, data: encode(&block), serves: None, replay: false });

    // Each forged submission is announced, and served to whoever fetches it.
    let mut announce = |what: &'static str, a: SubmissionAnnouncement, served: Option<Submission>| {
        r.forged_subs.extend(served.as_ref().map(Submission::id));
        let serves = served.map(|s| (a.id, s));
        r.attacks.push(Attack { what, kind: TopicKind::Submissions, data: encode(&a), serves, replay: false });
    };
    let honest = |s: &Submission| SubmissionAnnouncement::of(s, s.id());
    // Announcements that lie about what they name, each naming a submission that is
    // valid in itself (members 2 and 3 are used by no honest node): were the lie not
    // caught, the submission would be pooled.
    let valid = |seed: i32| {
        let mut delta = vec![0; n];
        delta[2] = seed;
        submission(g, rings, base, round, delta, if seed % 2 == 0 { &m2 } else { &m3 })
    };
    let (a, b, c) = (valid(2), valid(3), valid(4));
    announce("announcement that lies about its submission's size", SubmissionAnnouncement { bytes: honest(&a).bytes + 1, ..honest(&a) }, Some(a));
    announce("announcement answered with another submission", honest(&b), Some(c.clone()));
    announce("announcement the peer cannot serve", honest(&valid(5)), None);
    let too_big = SubmissionAnnouncement { bytes: u32::try_from(g.limits.max_submission_bytes + 1)?, ..honest(&c) };
    announce("announcement of a submission larger than the genesis allows", too_big, None);
    let mut push = |what: &'static str, s: Submission| announce(what, honest(&s), Some(s));
    push("submission by a non-member", submission(g, rings, base, round, vec![0; n], &outsider));
    // A member signing over the ring of another height. The registry's groups are
    // reshuffled by every base, so the ring usually differs even though the registry does
    // not; when the shuffle happens to give the same order (1 in 4! here), its reverse
    // stands in for it — either way a ring that is not the group at the base.
    let mut old_ring = submission(g, rings, base, round, vec![0; n], &m3);
    old_ring.update.as_i32_mut().expect("an i32 update")[1] = 1;
    let mut keys = genesis_rings.ring(0).context("genesis group")?.keys().to_vec();
    if rings.ring(0).map(|r| r.digest()) == Some(learnchain_identity::ring_digest(&keys)) {
        keys.reverse();
    }
    sign_with_ring(&mut old_ring, &m3, 0, &Ring::new(keys)?, &mut rand::rngs::OsRng)?;
    push("submission over the ring of another height", old_ring);
    let mut tampered = submission(g, rings, base, round, vec![0; n], &m0);
    tampered.update.as_i32_mut().expect("an i32 update")[0] = 1;
    push("submission with a bad signature", tampered);
    let mut other = vec![0; n];
    other[0] = 12_345;
    push("equivocating submission", submission(g, rings, base, round, other, &m0));
    push("submission for the wrong round", submission(g, rings, base, round + 5, vec![0; n], &m3));
    push("submission of the wrong length", submission(g, rings, base, round, vec![0; n + 1], &m3));
    let mut huge = vec![0; n];
    huge[0] = g.consensus.max_update_abs.saturating_add(1);
    push("submission beyond the update bound", submission(g, rings, base, round, huge, &m3));
    // Weaker privacy than the genesis policy, each parameter alone (re-signed: the
    // declaration is covered by the signature).
    let weaker = |edit: &dyn Fn(&mut learnchain_proto::DpDeclaration)| {
        let mut s = submission(g, rings, base, round, vec![0; n], &m3);
        edit(&mut s.dp);
        sign(&mut s, rings, &m3);
        s
    };
    let p = &g.privacy;
    push("submission declaring less noise", weaker(&|d| d.noise_multiplier.0 = p.min_noise_multiplier.0 - 1));
    push("submission declaring a larger clip", weaker(&|d| d.clip.0 = p.clip_bound.0 + 1));
    push("submission declaring more steps", weaker(&|d| d.steps = p.max_local_steps + 1));
    push("submission declaring a higher sampling rate", weaker(&|d| d.sample_rate.0 = p.max_sample_rate.0 + 1));
    // An update longer than its declaration allows, every coordinate within max_update_abs.
    let bound = update_norm_bound_units(
        &g.policy_declaration(),
        100,
        &BoundContext::for_genesis(g, norm_sq(&head.model)),
    );
    let per = i32::try_from(bound / (n as u128).isqrt() + 2).context("bound fits i32")?;
    ensure!(per <= g.consensus.max_update_abs, "the norm attack must pass the coordinate bound");
    push("submission above its update-norm bound", submission(g, rings, base, round, vec![per; n], &m3));
    let mut foreign = submission(g, rings, base, round, vec![0; n], &m3);
    foreign.chain_id = Hash32([9; 32]);
    sign(&mut foreign, rings, &m3);
    push("submission for another chain", foreign);
    push("submission on a stale base", submission(g, &genesis_rings, genesis_rings.base(), 1, vec![0; n], &m2));
    push("submission on an unknown base", submission(g, rings, Hash32([0x3c; 32]), round, vec![0; n], &m2));
    Ok(r)
}

async fn publish_all(peer: &Peer, attacks: &[Attack]) -> anyhow::Result<()> {
    for a in attacks {
        if let Some((id, s)) = &a.serves {
            peer.serves.lock().unwrap_or_else(|p| p.into_inner()).insert(*id, s.clone());
        }
        match peer.net.publish(a.kind, a.data.clone()).await {
            Ok(()) => {}
            Err(NetError::Duplicate) if a.replay => {}
            Err(e) => bail!("publishing the {} failed: {e}", a.what),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_peer_cannot_inject_blocks_submissions_or_registrations() -> anyhow::Result<()> {
    let mut net = Testnet::empty(Testnet::genesis(2))?;
    // Every attack is judged, one after another, from one peer: with scores enforced the
    // observer would ban it after its fifth invalid message (tests/tests/flood.rs covers
    // that). Offences are still counted.
    net.enforce_peer_scores = false;
    net.add_all(&[Kind::Miner, Kind::Source(0), Kind::Source(1), Kind::Observer]).await?;
    let g = net.genesis.clone();
    let chain_id = g.chain_id();
    let all = net.running();
    net.wait_height(OBSERVER, 2, T).await?;

    let hostile = Peer::start(chain_id).await?;
    let mut listener = Peer::start(chain_id).await?;
    hostile.connect(net.node(OBSERVER)?.listen_addrs[0].clone()).await?;
    listener.connect(net.node(MINER)?.listen_addrs[0].clone()).await?;
    let observer = net.node(OBSERVER)?;

    let block1 = observer.svc.lock().chain.block_at(1)?.context("block 1")?;
    let (mut attacks, mut forged_blocks) = headless_attacks(&g, &block1).await?;
    let mut forged_subs: Vec<Hash32> = Vec::new();

    // Freeze the head, so that the forged submissions are judged against the round they
    // were made for, then attack. Head-independent junk goes first, once.
    pause_between_rounds(&net).await?;
    publish_all(&hostile, &attacks).await?;
    let mut frozen = None;
    for _ in 0..3 {
        let head = settle(&net, &all, 2).await?;
        let honest_pool: HashSet<Hash32> = observer.svc.lock().pool.submissions().iter().map(Submission::id).collect();
        assert_eq!(honest_pool.len(), 2, "the two honest submissions are pooled");
        let round = round_attacks(&g, observer, &head).await?;
        publish_all(&hostile, &round.attacks).await?;
        let marker_bytes = encode(&SubmissionAnnouncement::of(&round.marker, round.marker.id()));
        hostile.serves.lock().unwrap_or_else(|p| p.into_inner()).insert(round.marker.id(), round.marker.clone());
        hostile.net.publish(TopicKind::Submissions, marker_bytes.clone()).await?;
        let marker = round.marker.id();
        attacks.extend(round.attacks);
        forged_blocks.extend(round.forged_blocks);
        forged_subs.extend(round.forged_subs);
        // Gossip from the hostile peer arrives in order and the observer judges it in
        // order: once the marker is pooled, everything before it has been judged.
        if pooled_or_moved(observer, &marker, &head.meta.hash).await?
            && all.iter().all(|&i| net.head(i).is_ok_and(|h| h.meta.hash == head.meta.hash))
        {
            frozen = Some((head, honest_pool, marker, marker_bytes));
            break;
        }
        // A block mined as mining was paused moved the head; attack the new round.
    }
    let (head, honest_pool, marker, marker_bytes) = frozen.context("the head kept moving while mining was paused")?;

    // Nothing forged is stored or pooled anywhere, and no head moved.
    for &i in &all {
        let st = net.node(i)?.svc.lock();
        for (what, h) in &forged_blocks {
            assert!(!st.chain.contains(h), "node {i} stored the {what}");
        }
        for id in &forged_subs {
            assert!(!st.pool.contains(id), "node {i} pooled a forged submission");
        }
        assert!(st.registrations.is_empty(), "node {i} pooled a forged registration");
        assert_eq!(st.chain.head().hash, head.meta.hash, "node {i}'s head moved while mining was paused");
    }
    let pooled: HashSet<Hash32> = observer.svc.lock().pool.submissions().iter().map(Submission::id).collect();
    let expected: HashSet<Hash32> = honest_pool.iter().copied().chain([marker]).collect();
    assert_eq!(pooled, expected, "the observer's pool holds exactly the honest submissions and the marker");

    // What the observer accepts travels on (the marker reaches the listener through the
    // miner); what it refused did not.
    listener.wait_seen(&sha256(&marker_bytes)).await?;
    for a in attacks.iter().filter(|a| !a.replay) {
        assert!(!listener.has_seen(&sha256(&a.data)), "the {} was forwarded", a.what);
    }

    // The honest network carries on: two more blocks, one chain.
    net.set_mining(true);
    for &i in &all {
        net.wait_height(i, head.meta.height + 2, T).await?;
    }
    let end = net.wait_agree(&all, T).await?;
    assert!(end.meta.height >= head.meta.height + 2);

    // The observer's stored chain is intact: linked, hashes and model hashes consistent,
    // the genesis model recoverable from the head by unwinding every stored aggregate,
    // identical to the miner's chain, and no forged update inside. (Mining goes on; the
    // locks hold both chains still while they are compared.)
    let forged: HashSet<Hash32> = forged_subs.iter().copied().collect();
    {
        let obs = net.node(OBSERVER)?.svc.lock();
        let miner = net.node(MINER)?.svc.lock();
        let top = obs.chain.head().height.min(miner.chain.head().height);
        assert!(top >= end.meta.height);
        let mut parent = Hash32::ZERO;
        for h in 0..=top {
            let hash = obs.chain.canonical_hash(h)?.with_context(|| format!("no block at {h}"))?;
            let block = obs.chain.block_at(h)?.with_context(|| format!("block {h} missing"))?;
            assert_eq!(block.hash(), hash, "stored block {h} does not hash to its index entry");
            assert_eq!(block.header.height, h);
            assert_eq!(block.header.parent, parent, "block {h} is not linked to its parent");
            assert_eq!(obs.chain.meta(&hash).map(|m| m.state_root), Some(block.header.state_root));
            assert_eq!(obs.chain.model_at(&hash).map(|m| model_hash(&m))?, obs.chain.meta(&hash).map(|m| m.model_hash).unwrap_or_default());
            assert_eq!(miner.chain.canonical_hash(h)?, Some(hash), "observer and miner differ at {h}");
            let rings = if block.submissions.is_empty() { None } else { Some(obs.chain.rings_at(&parent)?) };
            for s in &block.submissions {
                let rings = rings.as_ref().context("rings")?;
                assert_eq!(rings.verify(s, &s.signing_digest()), Ok(()), "block {h} carries a non-member update");
                assert!(!forged.contains(&s.id()), "block {h} carries a forged update");
            }
            parent = hash;
        }
        assert_eq!(model_hash(obs.chain.head_model()), obs.chain.head().model_hash);
        let genesis_hash = obs.chain.canonical_hash(0)?.context("genesis")?;
        let rewound = obs.chain.model_at(&genesis_hash)?;
        assert_eq!(rewound, g.model.initial_weights(), "unwinding the stored aggregates does not reach genesis");
    }
    // The observer charged the hostile peer, and nobody else, with offences.
    let observer = net.node(OBSERVER)?;
    let charged = observer.net.standing(&hostile.net.local_peer_id());
    ensure!(charged.offences >= forged_blocks.len() as u64, "the hostile peer was charged {} offences", charged.offences);
    for &i in &all {
        let honest = net.node(i)?.peer_id;
        if i != OBSERVER {
            ensure!(observer.net.standing(&honest).offences == 0, "honest node {i} was charged an offence");
        }
    }
    // And it still answers over JSON-RPC.
    let addr = net.node(OBSERVER)?.rpc_addr.context("rpc")?;
    let v = learnchain_rpc::client::call(addr, "chain_head", serde_json::Value::Null).await?;
    ensure!(v["height"].as_u64().is_some_and(|h| h >= end.meta.height), "rpc head {v}");

    drop(hostile);
    drop(listener);
    net.shutdown().await;
    Ok(())
}

/// A peer that claims far more work than anyone has and answers every block request with
/// block 1, which the node already holds: each batch brings nothing new. An honest node
/// should give up on such a peer after a round or two, not keep asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_lying_about_its_work_is_not_asked_forever() -> anyhow::Result<()> {
    use learnchain_proto::{StatusMessage, SyncRequest, SyncResponse};

    let net = Testnet::new(&[Kind::Miner, Kind::Source(0), Kind::Source(1), Kind::Observer]).await?;
    let chain_id = net.genesis.chain_id();
    net.wait_height(OBSERVER, 2, T).await?;
    let block1 = net.node(OBSERVER)?.svc.lock().chain.block_at(1)?.context("block 1")?;

    let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse()?;
    let (liar, mut events, event_loop) = learnchain_net::new(bare(chain_id, listen))?;
    let (asked_tx, mut asked) = watch::channel(0u64);
    let handle = liar.clone();
    let answer = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                NetEvent::SyncRequest { request, responder, .. } => {
                    asked_tx.send_modify(|n| *n += 1);
                    let response = match request {
                        SyncRequest::Status => SyncResponse::Status(StatusMessage {
                            chain_id,
                            head: Hash32([1; 32]),
                            height: 1_000_000,
                            total_work: Hash32([0xff; 32]),
                        }),
                        _ => SyncResponse::Blocks(vec![block1.clone()]),
                    };
                    handle.respond(responder, response).await;
                }
                NetEvent::Gossip { id, .. } => handle.report_validation(id, Verdict::Ignore).await,
                _ => {}
            }
        }
    });
    let event_loop = tokio::spawn(event_loop.run());
    liar.dial(net.node(OBSERVER)?.listen_addrs[0].clone()).await?;
    // The observer syncs with every new peer: wait for its first request...
    tokio::time::timeout(T, asked.wait_for(|n| *n >= 1)).await.context("the observer never asked")??;
    // ...then let honest progress be the clock: ten more blocks.
    let h0 = net.head(OBSERVER)?.meta.height;
    net.wait_height(OBSERVER, h0 + 10, T).await?;
    let requests = *asked.borrow();
    answer.abort();
    event_loop.abort();
    net.shutdown().await;
    assert!(requests <= 20, "the observer sent {requests} sync requests to a peer whose batches bring nothing");
    Ok(())
}
