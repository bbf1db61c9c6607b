//! Sign and verify time of round-scoped bLSAG for ring sizes 4, 16, 64 and 256, and ten
//! signatures over one 64-member ring (the membership work of a full block).
//!
//! Run with `cargo bench -p learnchain-identity --bench ring`. The target is verification
//! at ≤ 0.15 ms per ring member.

#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use learnchain_identity::{MemberSecret, Ring, sign, verify};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const CHAIN: [u8; 32] = [3; 32];

fn setup(n: usize) -> (Vec<MemberSecret>, Ring) {
    let mut rng = ChaCha20Rng::seed_from_u64(n as u64);
    let secrets: Vec<MemberSecret> = (0..n).map(|_| MemberSecret::generate(&mut rng)).collect();
    let ring = Ring::new(secrets.iter().map(MemberSecret::public).collect()).expect("ring");
    (secrets, ring)
}

fn bench(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut g = c.benchmark_group("blsag");
    g.sample_size(10);
    for n in [4usize, 16, 64, 256] {
        let (secrets, ring) = setup(n);
        let msg = [9u8; 32];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("sign", n), &n, |b, _| {
            b.iter(|| sign(&secrets[n / 2], &ring, &CHAIN, 7, &msg, &mut rng).expect("sign"))
        });
        let sig = sign(&secrets[n / 2], &ring, &CHAIN, 7, &msg, &mut rng).expect("sign");
        g.bench_with_input(BenchmarkId::new("verify", n), &n, |b, _| {
            b.iter(|| verify(&ring, &CHAIN, 7, &msg, &sig).expect("verifies"))
        });
    }
    g.finish();

    let (secrets, ring) = setup(64);
    let sigs: Vec<_> = (0..10)
        .map(|i| sign(&secrets[i], &ring, &CHAIN, 7, &[i as u8; 32], &mut rng).expect("sign"))
        .collect();
    c.bench_function("blsag/block_10_submissions_ring_64", |b| {
        b.iter(|| {
            for (i, s) in sigs.iter().enumerate() {
                verify(&ring, &CHAIN, 7, &[i as u8; 32], s).expect("verifies");
            }
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
