//! The consensus view of a model: its architecture, the layout of its flat fixed-point
//! parameter vector, and its deterministic initial weights.
//!
//! Parameters are `i32` in fixed point with `frac_bits` fractional bits (value = q / 2^f).
//! The flat layout, shared by every crate, is:
//!
//! * softmax regression: `W` (features × classes, row-major), then `b` (classes);
//! * MLP with one hidden layer: `W1` (features × hidden), `b1` (hidden),
//!   `W2` (hidden × classes), `b2` (classes).
//!
//! Initial weights are drawn with integer arithmetic only (SplitMix64 seeded by the genesis
//! `init_seed`, Glorot-uniform limits computed with an integer square root), so every node
//! on every platform starts from the same model hash. Biases, and all softmax-regression
//! weights, start at zero.

use serde::{Deserialize, Serialize};

/// Which network the chain trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// Multinomial logistic regression.
    Softmax,
    /// One hidden layer with ReLU, then softmax.
    Mlp,
}

/// Architecture, shape, initial seed and fixed-point scale of the global model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The network.
    pub architecture: Architecture,
    /// Input features.
    pub features: u32,
    /// Output classes.
    pub classes: u32,
    /// Hidden units (MLP only; must be 0 for softmax).
    #[serde(default)]
    pub hidden: u32,
    /// Seed of the deterministic initial weights.
    pub init_seed: u64,
    /// Fractional bits of the fixed-point parameters.
    pub frac_bits: u8,
}

/// Where one tensor lives in the flat parameter vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorSlot {
    /// First index.
    pub offset: usize,
    /// Rows (1 for a bias).
    pub rows: usize,
    /// Columns.
    pub cols: usize,
}

impl TensorSlot {
    /// Number of scalars.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index range in the flat vector.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

impl ModelSpec {
    /// The tensors in flat order: `[W, b]` or `[W1, b1, W2, b2]`.
    pub fn layout(&self) -> Vec<TensorSlot> {
        let f = self.features as usize;
        let c = self.classes as usize;
        let h = self.hidden as usize;
        let shapes: Vec<(usize, usize)> = match self.architecture {
            Architecture::Softmax => vec![(f, c), (1, c)],
            Architecture::Mlp => vec![(f, h), (1, h), (h, c), (1, c)],
        };
        let mut offset = 0;
        shapes
            .into_iter()
            .map(|(rows, cols)| {
                let slot = TensorSlot { offset, rows, cols };
                offset += rows * cols;
                slot
            })
            .collect()
    }

    /// Total number of parameters (saturating, so absurd shapes are caught by validation).
    pub fn param_count(&self) -> u64 {
        let f = u64::from(self.features);
        let c = u64::from(self.classes);
        let h = u64::from(self.hidden);
        match self.architecture {
            Architecture::Softmax => f.saturating_mul(c).saturating_add(c),
            Architecture::Mlp => f
                .saturating_mul(h)
                .saturating_add(h)
                .saturating_add(h.saturating_mul(c))
                .saturating_add(c),
        }
    }

    /// The fixed-point scale, 2^frac_bits.
    pub fn scale(&self) -> f64 {
        (1u64 << self.frac_bits) as f64
    }

    /// The deterministic initial weights. Call only on a validated spec.
    pub fn initial_weights(&self) -> Vec<i32> {
        let mut w = vec![0i32; usize::try_from(self.param_count()).unwrap_or(0)];
        if self.architecture == Architecture::Softmax {
            return w;
        }
        let mut rng = SplitMix64(self.init_seed);
        let one = 1u128 << self.frac_bits;
        for (i, slot) in self.layout().into_iter().enumerate() {
            if i % 2 == 1 {
                continue; // biases stay zero
            }
            // Glorot uniform: limit = sqrt(6 / (fan_in + fan_out)), in fixed point
            // limit_q = isqrt(6 · 2^(2f) / (fan_in + fan_out)).
            let fans = (slot.rows + slot.cols) as u128;
            let limit = isqrt(6 * one * one / fans.max(1)) as u64;
            let span = 2 * limit + 1;
            for x in &mut w[slot.range()] {
                let r = ((u128::from(rng.next()) * u128::from(span)) >> 64) as i64;
                *x = (r - limit as i64) as i32;
            }
        }
        w
    }
}

/// SplitMix64, a tiny generator with a fixed, documented output sequence.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Integer square root (floor).
pub fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = (n as f64).sqrt() as u128; // a starting guess only; corrected below
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mlp() -> ModelSpec {
        ModelSpec {
            architecture: Architecture::Mlp,
            features: 30,
            classes: 2,
            hidden: 16,
            init_seed: 7,
            frac_bits: 16,
        }
    }

    #[test]
    fn layout_covers_all_params() {
        let s = mlp();
        let layout = s.layout();
        assert_eq!(layout.len(), 4);
        let end = layout.last().map(|l| l.offset + l.len()).unwrap_or(0);
        assert_eq!(end as u64, s.param_count());
        assert_eq!(s.param_count(), 30 * 16 + 16 + 16 * 2 + 2);
    }

    #[test]
    fn init_is_deterministic_and_bounded() {
        let s = mlp();
        let a = s.initial_weights();
        assert_eq!(a, s.initial_weights());
        let limit = ((6.0f64 / 46.0).sqrt() * 65536.0) as i32 + 1;
        assert!(a[..480].iter().all(|v| v.abs() <= limit));
        assert!(a[..480].iter().any(|v| *v != 0));
        assert!(a[480..496].iter().all(|v| *v == 0));
        let mut other = s.clone();
        other.init_seed = 8;
        assert_ne!(a, other.initial_weights());
    }

    #[test]
    fn isqrt_exact() {
        for n in 0u128..2000 {
            let r = isqrt(n);
            assert!(r * r <= n && (r + 1) * (r + 1) > n);
        }
        assert_eq!(isqrt(u64::MAX as u128 * 4), 8589934591);
    }
}
