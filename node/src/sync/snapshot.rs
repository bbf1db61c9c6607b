//! Snapshot sync: how a node with an empty data dir starts from a recent state instead of
//! replaying every block since genesis (`--sync snapshot`, the default; `--sync full`
//! replays).
//!
//! [`sync_snapshot`] asks a peer for its status and the snapshots it serves, takes the
//! highest one, downloads the header chain from genesis up to that block (every header is
//! checked as import checks it: parent, proof of work against the retarget rule, median
//! time past, cumulative work) and the snapshot's chunks, and installs the state once it
//! matches that block's state root (see `learnchain_chain::Chain::install_snapshot`). The
//! blocks after it are then imported in full by the ordinary sync ([`super::sync_with`]).
//! Nothing is written before the state is checked, so a node killed in the middle starts
//! again cleanly from an empty data dir. Every answer is bounded before it is held: at
//! most [`MAX_SNAPSHOT_HEADERS`] headers, and a state no larger than the genesis model and
//! a registry within the message limit. A peer whose answers do not add up is charged
//! ([`super::PeerFault`]) and the caller tries another.

use learnchain_chain::SnapshotError;
use learnchain_net::{NetworkHandle, Offence, PeerId};
use learnchain_proto::encoding::MAX_MESSAGE_BYTES;
use learnchain_proto::sync::{MAX_HEADERS_PER_REQUEST, MAX_SNAPSHOTS_LISTED, SNAPSHOT_CHUNK_BYTES, SnapshotInfo};
use learnchain_proto::{SyncRequest, SyncResponse};
use tracing::info;

use super::{PeerFault, bad_response, kind, request_status};
use crate::service::ChainService;

/// Most headers a snapshot sync holds (about 220 MB); a longer chain is synced in full.
pub const MAX_SNAPSHOT_HEADERS: u64 = 1_000_000;

/// How a node with an empty data dir catches up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// From a peer's snapshot of a recent state, then the blocks after it.
    #[default]
    Snapshot,
    /// Every block from genesis.
    Full,
}

impl std::fmt::Display for SyncMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SyncMode::Snapshot => "snapshot",
            SyncMode::Full => "full",
        })
    }
}

/// Starts the chain from `peer`'s newest snapshot. `Ok(Some(height))`: installed at that
/// height. `Ok(None)`: the peer has none to offer (no snapshot above genesis, or the chain
/// is no longer fresh), so the caller syncs in full. An error is the peer's fault when it
/// is a [`PeerFault`].
pub async fn sync_snapshot(svc: &ChainService, net: &NetworkHandle, peer: PeerId) -> anyhow::Result<Option<u64>> {
    let g = svc.genesis().clone();
    let status = request_status(net, peer, &g.chain_id()).await?;
    let list = match net.request(peer, SyncRequest::Snapshots).await? {
        SyncResponse::Snapshots(l) => l,
        SyncResponse::Refused(why) => anyhow::bail!("peer {peer} refused to list its snapshots: {why}"),
        other => return Err(bad_response(format!("peer {peer} answered a snapshot list request with {}", kind(&other)))),
    };
    if list.len() > MAX_SNAPSHOTS_LISTED {
        return Err(bad_response(format!("peer {peer} listed {} snapshots, more than {MAX_SNAPSHOTS_LISTED}", list.len())));
    }
    let Some(snap) = list.into_iter().filter(|s| s.height > 0 && s.height <= status.height).max_by_key(|s| s.height) else {
        return Ok(None);
    };
    if snap.height > MAX_SNAPSHOT_HEADERS {
        anyhow::bail!("peer {peer}'s snapshot at height {} is past the {MAX_SNAPSHOT_HEADERS} headers a snapshot sync holds", snap.height);
    }
    let model_bytes = 40 + 4 * g.param_count() as u64;
    if snap.bytes < model_bytes || snap.bytes > model_bytes + MAX_MESSAGE_BYTES as u64 {
        return Err(bad_response(format!(
            "peer {peer} lists a snapshot of {} bytes, not a model of {} parameters and a registry",
            snap.bytes,
            g.param_count()
        )));
    }
    let _catching_up = svc.begin_catch_up();
    let started = std::time::Instant::now();
    info!(%peer, height = snap.height, bytes = snap.bytes, "snapshot sync: downloading headers and state");
    let headers = download_headers(net, peer, &snap).await?;
    let state = download_state(net, peer, &snap).await?;
    // The checks end in a durable commit: off the runtime's worker threads.
    let installer = svc.clone();
    let installed = tokio::task::spawn_blocking(move || installer.install_snapshot(&headers, &state))
        .await
        .map_err(|e| anyhow::anyhow!("the snapshot install did not finish: {e}"))?;
    match installed {
        Ok(head) => {
            info!(%peer, height = head.height, block = %head.hash.short(), seconds = started.elapsed().as_secs_f64(), "snapshot installed; importing the blocks after it");
            Ok(Some(head.height))
        }
        Err(SnapshotError::NotFresh(_)) => Ok(None),
        Err(SnapshotError::Storage(e)) => anyhow::bail!("cannot store the snapshot: {e}"),
        Err(e @ SnapshotError::Header { .. }) => {
            Err(PeerFault { offence: Offence::InvalidBlock, what: format!("peer {peer}'s snapshot: {e}") }.into())
        }
        Err(e) => Err(bad_response(format!("peer {peer}'s snapshot: {e}"))),
    }
}

/// Headers 1 to `snap.height`, checked to be consecutive and to end at the snapshot's block
/// (their contents are checked on install).
async fn download_headers(net: &NetworkHandle, peer: PeerId, snap: &SnapshotInfo) -> anyhow::Result<Vec<learnchain_proto::Header>> {
    let mut headers = Vec::with_capacity(usize::try_from(snap.height).unwrap_or(usize::MAX).min(1 << 16));
    while (headers.len() as u64) < snap.height {
        let start = headers.len() as u64 + 1;
        let count = (snap.height - start + 1).min(u64::from(MAX_HEADERS_PER_REQUEST)) as u32;
        let batch = match net.request(peer, SyncRequest::HeadersByRange { start, count }).await? {
            SyncResponse::Headers(h) => h,
            SyncResponse::Refused(why) => anyhow::bail!("peer {peer} refused headers from {start}: {why}"),
            other => return Err(bad_response(format!("peer {peer} answered a header request with {}", kind(&other)))),
        };
        if batch.is_empty() || batch.len() > count as usize {
            return Err(bad_response(format!("peer {peer} sent {} headers from {start}, {count} asked, up to its snapshot", batch.len())));
        }
        if let Some((i, h)) = batch.iter().enumerate().find(|(i, h)| h.height != start + *i as u64) {
            return Err(bad_response(format!("peer {peer} sent header {} where {} was due", h.height, start + i as u64)));
        }
        headers.extend(batch);
    }
    match headers.last() {
        Some(h) if h.hash() == snap.block => Ok(headers),
        _ => Err(bad_response(format!(
            "peer {peer} lists a snapshot of block {} at height {}, but its headers lead elsewhere",
            snap.block.short(),
            snap.height
        ))),
    }
}

/// The snapshot's bytes, chunk by chunk, each of exactly the length its index implies.
async fn download_state(net: &NetworkHandle, peer: PeerId, snap: &SnapshotInfo) -> anyhow::Result<Vec<u8>> {
    let total = usize::try_from(snap.bytes)?;
    let mut state = Vec::with_capacity(total);
    for index in 0..snap.chunks() {
        let index = u32::try_from(index)?;
        let expected = (total - state.len()).min(SNAPSHOT_CHUNK_BYTES);
        match net.request(peer, SyncRequest::SnapshotChunk { block: snap.block, index }).await? {
            SyncResponse::SnapshotChunk { block, index: i, bytes } if block == snap.block && i == index => {
                if bytes.len() != expected {
                    return Err(bad_response(format!(
                        "peer {peer} sent chunk {index} of its snapshot with {} bytes, {expected} due",
                        bytes.len()
                    )));
                }
                state.extend_from_slice(&bytes);
            }
            SyncResponse::Refused(why) => anyhow::bail!("peer {peer} refused chunk {index} of its snapshot: {why}"),
            other => return Err(bad_response(format!("peer {peer} answered a chunk request with {}", kind(&other)))),
        }
    }
    Ok(state)
}

/// Before an ordinary sync with `peer`: on a fresh chain with snapshot sync on (`gate`
/// given), one snapshot sync at a time, from this peer. Does nothing once the chain holds
/// blocks (a snapshot installed, or blocks synced); an error is the snapshot sync's.
pub async fn start_from_snapshot(
    svc: &ChainService,
    net: &NetworkHandle,
    peer: PeerId,
    gate: Option<&tokio::sync::Mutex<()>>,
) -> anyhow::Result<()> {
    let Some(gate) = gate else { return Ok(()) };
    if !svc.lock().chain.is_fresh() {
        return Ok(());
    }
    let _one = gate.lock().await;
    if !svc.lock().chain.is_fresh() {
        return Ok(());
    }
    sync_snapshot(svc, net, peer).await.map(|_| ())
}
