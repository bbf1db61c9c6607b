//! PLD accountant speed.
//!
//! * `pld/epsilon/{steps}`: one [`pld_epsilon`] call at `q = 0.01`, `σ = 1.1`, `δ = 10⁻⁵`
//!   for 100 to 10,000 steps, default grid (`Δ = 10⁻⁴`); the target is under 100 ms for
//!   10,000 steps.
//! * `pld/ledger/100-rounds-2-kinds`: a [`PldAccountant`] over 100 rounds of two parameter
//!   sets (two groups, one FFT composition), as a ledger recomputes its spend.
//! * `rdp/epsilon/10000`: the RDP accountant on the same parameters, for comparison.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use learnchain_privacy::{PldAccountant, epsilon, pld_epsilon};

fn bench_pld(c: &mut Criterion) {
    let mut group = c.benchmark_group("pld");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for steps in [100u64, 1000, 10_000] {
        group.bench_function(format!("epsilon/{steps}"), |b| {
            b.iter(|| pld_epsilon(black_box(0.01), black_box(1.1), steps, 1e-5))
        });
    }
    group.bench_function("ledger/100-rounds-2-kinds", |b| {
        b.iter(|| {
            let mut acc = PldAccountant::new();
            for r in 0..100u64 {
                let (q, sigma) = if r % 3 == 0 { (0.02, 1.3) } else { (0.01, 1.1) };
                acc.compose(q, sigma, 50)?;
            }
            acc.spent(black_box(1e-5))
        })
    });
    group.finish();

    let mut group = c.benchmark_group("rdp");
    group.bench_function("epsilon/10000", |b| {
        b.iter(|| epsilon(black_box(0.01), black_box(1.1), 10_000, 1e-5))
    });
    group.finish();
}

criterion_group!(benches, bench_pld);
criterion_main!(benches);
