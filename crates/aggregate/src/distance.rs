//! Exact squared Euclidean distances between updates: the pairwise matrix shared by Krum,
//! Multi-Krum and Bulyan, and the distances of every update to one point (l-nearest,
//! geometric median).
//!
//! A squared distance is exact in `u128`: per coordinate `|a − b| ≤ 2³² − 1`, so its square
//! fits `u64`, and a whole vector cannot reach 2¹²⁸ (that would need 2⁶⁴ coordinates). For
//! speed, squares are summed in `u64` over chunks that provably cannot overflow, each chunk
//! then added into the `u128` ([`Kernel`]); the inner loop is plain integer code the compiler
//! vectorises. Work is split across threads by coordinate ranges and the per-range partial
//! sums added exactly, so the results do not depend on the thread count.

use crate::par::Par;

/// Below this many coordinates per `u64` chunk the split-halves kernel is used instead.
const MIN_SIMPLE_CHUNK: u128 = 256;
/// Chunk of the split-halves kernel: 2³⁰ halves below 2³² each sum below 2⁶².
const SPLIT_CHUNK: usize = 1 << 30;
/// Coordinates of all `n` updates held in cache at once by the pairwise matrix: a tile of
/// `TILE_ELEMS / n` coordinates (clamped) of every update.
const TILE_ELEMS: usize = 1 << 16;

/// How squared differences are summed exactly, chosen from a bound on `|value|`.
///
/// With every `|value| ≤ B`, every squared difference is at most `D = min(2B, 2³² − 1)²`,
/// so a chunk of `L = ⌊(2⁶⁴ − 1) / D⌋` squares cannot overflow a `u64` ("simple" kernel).
/// When `L` would be small (huge values, e.g. a Byzantine input near `i32::MIN`) each square
/// is instead split into its high and low 32-bit halves, summed in two `u64`s over chunks of
/// 2³⁰ ("split" kernel). Both are exact, so they agree; only speed differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Kernel {
    chunk: usize,
    split: bool,
}

impl Kernel {
    /// The kernel for values with `|value| ≤ bound`.
    pub(crate) fn for_bound(bound: u32) -> Self {
        let diff = (u64::from(bound) * 2).min(u64::from(u32::MAX));
        let sq = u128::from(diff) * u128::from(diff);
        if sq == 0 {
            return Kernel { chunk: usize::MAX, split: false };
        }
        let l = u128::from(u64::MAX) / sq;
        if l >= MIN_SIMPLE_CHUNK {
            Kernel { chunk: usize::try_from(l).unwrap_or(usize::MAX), split: false }
        } else {
            Kernel { chunk: SPLIT_CHUNK, split: true }
        }
    }

    /// The kernel for the values of `updates` (and anything within their range).
    pub(crate) fn of(updates: &[&[i32]]) -> Self {
        Kernel::for_bound(updates.iter().map(|u| max_abs(u)).max().unwrap_or(0))
    }

    /// `Σ (a_j − b_j)²`, exact. `a` and `b` have one length and values within the bound.
    pub(crate) fn sq_dist(self, a: &[i32], b: &[i32]) -> u128 {
        debug_assert_eq!(a.len(), b.len());
        let mut total = 0u128;
        for (ca, cb) in a.chunks(self.chunk).zip(b.chunks(self.chunk)) {
            total += if self.split { sum_sq_split(ca, cb) } else { u128::from(sum_sq_simple(ca, cb)) };
        }
        total
    }
}

/// `max |v|` over `v` (0 for an empty slice).
fn max_abs(v: &[i32]) -> u32 {
    v.iter().fold(0u32, |m, x| m.max(x.unsigned_abs()))
}

/// Sum of squared differences in `u64`; the caller keeps the chunk short enough not to
/// overflow.
fn sum_sq_simple(a: &[i32], b: &[i32]) -> u64 {
    let mut s = 0u64;
    for (&x, &y) in a.iter().zip(b) {
        let d = u64::from(x.abs_diff(y));
        s += d * d;
    }
    s
}

/// Sum of squared differences with each square split into 32-bit halves (exact for chunks
/// of up to 2³² coordinates).
fn sum_sq_split(a: &[i32], b: &[i32]) -> u128 {
    let (mut hi, mut lo) = (0u64, 0u64);
    for (&x, &y) in a.iter().zip(b) {
        let d = u64::from(x.abs_diff(y));
        let sq = d * d;
        hi += sq >> 32;
        lo += sq & 0xFFFF_FFFF;
    }
    (u128::from(hi) << 32) + u128::from(lo)
}

/// The symmetric matrix of squared Euclidean distances between all inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pairwise {
    n: usize,
    d: Vec<u128>,
}

impl Pairwise {
    /// Computes all `n(n−1)/2` distances once, tile by tile of coordinates (so the tile of
    /// every input stays in cache), coordinate ranges split over threads.
    pub(crate) fn new(updates: &[&[i32]], par: Par) -> Self {
        let n = updates.len();
        let len = updates.first().map_or(0, |u| u.len());
        let kernel = Kernel::of(updates);
        let tile = (TILE_ELEMS / n.max(1)).clamp(64, 4096).min(kernel.chunk);
        let pairs = n * n.saturating_sub(1) / 2;
        let partials = par.map_ranges(len, pairs.max(1), tile, |range| {
            let mut acc = vec![0u128; pairs];
            let mut start = range.start;
            while start < range.end {
                let end = start.saturating_add(tile).min(range.end);
                let mut p = 0;
                for i in 0..n {
                    let a = &updates[i][start..end];
                    for u in &updates[i + 1..] {
                        acc[p] += kernel.sq_dist(a, &u[start..end]);
                        p += 1;
                    }
                }
                start = end;
            }
            acc
        });
        let mut tri = vec![0u128; pairs];
        for part in partials {
            for (t, v) in tri.iter_mut().zip(part) {
                *t += v;
            }
        }
        let mut d = vec![0u128; n * n];
        let mut p = 0;
        for i in 0..n {
            for j in i + 1..n {
                d[i * n + j] = tri[p];
                d[j * n + i] = tri[p];
                p += 1;
            }
        }
        Pairwise { n, d }
    }

    /// `‖x_i − x_j‖²`.
    pub(crate) fn get(&self, i: usize, j: usize) -> u128 {
        self.d[i * self.n + j]
    }
}

/// `‖x_i − point‖²` for every input, exact; `kernel` must cover the inputs and `point`.
pub(crate) fn distances_to(updates: &[&[i32]], point: &[i32], kernel: Kernel, par: Par) -> Vec<u128> {
    let n = updates.len();
    let partials = par.map_ranges(point.len(), n.max(1), 1024, |range| {
        updates.iter().map(|u| kernel.sq_dist(&u[range.clone()], &point[range.clone()])).collect::<Vec<_>>()
    });
    let mut out = vec![0u128; n];
    for part in partials {
        for (o, v) in out.iter_mut().zip(part) {
            *o += v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(a: &[i32], b: &[i32]) -> u128 {
        a.iter().zip(b).map(|(&x, &y)| (i128::from(x) - i128::from(y)).pow(2) as u128).sum()
    }

    #[test]
    fn kernel_choice() {
        assert_eq!(Kernel::for_bound(0), Kernel { chunk: usize::MAX, split: false });
        // |v| ≤ 2²⁴: squares ≤ 2⁵⁰, 2¹⁴ − 1 of them per chunk (⌊(2⁶⁴−1)/2⁵⁰⌋).
        assert_eq!(Kernel::for_bound(1 << 24), Kernel { chunk: (1 << 14) - 1, split: false });
        assert!(Kernel::for_bound(i32::MIN.unsigned_abs()).split);
        assert!(Kernel::for_bound(1 << 28).split);
    }

    #[test]
    fn extreme_values_are_exact() {
        let a = vec![i32::MIN; 5000];
        let b = vec![i32::MAX; 5000];
        let want = 5000 * u128::from(u32::MAX) * u128::from(u32::MAX);
        // (2³² − 1)² < 2⁶⁴: a one-coordinate simple chunk is always safe.
        for k in [Kernel::for_bound(i32::MIN.unsigned_abs()), Kernel { chunk: 1, split: false }, Kernel { chunk: 7, split: true }] {
            assert_eq!(k.sq_dist(&a, &b), want, "{k:?}");
        }
        let m = Pairwise::new(&[&a, &b, &a], Par { parts: 3, min_work: 0 });
        assert_eq!(m.get(0, 1), want);
        assert_eq!(m.get(1, 2), want);
        assert_eq!(m.get(0, 2), 0);
        assert_eq!(m.get(1, 1), 0);
    }

    proptest! {
        #[test]
        fn kernels_agree_with_naive(rows in proptest::collection::vec(proptest::collection::vec(any::<i32>(), 0..300), 2..6), shift in 0u32..31) {
            let len = rows.iter().map(Vec::len).min().unwrap_or(0);
            let rows: Vec<Vec<i32>> = rows.into_iter().map(|r| r[..len].iter().map(|v| v >> shift).collect()).collect();
            let refs: Vec<&[i32]> = rows.iter().map(|r| r.as_slice()).collect();
            let k = Kernel::of(&refs);
            for parts in [1, 2, 5] {
                let par = Par { parts, min_work: 0 };
                let m = Pairwise::new(&refs, par);
                for i in 0..refs.len() {
                    let to_i = distances_to(&refs, refs[i], k, par);
                    for j in 0..refs.len() {
                        let want = naive(refs[i], refs[j]);
                        prop_assert_eq!(m.get(i, j), want);
                        prop_assert_eq!(to_i[j], want);
                        prop_assert_eq!(Kernel { chunk: 3, split: true }.sq_dist(refs[i], refs[j]), want);
                    }
                }
            }
        }
    }
}
