//! Hashes: the 32-byte [`Hash32`] used for block, chain, model and submission ids, SHA-256,
//! double SHA-256 (the proof-of-work hash) and domain-separated tagged hashing.
//!
//! Every hash that is not the PoW hash is *tagged*: `SHA-256(len(tag) ‖ tag ‖ data…)`, so a
//! byte string meant as one kind of object can never be read as another.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A 32-byte hash or id. Shown and written in human-readable formats (TOML, JSON) as
/// 64 lower-case hex digits; encoded on the wire as 32 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The all-zero hash, the parent of the genesis block.
    pub const ZERO: Hash32 = Hash32([0u8; 32]);

    /// The bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex of all 32 bytes.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex digits, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// Parses 64 hex digits, with or without a `0x` prefix.
    pub fn from_hex(s: &str) -> Result<Self, String> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        if s.len() != 64 {
            return Err(format!("expected 64 hex digits, got {} characters", s.len()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|e| format!("invalid hex: {e}"))?;
        Ok(Hash32(out))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.short())
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Hash32::from_hex(&s).map_err(serde::de::Error::custom)
        } else {
            Ok(Hash32(<[u8; 32]>::deserialize(d)?))
        }
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash32 {
    Hash32(Sha256::digest(data).into())
}

/// Double SHA-256, the proof-of-work hash of a header.
pub fn sha256d(data: &[u8]) -> Hash32 {
    let first = Sha256::digest(data);
    Hash32(Sha256::digest(first).into())
}

/// A domain-separated SHA-256: `SHA-256(len(tag) as u8 ‖ tag ‖ parts…)`.
pub struct TaggedHasher(Sha256);

impl TaggedHasher {
    /// Starts a hash under `tag` (at most 255 bytes; every tag in learnchain is a constant).
    pub fn new(tag: &str) -> Self {
        let mut h = Sha256::new();
        let len = u8::try_from(tag.len()).unwrap_or(u8::MAX);
        h.update([len]);
        h.update(&tag.as_bytes()[..usize::from(len)]);
        TaggedHasher(h)
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: impl AsRef<[u8]>) -> &mut Self {
        self.0.update(data);
        self
    }

    /// Feeds a `u64` as 8 little-endian bytes.
    pub fn update_u64(&mut self, v: u64) -> &mut Self {
        self.0.update(v.to_le_bytes());
        self
    }

    /// Feeds a slice of `i32` as little-endian bytes, preceded by its length.
    pub fn update_i32s(&mut self, values: &[i32]) -> &mut Self {
        self.update_u64(values.len() as u64);
        // Hash in chunks to avoid one large temporary buffer.
        let mut buf = [0u8; 4096];
        for chunk in values.chunks(1024) {
            for (i, v) in chunk.iter().enumerate() {
                buf[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
            }
            self.0.update(&buf[..chunk.len() * 4]);
        }
        self
    }

    /// Finishes the hash.
    pub fn finish(&mut self) -> Hash32 {
        Hash32(self.0.clone().finalize().into())
    }
}

/// Tag for the hash of a global model state.
pub const TAG_MODEL: &str = "learnchain/model/v1";
/// Tag for the chain id (hash of the canonical genesis).
pub const TAG_CHAIN_ID: &str = "learnchain/chain-id/v1";
/// Tag for the message a data source signs.
pub const TAG_SUBMISSION_SIGNING: &str = "learnchain/submission-signing/v1";
/// Tag for a submission's id.
pub const TAG_SUBMISSION_ID: &str = "learnchain/submission-id/v1";
/// Tag for the digest a registration's authority and member sign.
pub const TAG_REGISTRATION_SIGNING: &str = "learnchain/registration-signing/v1";
/// Tag for a registration's id.
pub const TAG_REGISTRATION_ID: &str = "learnchain/registration-id/v1";
/// Tag for an open-enrolment proof-of-work stamp.
pub const TAG_ENROL_STAMP: &str = "learnchain/enrol-stamp/v1";
/// Tag for the body root over the registration and submission roots.
pub const TAG_BODY: &str = "learnchain/body/v1";
/// Tag for the sort key that splits a registry into ring groups.
pub const TAG_RING_GROUPS: &str = "learnchain/ring-groups/v1";
/// Tag for a leaf of the body Merkle tree.
pub const TAG_MERKLE_LEAF: &str = "learnchain/merkle-leaf/v1";
/// Tag for an inner node of the body Merkle tree.
pub const TAG_MERKLE_NODE: &str = "learnchain/merkle-node/v1";

/// Tag for the hash of a member registry.
pub const TAG_REGISTRY: &str = "learnchain/registry/v1";
/// Tag for the state root a header commits to.
pub const TAG_STATE_ROOT: &str = "learnchain/state-root/v1";

/// The hash of a member registry: every key ever registered, in ascending key order, each
/// with the height that registered it and, if revoked, the height that revoked it. `records`
/// must be in ascending key order without repeats (a `BTreeMap` iterates that way).
pub fn registry_hash<'a>(records: impl ExactSizeIterator<Item = (&'a Hash32, u64, Option<u64>)>) -> Hash32 {
    let mut h = TaggedHasher::new(TAG_REGISTRY);
    h.update_u64(records.len() as u64);
    for (key, registered_at, revoked_at) in records {
        h.update(key.0).update_u64(registered_at);
        match revoked_at {
            Some(at) => h.update([1]).update_u64(at),
            None => h.update([0]),
        };
    }
    h.finish()
}

/// The state root after a block: what a node needs to validate the next block without the
/// chain's history — the model (by its [`model_hash`]) and the member registry (by its
/// [`registry_hash`]). Everything else validation reads (targets, timestamps, cumulative
/// work) is in the headers.
pub fn state_root(model_hash: &Hash32, registry_hash: &Hash32) -> Hash32 {
    TaggedHasher::new(TAG_STATE_ROOT).update(model_hash.0).update(registry_hash.0).finish()
}

/// The hash of a model's fixed-point weights (with their count).
pub fn model_hash(weights: &[i32]) -> Hash32 {
    TaggedHasher::new(TAG_MODEL).update_i32s(weights).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            sha256(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let h = sha256(b"x");
        assert_eq!(Hash32::from_hex(&h.to_hex()), Ok(h));
        assert_eq!(Hash32::from_hex(&format!("0x{}", h.to_hex())), Ok(h));
        assert!(Hash32::from_hex("abc").is_err());
        assert!(Hash32::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn tags_separate_domains() {
        let a = TaggedHasher::new("a").update(b"bc").finish();
        let b = TaggedHasher::new("ab").update(b"c").finish();
        assert_ne!(a, b);
    }

    #[test]
    fn the_state_root_commits_to_every_member_record_and_the_model() {
        let (a, b) = (Hash32([1; 32]), Hash32([2; 32]));
        let base = registry_hash([(&a, 0, None), (&b, 3, None)].into_iter());
        for other in [
            registry_hash([(&a, 0, None)].into_iter()),
            registry_hash([(&a, 0, None), (&b, 4, None)].into_iter()),
            registry_hash([(&a, 0, None), (&b, 3, Some(5))].into_iter()),
            registry_hash([(&a, 0, Some(3)), (&b, 3, None)].into_iter()),
        ] {
            assert_ne!(base, other);
        }
        let m = model_hash(&[1, 2, 3]);
        assert_ne!(state_root(&m, &base), state_root(&model_hash(&[1, 2, 4]), &base));
        assert_ne!(state_root(&m, &base), state_root(&base, &m), "the parts are not interchangeable");
    }

    #[test]
    fn model_hash_depends_on_every_weight() {
        let w = vec![1, 2, 3, 4];
        let mut v = w.clone();
        v[3] = 5;
        assert_ne!(model_hash(&w), model_hash(&v));
        assert_ne!(model_hash(&w), model_hash(&w[..3]));
    }
}
