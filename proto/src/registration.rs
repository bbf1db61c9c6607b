//! Registrations: the transactions that change the member registry.
//!
//! The registry starts as the genesis member list. A [`Registration`] adds a member key
//! (signed by the enrolment authority named in the genesis, or — where the genesis allows
//! open enrolment — carrying a proof-of-work stamp) or removes one (signed by the
//! authority). Every addition also carries the member's proof of possession of the key, so
//! nobody can register a key they do not hold and a stamp cannot be moved to another key.
//!
//! Registrations travel on their own gossip topic, are included in blocks beside the
//! submissions and take effect from the block after the one that includes them: the ring of
//! a submission is the registry *after* its base block.
//!
//! What is signed is [`Registration::signing_digest`]: chain, action and member key. The
//! authority signs it with Ed25519; the member proves possession with a Schnorr proof over
//! it (`learnchain-identity`'s `pop`). The stamp is a nonce such that
//! [`stamp_hash`]`(chain, member, nonce)` has at least the genesis's number of leading zero
//! bits.

use serde::{Deserialize, Serialize};

use crate::encoding;
use crate::hash::{Hash32, TAG_ENROL_STAMP, TAG_REGISTRATION_ID, TAG_REGISTRATION_SIGNING, TaggedHasher};
use crate::submission::Signature64;

/// Largest encoded registration (they are about 180 bytes).
pub const MAX_REGISTRATION_BYTES: usize = 512;

/// How a registration is authorised, and what it does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistrationKind {
    /// Adds a member, signed by the enrolment authority.
    Authorised {
        /// The member's proof of possession over the signing digest.
        possession: Signature64,
        /// The authority's Ed25519 signature over the signing digest.
        authority: Signature64,
    },
    /// Adds a member under open enrolment, with a proof-of-work stamp.
    Stamped {
        /// The member's proof of possession over the signing digest.
        possession: Signature64,
        /// The stamp's nonce.
        nonce: u64,
    },
    /// Removes a member, signed by the enrolment authority.
    Revoked {
        /// The authority's Ed25519 signature over the signing digest.
        authority: Signature64,
    },
}

/// A change to the member registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The chain it belongs to.
    pub chain_id: Hash32,
    /// The member's public key (a ristretto255 point encoding).
    pub member: Hash32,
    /// What it does and who authorised it.
    pub kind: RegistrationKind,
}

/// The action byte of the signing digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryAction {
    /// The member is added.
    Register,
    /// The member is removed.
    Revoke,
}

impl RegistryAction {
    fn byte(self) -> u8 {
        match self {
            RegistryAction::Register => 1,
            RegistryAction::Revoke => 2,
        }
    }
}

/// The digest the authority signs and the member proves possession over.
pub fn registration_digest(chain_id: &Hash32, action: RegistryAction, member: &Hash32) -> Hash32 {
    TaggedHasher::new(TAG_REGISTRATION_SIGNING).update(chain_id.0).update([action.byte()]).update(member.0).finish()
}

/// The hash an open-enrolment stamp must bring below the genesis difficulty.
pub fn stamp_hash(chain_id: &Hash32, member: &Hash32, nonce: u64) -> Hash32 {
    TaggedHasher::new(TAG_ENROL_STAMP).update(chain_id.0).update(member.0).update_u64(nonce).finish()
}

/// Leading zero bits of a hash read as a big-endian number.
pub fn leading_zero_bits(h: &Hash32) -> u32 {
    let mut bits = 0;
    for b in h.0 {
        if b == 0 {
            bits += 8;
        } else {
            return bits + b.leading_zeros();
        }
    }
    bits
}

/// Searches nonces from `start` for a stamp with at least `bits` leading zero bits. About
/// `2^bits` hashes on average; returns `None` only if the whole `u64` range fails.
pub fn find_stamp(chain_id: &Hash32, member: &Hash32, bits: u32, start: u64) -> Option<u64> {
    (start..=u64::MAX).find(|n| leading_zero_bits(&stamp_hash(chain_id, member, *n)) >= bits)
}

impl Registration {
    /// What the registration does.
    pub fn action(&self) -> RegistryAction {
        match self.kind {
            RegistrationKind::Authorised { .. } | RegistrationKind::Stamped { .. } => RegistryAction::Register,
            RegistrationKind::Revoked { .. } => RegistryAction::Revoke,
        }
    }

    /// The digest signed by the authority and proven over by the member.
    pub fn signing_digest(&self) -> Hash32 {
        registration_digest(&self.chain_id, self.action(), &self.member)
    }

    /// The registration's id: the tagged hash of its encoding.
    pub fn id(&self) -> Hash32 {
        TaggedHasher::new(TAG_REGISTRATION_ID).update(encoding::encode(self)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: RegistrationKind) -> Registration {
        Registration { chain_id: Hash32([1; 32]), member: Hash32([2; 32]), kind }
    }

    #[test]
    fn round_trip_ids_and_digests() {
        let a = sample(RegistrationKind::Stamped { possession: Signature64([3; 64]), nonce: 5 });
        let bytes = encoding::encode(&a);
        assert!(bytes.len() <= MAX_REGISTRATION_BYTES);
        let back: Registration = encoding::decode(&bytes, MAX_REGISTRATION_BYTES).expect("decodes");
        assert_eq!(back, a);
        let b = sample(RegistrationKind::Authorised { possession: Signature64([3; 64]), authority: Signature64([4; 64]) });
        assert_eq!(a.signing_digest(), b.signing_digest(), "both register the same key");
        assert_ne!(a.id(), b.id());
        let r = sample(RegistrationKind::Revoked { authority: Signature64([4; 64]) });
        assert_ne!(r.signing_digest(), a.signing_digest(), "a revocation signature cannot register");
        assert!(encoding::encode(&b).len() <= MAX_REGISTRATION_BYTES);
    }

    #[test]
    fn stamps() {
        assert_eq!(leading_zero_bits(&Hash32::ZERO), 256);
        let mut h = Hash32([0xff; 32]);
        assert_eq!(leading_zero_bits(&h), 0);
        h.0[0] = 0;
        h.0[1] = 0x10;
        assert_eq!(leading_zero_bits(&h), 11);
        let chain = Hash32([1; 32]);
        let member = Hash32([2; 32]);
        let nonce = find_stamp(&chain, &member, 8, 0).expect("found");
        assert!(leading_zero_bits(&stamp_hash(&chain, &member, nonce)) >= 8);
    }
}
