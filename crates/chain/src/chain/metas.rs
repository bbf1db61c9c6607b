//! The block metas a chain reads: the recent ones in memory, the rest from the store.
//!
//! Every valid block's meta is in the store's `meta` table. The metas of blocks at most
//! [`META_WINDOW`] heights below the head, on every branch, are also held here; older ones
//! are read from the store when asked (an old block looked up over RPC, the headers a
//! snapshot serves, a fork deeper than the window). What validation of the next block reads
//! — the parent, the retarget's and the median time past's ancestors, a recent fork point —
//! is in memory, and the memory a chain holds for metas does not grow with its length.
//!
//! Metas enter when a block is committed or a snapshot installed ([`Metas::insert`]) and
//! when the chain is opened (the window below the stored head); they leave memory as the
//! head moves past them ([`Metas::evict_below`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use learnchain_proto::Hash32;

use crate::error::ChainError;
use crate::store::{BlockMeta, Store};

/// Heights below the head whose metas are held in memory (about 1.5 MB of them). This
/// crate's unit tests run with 16, so that their reorgs, pruning and snapshots read old
/// metas from the store.
pub const META_WINDOW: u64 = if cfg!(test) { 16 } else { 4096 };

/// The recent metas of one chain.
#[derive(Default)]
pub(crate) struct Metas {
    recent: HashMap<Hash32, BlockMeta>,
    by_height: BTreeMap<u64, Vec<Hash32>>,
}

impl Metas {
    /// Holds `metas`.
    pub(crate) fn from_metas(metas: impl IntoIterator<Item = BlockMeta>) -> Self {
        let mut out = Metas::default();
        for m in metas {
            out.insert(m);
        }
        out
    }

    /// Holds `meta` (replacing one of the same hash).
    pub(crate) fn insert(&mut self, meta: BlockMeta) {
        let (hash, height) = (meta.hash, meta.height);
        if self.recent.insert(hash, meta).is_none() {
            self.by_height.entry(height).or_default().push(hash);
        }
    }

    /// Forgets `hash` (a block whose commit failed, or headers of a failed snapshot).
    pub(crate) fn remove(&mut self, hash: &Hash32) {
        if let Some(m) = self.recent.remove(hash)
            && let Some(at) = self.by_height.get_mut(&m.height)
        {
            at.retain(|h| h != hash);
            if at.is_empty() {
                self.by_height.remove(&m.height);
            }
        }
    }

    /// Drops from memory the metas below `height` (they stay in the store).
    pub(crate) fn evict_below(&mut self, height: u64) {
        let keep = self.by_height.split_off(&height);
        for hash in std::mem::replace(&mut self.by_height, keep).into_values().flatten() {
            self.recent.remove(&hash);
        }
    }

    /// A meta held in memory.
    pub(crate) fn recent(&self, hash: &Hash32) -> Option<&BlockMeta> {
        self.recent.get(hash)
    }

    /// The meta of `hash`, from memory or else from `store`.
    pub(crate) fn get<'a>(&'a self, store: &Store, hash: &Hash32) -> Result<Option<Cow<'a, BlockMeta>>, ChainError> {
        if let Some(m) = self.recent.get(hash) {
            return Ok(Some(Cow::Borrowed(m)));
        }
        Ok(store.meta(hash)?.map(Cow::Owned))
    }

    /// Metas held in memory.
    pub(crate) fn len(&self) -> usize {
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(height: u64, tag: u8) -> BlockMeta {
        BlockMeta {
            hash: Hash32([tag; 32]),
            height,
            parent: Hash32::ZERO,
            timestamp_ms: 0,
            target: Hash32::ZERO,
            total_work: Hash32::ZERO,
            model_hash: Hash32::ZERO,
            state_root: Hash32::ZERO,
            submissions: 0,
            registrations: 0,
            miner: Hash32::ZERO,
            version: 2,
            body_root: Hash32::ZERO,
            nonce: 0,
        }
    }

    #[test]
    fn eviction_drops_every_branch_below_the_height() {
        let mut m = Metas::from_metas([meta(1, 1), meta(2, 2), meta(2, 3), meta(3, 4)]);
        m.insert(meta(2, 2));
        assert_eq!(m.len(), 4, "a meta inserted twice is held once");
        m.evict_below(3);
        assert_eq!(m.len(), 1);
        assert!(m.recent(&Hash32([4; 32])).is_some());
        assert!(m.recent(&Hash32([3; 32])).is_none());
        m.remove(&Hash32([4; 32]));
        assert_eq!(m.len(), 0);
        assert!(m.by_height.is_empty());
    }
}
