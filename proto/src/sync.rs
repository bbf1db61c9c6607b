//! Messages of the request-response sync protocol.
//!
//! A peer asks for [`SyncRequest::Status`] (its head, height and total work), for blocks of
//! its canonical chain by height range, for blocks by hash, or for its pooled submissions and registrations. Requests are tiny and capped
//! at [`MAX_SYNC_REQUEST_BYTES`]; responses are capped by the genesis
//! `limits.max_sync_response_bytes`, and a server never packs more blocks than fit.

use serde::{Deserialize, Serialize};

use crate::block::Block;
use crate::hash::Hash32;
use crate::registration::Registration;
use crate::submission::Submission;

/// Largest encoded sync request.
pub const MAX_SYNC_REQUEST_BYTES: usize = 64 * 1024;
/// Most hashes one `BlocksByHash` request may name.
pub const MAX_HASHES_PER_REQUEST: usize = 256;

/// A sync request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// The peer's chain status.
    Status,
    /// Canonical blocks from height `start`, at most `count` of them.
    BlocksByRange {
        /// First height.
        start: u64,
        /// Most blocks wanted.
        count: u32,
    },
    /// Blocks by hash, as many as the peer has.
    BlocksByHash {
        /// Wanted hashes.
        hashes: Vec<Hash32>,
    },
    /// The submissions pooled for the peer's next block, so a node that (re)connects
    /// mid-round learns what gossip delivered before it was there.
    Pool,
    /// The registrations pooled for the peer's next block: a registration gossiped while no
    /// miner listened reaches one at the next pull.
    PendingRegistrations,
}

/// A node's view of its chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusMessage {
    /// The chain id the node runs.
    pub chain_id: Hash32,
    /// Head block hash.
    pub head: Hash32,
    /// Head height.
    pub height: u64,
    /// Cumulative work of the head, 256-bit big-endian.
    pub total_work: Hash32,
}

/// A sync response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Answer to `Status`.
    Status(StatusMessage),
    /// Answer to a block request, in ascending height order for ranges.
    Blocks(Vec<Block>),
    /// Answer to `Pool`: submissions for the round after the peer's head.
    Submissions(Vec<Submission>),
    /// The request was not served (malformed, wrong chain, too large).
    Refused(String),
    /// Answer to `PendingRegistrations`.
    Registrations(Vec<Registration>),
}
