//! Block validation time against submission count and model size.
//!
//! `import/{subs}x{params}` times the whole [`Chain::import`] of a mined block of `subs`
//! ring-signed submissions of a `params`-parameter softmax model into a freshly opened chain
//! (one per iteration; opening it is setup and not timed). Every benchmark chain has 64
//! genesis members and a ring size of 64, so each submission carries a 64-member bLSAG ring
//! signature — the membership issue's target is a block of 10 such submissions validated
//! in at most 120 ms.
//!
//! For that largest case the `stages/*` group times the pieces of an import one by one, so a
//! miss can be attributed: decoding the gossiped bytes, the context-free checks
//! ([`CheckedBlock::check`], which hashes every update), building the rings of the registry
//! (`rings_at_base`, once per base and cached), the ring signatures, the
//! aggregation with the model hash, and the store commit (redb write and fsync). The
//! `*_tmpfs` variants put the database on `/dev/shm`, separating the disk flush from the CPU
//! work.
//!
//! `pooled/*` is the import of a block of 100 submissions × 100k parameters over 32-member
//! rings (128 members in 4 groups) on one core — the scale issue's target is 300 ms — in
//! two states: `cold`, every item verified at import, and `pooled`, every submission
//! already verified when it entered the pool (a warm verified-item cache, fresh aggregate
//! and ring caches), as on a node that received the round's submissions by gossip.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use learnchain_aggregate::{Rule, aggregate, apply};
use learnchain_chain::Registry;
use learnchain_chain::auth::BaseRings;
use learnchain_identity::MemberSecret;
use learnchain_chain::pow::{u256_to_hash, work};
use learnchain_chain::store::{Checkpoint, HeadChange, Store};
use learnchain_chain::validate::{CheckedBlock, base_norm_sq, check_update_norm};
use learnchain_chain::{BlockMeta, Chain, ChainCaches, testing};
use learnchain_proto::hash::model_hash;
use learnchain_proto::{Block, Genesis, Hash32, Submission, decode, encode};
use tempfile::TempDir;

/// Classes of every benchmark model; features are chosen to reach the parameter count.
const CLASSES: u32 = 10;
/// Members of every benchmark genesis, and its ring size: one 64-member ring.
const MEMBERS: usize = 64;

/// A genesis whose softmax model has exactly `params` parameters (a multiple of `CLASSES`).
fn genesis(params: u32, keys: &[MemberSecret]) -> Genesis {
    let features = params / CLASSES - 1;
    let members = keys.iter().map(|k| Hash32(k.public().to_bytes())).collect();
    let mut g = Genesis::template("bench-validate", features, CLASSES, members);
    g.consensus.quorum = 1;
    g.consensus.max_submissions = 16;
    g.consensus.ring_size = MEMBERS as u32;
    g.fit_limits();
    let mut initial = [0xffu8; 32];
    initial[0] = 0x00;
    let mut limit = [0xffu8; 32];
    limit[0] = 0x0f;
    g.pow.initial_target = Hash32(initial);
    g.pow.pow_limit = Hash32(limit);
    g.validate().expect("benchmark genesis is valid");
    assert_eq!(g.param_count(), params as usize);
    g
}

fn open(g: &Genesis) -> (Chain, TempDir) {
    open_in(g, false)
}

fn open_in(g: &Genesis, in_memory: bool) -> (Chain, TempDir) {
    let dir = if in_memory { tempfile::tempdir_in(TMPFS) } else { tempfile::tempdir() }.expect("tempdir");
    let chain = Chain::open(&dir.path().join("chain.redb"), g.clone()).expect("open chain");
    (chain, dir)
}

/// A mined block on the genesis of `g` carrying one submission from each of `subs` members.
fn mined_block(g: &Genesis, keys: &[MemberSecret], subs: usize) -> Block {
    let (chain, _dir) = open(g);
    let signers: Vec<&MemberSecret> = keys[..subs].iter().collect();
    let block = testing::mined_block(&chain, &signers, 1);
    // Sanity: the block imports.
    let (mut check, _d) = open(g);
    check.import(block.clone(), u64::MAX / 2).expect("benchmark block is valid");
    block
}

fn keys() -> Vec<MemberSecret> {
    learnchain_identity::test_member_keys(MEMBERS)
}

fn bench_import(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("import");
    group.sample_size(20);
    for &params in &[1_000u32, 10_000, 100_000] {
        let g = genesis(params, &keys);
        for &subs in &[1usize, 4, 10] {
            let block = mined_block(&g, &keys, subs);
            group.throughput(Throughput::Elements(subs as u64 * u64::from(params)));
            group.bench_function(format!("{subs}x{params}"), |b| {
                b.iter_batched(
                    || (open(&g), block.clone()),
                    |((mut chain, dir), block)| {
                        let outcome = chain.import(block, u64::MAX / 2).expect("import");
                        // Returned so that closing the chain and removing the directory
                        // happen outside the timed section.
                        (outcome, chain, dir)
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    group.finish();
}

/// Where the in-memory variants put their database: tmpfs, so no fsync reaches a disk.
const TMPFS: &str = "/dev/shm";

fn fresh_store(in_memory: bool) -> (Store, TempDir) {
    let dir = if in_memory { tempfile::tempdir_in(TMPFS) } else { tempfile::tempdir() }.expect("tempdir");
    let store = Store::open(&dir.path().join("store.redb")).expect("open store");
    (store, dir)
}

fn bench_stages(c: &mut Criterion) {
    let keys = keys();
    let (subs, params) = (10usize, 100_000u32);
    let g = genesis(params, &keys);
    let chain_id = g.chain_id();
    let block = mined_block(&g, &keys, subs);
    let bytes = encode(&block);
    let max = usize::try_from(g.limits.max_block_bytes).expect("fits");
    let checked = CheckedBlock::check(&g, &chain_id, block.clone()).expect("checks");
    let digests = checked.digests.clone();
    let registry = Registry::genesis(&g);
    let rings = BaseRings::new(&registry, &block.header.parent, g.consensus.ring_size);
    let initial = g.model.initial_weights();
    let initial_hash = model_hash(&initial);

    let mut group = c.benchmark_group("stages");
    group.sample_size(20);
    let name = |stage: &str| format!("{stage}/{subs}x{params}");

    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function(name("decode"), |b| {
        b.iter(|| decode::<Block>(black_box(&bytes), max).expect("decodes"))
    });
    group.bench_function(name("encode"), |b| b.iter(|| encode(black_box(&block))));

    group.throughput(Throughput::Elements(subs as u64 * u64::from(params)));
    group.bench_function(name("clone_block"), |b| b.iter(|| black_box(&block).clone()));
    group.bench_function(name("check"), |b| {
        b.iter_batched(
            || block.clone(),
            |blk| CheckedBlock::check(&g, &chain_id, blk).expect("checks"),
            BatchSize::LargeInput,
        )
    });
    group.bench_function(name("signing_digests"), |b| {
        b.iter(|| black_box(&block).submissions.iter().map(Submission::signing_digest).collect::<Vec<_>>())
    });
    group.bench_function(name("rings_at_base"), |b| {
        b.iter(|| BaseRings::new(black_box(&registry), &block.header.parent, g.consensus.ring_size))
    });
    group.bench_function(name("ring_signatures"), |b| {
        b.iter(|| {
            for (s, d) in block.submissions.iter().zip(&digests) {
                rings.verify(black_box(s), d).expect("verifies");
            }
        })
    });
    group.bench_function(name("ring_signatures_all_cores"), |b| {
        let items: Vec<(&Submission, &Hash32)> = block.submissions.iter().zip(&digests).collect();
        b.iter(|| rings.verify_all(black_box(&items)).expect("verifies"))
    });
    group.bench_function(name("update_norm_checks"), |b| {
        b.iter(|| {
            let base = base_norm_sq(&g, &initial);
            for s in &block.submissions {
                check_update_norm(&g, black_box(s), s.update.as_i32().expect("an i32 update"), base).expect("within the bound");
            }
        })
    });
    group.bench_function(name("aggregate_apply_hash"), |b| {
        b.iter(|| {
            let mut model = initial.clone();
            let updates: Vec<&[i32]> = block.submissions.iter().map(|s| s.update.as_i32().expect("an i32 update")).collect();
            let delta = aggregate(Rule::Mean, &updates).expect("aggregates");
            apply(&mut model, &delta).expect("applies");
            model_hash(&model)
        })
    });
    group.throughput(Throughput::Elements(u64::from(params)));
    group.bench_function(name("model_hash"), |b| b.iter(|| model_hash(black_box(&initial))));

    // The store commit as `Chain::commit` performs it when the head moves.
    let h = &block.header;
    let meta = BlockMeta::of(h, h.hash(), u256_to_hash(work(&h.target)), model_hash(&initial), subs as u32, 0);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    let registry = Registry::default();
    for (label, in_memory) in [("store_commit", false), ("store_commit_tmpfs", true)] {
        group.bench_function(name(label), |b| {
            b.iter_batched(
                || fresh_store(in_memory),
                |(store, dir)| {
                    // A block at a checkpoint height: the model and registry are written too.
                    let checkpoint = Checkpoint {
                        height: meta.height,
                        hash: meta.hash,
                        model: &initial,
                        model_hash: initial_hash,
                        registry: &registry,
                    };
                    let change = HeadChange {
                        head: meta.hash,
                        height: meta.height,
                        canonical: vec![(meta.height, meta.hash)],
                        checkpoint: Some(checkpoint),
                        prune: None,
                    };
                    store.commit(&block, &meta, Some(change)).expect("commits");
                    (store, dir)
                },
                BatchSize::PerIteration,
            )
        });
    }
    // Steady state: one long-lived store, a new block key each iteration (the first
    // commits into a fresh file also pay for growing it).
    for (label, in_memory) in [("store_commit_steady", false), ("store_commit_steady_tmpfs", true)] {
        let (store, _dir) = fresh_store(in_memory);
        let mut n = 0u64;
        group.bench_function(name(label), |b| {
            b.iter(|| {
                n += 1;
                let mut m = meta.clone();
                m.hash.0[..8].copy_from_slice(&n.to_le_bytes());
                m.height = n;
                // Most blocks: no checkpoint, the model is not written.
                let change = HeadChange {
                    head: m.hash,
                    height: m.height,
                    canonical: vec![(m.height, m.hash)],
                    checkpoint: None,
                    prune: None,
                };
                store.commit(&block, &m, Some(change)).expect("commits");
            })
        });
    }
    // The whole import with the database on tmpfs: validation plus the store's CPU work.
    group.bench_function(name("import_tmpfs"), |b| {
        b.iter_batched(
            || (open_in(&g, true), block.clone()),
            |((mut chain, dir), block)| (chain.import(block, u64::MAX / 2).expect("import"), chain, dir),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn bench_pooled(c: &mut Criterion) {
    const SUBS: usize = 100;
    const PARAMS: u32 = 100_000;
    let keys = learnchain_identity::test_member_keys(128);
    let mut g = genesis(PARAMS, &keys);
    g.consensus.ring_size = 32;
    g.consensus.max_submissions = SUBS as u32;
    g.fit_limits();
    g.validate().expect("valid");
    let (chain, _dir) = open(&g);
    let signers: Vec<&MemberSecret> = keys.iter().step_by(keys.len() / SUBS).take(SUBS).collect();
    let block = testing::mined_block(&chain, &signers, 1);
    assert_eq!(block.submissions.len(), SUBS);
    // What a node's pool verified: every submission, through the chain's own check.
    let warm = ChainCaches::new();
    let (pool_chain, _d) = open_cached(&g, warm.clone());
    for s in &block.submissions {
        pool_chain.check_submission(s).expect("pooled submission is valid");
    }
    drop(pool_chain);
    let mut group = c.benchmark_group("pooled");
    group.sample_size(10);
    let name = |state: &str| format!("{state}/{SUBS}x{PARAMS}");
    for (state, verified) in [("cold", None), ("pooled", Some(warm.verified.clone()))] {
        group.bench_function(name(state), |b| {
            b.iter_batched(
                || {
                    let mut caches = ChainCaches::new();
                    if let Some(v) = &verified {
                        caches.verified = v.clone();
                    }
                    (open_cached(&g, caches), block.clone())
                },
                |((mut chain, dir), block)| (chain.import(block, u64::MAX / 2).expect("import"), chain, dir),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn open_cached(g: &Genesis, caches: ChainCaches) -> (Chain, TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = Chain::open_with_caches(&dir.path().join("chain.redb"), g.clone(), caches).expect("open chain");
    (chain, dir)
}

criterion_group!(
    benches,
    bench_stages,
    bench_import,
    bench_pooled
);
criterion_main!(benches);
