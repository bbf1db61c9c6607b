//! Durable block store on redb.
//!
//! Tables: `blocks` (hash → canonical block encoding), `meta` (hash → [`BlockMeta`]) for every
//! valid block including side branches, `canonical` (height → hash) for the best chain, and
//! `state` with the store schema, the chain id, the head hash, the head's model (raw
//! little-endian `i32`s, with its hash so corruption is noticed on open) and the member
//! registry after the head.
//!
//! Each imported block is one write transaction ([`Store::commit`]): the block, its meta and,
//! when the head moves, the canonical index, head, model and (if it changed) registry all land
//! together or not at all.
//! redb's copy-on-write commits are crash-safe, so `kill -9` at any point leaves either the
//! state before or after the block.

use std::path::Path;

use learnchain_proto::encoding::{self, MAX_MESSAGE_BYTES};
use learnchain_proto::hash::model_hash;
use learnchain_proto::{Block, Hash32};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::ChainError;
use crate::registry::Registry;

/// The layout this code reads and writes. A data directory written by another layout is
/// refused on open with a message saying so, never read as if it were this one.
pub const SCHEMA_VERSION: u32 = 3;

const BLOCKS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blocks");
const META: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("meta");
const CANONICAL: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("canonical");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");

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
    /// Number of submissions in the body.
    pub submissions: u32,
    /// Number of registrations in the body.
    pub registrations: u32,
    /// The miner's key.
    pub miner: Hash32,
}

/// A move of the head, written with the block that causes it.
pub struct HeadChange<'a> {
    /// The new head.
    pub head: Hash32,
    /// Its height; canonical entries above it are removed.
    pub height: u64,
    /// Canonical entries to (re)write, from the fork point up to the new head.
    pub canonical: Vec<(u64, Hash32)>,
    /// The model after the new head.
    pub model: &'a [i32],
    /// Its hash (the new head's `model_hash`), stored with it and checked on open.
    pub model_hash: Hash32,
    /// The registry after the new head, when it differs from the stored one.
    pub registry: Option<&'a Registry>,
}

/// The redb database of one node.
pub struct Store {
    db: Database,
}

/// The stored form of a model: its hash (already computed by the caller), then the weights.
fn model_bytes(model: &[i32], hash: &Hash32) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + model.len() * 4);
    out.extend_from_slice(&hash.0);
    for v in model {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn model_from_bytes(bytes: &[u8]) -> Result<Vec<i32>, ChainError> {
    if bytes.len() < 32 || !(bytes.len() - 32).is_multiple_of(4) {
        return Err(ChainError::Corrupt("stored model has a bad length".into()));
    }
    let model: Vec<i32> = bytes[32..]
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if model_hash(&model).0 != bytes[..32] {
        return Err(ChainError::Corrupt("stored model does not match its hash".into()));
    }
    Ok(model)
}

impl Store {
    /// Opens or creates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, ChainError> {
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        {
            tx.open_table(BLOCKS)?;
            tx.open_table(META)?;
            tx.open_table(CANONICAL)?;
            tx.open_table(STATE)?;
        }
        tx.commit()?;
        let store = Store { db };
        if store.chain_id()?.is_some() {
            let tx = store.db.begin_read()?;
            let t = tx.open_table(STATE)?;
            let schema = match t.get("schema")? {
                Some(v) => v.value().try_into().map(u32::from_le_bytes).unwrap_or(0),
                None => 1,
            };
            if schema != SCHEMA_VERSION {
                return Err(ChainError::Schema { found: schema, expected: SCHEMA_VERSION });
            }
        }
        Ok(store)
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
    pub fn init(
        &self,
        chain_id: &Hash32,
        genesis: &Block,
        meta: &BlockMeta,
        model: &[i32],
        registry: &Registry,
    ) -> Result<(), ChainError> {
        let tx = self.db.begin_write()?;
        {
            let mut state = tx.open_table(STATE)?;
            state.insert("schema", SCHEMA_VERSION.to_le_bytes().as_slice())?;
            state.insert("chain_id", chain_id.0.as_slice())?;
            state.insert("registry", encoding::encode(registry).as_slice())?;
            state.insert("head", meta.hash.0.as_slice())?;
            state.insert("model", model_bytes(model, &meta.model_hash).as_slice())?;
            tx.open_table(BLOCKS)?.insert(&meta.hash.0, encoding::encode(genesis).as_slice())?;
            tx.open_table(META)?.insert(&meta.hash.0, encoding::encode(meta).as_slice())?;
            tx.open_table(CANONICAL)?.insert(0, &meta.hash.0)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every stored block meta.
    pub fn metas(&self) -> Result<Vec<BlockMeta>, ChainError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(META)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            let meta: BlockMeta = encoding::decode(v.value(), 4096)
                .map_err(|e| ChainError::Corrupt(format!("block meta: {e}")))?;
            out.push(meta);
        }
        Ok(out)
    }

    /// The head hash and model.
    pub fn head(&self) -> Result<(Hash32, Vec<i32>), ChainError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(STATE)?;
        let head = t.get("head")?.ok_or_else(|| ChainError::Corrupt("no head".into()))?;
        let head = Hash32(
            head.value().try_into().map_err(|_| ChainError::Corrupt("head has a bad length".into()))?,
        );
        let model = t.get("model")?.ok_or_else(|| ChainError::Corrupt("no model".into()))?;
        Ok((head, model_from_bytes(model.value())?))
    }

    /// The registry after the head.
    pub fn registry(&self) -> Result<Registry, ChainError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(STATE)?;
        let bytes = t.get("registry")?.ok_or_else(|| ChainError::Corrupt("no registry".into()))?;
        encoding::decode(bytes.value(), MAX_MESSAGE_BYTES).map_err(|e| ChainError::Corrupt(format!("registry: {e}")))
    }

    /// A stored block.
    pub fn block(&self, hash: &Hash32) -> Result<Option<Block>, ChainError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(BLOCKS)?;
        match t.get(&hash.0)? {
            Some(v) => Ok(Some(
                encoding::decode(v.value(), MAX_MESSAGE_BYTES)
                    .map_err(|e| ChainError::Corrupt(format!("block {hash}: {e}")))?,
            )),
            None => Ok(None),
        }
    }

    /// The canonical hash at `height`.
    pub fn canonical(&self, height: u64) -> Result<Option<Hash32>, ChainError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(CANONICAL)?;
        Ok(t.get(height)?.map(|v| Hash32(*v.value())))
    }

    /// Stores a validated block, and moves the head if `head` says so, atomically.
    pub fn commit(&self, block: &Block, meta: &BlockMeta, head: Option<HeadChange<'_>>) -> Result<(), ChainError> {
        let tx = self.db.begin_write()?;
        {
            tx.open_table(BLOCKS)?.insert(&meta.hash.0, encoding::encode(block).as_slice())?;
            tx.open_table(META)?.insert(&meta.hash.0, encoding::encode(meta).as_slice())?;
            if let Some(change) = head {
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
                state.insert("model", model_bytes(change.model, &change.model_hash).as_slice())?;
                if let Some(registry) = change.registry {
                    state.insert("registry", encoding::encode(registry).as_slice())?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
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
