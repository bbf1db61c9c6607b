//! Messages of the request-response sync protocol.
//!
//! A peer asks for [`SyncRequest::Status`] (its head, height and total work), for blocks of
//! its canonical chain by height range, for blocks by hash, for its pooled submissions and
//! registrations, or for the body items of a compact block by id
//! ([`SyncRequest::BodyItems`], at most [`MAX_BODY_ITEM_IDS`] ids). A node that starts from
//! a snapshot asks for headers by range ([`SyncRequest::HeadersByRange`], at most
//! [`MAX_HEADERS_PER_REQUEST`]), for the snapshots a peer serves
//! ([`SyncRequest::Snapshots`]) and for one snapshot's chunks
//! ([`SyncRequest::SnapshotChunk`], [`SNAPSHOT_CHUNK_BYTES`] each). Requests are tiny and
//! capped at [`MAX_SYNC_REQUEST_BYTES`]; responses are capped by the genesis
//! `limits.max_sync_response_bytes`, and a server never packs more blocks or items than fit.

use serde::{Deserialize, Serialize};

use crate::block::Block;
use crate::hash::Hash32;
use crate::header::Header;
use crate::registration::Registration;
use crate::submission::Submission;

/// Largest encoded sync request.
pub const MAX_SYNC_REQUEST_BYTES: usize = 64 * 1024;
/// Most hashes one `BlocksByHash` request may name.
pub const MAX_HASHES_PER_REQUEST: usize = 256;
/// Most item ids (registrations and submissions together) one `BodyItems` request may
/// name; 32 KiB of ids, well within [`MAX_SYNC_REQUEST_BYTES`]. A receiver missing more
/// items of one compact block asks for the full block instead.
pub const MAX_BODY_ITEM_IDS: usize = 1024;

/// Most headers one `HeadersByRange` answer carries (about 440 kB).
pub const MAX_HEADERS_PER_REQUEST: u32 = 2000;
/// Bytes of one snapshot chunk (the last one may be shorter).
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// Most snapshots a `Snapshots` answer lists.
pub const MAX_SNAPSHOTS_LISTED: usize = 16;

// Every `BodyItems` request within the id limit fits a request frame.
const _: () = assert!(MAX_BODY_ITEM_IDS * 32 + 64 + 32 <= MAX_SYNC_REQUEST_BYTES);

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
    /// Body items of the compact block `block` the peer announced, by id: a server answers
    /// from that block's stored body if it has it, otherwise from its pools. At most
    /// [`MAX_BODY_ITEM_IDS`] ids in all.
    BodyItems {
        /// The announced block's hash.
        block: Hash32,
        /// Wanted registration ids.
        registrations: Vec<Hash32>,
        /// Wanted submission ids.
        submissions: Vec<Hash32>,
    },
    /// The ids of the peer's pooled submissions and registrations: a node pulls a peer's
    /// pools by asking for the ids first and then only for the items it lacks
    /// ([`SyncRequest::PoolItems`]). (`Pool` and `PendingRegistrations` send every item
    /// whatever the asker holds; this node still answers them, for older peers.)
    PoolIds,
    /// Pooled items by id, answered from the peer's pools (and its head block's body, for
    /// items that block has just taken out of the pool) as [`SyncResponse::BodyItems`]:
    /// how a node fetches an announced submission
    /// ([`crate::announce::SubmissionAnnouncement`]) and the items of a pool pull it lacks.
    /// At most [`MAX_BODY_ITEM_IDS`] ids in all.
    PoolItems {
        /// Wanted registration ids.
        registrations: Vec<Hash32>,
        /// Wanted submission ids.
        submissions: Vec<Hash32>,
    },
    /// Canonical headers from height `start`, at most `count` (and
    /// [`MAX_HEADERS_PER_REQUEST`]), answered as [`SyncResponse::Headers`]. A pruned node
    /// serves every header.
    HeadersByRange {
        /// First height.
        start: u64,
        /// Most headers wanted.
        count: u32,
    },
    /// The snapshots the peer serves, answered as [`SyncResponse::Snapshots`].
    Snapshots,
    /// Chunk `index` of the snapshot of the state after block `block`, answered as
    /// [`SyncResponse::SnapshotChunk`].
    SnapshotChunk {
        /// The block whose state is wanted.
        block: Hash32,
        /// Chunk index, from 0.
        index: u32,
    },
}

impl SyncRequest {
    /// How many item ids a `BodyItems` or `PoolItems` request names (0 for other requests).
    pub fn body_item_count(&self) -> usize {
        match self {
            SyncRequest::BodyItems { registrations, submissions, .. }
            | SyncRequest::PoolItems { registrations, submissions } => registrations.len() + submissions.len(),
            _ => 0,
        }
    }
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
    /// Answer to `BodyItems`: the requested items the server has, each list in the order
    /// asked (items it lacks are left out).
    BodyItems {
        /// Registrations found.
        registrations: Vec<Registration>,
        /// Submissions found.
        submissions: Vec<Submission>,
    },
    /// Answer to `PoolIds`: at most the genesis `max_submissions` submission ids and
    /// [`MAX_POOL_REGISTRATION_IDS`] registration ids.
    PoolIds {
        /// Ids of pooled registrations.
        registrations: Vec<Hash32>,
        /// Ids of pooled submissions (the round after the peer's head).
        submissions: Vec<Hash32>,
    },
    /// Answer to `HeadersByRange`: consecutive canonical headers from the asked height.
    Headers(Vec<Header>),
    /// Answer to `Snapshots`: at most [`MAX_SNAPSHOTS_LISTED`], highest first.
    Snapshots(Vec<SnapshotInfo>),
    /// Answer to `SnapshotChunk`.
    SnapshotChunk {
        /// The block whose state this is.
        block: Hash32,
        /// Chunk index.
        index: u32,
        /// The chunk: bytes `index · SNAPSHOT_CHUNK_BYTES ..` of the snapshot, at most
        /// [`SNAPSHOT_CHUNK_BYTES`].
        bytes: Vec<u8>,
    },
}

/// A snapshot a peer serves: the state (model and member registry) after one block of its
/// best chain, as `bytes` bytes in [`SNAPSHOT_CHUNK_BYTES`] chunks. The bytes are the
/// model's hash, its parameter count (`u64`), the weights (`i32`, little-endian) and the
/// registry's canonical encoding; the block header's state root commits to them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Height of the block.
    pub height: u64,
    /// Hash of the block.
    pub block: Hash32,
    /// Length of the snapshot in bytes.
    pub bytes: u64,
}

impl SnapshotInfo {
    /// Number of chunks.
    pub fn chunks(&self) -> u64 {
        self.bytes.div_ceil(SNAPSHOT_CHUNK_BYTES as u64)
    }
}

impl SyncResponse {
    /// The canonical encoding of `SyncResponse::Blocks` of the blocks whose canonical
    /// encodings are `blocks`, without decoding them: what a node sends when it serves
    /// blocks from storage as they were received. Equal, byte for byte, to encoding the
    /// decoded response.
    pub fn encoded_blocks(blocks: &[Vec<u8>]) -> Vec<u8> {
        // [version][variant: u32][count: u64], then each block without its version byte.
        let mut out = crate::encoding::encode(&SyncResponse::Blocks(Vec::new()));
        let count_at = out.len() - 8;
        out[count_at..].copy_from_slice(&(blocks.len() as u64).to_le_bytes());
        out.reserve(blocks.iter().map(Vec::len).sum());
        for b in blocks {
            out.extend_from_slice(b.get(1..).unwrap_or_default());
        }
        out
    }
}

/// Most registration ids a `PoolIds` answer may carry (a block carries at most the genesis
/// `enrolment.max_per_block`; a pool holds four blocks' worth).
pub const MAX_POOL_REGISTRATION_IDS: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{decode, encode};

    #[test]
    fn body_item_requests_round_trip_within_the_request_limit() {
        let full = SyncRequest::BodyItems {
            block: Hash32([1; 32]),
            registrations: vec![Hash32([2; 32]); MAX_BODY_ITEM_IDS / 2],
            submissions: vec![Hash32([3; 32]); MAX_BODY_ITEM_IDS / 2],
        };
        assert_eq!(full.body_item_count(), MAX_BODY_ITEM_IDS);
        let bytes = encode(&full);
        assert!(bytes.len() <= MAX_SYNC_REQUEST_BYTES, "{} bytes", bytes.len());
        assert_eq!(decode::<SyncRequest>(&bytes, MAX_SYNC_REQUEST_BYTES), Ok(full));
        let answer = SyncResponse::BodyItems { registrations: vec![], submissions: vec![] };
        let bytes = encode(&answer);
        assert_eq!(decode::<SyncResponse>(&bytes, 64), Ok(answer));
    }

    #[test]
    fn blocks_served_as_stored_encode_as_the_decoded_response() {
        let header = Header {
            version: 2,
            chain_id: Hash32([1; 32]),
            height: 3,
            parent: Hash32([2; 32]),
            timestamp_ms: 1234,
            target: Hash32([0xff; 32]),
            miner: Hash32([4; 32]),
            body_root: Hash32([5; 32]),
            state_root: Hash32([6; 32]),
            nonce: 8,
        };
        let genesis = Block { header, registrations: vec![], submissions: vec![] };
        let mut other = genesis.clone();
        other.header.height = 9;
        other.header.nonce = 77;
        let blocks = vec![genesis, other];
        let stored: Vec<Vec<u8>> = blocks.iter().map(encode).collect();
        let bytes = SyncResponse::encoded_blocks(&stored);
        assert_eq!(bytes, encode(&SyncResponse::Blocks(blocks.clone())));
        assert_eq!(decode::<SyncResponse>(&bytes, 1 << 20), Ok(SyncResponse::Blocks(blocks)));
        assert_eq!(SyncResponse::encoded_blocks(&[]), encode(&SyncResponse::Blocks(vec![])));
    }

    #[test]
    fn older_variants_keep_their_encoding() {
        // New variants are appended: a node that does not know `BodyItems` still decodes
        // every request it knew, byte for byte as before.
        assert_eq!(encode(&SyncRequest::Status), vec![1, 0, 0, 0, 0]);
        assert_eq!(encode(&SyncRequest::PendingRegistrations), vec![1, 4, 0, 0, 0]);
        assert_eq!(encode(&SyncResponse::Registrations(vec![]))[..5], [1, 4, 0, 0, 0]);
        let items = SyncRequest::BodyItems { block: Hash32::ZERO, registrations: vec![], submissions: vec![] };
        assert_eq!(encode(&items)[..5], [1, 5, 0, 0, 0], "the new request is appended");
        assert_eq!(encode(&SyncRequest::PoolIds), vec![1, 6, 0, 0, 0]);
        let answer = SyncResponse::PoolIds { registrations: vec![], submissions: vec![] };
        assert_eq!(encode(&answer)[..5], [1, 6, 0, 0, 0], "the new answer is appended");
    }
}
