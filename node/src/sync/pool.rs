//! Items between pools: submissions announced and fetched by id, peers' pools pulled by id,
//! and the serving side of both.
//!
//! A data source puts its submission in its own pool and gossips only a
//! [`SubmissionAnnouncement`] (see `roles::datasource`; the format is in
//! [`learnchain_proto::announce`]). An announcement arriving by gossip enters at
//! [`Fetcher::on_announcement`], which answers at once when it can (an id this node already
//! holds is accepted and forwarded; an announcement that cannot describe a valid
//! submission is refused; one for a round already past is ignored) and otherwise queues it
//! for the peer that forwarded it. One task per peer ([`Fetcher::drain`]) takes that
//! peer's queue in order, asks the peer for the queued submissions in as few
//! [`SyncRequest::PoolItems`] requests as the response limit allows, checks each answer
//! against its announcement, hands it to [`ChainService::add_submission_via`] like any
//! gossip, and only then reports the announcement's verdict: gossip forwards an
//! announcement only from nodes that hold what it names, and each node receives each
//! update once.
//!
//! [`pull_pending`] and [`pull_pools`] ask peers for the *ids* in their pools
//! ([`SyncRequest::PoolIds`]) and then only for the items this node lacks, each from one
//! peer. [`serve_pool_ids`] and [`serve_pool_items`] answer both kinds of request from the
//! pools. Stored state changes only through the chain service.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use learnchain_chain::Verdict as ChainVerdict;
use learnchain_net::{GossipId, NetworkHandle, PeerId, Verdict};
use learnchain_proto::announce::MAX_ANNOUNCEMENT_BYTES;
use learnchain_proto::sync::{MAX_BODY_ITEM_IDS, MAX_POOL_REGISTRATION_IDS};
use learnchain_proto::{Hash32, Submission, SubmissionAnnouncement, SyncRequest, SyncResponse, decode};
use tracing::debug;

use crate::service::{ChainService, ChainState, Origin};
use crate::sync::items_within_budget;

/// Most announcements waiting to be fetched from one peer; beyond it they are ignored (an
/// honest peer announces about one per data source per round).
pub const MAX_QUEUED_PER_PEER: usize = 1024;

/// Bytes of a response's framing beyond its items, kept free when sizing a fetch.
const RESPONSE_FRAMING: usize = 1024;

/// What to do with an announcement that just arrived.
#[derive(Debug, PartialEq, Eq)]
pub enum Announced {
    /// Report this verdict now.
    Now(Verdict),
    /// Queued for the peer; when `start` is set no task drains that peer's queue yet:
    /// spawn [`Fetcher::drain`] for it.
    Queued {
        /// Whether a drain task must be started.
        start: bool,
    },
}

/// Fetches announced submissions from the peers that announced them.
#[derive(Clone)]
pub struct Fetcher {
    svc: ChainService,
    net: NetworkHandle,
    queues: Arc<Mutex<HashMap<PeerId, Queue>>>,
}

/// One peer's announcements waiting to be fetched, in the order they came.
type Queue = VecDeque<(GossipId, SubmissionAnnouncement)>;

impl Fetcher {
    /// A fetcher with no queues.
    pub fn new(svc: ChainService, net: NetworkHandle) -> Self {
        Fetcher { svc, net, queues: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// Judges what can be judged of a gossiped announcement from `source` at once, and
    /// queues the rest.
    pub fn on_announcement(&self, id: GossipId, source: PeerId, data: &[u8]) -> Announced {
        let a = match decode::<SubmissionAnnouncement>(data, MAX_ANNOUNCEMENT_BYTES) {
            Ok(a) => a,
            Err(e) => {
                self.svc.log_rejection(source, "undecodable submission announcement", &e, true);
                return Announced::Now(Verdict::Reject);
            }
        };
        if let Some(v) = judge_before_fetch(&self.svc, source, &a) {
            return Announced::Now(v);
        }
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let start = !queues.contains_key(&source);
        let queue = queues.entry(source).or_default();
        if queue.len() >= MAX_QUEUED_PER_PEER {
            debug!(peer = %source, "too many announcements waiting for this peer; ignoring one");
            return Announced::Now(Verdict::Ignore);
        }
        queue.push_back((id, a));
        Announced::Queued { start }
    }

    /// Fetches and judges `peer`'s queued announcements, in order, until its queue is empty.
    pub async fn drain(self, peer: PeerId) {
        let max_bytes = self.svc.genesis().limits.max_sync_response_bytes as usize;
        loop {
            let batch = {
                let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                let Some(queue) = queues.get_mut(&peer) else { return };
                let batch = take_batch(queue, max_bytes);
                if batch.is_empty() {
                    queues.remove(&peer);
                    return;
                }
                batch
            };
            let verdicts = self.fetch(peer, &batch).await;
            for ((gossip, _), v) in batch.into_iter().zip(verdicts) {
                // Once the peer manager has shut the peer out, the rest of what it sent is
                // dropped, not counted against it again.
                let v = if v == Verdict::Reject && self.net.is_unwelcome(&peer) { Verdict::Ignore } else { v };
                self.net.report_validation(gossip, v).await;
            }
            if self.net.is_unwelcome(&peer) {
                let dropped = self.queues.lock().unwrap_or_else(|p| p.into_inner()).remove(&peer).unwrap_or_default();
                debug!(%peer, dropped = dropped.len(), "peer shut out; its queued announcements are dropped");
                for (gossip, _) in dropped {
                    self.net.report_validation(gossip, Verdict::Ignore).await;
                }
                return;
            }
        }
    }

    /// Fetches one batch from `peer` and returns a verdict per announcement, in order.
    async fn fetch(&self, peer: PeerId, batch: &[(GossipId, SubmissionAnnouncement)]) -> Vec<Verdict> {
        // Items that reached the pool another way since they were queued need no fetch.
        let wanted: Vec<Hash32> = {
            let st = self.svc.lock();
            batch.iter().map(|(_, a)| a.id).filter(|id| !st.pool.holds(id)).collect()
        };
        let mut served: HashMap<Hash32, Submission> = HashMap::new();
        // Whether the peer answered with something it was not asked for: then what it did
        // not serve counts against it too.
        let mut misbehaved = false;
        if !wanted.is_empty() {
            let request = SyncRequest::PoolItems { registrations: vec![], submissions: wanted.clone() };
            match self.net.request(peer, request).await {
                Ok(SyncResponse::BodyItems { registrations, submissions })
                    if registrations.is_empty() && submissions.len() <= wanted.len() =>
                {
                    let asked: HashSet<Hash32> = wanted.iter().copied().collect();
                    let ids = tokio::task::spawn_blocking(move || {
                        submissions.into_iter().map(|s| (s.id(), s)).collect::<Vec<_>>()
                    })
                    .await
                    .unwrap_or_default();
                    for (id, s) in ids {
                        if asked.contains(&id) {
                            served.insert(id, s);
                        } else {
                            let why = format!("answered a fetch with submission {}, not asked for", id.short());
                            self.svc.log_rejection(peer, "submission fetch answer", &why, true);
                            misbehaved = true;
                        }
                    }
                }
                Ok(other) => {
                    let why = format!("answered a fetch with {}", crate::sync::kind(&other));
                    self.svc.log_rejection(peer, "submission fetch answer", &why, true);
                    return vec![Verdict::Reject; batch.len()];
                }
                Err(e) => {
                    debug!(%peer, error = %e, "announced submissions not fetched");
                    return vec![Verdict::Ignore; batch.len()];
                }
            }
        }
        let svc = self.svc.clone();
        let judged: Vec<(SubmissionAnnouncement, Option<Submission>)> =
            batch.iter().map(|(_, a)| (*a, served.remove(&a.id))).collect();
        tokio::task::spawn_blocking(move || {
            judged.into_iter().map(|(a, s)| judge_fetched(&svc, peer, &a, s, misbehaved)).collect()
        })
        .await
        .unwrap_or_else(|_| vec![Verdict::Ignore; batch.len()])
    }
}

/// The verdict on `a` from `source` without fetching it, if there is one: accept an id this
/// node holds (it can serve it), refuse what no valid submission can be, ignore a past round.
fn judge_before_fetch(svc: &ChainService, source: PeerId, a: &SubmissionAnnouncement) -> Option<Verdict> {
    let limits = &svc.genesis().limits;
    if u64::from(a.bytes) > limits.max_submission_bytes {
        let why = format!("announces {} bytes, the genesis allows {}", a.bytes, limits.max_submission_bytes);
        svc.log_rejection(source, "submission announcement", &why, true);
        return Some(Verdict::Reject);
    }
    let st = svc.lock();
    if st.pool.holds(&a.id) {
        return Some(Verdict::Accept);
    }
    let base = st.chain.meta(&a.base)?;
    if a.round != base.height + 1 {
        let why = format!("round {} is not the next after its base at height {}", a.round, base.height);
        svc.log_rejection(source, "submission announcement", &why, true);
        return Some(Verdict::Reject);
    }
    // A base below the head: that round is over (a competing tip at the head's height
    // is still fetched, in case a reorg makes it the head).
    (base.height < st.chain.head().height).then_some(Verdict::Ignore)
}

/// The leading announcements of `queue` whose submissions fit one response together, at
/// most [`MAX_BODY_ITEM_IDS`] and at least one.
fn take_batch<T>(queue: &mut VecDeque<(T, SubmissionAnnouncement)>, max_bytes: usize) -> Vec<(T, SubmissionAnnouncement)> {
    let mut used = RESPONSE_FRAMING;
    let mut batch = Vec::new();
    while let Some((_, a)) = queue.front() {
        let size = a.bytes as usize;
        if !batch.is_empty() && (used.saturating_add(size) > max_bytes || batch.len() == MAX_BODY_ITEM_IDS) {
            break;
        }
        used += size;
        batch.extend(queue.pop_front());
    }
    batch
}

/// The verdict on announcement `a` from `peer`, given what the peer served for it and
/// whether the same answer carried items not asked for.
fn judge_fetched(
    svc: &ChainService,
    peer: PeerId,
    a: &SubmissionAnnouncement,
    s: Option<Submission>,
    misbehaved: bool,
) -> Verdict {
    let Some(s) = s else {
        if svc.lock().pool.holds(&a.id) {
            return Verdict::Accept;
        }
        if misbehaved {
            return Verdict::Reject;
        }
        // An honest peer may have dropped it as its head moved on: not proof of fault.
        debug!(%peer, id = %a.id.short(), "peer did not serve a submission it announced");
        return Verdict::Ignore;
    };
    if !a.matches(&s, &a.id) {
        let why = format!("submission {} is not what its announcement said (base, round or size)", a.id.short());
        svc.log_rejection(peer, "fetched submission", &why, true);
        return Verdict::Reject;
    }
    let round = s.round;
    match svc.add_submission_via(s, Origin::Gossip) {
        Ok(_) => {
            debug!(round, id = %a.id.short(), "submission accepted");
            Verdict::Accept
        }
        // Fetched already by another path while this one was in flight.
        Err(learnchain_chain::SubmissionError::Duplicate) => Verdict::Accept,
        Err(e) => {
            let v = e.verdict();
            svc.log_rejection(peer, "submission", &e, v == ChainVerdict::Reject);
            crate::node::to_verdict(v)
        }
    }
}

/// The answer to [`SyncRequest::PoolIds`].
pub fn serve_pool_ids(st: &ChainState, max_submissions: usize) -> SyncResponse {
    let mut submissions = st.pool.ids();
    submissions.truncate(max_submissions);
    let mut registrations = st.registrations.ids();
    registrations.truncate(MAX_POOL_REGISTRATION_IDS);
    SyncResponse::PoolIds { registrations, submissions }
}

/// The answer to [`SyncRequest::PoolItems`]: the items asked for that the pools hold, in
/// the order asked, within `max_bytes`.
pub fn serve_pool_items(st: &ChainState, registrations: &[Hash32], submissions: &[Hash32], max_bytes: usize) -> SyncResponse {
    if registrations.len() + submissions.len() > MAX_BODY_ITEM_IDS {
        return SyncResponse::Refused(format!("at most {MAX_BODY_ITEM_IDS} item ids per request"));
    }
    items_within_budget(
        registrations.iter().filter_map(|id| st.registrations.get(id)),
        submissions.iter().filter_map(|id| st.pool.find(id)),
        max_bytes,
    )
}

/// What one peer's pool holds that this node lacks.
#[derive(Default)]
struct Missing {
    registrations: Vec<Hash32>,
    submissions: Vec<Hash32>,
}

/// Asks `peer` for its pool's ids; returns them, checked against the limits.
async fn pool_ids(svc: &ChainService, net: &NetworkHandle, peer: PeerId) -> anyhow::Result<(Vec<Hash32>, Vec<Hash32>)> {
    let max = svc.genesis().consensus.max_submissions as usize;
    match net.request(peer, SyncRequest::PoolIds).await? {
        SyncResponse::PoolIds { registrations, submissions } => {
            if submissions.len() > max || registrations.len() > MAX_POOL_REGISTRATION_IDS {
                anyhow::bail!(
                    "peer {peer} listed {} pooled submissions and {} registrations, more than a pool holds",
                    submissions.len(),
                    registrations.len()
                );
            }
            Ok((registrations, submissions))
        }
        other => anyhow::bail!("peer {peer} answered a pool request with {}", crate::sync::kind(&other)),
    }
}

/// Fetches `missing` from `peer` and checks each item as if it had come by gossip. Returns
/// how many were new and valid; a peer that serves an invalid item is dropped from this
/// pull with an error.
async fn pull_items(svc: &ChainService, net: &NetworkHandle, peer: PeerId, missing: Missing) -> anyhow::Result<usize> {
    let mut added = 0;
    let mut regs = missing.registrations;
    let mut subs = missing.submissions;
    while !regs.is_empty() || !subs.is_empty() {
        let take_r = regs.len().min(MAX_BODY_ITEM_IDS);
        let take_s = subs.len().min(MAX_BODY_ITEM_IDS - take_r);
        let (r, s): (Vec<Hash32>, Vec<Hash32>) = (regs.drain(..take_r).collect(), subs.drain(..take_s).collect());
        let asked = r.len() + s.len();
        let (got_r, got_s) = match net.request(peer, SyncRequest::PoolItems { registrations: r, submissions: s }).await? {
            SyncResponse::BodyItems { registrations, submissions } if registrations.len() + submissions.len() <= asked => {
                (registrations, submissions)
            }
            other => anyhow::bail!("peer {peer} answered a pool item request with {}", crate::sync::kind(&other)),
        };
        if got_r.is_empty() && got_s.is_empty() {
            // It no longer holds them (its head moved), or none fit: stop asking.
            break;
        }
        let svc = svc.clone();
        added += tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
            let mut added = 0;
            for reg in got_r {
                match svc.add_registration(reg) {
                    Ok(_) => added += 1,
                    Err(e) if e.verdict() == ChainVerdict::Reject => {
                        anyhow::bail!("peer {peer} pooled an invalid registration: {e}")
                    }
                    Err(_) => {}
                }
            }
            for sub in got_s {
                match svc.add_submission(sub) {
                    Ok(_) => added += 1,
                    Err(e) if e.verdict() == ChainVerdict::Reject => {
                        anyhow::bail!("peer {peer} pooled an invalid submission: {e}")
                    }
                    Err(_) => {}
                }
            }
            Ok(added)
        })
        .await??;
    }
    Ok(added)
}

/// Pulls what `peer`'s pools hold and this node's lack (a failed pull is logged and counts
/// as none). Returns how many items were new and valid.
pub async fn pull_pending(svc: &ChainService, net: &NetworkHandle, peer: PeerId) -> usize {
    pull_from(svc, net, &[peer]).await
}

/// [`pull_pending`] from every connected peer at once: every peer is asked for its ids, and
/// each missing item is fetched from one peer only (each request bounded by the request
/// timeout). Returns how many items were new and valid.
pub async fn pull_pools(svc: &ChainService, net: &NetworkHandle) -> usize {
    let peers: Vec<PeerId> = net.peers().await.into_iter().map(|p| p.peer_id).collect();
    pull_from(svc, net, &peers).await
}

async fn pull_from(svc: &ChainService, net: &NetworkHandle, peers: &[PeerId]) -> usize {
    let listed = futures::future::join_all(peers.iter().map(|&p| async move { (p, pool_ids(svc, net, p).await) })).await;
    // Each missing item from the first peer that lists it.
    let mut claimed: HashSet<Hash32> = HashSet::new();
    let mut plan: Vec<(PeerId, Missing)> = Vec::new();
    {
        let st = svc.lock();
        for (peer, ids) in listed {
            let (regs, subs) = match ids {
                Ok(ids) => ids,
                Err(e) => {
                    debug!(%peer, error = %e, "pool pull failed");
                    continue;
                }
            };
            let mut missing = Missing::default();
            for id in regs {
                if st.registrations.get(&id).is_none() && claimed.insert(id) {
                    missing.registrations.push(id);
                }
            }
            for id in subs {
                if !st.pool.holds(&id) && claimed.insert(id) {
                    missing.submissions.push(id);
                }
            }
            if !missing.registrations.is_empty() || !missing.submissions.is_empty() {
                plan.push((peer, missing));
            }
        }
    }
    let pulls = plan.into_iter().map(|(peer, missing)| async move {
        match pull_items(svc, net, peer, missing).await {
            Ok(n) => {
                if n > 0 {
                    debug!(%peer, items = n, "pulled pooled submissions and registrations");
                }
                n
            }
            Err(e) => {
                debug!(%peer, error = %e, "pool pull failed");
                0
            }
        }
    });
    futures::future::join_all(pulls).await.into_iter().sum()
}

#[cfg(test)]
mod tests {
    use learnchain_chain::Chain;
    use learnchain_chain::testing::{mined_block, signed_submission};
    use learnchain_identity::MemberSecret;
    use learnchain_proto::Genesis;

    use super::*;

    #[test]
    fn announcements_are_judged_before_any_fetch_where_they_can_be() {
        let keys: Vec<MemberSecret> = (1..=3u8).map(|i| MemberSecret::from_seed(&[i; 32])).collect();
        let members = keys.iter().map(|k| Hash32(k.public().to_bytes())).collect();
        let mut g = Genesis::template("pool-test", 3, 2, members);
        g.consensus.quorum = 2;
        let dir = tempfile::tempdir().expect("tempdir");
        let svc = ChainService::new(Chain::open(&dir.path().join("chain.redb"), g).expect("open"));
        let (old, block) = {
            let st = svc.lock();
            (signed_submission(&st.chain, &keys[2], 5), mined_block(&st.chain, &[&keys[0], &keys[1]], 1))
        };
        svc.import_block(block, Origin::Local).expect("block 1");
        let (fresh, pooled) = {
            let st = svc.lock();
            (signed_submission(&st.chain, &keys[2], 6), signed_submission(&st.chain, &keys[1], 7))
        };
        let pooled_id = svc.add_submission(pooled.clone()).expect("pooled");
        let of = |s: &Submission| SubmissionAnnouncement::of(s, s.id());

        assert_eq!(judge_before_fetch(&svc, PeerId::random(), &of(&pooled)), Some(Verdict::Accept), "held: accepted, served from here");
        assert_eq!(SubmissionAnnouncement::of(&pooled, pooled_id), of(&pooled));
        assert_eq!(judge_before_fetch(&svc, PeerId::random(), &of(&fresh)), None, "a new one for the head is fetched");
        assert_eq!(judge_before_fetch(&svc, PeerId::random(), &of(&old)), Some(Verdict::Ignore), "the round of block 1 is over");
        let wrong_round = SubmissionAnnouncement { round: 7, ..of(&fresh) };
        assert_eq!(judge_before_fetch(&svc, PeerId::random(), &wrong_round), Some(Verdict::Reject), "no valid submission has that round");
        let max = svc.genesis().limits.max_submission_bytes;
        let huge = SubmissionAnnouncement { bytes: u32::try_from(max + 1).expect("fits"), ..of(&fresh) };
        assert_eq!(judge_before_fetch(&svc, PeerId::random(), &huge), Some(Verdict::Reject), "larger than the genesis allows");
        let unknown = SubmissionAnnouncement { base: Hash32([0x3c; 32]), ..of(&fresh) };
        assert_eq!(judge_before_fetch(&svc, PeerId::random(), &unknown), None, "an unknown base may be a block still on its way");

        // Serving: ids, then the items asked for, in the order asked.
        let st = svc.lock();
        assert_eq!(serve_pool_ids(&st, 16), SyncResponse::PoolIds { registrations: vec![], submissions: vec![pooled_id] });
        let asked = [Hash32([0xee; 32]), pooled_id];
        assert_eq!(
            serve_pool_items(&st, &[], &asked, 1 << 20),
            SyncResponse::BodyItems { registrations: vec![], submissions: vec![pooled] }
        );
        let too_many = vec![pooled_id; MAX_BODY_ITEM_IDS + 1];
        assert!(matches!(serve_pool_items(&st, &[], &too_many, 1 << 20), SyncResponse::Refused(_)));
    }

    fn queue(sizes: &[u32]) -> VecDeque<(usize, SubmissionAnnouncement)> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &bytes)| (i, SubmissionAnnouncement { id: Hash32([i as u8; 32]), base: Hash32::ZERO, round: 1, bytes }))
            .collect()
    }

    #[test]
    fn a_batch_fits_one_response_keeps_the_order_and_always_moves() {
        let mut q = queue(&[400, 400, 400, 400]);
        let first = take_batch(&mut q, RESPONSE_FRAMING + 1000);
        assert_eq!(first.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 1], "two fit, in order");
        assert_eq!(take_batch(&mut q, RESPONSE_FRAMING + 1000).len(), 2);
        assert!(take_batch(&mut q, RESPONSE_FRAMING + 1000).is_empty());
        // One larger than the limit still goes alone (the server answers without it).
        let mut big = queue(&[5000, 10]);
        assert_eq!(take_batch(&mut big, RESPONSE_FRAMING + 1000).len(), 1);
        assert_eq!(take_batch(&mut big, RESPONSE_FRAMING + 1000).len(), 1);
        // Never more ids than one request may name.
        let mut many = queue(&vec![1; MAX_BODY_ITEM_IDS + 5]);
        assert_eq!(take_batch(&mut many, usize::MAX).len(), MAX_BODY_ITEM_IDS);
        assert_eq!(take_batch(&mut many, usize::MAX).len(), 5);
    }
}
