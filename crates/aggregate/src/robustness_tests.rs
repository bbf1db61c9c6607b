//! Tests across rules: Byzantine robustness (`f` arbitrary inputs among honest ones, each
//! rule under its precondition) and permutation behaviour.
//!
//! Honest inputs lie in the box `[−A, A]^D`; Byzantine inputs are arbitrary within `±2²⁴`
//! and sit at random positions (indices), since ties break by index. Properties:
//!
//! * median (`n ≥ 2f + 1`), trimmed mean (`k ≥ f`), Bulyan (`n ≥ 4f + 3`): every output
//!   coordinate lies within `[min, max]` of the honest values at that coordinate — at most
//!   `f` values can lie outside that range on either side, and each rule drops at least `f`
//!   from each side of the values it averages (Bulyan: the θ it chose contain at most the `f`
//!   Byzantine inputs, and it drops `f` from each side of them).
//! * Krum and Multi-Krum (`m ≤ n − f`), arbitrary Byzantine inputs: every selected input is
//!   honest or within squared distance `(n − f − 2)·D²` of some honest input, `D²` being the
//!   largest squared distance between two honest inputs. Proof: an honest input has
//!   `n − f − 1 ≥ n − f − 2` honest others, all within `D²`, so its score is at most
//!   `(n − f − 2)·D²`; the selected inputs score no more than the `m`-th lowest honest
//!   score (there are `n − f ≥ m` honest ones); and the `n − f − 2 ≥ f + 1` nearest others
//!   of a Byzantine input include at least two honest ones (only `f − 1` others are
//!   Byzantine), each distance counted in its score.
//! * Krum, Multi-Krum, l-nearest with the Byzantine inputs far away (first coordinate at
//!   least `A + R` in absolute value, `R = ⌊√((n − f − 2)·D_max²)⌋ + 1`, `D_max² = D·(2A)²`):
//!   every selected input is honest. A Byzantine input is then farther than
//!   `(n − f − 2)·D_max²` (squared) from every honest input and from the median (which lies
//!   in the honest box for `n ≥ 2f + 1`), so its score or distance exceeds every honest one.

use proptest::prelude::*;

use crate::{InputReport, Outcome, Rule, aggregate, aggregate_with_report, mean};

/// Half-width of the honest box.
const A: i32 = 1000;
/// Coordinates per input.
const D: usize = 5;
/// Byzantine values are within ±2²⁴.
const BYZ: i32 = 1 << 24;

/// A deterministic permutation of `0..n` (Fisher–Yates driven by splitmix64).
pub(crate) fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

/// `n` inputs: the positions `permutation(n, seed)[..f]` hold Byzantine rows, the others
/// honest rows. Returns the inputs and which are Byzantine.
fn build(honest: &[Vec<i32>], byz: &[Vec<i32>], n: usize, f: usize, seed: u64, collude: bool) -> (Vec<Vec<i32>>, Vec<bool>) {
    let perm = permutation(n, seed);
    let mut is_byz = vec![false; n];
    for &p in &perm[..f] {
        is_byz[p] = true;
    }
    let (mut h, mut b) = (0, 0);
    let rows = (0..n)
        .map(|i| {
            if is_byz[i] {
                b += 1;
                byz[if collude { 0 } else { b - 1 }].clone()
            } else {
                h += 1;
                honest[h - 1].clone()
            }
        })
        .collect();
    (rows, is_byz)
}

fn refs(rows: &[Vec<i32>]) -> Vec<&[i32]> {
    rows.iter().map(|r| r.as_slice()).collect()
}

fn sq(a: &[i32], b: &[i32]) -> u128 {
    a.iter().zip(b).map(|(&x, &y)| (i128::from(x) - i128::from(y)).pow(2) as u128).sum()
}

/// Every output coordinate within the honest inputs' range there.
fn in_honest_range(out: &[i32], rows: &[Vec<i32>], is_byz: &[bool]) -> bool {
    (0..out.len()).all(|j| {
        let honest = rows.iter().zip(is_byz).filter(|(_, b)| !**b).map(|(r, _)| r[j]);
        let lo = honest.clone().min().unwrap_or(i32::MIN);
        let hi = honest.max().unwrap_or(i32::MAX);
        lo <= out[j] && out[j] <= hi
    })
}

/// Moves a Byzantine row far out along the first coordinate: `|x₀| ≥ A + r`.
fn far(row: &[i32], r: i32) -> Vec<i32> {
    let mut v = row.to_vec();
    let extra = v[0].rem_euclid(1000);
    v[0] = if v[0] >= 0 { A + r + extra } else { -(A + r + extra) };
    v
}

fn selected(rep: &[InputReport]) -> Vec<usize> {
    (0..rep.len()).filter(|&i| rep[i].outcome == Outcome::Selected).collect()
}

fn pool(range: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = Vec<Vec<i32>>> {
    proptest::collection::vec(proptest::collection::vec(range, D), 24)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn median_stays_in_the_honest_range(honest in pool(-A..=A), byz in pool(-BYZ..=BYZ), f in 0usize..6, extra in 0usize..3, seed in any::<u64>(), collude in any::<bool>()) {
        let n = 2 * f + 1 + extra;
        let (rows, is_byz) = build(&honest, &byz, n, f, seed, collude);
        let out = aggregate(Rule::Median, &refs(&rows)).expect("median");
        prop_assert!(in_honest_range(&out, &rows, &is_byz), "{out:?}");
    }

    #[test]
    fn trimmed_mean_stays_in_the_honest_range(honest in pool(-A..=A), byz in pool(-BYZ..=BYZ), f in 0usize..5, k_extra in 0usize..3, n_extra in 0usize..4, seed in any::<u64>(), collude in any::<bool>()) {
        // k ≥ f trimmed from each side of n > 2k values.
        let k = f + k_extra;
        let n = 2 * k + 1 + n_extra;
        // The smallest β with ⌊β·n⌋ = k: ⌈k·10⁶ / n⌉.
        let trim_ppm = (k as u64 * 1_000_000).div_ceil(n as u64) as u32;
        prop_assert_eq!(u64::from(trim_ppm) * n as u64 / 1_000_000, k as u64);
        let (rows, is_byz) = build(&honest, &byz, n, f, seed, collude);
        let out = aggregate(Rule::TrimmedMean { trim_ppm }, &refs(&rows)).expect("trimmed mean");
        prop_assert!(in_honest_range(&out, &rows, &is_byz), "{out:?}");
    }

    #[test]
    fn bulyan_stays_in_the_honest_range(honest in pool(-A..=A), byz in pool(-BYZ..=BYZ), f in 0usize..4, extra in 0usize..4, seed in any::<u64>(), collude in any::<bool>()) {
        let n = 4 * f + 3 + extra;
        let (rows, is_byz) = build(&honest, &byz, n, f, seed, collude);
        let (out, rep) = aggregate_with_report(Rule::Bulyan { f: f as u32 }, &refs(&rows)).expect("bulyan");
        prop_assert!(in_honest_range(&out, &rows, &is_byz), "{out:?}");
        prop_assert_eq!(rep.iter().filter(|r| r.outcome != Outcome::Rejected).count(), n - 2 * f);
    }

    #[test]
    fn krum_selects_within_the_honest_bound(honest in pool(-A..=A), byz in pool(-BYZ..=BYZ), f in 0usize..5, extra in 0usize..4, m_back in 0usize..4, seed in any::<u64>(), collude in any::<bool>()) {
        let n = 2 * f + 3 + extra;
        let m = (n - f).saturating_sub(m_back).max(1);
        let (rows, is_byz) = build(&honest, &byz, n, f, seed, collude);
        let honest_rows: Vec<&Vec<i32>> = rows.iter().zip(&is_byz).filter(|(_, b)| !**b).map(|(r, _)| r).collect();
        let d2 = honest_rows.iter().flat_map(|a| honest_rows.iter().map(|b| sq(a, b))).max().unwrap_or(0);
        let bound = (n - f - 2) as u128 * d2;
        let r = refs(&rows);
        for rule in [Rule::Krum { f: f as u32 }, Rule::MultiKrum { f: f as u32, m: m as u32 }] {
            let (_, rep) = aggregate_with_report(rule, &r).expect("krum");
            for i in selected(&rep) {
                let near = honest_rows.iter().map(|h| sq(&rows[i], h)).min().unwrap_or(0);
                prop_assert!(!is_byz[i] || near <= bound, "{rule}: #{i} at {near} > {bound}");
            }
        }
    }

    #[test]
    fn far_byzantine_inputs_are_never_selected(honest in pool(-A..=A), byz in pool(-BYZ / 2..=BYZ / 2), f in 0usize..5, extra in 0usize..4, m_back in 0usize..4, seed in any::<u64>(), collude in any::<bool>()) {
        let n = 2 * f + 3 + extra;
        let m = (n - f).saturating_sub(m_back).max(1);
        let dmax2 = D as u128 * (2 * A as u128).pow(2);
        let r = crate::arith::isqrt((n - f - 2) as u128 * dmax2) as i32 + 1;
        let byz: Vec<Vec<i32>> = byz.iter().map(|b| far(b, r)).collect();
        let (rows, is_byz) = build(&honest, &byz, n, f, seed, collude);
        let refs = refs(&rows);
        for rule in [
            Rule::Krum { f: f as u32 },
            Rule::MultiKrum { f: f as u32, m: m as u32 },
            Rule::LNearest { l: m as u32 },
        ] {
            let (out, rep) = aggregate_with_report(rule, &refs).expect("valid");
            let sel = selected(&rep);
            prop_assert!(!sel.is_empty());
            prop_assert!(sel.iter().all(|&i| !is_byz[i]), "{rule} selected a Byzantine input: {sel:?} of {is_byz:?}");
            prop_assert!(in_honest_range(&out, &rows, &is_byz));
        }
    }

    /// Permuting the inputs: Krum scores and l-nearest distances follow the inputs, and the
    /// geometric median, median and trimmed mean never change (their sums and order
    /// statistics do not see indices). Krum, Multi-Krum, l-nearest and Bulyan use the index
    /// only to break ties, so their output is unchanged whenever no tie decided anything:
    /// Krum's lowest score unique; Multi-Krum's m-th and (m+1)-th scores different;
    /// l-nearest's l-th and (l+1)-th distances different; Bulyan's lowest score unique in
    /// every round.
    #[test]
    fn permutations_change_nothing_without_ties(rows in proptest::collection::vec(proptest::collection::vec(-BYZ..=BYZ, 3), 7..14), seed in any::<u64>(), small in any::<bool>()) {
        // With `small`, values collide often and ties do happen; the assertions adapt.
        let rows: Vec<Vec<i32>> = rows.into_iter().map(|r| r.into_iter().map(|v| if small { v % 3 } else { v }).collect()).collect();
        let n = rows.len();
        let orig = refs(&rows);
        let perm = permutation(n, seed);
        let permuted: Vec<&[i32]> = perm.iter().map(|&p| orig[p]).collect();
        let (f, m, l) = (1u32, 3usize, 3usize);
        for rule in [Rule::Median, Rule::TrimmedMean { trim_ppm: 300_000 }, Rule::GeometricMedian { iterations: 6 }, Rule::Mean] {
            prop_assert_eq!(aggregate(rule, &orig), aggregate(rule, &permuted), "{}", rule);
        }
        for rule in [Rule::Krum { f }, Rule::MultiKrum { f, m: m as u32 }, Rule::LNearest { l: l as u32 }] {
            let (a, ra) = aggregate_with_report(rule, &orig).expect("valid");
            let (b, rb) = aggregate_with_report(rule, &permuted).expect("valid");
            // Scores (distances) are properties of the points: equivariant.
            for i in 0..n {
                prop_assert_eq!(rb[i].score, ra[perm[i]].score);
            }
            let mut s: Vec<u128> = ra.iter().filter_map(|r| r.score).collect();
            s.sort_unstable();
            let cut = match rule { Rule::Krum { .. } => 1, Rule::MultiKrum { .. } => m, _ => l };
            if s[cut - 1] != s[cut] {
                prop_assert_eq!(&a, &b, "{}", rule);
                for i in 0..n {
                    prop_assert_eq!(rb[i].outcome, ra[perm[i]].outcome);
                }
            }
        }
        let dist = crate::distance::Pairwise::new(&orig, crate::par::Par::auto());
        let (_, tie_free) = crate::krum::bulyan_select(&dist, n, 1);
        if tie_free {
            prop_assert_eq!(aggregate(Rule::Bulyan { f: 1 }, &orig), aggregate(Rule::Bulyan { f: 1 }, &permuted));
        }
    }
}

#[test]
fn permutation_is_a_permutation() {
    for n in 0..20 {
        let mut p = permutation(n, n as u64 * 31);
        p.sort_unstable();
        assert_eq!(p, (0..n).collect::<Vec<_>>());
    }
}

#[test]
fn ties_are_broken_by_index_so_order_matters() {
    // Two equally good Krum candidates: the order of the inputs decides, as documented.
    let a = [0, 0];
    let b = [1, 0];
    let c = [0, 1];
    let d = [1, 1];
    let far = [50, 50];
    let x = aggregate(Rule::Krum { f: 1 }, &[&a, &b, &c, &d, &far]).expect("krum");
    let y = aggregate(Rule::Krum { f: 1 }, &[&d, &b, &c, &a, &far]).expect("krum");
    assert_eq!(x, vec![0, 0]);
    assert_eq!(y, vec![1, 1]);
    // The mean does not care.
    assert_eq!(mean(&[&a, &b, &c, &d]), mean(&[&d, &c, &b, &a]));
}
