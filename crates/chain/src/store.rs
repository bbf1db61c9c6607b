//! Durable block store on redb.
//!
//! Bodies live outside redb, in append-only segment files (see [`crate::bodies`]) in the
//! `blocks` directory beside the database file (`chain.redb` → `chain.blocks/`).
//!
//! Tables: `bodies` (hash → where its body is), `segments` (segment → its committed length,
//! highest block and block count), `heights` (height ‖ hash, every block in height order),
//! `meta` (hash → [`BlockMeta`]) for every
//! valid block including side branches, `canonical` (height → hash) for the best chain,
//! `checkpoints` (height → hash) with `checkpoint_state` (height → model and registry) for
//! the state after a few canonical blocks, and `state` with the store schema, the chain id
//! and the head hash.
//!
//! The model is not rewritten at every block. A checkpoint — the model (raw little-endian
//! `i32`s, with its hash so corruption is noticed on open) and the member registry after
//! one block — is written when the head reaches a multiple of [`CHECKPOINT_INTERVAL`],
//! when a reorg moves the head, and at genesis; checkpoints more than
//! [`CHECKPOINT_SPAN`] below the newest are dropped (genesis's is kept). The state after
//! the head is the newest checkpoint on the best chain with the blocks after it applied,
//! which the chain does on open (see [`crate::Chain::open`]); what a reorg needs to rewind
//! is the bodies, which are kept anyway.
//!
//! A pruned node drops the bodies of blocks below the heights it keeps, in the transaction
//! of the block that moves the head past them, and records the lowest height whose bodies
//! it still has (`body_floor` in `state`); metas, the canonical index and checkpoints stay.
//! A segment's file goes once every body in it is dropped.
//!
//! Each imported block is one write transaction ([`Store::commit`]): its body's location,
//! its meta and, when the head moves, the canonical index, head and any checkpoint all land
//! together or not at all. The body's bytes are on disk before that transaction commits, and
//! redb's copy-on-write commits are crash-safe, so `kill -9` at any point leaves either the
//! state before or after the block.

use std::path::Path;

use learnchain_proto::encoding::{self, MAX_MESSAGE_BYTES};
use learnchain_proto::hash::model_hash;
use learnchain_proto::{Block, Hash32, Header};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::bodies::{ARCHIVE_SEGMENT_BYTES, Loc, SegmentInfo, Segments};
use crate::error::ChainError;
use crate::registry::Registry;

/// The layout this code reads and writes. A data directory written by another layout is
/// refused on open with a message saying so, never read as if it were this one.
pub const SCHEMA_VERSION: u32 = 5;

/// The store's page cache unless configured (`store_cache_mib`): 16 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 16 << 20;

/// Canonical heights that are multiples of this get a checkpoint of the state after them.
pub const CHECKPOINT_INTERVAL: u64 = 32;
/// Checkpoints lower than the newest by more than this are dropped (genesis's is kept):
/// the last four are kept, so a node restarted after a reorg of up to two intervals still
/// finds one on its best chain within the bodies it keeps.
pub const CHECKPOINT_SPAN: u64 = 3 * CHECKPOINT_INTERVAL;

const BODIES: TableDefinition<&[u8; 32], &[u8; 16]> = TableDefinition::new("bodies");
const SEGMENTS: TableDefinition<u32, &[u8; 20]> = TableDefinition::new("segments");
const META: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("meta");
/// Height (big-endian) ‖ hash of every block in `meta`: its blocks in height order.
const HEIGHTS: TableDefinition<&[u8; 40], u8> = TableDefinition::new("heights");
const CANONICAL: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("canonical");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
/// Height → the block hash and the length of its state bytes.
const CHECKPOINTS: TableDefinition<u64, &[u8; 40]> = TableDefinition::new("checkpoints");
const CHECKPOINT_STATE: TableDefinition<u64, &[u8]> = TableDefinition::new("checkpoint_state");

/// What the chain remembers about every valid block besides its body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Block hash.
    pub hash: Hash32,
    /// Height.
    pub height: u64,
    /// Parent hash.
    pub parent: Hash32,
    /// Header timestamp.
    pub timestamp_ms: u64,
    /// Header target.
    pub target: Hash32,
    /// Cumulative work up to and including this block (256-bit big-endian).
    pub total_work: Hash32,
    /// Model hash after this block.
    pub model_hash: Hash32,
    /// The header's state root (model and registry after this block).
    pub state_root: Hash32,
    /// Number of submissions in the body.
    pub submissions: u32,
    /// Number of registrations in the body.
    pub registrations: u32,
    /// The miner's key.
    pub miner: Hash32,
    /// Header version.
    pub version: u32,
    /// Header body root.
    pub body_root: Hash32,
    /// Header nonce.
    pub nonce: u64,
}

impl BlockMeta {
    /// The meta of a block with header `h` (hash `hash`), cumulative work `total_work`,
    /// the model hash after it and its body counts.
    pub fn of(h: &Header, hash: Hash32, total_work: Hash32, model_hash: Hash32, submissions: u32, registrations: u32) -> Self {
        BlockMeta {
            hash,
            height: h.height,
            parent: h.parent,
            timestamp_ms: h.timestamp_ms,
            target: h.target,
            total_work,
            model_hash,
            state_root: h.state_root,
            submissions,
            registrations,
            miner: h.miner,
            version: h.version,
            body_root: h.body_root,
            nonce: h.nonce,
        }
    }

    /// The block's header, rebuilt from the meta (so a pruned node serves headers without
    /// bodies).
    pub fn header(&self, chain_id: &Hash32) -> Header {
        Header {
            version: self.version,
            chain_id: *chain_id,
            height: self.height,
            parent: self.parent,
            timestamp_ms: self.timestamp_ms,
            target: self.target,
            miner: self.miner,
            body_root: self.body_root,
            state_root: self.state_root,
            nonce: self.nonce,
        }
    }
}

/// The state after one block, as a checkpoint stores it.
pub struct Checkpoint<'a> {
    /// The block's height.
    pub height: u64,
    /// The block's hash.
    pub hash: Hash32,
    /// The model after it.
    pub model: &'a [i32],
    /// Its hash (the block's `model_hash`), stored with it and checked when read.
    pub model_hash: Hash32,
    /// The member registry after it.
    pub registry: &'a Registry,
}

/// A move of the head, written with the block that causes it.
pub struct HeadChange<'a> {
    /// The new head.
    pub head: Hash32,
    /// Its height; canonical entries above it are removed.
    pub height: u64,
    /// Canonical entries to (re)write, from the fork point up to the new head.
    pub canonical: Vec<(u64, Hash32)>,
    /// A checkpoint of the state after the new head, when one is due.
    pub checkpoint: Option<Checkpoint<'a>>,
    /// Bodies to drop (a pruned node's blocks that fell below the heights it keeps), and
    /// the lowest height whose bodies are kept from now on.
    pub prune: Option<(Vec<Hash32>, u64)>,
}

/// The redb database and block segments of one node.
pub struct Store {
    db: Database,
    segments: Segments,
}

impl Store {
    /// Opens or creates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, ChainError> {
        Store::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// [`Store::open`] with a page cache of `cache_bytes` (redb's own default is 1 GiB,
    /// which a long chain fills: the node's memory would grow with its chain).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, ChainError> {
        let db = redb::Builder::new().set_cache_size(cache_bytes).create(path)?;
        let tx = db.begin_write()?;
        {
            tx.open_table(BODIES)?;
            tx.open_table(SEGMENTS)?;
            tx.open_table(META)?;
            tx.open_table(HEIGHTS)?;
            tx.open_table(CANONICAL)?;
            tx.open_table(STATE)?;
        }
        tx.commit()?;
        let rtx = db.begin_read()?;
        let state = rtx.open_table(STATE)?;
        if state.get("chain_id")?.is_some() {
            let schema = match state.get("schema")? {
                Some(v) => v.value().try_into().map(u32::from_le_bytes).unwrap_or(0),
                None => 1,
            };
            if schema != SCHEMA_VERSION {
                return Err(ChainError::Schema { found: schema, expected: SCHEMA_VERSION });
            }
        }
        let mut records = std::collections::BTreeMap::new();
        for row in rtx.open_table(SEGMENTS)?.iter()? {
            let (k, v) = row?;
            records.insert(k.value(), SegmentInfo::from_bytes(v.value()));
        }
        drop((state, rtx));
        let segments = Segments::open(&path.with_extension("blocks"), &records)?;
        Ok(Store { db, segments })
    }

    /// Block segments close at [`ARCHIVE_SEGMENT_BYTES`] or `max_blocks` from the next block
    /// on: for a pruned node a fraction of the heights it keeps (see [`crate::bodies`]).
    pub fn set_segment_blocks(&self, max_blocks: u32) {
        self.segments.set_limits(ARCHIVE_SEGMENT_BYTES, max_blocks);
    }

    /// The chain id stored at initialisation, if any.
    pub fn chain_id(&self) -> Result<Option<Hash32>, ChainError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(STATE)?;
        Ok(match t.get("chain_id")? {
            Some(v) if v.value().len() == 32 => {
                let mut h = [0u8; 32];
                h.copy_from_slice(v.value());
                Some(Hash32(h))
            }
            Some(_) => return Err(ChainError::Corrupt("chain id has a bad length".into())),
            None => None,
        })
    }

    /// Writes the genesis block and initial state in one transaction.
    pub fn init(&self, chain_id: &Hash32, genesis: &Block, meta: &BlockMeta, model: &[i32], registry: &Registry) -> Result<(), ChainError> {
        let body = self.segments.prepare(&encoding::encode(genesis), 0)?;
        let tx = self.db.begin_write()?;
        {
            let mut state = tx.open_table(STATE)?;
            state.insert("schema", SCHEMA_VERSION.to_le_bytes().as_slice())?;
            state.insert("chain_id", chain_id.0.as_slice())?;
            state.insert("head", meta.hash.0.as_slice())?;
            tx.open_table(BODIES)?.insert(&meta.hash.0, &body.loc.to_bytes())?;
            tx.open_table(SEGMENTS)?.insert(body.loc.segment, &body.info.to_bytes())?;
            tx.open_table(META)?.insert(&meta.hash.0, encoding::encode(meta).as_slice())?;
            tx.open_table(HEIGHTS)?.insert(&height_key(meta), 0)?;
            tx.open_table(CANONICAL)?.insert(0, &meta.hash.0)?;
        }
        let checkpoint = Checkpoint { height: 0, hash: meta.hash, model, model_hash: meta.model_hash, registry };
        write_checkpoint(&tx, &checkpoint)?;
        tx.commit()?;
        self.segments.committed(&body);
        Ok(())
    }

    /// The stored meta of `hash`.
    pub fn meta(&self, hash: &Hash32) -> Result<Option<BlockMeta>, ChainError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(META)?;
        t.get(&hash.0)?.map(|v| decode_meta(v.value())).transpose()
    }

    /// The stored metas of every block at `min_height` or above, on every branch, in height
    /// order.
    pub fn metas_from(&self, min_height: u64) -> Result<Vec<BlockMeta>, ChainError> {
        let tx = self.db.begin_read()?;
        let heights = tx.open_table(HEIGHTS)?;
        let metas = tx.open_table(META)?;
        let mut out = Vec::new();
        let from = height_prefix(min_height);
        for row in heights.range::<&[u8; 40]>(&from..)? {
            let (k, _) = row?;
            let hash: &[u8; 32] = k.value()[8..].try_into().map_err(|_| ChainError::Corrupt("height index key".into()))?;
            let v = metas.get(hash)?.ok_or_else(|| ChainError::Corrupt(format!("block {} is indexed by height but has no meta", Hash32(*hash))))?;
            out.push(decode_meta(v.value())?);
        }
        Ok(out)
    }

    /// The hashes of every stored block with a height in `from..to`, on every branch.
    pub fn hashes_between(&self, from: u64, to: u64) -> Result<Vec<Hash32>, ChainError> {
        let tx = self.db.begin_read()?;
        let heights = tx.open_table(HEIGHTS)?;
        let mut out = Vec::new();
        let (lo, hi) = (height_prefix(from), height_prefix(to));
        for row in heights.range::<&[u8; 40]>(&lo..&hi)? {
            let (k, _) = row?;
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&k.value()[8..]);
            out.push(Hash32(hash));
        }
        Ok(out)
    }

    /// The head hash.
    pub fn head(&self) -> Result<Hash32, ChainError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(STATE)?;
        let head = t.get("head")?.ok_or_else(|| ChainError::Corrupt("no head".into()))?;
        Ok(Hash32(head.value().try_into().map_err(|_| ChainError::Corrupt("head has a bad length".into()))?))
    }

    /// The lowest height whose block bodies are stored (0 unless the node prunes).
    pub fn body_floor(&self) -> Result<u64, ChainError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(STATE)?;
        Ok(match t.get("body_floor")? {
            Some(v) => u64::from_le_bytes(v.value().try_into().map_err(|_| ChainError::Corrupt("body floor has a bad length".into()))?),
            None => 0,
        })
    }

    /// The stored checkpoints: height, block hash and the length of the state bytes
    /// ([`Store::checkpoint_slice`]), lowest first.
    pub fn checkpoints(&self) -> Result<Vec<(u64, Hash32, u64)>, ChainError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(CHECKPOINTS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let (hash, len) = split_index(v.value());
            out.push((k.value(), hash, len));
        }
        Ok(out)
    }

    /// At most `len` state bytes of the checkpoint at `height` from byte `start` (empty past
    /// the end), with its block hash: one snapshot chunk, copied alone. The state bytes are
    /// the model's hash and length, the weights and the registry (see [`parse_state`]).
    pub fn checkpoint_slice(&self, height: u64, start: usize, len: usize) -> Result<Option<(Hash32, Vec<u8>)>, ChainError> {
        let tx = self.db.begin_read()?;
        let Some(hash) = tx.open_table(CHECKPOINTS)?.get(height)?.map(|v| split_index(v.value()).0) else {
            return Ok(None);
        };
        let t = tx.open_table(CHECKPOINT_STATE)?;
        let blob = t.get(height)?.ok_or_else(|| ChainError::Corrupt(format!("checkpoint {height} has no state")))?;
        let bytes = blob.value();
        let from = start.min(bytes.len());
        Ok(Some((hash, bytes[from..from.saturating_add(len).min(bytes.len())].to_vec())))
    }

    /// The checkpoint at `height`: the block hash, the model after it (checked against its
    /// stored hash) and the registry after it.
    pub fn checkpoint(&self, height: u64) -> Result<Option<(Hash32, Vec<i32>, Registry)>, ChainError> {
        let Some((hash, blob)) = self.checkpoint_slice(height, 0, usize::MAX)? else {
            return Ok(None);
        };
        let (model, registry) =
            parse_state(&blob).map_err(|e| ChainError::Corrupt(format!("checkpoint at height {height}: {e}")))?;
        Ok(Some((hash, model, registry)))
    }

    /// Writes a checked snapshot into a fresh store in one transaction: the metas of every
    /// block up to the snapshot's (known by header only), the canonical index, the
    /// checkpoint of the snapshot's state and the head; bodies are kept from the block after
    /// it on.
    pub fn install_snapshot(&self, metas: &[BlockMeta], checkpoint: &Checkpoint<'_>) -> Result<(), ChainError> {
        let tx = self.db.begin_write()?;
        {
            let mut meta_table = tx.open_table(META)?;
            let mut heights = tx.open_table(HEIGHTS)?;
            let mut canonical = tx.open_table(CANONICAL)?;
            for m in metas {
                meta_table.insert(&m.hash.0, encoding::encode(m).as_slice())?;
                heights.insert(&height_key(m), 0)?;
                canonical.insert(m.height, &m.hash.0)?;
            }
            let mut state = tx.open_table(STATE)?;
            state.insert("head", checkpoint.hash.0.as_slice())?;
            state.insert("body_floor", (checkpoint.height + 1).to_le_bytes().as_slice())?;
        }
        write_checkpoint(&tx, checkpoint)?;
        tx.commit()?;
        Ok(())
    }

    /// A stored block.
    pub fn block(&self, hash: &Hash32) -> Result<Option<Block>, ChainError> {
        match self.block_bytes(hash)? {
            Some(bytes) => Ok(Some(
                encoding::decode(&bytes, MAX_MESSAGE_BYTES).map_err(|e| ChainError::Corrupt(format!("block {hash}: {e}")))?,
            )),
            None => Ok(None),
        }
    }

    /// A stored block's bytes, as received (its canonical encoding).
    pub fn block_bytes(&self, hash: &Hash32) -> Result<Option<Vec<u8>>, ChainError> {
        let loc = {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(BODIES)?;
            match t.get(&hash.0)? {
                Some(v) => Loc::from_bytes(v.value()),
                None => return Ok(None),
            }
        };
        if loc.len as usize > MAX_MESSAGE_BYTES {
            return Err(ChainError::Corrupt(format!("block {hash} is indexed with {} bytes, over any block's limit", loc.len)));
        }
        self.segments.read(loc).map(Some)
    }

    /// The canonical hash at `height`.
    pub fn canonical(&self, height: u64) -> Result<Option<Hash32>, ChainError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(CANONICAL)?;
        Ok(t.get(height)?.map(|v| Hash32(*v.value())))
    }

    /// Stores a validated block, and moves the head if `head` says so, atomically.
    pub fn commit(&self, block: &Block, meta: &BlockMeta, head: Option<HeadChange<'_>>) -> Result<(), ChainError> {
        let body = self.segments.prepare(&encoding::encode(block), meta.height)?;
        let mut dropped = Vec::new();
        let tx = self.db.begin_write()?;
        {
            tx.open_table(BODIES)?.insert(&meta.hash.0, &body.loc.to_bytes())?;
            let mut segments = tx.open_table(SEGMENTS)?;
            segments.insert(body.loc.segment, &body.info.to_bytes())?;
            tx.open_table(META)?.insert(&meta.hash.0, encoding::encode(meta).as_slice())?;
            tx.open_table(HEIGHTS)?.insert(&height_key(meta), 0)?;
            if let Some(change) = &head {
                let mut canonical = tx.open_table(CANONICAL)?;
                let stale: Vec<u64> = canonical
                    .range(change.height + 1..)?
                    .map(|r| r.map(|(k, _)| k.value()))
                    .collect::<Result<_, _>>()?;
                for h in stale {
                    canonical.remove(h)?;
                }
                for (h, hash) in &change.canonical {
                    canonical.insert(*h, &hash.0)?;
                }
                let mut state = tx.open_table(STATE)?;
                state.insert("head", change.head.0.as_slice())?;
                if let Some((bodies, floor)) = &change.prune {
                    let mut index = tx.open_table(BODIES)?;
                    for hash in bodies {
                        index.remove(&hash.0)?;
                    }
                    state.insert("body_floor", floor.to_le_bytes().as_slice())?;
                    // Whole segments below the floor go; the one being written to stays.
                    for row in segments.iter()? {
                        let (k, v) = row?;
                        if k.value() < body.loc.segment && SegmentInfo::from_bytes(v.value()).max_height < *floor {
                            dropped.push(k.value());
                        }
                    }
                    for id in &dropped {
                        segments.remove(*id)?;
                    }
                }
            }
        }
        if let Some(checkpoint) = head.as_ref().and_then(|c| c.checkpoint.as_ref()) {
            write_checkpoint(&tx, checkpoint)?;
        }
        tx.commit()?;
        self.segments.committed(&body);
        self.segments.remove(&dropped);
        Ok(())
    }
}

/// Writes `c` and drops the checkpoints more than [`CHECKPOINT_SPAN`] below it (but
/// genesis's), in `tx`.
fn write_checkpoint(tx: &redb::WriteTransaction, c: &Checkpoint<'_>) -> Result<(), ChainError> {
    let mut index = tx.open_table(CHECKPOINTS)?;
    let mut states = tx.open_table(CHECKPOINT_STATE)?;
    let blob = state_bytes(c);
    let mut entry = [0u8; 40];
    entry[..32].copy_from_slice(&c.hash.0);
    entry[32..].copy_from_slice(&(blob.len() as u64).to_le_bytes());
    index.insert(c.height, &entry)?;
    states.insert(c.height, blob.as_slice())?;
    let floor = c.height.saturating_sub(CHECKPOINT_SPAN);
    let old: Vec<u64> = index.range(1..floor)?.map(|r| r.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
    for h in old {
        index.remove(h)?;
        states.remove(h)?;
    }
    Ok(())
}

fn decode_meta(bytes: &[u8]) -> Result<BlockMeta, ChainError> {
    encoding::decode(bytes, 4096).map_err(|e| ChainError::Corrupt(format!("block meta: {e}")))
}

/// The `heights` key of a block: its height, big-endian (so keys sort by height), and hash.
fn height_key(m: &BlockMeta) -> [u8; 40] {
    let mut k = height_prefix(m.height);
    k[8..].copy_from_slice(&m.hash.0);
    k
}

/// The lowest `heights` key at `height`.
fn height_prefix(height: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&height.to_be_bytes());
    k
}

fn split_index(v: &[u8; 40]) -> (Hash32, u64) {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&v[..32]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&v[32..]);
    (Hash32(hash), u64::from_le_bytes(len))
}

/// The state bytes of a checkpoint, as stored and as served in snapshot chunks: the model's
/// hash and parameter count (`u64`), its weights (`i32`, little-endian), then the
/// registry's canonical encoding.
pub fn state_bytes(c: &Checkpoint<'_>) -> Vec<u8> {
    let registry = encoding::encode(c.registry);
    let mut out = Vec::with_capacity(40 + c.model.len() * 4 + registry.len());
    out.extend_from_slice(&c.model_hash.0);
    out.extend_from_slice(&(c.model.len() as u64).to_le_bytes());
    for v in c.model {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&registry);
    out
}

/// The model and registry of [`state_bytes`], the model checked against the hash the bytes
/// carry (the caller checks that hash, with the registry's, against a state root).
pub fn parse_state(bytes: &[u8]) -> Result<(Vec<i32>, Registry), String> {
    let (hash, rest) = bytes.split_at_checked(32).ok_or("too short")?;
    let (len, rest) = rest.split_at_checked(8).ok_or("too short")?;
    let len = u64::from_le_bytes(len.try_into().map_err(|_| "bad length")?);
    let model_bytes = usize::try_from(len).ok().and_then(|n| n.checked_mul(4)).filter(|&n| n <= rest.len()).ok_or("model length past the end")?;
    let (weights, registry) = rest.split_at(model_bytes);
    let model: Vec<i32> = weights.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    if model_hash(&model).0 != hash {
        return Err("the model does not match its hash".into());
    }
    let registry = encoding::decode(registry, MAX_MESSAGE_BYTES).map_err(|e| format!("registry: {e}"))?;
    Ok((model, registry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_of_another_schema_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chain.redb");
        {
            // A store as written before schemas were recorded: a chain id, no schema.
            let store = Store::open(&path).expect("create");
            let tx = store.db.begin_write().expect("tx");
            tx.open_table(STATE).expect("table").insert("chain_id", [7u8; 32].as_slice()).expect("insert");
            tx.commit().expect("commit");
        }
        let err = Store::open(&path).err().expect("refused");
        assert!(matches!(err, ChainError::Schema { found: 1, expected: SCHEMA_VERSION }), "{err}");
        assert!(err.to_string().contains("fresh --data-dir"), "{err}");
    }
}
