//! Integer helpers the rules share: half-away-from-zero division in `i128`, the exact
//! integer square root (floor) of a `u128`, and narrowing of values proven to fit `i32`.

/// Divides `s` by `n > 0`, rounding half away from zero (the `i128` twin of
/// [`crate::div_round`]).
pub(crate) fn div_round_i128(s: i128, n: i128) -> i128 {
    debug_assert!(n > 0);
    let half = n / 2;
    if s >= 0 { (s + half) / n } else { -((-s + half) / n) }
}

/// A value the caller has proven to lie within `i32` (a rounded weighted mean of `i32`s).
/// Saturates instead of wrapping if that proof were ever wrong.
pub(crate) fn narrow(v: i128) -> i32 {
    debug_assert!(i128::from(i32::MIN) <= v && v <= i128::from(i32::MAX));
    v.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
}

/// `⌊√x⌋`, exactly, by Newton's method on integers.
///
/// Start from `r₀ = 2^⌈bits(x)/2⌉ ≥ √x` and iterate `r ← ⌊(r + ⌊x/r⌋)/2⌋` while it
/// decreases. For `r > ⌊√x⌋` the step is strictly decreasing and (AM-GM on integers) never
/// falls below `⌊√x⌋`, so the first non-decreasing step leaves `r = ⌊√x⌋`. No overflow:
/// `r ≤ 2⁶⁴` and `x/r < 2⁶⁴ + 2` whenever `r ≥ ⌊√x⌋`.
pub(crate) fn isqrt(x: u128) -> u128 {
    if x < 2 {
        return x;
    }
    let bits = 128 - x.leading_zeros();
    let mut r: u128 = 1 << bits.div_ceil(2);
    loop {
        let next = (r + x / r) / 2;
        if next >= r {
            return r;
        }
        r = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The defining property: `r² ≤ x < (r + 1)²`, checked without overflow.
    fn is_floor_sqrt(x: u128, r: u128) -> bool {
        r.checked_mul(r).is_some_and(|sq| sq <= x) && (r + 1).checked_mul(r + 1).is_none_or(|sq| sq > x)
    }

    #[test]
    fn isqrt_small_and_extreme() {
        for x in 0..100_000u128 {
            assert!(is_floor_sqrt(x, isqrt(x)), "{x}");
        }
        assert_eq!(isqrt(0), 0);
        assert_eq!(isqrt(1), 1);
        assert_eq!(isqrt(3), 1);
        assert_eq!(isqrt(4), 2);
        assert_eq!(isqrt(u128::MAX), u128::from(u64::MAX));
        assert_eq!(isqrt(1 << 126), 1 << 63);
        let m = u128::from(u64::MAX);
        assert_eq!(isqrt(m * m), m);
        assert_eq!(isqrt(m * m - 1), m - 1);
    }

    #[test]
    fn isqrt_at_every_power_of_two_and_square_boundary() {
        for b in 0..128 {
            let x = 1u128 << b;
            for d in [x - 1, x, x + 1] {
                assert!(is_floor_sqrt(d, isqrt(d)), "{d}");
            }
        }
        for k in (1u128..=u128::from(u64::MAX)).step_by(1 << 48).chain([3, 1 << 32, (1 << 63) + 12345]) {
            let sq = k * k;
            assert_eq!(isqrt(sq), k);
            assert_eq!(isqrt(sq - 1), k - 1);
            if let Some(next) = sq.checked_add(2 * k) {
                assert_eq!(isqrt(next), k); // (k+1)² − 1
            }
        }
    }

    #[test]
    fn div_round_i128_matches_the_i64_rule() {
        for s in -50i64..50 {
            for n in 1i64..9 {
                assert_eq!(div_round_i128(i128::from(s), i128::from(n)), i128::from(crate::div_round(s, n)));
            }
        }
        assert_eq!(div_round_i128(-(1 << 100) - 1, 2), -(1 << 99) - 1);
    }

    proptest! {
        #[test]
        fn isqrt_is_the_exact_floor(x in any::<u128>(), shift in 0u32..128) {
            let x = x >> shift;
            let r = isqrt(x);
            prop_assert!(is_floor_sqrt(x, r));
            // Cross-check with the standard library's integer square root.
            prop_assert_eq!(r, x.isqrt());
        }

        #[test]
        fn isqrt_of_squares_and_neighbours(k in 1u128..=u128::from(u64::MAX)) {
            let sq = k * k;
            prop_assert_eq!(isqrt(sq), k);
            prop_assert_eq!(isqrt(sq - 1), k - 1);
        }
    }
}
