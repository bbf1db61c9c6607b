//! Block headers and their fixed byte layout.
//!
//! The header is hashed in a fixed 220-byte layout ([`Header::to_bytes`]) which is also its
//! canonical bincode encoding (fixed-width little-endian integers, arrays without length).
//! The nonce is the last field, so it sits in the fourth and last 64-byte SHA-256 block:
//! a miner hashes the constant 192-byte prefix once per candidate and then spends two
//! compressions per nonce (the tail block, and the second SHA-256 of SHA-256d).

use serde::{Deserialize, Serialize};

use crate::hash::{Hash32, sha256d};

// The nonce must lie entirely in the last 64-byte SHA-256 block (see the module docs).
const _: () = assert!(NONCE_OFFSET >= 192 && HEADER_LEN <= 256 - 9);

/// The header version this code produces and accepts. Version 2 commits to the state root
/// (model and member registry) where version 1 committed to the model hash alone.
pub const HEADER_VERSION: u32 = 2;
/// Length of the header's canonical encoding.
pub const HEADER_LEN: usize = 220;
/// Offset of the nonce in the canonical encoding.
pub const NONCE_OFFSET: usize = HEADER_LEN - 8;

/// A block header. Field order is the encoding order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Header version.
    pub version: u32,
    /// Hash of the genesis this chain runs under.
    pub chain_id: Hash32,
    /// Height (genesis is 0).
    pub height: u64,
    /// Hash of the parent block.
    pub parent: Hash32,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Proof-of-work target as a 256-bit big-endian integer.
    pub target: Hash32,
    /// The miner's public key (identifies who minted; not a signature).
    pub miner: Hash32,
    /// Merkle root of the body.
    pub body_root: Hash32,
    /// The state after this block ([`crate::hash::state_root`]): the global model and the
    /// member registry, so a node can start from this block without its history.
    pub state_root: Hash32,
    /// Proof-of-work nonce.
    pub nonce: u64,
}

impl Header {
    /// The canonical 220-byte encoding.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            b[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&self.version.to_le_bytes());
        put(&self.chain_id.0);
        put(&self.height.to_le_bytes());
        put(&self.parent.0);
        put(&self.timestamp_ms.to_le_bytes());
        put(&self.target.0);
        put(&self.miner.0);
        put(&self.body_root.0);
        put(&self.state_root.0);
        put(&self.nonce.to_le_bytes());
        b
    }

    /// The block hash: SHA-256d of the canonical encoding. Also the proof-of-work hash.
    pub fn hash(&self) -> Hash32 {
        sha256d(&self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding;

    #[test]
    fn fixed_layout_is_the_canonical_encoding() {
        let h = Header {
            version: HEADER_VERSION,
            chain_id: Hash32([1; 32]),
            height: 7,
            parent: Hash32([2; 32]),
            timestamp_ms: 99,
            target: Hash32([3; 32]),
            miner: Hash32([4; 32]),
            body_root: Hash32([5; 32]),
            state_root: Hash32([6; 32]),
            nonce: 0x0102_0304_0506_0708,
        };
        let enc = encoding::encode(&h);
        assert_eq!(&enc[1..], &h.to_bytes()[..]);
        assert_eq!(&h.to_bytes()[NONCE_OFFSET..], &h.nonce.to_le_bytes());
    }
}
