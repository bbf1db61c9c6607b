//! Proofs of possession: a Schnorr signature by a member key over a message.
//!
//! A registration carries one, so nobody can register a key they do not hold (and an
//! open-enrolment stamp cannot be lifted onto somebody else's key). Standard Schnorr over
//! ristretto255 with a hedged nonce:
//!
//! ```text
//! k ← H(domain, x, m, fresh);  R = k·G;  c = H(domain, K, m, R);  s = k + c·x;  π = (c, s)
//! verify: R' = s·G − c·K;  accept iff H(domain, K, m, R') = c
//! ```

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use crate::hash::{DOMAIN_POP_CHALLENGE, DOMAIN_POP_NONCE, Transcript};
use crate::member::{MemberPublic, MemberSecret};

/// Why a proof of possession does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PopError {
    /// A scalar of the proof is not canonically encoded.
    #[error("the proof of possession is not canonically encoded")]
    NonCanonical,
    /// The proof does not verify for this key and message.
    #[error("the proof of possession does not verify")]
    Invalid,
}

fn challenge(public: &MemberPublic, message: &[u8; 32], r: &RistrettoPoint) -> Scalar {
    let mut t = Transcript::new(DOMAIN_POP_CHALLENGE);
    t.append(public.as_bytes()).append(message).append(r.compress().as_bytes());
    t.into_scalar()
}

/// Proves that the holder of `secret` signs `message`: 64 bytes, `c ‖ s`.
pub fn prove<R: RngCore + CryptoRng>(secret: &MemberSecret, message: &[u8; 32], rng: &mut R) -> [u8; 64] {
    let mut k = {
        let mut fresh = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(fresh.as_mut());
        let secret_bytes = secret.to_bytes();
        let mut t = Transcript::new(DOMAIN_POP_NONCE);
        t.append(secret_bytes.as_ref()).append(message).append(fresh.as_ref());
        t.into_scalar()
    };
    let c = challenge(&secret.public(), message, &RistrettoPoint::mul_base(&k));
    let s = k + c * secret.scalar();
    k.zeroize();
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&c.to_bytes());
    out[32..].copy_from_slice(&s.to_bytes());
    out
}

/// Verifies a proof of possession of `public` over `message`.
pub fn verify(public: &MemberPublic, message: &[u8; 32], proof: &[u8; 64]) -> Result<(), PopError> {
    let scalar = |b: &[u8]| -> Result<Scalar, PopError> {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(b);
        Option::<Scalar>::from(Scalar::from_canonical_bytes(bytes)).ok_or(PopError::NonCanonical)
    };
    let c = scalar(&proof[..32])?;
    let s = scalar(&proof[32..])?;
    let r = RistrettoPoint::vartime_double_scalar_mul_basepoint(&-c, &public.point(), &s);
    if challenge(public, message, &r) == c { Ok(()) } else { Err(PopError::Invalid) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn proofs_verify_and_bind_key_and_message() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let a = MemberSecret::generate(&mut rng);
        let b = MemberSecret::generate(&mut rng);
        let proof = prove(&a, &[1; 32], &mut rng);
        assert_eq!(verify(&a.public(), &[1; 32], &proof), Ok(()));
        assert_eq!(verify(&a.public(), &[2; 32], &proof), Err(PopError::Invalid));
        assert_eq!(verify(&b.public(), &[1; 32], &proof), Err(PopError::Invalid));
        for i in 0..64 {
            let mut p = proof;
            p[i] ^= 1;
            assert!(verify(&a.public(), &[1; 32], &p).is_err(), "byte {i}");
        }
        let mut p = proof;
        p[32..].copy_from_slice(&[0xff; 32]);
        assert_eq!(verify(&a.public(), &[1; 32], &p), Err(PopError::NonCanonical));
    }
}
