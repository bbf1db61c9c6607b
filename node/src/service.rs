//! [`ChainService`]: the one place where blocks, submissions and registrations enter a
//! node's chain.
//!
//! Gossip, sync, RPC, the miner and the data source all hand objects to the same service,
//! which holds the [`Chain`], the [`SubmissionPool`] and the [`RegistrationPool`] under one
//! lock, runs the validation pipeline, and — when the head moves — resets the submission
//! pool (re-admitting submissions that were waiting for that block), drops registrations
//! the new head's registry already holds, then announces the new head on a `watch` channel (the miner and
//! the data source follow it) and a `broadcast` channel (RPC subscriptions).
//!
//! Imports run synchronously under the lock: a block of ten 100k-parameter updates
//! validates in a few milliseconds (see the `validate` benchmark). Async callers use
//! [`ChainService::import`], which runs the import (and its durable commit) on tokio's
//! blocking pool.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use learnchain_chain::{
    BlockError, BlockMeta, BlockTemplate, Chain, ImportOutcome, RegistrationError, RegistrationPool, SubmissionError,
    SubmissionPool, now_ms,
};
use learnchain_proto::{Block, Genesis, Hash32, Registration, Submission};
use tokio::sync::{broadcast, watch};
use libp2p::PeerId;
use tracing::{debug, info};

use crate::metrics::NodeMetrics;

/// The head and the model after it.
#[derive(Clone, Debug)]
pub struct HeadSnapshot {
    /// Head block meta.
    pub meta: BlockMeta,
    /// Model after the head.
    pub model: Arc<Vec<i32>>,
}

/// Pool size for the current base, for the miner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStatus {
    /// Base of pooled submissions.
    pub base: Hash32,
    /// How many are pooled.
    pub count: usize,
    /// Registrations waiting for a block (any base).
    pub registrations: usize,
}

/// The chain and the submission pool of one node.
pub struct ChainState {
    /// The chain.
    pub chain: Chain,
    /// Submissions for the next block.
    pub pool: SubmissionPool,
    /// Registrations waiting for a block.
    pub registrations: RegistrationPool,
    /// The base of the round being collected and when its first submission was pooled
    /// (for the round latency metric).
    round_start: Option<(Hash32, Instant)>,
}

/// Where an object came from, for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Gossip.
    Gossip,
    /// Sync download.
    Sync,
    /// This node made it.
    Local,
}

/// Shared entry point for blocks and submissions.
#[derive(Clone)]
pub struct ChainService {
    state: Arc<Mutex<ChainState>>,
    genesis: Arc<Genesis>,
    heads: watch::Sender<HeadSnapshot>,
    pool_status: watch::Sender<PoolStatus>,
    head_events: broadcast::Sender<BlockMeta>,
    /// Downloads in progress from peers more than a block ahead (see [`CatchUp`]).
    catching_up: Arc<watch::Sender<usize>>,
    /// Nanoseconds spent checking blocks, submissions and registrations (see
    /// [`ChainService::validation_nanos`]).
    validation: Arc<AtomicU64>,
    /// Rejected messages per peer, logged a line per interval.
    rejections: Arc<crate::peers::RejectionLog>,
    /// The node's metrics (see [`crate::metrics`]).
    metrics: Arc<NodeMetrics>,
}

/// Marks a download from a peer that is ahead of us; the count drops when it is dropped.
/// While any is alive the node is catching up, and a data source does not train on the
/// heads that pass by (each would be stale before its update arrived, and cost ε).
pub struct CatchUp(Arc<watch::Sender<usize>>);

impl Drop for CatchUp {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl ChainService {
    /// Wraps an opened chain.
    pub fn new(chain: Chain) -> Self {
        let genesis = Arc::new(chain.genesis().clone());
        let head = chain.head().clone();
        let snapshot = HeadSnapshot { meta: head.clone(), model: Arc::new(chain.head_model().to_vec()) };
        let pool = SubmissionPool::new(head.hash, genesis.consensus.max_submissions as usize * 4);
        let (heads, _) = watch::channel(snapshot);
        let (pool_status, _) = watch::channel(PoolStatus { base: head.hash, count: 0, registrations: 0 });
        let (head_events, _) = broadcast::channel(64);
        let (catching_up, _) = watch::channel(0);
        ChainService {
            state: Arc::new(Mutex::new(ChainState {
                chain,
                pool,
                registrations: RegistrationPool::new(genesis.enrolment.max_per_block as usize * 4),
                round_start: None,
            })),
            genesis,
            heads,
            pool_status,
            head_events,
            catching_up: Arc::new(catching_up),
            validation: Arc::new(AtomicU64::new(0)),
            rejections: Arc::new(crate::peers::RejectionLog::new()),
            metrics: {
                let metrics = NodeMetrics::new();
                metrics.on_head(head.height, &head.total_work.0);
                Arc::new(metrics)
            },
        }
    }

    /// The node's metrics, which this service keeps current for the chain and the pools.
    pub fn metrics(&self) -> &NodeMetrics {
        &self.metrics
    }

    /// Starts a catch-up download; it ends when the returned guard is dropped.
    pub fn begin_catch_up(&self) -> CatchUp {
        self.catching_up.send_modify(|n| *n += 1);
        CatchUp(self.catching_up.clone())
    }

    /// Follows the number of catch-up downloads in progress (0 = the head is current as
    /// far as this node knows).
    pub fn catching_up(&self) -> watch::Receiver<usize> {
        self.catching_up.subscribe()
    }

    /// Closes the chain (and its database) if this is the last handle to it; otherwise gives
    /// the handle back. The database is fully closed when this returns `Ok`: dropping the
    /// last `Arc` elsewhere would release the lock only once redb's destructor finishes.
    pub fn try_close(self) -> Result<(), ChainService> {
        let ChainService { state, genesis, heads, pool_status, head_events, catching_up, validation, rejections, metrics } = self;
        match Arc::try_unwrap(state) {
            Ok(state) => {
                drop(state);
                Ok(())
            }
            Err(state) => Err(ChainService { state, genesis, heads, pool_status, head_events, catching_up, validation, rejections, metrics }),
        }
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Locks the state (a poisoned lock is recovered: the state is only mutated through
    /// operations that keep it consistent before they can panic).
    pub fn lock(&self) -> MutexGuard<'_, ChainState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows the head.
    pub fn heads(&self) -> watch::Receiver<HeadSnapshot> {
        self.heads.subscribe()
    }

    /// The current head.
    pub fn head(&self) -> HeadSnapshot {
        self.heads.borrow().clone()
    }

    /// Follows the pool size.
    pub fn pool_status(&self) -> watch::Receiver<PoolStatus> {
        self.pool_status.subscribe()
    }

    /// Every new head, for subscribers that want each one.
    pub fn head_events(&self) -> broadcast::Receiver<BlockMeta> {
        self.head_events.subscribe()
    }

    /// Time this node has spent validating: importing blocks (the store commit included)
    /// and checking submissions and registrations for its pools, in nanoseconds since it
    /// started.
    pub fn validation_nanos(&self) -> u64 {
        self.validation.load(Ordering::Relaxed)
    }

    fn count_validation(&self, since: std::time::Instant) {
        let nanos = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.validation.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Validates and stores a block; moves the head and resets the pool if it wins.
    pub fn import_block(&self, block: Block, origin: Origin) -> Result<ImportOutcome, BlockError> {
        let mut st = self.lock();
        let height = block.header.height;
        let started = std::time::Instant::now();
        let outcome = st.chain.import(block, now_ms());
        self.count_validation(started);
        self.metrics.on_import(&outcome, started.elapsed());
        let outcome = outcome?;
        match &outcome {
            ImportOutcome::Extended { head } => {
                debug!(height, block = %head.hash.short(), ?origin, "new head");
            }
            ImportOutcome::Reorg { head, old_head, depth } => {
                info!(height, block = %head.hash.short(), old = %old_head.short(), depth, ?origin, "reorg");
            }
            ImportOutcome::SideChain { meta } => {
                debug!(height, block = %meta.hash.short(), ?origin, "side-chain block stored");
            }
        }
        if let Some(head) = outcome.new_head() {
            self.publish_head(st, head);
        }
        Ok(outcome)
    }

    /// Installs a snapshot checked against its header chain
    /// ([`learnchain_chain::Chain::install_snapshot`]) and makes its block the head.
    pub fn install_snapshot(&self, headers: &[learnchain_proto::Header], state: &[u8]) -> Result<BlockMeta, learnchain_chain::SnapshotError> {
        let mut st = self.lock();
        let started = std::time::Instant::now();
        let installed = st.chain.install_snapshot(headers, state, now_ms());
        self.count_validation(started);
        let head = installed?;
        self.publish_head(st, &head);
        Ok(head)
    }

    /// After the head moved to `head`: drops registrations and submissions it made stale,
    /// takes in held submissions on it, and tells every watcher.
    fn publish_head(&self, mut st: MutexGuard<'_, ChainState>, head: &BlockMeta) {
        {
            let ChainState { chain, registrations, .. } = &mut *st;
            registrations.retain(|r| chain.registry().check(r).is_ok());
            let waiting = st.pool.reset(head.hash);
            for s in waiting {
                match st.chain.check_submission(&s) {
                    Ok(id) => {
                        // Held submissions came from peers (gossip or a pool pull): a
                        // compact block need not prefill them.
                        if st.pool.insert_with_id(s, id).is_ok() {
                            st.pool.mark_gossiped(&id);
                        }
                    }
                    Err(e) => debug!(error = %e, "held submission no longer valid"),
                }
            }
        }
        // The round collected on `base` ends when a block on it becomes the head; any other
        // head move starts the timing again with the pool the new head has.
        if let Some((base, since)) = st.round_start.take()
            && head.parent == base
        {
            self.metrics.on_round(since.elapsed());
        }
        if !st.pool.is_empty() {
            st.round_start = Some((head.hash, Instant::now()));
        }
        let snapshot = HeadSnapshot { meta: head.clone(), model: Arc::new(st.chain.head_model().to_vec()) };
        let status = PoolStatus { base: head.hash, count: st.pool.len(), registrations: st.registrations.len() };
        self.metrics.on_head(head.height, &head.total_work.0);
        self.metrics.on_pools(status.count, status.registrations);
        drop(st);
        self.heads.send_replace(snapshot);
        self.pool_status.send_replace(status);
        let _ = self.head_events.send(head.clone());
    }

    /// [`ChainService::import_block`] on tokio's blocking pool, for async callers: the
    /// import ends with a durable commit (an fsync), which must not hold one of the
    /// runtime's few worker threads (on a devnet a hundred nodes import every block at
    /// once). A panic in the import is raised again here, as a direct call would raise it.
    pub async fn import(&self, block: Block, origin: Origin) -> Result<ImportOutcome, BlockError> {
        let svc = self.clone();
        match tokio::task::spawn_blocking(move || svc.import_block(block, origin)).await {
            Ok(r) => r,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Err(BlockError::Storage("the import was cancelled: the runtime is shutting down".into())),
            },
        }
    }

    /// Checks a submission and adds it to the pool. One whose base is unknown is held until
    /// that block arrives (and reported as `NotOnHead`). One valid on a known tip that
    /// competes with our head (two miners' blocks at one height) is held too, and reported
    /// as valid (so gossip forwards it): should a reorg make its base the head, the pool
    /// has it at once, and the round's block carries it.
    pub fn add_submission(&self, s: Submission) -> Result<Hash32, SubmissionError> {
        self.add_submission_via(s, Origin::Local)
    }

    /// [`ChainService::add_submission`], recording whether it came by gossip (a miner
    /// prefills the others in its compact blocks; see `sync::compact`).
    pub fn add_submission_via(&self, s: Submission, origin: Origin) -> Result<Hash32, SubmissionError> {
        let added = self.admit_submission(s, origin);
        self.metrics.on_submission(&added);
        added
    }

    fn admit_submission(&self, s: Submission, origin: Origin) -> Result<Hash32, SubmissionError> {
        let mut st = self.lock();
        let started = std::time::Instant::now();
        let checked = st.chain.check_submission(&s);
        self.count_validation(started);
        let id = match checked {
            Ok(id) => id,
            Err(SubmissionError::NotOnHead(base)) => {
                if !st.chain.contains(&base) {
                    let id = s.id();
                    st.pool.hold_orphan(s, id);
                    return Err(SubmissionError::NotOnHead(base));
                }
                let started = std::time::Instant::now();
                let checked = st.chain.check_submission_on_tip(&s);
                self.count_validation(started);
                let id = checked?;
                debug!(base = %base.short(), "submission for a competing tip held");
                st.pool.hold_orphan(s, id);
                return Ok(id);
            }
            Err(e) => return Err(e),
        };
        let id = st.pool.insert_with_id(s, id)?;
        if origin == Origin::Gossip {
            st.pool.mark_gossiped(&id);
        }
        if st.round_start.is_none() {
            st.round_start = Some((st.pool.base(), Instant::now()));
        }
        let status = PoolStatus { base: st.pool.base(), count: st.pool.len(), registrations: st.registrations.len() };
        self.metrics.on_pools(status.count, status.registrations);
        drop(st);
        self.pool_status.send_replace(status);
        Ok(id)
    }

    /// Checks a registration and adds it to the pool. Returns its id.
    pub fn add_registration(&self, r: Registration) -> Result<Hash32, RegistrationError> {
        self.add_registration_via(r, Origin::Local)
    }

    /// [`ChainService::add_registration`], recording whether it came by gossip.
    pub fn add_registration_via(&self, r: Registration, origin: Origin) -> Result<Hash32, RegistrationError> {
        let added = self.admit_registration(r, origin);
        self.metrics.on_registration(&added);
        added
    }

    fn admit_registration(&self, r: Registration, origin: Origin) -> Result<Hash32, RegistrationError> {
        let mut st = self.lock();
        let started = std::time::Instant::now();
        let checked = st.chain.check_registration(&r);
        self.count_validation(started);
        checked?;
        let id = st.registrations.insert(r)?;
        if origin == Origin::Gossip {
            st.registrations.mark_gossiped(&id);
        }
        let pending = st.registrations.len();
        self.metrics.on_pools(st.pool.len(), pending);
        drop(st);
        // A pending registration is reason enough for a block (after the round timeout).
        self.pool_status.send_modify(|p| p.registrations = pending);
        Ok(id)
    }

    /// A block template on the head from the pooled submissions and registrations.
    pub fn build_template(&self, miner: Hash32) -> Result<BlockTemplate, BlockError> {
        let st = self.lock();
        let subs = st.pool.submissions();
        let regs = st.registrations.registrations();
        st.chain.build_template(miner, subs, regs, now_ms())
    }

    /// Logs an object `peer` sent at a level fitting the verdict: a rejection through the
    /// per-peer [`RejectionLog`](crate::peers::RejectionLog) (a flood costs a line per
    /// interval), an ignored one at DEBUG.
    pub fn log_rejection(&self, peer: PeerId, what: &str, error: &dyn std::fmt::Display, reject: bool) {
        if reject {
            self.rejections.reject(peer, what, error);
        } else {
            debug!(%peer, %error, "ignored {what}");
        }
    }

    /// `peer` disconnected: logs the rejections still counted for it.
    pub fn forget_peer(&self, peer: &PeerId) {
        self.rejections.forget(peer);
    }
}

/// Completes once `shutdown` holds `true` — at once if it already does. Unlike waiting for a
/// change, this cannot miss a signal whose notification another `select!` consumed.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Waits until every watched node has the same head, or `deadline`; returns whether they
/// agree. Each channel is marked seen *before* the heads are compared, so a change that lands
/// between the comparison and the wait still wakes it.
pub async fn wait_agree(heads: &mut [watch::Receiver<HeadSnapshot>], deadline: tokio::time::Instant) -> bool {
    loop {
        let first = match heads.first_mut() {
            Some(r) => r.borrow_and_update().meta.hash,
            None => return true,
        };
        let mut agree = true;
        for r in heads.iter_mut() {
            agree &= r.borrow_and_update().meta.hash == first;
        }
        if agree {
            return true;
        }
        let changed = futures::future::select_all(heads.iter_mut().map(|r| Box::pin(r.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let first = heads[0].borrow().meta.hash;
            return heads.iter().all(|r| r.borrow().meta.hash == first);
        }
    }
}
