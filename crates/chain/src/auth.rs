//! Who may submit: ring signatures over the member registry at the submission's base.
//!
//! A submission's [`SubmissionAuth::Ring`] is a bLSAG signature (`learnchain-identity`)
//! over its signing digest by one member of a ring, with a linking tag scoped to the chain
//! and the round. The ring must be the active registry after the base block — or, when the
//! registry is larger than the genesis ring size, one of its groups ([`ring_groups`]).
//! [`BaseRings`] holds those rings for one base, decompressed once and shared by every
//! submission on that base, whether it arrives by gossip or in a block.
//!
//! A second submission by one member in one round has the same tag. The pool keeps one per
//! tag and a block may not carry two. Because a submission's round is its block's height,
//! the only block of a branch that can carry a given round's tags is the block at that
//! height, so "unused in this round on this branch" is exactly "unused in this block and,
//! before it, in the pool".

use std::collections::HashMap;

use learnchain_identity::{MemberPublic, MemberSecret, Ring, SignError};
use learnchain_proto::{Hash32, Submission, SubmissionAuth};
use rand::{CryptoRng, RngCore};

use crate::error::SubmissionError;
use crate::registry::{Registry, ring_groups};

/// The rings of one base block: the registry's groups, decompressed, with each member's
/// group.
#[derive(Debug)]
pub struct BaseRings {
    base: Hash32,
    groups: Vec<Ring>,
    group_of: HashMap<Hash32, u32>,
}

impl BaseRings {
    /// The rings for submissions based on `base`, whose registry is `registry`.
    pub fn new(registry: &Registry, base: &Hash32, ring_size: u32) -> Self {
        let mut groups = Vec::new();
        let mut group_of = HashMap::new();
        for keys in ring_groups(&registry.active(), base, ring_size) {
            // Registry keys were validated as points when registered (or in the genesis),
            // and are unique; a key that is not is left out rather than trusted.
            let members: Vec<MemberPublic> = keys.iter().filter_map(|k| MemberPublic::from_bytes(k.0).ok()).collect();
            let Ok(ring) = Ring::new(members) else { continue };
            for k in &keys {
                group_of.insert(*k, groups.len() as u32);
            }
            groups.push(ring);
        }
        BaseRings { base: *base, groups, group_of }
    }

    /// The base block these rings belong to.
    pub fn base(&self) -> Hash32 {
        self.base
    }

    /// Number of groups (0 when nobody is registered).
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// The group and ring a member signs with, if it is active at the base.
    pub fn ring_for(&self, member: &Hash32) -> Option<(u32, &Ring)> {
        let g = *self.group_of.get(member)?;
        Some((g, &self.groups[g as usize]))
    }

    /// The ring of group `g`.
    pub fn ring(&self, g: u32) -> Option<&Ring> {
        self.groups.get(g as usize)
    }

    /// The ring a submission names, if it is the group the registry at the base has under
    /// that index: the group exists and its digest is the submission's ring digest. Cheap;
    /// runs for every submission, also for one whose signature was verified before.
    pub fn check_ring(&self, submission: &Submission) -> Result<&Ring, SubmissionError> {
        let SubmissionAuth::Ring { group, ring_digest, .. } = &submission.auth;
        if self.groups.is_empty() {
            return Err(SubmissionError::NoMembers);
        }
        let ring = self
            .groups
            .get(*group as usize)
            .ok_or(SubmissionError::UnknownGroup { group: *group, groups: self.groups.len() })?;
        if ring.digest() != ring_digest.0 {
            return Err(SubmissionError::RingMismatch { group: *group });
        }
        Ok(ring)
    }

    /// Checks `submission`'s ring signature against these rings: the group exists, the ring
    /// digest is that group's ([`BaseRings::check_ring`]), and the signature verifies over
    /// `digest` for the submission's chain and round.
    pub fn verify(&self, submission: &Submission, digest: &Hash32) -> Result<(), SubmissionError> {
        let ring = self.check_ring(submission)?;
        let SubmissionAuth::Ring { tag, c0, responses, .. } = &submission.auth;
        let signature = learnchain_identity::RingSignature {
            tag: tag.0,
            c0: c0.0,
            responses: responses.iter().map(|r| r.0).collect(),
        };
        learnchain_identity::verify(ring, &submission.chain_id.0, submission.round, &digest.0, &signature)
            .map_err(SubmissionError::BadRingSignature)
    }
}

impl BaseRings {
    /// Verifies every `(submission, digest)` pair ([`BaseRings::verify`]), spread over the
    /// machine's cores: ring verification is most of a block's validation time. Returns
    /// the first failure by position in `items`.
    pub fn verify_all(&self, items: &[(&Submission, &Hash32)]) -> Result<(), (usize, SubmissionError)> {
        let n = items.len();
        let threads = std::thread::available_parallelism().map_or(1, |p| p.get()).min(n).max(1);
        if threads == 1 {
            return items.iter().enumerate().try_for_each(|(i, (s, d))| self.verify(s, d).map_err(|e| (i, e)));
        }
        let chunk = n.div_ceil(threads);
        let failures: Vec<(usize, SubmissionError)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .step_by(chunk)
                .map(|start| {
                    let end = (start + chunk).min(n);
                    scope.spawn(move || (start..end).find_map(|i| self.verify(items[i].0, items[i].1).err().map(|e| (i, e))))
                })
                .collect();
            // A verifier thread cannot panic on any input (verify returns errors); should one
            // die anyway, its chunk counts as failed rather than as verified.
            handles
                .into_iter()
                .enumerate()
                .filter_map(|(k, h)| match h.join() {
                    Ok(r) => r,
                    Err(_) => Some((k * chunk, SubmissionError::BadRingSignature(learnchain_identity::VerifyError::Invalid))),
                })
                .collect()
        });
        match failures.into_iter().min_by_key(|(i, _)| *i) {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }
}

/// Signs `submission` in place as an anonymous member of its group in `rings` (the rings of
/// the submission's base).
pub fn sign_submission<R: RngCore + CryptoRng>(
    submission: &mut Submission,
    secret: &MemberSecret,
    rings: &BaseRings,
    rng: &mut R,
) -> Result<(), SignError> {
    let me = Hash32(secret.public().to_bytes());
    let (group, ring) = rings.ring_for(&me).ok_or(SignError::NotInRing(secret.public()))?;
    sign_with_ring(submission, secret, group, ring, rng)
}

/// Signs `submission` in place over an explicit ring claimed to be `group`. Honest signers
/// use [`sign_submission`]; this exists so tests can build submissions over wrong rings.
pub fn sign_with_ring<R: RngCore + CryptoRng>(
    submission: &mut Submission,
    secret: &MemberSecret,
    group: u32,
    ring: &Ring,
    rng: &mut R,
) -> Result<(), SignError> {
    let digest = submission.signing_digest();
    let sig = learnchain_identity::sign(secret, ring, &submission.chain_id.0, submission.round, &digest.0, rng)?;
    submission.auth = SubmissionAuth::Ring {
        group,
        ring_digest: Hash32(ring.digest()),
        tag: Hash32(sig.tag),
        c0: Hash32(sig.c0),
        responses: sig.responses.into_iter().map(Hash32).collect(),
    };
    Ok(())
}

/// An unsigned placeholder authorisation, replaced by [`sign_submission`].
pub fn unsigned() -> SubmissionAuth {
    SubmissionAuth::Ring { group: 0, ring_digest: Hash32::ZERO, tag: Hash32::ZERO, c0: Hash32::ZERO, responses: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnchain_proto::registration::RegistrationKind;
    use learnchain_proto::{Registration, Signature64};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn submission(round: u64) -> Submission {
        Submission {
            chain_id: Hash32([1; 32]),
            base: Hash32([2; 32]),
            round,
            num_examples: 10,
            dp: learnchain_proto::DpDeclaration {
                sample_rate: learnchain_proto::Fixed6(100_000),
                noise_multiplier: learnchain_proto::Fixed6(1_000_000),
                clip: learnchain_proto::Fixed6(1_000_000),
                steps: 1,
            },
            update: learnchain_proto::EncodedUpdate::I32(vec![1, 2, 3]),
            auth: unsigned(),
        }
    }

    fn registry(keys: &[MemberSecret]) -> Registry {
        let mut r = Registry::default();
        let regs: Vec<Registration> = keys
            .iter()
            .map(|k| Registration {
                chain_id: Hash32([1; 32]),
                member: Hash32(k.public().to_bytes()),
                kind: RegistrationKind::Stamped { possession: Signature64([0; 64]), nonce: 0 },
            })
            .collect();
        r.apply(&regs, 0).expect("fresh keys");
        r
    }

    #[test]
    fn members_sign_in_their_group_and_others_cannot() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let keys = learnchain_identity::test_member_keys(10);
        let reg = registry(&keys[..9]);
        let rings = BaseRings::new(&reg, &Hash32([2; 32]), 4);
        assert_eq!(rings.groups(), 3, "9 members in rings of at most 4");
        for k in &keys[..9] {
            let mut s = submission(1);
            sign_submission(&mut s, k, &rings, &mut rng).expect("member");
            assert_eq!(rings.verify(&s, &s.signing_digest()), Ok(()));
            let mut t = s.clone();
            t.update.as_i32_mut().expect("an i32 update")[0] += 1;
            assert!(matches!(rings.verify(&t, &t.signing_digest()), Err(SubmissionError::BadRingSignature(_))));
        }
        // The tenth key is no member: it cannot sign with the rings, and a ring of its own
        // making is not a group of the registry.
        let mut s = submission(1);
        assert!(sign_submission(&mut s, &keys[9], &rings, &mut rng).is_err());
        let mut own = rings.ring(0).expect("group").keys().to_vec();
        own[0] = keys[9].public();
        let own = Ring::new(own).expect("ring");
        sign_with_ring(&mut s, &keys[9], 0, &own, &mut rng).expect("signs its own ring");
        assert_eq!(rings.verify(&s, &s.signing_digest()), Err(SubmissionError::RingMismatch { group: 0 }));
        sign_with_ring(&mut s, &keys[9], 7, &own, &mut rng).expect("signs");
        assert_eq!(rings.verify(&s, &s.signing_digest()), Err(SubmissionError::UnknownGroup { group: 7, groups: 3 }));
        // A batch: all valid, then the first bad one is named by position.
        let mut batch: Vec<Submission> = keys[..9]
            .iter()
            .map(|k| {
                let mut s = submission(1);
                sign_submission(&mut s, k, &rings, &mut rng).expect("member");
                s
            })
            .collect();
        let digests = |b: &[Submission]| b.iter().map(Submission::signing_digest).collect::<Vec<_>>();
        fn pairs<'a>(b: &'a [Submission], d: &'a [Hash32]) -> Vec<(&'a Submission, &'a Hash32)> {
            b.iter().zip(d).collect()
        }
        let d = digests(&batch);
        assert_eq!(rings.verify_all(&pairs(&batch, &d)), Ok(()));
        batch[6].update.as_i32_mut().expect("an i32 update")[0] += 1;
        batch[8].update.as_i32_mut().expect("an i32 update")[0] += 1;
        let d = digests(&batch);
        assert!(matches!(rings.verify_all(&pairs(&batch, &d)), Err((6, SubmissionError::BadRingSignature(_)))));
        let empty = BaseRings::new(&Registry::default(), &Hash32([2; 32]), 4);
        assert_eq!(empty.verify(&s, &s.signing_digest()), Err(SubmissionError::NoMembers));
    }
}
