//! Domain-separated hashing onto scalars, points and digests.
//!
//! Every hash in this crate starts from [`Transcript::new`] with its own domain string
//! (length-prefixed, so no domain is a prefix of another), then absorbs fixed-length fields
//! only; a variable-length input is preceded by its length. SHA-512 gives the 64 uniform
//! bytes that scalars ([`Scalar::from_bytes_mod_order_wide`]) and points (the ristretto255
//! one-way map, [`RistrettoPoint::from_uniform_bytes`]) need, so both are uniformly
//! distributed; 32-byte digests are the first half of the output.

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

/// The domain of the round base point `H_p(chain id ‖ round)`.
pub(crate) const DOMAIN_ROUND_BASE: &str = "learnchain/v1/blsag/round-base";
/// The domain of a ring's digest.
pub(crate) const DOMAIN_RING: &str = "learnchain/v1/blsag/ring";
/// The domain of every bLSAG challenge.
pub(crate) const DOMAIN_CHALLENGE: &str = "learnchain/v1/blsag/challenge";
/// The domain of the hedged bLSAG nonce.
pub(crate) const DOMAIN_NONCE: &str = "learnchain/v1/blsag/nonce";
/// The domain of the proof-of-possession challenge.
pub(crate) const DOMAIN_POP_CHALLENGE: &str = "learnchain/v1/pop/challenge";
/// The domain of the hedged proof-of-possession nonce.
pub(crate) const DOMAIN_POP_NONCE: &str = "learnchain/v1/pop/nonce";

/// The domain of deterministic keys derived from a seed.
pub(crate) const DOMAIN_KEY_SEED: &str = "learnchain/v1/member/seed";

/// A SHA-512 state opened under a domain.
#[derive(Clone)]
pub(crate) struct Transcript(Sha512);

impl Transcript {
    /// Opens a transcript for `domain`.
    pub(crate) fn new(domain: &str) -> Self {
        let mut h = Sha512::new();
        h.update((domain.len() as u64).to_le_bytes());
        h.update(domain.as_bytes());
        Transcript(h)
    }

    /// Absorbs a fixed-length field.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(bytes);
        self
    }

    /// Absorbs an integer.
    pub(crate) fn append_u64(&mut self, v: u64) -> &mut Self {
        self.0.update(v.to_le_bytes());
        self
    }

    fn wide(self) -> [u8; 64] {
        self.0.finalize().into()
    }

    /// A uniformly distributed scalar.
    pub(crate) fn into_scalar(self) -> Scalar {
        Scalar::from_bytes_mod_order_wide(&self.wide())
    }

    /// A uniformly distributed point with unknown discrete logarithm.
    pub(crate) fn into_point(self) -> RistrettoPoint {
        RistrettoPoint::from_uniform_bytes(&self.wide())
    }

    /// A 32-byte digest.
    pub(crate) fn into_digest(self) -> [u8; 32] {
        let wide = self.wide();
        let mut out = [0u8; 32];
        out.copy_from_slice(&wide[..32]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_separate() {
        let a = Transcript::new("ab").into_digest();
        let mut t = Transcript::new("a");
        t.append(b"b");
        assert_ne!(a, t.into_digest(), "the domain is length-prefixed");
        assert_ne!(Transcript::new(DOMAIN_RING).into_digest(), Transcript::new(DOMAIN_CHALLENGE).into_digest());
    }
}
