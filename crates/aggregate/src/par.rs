//! Deterministic fork-join over coordinate ranges with scoped threads.
//!
//! A job is cut into contiguous ranges, each range is computed on its own thread, and the
//! results come back **in range order**. Callers combine them by concatenation or by exact
//! integer addition (associative and commutative), so the result never depends on how many
//! threads ran — only the speed does.

use std::ops::Range;
use std::thread;

/// How to split work: into at most `parts` ranges, and only if the job has at least
/// `min_work` units of work (else it runs inline on the calling thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Par {
    /// Most ranges (threads) per job.
    pub(crate) parts: usize,
    /// Smallest job worth spawning threads for.
    pub(crate) min_work: usize,
}

impl Par {
    /// One range per available core; jobs under ~256k units run inline.
    pub(crate) fn auto() -> Self {
        Par { parts: thread::available_parallelism().map_or(1, |n| n.get()), min_work: 1 << 18 }
    }

    /// Splits `0..len` into contiguous ranges whose starts are multiples of `align`
    /// (`len = 0` gives the one empty range `0..0`) and maps `f` over them in parallel, results in range
    /// order. `cost` is the work per index, compared with `min_work`.
    pub(crate) fn map_ranges<T: Send>(
        self,
        len: usize,
        cost: usize,
        align: usize,
        f: impl Fn(Range<usize>) -> T + Sync,
    ) -> Vec<T> {
        let parts = if len.saturating_mul(cost) < self.min_work { 1 } else { self.parts.max(1) };
        let mut ranges = split(len, parts, align.max(1)).into_iter();
        let first = ranges.next().unwrap_or(0..0);
        thread::scope(|s| {
            let f = &f;
            let handles: Vec<_> = ranges.map(|r| s.spawn(move || f(r))).collect();
            let mut out = Vec::with_capacity(handles.len() + 1);
            out.push(f(first));
            for h in handles {
                match h.join() {
                    Ok(v) => out.push(v),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            out
        })
    }
}

/// `0..len` cut into at most `parts` non-empty contiguous ranges starting at multiples of
/// `align` (none for `len = 0`).
fn split(len: usize, parts: usize, align: usize) -> Vec<Range<usize>> {
    let per = len.div_ceil(parts.max(1)).div_ceil(align).saturating_mul(align);
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    while start < len {
        let end = start.saturating_add(per).min(len);
        out.push(start..end);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_the_range_in_order() {
        for len in 0..50 {
            for parts in 1..6 {
                for align in [1, 4, 16] {
                    let r = split(len, parts, align);
                    if len == 0 {
                        assert!(r.is_empty());
                        continue;
                    }
                    assert!(r.len() <= parts.max(1));
                    assert!(r.iter().all(|r| !r.is_empty()));
                    assert_eq!(r.first().map(|r| r.start), Some(0));
                    assert_eq!(r.last().map(|r| r.end), Some(len));
                    for w in r.windows(2) {
                        assert_eq!(w[0].end, w[1].start);
                        assert_eq!(w[1].start % align, 0);
                    }
                }
            }
        }
    }

    #[test]
    fn results_come_back_in_order() {
        let par = Par { parts: 4, min_work: 0 };
        let out = par.map_ranges(103, 1, 8, |r| r.clone().collect::<Vec<_>>());
        assert_eq!(out.concat(), (0..103).collect::<Vec<_>>());
        assert!(out.len() > 1);
        let inline = Par { parts: 4, min_work: usize::MAX }.map_ranges(103, 1, 8, |r| (r.start, r.end));
        assert_eq!(inline, vec![(0, 103)]);
        let empty = par.map_ranges(0, 1, 8, |r| (r.start, r.end));
        assert_eq!(empty, vec![(0, 0)]);
    }
}
