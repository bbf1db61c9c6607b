//! Catching up from peers, and serving peers that catch up from us.
//!
//! [`sync_with`] asks a peer for its status; while the peer claims more cumulative work, it
//! downloads the peer's canonical blocks by height range and imports them through the same
//! validation pipeline as gossip. If the first block of a batch has an unknown parent (the
//! peer is on another branch), the start height steps back exponentially until the batch
//! connects to a block we know; genesis always does. A peer that sends an invalid block or
//! lies about its work is dropped from this round of sync.
//!
//! [`serve`] answers status and block requests within the genesis response limit.

use learnchain_chain::BlockError;
use learnchain_net::{NetworkHandle, PeerId};
use learnchain_proto::sync::MAX_HASHES_PER_REQUEST;
use learnchain_proto::{SyncRequest, SyncResponse};
use tracing::{debug, info, warn};

use crate::service::{ChainService, Origin};

/// Catches up with `peer` if it has more work. Returns the number of blocks imported.
pub async fn sync_with(svc: &ChainService, net: &NetworkHandle, peer: PeerId) -> anyhow::Result<u64> {
    let g = svc.genesis().clone();
    let chain_id = g.chain_id();
    let max_count = g.limits.max_blocks_per_request;
    let mut imported = 0u64;
    let mut back = 0u64;
    let mut rounds = 0u32;
    loop {
        rounds += 1;
        if rounds > 10_000 {
            anyhow::bail!("sync with {peer} made no progress");
        }
        let status = match net.request(peer, SyncRequest::Status).await? {
            SyncResponse::Status(s) => s,
            other => anyhow::bail!("peer {peer} answered status with {}", kind(&other)),
        };
        if status.chain_id != chain_id {
            anyhow::bail!("peer {peer} runs chain {}, not ours", status.chain_id.short());
        }
        let ours = svc.lock().chain.status();
        if status.total_work <= ours.total_work {
            return Ok(imported);
        }
        let next = ours.height.min(status.height) + 1;
        let from = next.saturating_sub(back).max(1);
        let blocks = match net.request(peer, SyncRequest::BlocksByRange { start: from, count: max_count }).await? {
            SyncResponse::Blocks(b) => b,
            other => anyhow::bail!("peer {peer} answered a range request with {}", kind(&other)),
        };
        if blocks.is_empty() {
            anyhow::bail!("peer {peer} claims height {} but sent no blocks from {from}", status.height);
        }
        if blocks.len() > max_count as usize {
            anyhow::bail!("peer {peer} sent {} blocks, more than asked", blocks.len());
        }
        let mut disconnected = false;
        for block in blocks {
            let height = block.header.height;
            match svc.import_block(block, Origin::Sync) {
                Ok(_) => imported += 1,
                Err(BlockError::AlreadyKnown) => {}
                Err(BlockError::UnknownParent(_)) => {
                    disconnected = true;
                    break;
                }
                Err(e) => anyhow::bail!("peer {peer} sent an invalid block at height {height}: {e}"),
            }
        }
        if disconnected {
            if from == 1 {
                anyhow::bail!("peer {peer}'s chain does not connect to our genesis");
            }
            back = if back == 0 { 1 } else { back.saturating_mul(2) };
            debug!(%peer, back, "batch did not connect; stepping back");
        } else {
            back = 0;
        }
        if imported > 0 && imported.is_multiple_of(100) {
            info!(%peer, imported, height = svc.head().meta.height, "syncing");
        }
    }
}

fn kind(r: &SyncResponse) -> &'static str {
    match r {
        SyncResponse::Status(_) => "a status",
        SyncResponse::Blocks(_) => "blocks",
        SyncResponse::Refused(_) => "a refusal",
    }
}

/// The answer to a sync request.
pub fn serve(svc: &ChainService, request: SyncRequest) -> SyncResponse {
    let g = svc.genesis();
    let max_bytes = g.limits.max_sync_response_bytes as usize;
    let st = svc.lock();
    match request {
        SyncRequest::Status => SyncResponse::Status(st.chain.status()),
        SyncRequest::BlocksByRange { start, count } => {
            let count = count.min(g.limits.max_blocks_per_request);
            match st.chain.blocks_by_range(start, count, max_bytes) {
                Ok(b) => SyncResponse::Blocks(b),
                Err(e) => {
                    warn!(error = %e, "cannot serve blocks");
                    SyncResponse::Refused("internal error".into())
                }
            }
        }
        SyncRequest::BlocksByHash { hashes } => {
            if hashes.len() > MAX_HASHES_PER_REQUEST {
                return SyncResponse::Refused(format!("at most {MAX_HASHES_PER_REQUEST} hashes per request"));
            }
            let mut out = Vec::new();
            let mut used = 64usize;
            for h in hashes {
                if let Ok(Some(b)) = st.chain.block(&h) {
                    let size = learnchain_proto::encoding::encoded_len(&b);
                    if used + size > max_bytes {
                        break;
                    }
                    used += size;
                    out.push(b);
                }
            }
            SyncResponse::Blocks(out)
        }
    }
}
