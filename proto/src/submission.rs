//! Submissions: one data source's quantized model update for one round.
//!
//! A submission names its chain, its base block (the head it trained on) and its round
//! (base height + 1), carries the update as fixed-point `i32`s at the genesis scale, and an
//! authorisation ([`SubmissionAuth`]). Everything but the authorisation is covered by the
//! [`Submission::signing_digest`]; the id hashes the digest and the authorisation together.
//!
//! The authorisation is an enum so that the way a member proves it may submit can change
//! (issue 4 replaces the named Ed25519 key with an anonymous ring signature) while the rest
//! of the type and every check that does not concern membership stay as they are. Code that
//! needs "who may not submit twice this round" asks for [`Submission::round_tag`] and never
//! looks inside the authorisation.

use std::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::encoding;
use crate::privacy::DpDeclaration;
use crate::hash::{
    Hash32, TAG_ROUND, TAG_SUBMISSION_ID, TAG_SUBMISSION_SIGNING, TaggedHasher,
};

/// A 64-byte signature (hex in human-readable formats).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature64(pub [u8; 64]);

impl fmt::Debug for Signature64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature64({}…)", hex::encode(&self.0[..4]))
    }
}

impl Serialize for Signature64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.serialize_str(&hex::encode(self.0));
        }
        let mut t = s.serialize_tuple(64)?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Signature64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            let mut out = [0u8; 64];
            hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
            return Ok(Signature64(out));
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Signature64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Signature64, A::Error> {
                let mut out = [0u8; 64];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature64(out))
            }
        }
        d.deserialize_tuple(64, V)
    }
}

/// How a submission proves its sender may submit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubmissionAuth {
    /// An Ed25519 signature by a member key listed in the genesis.
    Ed25519 {
        /// The member's public key.
        key: Hash32,
        /// Signature over [`Submission::signing_digest`].
        signature: Signature64,
    },
}

/// One data source's update for one round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// Chain the update belongs to.
    pub chain_id: Hash32,
    /// Hash of the block the update was trained on; the block that includes it must be a
    /// child of this block.
    pub base: Hash32,
    /// Round: the height of the block that may include it (base height + 1).
    pub round: u64,
    /// Local examples the data source trained on. With [`Submission::dp`] it sets the
    /// expected batch `q·n` of the update-norm bound (see [`crate::privacy`]).
    pub num_examples: u32,
    /// The DP-SGD parameters the update was trained with.
    pub dp: DpDeclaration,
    /// Quantized update, one `i32` per model parameter at the genesis scale.
    pub delta: Vec<i32>,
    /// Proof of membership.
    pub auth: SubmissionAuth,
}

impl Submission {
    /// The digest a member signs: every field but the authorisation.
    pub fn signing_digest(&self) -> Hash32 {
        TaggedHasher::new(TAG_SUBMISSION_SIGNING)
            .update(self.chain_id.0)
            .update(self.base.0)
            .update_u64(self.round)
            .update_u64(u64::from(self.num_examples))
            .update_u64(self.dp.sample_rate.0)
            .update_u64(self.dp.noise_multiplier.0)
            .update_u64(self.dp.clip.0)
            .update_u64(u64::from(self.dp.steps))
            .update_i32s(&self.delta)
            .finish()
    }

    /// The submission id: tagged hash of the signing digest and the authorisation.
    pub fn id(&self) -> Hash32 {
        self.id_from_digest(&self.signing_digest())
    }

    /// The id, given an already computed [`Submission::signing_digest`] (saves hashing the
    /// update twice).
    pub fn id_from_digest(&self, digest: &Hash32) -> Hash32 {
        TaggedHasher::new(TAG_SUBMISSION_ID)
            .update(digest.0)
            .update(encoding::encode(&self.auth))
            .finish()
    }

    /// The tag that may appear at most once per round on a branch: it stands for "this
    /// member, this round" without the rest of the protocol needing to know who the member
    /// is.
    pub fn round_tag(&self) -> Hash32 {
        match &self.auth {
            SubmissionAuth::Ed25519 { key, .. } => TaggedHasher::new(TAG_ROUND)
                .update(self.chain_id.0)
                .update_u64(self.round)
                .update(key.0)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::Fixed6;

    fn sample() -> Submission {
        Submission {
            chain_id: Hash32([1; 32]),
            base: Hash32([2; 32]),
            round: 3,
            num_examples: 100,
            dp: DpDeclaration { sample_rate: Fixed6(100_000), noise_multiplier: Fixed6(1_000_000), clip: Fixed6(1_000_000), steps: 5 },
            delta: vec![1, -2, 3],
            auth: SubmissionAuth::Ed25519 { key: Hash32([9; 32]), signature: Signature64([7; 64]) },
        }
    }

    #[test]
    fn round_trip_and_ids() {
        let s = sample();
        let bytes = encoding::encode(&s);
        let back: Submission = encoding::decode(&bytes, 10_000).expect("decodes");
        assert_eq!(back, s);
        assert_eq!(back.id(), s.id());
        let mut t = s.clone();
        t.delta[0] = 2;
        assert_ne!(t.id(), s.id());
        assert_ne!(t.signing_digest(), s.signing_digest());
        let mut weaker = s.clone();
        weaker.dp.noise_multiplier = Fixed6(900_000);
        assert_ne!(weaker.signing_digest(), s.signing_digest(), "the declaration is signed");
        assert_eq!(t.round_tag(), s.round_tag());
        let mut r = s.clone();
        r.round = 4;
        assert_ne!(r.round_tag(), s.round_tag());
    }
}
