//! Compact block relay: announcing new blocks as [`CompactBlock`]s, and rebuilding the
//! blocks that peers announce that way.
//!
//! A miner announces its block on the compact-blocks topic ([`announce`]): the header, the
//! ids of the body items and, in full, the items that did not reach it by gossip (its own,
//! and those it pulled from a peer's pool; see [`learnchain_proto::compact`] for the rule).
//! A receiving node runs [`CompactRelay::check`] in the node loop, cheapest checks first and
//! before anything is fetched ([`check_compact`]): decode within the genesis block limit,
//! id counts and order, header version and chain, proof of work, the ids against the
//! header's body root, prefilled items against the ids, then whether the block is known and
//! whether its parent is. [`CompactRelay::rebuild`] then runs in a task of its own: it takes
//! each item from the prefilled ones, the node's pools or — for a block competing with the
//! head — the head's body, asks the announcing peer for the
//! rest by id ([`SyncRequest::BodyItems`]), checks every fetched item against the ids asked
//! for, and imports the rebuilt block through [`ChainService::import_block`] like any other.
//! When the peer cannot be reached, cannot serve the items, or serves the wrong ones, the
//! node asks it for the full block by hash ([`SyncRequest::BlocksByHash`]) and imports that.
//! [`serve_body_items`] is the serving side, from a stored block or the pools.
//!
//! Every failure is a [`CompactError`], whose [`CompactError::verdict`] is the gossip
//! verdict for the peer that forwarded the compact block. Stored state changes only through
//! `import_block`, so a refused compact block leaves it untouched.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use learnchain_chain::pow::meets_target;
use learnchain_chain::{BlockError, ImportOutcome, Verdict};
use learnchain_net::{NetError, NetworkHandle, PeerId, TopicKind};
use learnchain_proto::header::HEADER_VERSION;
use learnchain_proto::sync::MAX_BODY_ITEM_IDS;
use learnchain_proto::{
    Block, CompactBlock, DecodeError, Hash32, Registration, Submission, SyncRequest, SyncResponse, decode, encode,
};
use tracing::{debug, info};

use crate::service::{ChainService, ChainState, Origin};

/// Why a compact block was not imported, and what it says about the peer that sent it.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// The payload is not a compact block within the size limit. Reject: no honest node
    /// sends one.
    #[error("undecodable compact block: {0}")]
    Decode(#[from] DecodeError),
    /// More ids than a block may carry. Reject.
    #[error("compact block names {got} {what}; a block carries at most {max}")]
    TooManyIds {
        /// "submissions" or "registrations".
        what: &'static str,
        /// Ids named.
        got: usize,
        /// Genesis maximum.
        max: u32,
    },
    /// The ids are not those the header's body root commits to. Reject: the sender made or
    /// altered the announcement (the header's proof of work does not cover the ids).
    #[error("the compact block's ids do not match its header's body root")]
    BadBodyRoot,
    /// A prefilled item whose id is not among the ids, or prefilled twice. Reject.
    #[error("prefilled {what} {id} is not among the block's ids or is sent twice")]
    PrefilledNotListed {
        /// "submission" or "registration".
        what: &'static str,
        /// Its id.
        id: Hash32,
    },
    /// Another announcement of this block by the same peer is being rebuilt already. Ignore.
    #[error("block {0} is already being rebuilt from this peer")]
    InFlight(Hash32),
    /// The peer answered the item request without some of the items it announced. Reject:
    /// a node that forwards a compact block has imported the block and can serve its body.
    #[error("peer {peer} announced {missing} items it does not serve")]
    Unserved {
        /// The peer.
        peer: PeerId,
        /// How many of the requested items it left out.
        missing: usize,
    },
    /// The peer answered the full-block request without the block it announced. Reject.
    #[error("peer {peer} announced block {block} it does not serve")]
    BlockUnserved {
        /// The peer.
        peer: PeerId,
        /// The announced block.
        block: Hash32,
    },
    /// The peer answered the item request with items that were not asked for (a wrong id,
    /// a duplicate, more than asked) or with another kind of response. Reject.
    #[error("peer {peer} answered an item request with {what}")]
    WrongItems {
        /// The peer.
        peer: PeerId,
        /// What was wrong.
        what: String,
    },
    /// The item request failed in the network (timeout, closed connection, dial failure).
    /// Ignore: an honest peer can be slow or gone.
    #[error("fetching items from {peer} failed: {error}")]
    FetchFailed {
        /// The peer.
        peer: PeerId,
        /// The network error.
        error: NetError,
    },
    /// The block itself failed a check (header, proof of work, known, unknown parent) or
    /// import; the verdict is the block error's.
    #[error(transparent)]
    Block(#[from] BlockError),
}

impl CompactError {
    /// The gossip verdict for the peer that forwarded the compact block.
    pub fn verdict(&self) -> Verdict {
        match self {
            CompactError::InFlight(_) | CompactError::FetchFailed { .. } => Verdict::Ignore,
            CompactError::Block(e) => e.verdict(),
            CompactError::Decode(_)
            | CompactError::TooManyIds { .. }
            | CompactError::BadBodyRoot
            | CompactError::PrefilledNotListed { .. }
            | CompactError::Unserved { .. }
            | CompactError::BlockUnserved { .. }
            | CompactError::WrongItems { .. } => Verdict::Reject,
        }
    }

    /// The offence a rejection charges the sender with, when it is not the blocks topic's
    /// default (invalid content): announced items it then did not serve.
    pub fn offence(&self) -> Option<learnchain_net::Offence> {
        match self {
            CompactError::Unserved { .. } | CompactError::BlockUnserved { .. } => Some(learnchain_net::Offence::NotServed),
            _ => None,
        }
    }

    /// The parent the block needs, when that is why it was not imported (sync with the peer).
    pub fn unknown_parent(&self) -> Option<Hash32> {
        match self {
            CompactError::Block(BlockError::UnknownParent(p)) => Some(*p),
            _ => None,
        }
    }
}

/// The compact form of `block` on `svc`'s pools, with the prefill rule of
/// [`learnchain_proto::compact`]: every item that did not reach this node by gossip. Build it
/// before importing the block (the import resets the pools).
pub fn compact_of(svc: &ChainService, block: &Block) -> CompactBlock {
    let max = svc.genesis().limits.max_block_bytes as usize;
    let st = svc.lock();
    CompactBlock::from_block(block, |id| !st.pool.was_gossiped(id) && !st.registrations.was_gossiped(id), max)
}

/// Publishes `compact` on the compact-blocks topic (a failure is logged: no peers yet is
/// normal, and peers that miss it sync).
pub async fn announce(net: &NetworkHandle, compact: &CompactBlock) {
    let bytes = encode(compact);
    debug!(
        block = %compact.hash().short(),
        bytes = bytes.len(),
        prefilled = compact.prefilled_submissions.len() + compact.prefilled_registrations.len(),
        "announcing compact block"
    );
    if let Err(e) = net.publish(TopicKind::CompactBlocks, bytes).await {
        debug!(error = %e, "compact block not gossiped");
    }
}

/// A compact block that passed [`CompactRelay::check`].
#[derive(Debug)]
pub struct CheckedCompact {
    compact: CompactBlock,
    hash: Hash32,
}

impl CheckedCompact {
    /// The announced block's hash.
    pub fn hash(&self) -> Hash32 {
        self.hash
    }
}

/// Receives compact blocks for one node; cheap to clone (the blocks being rebuilt are
/// shared).
#[derive(Clone)]
pub struct CompactRelay {
    svc: ChainService,
    net: NetworkHandle,
    /// Blocks being rebuilt, by announcing peer: a peer's second announcement of a block is
    /// ignored while its first is rebuilt, but another peer's is not (if the first peer
    /// cannot serve the block, the second may).
    in_flight: Arc<Mutex<HashSet<(Hash32, PeerId)>>>,
}

/// Removes a rebuild from the in-flight set when it ends, however it ends.
struct InFlightGuard(Arc<Mutex<HashSet<(Hash32, PeerId)>>>, (Hash32, PeerId));

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.1);
    }
}

impl CompactRelay {
    /// A relay over `svc` fetching through `net`.
    pub fn new(svc: ChainService, net: NetworkHandle) -> Self {
        CompactRelay { svc, net, in_flight: Arc::new(Mutex::new(HashSet::new())) }
    }

    /// Decodes `data` and runs every check that needs no fetching ([`check_compact`]).
    pub fn check(&self, data: &[u8]) -> Result<CheckedCompact, CompactError> {
        check_compact(&self.svc, data)
    }

    /// Rebuilds the checked block from the prefilled items, the pools and `peer` (falling
    /// back to the full block from `peer`), imports it, and reports the gossip verdict on
    /// message `id` (a rejection for items `peer` announced and did not serve charges it with
    /// [`learnchain_net::Offence::NotServed`]). Logs what happened; returns the verdict.
    pub async fn rebuild(&self, id: learnchain_net::GossipId, peer: PeerId, checked: CheckedCompact) -> Verdict {
        let hash = checked.hash;
        let height = checked.compact.header.height;
        match self.try_rebuild(peer, checked).await {
            Ok(outcome) => {
                debug!(%peer, height, block = %hash.short(), new_head = outcome.new_head().is_some(), "compact block imported");
                self.net.report_validation(id, learnchain_net::Verdict::Accept).await;
                Verdict::Accept
            }
            Err(e) => {
                let verdict = e.verdict();
                if verdict == Verdict::Reject {
                    self.svc.log_rejection(peer, "compact block (relay)", &e, true);
                } else {
                    debug!(%peer, height, block = %hash.short(), error = %e, "compact block ignored");
                }
                match (verdict, e.offence()) {
                    (Verdict::Reject, Some(offence)) => self.net.report_rejection(id, offence).await,
                    (v, _) => self.net.report_validation(id, crate::node::to_verdict(v)).await,
                }
                verdict
            }
        }
    }

    async fn try_rebuild(&self, peer: PeerId, checked: CheckedCompact) -> Result<ImportOutcome, CompactError> {
        let hash = checked.hash;
        if !self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert((hash, peer)) {
            return Err(CompactError::InFlight(hash));
        }
        let _guard = InFlightGuard(self.in_flight.clone(), (hash, peer));
        let mut body = Body::resolve(&self.svc.lock(), checked.compact);
        let missing = body.missing();
        if missing > MAX_BODY_ITEM_IDS {
            // Too many to ask for by id (not the peer's fault): the full block it is.
            return self.fallback(peer, hash).await;
        }
        if missing > 0
            && let Err(e) = self.fetch(peer, hash, &mut body).await
        {
            debug!(%peer, block = %hash.short(), error = %e, "cannot rebuild the compact block; asking for the full block");
            // The announcement's fault, if it had one, is the verdict; otherwise the
            // fallback's (a slow peer that then serves an invalid block is at fault).
            let announced_badly = e.verdict() == Verdict::Reject;
            return match self.fallback(peer, hash).await {
                Ok(outcome) if !announced_badly => Ok(outcome),
                Ok(_) => {
                    info!(%peer, block = %hash.short(), "full block imported after the peer failed to serve its items");
                    Err(e)
                }
                Err(fallback) if !announced_badly && fallback.verdict() == Verdict::Reject => Err(fallback),
                Err(fallback) => {
                    debug!(%peer, block = %hash.short(), error = %fallback, "full-block fallback failed");
                    Err(e)
                }
            };
        }
        // Every slot is filled here (fetch checks it); an empty one would be the peer's.
        let remaining = body.missing();
        let block = body.into_block().ok_or(CompactError::Unserved { peer, missing: remaining })?;
        Ok(self.svc.import(block, Origin::Gossip).await?)
    }

    /// Asks `peer` for the items `body` lacks and fills them in; every item must be one of
    /// those asked for, and every one asked for must come.
    async fn fetch(&self, peer: PeerId, hash: Hash32, body: &mut Body) -> Result<(), CompactError> {
        let (registrations, submissions) = body.missing_ids();
        let asked = registrations.len() + submissions.len();
        let request = SyncRequest::BodyItems { block: hash, registrations, submissions };
        let (regs, subs) = match self.net.request(peer, request).await {
            Ok(SyncResponse::BodyItems { registrations, submissions }) => (registrations, submissions),
            Ok(SyncResponse::Refused(reason)) => {
                debug!(%peer, %reason, "item request refused");
                return Err(CompactError::Unserved { peer, missing: asked });
            }
            Ok(other) => return Err(CompactError::WrongItems { peer, what: format!("a {} response", crate::sync::kind(&other)) }),
            Err(error) => return Err(CompactError::FetchFailed { peer, error }),
        };
        if regs.len() + subs.len() > asked {
            return Err(CompactError::WrongItems { peer, what: format!("{} items for {asked} ids", regs.len() + subs.len()) });
        }
        for r in regs {
            let id = r.id();
            if !body.fill_registration(id, r) {
                return Err(CompactError::WrongItems { peer, what: format!("registration {id}, not asked for") });
            }
        }
        for s in subs {
            let id = s.id();
            if !body.fill_submission(id, s) {
                return Err(CompactError::WrongItems { peer, what: format!("submission {id}, not asked for") });
            }
        }
        match body.missing() {
            0 => Ok(()),
            missing => Err(CompactError::Unserved { peer, missing }),
        }
    }

    /// Asks `peer` for the full block `hash` and imports it.
    async fn fallback(&self, peer: PeerId, hash: Hash32) -> Result<ImportOutcome, CompactError> {
        let blocks = match self.net.request(peer, SyncRequest::BlocksByHash { hashes: vec![hash] }).await {
            Ok(SyncResponse::Blocks(blocks)) => blocks,
            Ok(other) => {
                return Err(CompactError::WrongItems { peer, what: format!("a {} response to a block request", crate::sync::kind(&other)) });
            }
            Err(error) => return Err(CompactError::FetchFailed { peer, error }),
        };
        let mut blocks = blocks.into_iter();
        match (blocks.next(), blocks.next()) {
            (Some(block), None) if block.hash() == hash => Ok(self.svc.import(block, Origin::Gossip).await?),
            (None, _) => Err(CompactError::BlockUnserved { peer, block: hash }),
            _ => Err(CompactError::WrongItems { peer, what: "another block than the one announced".into() }),
        }
    }
}

/// Decodes `data` as a compact block and runs every check that needs no fetching, cheapest
/// first: the size limit (in `decode`), id counts against the genesis maxima and the body
/// rules that ids alone decide (not empty, enough submissions for the aggregation rule, ids
/// strictly ascending), header version and chain, proof of work, the ids against the body
/// root, the prefilled items against the ids; then, under the chain lock, whether the block
/// is known and whether its parent is.
pub fn check_compact(svc: &ChainService, data: &[u8]) -> Result<CheckedCompact, CompactError> {
    let g = svc.genesis();
    let compact: CompactBlock = decode(data, g.limits.max_block_bytes as usize)?;
    let (regs, subs) = (&compact.registration_ids, &compact.submission_ids);
    let max_subs = g.consensus.max_submissions;
    if subs.len() > max_subs as usize {
        return Err(CompactError::TooManyIds { what: "submissions", got: subs.len(), max: max_subs });
    }
    let max_regs = g.enrolment.max_per_block;
    if regs.len() > max_regs as usize {
        return Err(CompactError::TooManyIds { what: "registrations", got: regs.len(), max: max_regs });
    }
    if subs.is_empty() && regs.is_empty() {
        return Err(BlockError::EmptyBody.into());
    }
    let rule = g.consensus.aggregation;
    if !subs.is_empty() && subs.len() < rule.min_inputs() {
        return Err(BlockError::TooFewForRule { got: subs.len(), needed: rule.min_inputs(), rule: rule.to_string() }.into());
    }
    if !strictly_ascending(regs) {
        return Err(BlockError::RegistrationsUnsorted.into());
    }
    if !strictly_ascending(subs) {
        return Err(BlockError::Unsorted.into());
    }
    let h = &compact.header;
    if h.version != HEADER_VERSION {
        return Err(BlockError::Version(h.version).into());
    }
    let chain_id = g.chain_id();
    if h.chain_id != chain_id {
        return Err(BlockError::WrongChain { expected: chain_id, got: h.chain_id }.into());
    }
    let hash = h.hash();
    if !meets_target(&hash, &h.target) {
        return Err(BlockError::InsufficientWork.into());
    }
    if !compact.body_root_matches() {
        return Err(CompactError::BadBodyRoot);
    }
    check_prefilled("registration", regs, compact.prefilled_registrations.iter().map(Registration::id))?;
    check_prefilled("submission", subs, compact.prefilled_submissions.iter().map(Submission::id))?;
    let st = svc.lock();
    if st.chain.contains(&hash) {
        return Err(BlockError::AlreadyKnown.into());
    }
    if !st.chain.contains(&compact.header.parent) {
        return Err(BlockError::UnknownParent(compact.header.parent).into());
    }
    drop(st);
    Ok(CheckedCompact { compact, hash })
}

fn strictly_ascending(ids: &[Hash32]) -> bool {
    ids.windows(2).all(|w| w[0] < w[1])
}

/// Checks that every prefilled id is among `ids` and none is sent twice.
fn check_prefilled(what: &'static str, ids: &[Hash32], prefilled: impl Iterator<Item = Hash32>) -> Result<(), CompactError> {
    let listed: HashSet<&Hash32> = ids.iter().collect();
    let mut seen = HashSet::new();
    for id in prefilled {
        if !listed.contains(&id) || !seen.insert(id) {
            return Err(CompactError::PrefilledNotListed { what, id });
        }
    }
    Ok(())
}

/// A block body being rebuilt: one slot per id, in body order.
struct Body {
    compact: CompactBlock,
    registrations: Vec<Option<Registration>>,
    submissions: Vec<Option<Submission>>,
}

impl Body {
    /// Fills every slot it can from the prefilled items, the pools and, for a block that
    /// competes with the head (same parent), the head's body: two miners of one round carry
    /// mostly the same submissions, and importing the first emptied the pool.
    fn resolve(st: &ChainState, mut compact: CompactBlock) -> Body {
        let mut pre_regs: HashMap<Hash32, Registration> =
            std::mem::take(&mut compact.prefilled_registrations).into_iter().map(|r| (r.id(), r)).collect();
        let mut pre_subs: HashMap<Hash32, Submission> =
            std::mem::take(&mut compact.prefilled_submissions).into_iter().map(|s| (s.id(), s)).collect();
        let registrations = compact
            .registration_ids
            .iter()
            .map(|id| pre_regs.remove(id).or_else(|| st.registrations.get(id).cloned()))
            .collect();
        let submissions =
            compact.submission_ids.iter().map(|id| pre_subs.remove(id).or_else(|| st.pool.get(id).cloned())).collect();
        let mut body = Body { compact, registrations, submissions };
        let head = st.chain.head();
        if body.missing() > 0
            && head.parent == body.compact.header.parent
            && let Ok(Some(sibling)) = st.chain.block(&head.hash)
        {
            for r in sibling.registrations {
                body.fill_registration(r.id(), r);
            }
            for s in sibling.submissions {
                body.fill_submission(s.id(), s);
            }
        }
        body
    }

    fn missing(&self) -> usize {
        self.registrations.iter().filter(|r| r.is_none()).count() + self.submissions.iter().filter(|s| s.is_none()).count()
    }

    /// The ids of the empty slots: registrations, submissions.
    fn missing_ids(&self) -> (Vec<Hash32>, Vec<Hash32>) {
        let empty = |ids: &[Hash32], filled: Vec<bool>| -> Vec<Hash32> {
            ids.iter().zip(filled).filter(|(_, f)| !f).map(|(id, _)| *id).collect()
        };
        (
            empty(&self.compact.registration_ids, self.registrations.iter().map(Option::is_some).collect()),
            empty(&self.compact.submission_ids, self.submissions.iter().map(Option::is_some).collect()),
        )
    }

    /// Puts `r` in the empty slot of `id`; false if there is none.
    fn fill_registration(&mut self, id: Hash32, r: Registration) -> bool {
        fill(&self.compact.registration_ids, &mut self.registrations, id, r)
    }

    /// Puts `s` in the empty slot of `id`; false if there is none.
    fn fill_submission(&mut self, id: Hash32, s: Submission) -> bool {
        fill(&self.compact.submission_ids, &mut self.submissions, id, s)
    }

    /// The full block, once every slot is filled.
    fn into_block(self) -> Option<Block> {
        let registrations = self.registrations.into_iter().collect::<Option<Vec<_>>>()?;
        let submissions = self.submissions.into_iter().collect::<Option<Vec<_>>>()?;
        Some(self.compact.into_block(registrations, submissions))
    }
}

/// Fills the first empty slot whose id is `id`.
fn fill<T>(ids: &[Hash32], slots: &mut [Option<T>], id: Hash32, item: T) -> bool {
    match ids.iter().zip(slots.iter_mut()).find(|(i, slot)| **i == id && slot.is_none()) {
        Some((_, slot)) => {
            *slot = Some(item);
            true
        }
        None => false,
    }
}

/// The answer to [`SyncRequest::BodyItems`]: the requested items from the stored body of
/// `block` if this node has it, otherwise from its pools, each list in the order asked,
/// within `max_bytes`.
pub fn serve_body_items(
    st: &ChainState,
    block: &Hash32,
    registrations: &[Hash32],
    submissions: &[Hash32],
    max_bytes: usize,
) -> SyncResponse {
    if registrations.len() + submissions.len() > MAX_BODY_ITEM_IDS {
        return SyncResponse::Refused(format!("at most {MAX_BODY_ITEM_IDS} item ids per request"));
    }
    match st.chain.block(block).ok().flatten() {
        Some(b) => {
            let by_id_r: HashMap<Hash32, &Registration> = b.registrations.iter().map(|r| (r.id(), r)).collect();
            let by_id_s: HashMap<Hash32, &Submission> = b.submissions.iter().map(|s| (s.id(), s)).collect();
            crate::sync::items_within_budget(
                registrations.iter().filter_map(|id| by_id_r.get(id).copied()),
                submissions.iter().filter_map(|id| by_id_s.get(id).copied()),
                max_bytes,
            )
        }
        None => crate::sync::items_within_budget(
            registrations.iter().filter_map(|id| st.registrations.get(id)),
            submissions.iter().filter_map(|id| st.pool.get(id)),
            max_bytes,
        ),
    }
}

#[cfg(test)]
mod tests {
    use learnchain_chain::testing::{mined_block, signed_submission, solve};
    use learnchain_chain::Chain;
    use learnchain_identity::MemberSecret;
    use learnchain_proto::Genesis;

    use super::*;

    fn id(n: u8) -> Hash32 {
        Hash32([n; 32])
    }

    /// A chain service on a fresh chain of three genesis members (quorum 2).
    fn service() -> (ChainService, Vec<MemberSecret>, tempfile::TempDir) {
        let keys: Vec<MemberSecret> = (1..=3u8).map(|i| MemberSecret::from_seed(&[i; 32])).collect();
        let members = keys.iter().map(|k| Hash32(k.public().to_bytes())).collect();
        let mut g = Genesis::template("relay-test", 3, 2, members);
        g.consensus.quorum = 2;
        let dir = tempfile::tempdir().expect("tempdir");
        let chain = Chain::open(&dir.path().join("chain.redb"), g).expect("open");
        (ChainService::new(chain), keys, dir)
    }

    fn refusal(svc: &ChainService, c: &CompactBlock) -> CompactError {
        match check_compact(svc, &encode(c)) {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn cheap_checks_refuse_bad_announcements_before_any_fetch() {
        let (svc, keys, _dir) = service();
        let (block, stranger) = {
            let st = svc.lock();
            (mined_block(&st.chain, &[&keys[0], &keys[1]], 1), signed_submission(&st.chain, &keys[2], 7))
        };
        let good = CompactBlock::from_block(&block, |_| false, usize::MAX);
        assert_eq!(check_compact(&svc, &encode(&good)).expect("a valid announcement").hash(), block.hash());

        let e = check_compact(&svc, &[1, 2, 3]).expect_err("garbage");
        assert!(matches!(e, CompactError::Decode(_)) && e.verdict() == Verdict::Reject, "{e}");
        let max = svc.genesis().limits.max_block_bytes as usize;
        let e = check_compact(&svc, &vec![1u8; max + 1]).expect_err("oversized");
        assert!(matches!(e, CompactError::Decode(DecodeError::TooLarge { .. })), "{e}");

        let mut many = good.clone();
        let over = svc.genesis().consensus.max_submissions as usize + 1;
        many.submission_ids = (0..over as u64)
            .map(|i| {
                let mut b = [0u8; 32];
                b[..8].copy_from_slice(&i.to_be_bytes());
                Hash32(b)
            })
            .collect();
        let e = refusal(&svc, &many);
        assert!(matches!(e, CompactError::TooManyIds { what: "submissions", .. }) && e.verdict() == Verdict::Reject, "{e}");

        let mut unsorted = good.clone();
        unsorted.submission_ids.reverse();
        assert!(matches!(refusal(&svc, &unsorted), CompactError::Block(BlockError::Unsorted)));

        let mut empty = good.clone();
        empty.submission_ids.clear();
        assert!(matches!(refusal(&svc, &empty), CompactError::Block(BlockError::EmptyBody)));

        // Same header (its work holds), an id swapped for another: the body root catches it.
        let mut wrong_root = good.clone();
        *wrong_root.submission_ids.last_mut().expect("ids") = id(0xff);
        let e = refusal(&svc, &wrong_root);
        assert!(matches!(e, CompactError::BadBodyRoot) && e.verdict() == Verdict::Reject, "{e}");

        let mut no_work = good.clone();
        while meets_target(&no_work.header.hash(), &no_work.header.target) {
            no_work.header.nonce = no_work.header.nonce.wrapping_add(1);
        }
        assert!(matches!(refusal(&svc, &no_work), CompactError::Block(BlockError::InsufficientWork)));

        let mut other_chain = good.clone();
        other_chain.header.chain_id = id(9);
        assert!(matches!(refusal(&svc, &other_chain), CompactError::Block(BlockError::WrongChain { .. })));

        let mut stray = good.clone();
        stray.prefilled_submissions = vec![stranger];
        let e = refusal(&svc, &stray);
        assert!(matches!(e, CompactError::PrefilledNotListed { what: "submission", .. }) && e.verdict() == Verdict::Reject);

        let mut orphan = good.clone();
        orphan.header.parent = id(0x5a);
        solve(&mut orphan.header);
        let e = refusal(&svc, &orphan);
        assert_eq!((e.unknown_parent(), e.verdict()), (Some(id(0x5a)), Verdict::Ignore), "{e}");

        svc.import_block(block, Origin::Local).expect("import");
        let e = refusal(&svc, &good);
        assert!(matches!(e, CompactError::Block(BlockError::AlreadyKnown)) && e.verdict() == Verdict::Ignore);
    }

    #[test]
    fn items_are_served_from_the_stored_block_or_the_pools_in_the_order_asked() {
        let (svc, keys, _dir) = service();
        let block = mined_block(&svc.lock().chain, &[&keys[0], &keys[1]], 1);
        let ids: Vec<Hash32> = block.submissions.iter().map(Submission::id).collect();
        let hash = block.hash();
        // Before the import: from the pool, which holds one of them.
        svc.add_submission(block.submissions[1].clone()).expect("pooled");
        match serve_body_items(&svc.lock(), &hash, &[], &ids, 1 << 20) {
            SyncResponse::BodyItems { submissions, .. } => assert_eq!(submissions, vec![block.submissions[1].clone()]),
            other => panic!("{other:?}"),
        }
        // After it (the pool is reset): from the stored block, in the order asked.
        svc.import_block(block.clone(), Origin::Local).expect("import");
        let reversed: Vec<Hash32> = ids.iter().rev().copied().chain([id(7)]).collect();
        match serve_body_items(&svc.lock(), &hash, &[], &reversed, 1 << 20) {
            SyncResponse::BodyItems { submissions, .. } => {
                assert_eq!(submissions, block.submissions.iter().rev().cloned().collect::<Vec<_>>())
            }
            other => panic!("{other:?}"),
        }
        // Within the response budget, and within the id limit.
        match serve_body_items(&svc.lock(), &hash, &[], &ids, 64 + 10) {
            SyncResponse::BodyItems { submissions, .. } => assert!(submissions.is_empty()),
            other => panic!("{other:?}"),
        }
        let too_many = vec![id(1); MAX_BODY_ITEM_IDS + 1];
        assert!(matches!(serve_body_items(&svc.lock(), &hash, &[], &too_many, 1 << 20), SyncResponse::Refused(_)));
    }

    #[test]
    fn verdicts_name_the_senders_fault() {
        let peer = PeerId::random();
        assert_eq!(CompactError::BadBodyRoot.verdict(), Verdict::Reject);
        assert_eq!(CompactError::Unserved { peer, missing: 1 }.verdict(), Verdict::Reject);
        assert_eq!(CompactError::WrongItems { peer, what: "x".into() }.verdict(), Verdict::Reject);
        assert_eq!(CompactError::BlockUnserved { peer, block: id(3) }.verdict(), Verdict::Reject);
        assert_eq!(CompactError::TooManyIds { what: "submissions", got: 2, max: 1 }.verdict(), Verdict::Reject);
        assert_eq!(CompactError::FetchFailed { peer, error: NetError::Timeout }.verdict(), Verdict::Ignore);
        assert_eq!(CompactError::InFlight(id(1)).verdict(), Verdict::Ignore);
        let orphan = CompactError::Block(BlockError::UnknownParent(id(2)));
        assert_eq!(orphan.verdict(), Verdict::Ignore);
        assert_eq!(orphan.unknown_parent(), Some(id(2)));
        assert_eq!(CompactError::Block(BlockError::InsufficientWork).verdict(), Verdict::Reject);
    }

    #[test]
    fn prefilled_items_must_be_listed_once() {
        let ids = [id(1), id(2)];
        assert!(check_prefilled("submission", &ids, [id(2)].into_iter()).is_ok());
        assert!(matches!(
            check_prefilled("submission", &ids, [id(3)].into_iter()),
            Err(CompactError::PrefilledNotListed { id: i, .. }) if i == id(3)
        ));
        assert!(check_prefilled("submission", &ids, [id(1), id(1)].into_iter()).is_err(), "twice");
    }

    #[test]
    fn slots_take_only_the_ids_asked_for() {
        let ids = [id(1), id(2), id(1)];
        let mut slots: Vec<Option<u8>> = vec![None, Some(2), None];
        assert!(fill(&ids, &mut slots, id(1), 10));
        assert!(fill(&ids, &mut slots, id(1), 11), "a repeated id has two slots");
        assert!(!fill(&ids, &mut slots, id(1), 12), "no third");
        assert!(!fill(&ids, &mut slots, id(2), 20), "already filled");
        assert!(!fill(&ids, &mut slots, id(9), 90), "never asked for");
        assert_eq!(slots, vec![Some(10), Some(2), Some(11)]);
    }
}
