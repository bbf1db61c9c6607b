//! [`ChainCaches`]: results the chain has already computed, kept so that no item is
//! verified twice and no block's aggregate is computed twice.
//!
//! Three kinds of result are kept, each a pure function of its key:
//!
//! - **Verified items** ([`VerifiedSet`]). A submission's ring signature (given that its
//!   ring digest is the group the chain computes at its base, which is checked every time)
//!   and its update-norm bound (a function of its declaration and its base model, which its
//!   base hash commits to) depend only on the submission's bytes and the genesis; a
//!   registration's authorisation (proof of possession, the authority's signature or the
//!   enrolment stamp) only on its bytes and the genesis. The submission id hashes every byte
//!   of a submission, the registration id every byte of a registration, and both carry the
//!   chain id (the hash of the genesis), so the id names the verdict exactly. Only successes
//!   are recorded; an item that failed is verified afresh each time it comes back.
//! - **Aggregates** ([`AggregateCache`]): the genesis rule over a block's submissions,
//!   keyed by the chain id and the block's body root (a Merkle root over the submission ids,
//!   checked against the body before the cache is asked).
//! - **Rings** at a base block (decompressed [`BaseRings`]), keyed by the base hash, which
//!   commits to the registry after it.
//!
//! Data enters when the chain has computed a result (after a submission or registration
//! passed every check, after an aggregate or a ring set was built) and leaves when a later
//! check asks for the same key. The caches never decide validity: every check that depends
//! on chain state (base, round, ring group, registry, quorum, model hash) still runs, and a
//! chain with empty caches reaches the same verdict on every block (tested in `tests.rs`).
//! Each cache is bounded and drops its oldest entries first.
//!
//! A node's chain has caches of its own. Chains that run in one process — the nodes of a
//! `learnchain devnet`, the in-process testnet — may share one [`ChainCaches`], so a ring
//! signature checked by one node is not checked again by the hundred others: the devnet
//! then measures the protocol, not a hundred copies of one computation.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use learnchain_proto::Hash32;
use learnchain_proto::hash::TaggedHasher;

use crate::auth::BaseRings;

/// Domain of verified-submission keys (local to this process, not a protocol hash).
const TAG_VERIFIED_SUBMISSION: &str = "learnchain/cache/verified-submission/v1";
/// Domain of verified-registration keys.
const TAG_VERIFIED_REGISTRATION: &str = "learnchain/cache/verified-registration/v1";
/// Domain of aggregate keys.
const TAG_AGGREGATE: &str = "learnchain/cache/aggregate/v1";

/// Verified items a cache of its own keeps by default.
pub const DEFAULT_VERIFIED: usize = 16_384;
/// Aggregates a cache of its own keeps by default (each is one model-sized vector).
pub const DEFAULT_AGGREGATES: usize = 8;
/// Bases whose rings a cache of its own keeps by default.
pub const DEFAULT_RINGS: usize = 8;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every cache holds only derived data; a poisoned lock still holds valid entries.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How often a cache answered and how often it did not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found their key.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Entries held now.
    pub len: usize,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Counters {
    fn count(&self, hit: bool) {
        let c = if hit { &self.hits } else { &self.misses };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn stats(&self, len: usize) -> CacheStats {
        CacheStats { hits: self.hits.load(Ordering::Relaxed), misses: self.misses.load(Ordering::Relaxed), len }
    }
}

/// A bounded set of keys whose items passed verification; the oldest key leaves first.
pub struct VerifiedSet {
    inner: Mutex<(HashSet<Hash32>, VecDeque<Hash32>)>,
    capacity: usize,
    counters: Counters,
}

impl VerifiedSet {
    /// An empty set holding at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        VerifiedSet { inner: Mutex::new((HashSet::new(), VecDeque::new())), capacity: capacity.max(1), counters: Counters::default() }
    }

    /// The key of a submission with id `id` whose ring signature and update norm verified.
    pub fn submission_key(id: &Hash32) -> Hash32 {
        TaggedHasher::new(TAG_VERIFIED_SUBMISSION).update(id.0).finish()
    }

    /// The key of a registration with id `id` whose authorisation verified.
    pub fn registration_key(id: &Hash32) -> Hash32 {
        TaggedHasher::new(TAG_VERIFIED_REGISTRATION).update(id.0).finish()
    }

    /// Whether `key` was recorded (and is still held).
    pub fn contains(&self, key: &Hash32) -> bool {
        let hit = lock(&self.inner).0.contains(key);
        self.counters.count(hit);
        hit
    }

    /// Records `key`, dropping the oldest keys beyond the capacity.
    pub fn insert(&self, key: Hash32) {
        let mut guard = lock(&self.inner);
        let (set, order) = &mut *guard;
        if !set.insert(key) {
            return;
        }
        order.push_back(key);
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
    }

    /// Hits, misses and size.
    pub fn stats(&self) -> CacheStats {
        let len = lock(&self.inner).0.len();
        self.counters.stats(len)
    }
}

/// A small bounded map from key to a shared value; the oldest entry leaves first.
struct Recent<T> {
    entries: Mutex<VecDeque<(Hash32, Arc<T>)>>,
    capacity: usize,
    counters: Counters,
}

impl<T> Recent<T> {
    fn new(capacity: usize) -> Self {
        Recent { entries: Mutex::new(VecDeque::new()), capacity: capacity.max(1), counters: Counters::default() }
    }

    fn get(&self, key: &Hash32) -> Option<Arc<T>> {
        let hit = lock(&self.entries).iter().find(|(k, _)| k == key).map(|(_, v)| Arc::clone(v));
        self.counters.count(hit.is_some());
        hit
    }

    fn insert(&self, key: Hash32, value: Arc<T>) {
        let mut entries = lock(&self.entries);
        if entries.iter().any(|(k, _)| *k == key) {
            return;
        }
        if entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back((key, value));
    }

    fn stats(&self) -> CacheStats {
        self.counters.stats(lock(&self.entries).len())
    }
}

/// Recently computed aggregates, keyed by chain id and body root.
pub struct AggregateCache(Recent<Vec<i32>>);

impl AggregateCache {
    /// An empty cache of at most `capacity` aggregates.
    pub fn new(capacity: usize) -> Self {
        AggregateCache(Recent::new(capacity))
    }

    /// The key of the aggregate of the submissions a body root commits to, on `chain_id`
    /// (which fixes the rule and the model size).
    pub fn key(chain_id: &Hash32, body_root: &Hash32) -> Hash32 {
        TaggedHasher::new(TAG_AGGREGATE).update(chain_id.0).update(body_root.0).finish()
    }

    /// The aggregate under `key`, computing and recording it on a miss. A failed computation
    /// is returned and not recorded.
    pub fn get_or_compute<E>(&self, key: Hash32, compute: impl FnOnce() -> Result<Vec<i32>, E>) -> Result<Arc<Vec<i32>>, E> {
        if let Some(hit) = self.0.get(&key) {
            return Ok(hit);
        }
        let value = Arc::new(compute()?);
        self.0.insert(key, Arc::clone(&value));
        Ok(value)
    }

    /// Hits, misses and size.
    pub fn stats(&self) -> CacheStats {
        self.0.stats()
    }
}

/// Rings of recent base blocks, keyed by base hash.
pub struct RingCache(Recent<BaseRings>);

impl RingCache {
    /// An empty cache of the rings of at most `capacity` bases.
    pub fn new(capacity: usize) -> Self {
        RingCache(Recent::new(capacity))
    }

    /// The rings at `base`, if held.
    pub fn get(&self, base: &Hash32) -> Option<Arc<BaseRings>> {
        self.0.get(base)
    }

    /// Records the rings at their base.
    pub fn insert(&self, rings: Arc<BaseRings>) {
        self.0.insert(rings.base(), rings);
    }

    /// Hits, misses and size.
    pub fn stats(&self) -> CacheStats {
        self.0.stats()
    }
}

/// The caches of one chain, or of every chain in a process that shares them (clone it).
#[derive(Clone)]
pub struct ChainCaches {
    /// Items that passed verification.
    pub verified: Arc<VerifiedSet>,
    /// Recent aggregates.
    pub aggregates: Arc<AggregateCache>,
    /// Rings of recent bases.
    pub rings: Arc<RingCache>,
}

impl ChainCaches {
    /// Caches of the default sizes, for one chain.
    pub fn new() -> Self {
        ChainCaches::with_capacity(DEFAULT_VERIFIED, DEFAULT_AGGREGATES, DEFAULT_RINGS)
    }

    /// Caches of the given sizes (each at least one entry).
    pub fn with_capacity(verified: usize, aggregates: usize, rings: usize) -> Self {
        ChainCaches {
            verified: Arc::new(VerifiedSet::new(verified)),
            aggregates: Arc::new(AggregateCache::new(aggregates)),
            rings: Arc::new(RingCache::new(rings)),
        }
    }

    /// Caches for many chains of one process (a devnet of `nodes` nodes): the same number
    /// of verified items, and room for the aggregates and rings of every branch tip the
    /// nodes may be on at once.
    pub fn shared(nodes: usize) -> Self {
        let tips = nodes.clamp(1, 64);
        ChainCaches::with_capacity(DEFAULT_VERIFIED, DEFAULT_AGGREGATES.max(tips), DEFAULT_RINGS.max(tips))
    }
}

impl Default for ChainCaches {
    fn default() -> Self {
        ChainCaches::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verified_set_is_bounded_and_forgets_the_oldest_first() {
        let set = VerifiedSet::new(3);
        let keys: Vec<Hash32> = (0..5u8).map(|i| VerifiedSet::submission_key(&Hash32([i; 32]))).collect();
        for k in &keys {
            set.insert(*k);
            set.insert(*k);
        }
        assert_eq!(set.stats().len, 3);
        assert!(!set.contains(&keys[0]) && !set.contains(&keys[1]));
        assert!(keys[2..].iter().all(|k| set.contains(k)));
        assert_eq!(set.stats(), CacheStats { hits: 3, misses: 2, len: 3 });
        // Submission and registration keys of one id differ.
        let id = Hash32([7; 32]);
        assert_ne!(VerifiedSet::submission_key(&id), VerifiedSet::registration_key(&id));
    }

    #[test]
    fn aggregates_are_computed_once_and_failures_are_not_kept() {
        let cache = AggregateCache::new(2);
        let key = AggregateCache::key(&Hash32([1; 32]), &Hash32([2; 32]));
        assert_ne!(key, AggregateCache::key(&Hash32([3; 32]), &Hash32([2; 32])), "the chain id is part of the key");
        let failed: Result<_, &str> = cache.get_or_compute(key, || Err("overflow"));
        assert_eq!(failed, Err("overflow"));
        let mut calls = 0;
        for _ in 0..3 {
            let v = cache.get_or_compute::<()>(key, || {
                calls += 1;
                Ok(vec![1, 2, 3])
            });
            assert_eq!(v.as_deref().map(|v| v.as_slice()), Ok(&[1, 2, 3][..]));
        }
        assert_eq!(calls, 1);
        for i in 0..3u8 {
            let _ = cache.get_or_compute::<()>(Hash32([i; 32]), || Ok(vec![]));
        }
        assert_eq!(cache.stats().len, 2, "bounded");
    }
}
