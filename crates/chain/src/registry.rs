//! The member registry: which member keys may sign submissions, as chain state.
//!
//! The registry after a block is the genesis member list plus the registrations of every
//! block on its branch, applied in order. A block's registrations take effect from the next
//! block: a submission in block `h + 1` signs over the registry *after* block `h`, its base.
//! Each key is registered at most once and revoked at most once; a revoked key cannot come
//! back (its holder makes a new key), so the registry is a map from key to the heights of
//! the blocks that registered and revoked it, and every change can be undone exactly —
//! a reorg rewinds the registry like it rewinds the model.
//!
//! [`check_authorisation`] holds the rules that need no state (chain id, key validity, the
//! proof of possession, the authority's signature, the enrolment stamp);
//! [`Registry::check`] the rules against the registry (not already known, still active).
//!
//! [`ring_groups`] splits the active members into the rings submissions sign over: one ring
//! when the registry fits the genesis ring size, otherwise `⌈n / ring_size⌉` groups of
//! balanced size, after a permutation that sorts members by a hash of the base block's hash
//! and the key. Signer and verifier compute it independently from chain state; nobody
//! chooses the grouping, and it changes every block.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, VerifyingKey};
use learnchain_identity::{MemberPublic, MemberSecret, pop};
use learnchain_proto::genesis::Genesis;
use learnchain_proto::hash::{TAG_RING_GROUPS, TaggedHasher};
use learnchain_proto::registration::{RegistryAction, find_stamp, leading_zero_bits, registration_digest, stamp_hash};
use learnchain_proto::{Hash32, Registration, RegistrationKind, Signature64};
use serde::{Deserialize, Serialize};

use crate::error::RegistrationError;

/// When a member was registered and, if so, revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Height of the block that registered it (0 for genesis members). It may sign from the
    /// next block on.
    pub registered_at: u64,
    /// Height of the block that revoked it.
    pub revoked_at: Option<u64>,
}

/// Every member key ever registered on a branch, with its record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    members: BTreeMap<Hash32, MemberRecord>,
}

impl Registry {
    /// The registry after the genesis block.
    pub fn genesis(genesis: &Genesis) -> Self {
        let members =
            genesis.members.iter().map(|k| (*k, MemberRecord { registered_at: 0, revoked_at: None })).collect();
        Registry { members }
    }

    /// A key's record.
    pub fn record(&self, key: &Hash32) -> Option<&MemberRecord> {
        self.members.get(key)
    }

    /// Whether `key` may sign now.
    pub fn is_active(&self, key: &Hash32) -> bool {
        self.members.get(key).is_some_and(|r| r.revoked_at.is_none())
    }

    /// The active keys, in key order.
    pub fn active(&self) -> Vec<Hash32> {
        self.members.iter().filter(|(_, r)| r.revoked_at.is_none()).map(|(k, _)| *k).collect()
    }

    /// Every key ever registered, with its record, in key order.
    pub fn records(&self) -> impl Iterator<Item = (&Hash32, &MemberRecord)> {
        self.members.iter()
    }

    /// The registry's hash, as the state root commits to it
    /// ([`learnchain_proto::hash::registry_hash`]).
    pub fn hash(&self) -> Hash32 {
        learnchain_proto::hash::registry_hash(self.members.iter().map(|(k, r)| (k, r.registered_at, r.revoked_at)))
    }

    /// Number of keys ever registered.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no key was ever registered.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The rules against the registry: a registered key is new (never registered, so
    /// never revoked either); a revoked key is active.
    pub fn check(&self, r: &Registration) -> Result<(), RegistrationError> {
        match (r.action(), self.members.get(&r.member)) {
            (RegistryAction::Register, None) => Ok(()),
            (RegistryAction::Register, Some(MemberRecord { revoked_at: Some(h), .. })) => {
                Err(RegistrationError::WasRevoked { member: r.member, height: *h })
            }
            (RegistryAction::Register, Some(rec)) => {
                Err(RegistrationError::AlreadyRegistered { member: r.member, height: rec.registered_at })
            }
            (RegistryAction::Revoke, Some(MemberRecord { revoked_at: None, .. })) => Ok(()),
            (RegistryAction::Revoke, Some(MemberRecord { revoked_at: Some(h), .. })) => {
                Err(RegistrationError::WasRevoked { member: r.member, height: *h })
            }
            (RegistryAction::Revoke, None) => Err(RegistrationError::NotAMember(r.member)),
        }
    }

    /// Applies a block's registrations (at `height`), each checked against the registry as
    /// it stands after the ones before it. On error nothing is changed.
    pub fn apply(&mut self, registrations: &[Registration], height: u64) -> Result<(), (usize, RegistrationError)> {
        let mut next = self.clone();
        for (i, r) in registrations.iter().enumerate() {
            next.check(r).map_err(|e| (i, e))?;
            next.apply_one(r, height);
        }
        *self = next;
        Ok(())
    }

    fn apply_one(&mut self, r: &Registration, height: u64) {
        match r.action() {
            RegistryAction::Register => {
                self.members.insert(r.member, MemberRecord { registered_at: height, revoked_at: None });
            }
            RegistryAction::Revoke => {
                if let Some(rec) = self.members.get_mut(&r.member) {
                    rec.revoked_at = Some(height);
                }
            }
        }
    }

    /// Undoes a block's registrations (applied by [`Registry::apply`]), newest first.
    pub fn unapply(&mut self, registrations: &[Registration]) {
        for r in registrations.iter().rev() {
            match r.action() {
                RegistryAction::Register => {
                    self.members.remove(&r.member);
                }
                RegistryAction::Revoke => {
                    if let Some(rec) = self.members.get_mut(&r.member) {
                        rec.revoked_at = None;
                    }
                }
            }
        }
    }
}

/// The stateless rules of a registration: its chain, a valid member key, and an
/// authorisation the genesis allows — the authority's signature, or an enrolment stamp of
/// enough work — plus, for an addition, the member's proof of possession.
pub fn check_authorisation(genesis: &Genesis, chain_id: &Hash32, r: &Registration) -> Result<(), RegistrationError> {
    if r.chain_id != *chain_id {
        return Err(RegistrationError::WrongChain { expected: *chain_id, got: r.chain_id });
    }
    let member = MemberPublic::from_bytes(r.member.0).map_err(|e| RegistrationError::NotAKey(r.member, e))?;
    let digest = r.signing_digest();
    let enrolment = &genesis.enrolment;
    let authority = |signature: &learnchain_proto::Signature64| -> Result<(), RegistrationError> {
        let key = enrolment.authority.ok_or(RegistrationError::NoAuthority)?;
        let vk = VerifyingKey::from_bytes(&key.0).map_err(|_| RegistrationError::NoAuthority)?;
        vk.verify_strict(&digest.0, &Signature::from_bytes(&signature.0))
            .map_err(|_| RegistrationError::BadAuthoritySignature)
    };
    match &r.kind {
        RegistrationKind::Authorised { possession, authority: signature } => {
            authority(signature)?;
            pop::verify(&member, &digest.0, &possession.0).map_err(|_| RegistrationError::BadPossession)
        }
        RegistrationKind::Stamped { possession, nonce } => {
            if enrolment.open_stamp_bits == 0 {
                return Err(RegistrationError::ClosedEnrolment);
            }
            let bits = leading_zero_bits(&stamp_hash(chain_id, &r.member, *nonce));
            if bits < enrolment.open_stamp_bits {
                return Err(RegistrationError::WeakStamp { bits, required: enrolment.open_stamp_bits });
            }
            pop::verify(&member, &digest.0, &possession.0).map_err(|_| RegistrationError::BadPossession)
        }
        RegistrationKind::Revoked { authority: signature } => authority(signature),
    }
}

/// `member`'s key as the chain writes it, and its proof of possession over the
/// registration digest.
fn key_and_possession<R: rand::RngCore + rand::CryptoRng>(chain_id: &Hash32, member: &MemberSecret, rng: &mut R) -> (Hash32, Hash32, Signature64) {
    let key = Hash32(member.public().to_bytes());
    let digest = registration_digest(chain_id, RegistryAction::Register, &key);
    let possession = Signature64(pop::prove(member, &digest.0, rng));
    (key, digest, possession)
}

/// A registration of `member` signed by the enrolment `authority`.
pub fn authorised_registration<R: rand::RngCore + rand::CryptoRng>(
    chain_id: &Hash32,
    authority: &ed25519_dalek::SigningKey,
    member: &MemberSecret,
    rng: &mut R,
) -> Registration {
    let (key, digest, possession) = key_and_possession(chain_id, member, rng);
    let signature = Signature64(ed25519_dalek::Signer::sign(authority, &digest.0).to_bytes());
    Registration { chain_id: *chain_id, member: key, kind: RegistrationKind::Authorised { possession, authority: signature } }
}

/// An open-enrolment registration of `member`, with a stamp of `bits` leading zero bits
/// (about `2^bits` hashes of work).
pub fn stamped_registration<R: rand::RngCore + rand::CryptoRng>(
    chain_id: &Hash32,
    bits: u32,
    member: &MemberSecret,
    rng: &mut R,
) -> Registration {
    let (key, _, possession) = key_and_possession(chain_id, member, rng);
    let nonce = find_stamp(chain_id, &key, bits, 0).unwrap_or(0);
    Registration { chain_id: *chain_id, member: key, kind: RegistrationKind::Stamped { possession, nonce } }
}

/// A revocation of `member` signed by the enrolment `authority`.
pub fn revocation(chain_id: &Hash32, authority: &ed25519_dalek::SigningKey, member: &Hash32) -> Registration {
    let digest = registration_digest(chain_id, RegistryAction::Revoke, member);
    let signature = Signature64(ed25519_dalek::Signer::sign(authority, &digest.0).to_bytes());
    Registration { chain_id: *chain_id, member: *member, kind: RegistrationKind::Revoked { authority: signature } }
}

/// Splits the `active` members (any order) into the rings submissions based on `base` sign
/// over: one group when they fit `ring_size`, else `⌈n / ring_size⌉` groups whose sizes
/// differ by at most one, after ordering members by `H(base ‖ key)`. Each group lists its
/// keys in that order, which is the ring order.
pub fn ring_groups(active: &[Hash32], base: &Hash32, ring_size: u32) -> Vec<Vec<Hash32>> {
    let n = active.len();
    if n == 0 {
        return Vec::new();
    }
    let mut keyed: Vec<(Hash32, Hash32)> = active
        .iter()
        .map(|k| (TaggedHasher::new(TAG_RING_GROUPS).update(base.0).update(k.0).finish(), *k))
        .collect();
    keyed.sort_unstable();
    let size = (ring_size.max(1)) as usize;
    let groups = n.div_ceil(size);
    let (small, extra) = (n / groups, n % groups);
    let mut out = Vec::with_capacity(groups);
    let mut at = 0;
    for g in 0..groups {
        let len = small + usize::from(g < extra);
        out.push(keyed[at..at + len].iter().map(|(_, k)| *k).collect());
        at += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(n: usize) -> Vec<Hash32> {
        (0..n).map(|i| {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Hash32(b)
        }).collect()
    }

    proptest! {
        #[test]
        fn groups_partition_the_registry_in_balanced_rings(n in 0usize..300, size in 1u32..70, seed in any::<[u8; 32]>()) {
            let active = keys(n);
            let groups = ring_groups(&active, &Hash32(seed), size);
            let mut all: Vec<Hash32> = groups.iter().flatten().copied().collect();
            all.sort();
            let mut expected = active.clone();
            expected.sort();
            prop_assert_eq!(&all, &expected, "every member in exactly one group");
            if n > 0 {
                prop_assert_eq!(groups.len(), n.div_ceil(size as usize));
                let max = groups.iter().map(Vec::len).max().unwrap_or(0);
                let min = groups.iter().map(Vec::len).min().unwrap_or(0);
                prop_assert!(max <= size as usize);
                prop_assert!(max - min <= 1);
            }
            // The input order does not matter.
            let mut reversed = active.clone();
            reversed.reverse();
            prop_assert_eq!(ring_groups(&reversed, &Hash32(seed), size), groups);
        }
    }

    #[test]
    fn groups_change_with_the_base() {
        let active = keys(100);
        let a = ring_groups(&active, &Hash32([1; 32]), 16);
        let b = ring_groups(&active, &Hash32([2; 32]), 16);
        assert_eq!(a.len(), 7);
        assert_ne!(a, b);
    }

    fn reg(member: Hash32, revoke: bool) -> Registration {
        let sig = learnchain_proto::Signature64([0; 64]);
        Registration {
            chain_id: Hash32::ZERO,
            member,
            kind: if revoke {
                RegistrationKind::Revoked { authority: sig }
            } else {
                RegistrationKind::Stamped { possession: sig, nonce: 0 }
            },
        }
    }

    #[test]
    fn apply_and_unapply_are_inverse_and_enforce_the_lifecycle() {
        let k = keys(3);
        let mut r = Registry::default();
        r.apply(&[reg(k[0], false), reg(k[1], false)], 1).expect("registers");
        let after_one = r.clone();
        assert_eq!(r.active(), vec![k[0], k[1]]);
        r.apply(&[reg(k[0], true), reg(k[2], false)], 2).expect("revoke and register");
        assert_eq!(r.active(), vec![k[1], k[2]]);
        assert_eq!(r.record(&k[0]), Some(&MemberRecord { registered_at: 1, revoked_at: Some(2) }));
        assert_eq!(r.check(&reg(k[0], false)), Err(RegistrationError::WasRevoked { member: k[0], height: 2 }));
        assert_eq!(r.check(&reg(k[1], false)), Err(RegistrationError::AlreadyRegistered { member: k[1], height: 1 }));
        assert_eq!(r.check(&reg(k[0], true)), Err(RegistrationError::WasRevoked { member: k[0], height: 2 }));
        let before = r.clone();
        // A block that registers then re-registers one key is refused whole.
        assert_eq!(r.apply(&[reg(Hash32([9; 32]), false), reg(Hash32([9; 32]), false)], 3).map_err(|e| e.0), Err(1));
        assert_eq!(r, before, "nothing applied");
        r.unapply(&[reg(k[0], true), reg(k[2], false)]);
        assert_eq!(r, after_one);
        let mut empty = Registry::default();
        assert_eq!(empty.check(&reg(k[0], true)), Err(RegistrationError::NotAMember(k[0])));
        empty.apply(&[], 1).expect("nothing to do");
    }
}
