//! [`Chain`]: the node's view of the block tree, its best chain and the model at its head.
//!
//! Blocks enter through [`Chain::import`], which runs the validation pipeline
//! (`validate.rs` stage 1, then the contextual and execution stages here) and commits each
//! valid block in one store transaction. Every valid block is kept, side branches included;
//! the head is the block with the most cumulative work, and on equal work the one seen
//! first stays. Moving the head to another branch (a reorg) rewinds the integer model
//! exactly — `W_ancestor = W_head − Σ aggregates` — and replays the winning branch, so the
//! model after a reorg is bit for bit the model built straight on the winning branch.
//!
//! The chain is synchronous and single-owner: the node keeps it in one task and feeds it
//! blocks and submissions; it never touches the network.

use std::collections::HashMap;
use std::path::Path;

use learnchain_aggregate::{self as agg, Rule};
use learnchain_proto::block::merkle_root;
use learnchain_proto::genesis::AggregationRule;
use learnchain_proto::hash::model_hash;
use learnchain_proto::header::HEADER_VERSION;
use learnchain_proto::{Block, Genesis, Hash32, Header, StatusMessage, Submission};

use crate::auth::{GenesisMembers, MembershipVerifier};
use crate::difficulty::{median_time_past, next_target};
use crate::error::{BlockError, ChainError, SubmissionError};
use crate::pow::{target_to_u256, u256_to_hash, work};
use crate::store::{BlockMeta, HeadChange, Store};
use crate::validate::{CheckedBlock, base_norm_sq, check_submission_shape, check_update_norm};

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
    /// Body, sorted by id.
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
}

/// The block tree, best chain and head model of one node.
pub struct Chain {
    genesis: Genesis,
    chain_id: Hash32,
    store: Store,
    metas: HashMap<Hash32, BlockMeta>,
    head: Hash32,
    head_model: Vec<i32>,
    members: Box<dyn MembershipVerifier>,
}

fn rule(r: AggregationRule) -> Rule {
    match r {
        AggregationRule::Mean => Rule::Mean,
    }
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
        let chain_id = genesis.chain_id();
        let store = Store::open(path)?;
        match store.chain_id()? {
            Some(found) if found != chain_id => {
                return Err(ChainError::WrongChain { expected: chain_id, found });
            }
            Some(_) => {}
            None => {
                let header = genesis.header();
                let block = Block { header: header.clone(), submissions: vec![] };
                let meta = BlockMeta {
                    hash: header.hash(),
                    height: 0,
                    parent: Hash32::ZERO,
                    timestamp_ms: header.timestamp_ms,
                    target: header.target,
                    total_work: u256_to_hash(work(&header.target)),
                    model_hash: header.model_hash,
                    submissions: 0,
                    miner: Hash32::ZERO,
                };
                store.init(&chain_id, &block, &meta, &genesis.model.initial_weights())?;
            }
        }
        let metas: HashMap<Hash32, BlockMeta> =
            store.metas()?.into_iter().map(|m| (m.hash, m)).collect();
        let (head, head_model) = store.head()?;
        let head_meta = metas
            .get(&head)
            .ok_or_else(|| ChainError::Corrupt(format!("head {head} has no meta")))?;
        if model_hash(&head_model) != head_meta.model_hash {
            return Err(ChainError::Corrupt("head model does not match the head block".into()));
        }
        let members = Box::new(GenesisMembers::new(&genesis.members));
        Ok(Chain { genesis, chain_id, store, metas, head, head_model, members })
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
        // The head is always in `metas`: set only from metas on open and on commit.
        &self.metas[&self.head]
    }

    /// The model after the head.
    pub fn head_model(&self) -> &[i32] {
        &self.head_model
    }

    /// Whether a block is known.
    pub fn contains(&self, hash: &Hash32) -> bool {
        self.metas.contains_key(hash)
    }

    /// The meta of a known block.
    pub fn meta(&self, hash: &Hash32) -> Option<&BlockMeta> {
        self.metas.get(hash)
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
        if !self.metas.contains_key(hash) {
            return Ok(None);
        }
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
        let mut out = Vec::new();
        let mut used = 64usize;
        for height in start..start.saturating_add(u64::from(count)) {
            let Some(block) = self.block_at(height)? else { break };
            let size = learnchain_proto::encoding::encoded_len(&block);
            if !out.is_empty() && used + size > max_bytes {
                break;
            }
            used += size;
            out.push(block);
        }
        Ok(out)
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

    /// The path between two known blocks: blocks to unwind from `from` (newest first, down
    /// to but excluding the common ancestor) and blocks to apply up to `to` (oldest first).
    fn path(&self, from: &Hash32, to: &Hash32) -> Result<(Vec<Hash32>, Vec<Hash32>), ChainError> {
        let get = |h: &Hash32| {
            self.metas.get(h).ok_or_else(|| ChainError::NotFound(format!("block {h}")))
        };
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

    fn stored_aggregate(&self, hash: &Hash32) -> Result<Vec<i32>, ChainError> {
        let block = self.store.block(hash)?.ok_or_else(|| ChainError::NotFound(format!("block {hash}")))?;
        self.aggregate_of(&block.submissions).map_err(|e| ChainError::Corrupt(e.to_string()))
    }

    fn aggregate_of(&self, submissions: &[Submission]) -> Result<Vec<i32>, agg::AggregateError> {
        let updates: Vec<&[i32]> = submissions.iter().map(|s| s.delta.as_slice()).collect();
        agg::aggregate(rule(self.genesis.consensus.aggregation), &updates)
    }

    fn ancestors_timestamps(&self, from: &BlockMeta, n: usize) -> Vec<u64> {
        let mut out = Vec::with_capacity(n);
        let mut cur = Some(from);
        while let Some(m) = cur {
            if out.len() == n {
                break;
            }
            out.push(m.timestamp_ms);
            cur = if m.height == 0 { None } else { self.metas.get(&m.parent) };
        }
        out
    }

    /// The target a child of `parent` must carry.
    pub fn required_target(&self, parent: &BlockMeta) -> Hash32 {
        if parent.height == 0 {
            return self.genesis.pow.initial_target;
        }
        let grandparent_ts = self.metas.get(&parent.parent).map_or(parent.timestamp_ms, |g| g.timestamp_ms);
        next_target(&self.genesis.pow, &parent.target, parent.timestamp_ms, grandparent_ts)
    }

    /// The median time past a child of `parent` must exceed.
    pub fn median_time_past(&self, parent: &BlockMeta) -> u64 {
        median_time_past(self.ancestors_timestamps(parent, self.genesis.pow.median_time_span as usize))
    }

    /// Checks a submission for the mempool of the next round: shape and privacy policy,
    /// base = head, round, update norm, membership. Returns its signing digest.
    pub fn check_submission(&self, s: &Submission) -> Result<Hash32, SubmissionError> {
        check_submission_shape(&self.genesis, &self.chain_id, s)?;
        let head = self.head();
        if s.base != head.hash {
            return Err(SubmissionError::NotOnHead(s.base));
        }
        if s.round != head.height + 1 {
            return Err(SubmissionError::WrongRound { expected: head.height + 1, got: s.round });
        }
        check_update_norm(&self.genesis, s, base_norm_sq(&self.genesis, &self.head_model))?;
        let digest = s.signing_digest();
        self.members.verify(s, &digest)?;
        Ok(digest)
    }

    /// Imports a block received from anywhere (gossip, sync, our own miner). `now` is the
    /// local clock in milliseconds.
    pub fn import(&mut self, block: Block, now: u64) -> Result<ImportOutcome, BlockError> {
        let hash = block.header.hash();
        if self.metas.contains_key(&hash) {
            return Err(BlockError::AlreadyKnown);
        }
        let checked = CheckedBlock::check(&self.genesis, &self.chain_id, block)?;
        let contextual = self.check_context(checked, now)?;
        let executed = self.execute(contextual)?;
        self.commit(executed)
    }

    fn check_context(&self, checked: CheckedBlock, now: u64) -> Result<ContextualBlock, BlockError> {
        let h = &checked.block.header;
        let parent = self.metas.get(&h.parent).ok_or(BlockError::UnknownParent(h.parent))?.clone();
        if h.height != parent.height + 1 {
            return Err(BlockError::Height { expected: parent.height + 1, got: h.height });
        }
        let expected = self.required_target(&parent);
        if h.target != expected {
            return Err(BlockError::Target { expected, got: h.target });
        }
        let median = self.median_time_past(&parent);
        if h.timestamp_ms <= median {
            return Err(BlockError::TimestampTooOld { median, got: h.timestamp_ms });
        }
        let max_ahead_ms = self.genesis.pow.max_future_ms;
        if h.timestamp_ms > now.saturating_add(max_ahead_ms) {
            return Err(BlockError::TimestampInFuture { got: h.timestamp_ms, now, max_ahead_ms });
        }
        let c = &self.genesis.consensus;
        let n = checked.block.submissions.len();
        if n < c.quorum as usize && h.timestamp_ms < parent.timestamp_ms.saturating_add(c.round_timeout_ms) {
            return Err(BlockError::QuorumNotMet { got: n, quorum: c.quorum });
        }
        Ok(ContextualBlock { checked, parent })
    }

    fn execute(&self, ctx: ContextualBlock) -> Result<ExecutedBlock, BlockError> {
        let ContextualBlock { checked, parent } = ctx;
        let CheckedBlock { block, hash, digests } = checked;
        let mut model = self.model_at(&parent.hash)?;
        let base_norm = base_norm_sq(&self.genesis, &model);
        for (index, s) in block.submissions.iter().enumerate() {
            check_update_norm(&self.genesis, s, base_norm).map_err(|error| BlockError::Submission { index, error })?;
        }
        for (index, (s, digest)) in block.submissions.iter().zip(&digests).enumerate() {
            self.members.verify(s, digest).map_err(|error| BlockError::Submission { index, error })?;
        }
        let delta = self
            .aggregate_of(&block.submissions)
            .map_err(|e| BlockError::Storage(format!("aggregate: {e}")))?;
        agg::apply(&mut model, &delta).map_err(|e| match e {
            agg::AggregateError::Overflow { index } => BlockError::ModelOverflow(index),
            other => BlockError::Storage(other.to_string()),
        })?;
        let computed = model_hash(&model);
        if computed != block.header.model_hash {
            return Err(BlockError::ModelHash { expected: computed, got: block.header.model_hash });
        }
        let h = &block.header;
        let total = target_to_u256(&parent.total_work).saturating_add(work(&h.target));
        let meta = BlockMeta {
            hash,
            height: h.height,
            parent: h.parent,
            timestamp_ms: h.timestamp_ms,
            target: h.target,
            total_work: u256_to_hash(total),
            model_hash: computed,
            submissions: block.submissions.len() as u32,
            miner: h.miner,
        };
        Ok(ExecutedBlock { block, meta, model })
    }

    fn commit(&mut self, ex: ExecutedBlock) -> Result<ImportOutcome, BlockError> {
        let ExecutedBlock { block, meta, model } = ex;
        let head = self.head().clone();
        // Most cumulative work wins; on a tie the block seen first (the current head) stays.
        if meta.total_work <= head.total_work {
            self.store.commit(&block, &meta, None)?;
            self.metas.insert(meta.hash, meta.clone());
            return Ok(ImportOutcome::SideChain { meta });
        }
        self.metas.insert(meta.hash, meta.clone());
        let (unwind, apply) = match self.path(&head.hash, &meta.hash) {
            Ok(p) => p,
            Err(e) => {
                self.metas.remove(&meta.hash);
                return Err(e.into());
            }
        };
        let canonical: Vec<(u64, Hash32)> =
            apply.iter().filter_map(|h| self.metas.get(h).map(|m| (m.height, m.hash))).collect();
        let change =
            HeadChange { head: meta.hash, height: meta.height, canonical, model: &model, model_hash: meta.model_hash };
        if let Err(e) = self.store.commit(&block, &meta, Some(change)) {
            self.metas.remove(&meta.hash);
            return Err(e.into());
        }
        self.head = meta.hash;
        self.head_model = model;
        if unwind.is_empty() {
            Ok(ImportOutcome::Extended { head: meta })
        } else {
            Ok(ImportOutcome::Reorg { head: meta, old_head: head.hash, depth: unwind.len() as u64 })
        }
    }

    /// Builds a block on the head from already checked `submissions` (see
    /// [`Chain::check_submission`]): sorts them by id, keeps at most the genesis maximum,
    /// aggregates them and fills in target, timestamp, body root and model hash. The nonce
    /// is left at 0 for the miner.
    pub fn build_template(&self, miner: Hash32, mut submissions: Vec<Submission>, now: u64) -> Result<BlockTemplate, BlockError> {
        let parent = self.head().clone();
        submissions.retain(|s| s.base == parent.hash && s.round == parent.height + 1);
        let mut keyed: Vec<(Hash32, Submission)> = submissions.into_iter().map(|s| (s.id(), s)).collect();
        keyed.sort_by_key(|a| a.0);
        keyed.dedup_by(|a, b| a.0 == b.0);
        let mut seen = std::collections::HashSet::new();
        keyed.retain(|(_, s)| seen.insert(s.round_tag()));
        keyed.truncate(self.genesis.consensus.max_submissions as usize);
        if keyed.is_empty() {
            return Err(BlockError::SubmissionCount { got: 0, max: self.genesis.consensus.max_submissions });
        }
        let ids: Vec<Hash32> = keyed.iter().map(|(id, _)| *id).collect();
        let submissions: Vec<Submission> = keyed.into_iter().map(|(_, s)| s).collect();
        let delta = self
            .aggregate_of(&submissions)
            .map_err(|e| BlockError::Storage(format!("aggregate: {e}")))?;
        let mut model = self.head_model.clone();
        agg::apply(&mut model, &delta).map_err(|e| match e {
            agg::AggregateError::Overflow { index } => BlockError::ModelOverflow(index),
            other => BlockError::Storage(other.to_string()),
        })?;
        let mut timestamp_ms = now.max(self.median_time_past(&parent) + 1);
        let c = &self.genesis.consensus;
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
            body_root: merkle_root(&ids),
            model_hash: model_hash(&model),
            nonce: 0,
        };
        Ok(BlockTemplate { header, submissions })
    }
}
