//! Proof of work: SHA-256d of the 220-byte header must be at most the target.
//!
//! Targets and work are 256-bit unsigned integers ([`U256`]); a hash is compared as a
//! big-endian integer, which is plain byte-wise comparison. The work of a block is
//! `2^256 / (target + 1)`, the expected number of hashes to meet the target; fork choice
//! sums it.
//!
//! [`search`] is the miner's inner loop. The header layout puts the nonce in the fourth and
//! last 64-byte SHA-256 block, so the first 192 bytes are compressed once per candidate (the
//! midstate) and each nonce costs two compressions: the tail of the first SHA-256 and the
//! single block of the second. `sha2` picks the SHA-NI instructions at run time when the
//! CPU has them.

use std::sync::atomic::{AtomicBool, Ordering};

use learnchain_proto::Hash32;
use learnchain_proto::header::{HEADER_LEN, Header, NONCE_OFFSET};
pub use primitive_types::U256;
use sha2::digest::generic_array::GenericArray;
use sha2::digest::generic_array::typenum::U64;

/// The target as an integer.
pub fn target_to_u256(t: &Hash32) -> U256 {
    U256::from_big_endian(&t.0)
}

/// An integer as a 32-byte big-endian target or work value.
pub fn u256_to_hash(v: U256) -> Hash32 {
    Hash32(v.to_big_endian())
}

/// Whether `hash` meets `target`.
pub fn meets_target(hash: &Hash32, target: &Hash32) -> bool {
    hash.0 <= target.0
}

/// Expected hashes to meet `target`: `2^256 / (target + 1)`, computed as
/// `(!target / (target + 1)) + 1` so it stays within 256 bits.
pub fn work(target: &Hash32) -> U256 {
    let t = target_to_u256(target);
    if t == U256::MAX {
        return U256::one();
    }
    (!t / (t + U256::one())).saturating_add(U256::one())
}

const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// A header prepared for nonce search: the midstate of its first 192 bytes and the padded
/// tail block.
pub struct PowHasher {
    midstate: [u32; 8],
    tail: GenericArray<u8, U64>,
    second: GenericArray<u8, U64>,
}

impl PowHasher {
    /// Prepares `header` (its nonce is ignored).
    pub fn new(header: &Header) -> Self {
        let bytes = header.to_bytes();
        let mut midstate = H0;
        let blocks: Vec<GenericArray<u8, _>> =
            bytes[..192].chunks_exact(64).map(GenericArray::clone_from_slice).collect();
        sha2::compress256(&mut midstate, &blocks);
        let mut tail = GenericArray::<u8, U64>::default();
        tail[..HEADER_LEN - 192].copy_from_slice(&bytes[192..]);
        tail[HEADER_LEN - 192] = 0x80;
        tail[56..].copy_from_slice(&((HEADER_LEN as u64) * 8).to_be_bytes());
        // The second SHA-256 hashes 32 bytes: one block with fixed padding.
        let mut second = GenericArray::<u8, U64>::default();
        second[32] = 0x80;
        second[56..].copy_from_slice(&256u64.to_be_bytes());
        PowHasher { midstate, tail, second }
    }

    /// SHA-256d of the header with `nonce`.
    #[inline]
    pub fn hash(&mut self, nonce: u64) -> Hash32 {
        let at = NONCE_OFFSET - 192;
        self.tail[at..at + 8].copy_from_slice(&nonce.to_le_bytes());
        let mut state = self.midstate;
        sha2::compress256(&mut state, std::slice::from_ref(&self.tail));
        for (i, w) in state.iter().enumerate() {
            self.second[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        let mut out = H0;
        sha2::compress256(&mut out, std::slice::from_ref(&self.second));
        let mut h = [0u8; 32];
        for (i, w) in out.iter().enumerate() {
            h[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        Hash32(h)
    }
}

/// Searches nonces `start..start + count` for one whose header hash meets the header's
/// target. Checks `cancel` every 16 384 nonces and gives up when it is set.
pub fn search(header: &Header, start: u64, count: u64, cancel: &AtomicBool) -> Option<u64> {
    let mut hasher = PowHasher::new(header);
    let target = header.target;
    let mut nonce = start;
    let end = start.saturating_add(count);
    while nonce < end {
        if (nonce - start).is_multiple_of(16_384) && cancel.load(Ordering::Relaxed) {
            return None;
        }
        if meets_target(&hasher.hash(nonce), &target) {
            return Some(nonce);
        }
        nonce += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnchain_proto::Genesis;

    fn header() -> Header {
        let mut h = Genesis::template("pow", 4, 2, vec![Hash32([1; 32])]).header();
        h.height = 1;
        h
    }

    #[test]
    fn midstate_hash_equals_plain_sha256d() {
        let mut h = header();
        let mut hasher = PowHasher::new(&h);
        for nonce in [0u64, 1, 12345, u64::MAX] {
            h.nonce = nonce;
            assert_eq!(hasher.hash(nonce), h.hash());
        }
    }

    #[test]
    fn search_finds_a_valid_nonce_and_honours_cancel() {
        let mut h = header();
        let mut t = [0xffu8; 32];
        t[0] = 0x00;
        t[1] = 0x3f; // ~1 in 1024
        h.target = Hash32(t);
        let cancel = AtomicBool::new(false);
        let nonce = search(&h, 0, 1 << 24, &cancel).expect("found");
        h.nonce = nonce;
        assert!(meets_target(&h.hash(), &h.target));
        cancel.store(true, Ordering::Relaxed);
        h.target = Hash32([0; 32]);
        assert_eq!(search(&h, 0, 1 << 30, &cancel), None);
    }

    #[test]
    fn work_is_inverse_of_target() {
        assert_eq!(work(&Hash32([0xff; 32])), U256::one());
        let mut half = [0xffu8; 32];
        half[0] = 0x7f;
        assert_eq!(work(&Hash32(half)), U256::from(2));
        let mut t = [0u8; 32];
        t[31] = 0;
        assert_eq!(work(&Hash32(t)), U256::MAX); // target 0 (never valid): 2^256 saturates
        let harder = { let mut x = [0xffu8; 32]; x[0] = 0; x[1] = 0; Hash32(x) };
        let easier = { let mut x = [0xffu8; 32]; x[0] = 0; Hash32(x) };
        assert!(work(&harder) > work(&easier));
    }
}
