//! Proof-of-work hash rate on one core: header hashes per second through the midstate
//! hasher ([`PowHasher`]), through a plain SHA-256d of the 220-byte header, and through the
//! miner's real loop ([`search`]) over a fixed nonce range with an impossible target.
//!
//! The target is at least 5 M header hashes per second on one core.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::AtomicBool;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use learnchain_chain::pow::{PowHasher, search};
use learnchain_proto::{Genesis, Hash32, Header};

/// Nonces hashed per iteration of the per-hash benchmarks.
const BATCH: u64 = 4096;
/// Nonces searched per call of [`search`].
const SEARCH_RANGE: u64 = 1 << 16;

fn header() -> Header {
    let mut h = Genesis::template("bench-pow", 4, 2, vec![Hash32([1; 32])]).header();
    h.height = 1;
    h.parent = Hash32([2; 32]);
    h.miner = Hash32([3; 32]);
    h
}

fn bench_pow(c: &mut Criterion) {
    let mut group = c.benchmark_group("pow");
    group.throughput(Throughput::Elements(BATCH));

    let h = header();
    group.bench_function(format!("midstate/{BATCH}"), |b| {
        let mut hasher = PowHasher::new(&h);
        let mut start = 0u64;
        b.iter(|| {
            for nonce in start..start + BATCH {
                black_box(hasher.hash(black_box(nonce)));
            }
            start += BATCH;
        })
    });

    group.bench_function(format!("header_hash/{BATCH}"), |b| {
        let mut h = header();
        b.iter(|| {
            for _ in 0..BATCH {
                h.nonce = h.nonce.wrapping_add(1);
                black_box(black_box(&h).hash());
            }
        })
    });

    group.throughput(Throughput::Elements(SEARCH_RANGE));
    let mut impossible = header();
    impossible.target = Hash32::ZERO;
    let cancel = AtomicBool::new(false);
    group.bench_function(format!("search/{SEARCH_RANGE}"), |b| {
        b.iter(|| search(black_box(&impossible), 0, SEARCH_RANGE, &cancel))
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_pow
);
criterion_main!(benches);
