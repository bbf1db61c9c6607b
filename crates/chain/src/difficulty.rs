//! Difficulty retargeting and timestamp rules.
//!
//! **Retarget: a clamped per-block EMA.** The target of the block after `parent` is
//!
//! ```text
//! solvetime = clamp(parent.timestamp − grandparent.timestamp, 0, 6·T)
//! next      = parent.target · (T·(N−1) + solvetime) / (T·N)
//! ```
//!
//! with `T` the genesis block interval and `N` its `retarget_window`, in exact 256-bit
//! integer arithmetic (floor division), then clamped to `[1, pow_limit]` (the floor on
//! difficulty). Blocks at the ideal pace leave the target unchanged; the clamps bound one
//! block's effect to −1/N (instant block) and +5/N (slow block), which also caps what a
//! miner gains by lying about its timestamp. The child of genesis uses the genesis target.
//!
//! **Timestamps.** A block's timestamp must exceed the median of its last
//! `median_time_span` ancestors' timestamps (median time past) and may be at most
//! `max_future_ms` ahead of the validating node's clock.

use learnchain_proto::Hash32;
use learnchain_proto::genesis::PowParams;

use crate::pow::{U256, target_to_u256, u256_to_hash};

/// The target of the block following a parent with `parent_target` and timestamp
/// `parent_ts`, whose own parent had timestamp `grandparent_ts`.
pub fn next_target(p: &PowParams, parent_target: &Hash32, parent_ts: u64, grandparent_ts: u64) -> Hash32 {
    let ideal = u128::from(p.block_interval_ms);
    let n = u128::from(p.retarget_window);
    let solvetime = u128::from(parent_ts.saturating_sub(grandparent_ts)).min(6 * ideal);
    let numer = U256::from(ideal * (n - 1) + solvetime);
    let denom = U256::from(ideal * n);
    let t = target_to_u256(parent_target);
    // t·numer/denom without overflow: (t/denom)·numer + (t%denom)·numer/denom.
    let whole = (t / denom).checked_mul(numer);
    let part = (t % denom) * numer / denom;
    let limit = target_to_u256(&p.pow_limit);
    let next = match whole.and_then(|w| w.checked_add(part)) {
        Some(v) => v.min(limit),
        None => limit,
    };
    u256_to_hash(next.max(U256::one()))
}

/// Median of timestamps (the upper median for an even count); 0 for none.
pub fn median_time_past(mut timestamps: Vec<u64>) -> u64 {
    if timestamps.is_empty() {
        return 0;
    }
    timestamps.sort_unstable();
    timestamps[timestamps.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnchain_proto::Genesis;
    use proptest::prelude::*;

    fn params() -> PowParams {
        Genesis::template("d", 2, 2, vec![Hash32([1; 32])]).pow
    }

    fn t(hex_byte: u8) -> Hash32 {
        let mut x = [0xffu8; 32];
        x[0] = 0;
        x[1] = hex_byte;
        Hash32(x)
    }

    #[test]
    fn on_pace_blocks_keep_the_target() {
        let p = params();
        let target = t(0x01);
        assert_eq!(next_target(&p, &target, 10_000 + p.block_interval_ms, 10_000), target);
    }

    #[test]
    fn fast_blocks_harden_slow_blocks_ease_within_clamps() {
        let p = params();
        let target = t(0x01);
        let faster = next_target(&p, &target, 10_000, 10_000);
        let slower = next_target(&p, &target, 10_000 + 100 * p.block_interval_ms, 10_000);
        assert!(faster < target && slower > target);
        let tu = target_to_u256(&target);
        let n = U256::from(p.retarget_window);
        // One instant block: target · (N−1)/N (floor); one very slow block: at most · (N+5)/N.
        assert_eq!(target_to_u256(&faster), tu / n * (n - 1) + (tu % n) * (n - 1) / n);
        assert!(target_to_u256(&slower) <= tu / n * (n + 5) + n + 5);
    }

    #[test]
    fn floor_is_the_pow_limit() {
        let p = params();
        let next = next_target(&p, &p.pow_limit, 10_000_000, 0);
        assert_eq!(next, p.pow_limit);
    }

    #[test]
    fn median() {
        assert_eq!(median_time_past(vec![]), 0);
        assert_eq!(median_time_past(vec![5, 1, 3]), 3);
        assert_eq!(median_time_past(vec![4, 1, 3, 2]), 3);
    }

    proptest! {
        #[test]
        fn retarget_stays_within_bounds(byte in 1u8..=0xff, solve in 0u64..1_000_000) {
            let p = params();
            let target = t(byte);
            let next = next_target(&p, &target, 1_000_000 + solve, 1_000_000);
            prop_assert!(next <= p.pow_limit);
            prop_assert!(target_to_u256(&next) >= U256::one());
            // Monotone in solvetime.
            let later = next_target(&p, &target, 1_000_000 + solve + 100, 1_000_000);
            prop_assert!(later >= next);
        }
    }
}
