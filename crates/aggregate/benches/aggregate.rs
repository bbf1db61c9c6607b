//! Aggregation throughput.
//!
//! * `aggregate/mean/10x{params}`: the mean over 10 updates of 10k, 100k and 1M parameters.
//! * `rules/{rule}/{n}x100000`: every rule over n = 10, 50, 100 updates of a 100k-parameter
//!   model, values deterministic pseudo-random within ±2²⁴; and `rules/krum-full-range/…`,
//!   Krum with one input spanning ±2³¹ (the slower exact summation for huge values).

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::time::Duration;

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

/// `n` updates of `params` values within ±2²⁴ (splitmix64 of the position).
fn updates(n: usize, params: usize) -> Vec<Vec<i32>> {
    let mix = |x: u64| {
        let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..n)
        .map(|i| (0..params).map(|j| (mix((i * params + j) as u64) % (1 << 25)) as i32 - (1 << 24)).collect())
        .collect()
}

fn rules_for(n: u32) -> Vec<(&'static str, Rule, bool)> {
    // (name, rule, slow: 10 samples)
    vec![
        ("mean", Rule::Mean, false),
        ("median", Rule::Median, false),
        ("trimmed-mean", Rule::TrimmedMean { trim_ppm: 100_000 }, false),
        ("krum", Rule::Krum { f: n / 5 }, true),
        ("multi-krum", Rule::MultiKrum { f: n / 5, m: n - n / 5 }, true),
        ("bulyan", Rule::Bulyan { f: (n - 3) / 4 }, true),
        ("geometric-median", Rule::GeometricMedian { iterations: 10 }, true),
        ("l-nearest", Rule::LNearest { l: n / 2 }, false),
    ]
}

fn bench_rules(c: &mut Criterion) {
    const PARAMS: usize = 100_000;
    let mut group = c.benchmark_group("rules");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for n in [10usize, 50, 100] {
        let data = updates(n, PARAMS);
        let refs: Vec<&[i32]> = data.iter().map(|u| u.as_slice()).collect();
        group.throughput(Throughput::Elements((n * PARAMS) as u64));
        for (name, rule, slow) in rules_for(n as u32) {
            assert!(aggregate(rule, &refs).is_ok(), "{rule} must accept {n} inputs");
            group.sample_size(if slow { 10 } else { 20 });
            group.bench_function(format!("{name}/{n}x{PARAMS}"), |b| {
                b.iter(|| aggregate(rule, std::hint::black_box(&refs)))
            });
        }
    }
    // Worst case for the distance kernel: values over the whole i32 range (e.g. one
    // Byzantine input near i32::MIN) force the split-halves summation.
    let n = 100;
    let mut data = updates(n, PARAMS);
    data[0].iter_mut().for_each(|v| *v = v.saturating_mul(128));
    let refs: Vec<&[i32]> = data.iter().map(|u| u.as_slice()).collect();
    group.sample_size(10);
    group.bench_function(format!("krum-full-range/{n}x{PARAMS}"), |b| {
        b.iter(|| aggregate(Rule::Krum { f: 20 }, std::hint::black_box(&refs)))
    });
    group.finish();
}

criterion_group!(benches, bench_mean, bench_rules);
criterion_main!(benches);
