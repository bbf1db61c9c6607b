//! The PLD accountant over a grid of DP-SGD parameters, for comparison with Google's
//! `dp-accounting` (`scripts/pld-compare.sh`) and for timing.
//!
//! ```text
//! cargo run --release -p learnchain-privacy --example pld_grid < cells.jsonl
//!     reads one JSON object {"q", "sigma", "steps", "delta"} a line and prints each back
//!     with "epsilon" (PLD), "rdp_epsilon", "interval" (grid used) and "ms" (PLD time) added
//! cargo run --release -p learnchain-privacy --example pld_grid -- time [STEPS] [REPEATS]
//!     times pld_epsilon(q = 0.01, σ = 1.1, STEPS (10000), δ = 1e-5), REPEATS (20) times
//! cargo run --release -p learnchain-privacy --example pld_grid -- noise [TARGET] [STEPS]
//!     times pld_noise_for_epsilon(TARGET (1.0), δ = 1e-5, q = 0.01, STEPS (10000)) and
//!     prints the σ of both accountants
//! ```

use std::io::{self, BufRead, Write};
use std::time::Instant;

use learnchain_privacy::{epsilon, noise_for_epsilon, pld_epsilon, pld_noise_for_epsilon};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Cell {
    q: f64,
    sigma: f64,
    steps: u64,
    delta: f64,
}

#[derive(Serialize)]
struct Row {
    q: f64,
    sigma: f64,
    steps: u64,
    delta: f64,
    epsilon: f64,
    rdp_epsilon: f64,
    interval: f64,
    ms: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("time") {
        let steps: u64 = args
            .get(1)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(10_000);
        let repeats: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(20);
        let first = Instant::now();
        let spent = pld_epsilon(0.01, 1.1, steps, 1e-5)?;
        let cold = first.elapsed().as_secs_f64() * 1e3;
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let t = Instant::now();
            std::hint::black_box(pld_epsilon(0.01, 1.1, steps, 1e-5)?);
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(cold);
        let min = times.first().copied().unwrap_or(cold);
        println!(
            "pld_epsilon(q=0.01, sigma=1.1, steps={steps}, delta=1e-5) = {:.6}: first call {cold:.1} ms, \
             median {median:.1} ms, min {min:.1} ms over {repeats} calls",
            spent.epsilon
        );
        return Ok(());
    }
    if args.first().map(String::as_str) == Some("noise") {
        let target: f64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1.0);
        let steps: u64 = args
            .get(2)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(10_000);
        let t = Instant::now();
        let pld = pld_noise_for_epsilon(target, 1e-5, 0.01, steps)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let rdp = noise_for_epsilon(target, 1e-5, 0.01, steps)?;
        println!(
            "noise for eps={target} at delta=1e-5, q=0.01, steps={steps}: PLD sigma {pld:.5} \
             ({ms:.0} ms), RDP sigma {rdp:.5}"
        );
        return Ok(());
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for line in io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let c: Cell = serde_json::from_str(&line)?;
        let t = Instant::now();
        let pld = pld_epsilon(c.q, c.sigma, c.steps, c.delta)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let rdp = epsilon(c.q, c.sigma, c.steps, c.delta)?;
        let row = Row {
            q: c.q,
            sigma: c.sigma,
            steps: c.steps,
            delta: c.delta,
            epsilon: pld.epsilon,
            rdp_epsilon: rdp.epsilon,
            interval: pld.value_discretization_interval,
            ms,
        };
        writeln!(out, "{}", serde_json::to_string(&row)?)?;
        out.flush()?;
    }
    Ok(())
}
