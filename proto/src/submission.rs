//! Submissions: one data source's quantized model update for one round.
//!
//! A submission names its chain, its base block (the head it trained on) and its round
//! (base height + 1), carries the update in the genesis encoding ([`EncodedUpdate`]: fixed-point
//! `i32`s at the genesis scale, or quantised levels with scales; see [`crate::update`]), and an
//! authorisation ([`SubmissionAuth`]). Everything but the authorisation is covered by the
//! [`Submission::signing_digest`]; the id hashes the digest and the authorisation together.
//!
//! The authorisation is a linkable ring signature ([`SubmissionAuth::Ring`]) over the member
//! registry after the base block (or over one group of it, when the registry is larger than
//! the genesis ring size). Nothing in a submission names its member: the ring says "one of
//! these", and the linking tag — [`Submission::round_tag`] — says "not yet seen this round"
//! without saying who. Code that needs "who may not submit twice this round" asks for the
//! round tag and never looks inside the authorisation.

use std::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::encoding;
use crate::privacy::DpDeclaration;
use crate::update::EncodedUpdate;
use crate::hash::{
    Hash32, TAG_SUBMISSION_ID, TAG_SUBMISSION_SIGNING, TaggedHasher,
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
    /// A bLSAG ring signature over [`Submission::signing_digest`] by one member of a group
    /// of the registry after the base block, with a tag scoped to (chain id, round).
    Ring {
        /// Which group of the registry the ring is (0 when the registry is one group).
        group: u32,
        /// Digest of the ring's keys in ring order; validators recompute the group and
        /// compare, so a ring from another height is named as such.
        ring_digest: Hash32,
        /// The linking tag `I = x·H_p(chain id ‖ round)`.
        tag: Hash32,
        /// The first challenge `c_0`.
        c0: Hash32,
        /// One response per ring member, in ring order.
        responses: Vec<Hash32>,
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
    /// The update in the genesis encoding; it decodes to one `i32` per model parameter at
    /// the genesis scale ([`EncodedUpdate::decode`]).
    pub update: EncodedUpdate,
    /// Proof of membership.
    pub auth: SubmissionAuth,
}

impl Submission {
    /// The digest a member signs: every field but the authorisation.
    /// The encoded update is covered exactly ([`EncodedUpdate::hash_into`]).
    pub fn signing_digest(&self) -> Hash32 {
        let mut h = TaggedHasher::new(TAG_SUBMISSION_SIGNING);
        h.update(self.chain_id.0)
            .update(self.base.0)
            .update_u64(self.round)
            .update_u64(u64::from(self.num_examples))
            .update_u64(self.dp.sample_rate.0)
            .update_u64(self.dp.noise_multiplier.0)
            .update_u64(self.dp.clip.0)
            .update_u64(u64::from(self.dp.steps));
        self.update.hash_into(&mut h);
        h.finish()
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

    /// The tag that may appear at most once per round on a branch: the ring signature's
    /// linking tag. It stands for "this member, this round" without naming the member; the
    /// same member's tags in two rounds are unrelated.
    pub fn round_tag(&self) -> Hash32 {
        match &self.auth {
            SubmissionAuth::Ring { tag, .. } => *tag,
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
            update: EncodedUpdate::I32(vec![1, -2, 3]),
            auth: SubmissionAuth::Ring {
                group: 0,
                ring_digest: Hash32([8; 32]),
                tag: Hash32([9; 32]),
                c0: Hash32([7; 32]),
                responses: vec![Hash32([6; 32]); 3],
            },
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
        t.update = EncodedUpdate::I32(vec![2, -2, 3]);
        assert_ne!(t.id(), s.id());
        assert_ne!(t.signing_digest(), s.signing_digest());
        let mut weaker = s.clone();
        weaker.dp.noise_multiplier = Fixed6(900_000);
        assert_ne!(weaker.signing_digest(), s.signing_digest(), "the declaration is signed");
        assert_eq!(t.round_tag(), s.round_tag());
        let mut r = s.clone();
        let SubmissionAuth::Ring { responses, .. } = &mut r.auth;
        responses[0].0[0] ^= 1;
        assert_ne!(r.id(), s.id(), "the id covers the signature");
        assert_eq!(r.signing_digest(), s.signing_digest(), "the digest does not");
    }

    #[test]
    fn quantized_updates_round_trip_and_are_signed() {
        use crate::update::{ScaleGroups, Width};
        let mut s = sample();
        s.update = EncodedUpdate::quantized(Width::I8, ScaleGroups::PerTensor, vec![3, 4], &[1, -2, 127]);
        let bytes = encoding::encode(&s);
        let back: Submission = encoding::decode(&bytes, 10_000).expect("decodes");
        assert_eq!(back, s);
        assert_eq!(back.id(), s.id());
        let i32_form = sample();
        assert_ne!(s.signing_digest(), i32_form.signing_digest());
        let mut t = s.clone();
        t.update = EncodedUpdate::quantized(Width::I8, ScaleGroups::PerTensor, vec![3, 5], &[1, -2, 127]);
        assert_ne!(t.signing_digest(), s.signing_digest(), "the scales are signed");
        let mut v = s.clone();
        v.update = EncodedUpdate::quantized(Width::I8, ScaleGroups::PerTensor, vec![3, 4], &[1, -2, 126]);
        assert_ne!(v.signing_digest(), s.signing_digest(), "the levels are signed");
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(encoding::decode::<Submission>(&trailing, 10_000).is_err());
        assert!(encoding::decode::<Submission>(&bytes[..bytes.len() - 1], 10_000).is_err());
    }
}
