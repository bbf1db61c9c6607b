//! Catching up from peers, and serving peers that catch up from us.
//!
//! [`sync_with`] asks a peer for its status; while the peer claims more cumulative work, it
//! downloads the peer's canonical blocks by height range and imports them through the same
//! validation pipeline as gossip. If the first block of a batch has an unknown parent (the
//! peer is on another branch), the start height steps back exponentially until the batch
//! connects to a block we know; genesis always does. A peer that sends an invalid block or
//! lies about its work is dropped from this round of sync, and the error says so
//! ([`PeerFault`]), so that the caller charges the peer with the offence it names.
//!
//! [`serve`] answers status, block, pool and compact-block item requests (the latter in
//! [`compact`] and [`pool`]) within the genesis response limit.
//!
//! [`compact`] holds compact block relay: rebuilding a gossiped compact block from the
//! pools and fetching what is missing from the peer that announced it. [`pool`] moves items
//! that are not in a block yet: announced submissions fetched by id, and pool pulls by id.

pub mod compact;
pub mod pool;
pub mod snapshot;

pub use pool::{pull_pending, pull_pools};

use learnchain_chain::BlockError;
use learnchain_net::{NetworkHandle, PeerId, WireResponse};
use learnchain_proto::sync::MAX_HASHES_PER_REQUEST;
use learnchain_proto::{Hash32, Registration, StatusMessage, Submission, SyncRequest, SyncResponse};
use tracing::{debug, info, warn};

use crate::service::{ChainService, Origin};

/// Catches up with `peer` if it has more work. Returns how many blocks were imported and the
/// hash of the last one.
///
/// A height cursor moves forward through the peer's canonical chain; when a batch does not
/// connect, it steps back 1, 2, 4, … heights. Every response is checked: blocks must be the
/// requested heights in order, and a peer whose chain, once walked to its claimed height,
/// still does not carry the work it claims is dropped.
pub async fn sync_with(svc: &ChainService, net: &NetworkHandle, peer: PeerId) -> anyhow::Result<(u64, Option<Hash32>)> {
    let g = svc.genesis().clone();
    let chain_id = g.chain_id();
    let max_count = g.limits.max_blocks_per_request;
    let mut imported = 0u64;
    let mut last = None;
    let mut status = request_status(net, peer, &chain_id).await?;
    let ours = svc.lock().chain.status();
    if status.total_work <= ours.total_work {
        return Ok((imported, last));
    }
    let mut from = ours.height.min(status.height) + 1;
    // More than the one block gossip may not have brought yet: a data source waits.
    let _catching_up = (status.height > ours.height + 1).then(|| {
        info!(%peer, ours = ours.height, theirs = status.height, "catching up: downloading and checking the blocks we lack");
        svc.begin_catch_up()
    });
    let mut back = 0u64;
    // Enough requests to walk the claimed chain twice and step back to genesis.
    let budget = 2 * (status.height / u64::from(max_count) + 1) + 2 * 64 + 16;
    for _ in 0..budget {
        if from > status.height {
            status = request_status(net, peer, &chain_id).await?;
            let ours = svc.lock().chain.status();
            if status.total_work <= ours.total_work {
                return Ok((imported, last));
            }
            if from > status.height {
                return Err(bad_response(format!(
                    "peer {peer} claims more work than its chain up to height {} carries",
                    status.height
                )));
            }
        }
        let blocks = match net.request(peer, SyncRequest::BlocksByRange { start: from, count: max_count }).await? {
            SyncResponse::Blocks(b) => b,
            // A refusal (busy, rate limited) is no lie.
            SyncResponse::Refused(why) => anyhow::bail!("peer {peer} refused a range request: {why}"),
            other => return Err(bad_response(format!("peer {peer} answered a range request with {}", kind(&other)))),
        };
        if blocks.is_empty() {
            return Err(bad_response(format!("peer {peer} claims height {} but sent no blocks from {from}", status.height)));
        }
        if blocks.len() > max_count as usize {
            return Err(bad_response(format!("peer {peer} sent {} blocks, more than asked", blocks.len())));
        }
        if let Some((i, b)) = blocks.iter().enumerate().find(|(i, b)| b.header.height != from + *i as u64) {
            return Err(bad_response(format!("peer {peer} sent height {} where {} was due", b.header.height, from + i as u64)));
        }
        let mut connected = true;
        let mut next = from;
        for block in blocks {
            let height = block.header.height;
            let hash = block.hash();
            match svc.import(block, Origin::Sync).await {
                Ok(_) => {
                    imported += 1;
                    last = Some(hash);
                }
                Err(BlockError::AlreadyKnown) => {}
                Err(BlockError::UnknownParent(_)) => {
                    connected = false;
                    break;
                }
                Err(e) if e.verdict() == learnchain_chain::Verdict::Reject => {
                    return Err(PeerFault {
                        offence: learnchain_net::Offence::InvalidBlock,
                        what: format!("peer {peer} sent an invalid block at height {height}: {e}"),
                    }
                    .into());
                }
                Err(e) => anyhow::bail!("block {height} from peer {peer} not imported: {e}"),
            }
            next = height + 1;
        }
        if connected {
            back = 0;
            from = next;
        } else {
            if from <= 1 {
                return Err(bad_response(format!("peer {peer}'s chain does not connect to our genesis")));
            }
            back = if back == 0 { 1 } else { back.saturating_mul(2) };
            from = from.saturating_sub(back).max(1);
            debug!(%peer, from, "batch did not connect; stepping back");
        }
        if imported > 0 && imported.is_multiple_of(100) {
            info!(%peer, imported, height = svc.head().meta.height, "syncing");
        }
    }
    anyhow::bail!("sync with {peer} made no progress within its request budget")
}

/// Sync with a peer ended because the peer broke the rules: what it sent, and the offence to
/// charge it with.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct PeerFault {
    /// The offence.
    pub offence: learnchain_net::Offence,
    /// What the peer did.
    pub what: String,
}

/// Ends a sync with `peer` for a protocol violation: an answer that is not what was asked,
/// or contradicts the peer's own status.
pub(crate) fn bad_response(what: String) -> anyhow::Error {
    PeerFault { offence: learnchain_net::Offence::BadSyncResponse, what }.into()
}

/// A peer's status names another chain than ours: it was started from another genesis.
#[derive(Debug, thiserror::Error)]
#[error("peer {peer} runs chain {}, not ours", .theirs.short())]
pub struct WrongChain {
    /// The peer.
    pub peer: PeerId,
    /// The chain id it runs.
    pub theirs: Hash32,
}

pub(crate) async fn request_status(net: &NetworkHandle, peer: PeerId, chain_id: &Hash32) -> anyhow::Result<StatusMessage> {
    match net.request(peer, SyncRequest::Status).await? {
        SyncResponse::Status(s) if s.chain_id == *chain_id => Ok(s),
        SyncResponse::Status(s) => Err(WrongChain { peer, theirs: s.chain_id }.into()),
        SyncResponse::Refused(why) => anyhow::bail!("peer {peer} refused a status request: {why}"),
        other => Err(bad_response(format!("peer {peer} answered status with {}", kind(&other)))),
    }
}

/// A short name of a response's kind, for errors.
pub(crate) fn kind(r: &SyncResponse) -> &'static str {
    match r {
        SyncResponse::Status(_) => "a status",
        SyncResponse::Blocks(_) => "blocks",
        SyncResponse::Submissions(_) => "submissions",
        SyncResponse::Refused(_) => "a refusal",
        SyncResponse::Registrations(_) => "registrations",
        SyncResponse::BodyItems { .. } => "body items",
        SyncResponse::PoolIds { .. } => "pool ids",
        SyncResponse::Headers(_) => "headers",
        SyncResponse::Snapshots(_) => "a snapshot list",
        SyncResponse::SnapshotChunk { .. } => "a snapshot chunk",
    }
}

/// Most registrations a `PendingRegistrations` answer carries (a block carries at most
/// `enrolment.max_per_block`; the pool holds four blocks' worth).
pub const MAX_PULLED_REGISTRATIONS: usize = learnchain_proto::sync::MAX_POOL_REGISTRATION_IDS;

/// Sync requests a node answers at once, across all its peers. Each answer is read from the
/// store and built in memory (up to the genesis response limit; a snapshot chunk is 1 MiB)
/// before it is handed to the network, so this bounds what serving reads and builds at once,
/// however many peers ask; answers handed over wait in the network's per-peer streams (at
/// most 8 per peer).
pub const SERVED_AT_ONCE: usize = 4;

/// How long a request waits for its turn before it is refused as `busy`.
pub const SERVE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The answer to a sync request. Blocks go out as the bytes they are stored as (received
/// as), never decoded and encoded again.
pub fn serve(svc: &ChainService, request: SyncRequest) -> WireResponse {
    let g = svc.genesis();
    let max_bytes = g.limits.max_sync_response_bytes as usize;
    let st = svc.lock();
    let answer = match request {
        SyncRequest::Status => SyncResponse::Status(st.chain.status()),
        SyncRequest::BlocksByRange { start, count } => {
            let floor = st.chain.body_floor();
            if start < floor {
                // Not a lie about our chain: the asker goes to another peer.
                return SyncResponse::Refused(format!("pruned: this node keeps block bodies from height {floor} on")).into();
            }
            let count = count.min(g.limits.max_blocks_per_request);
            match st.chain.encoded_blocks_by_range(start, count, max_bytes) {
                Ok(b) => return WireResponse::Encoded(SyncResponse::encoded_blocks(&b)),
                Err(e) => {
                    warn!(error = %e, "cannot serve blocks");
                    SyncResponse::Refused("internal error".into())
                }
            }
        }
        SyncRequest::BlocksByHash { hashes } => {
            if hashes.len() > MAX_HASHES_PER_REQUEST {
                return SyncResponse::Refused(format!("at most {MAX_HASHES_PER_REQUEST} hashes per request")).into();
            }
            let mut used = 64usize;
            let mut known = Vec::new();
            for bytes in hashes.iter().filter_map(|h| st.chain.block_bytes(h).ok().flatten()) {
                if used + bytes.len() > max_bytes {
                    break;
                }
                used += bytes.len();
                known.push(bytes);
            }
            return WireResponse::Encoded(SyncResponse::encoded_blocks(&known));
        }
        SyncRequest::PendingRegistrations => {
            let pooled = st.registrations.registrations().into_iter().take(MAX_PULLED_REGISTRATIONS);
            SyncResponse::Registrations(within_budget(pooled, max_bytes))
        }
        SyncRequest::Pool => {
            let pooled = st.pool.submissions().into_iter().take(g.consensus.max_submissions as usize);
            SyncResponse::Submissions(within_budget(pooled, max_bytes))
        }
        SyncRequest::BodyItems { block, registrations, submissions } => {
            crate::sync::compact::serve_body_items(&st, &block, &registrations, &submissions, max_bytes)
        }
        SyncRequest::PoolIds => pool::serve_pool_ids(&st, g.consensus.max_submissions as usize),
        SyncRequest::PoolItems { registrations, submissions } => {
            pool::serve_pool_items(&st, &registrations, &submissions, max_bytes)
        }
        SyncRequest::HeadersByRange { start, count } => {
            let count = count.min(learnchain_proto::sync::MAX_HEADERS_PER_REQUEST);
            match st.chain.headers_by_range(start, count) {
                Ok(h) => SyncResponse::Headers(within_budget(h, max_bytes)),
                Err(e) => {
                    warn!(error = %e, "cannot serve headers");
                    SyncResponse::Refused("internal error".into())
                }
            }
        }
        SyncRequest::Snapshots => match st.chain.snapshots() {
            Ok(list) => SyncResponse::Snapshots(list),
            Err(e) => {
                warn!(error = %e, "cannot list snapshots");
                SyncResponse::Refused("internal error".into())
            }
        },
        SyncRequest::SnapshotChunk { block, index } => match st.chain.snapshot_chunk(&block, index) {
            Ok(Some(bytes)) => SyncResponse::SnapshotChunk { block, index, bytes },
            // Not a lie: the snapshot may have been dropped since it was listed.
            Ok(None) => SyncResponse::Refused(format!("no chunk {index} of a snapshot of block {}", block.short())),
            Err(e) => {
                warn!(error = %e, "cannot serve a snapshot chunk");
                SyncResponse::Refused("internal error".into())
            }
        },
    };
    answer.into()
}

/// The answer carrying `registrations` and then `submissions`, as many of each, in order,
/// as fit `max_bytes` together (see [`within_budget`]); the one packing rule of every
/// item-serving request (`BodyItems`, `PoolItems`).
pub(crate) fn items_within_budget<'a>(
    registrations: impl IntoIterator<Item = &'a Registration>,
    submissions: impl IntoIterator<Item = &'a Submission>,
    max_bytes: usize,
) -> SyncResponse {
    let regs = within_budget(registrations, max_bytes);
    let used: usize = regs.iter().map(learnchain_proto::encoding::encoded_len).sum();
    let subs = within_budget(submissions, max_bytes.saturating_sub(used));
    SyncResponse::BodyItems {
        registrations: regs.into_iter().cloned().collect(),
        submissions: subs.into_iter().cloned().collect(),
    }
}

/// The leading `items` whose encodings, with 64 bytes of framing, fit in `max_bytes`. Stops
/// at the first item that does not fit, so later items are never produced.
pub(crate) fn within_budget<T: serde::Serialize>(items: impl IntoIterator<Item = T>, max_bytes: usize) -> Vec<T> {
    let mut out = Vec::new();
    let mut used = 64usize;
    for item in items {
        let size = learnchain_proto::encoding::encoded_len(&item);
        if used + size > max_bytes {
            break;
        }
        used += size;
        out.push(item);
    }
    out
}

#[cfg(test)]
mod tests {
    use learnchain_chain::Chain;
    use learnchain_chain::chain::MIN_PRUNE_KEEP;
    use learnchain_chain::testing::mined_block;
    use learnchain_identity::MemberSecret;
    use learnchain_proto::Genesis;

    use super::*;

    #[test]
    fn a_pruned_node_refuses_ranges_below_its_bodies_and_serves_the_rest() {
        let keys: Vec<MemberSecret> = (1..=2u8).map(|i| MemberSecret::from_seed(&[i; 32])).collect();
        let members = keys.iter().map(|k| Hash32(k.public().to_bytes())).collect();
        let mut g = Genesis::template("prune-serve-test", 3, 2, members);
        g.consensus.quorum = 2;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut chain = Chain::open(&dir.path().join("chain.redb"), g).expect("open");
        chain.set_prune(Some(MIN_PRUNE_KEEP)).expect("prune");
        let svc = ChainService::new(chain);
        for i in 0..MIN_PRUNE_KEEP + 3 {
            let block = mined_block(&svc.lock().chain, &[&keys[0], &keys[1]], i as i32);
            svc.import_block(block, Origin::Local).expect("import");
        }
        let floor = svc.lock().chain.body_floor();
        assert_eq!(floor, 4);
        match serve(&svc, SyncRequest::BlocksByRange { start: 1, count: 8 }).into_value() {
            SyncResponse::Refused(why) => assert!(why.contains("pruned") && why.contains(&floor.to_string()), "{why}"),
            other => panic!("expected a refusal, got {}", kind(&other)),
        }
        match serve(&svc, SyncRequest::BlocksByRange { start: floor, count: 8 }).into_value() {
            SyncResponse::Blocks(b) => {
                assert_eq!(b.first().map(|b| b.header.height), Some(floor));
                for block in &b {
                    let stored = svc.lock().chain.block_bytes(&block.hash()).expect("read").expect("kept");
                    assert_eq!(stored, learnchain_proto::encoding::encode(block), "stored as received");
                }
                let hashes = b.iter().map(|b| b.hash()).collect();
                let by_hash = serve(&svc, SyncRequest::BlocksByHash { hashes });
                assert_eq!(by_hash.into_value(), SyncResponse::Blocks(b));
            }
            other => panic!("expected blocks, got {}", kind(&other)),
        }
    }
}
