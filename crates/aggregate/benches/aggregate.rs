//! Aggregation throughput: parameters per second for the mean over 10 updates.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use learnchain_aggregate::{Rule, aggregate};

fn bench_mean(c: &mut Criterion) {
    let mut group = c.benchmark_group("aggregate");
    for &params in &[10_000usize, 100_000, 1_000_000] {
        let updates: Vec<Vec<i32>> = (0..10)
            .map(|i| (0..params).map(|j| ((i * 7919 + j * 104729) % 65536) as i32 - 32768).collect())
            .collect();
        let refs: Vec<&[i32]> = updates.iter().map(|u| u.as_slice()).collect();
        group.throughput(Throughput::Elements((params * refs.len()) as u64));
        group.bench_function(format!("mean/10x{params}"), |b| {
            b.iter(|| aggregate(Rule::Mean, std::hint::black_box(&refs)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_mean);
criterion_main!(benches);
