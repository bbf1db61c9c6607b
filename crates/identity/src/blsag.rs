//! bLSAG: linkable ring signatures whose linking tag is scoped to a round.
//!
//! The construction is back's linkable spontaneous anonymous group signature as written in
//! *Zero to Monero*, 2nd ed., §3.4, with one change the protocol asks for: the key image is
//! taken over a base point shared by everyone in the round instead of one derived from the
//! signer's own key,
//!
//! ```text
//! H = H_p(chain id ‖ round)        tag I = x·H
//! ```
//!
//! so the tag says "this member, this round" — two signatures by one key in one round carry
//! the same tag, while the same key's tags in two rounds are unrelated points (linking them
//! means solving a discrete-logarithm problem between two random bases).
//!
//! Signing by member `π` with secret `x` over ring `K_0 … K_{n−1}` and a 32-byte message `m`:
//!
//! ```text
//! α ← hedged nonce;  r_i ← random for i ≠ π
//! c_{π+1} = H_n(ring, scope, I, m, α·G, α·H)
//! c_{i+1} = H_n(ring, scope, I, m, r_i·G + c_i·K_i, r_i·H + c_i·I)    for i = π+1 … π−1 (mod n)
//! r_π = α − c_π·x
//! σ = (I, c_0, r_0 … r_{n−1})
//! ```
//!
//! Verification recomputes the chain of challenges from `c_0` around the ring and accepts
//! when it closes. Every challenge hashes, under its own domain, the ring digest, the scope
//! (chain id and round), the tag and the message, so a signature cannot be moved to another
//! ring, round, tag or message. ristretto255 is a prime-order group, so there is no cofactor
//! to clear and no small-order tag to worry about; scalars and points in a signature must be
//! canonical encodings, which keeps signatures non-malleable.
//!
//! Secrets (`x`, `α`, `r_π`'s inputs) are handled only with dalek's constant-time scalar and
//! point arithmetic, and zeroed after use. Verification and the decoy steps of signing work on
//! public values only and use variable-time double-scalar multiplication.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use crate::hash::{DOMAIN_CHALLENGE, DOMAIN_NONCE, DOMAIN_RING, DOMAIN_ROUND_BASE, Transcript};
use crate::member::{MemberPublic, MemberSecret};

/// The largest ring this crate builds or verifies. Protocol limits (the genesis ring size)
/// are smaller; this bounds the work one signature can ask for.
pub const MAX_RING: usize = 4096;

/// Why a list of keys is not a ring.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// No keys.
    #[error("a ring needs at least one member")]
    Empty,
    /// More than [`MAX_RING`] keys.
    #[error("a ring of {0} members is larger than the limit of {MAX_RING}")]
    TooLarge(usize),
    /// A key appears twice.
    #[error("member {0} appears twice in the ring")]
    Duplicate(MemberPublic),
}

/// Why signing failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The signer's key is not in the ring.
    #[error("the signing key {0} is not a member of the ring")]
    NotInRing(MemberPublic),
}

/// Why a signature does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// One response per ring member is needed.
    #[error("the signature has {got} responses for a ring of {expected}")]
    WrongLength {
        /// Ring size.
        expected: usize,
        /// Responses carried.
        got: usize,
    },
    /// The tag is not a canonical, non-identity point encoding.
    #[error("the linking tag is not a valid point")]
    BadTag,
    /// A scalar is not canonically encoded (`index` 0 is `c_0`, `i + 1` is response `i`).
    #[error("scalar {index} of the signature is not canonical")]
    NonCanonical {
        /// Position of the scalar.
        index: usize,
    },
    /// The ring of challenges does not close.
    #[error("the ring signature does not verify")]
    Invalid,
}

/// An ordered set of member keys, decompressed once, with its digest.
#[derive(Clone, Debug)]
pub struct Ring {
    keys: Vec<MemberPublic>,
    points: Vec<RistrettoPoint>,
    digest: [u8; 32],
}

impl Ring {
    /// Builds a ring. Order matters: it is part of the digest.
    pub fn new(keys: Vec<MemberPublic>) -> Result<Ring, RingError> {
        if keys.is_empty() {
            return Err(RingError::Empty);
        }
        if keys.len() > MAX_RING {
            return Err(RingError::TooLarge(keys.len()));
        }
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(RingError::Duplicate(w[0]));
        }
        let points = keys.iter().map(MemberPublic::point).collect();
        let digest = ring_digest(&keys);
        Ok(Ring { keys, points, digest })
    }

    /// The members, in ring order.
    pub fn keys(&self) -> &[MemberPublic] {
        &self.keys
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a ring has at least one member.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The digest every challenge commits to ([`ring_digest`] of the keys).
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// Where `key` sits in the ring.
    pub fn position(&self, key: &MemberPublic) -> Option<usize> {
        self.keys.iter().position(|k| k == key)
    }
}

/// The digest of an ordered list of keys: domain, count, then each encoding.
pub fn ring_digest(keys: &[MemberPublic]) -> [u8; 32] {
    let mut t = Transcript::new(DOMAIN_RING);
    t.append_u64(keys.len() as u64);
    for k in keys {
        t.append(k.as_bytes());
    }
    t.into_digest()
}

/// A ring signature: the linking tag, the first challenge and one response per member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingSignature {
    /// The linking tag `I = x·H_p(chain id ‖ round)`, compressed.
    pub tag: [u8; 32],
    /// The challenge `c_0`.
    pub c0: [u8; 32],
    /// The responses `r_0 … r_{n−1}`, in ring order.
    pub responses: Vec<[u8; 32]>,
}

/// The round's base point `H_p(chain id ‖ round)`.
fn round_base(chain_id: &[u8; 32], round: u64) -> RistrettoPoint {
    let mut t = Transcript::new(DOMAIN_ROUND_BASE);
    t.append(chain_id).append_u64(round);
    t.into_point()
}

/// The linking tag `secret` produces in `round` of `chain_id`. Two signatures whose tags are
/// equal were made by the same key in the same round.
pub fn link_tag(secret: &MemberSecret, chain_id: &[u8; 32], round: u64) -> [u8; 32] {
    (secret.scalar() * round_base(chain_id, round)).compress().to_bytes()
}

/// The challenge transcript up to the per-step points.
fn challenge_prefix(ring: &Ring, chain_id: &[u8; 32], round: u64, tag: &[u8; 32], message: &[u8; 32]) -> Transcript {
    let mut t = Transcript::new(DOMAIN_CHALLENGE);
    t.append(&ring.digest).append(chain_id).append_u64(round).append(tag).append(message);
    t
}

fn challenge(prefix: &Transcript, l: &RistrettoPoint, r: &RistrettoPoint) -> Scalar {
    let mut t = prefix.clone();
    t.append(l.compress().as_bytes()).append(r.compress().as_bytes());
    t.into_scalar()
}

fn random_scalar<R: RngCore + CryptoRng>(rng: &mut R) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Signs `message` for `round` of `chain_id` as an anonymous member of `ring`.
///
/// The nonce is hedged: derived from the secret, the ring, the scope, the message and 32
/// fresh random bytes, so neither a weak RNG nor a repeated message alone can reveal `x`.
pub fn sign<R: RngCore + CryptoRng>(
    secret: &MemberSecret,
    ring: &Ring,
    chain_id: &[u8; 32],
    round: u64,
    message: &[u8; 32],
    rng: &mut R,
) -> Result<RingSignature, SignError> {
    let public = secret.public();
    let pi = ring.position(&public).ok_or(SignError::NotInRing(public))?;
    let n = ring.len();
    let h = round_base(chain_id, round);
    let tag_point = secret.scalar() * h;
    let tag = tag_point.compress().to_bytes();
    let prefix = challenge_prefix(ring, chain_id, round, &tag, message);

    let mut alpha = {
        let mut fresh = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(fresh.as_mut());
        let secret_bytes = secret.to_bytes();
        let mut t = Transcript::new(DOMAIN_NONCE);
        t.append(secret_bytes.as_ref()).append(&ring.digest).append(chain_id).append_u64(round).append(message).append(fresh.as_ref());
        t.into_scalar()
    };

    let mut c = vec![Scalar::ZERO; n];
    let mut r = vec![Scalar::ZERO; n];
    c[(pi + 1) % n] = challenge(&prefix, &RistrettoPoint::mul_base(&alpha), &(alpha * h));
    for step in 1..n {
        let i = (pi + step) % n;
        r[i] = random_scalar(rng);
        let l = RistrettoPoint::vartime_double_scalar_mul_basepoint(&c[i], &ring.points[i], &r[i]);
        let rr = RistrettoPoint::vartime_multiscalar_mul([r[i], c[i]], [h, tag_point]);
        c[(i + 1) % n] = challenge(&prefix, &l, &rr);
    }
    r[pi] = alpha - c[pi] * secret.scalar();
    alpha.zeroize();
    Ok(RingSignature { tag, c0: c[0].to_bytes(), responses: r.iter().map(Scalar::to_bytes).collect() })
}

/// Verifies `signature` over `message` for `round` of `chain_id` against `ring`.
pub fn verify(
    ring: &Ring,
    chain_id: &[u8; 32],
    round: u64,
    message: &[u8; 32],
    signature: &RingSignature,
) -> Result<(), VerifyError> {
    let n = ring.len();
    if signature.responses.len() != n {
        return Err(VerifyError::WrongLength { expected: n, got: signature.responses.len() });
    }
    let tag_point = CompressedRistretto(signature.tag).decompress().ok_or(VerifyError::BadTag)?;
    if tag_point.is_identity() {
        return Err(VerifyError::BadTag);
    }
    let canonical = |bytes: &[u8; 32], index: usize| -> Result<Scalar, VerifyError> {
        Option::<Scalar>::from(Scalar::from_canonical_bytes(*bytes)).ok_or(VerifyError::NonCanonical { index })
    };
    let c0 = canonical(&signature.c0, 0)?;
    let responses = signature
        .responses
        .iter()
        .enumerate()
        .map(|(i, b)| canonical(b, i + 1))
        .collect::<Result<Vec<_>, _>>()?;
    let h = round_base(chain_id, round);
    let prefix = challenge_prefix(ring, chain_id, round, &signature.tag, message);
    let mut c = c0;
    for (point, r) in ring.points.iter().zip(&responses) {
        let l = RistrettoPoint::vartime_double_scalar_mul_basepoint(&c, point, r);
        let rr = RistrettoPoint::vartime_multiscalar_mul([*r, c], [h, tag_point]);
        c = challenge(&prefix, &l, &rr);
    }
    if c == c0 { Ok(()) } else { Err(VerifyError::Invalid) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn members(n: usize, seed: u64) -> Vec<MemberSecret> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..n).map(|_| MemberSecret::generate(&mut rng)).collect()
    }

    fn ring_of(secrets: &[MemberSecret]) -> Ring {
        Ring::new(secrets.iter().map(MemberSecret::public).collect()).expect("ring")
    }

    const CHAIN: [u8; 32] = [7; 32];

    #[test]
    fn sign_and_verify_for_ring_sizes_1_to_64() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let all = members(64, 1);
        for n in 1..=64 {
            let ring = ring_of(&all[..n]);
            // Sign as the first, the last and a middle member.
            for pi in [0, n / 2, n - 1] {
                let msg = [n as u8; 32];
                let sig = sign(&all[pi], &ring, &CHAIN, 5, &msg, &mut rng).expect("member signs");
                assert_eq!(sig.responses.len(), n);
                assert_eq!(verify(&ring, &CHAIN, 5, &msg, &sig), Ok(()), "n {n} signer {pi}");
                assert_eq!(sig.tag, link_tag(&all[pi], &CHAIN, 5));
            }
        }
    }

    #[test]
    fn every_changed_byte_is_rejected() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let all = members(5, 2);
        let ring = ring_of(&all);
        let msg = [3u8; 32];
        let sig = sign(&all[2], &ring, &CHAIN, 9, &msg, &mut rng).expect("sign");
        // The message.
        for i in 0..32 {
            let mut m = msg;
            m[i] ^= 1;
            assert!(verify(&ring, &CHAIN, 9, &m, &sig).is_err(), "message byte {i}");
        }
        // The scope.
        assert!(verify(&ring, &CHAIN, 10, &msg, &sig).is_err());
        assert!(verify(&ring, &[8; 32], 9, &msg, &sig).is_err());
        // Every byte of the signature: tag, c0, each response.
        let mut flat = Vec::new();
        flat.extend_from_slice(&sig.tag);
        flat.extend_from_slice(&sig.c0);
        for r in &sig.responses {
            flat.extend_from_slice(r);
        }
        for i in 0..flat.len() {
            for bit in [0x01u8, 0x80] {
                let mut f = flat.clone();
                f[i] ^= bit;
                let mut t = RingSignature { tag: [0; 32], c0: [0; 32], responses: vec![[0; 32]; 5] };
                t.tag.copy_from_slice(&f[..32]);
                t.c0.copy_from_slice(&f[32..64]);
                for (j, r) in t.responses.iter_mut().enumerate() {
                    r.copy_from_slice(&f[64 + 32 * j..96 + 32 * j]);
                }
                assert!(verify(&ring, &CHAIN, 9, &msg, &t).is_err(), "signature byte {i} bit {bit:#x}");
            }
        }
        // The ring: another member, another order, one member fewer or more.
        let others = members(6, 3);
        let mut keys: Vec<MemberPublic> = ring.keys().to_vec();
        keys[0] = others[0].public();
        assert!(verify(&Ring::new(keys).expect("ring"), &CHAIN, 9, &msg, &sig).is_err());
        let mut swapped = ring.keys().to_vec();
        swapped.swap(0, 1);
        assert!(verify(&Ring::new(swapped).expect("ring"), &CHAIN, 9, &msg, &sig).is_err());
        let mut more = ring.keys().to_vec();
        more.push(others[1].public());
        let more = Ring::new(more).expect("ring");
        let mut padded = sig.clone();
        padded.responses.push([0; 32]);
        assert!(verify(&more, &CHAIN, 9, &msg, &padded).is_err());
        assert_eq!(
            verify(&more, &CHAIN, 9, &msg, &sig),
            Err(VerifyError::WrongLength { expected: 6, got: 5 })
        );
    }

    #[test]
    fn tags_link_within_a_round_and_not_across_rounds() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let all = members(8, 4);
        let ring = ring_of(&all);
        let a = sign(&all[3], &ring, &CHAIN, 11, &[1; 32], &mut rng).expect("sign");
        let b = sign(&all[3], &ring, &CHAIN, 11, &[2; 32], &mut rng).expect("sign");
        assert_eq!(a.tag, b.tag, "same member, same round: same tag");
        let c = sign(&all[3], &ring, &CHAIN, 12, &[1; 32], &mut rng).expect("sign");
        assert_ne!(a.tag, c.tag, "another round: another tag");
        let d = sign(&all[4], &ring, &CHAIN, 11, &[1; 32], &mut rng).expect("sign");
        assert_ne!(a.tag, d.tag, "another member: another tag");
        // Unrelated across rounds: the tags are x·H_11 and x·H_12 for independent bases; at
        // least they are not a fixed shift of one another between two members.
        let e = sign(&all[4], &ring, &CHAIN, 12, &[1; 32], &mut rng).expect("sign");
        let p = |t: [u8; 32]| CompressedRistretto(t).decompress().expect("point");
        assert_ne!(p(a.tag) - p(c.tag), p(d.tag) - p(e.tag));
        // Two signatures by one member never share responses (fresh nonces).
        assert_ne!(a.responses, b.responses);
    }

    #[test]
    fn a_non_member_cannot_sign_and_a_forged_tag_fails() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let all = members(4, 5);
        let ring = ring_of(&all[..3]);
        assert_eq!(
            sign(&all[3], &ring, &CHAIN, 1, &[0; 32], &mut rng),
            Err(SignError::NotInRing(all[3].public()))
        );
        // A member who swaps in another member's tag (to frame them) fails.
        let mut sig = sign(&all[0], &ring, &CHAIN, 1, &[0; 32], &mut rng).expect("sign");
        sig.tag = link_tag(&all[1], &CHAIN, 1);
        assert_eq!(verify(&ring, &CHAIN, 1, &[0; 32], &sig), Err(VerifyError::Invalid));
        sig.tag = [0; 32];
        assert_eq!(verify(&ring, &CHAIN, 1, &[0; 32], &sig), Err(VerifyError::BadTag));
    }

    #[test]
    fn non_canonical_scalars_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let all = members(3, 6);
        let ring = ring_of(&all);
        let sig = sign(&all[1], &ring, &CHAIN, 1, &[0; 32], &mut rng).expect("sign");
        // r₀ + ℓ encodes the same residue as r₀ but is not canonical: it must not verify.
        const ELL: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut bumped = sig.clone();
        let mut carry = 0u16;
        for (i, b) in bumped.responses[0].iter_mut().enumerate() {
            let sum = u16::from(*b) + u16::from(ELL[i]) + carry;
            *b = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        assert_eq!(Scalar::from_bytes_mod_order(bumped.responses[0]).to_bytes(), sig.responses[0], "same residue");
        assert_eq!(verify(&ring, &CHAIN, 1, &[0; 32], &bumped), Err(VerifyError::NonCanonical { index: 1 }));
        let mut c = sig.clone();
        c.c0 = [0xff; 32];
        assert_eq!(verify(&ring, &CHAIN, 1, &[0; 32], &c), Err(VerifyError::NonCanonical { index: 0 }));
    }

    #[test]
    fn rings_are_validated() {
        let all = members(2, 7);
        assert_eq!(Ring::new(vec![]).err(), Some(RingError::Empty));
        let k = all[0].public();
        assert_eq!(Ring::new(vec![k, all[1].public(), k]).err(), Some(RingError::Duplicate(k)));
        assert_ne!(ring_digest(&[k]), ring_digest(&[all[1].public()]));
    }
}
