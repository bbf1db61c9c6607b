//! Snapshots: the state after a recent block, served to and installed by a node that
//! starts without history.
//!
//! A node serves the checkpoints of its best chain ([`crate::store`]) as snapshots: the
//! list ([`Chain::snapshots`]), their bytes in chunks ([`Chain::snapshot_chunk`]) and the
//! headers of its best chain ([`Chain::headers_by_range`], rebuilt from the metas, so a
//! pruned node serves them too). A fresh node checks a header chain from genesis up to the
//! snapshot's block exactly as import checks headers — version, chain, height, parent,
//! proof of work against the retarget rule, median time past, future drift — and the
//! snapshot's model and registry against that block's state root, then installs them in
//! one store transaction ([`Chain::install_snapshot`]). Blocks after the snapshot are then
//! imported in full; those before it are known by header only (their metas carry a zero
//! model hash and no body counts).

use learnchain_proto::hash::{model_hash, state_root};
use learnchain_proto::header::HEADER_VERSION;
use learnchain_proto::sync::{MAX_SNAPSHOTS_LISTED, SNAPSHOT_CHUNK_BYTES, SnapshotInfo};
use learnchain_proto::{Hash32, Header};

use super::Chain;
use crate::error::{BlockError, ChainError, SnapshotError};
use crate::pow::{meets_target, target_to_u256, u256_to_hash, work};
use crate::store::{BlockMeta, Checkpoint, parse_state};

impl Chain {
    /// The snapshots this node serves: its checkpoints on the best chain above genesis,
    /// highest first, at most [`MAX_SNAPSHOTS_LISTED`].
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>, ChainError> {
        let mut out = Vec::new();
        for (height, block, bytes) in self.store.checkpoints()?.into_iter().rev() {
            if out.len() == MAX_SNAPSHOTS_LISTED {
                break;
            }
            if height > 0 && height <= self.head().height && self.store.canonical(height)? == Some(block) {
                out.push(SnapshotInfo { height, block, bytes });
            }
        }
        Ok(out)
    }

    /// Chunk `index` of the snapshot of block `block`, if this node serves it.
    pub fn snapshot_chunk(&self, block: &Hash32, index: u32) -> Result<Option<Vec<u8>>, ChainError> {
        let Some(meta) = self.meta_of(block)? else { return Ok(None) };
        let start = (index as usize).saturating_mul(SNAPSHOT_CHUNK_BYTES);
        match self.store.checkpoint_slice(meta.height, start, SNAPSHOT_CHUNK_BYTES)? {
            Some((hash, bytes)) if hash == *block && !bytes.is_empty() => Ok(Some(bytes)),
            _ => Ok(None),
        }
    }

    /// Canonical headers from `start`, at most `count`.
    pub fn headers_by_range(&self, start: u64, count: u32) -> Result<Vec<Header>, ChainError> {
        let top = self.head().height;
        let mut out = Vec::new();
        for height in start..start.saturating_add(u64::from(count)).min(top + 1) {
            let Some(hash) = self.store.canonical(height)? else { break };
            let meta = self.meta_of(&hash)?.ok_or_else(|| ChainError::Corrupt(format!("canonical block {hash} has no meta")))?;
            out.push(meta.header(&self.chain_id));
        }
        Ok(out)
    }

    /// Whether the chain holds nothing but genesis: the only kind a snapshot installs into.
    pub fn is_fresh(&self) -> bool {
        self.metas.len() == 1 && self.head().height == 0
    }

    /// Checks `headers` (heights 1 to the snapshot's, in order) and `state` (the snapshot's
    /// bytes, see [`crate::store::state_bytes`]) and installs them: the last header's block
    /// becomes the head, with the state as its model and registry. The chain must be fresh.
    /// On any error nothing is changed.
    pub fn install_snapshot(&mut self, headers: &[Header], state: &[u8], now: u64) -> Result<BlockMeta, SnapshotError> {
        if !self.is_fresh() {
            return Err(SnapshotError::NotFresh(self.head().height));
        }
        let last = headers.last().ok_or(SnapshotError::NoHeaders)?;
        let (model, registry) = parse_state(state).map_err(SnapshotError::Malformed)?;
        if model.len() != self.genesis.param_count() {
            return Err(SnapshotError::Malformed(format!(
                "a model of {} parameters, the genesis has {}",
                model.len(),
                self.genesis.param_count()
            )));
        }
        let computed_model = model_hash(&model);
        let root = state_root(&computed_model, &registry.hash());
        if root != last.state_root {
            return Err(SnapshotError::StateRoot { height: last.height, expected: last.state_root, got: root });
        }
        // Check the header chain, adding metas as it goes (the retarget and median time
        // past read the ones before); taken out again on failure.
        let mut added: Vec<BlockMeta> = Vec::with_capacity(headers.len());
        let mut parent = self.head().clone();
        let checked = headers.iter().try_for_each(|h| {
            let meta = self.check_header(h, &parent, now)?;
            self.metas.insert(meta.clone());
            added.push(meta.clone());
            parent = meta;
            Ok::<_, SnapshotError>(())
        });
        if let Err(e) = checked {
            for m in &added {
                self.metas.remove(&m.hash);
            }
            return Err(e);
        }
        let top = added.last_mut().ok_or(SnapshotError::NoHeaders)?;
        top.model_hash = computed_model;
        let top = top.clone();
        self.metas.insert(top.clone());
        let checkpoint =
            Checkpoint { height: top.height, hash: top.hash, model: &model, model_hash: computed_model, registry: &registry };
        if let Err(e) = self.store.install_snapshot(&added, &checkpoint) {
            for m in &added {
                self.metas.remove(&m.hash);
            }
            return Err(SnapshotError::Storage(e.to_string()));
        }
        self.head = top.hash;
        self.head_meta = top.clone();
        self.metas.evict_below(top.height.saturating_sub(super::META_WINDOW));
        self.head_model = model;
        self.registry = registry;
        self.body_floor = top.height + 1;
        Ok(top)
    }

    /// The header checks of import, for a header whose parent is `parent`; the meta of the
    /// block (a zero model hash and no body counts: only its header is known).
    fn check_header(&self, h: &Header, parent: &BlockMeta, now: u64) -> Result<BlockMeta, SnapshotError> {
        let at = |error: BlockError| SnapshotError::Header { height: h.height, error };
        if h.version != HEADER_VERSION {
            return Err(at(BlockError::Version(h.version)));
        }
        if h.chain_id != self.chain_id {
            return Err(at(BlockError::WrongChain { expected: self.chain_id, got: h.chain_id }));
        }
        if h.parent != parent.hash {
            return Err(at(BlockError::UnknownParent(h.parent)));
        }
        let hash = h.hash();
        if !meets_target(&hash, &h.target) {
            return Err(at(BlockError::InsufficientWork));
        }
        self.check_header_on(h, parent, now).map_err(at)?;
        let total = target_to_u256(&parent.total_work).saturating_add(work(&h.target));
        Ok(BlockMeta::of(h, hash, u256_to_hash(total), Hash32::ZERO, 0, 0))
    }
}
