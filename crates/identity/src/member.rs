//! Member keys on ristretto255.
//!
//! A member's secret is a non-zero scalar `x`; its public key is `K = x·G`, stored and sent
//! as the 32-byte canonical ristretto255 encoding. [`MemberPublic`] can only be built from a
//! valid, non-identity encoding, so everything holding one may decompress it without a
//! fallible step. A [`MemberSecret`] zeroes its scalar when dropped and never prints it.
//!
//! Member keys are separate from a node's libp2p key: the node key names a peer on the
//! network, the member key is the anonymous right to submit.

use std::fmt;
use std::str::FromStr;

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

/// Why bytes are not a member key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not 64 hex digits.
    #[error("a member key is 64 hex digits")]
    Hex,
    /// Not the canonical encoding of a ristretto255 point.
    #[error("not a canonical ristretto255 point encoding")]
    NotAPoint,
    /// The identity point (the public key of the secret 0).
    #[error("the identity point is not a member key")]
    Identity,
    /// Not a canonical, non-zero scalar.
    #[error("not a canonical non-zero scalar")]
    BadSecret,
}

/// A member's public key: a valid, non-identity ristretto255 point, compressed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberPublic([u8; 32]);

impl MemberPublic {
    /// Validates an encoding.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, KeyError> {
        let point = CompressedRistretto(bytes).decompress().ok_or(KeyError::NotAPoint)?;
        if point.is_identity() {
            return Err(KeyError::Identity);
        }
        Ok(MemberPublic(bytes))
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The point. Infallible: the encoding was validated on construction.
    pub(crate) fn point(&self) -> RistrettoPoint {
        CompressedRistretto(self.0).decompress().unwrap_or_default()
    }
}

impl fmt::Display for MemberPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for MemberPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberPublic({})", hex::encode(&self.0[..6]))
    }
}

impl FromStr for MemberPublic {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut bytes).map_err(|_| KeyError::Hex)?;
        MemberPublic::from_bytes(bytes)
    }
}

/// A member's secret key. Zeroed on drop; `Debug` shows only the public key.
pub struct MemberSecret {
    scalar: Scalar,
    public: MemberPublic,
}

impl MemberSecret {
    /// A fresh key from a cryptographic RNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        loop {
            let mut wide = Zeroizing::new([0u8; 64]);
            rng.fill_bytes(wide.as_mut());
            let scalar = Scalar::from_bytes_mod_order_wide(&wide);
            if scalar != Scalar::ZERO {
                return Self::from_scalar(scalar);
            }
        }
    }

    /// A key derived deterministically from a seed (a domain-separated hash onto a scalar).
    /// For reproducible test and devnet keys; real keys come from [`MemberSecret::generate`].
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let mut t = crate::hash::Transcript::new(crate::hash::DOMAIN_KEY_SEED);
        t.append(seed);
        let scalar = t.into_scalar();
        // A zero scalar has probability 2^-252; map it to one rather than fail.
        Self::from_scalar(if scalar == Scalar::ZERO { Scalar::ONE } else { scalar })
    }

    /// From the 32-byte canonical encoding of a non-zero scalar.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let scalar: Option<Scalar> = Scalar::from_canonical_bytes(*bytes).into();
        match scalar {
            Some(s) if s != Scalar::ZERO => Ok(Self::from_scalar(s)),
            _ => Err(KeyError::BadSecret),
        }
    }

    fn from_scalar(scalar: Scalar) -> Self {
        let public = MemberPublic(RistrettoPoint::mul_base(&scalar).compress().to_bytes());
        MemberSecret { scalar, public }
    }

    /// The secret's encoding, zeroed when the returned value is dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.scalar.to_bytes())
    }

    /// The public key.
    pub fn public(&self) -> MemberPublic {
        self.public
    }

    pub(crate) fn scalar(&self) -> &Scalar {
        &self.scalar
    }
}

impl Drop for MemberSecret {
    fn drop(&mut self) {
        self.scalar.zeroize();
    }
}

impl fmt::Debug for MemberSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberSecret(public {})", self.public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn keys_round_trip_and_bad_encodings_are_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let k = MemberSecret::generate(&mut rng);
        let back = MemberSecret::from_bytes(&k.to_bytes()).expect("canonical");
        assert_eq!(back.public(), k.public());
        let text = k.public().to_string();
        assert_eq!(text.parse::<MemberPublic>(), Ok(k.public()));
        assert!(!format!("{k:?}").contains(&hex::encode(k.to_bytes().as_ref())), "Debug hides the secret");
        assert_eq!(MemberSecret::from_bytes(&[0; 32]).err(), Some(KeyError::BadSecret));
        assert_eq!(MemberSecret::from_bytes(&[0xff; 32]).err(), Some(KeyError::BadSecret), "not canonical");
        assert_eq!(MemberPublic::from_bytes([0; 32]), Err(KeyError::Identity));
        assert_eq!(MemberPublic::from_bytes([0xff; 32]), Err(KeyError::NotAPoint));
        assert_eq!("zz".parse::<MemberPublic>(), Err(KeyError::Hex));
    }
}
