//! [`Chain`]: the node's view of the block tree, its best chain and the model at its head.
//!
//! Blocks enter through [`Chain::import`], which runs the validation pipeline
//! (`validate.rs` stage 1, then the contextual and execution stages here) and commits each
//! valid block in one store transaction. Every valid block is kept, side branches included;
//! the head is the block with the most cumulative work, and on equal work the one with the
//! lower hash. (First-seen would leave two nodes on two tips of equal work until the next
//! block — and under an aggregation rule that needs most of the data sources, such as
//! Krum, the data sources split between the tips could never fill a next block. A
//! deterministic tie-break makes every node converge at once; the lower hash is the tip
//! whose proof of work happened to go further.) Moving the head to another branch (a reorg) rewinds the integer model
//! exactly — `W_ancestor = W_head − Σ aggregates` — and replays the winning branch, so the
//! model after a reorg is bit for bit the model built straight on the winning branch. The
//! member registry is state the same way: kept for the head, rewound and replayed along the
//! path to any other block ([`Chain::registry_at`]), and turned into the rings submissions
//! on a base sign over ([`Chain::rings_at`], cached for the last few bases).
//!
//! Nothing is verified twice: a submission or registration that passed its checks when it
//! entered the pool is not verified again when a block carries it, and a block's aggregate
//! is computed once ([`crate::cache`]; chains of one process may share these caches). The
//! checks that depend on chain state run every time, so the caches never decide validity.
//!
//! The chain is synchronous and single-owner: the node keeps it in one task and feeds it
//! blocks and submissions; it never touches the network.

mod metas;
mod snapshot;

pub use metas::META_WINDOW;
use metas::Metas;

use std::path::Path;
use std::sync::Arc;

use learnchain_aggregate::{self as agg, Rule};
use learnchain_proto::block::body_root;
use learnchain_proto::genesis::AggregationRule;
use learnchain_proto::hash::{model_hash, state_root};
use learnchain_proto::header::HEADER_VERSION;
use learnchain_proto::{Block, Genesis, Hash32, Header, Registration, StatusMessage, Submission};

use crate::auth::BaseRings;
use crate::cache::{AggregateCache, ChainCaches, VerifiedSet};
use crate::difficulty::{median_time_past, next_target};
use crate::error::{BlockError, ChainError, RegistrationError, SubmissionError};
use crate::registry::{Registry, check_authorisation};
use crate::pow::{target_to_u256, u256_to_hash, work};
use crate::store::{BlockMeta, CHECKPOINT_INTERVAL, Checkpoint, HeadChange, Store};
use crate::validate::{CheckedBlock, base_norm_sq, check_submission_shape, check_update_norm, decode_update};

/// What importing a valid block did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// The block extends the best chain and is the new head.
    Extended {
        /// The new head.
        head: BlockMeta,
    },
    /// The block made another branch the best chain.
    Reorg {
        /// The new head.
        head: BlockMeta,
        /// The previous head.
        old_head: Hash32,
        /// Blocks unwound from the old branch.
        depth: u64,
    },
    /// Stored on a side branch; the head did not move.
    SideChain {
        /// The stored block.
        meta: BlockMeta,
    },
}

impl ImportOutcome {
    /// The new head, if the head moved.
    pub fn new_head(&self) -> Option<&BlockMeta> {
        match self {
            ImportOutcome::Extended { head } | ImportOutcome::Reorg { head, .. } => Some(head),
            ImportOutcome::SideChain { .. } => None,
        }
    }
}

/// A block ready for proof of work: a header with nonce 0 and the body.
#[derive(Clone, Debug)]
pub struct BlockTemplate {
    /// Header (nonce to be found).
    pub header: Header,
    /// Registrations, sorted by id.
    pub registrations: Vec<Registration>,
    /// Submissions, sorted by id.
    pub submissions: Vec<Submission>,
}

/// A block whose parent passed the contextual checks (stage 2).
struct ContextualBlock {
    checked: CheckedBlock,
    parent: BlockMeta,
}

/// A block whose post-state is computed and matches its header (stage 3).
struct ExecutedBlock {
    block: Block,
    meta: BlockMeta,
    model: Vec<i32>,
    registry: Registry,
}

/// The block tree, best chain and head model of one node.
pub struct Chain {
    genesis: Genesis,
    chain_id: Hash32,
    store: Store,
    /// Recent metas in memory, the rest in the store (see [`metas`]).
    metas: Metas,
    head: Hash32,
    /// The head's meta (also in `metas`).
    head_meta: BlockMeta,
    head_model: Vec<i32>,
    registry: Registry,
    caches: ChainCaches,
    /// `Some(n)`: keep the bodies of the last `n` heights only (see [`Chain::set_prune`]).
    prune: Option<u64>,
    /// The lowest height whose bodies are stored.
    body_floor: u64,
}

/// The fewest heights a pruned node keeps bodies for (`--prune`): it must rebuild its head
/// state from a checkpoint ([`crate::store::CHECKPOINT_SPAN`] plus an interval below the
/// head at worst) after a restart.
pub const MIN_PRUNE_KEEP: u64 = crate::store::CHECKPOINT_SPAN + crate::store::CHECKPOINT_INTERVAL;

fn rule(r: AggregationRule) -> Rule {
    r.to_rule()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Chain {
    /// Opens the chain stored at `path`, creating it from `genesis` if the file is new.
    pub fn open(path: &Path, genesis: Genesis) -> Result<Self, ChainError> {
        Chain::open_with_caches(path, genesis, ChainCaches::new())
    }

    /// [`Chain::open`] with the given caches, which chains of one process may share (see
    /// [`crate::cache`]).
    pub fn open_with_caches(path: &Path, genesis: Genesis, caches: ChainCaches) -> Result<Self, ChainError> {
        Chain::open_sized(path, genesis, caches, crate::store::DEFAULT_CACHE_BYTES)
    }

    /// [`Chain::open_with_caches`] with a store page cache of `store_cache_bytes`.
    pub fn open_sized(path: &Path, genesis: Genesis, caches: ChainCaches, store_cache_bytes: usize) -> Result<Self, ChainError> {
        let chain_id = genesis.chain_id();
        let store = Store::open_with_cache(path, store_cache_bytes)?;
        match store.chain_id()? {
            Some(found) if found != chain_id => {
                return Err(ChainError::WrongChain { expected: chain_id, found });
            }
            Some(_) => {}
            None => {
                let header = genesis.header();
                let block = Block { header: header.clone(), registrations: vec![], submissions: vec![] };
                let meta = BlockMeta::of(
                    &header,
                    header.hash(),
                    u256_to_hash(work(&header.target)),
                    model_hash(&genesis.model.initial_weights()),
                    0,
                    0,
                );
                let registry = Registry::genesis(&genesis);
                store.init(&chain_id, &block, &meta, &genesis.model.initial_weights(), &registry)?;
            }
        }
        let head = store.head()?;
        let head_meta = store.meta(&head)?.ok_or_else(|| ChainError::Corrupt(format!("head {head} has no meta")))?;
        let metas = Metas::from_metas(store.metas_from(head_meta.height.saturating_sub(META_WINDOW))?);
        let body_floor = store.body_floor()?;
        let mut chain = Chain {
            genesis,
            chain_id,
            store,
            metas,
            head,
            head_meta,
            head_model: Vec::new(),
            registry: Registry::default(),
            caches,
            prune: None,
            body_floor,
        };
        chain.restore_head()?;
        Ok(chain)
    }

    /// Rebuilds the model and registry after the head: the newest checkpoint on the best
    /// chain (see [`crate::store`]), with the blocks after it applied; checked against the
    /// head's model hash and state root.
    fn restore_head(&mut self) -> Result<(), ChainError> {
        let head = self.head().clone();
        let mut from = None;
        for (height, hash, _) in self.store.checkpoints()?.into_iter().rev() {
            if height <= head.height && self.store.canonical(height)? == Some(hash) {
                from = Some(height);
                break;
            }
        }
        let from = from.ok_or_else(|| ChainError::Corrupt("no checkpoint of the state on the best chain".into()))?;
        let (_, mut model, mut registry) = self
            .store
            .checkpoint(from)?
            .ok_or_else(|| ChainError::Corrupt(format!("checkpoint at height {from} vanished")))?;
        for height in from + 1..=head.height {
            let hash = self.store.canonical(height)?.ok_or_else(|| ChainError::Corrupt(format!("no canonical block at {height}")))?;
            let block = self.store.block(&hash)?.ok_or_else(|| {
                ChainError::Corrupt(format!("block {hash} at height {height}, needed to rebuild the state after the head, is missing"))
            })?;
            let delta = self
                .aggregate_of(&block.header.body_root, &block.submissions)
                .map_err(|e| ChainError::Corrupt(format!("stored block {hash}: {e}")))?;
            agg::apply(&mut model, &delta).map_err(|e| ChainError::Corrupt(format!("stored block {hash}: {e}")))?;
            registry
                .apply(&block.registrations, height)
                .map_err(|(i, e)| ChainError::Corrupt(format!("stored block {hash} registration {i}: {e}")))?;
        }
        let computed = model_hash(&model);
        if computed != head.model_hash || state_root(&computed, &registry.hash()) != head.state_root {
            return Err(ChainError::Corrupt("the state rebuilt from the newest checkpoint does not match the head block".into()));
        }
        self.head_model = model;
        self.registry = registry;
        Ok(())
    }

    /// Keeps the bodies of the last `keep` heights only (at least [`MIN_PRUNE_KEEP`]), or of
    /// every block (`None`, an archive node). Older bodies go as the head moves on; a branch
    /// forking below the kept heights cannot be rewound to and is refused
    /// ([`BlockError::ReorgTooDeep`]). Bodies once dropped do not come back: an archive
    /// node made from a pruned one serves what it still has.
    pub fn set_prune(&mut self, keep: Option<u64>) -> Result<(), ChainError> {
        if let Some(n) = keep
            && n < MIN_PRUNE_KEEP
        {
            return Err(ChainError::Config(format!(
                "--prune {n}: a pruned node keeps at least {MIN_PRUNE_KEEP} blocks (it rebuilds its state from a checkpoint up to that deep after a restart)"
            )));
        }
        self.prune = keep;
        // A pruned node's segments hold a sixteenth of the kept heights: at most that many
        // bodies are kept beyond `keep` (a segment goes whole).
        self.store.set_segment_blocks(keep.map_or(crate::bodies::ARCHIVE_SEGMENT_BLOCKS, |n| u32::try_from(n / 16).unwrap_or(u32::MAX)));
        Ok(())
    }

    /// The lowest height whose block bodies this node stores (0 for an archive node).
    pub fn body_floor(&self) -> u64 {
        self.body_floor
    }

    /// The stored checkpoints of the state (height and block hash, lowest first; see
    /// [`crate::store`]).
    pub fn checkpoints(&self) -> Result<Vec<(u64, Hash32)>, ChainError> {
        Ok(self.store.checkpoints()?.into_iter().map(|(h, hash, _)| (h, hash)).collect())
    }

    /// The caches this chain uses (shared with other chains of the process, or its own).
    pub fn caches(&self) -> &ChainCaches {
        &self.caches
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The chain id.
    pub fn chain_id(&self) -> Hash32 {
        self.chain_id
    }

    /// The head's meta.
    pub fn head(&self) -> &BlockMeta {
        &self.head_meta
    }

    /// The model after the head.
    pub fn head_model(&self) -> &[i32] {
        &self.head_model
    }

    /// The member registry after the head.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The member registry after block `hash` (any known block, on any branch).
    pub fn registry_at(&self, hash: &Hash32) -> Result<Registry, ChainError> {
        if *hash == self.head {
            return Ok(self.registry.clone());
        }
        let (unwind, apply) = self.path(&self.head, hash)?;
        let mut registry = self.registry.clone();
        for h in unwind {
            if let Some(block) = self.block_with_registrations(&h)? {
                registry.unapply(&block.registrations);
            }
        }
        for h in apply {
            if let Some(block) = self.block_with_registrations(&h)? {
                registry
                    .apply(&block.registrations, block.header.height)
                    .map_err(|(i, e)| ChainError::Corrupt(format!("stored block {h} registration {i}: {e}")))?;
            }
        }
        Ok(registry)
    }

    fn block_with_registrations(&self, hash: &Hash32) -> Result<Option<Block>, ChainError> {
        let meta = self.meta_of(hash)?.ok_or_else(|| ChainError::NotFound(format!("block {hash}")))?;
        if meta.registrations == 0 {
            return Ok(None);
        }
        self.store.block(hash)?.map(Some).ok_or_else(|| ChainError::NotFound(format!("block {hash}")))
    }

    /// The rings submissions based on block `base` sign over (cached for recent bases).
    pub fn rings_at(&self, base: &Hash32) -> Result<Arc<BaseRings>, ChainError> {
        self.rings_with(base, || self.registry_at(base))
    }

    /// [`Chain::rings_at`], with the registry after `base` from `registry` on a cache miss
    /// (so a caller that already holds it does not walk the chain for it again).
    fn rings_with(&self, base: &Hash32, registry: impl FnOnce() -> Result<Registry, ChainError>) -> Result<Arc<BaseRings>, ChainError> {
        // A base hash commits to the chain id (its ancestry reaches this genesis), and so
        // to the ring size: one key serves every chain of the process.
        if let Some(hit) = self.caches.rings.get(base) {
            return Ok(hit);
        }
        let registry = registry()?;
        let rings = Arc::new(BaseRings::new(&registry, base, self.genesis.consensus.ring_size));
        self.caches.rings.insert(Arc::clone(&rings));
        Ok(rings)
    }

    /// Checks a registration for the pool: its authorisation (once per registration; see
    /// [`crate::cache`]), and that it applies to the registry after the head.
    pub fn check_registration(&self, r: &Registration) -> Result<(), RegistrationError> {
        self.check_authorisation_once(r, &r.id())?;
        self.registry.check(r)
    }

    /// [`check_authorisation`], skipped for a registration with id `id` that passed it
    /// before; recorded when it passes.
    fn check_authorisation_once(&self, r: &Registration, id: &Hash32) -> Result<(), RegistrationError> {
        let key = VerifiedSet::registration_key(id);
        if self.caches.verified.contains(&key) {
            // The chain id is cheap to compare and not worth trusting to the key alone.
            return if r.chain_id == self.chain_id {
                Ok(())
            } else {
                Err(RegistrationError::WrongChain { expected: self.chain_id, got: r.chain_id })
            };
        }
        check_authorisation(&self.genesis, &self.chain_id, r)?;
        self.caches.verified.insert(key);
        Ok(())
    }

    /// Whether a block is known (a store that cannot be read knows nothing).
    pub fn contains(&self, hash: &Hash32) -> bool {
        matches!(self.meta_of(hash), Ok(Some(_)))
    }

    /// The meta of a known block (from memory for recent blocks, else from the store; a
    /// store that cannot be read finds none).
    pub fn meta(&self, hash: &Hash32) -> Option<BlockMeta> {
        self.meta_of(hash).ok().flatten().map(std::borrow::Cow::into_owned)
    }

    /// How many block metas are held in memory (at most the [`META_WINDOW`] heights below
    /// the head, on every branch).
    pub fn metas_in_memory(&self) -> usize {
        self.metas.len()
    }

    /// [`Chain::meta`], borrowed when in memory, with the store's error.
    fn meta_of(&self, hash: &Hash32) -> Result<Option<std::borrow::Cow<'_, BlockMeta>>, ChainError> {
        self.metas.get(&self.store, hash)
    }

    /// Status for the sync protocol.
    pub fn status(&self) -> StatusMessage {
        let head = self.head();
        StatusMessage {
            chain_id: self.chain_id,
            head: head.hash,
            height: head.height,
            total_work: head.total_work,
        }
    }

    /// A stored block by hash.
    pub fn block(&self, hash: &Hash32) -> Result<Option<Block>, ChainError> {
        self.store.block(hash)
    }

    /// The canonical block hash at `height`.
    pub fn canonical_hash(&self, height: u64) -> Result<Option<Hash32>, ChainError> {
        if height > self.head().height {
            return Ok(None);
        }
        self.store.canonical(height)
    }

    /// The canonical block at `height`.
    pub fn block_at(&self, height: u64) -> Result<Option<Block>, ChainError> {
        match self.canonical_hash(height)? {
            Some(h) => self.store.block(&h),
            None => Ok(None),
        }
    }

    /// Canonical blocks from `start`, at most `count`, stopping before their encoding would
    /// pass `max_bytes` (but always at least one if any exists).
    pub fn blocks_by_range(&self, start: u64, count: u32, max_bytes: usize) -> Result<Vec<Block>, ChainError> {
        self.encoded_blocks_by_range(start, count, max_bytes)?
            .iter()
            .map(|b| {
                learnchain_proto::encoding::decode(b, learnchain_proto::encoding::MAX_MESSAGE_BYTES)
                    .map_err(|e| ChainError::Corrupt(format!("stored block: {e}")))
            })
            .collect()
    }

    /// [`Chain::blocks_by_range`] as the blocks' stored bytes (their canonical encodings, as
    /// received), read without decoding: what a node serves.
    pub fn encoded_blocks_by_range(&self, start: u64, count: u32, max_bytes: usize) -> Result<Vec<Vec<u8>>, ChainError> {
        let mut out = Vec::new();
        let mut used = 64usize;
        for height in start..start.saturating_add(u64::from(count)) {
            let Some(hash) = self.canonical_hash(height)? else { break };
            let Some(bytes) = self.store.block_bytes(&hash)? else { break };
            if !out.is_empty() && used + bytes.len() > max_bytes {
                break;
            }
            used += bytes.len();
            out.push(bytes);
        }
        Ok(out)
    }

    /// A stored block's bytes as received (its canonical encoding), if its body is kept.
    pub fn block_bytes(&self, hash: &Hash32) -> Result<Option<Vec<u8>>, ChainError> {
        self.store.block_bytes(hash)
    }

    /// The model after block `hash` (any known block, on any branch).
    pub fn model_at(&self, hash: &Hash32) -> Result<Vec<i32>, ChainError> {
        if *hash == self.head {
            return Ok(self.head_model.clone());
        }
        let (unwind, apply) = self.path(&self.head, hash)?;
        let mut model = self.head_model.clone();
        for h in unwind {
            let delta = self.stored_aggregate(&h)?;
            agg::unapply(&mut model, &delta).map_err(|e| ChainError::Corrupt(e.to_string()))?;
        }
        for h in apply {
            let delta = self.stored_aggregate(&h)?;
            agg::apply(&mut model, &delta).map_err(|e| ChainError::Corrupt(e.to_string()))?;
        }
        Ok(model)
    }

    /// Turns `model`, the model after the block `hash`, into the model after its parent:
    /// undoes that block's aggregate (read from its stored body, or the aggregate cache).
    /// One step of a walk down the chain whose steps each take the chain briefly, where
    /// [`Chain::model_at`] would unwind the whole way at once.
    pub fn unwind_block(&self, hash: &Hash32, model: &mut [i32]) -> Result<(), ChainError> {
        let delta = self.stored_aggregate(hash)?;
        agg::unapply(model, &delta).map_err(|e| ChainError::Corrupt(e.to_string()))
    }

    /// The path between two known blocks: blocks to unwind from `from` (newest first, down
    /// to but excluding the common ancestor) and blocks to apply up to `to` (oldest first).
    fn path(&self, from: &Hash32, to: &Hash32) -> Result<(Vec<Hash32>, Vec<Hash32>), ChainError> {
        let get = |h: &Hash32| self.meta_of(h)?.ok_or_else(|| ChainError::NotFound(format!("block {h}")));
        let mut a = get(from)?;
        let mut b = get(to)?;
        let mut unwind = Vec::new();
        let mut apply = Vec::new();
        while a.height > b.height {
            unwind.push(a.hash);
            a = get(&a.parent)?;
        }
        while b.height > a.height {
            apply.push(b.hash);
            b = get(&b.parent)?;
        }
        while a.hash != b.hash {
            unwind.push(a.hash);
            apply.push(b.hash);
            a = get(&a.parent)?;
            b = get(&b.parent)?;
        }
        apply.reverse();
        Ok((unwind, apply))
    }

    fn stored_aggregate(&self, hash: &Hash32) -> Result<Arc<Vec<i32>>, ChainError> {
        let block = self.store.block(hash)?.ok_or_else(|| ChainError::NotFound(format!("block {hash}")))?;
        self.aggregate_of(&block.header.body_root, &block.submissions)
            .map_err(|e| ChainError::Corrupt(format!("stored block {hash}: {e}")))
    }

    /// The genesis rule over the decoded updates of `submissions` (already checked: a
    /// submission that does not decode is an error here, not a verdict), whose ids
    /// `body_root` commits to (the caller has checked that it does): computed once per body
    /// root, see [`crate::cache`].
    fn aggregate_of(&self, body_root: &Hash32, submissions: &[Submission]) -> Result<Arc<Vec<i32>>, String> {
        self.caches.aggregates.get_or_compute(AggregateCache::key(&self.chain_id, body_root), || {
            let decoded = self.decode_all(submissions).map_err(|e| e.to_string())?;
            let updates: Vec<&[i32]> = decoded.iter().map(|u| u.as_ref()).collect();
            self.aggregate_decoded(&updates).map_err(|e| e.to_string())
        })
    }

    /// The decoded updates of stored (already checked) submissions, in order.
    fn decode_all<'a>(&self, submissions: &'a [Submission]) -> Result<Vec<std::borrow::Cow<'a, [i32]>>, SubmissionError> {
        submissions.iter().map(|s| decode_update(&self.genesis, s)).collect()
    }

    /// [`Chain::aggregate_of`] for updates already decoded.
    fn aggregate_cached(&self, body_root: &Hash32, updates: &[&[i32]]) -> Result<Arc<Vec<i32>>, agg::AggregateError> {
        self.caches
            .aggregates
            .get_or_compute(AggregateCache::key(&self.chain_id, body_root), || self.aggregate_decoded(updates))
    }

    /// The genesis rule over decoded updates (a block of registrations only, with none,
    /// leaves the model as it is).
    fn aggregate_decoded(&self, updates: &[&[i32]]) -> Result<Vec<i32>, agg::AggregateError> {
        if updates.is_empty() {
            return Ok(vec![0; self.genesis.param_count()]);
        }
        agg::aggregate(rule(self.genesis.consensus.aggregation), updates)
    }

    /// What the genesis aggregation rule did with each submission of block `hash`:
    /// recomputed from the stored body (the aggregate itself is checked on import; this is
    /// for people). Empty for a block without submissions.
    pub fn aggregate_report(&self, hash: &Hash32) -> Result<Vec<(Hash32, Hash32, agg::InputReport)>, ChainError> {
        let block = self.block(hash)?.ok_or_else(|| ChainError::NotFound(format!("block {hash}")))?;
        if block.submissions.is_empty() {
            return Ok(Vec::new());
        }
        let decoded =
            self.decode_all(&block.submissions).map_err(|e| ChainError::Corrupt(format!("stored block {hash}: {e}")))?;
        let updates: Vec<&[i32]> = decoded.iter().map(|u| u.as_ref()).collect();
        let (_, report) = agg::aggregate_with_report(rule(self.genesis.consensus.aggregation), &updates)
            .map_err(|e| ChainError::Corrupt(format!("stored block {hash}: {e}")))?;
        Ok(block.submissions.iter().zip(report).map(|(s, r)| (s.id(), s.round_tag(), r)).collect())
    }

    fn ancestors_timestamps(&self, from: &BlockMeta, n: usize) -> Vec<u64> {
        let mut out = Vec::with_capacity(n);
        let mut cur = Some(std::borrow::Cow::Borrowed(from));
        while let Some(m) = cur {
            if out.len() == n {
                break;
            }
            out.push(m.timestamp_ms);
            // Ancestors within the window are in memory; older ones (a parent deep on a side
            // branch) come from the store, and a store that cannot be read ends the walk.
            cur = if m.height == 0 { None } else { self.meta_of(&m.parent).ok().flatten() };
        }
        out
    }

    /// The target a child of `parent` must carry.
    pub fn required_target(&self, parent: &BlockMeta) -> Hash32 {
        if parent.height == 0 {
            return self.genesis.pow.initial_target;
        }
        let grandparent_ts = self.meta_of(&parent.parent).ok().flatten().map_or(parent.timestamp_ms, |g| g.timestamp_ms);
        next_target(&self.genesis.pow, &parent.target, parent.timestamp_ms, grandparent_ts)
    }

    /// The median time past a child of `parent` must exceed.
    pub fn median_time_past(&self, parent: &BlockMeta) -> u64 {
        median_time_past(self.ancestors_timestamps(parent, self.genesis.pow.median_time_span as usize))
    }

    /// Checks a submission for the mempool of the next round: shape and privacy policy,
    /// base = head, round, ring group, then — once per submission, see [`crate::cache`] —
    /// update norm and ring signature. Returns its id.
    pub fn check_submission(&self, s: &Submission) -> Result<Hash32, SubmissionError> {
        let head = self.head();
        if s.base != head.hash {
            check_submission_shape(&self.genesis, &self.chain_id, s)?;
            return Err(SubmissionError::NotOnHead(s.base));
        }
        self.check_submission_on(s, head, &self.head_model)
    }

    /// Checks a submission based on a known block that competes with the head — a tip of
    /// another branch at least as high — exactly as [`Chain::check_submission`] would if that
    /// block were the head. Such a submission is valid, only not for our head: a node keeps
    /// it (and gossip forwards it) in case a reorg makes its base the head. Refuses, as
    /// `NotOnHead`, a base that is unknown or lower than the head (stale).
    pub fn check_submission_on_tip(&self, s: &Submission) -> Result<Hash32, SubmissionError> {
        let head = self.head();
        let base = match self.metas.recent(&s.base) {
            // A base at least as high as the head is in memory if it is known at all.
            Some(m) if m.height >= head.height => m,
            _ => return Err(SubmissionError::NotOnHead(s.base)),
        };
        let model = if self.genesis.training.weight_decay.0 == 0 {
            // The norm bound reads the base model only under weight decay.
            Vec::new()
        } else {
            self.model_at(&base.hash).map_err(|_| SubmissionError::NotOnHead(s.base))?
        };
        self.check_submission_on(s, base, &model)
    }

    fn check_submission_on(&self, s: &Submission, base: &BlockMeta, base_model: &[i32]) -> Result<Hash32, SubmissionError> {
        let update = check_submission_shape(&self.genesis, &self.chain_id, s)?;
        if s.round != base.height + 1 {
            return Err(SubmissionError::WrongRound { expected: base.height + 1, got: s.round });
        }
        let rings = self.rings_at(&base.hash).map_err(|_| SubmissionError::NotOnHead(s.base))?;
        rings.check_ring(s)?;
        let digest = s.signing_digest();
        let id = s.id_from_digest(&digest);
        let key = VerifiedSet::submission_key(&id);
        if !self.caches.verified.contains(&key) {
            check_update_norm(&self.genesis, s, &update, base_norm_sq(&self.genesis, base_model))?;
            rings.verify(s, &digest)?;
            self.caches.verified.insert(key);
        }
        Ok(id)
    }

    /// Imports a block received from anywhere (gossip, sync, our own miner). `now` is the
    /// local clock in milliseconds.
    pub fn import(&mut self, block: Block, now: u64) -> Result<ImportOutcome, BlockError> {
        let hash = block.header.hash();
        if self.contains(&hash) {
            return Err(BlockError::AlreadyKnown);
        }
        let checked = CheckedBlock::check(&self.genesis, &self.chain_id, block)?;
        let contextual = self.check_context(checked, now)?;
        let executed = self.execute(contextual)?;
        self.commit(executed)
    }

    /// The checks of a header against its parent: height, retarget, median time past and
    /// future drift (for a block's header at import, and for a snapshot's header chain).
    fn check_header_on(&self, h: &Header, parent: &BlockMeta, now: u64) -> Result<(), BlockError> {
        if h.height != parent.height + 1 {
            return Err(BlockError::Height { expected: parent.height + 1, got: h.height });
        }
        let expected = self.required_target(parent);
        if h.target != expected {
            return Err(BlockError::Target { expected, got: h.target });
        }
        let median = self.median_time_past(parent);
        if h.timestamp_ms <= median {
            return Err(BlockError::TimestampTooOld { median, got: h.timestamp_ms });
        }
        let max_ahead_ms = self.genesis.pow.max_future_ms;
        if h.timestamp_ms > now.saturating_add(max_ahead_ms) {
            return Err(BlockError::TimestampInFuture { got: h.timestamp_ms, now, max_ahead_ms });
        }
        Ok(())
    }

    fn check_context(&self, checked: CheckedBlock, now: u64) -> Result<ContextualBlock, BlockError> {
        let h = &checked.block.header;
        let parent = self.meta_of(&h.parent)?.ok_or(BlockError::UnknownParent(h.parent))?.into_owned();
        self.check_header_on(h, &parent, now)?;
        let c = &self.genesis.consensus;
        let n = checked.block.submissions.len();
        if n < c.quorum as usize && h.timestamp_ms < parent.timestamp_ms.saturating_add(c.round_timeout_ms) {
            return Err(BlockError::QuorumNotMet { got: n, quorum: c.quorum });
        }
        Ok(ContextualBlock { checked, parent })
    }

    /// Refuses a parent whose branch leaves the best chain below the lowest height with
    /// bodies: reaching its state means unwinding canonical blocks (and applying side
    /// blocks) whose bodies are gone.
    fn check_reachable(&self, parent: &BlockMeta) -> Result<(), BlockError> {
        if self.body_floor == 0 {
            return Ok(());
        }
        let mut fork = std::borrow::Cow::Borrowed(parent);
        while self.store.canonical(fork.height)? != Some(fork.hash) {
            fork = self.meta_of(&fork.parent)?.ok_or(BlockError::UnknownParent(fork.parent))?;
        }
        if fork.height + 1 < self.body_floor {
            return Err(BlockError::ReorgTooDeep { fork: fork.height, floor: self.body_floor });
        }
        Ok(())
    }

    fn execute(&self, ctx: ContextualBlock) -> Result<ExecutedBlock, BlockError> {
        let ContextualBlock { checked, parent } = ctx;
        self.check_reachable(&parent)?;
        let CheckedBlock { block, hash, digests, ids, registration_ids, decoded } = checked;
        let updates = decoded.updates(&block.submissions);
        let mut model = self.model_at(&parent.hash)?;
        // Submissions verified before (in the pool, or in a sibling block) skip the norm
        // and signature checks; everything that depends on this block's parent still runs.
        let verified = &self.caches.verified;
        let keys: Vec<Hash32> = ids.iter().map(VerifiedSet::submission_key).collect();
        let fresh: Vec<usize> = (0..block.submissions.len()).filter(|&i| !verified.contains(&keys[i])).collect();
        if !fresh.is_empty() {
            let base_norm = base_norm_sq(&self.genesis, &model);
            for &index in &fresh {
                check_update_norm(&self.genesis, &block.submissions[index], updates[index], base_norm)
                    .map_err(|error| BlockError::Submission { index, error })?;
            }
        }
        let mut registry = self.registry_at(&parent.hash)?;
        for (index, (r, id)) in block.registrations.iter().zip(&registration_ids).enumerate() {
            self.check_authorisation_once(r, id).map_err(|error| BlockError::Registration { index, error })?;
        }
        if !block.submissions.is_empty() {
            // The rings are of the registry after the parent: before this block's changes.
            let rings = self.rings_with(&parent.hash, || Ok(registry.clone()))?;
            for (index, s) in block.submissions.iter().enumerate() {
                rings.check_ring(s).map_err(|error| BlockError::Submission { index, error })?;
            }
            let items: Vec<(&Submission, &Hash32)> = fresh.iter().map(|&i| (&block.submissions[i], &digests[i])).collect();
            rings
                .verify_all(&items)
                .map_err(|(k, error)| BlockError::Submission { index: fresh[k], error })?;
        }
        registry
            .apply(&block.registrations, block.header.height)
            .map_err(|(index, error)| BlockError::Registration { index, error })?;
        let delta = self
            .aggregate_cached(&block.header.body_root, &updates)
            .map_err(|e| BlockError::Storage(format!("aggregate: {e}")))?;
        drop(updates);
        agg::apply(&mut model, &delta).map_err(|e| match e {
            agg::AggregateError::Overflow { index } => BlockError::ModelOverflow(index),
            other => BlockError::Storage(other.to_string()),
        })?;
        let computed = model_hash(&model);
        let root = state_root(&computed, &registry.hash());
        if root != block.header.state_root {
            return Err(BlockError::StateRoot { expected: root, got: block.header.state_root });
        }
        // Every submission of the block is now known valid on this base.
        for &i in &fresh {
            verified.insert(keys[i]);
        }
        let h = &block.header;
        let total = target_to_u256(&parent.total_work).saturating_add(work(&h.target));
        let meta = BlockMeta::of(
            h,
            hash,
            u256_to_hash(total),
            computed,
            block.submissions.len() as u32,
            block.registrations.len() as u32,
        );
        Ok(ExecutedBlock { block, meta, model, registry })
    }

    fn commit(&mut self, ex: ExecutedBlock) -> Result<ImportOutcome, BlockError> {
        let ExecutedBlock { block, meta, model, registry } = ex;
        let head = self.head().clone();
        // Most cumulative work wins; on a tie the lower block hash wins (see the module docs).
        if (meta.total_work, std::cmp::Reverse(meta.hash)) <= (head.total_work, std::cmp::Reverse(head.hash)) {
            self.store.commit(&block, &meta, None)?;
            self.metas.insert(meta.clone());
            return Ok(ImportOutcome::SideChain { meta });
        }
        self.metas.insert(meta.clone());
        let (unwind, apply) = match self.path(&head.hash, &meta.hash) {
            Ok(p) => p,
            Err(e) => {
                self.metas.remove(&meta.hash);
                return Err(e.into());
            }
        };
        let mut canonical: Vec<(u64, Hash32)> = Vec::with_capacity(apply.len());
        for h in &apply {
            match self.meta_of(h) {
                Ok(Some(m)) => canonical.push((m.height, m.hash)),
                Ok(None) => {}
                Err(e) => {
                    self.metas.remove(&meta.hash);
                    return Err(e.into());
                }
            }
        }
        // A checkpoint at every multiple of the interval and after every reorg, so the
        // newest one is always on the best chain (see `crate::store`).
        let checkpoint = (meta.height.is_multiple_of(CHECKPOINT_INTERVAL) || !unwind.is_empty()).then(|| Checkpoint {
            height: meta.height,
            hash: meta.hash,
            model: &model,
            model_hash: meta.model_hash,
            registry: &registry,
        });
        // A pruned node drops the bodies that fall below the heights it keeps.
        let mut prune = None;
        if let Some(keep) = self.prune {
            let floor = (meta.height + 1).saturating_sub(keep);
            if floor > self.body_floor {
                match self.store.hashes_between(self.body_floor, floor) {
                    Ok(bodies) => prune = Some((bodies, floor)),
                    Err(e) => {
                        self.metas.remove(&meta.hash);
                        return Err(e.into());
                    }
                }
            }
        }
        let new_floor = prune.as_ref().map(|p| p.1);
        let change = HeadChange { head: meta.hash, height: meta.height, canonical, checkpoint, prune };
        if let Err(e) = self.store.commit(&block, &meta, Some(change)) {
            self.metas.remove(&meta.hash);
            return Err(e.into());
        }
        self.head = meta.hash;
        self.head_meta = meta.clone();
        self.head_model = model;
        self.registry = registry;
        self.metas.evict_below(meta.height.saturating_sub(META_WINDOW));
        if let Some(floor) = new_floor {
            self.body_floor = floor;
        }
        if unwind.is_empty() {
            Ok(ImportOutcome::Extended { head: meta })
        } else {
            Ok(ImportOutcome::Reorg { head: meta, old_head: head.hash, depth: unwind.len() as u64 })
        }
    }

    /// Builds a block on the head from already checked `submissions` and `registrations`
    /// (see [`Chain::check_submission`] and [`Chain::check_registration`]): keeps the
    /// registrations that still apply to the head's registry (sorted by id, at most the
    /// genesis maximum, one per member) and the submissions for this round (sorted by id,
    /// one per round tag, at most the genesis maximum), within the block size limit;
    /// aggregates them and fills in target, timestamp, body root and model hash. The nonce
    /// is left at 0 for the miner.
    pub fn build_template(
        &self,
        miner: Hash32,
        submissions: Vec<Submission>,
        registrations: Vec<Registration>,
        now: u64,
    ) -> Result<BlockTemplate, BlockError> {
        let parent = self.head().clone();
        let c = &self.genesis.consensus;
        let max_bytes = usize::try_from(self.genesis.limits.max_block_bytes).unwrap_or(usize::MAX);
        // Header, two length prefixes and the version byte, rounded up.
        let mut used = 512usize;

        let mut regs: Vec<(Hash32, Registration)> = registrations.into_iter().map(|r| (r.id(), r)).collect();
        regs.sort_by_key(|a| a.0);
        regs.dedup_by(|a, b| a.0 == b.0);
        let mut next_registry = self.registry.clone();
        let mut registrations = Vec::new();
        let mut reg_ids = Vec::new();
        for (id, r) in regs {
            if registrations.len() >= self.genesis.enrolment.max_per_block as usize {
                break;
            }
            let size = learnchain_proto::encoding::encoded_len(&r);
            if used + size > max_bytes || next_registry.apply(std::slice::from_ref(&r), parent.height + 1).is_err() {
                continue;
            }
            used += size;
            reg_ids.push(id);
            registrations.push(r);
        }

        let mut keyed: Vec<(Hash32, Submission)> = submissions
            .into_iter()
            .filter(|s| s.base == parent.hash && s.round == parent.height + 1)
            .map(|s| (s.id(), s))
            .collect();
        keyed.sort_by_key(|a| a.0);
        keyed.dedup_by(|a, b| a.0 == b.0);
        let mut seen = std::collections::HashSet::new();
        let mut ids = Vec::new();
        let mut submissions = Vec::new();
        for (id, s) in keyed {
            if submissions.len() >= c.max_submissions as usize {
                break;
            }
            let size = learnchain_proto::encoding::encoded_len(&s);
            if used + size > max_bytes || !seen.insert(s.round_tag()) {
                continue;
            }
            used += size;
            ids.push(id);
            submissions.push(s);
        }
        let needed = c.aggregation.min_inputs();
        if !submissions.is_empty() && submissions.len() < needed {
            if registrations.is_empty() {
                return Err(BlockError::TooFewForRule { got: submissions.len(), needed, rule: c.aggregation.to_string() });
            }
            // Not enough for the rule: a block of the registrations alone.
            submissions.clear();
            ids.clear();
        }
        if submissions.is_empty() && registrations.is_empty() {
            return Err(BlockError::EmptyBody);
        }
        let body_root = body_root(&reg_ids, &ids);
        let delta = self
            .aggregate_of(&body_root, &submissions)
            .map_err(|e| BlockError::Storage(format!("aggregate: {e}")))?;
        let mut model = self.head_model.clone();
        agg::apply(&mut model, &delta).map_err(|e| match e {
            agg::AggregateError::Overflow { index } => BlockError::ModelOverflow(index),
            other => BlockError::Storage(other.to_string()),
        })?;
        let mut timestamp_ms = now.max(self.median_time_past(&parent) + 1);
        if submissions.len() < c.quorum as usize {
            timestamp_ms = timestamp_ms.max(parent.timestamp_ms + c.round_timeout_ms);
        }
        let header = Header {
            version: HEADER_VERSION,
            chain_id: self.chain_id,
            height: parent.height + 1,
            parent: parent.hash,
            timestamp_ms,
            target: self.required_target(&parent),
            miner,
            body_root,
            state_root: state_root(&model_hash(&model), &next_registry.hash()),
            nonce: 0,
        };
        Ok(BlockTemplate { header, registrations, submissions })
    }
}
