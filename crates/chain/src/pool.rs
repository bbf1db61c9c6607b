//! [`SubmissionPool`]: the checked submissions waiting for the next block.
//!
//! The pool holds submissions for one round: those whose base is the current head. It
//! enforces one submission per round tag (a second, different one from the same member is
//! equivocation) and a size bound. Submissions whose base is not yet known — the data
//! source saw a block before we did — wait in a small bounded orphan queue and are offered
//! again when the head moves ([`SubmissionPool::reset`]).
//!
//! [`RegistrationPool`] holds checked registrations until a block includes them: one per
//! member key, bounded; after every head change the node drops those that no longer apply
//! ([`RegistrationPool::retain`]).
//!
//! Both pools answer lookups by id (`get`), which a node rebuilding a compact block uses,
//! and remember which of their items arrived by gossip (`mark_gossiped`/`was_gossiped`): a
//! miner sends the others in full when it announces a block, since its peers may lack them.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use learnchain_proto::{Hash32, Registration, Submission};

use crate::error::{RegistrationError, SubmissionError};

/// Checked submissions for the next round, keyed by id.
pub struct SubmissionPool {
    base: Hash32,
    by_id: BTreeMap<Hash32, Submission>,
    tags: HashMap<Hash32, Hash32>,
    /// Held submissions with their ids, oldest first.
    orphans: VecDeque<(Hash32, Submission)>,
    /// Ids of pooled submissions that arrived by gossip.
    gossiped: HashSet<Hash32>,
    max: usize,
    max_orphans: usize,
}

impl SubmissionPool {
    /// An empty pool for submissions based on `base`, holding at most `max`.
    pub fn new(base: Hash32, max: usize) -> Self {
        SubmissionPool {
            base,
            by_id: BTreeMap::new(),
            tags: HashMap::new(),
            orphans: VecDeque::new(),
            gossiped: HashSet::new(),
            max,
            max_orphans: max.max(16) * 4,
        }
    }

    /// The base every pooled submission trains on.
    pub fn base(&self) -> Hash32 {
        self.base
    }

    /// Number of pooled submissions.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether a submission with this id is pooled.
    pub fn contains(&self, id: &Hash32) -> bool {
        self.by_id.contains_key(id)
    }

    /// The pooled submission with this id.
    pub fn get(&self, id: &Hash32) -> Option<&Submission> {
        self.by_id.get(id)
    }

    /// Records that the pooled submission `id` arrived by gossip (no-op if not pooled).
    pub fn mark_gossiped(&mut self, id: &Hash32) {
        if self.by_id.contains_key(id) {
            self.gossiped.insert(*id);
        }
    }

    /// Whether the pooled submission `id` arrived by gossip.
    pub fn was_gossiped(&self, id: &Hash32) -> bool {
        self.gossiped.contains(id)
    }

    /// Adds a checked submission for the current base.
    pub fn insert(&mut self, s: Submission) -> Result<Hash32, SubmissionError> {
        let id = s.id();
        self.insert_with_id(s, id)
    }

    /// [`SubmissionPool::insert`] of a submission whose id the caller has computed (as
    /// [`crate::Chain::check_submission`] returns it), so a large update is not hashed again.
    pub fn insert_with_id(&mut self, s: Submission, id: Hash32) -> Result<Hash32, SubmissionError> {
        if s.base != self.base {
            return Err(SubmissionError::NotOnHead(s.base));
        }
        if self.by_id.contains_key(&id) {
            return Err(SubmissionError::Duplicate);
        }
        let tag = s.round_tag();
        if self.tags.contains_key(&tag) {
            return Err(SubmissionError::Equivocation(tag));
        }
        if self.by_id.len() >= self.max {
            return Err(SubmissionError::PoolFull);
        }
        self.tags.insert(tag, id);
        self.by_id.insert(id, s);
        Ok(id)
    }

    /// Keeps a submission whose base is not the head (unknown yet, or a competing tip) for
    /// later; the oldest is dropped when full. `id` is its [`Submission::id`].
    pub fn hold_orphan(&mut self, s: Submission, id: Hash32) {
        if self.orphans.iter().any(|(o, _)| *o == id) {
            return;
        }
        if self.orphans.len() >= self.max_orphans {
            self.orphans.pop_front();
        }
        self.orphans.push_back((id, s));
    }

    /// The submission with this id, pooled or held: what this node can serve to a peer
    /// that fetches it.
    pub fn find(&self, id: &Hash32) -> Option<&Submission> {
        self.by_id.get(id).or_else(|| self.orphans.iter().find(|(o, _)| o == id).map(|(_, s)| s))
    }

    /// Whether a submission with this id is pooled or held.
    pub fn holds(&self, id: &Hash32) -> bool {
        self.find(id).is_some()
    }

    /// The ids of the pooled submissions, sorted.
    pub fn ids(&self) -> Vec<Hash32> {
        self.by_id.keys().copied().collect()
    }

    /// Moves the pool to a new head: drops everything pooled and returns the orphans based
    /// on `base` for the caller to check and insert again.
    pub fn reset(&mut self, base: Hash32) -> Vec<Submission> {
        self.base = base;
        self.by_id.clear();
        self.tags.clear();
        self.gossiped.clear();
        let (ready, rest): (Vec<_>, Vec<_>) = self.orphans.drain(..).partition(|(_, s)| s.base == base);
        self.orphans = rest.into();
        ready.into_iter().map(|(_, s)| s).collect()
    }

    /// The pooled submissions, sorted by id.
    pub fn submissions(&self) -> Vec<Submission> {
        self.by_id.values().cloned().collect()
    }
}

/// Checked registrations waiting for a block, keyed by id, one per member.
pub struct RegistrationPool {
    by_id: BTreeMap<Hash32, Registration>,
    members: HashMap<Hash32, Hash32>,
    /// Ids of pooled registrations that arrived by gossip.
    gossiped: HashSet<Hash32>,
    max: usize,
}

impl RegistrationPool {
    /// An empty pool holding at most `max`.
    pub fn new(max: usize) -> Self {
        RegistrationPool { by_id: BTreeMap::new(), members: HashMap::new(), gossiped: HashSet::new(), max }
    }

    /// The pooled registration with this id.
    pub fn get(&self, id: &Hash32) -> Option<&Registration> {
        self.by_id.get(id)
    }

    /// Records that the pooled registration `id` arrived by gossip (no-op if not pooled).
    pub fn mark_gossiped(&mut self, id: &Hash32) {
        if self.by_id.contains_key(id) {
            self.gossiped.insert(*id);
        }
    }

    /// Whether the pooled registration `id` arrived by gossip.
    pub fn was_gossiped(&self, id: &Hash32) -> bool {
        self.gossiped.contains(id)
    }

    /// Number pooled.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Adds a checked registration.
    pub fn insert(&mut self, r: Registration) -> Result<Hash32, RegistrationError> {
        let id = r.id();
        if self.by_id.contains_key(&id) {
            return Err(RegistrationError::Duplicate);
        }
        if self.members.contains_key(&r.member) {
            return Err(RegistrationError::Conflict(r.member));
        }
        if self.by_id.len() >= self.max {
            return Err(RegistrationError::PoolFull);
        }
        self.members.insert(r.member, id);
        self.by_id.insert(id, r);
        Ok(id)
    }

    /// Keeps only the registrations `keep` accepts (after a head change: those that still
    /// apply to the new head's registry).
    pub fn retain(&mut self, mut keep: impl FnMut(&Registration) -> bool) {
        self.by_id.retain(|_, r| keep(r));
        let by_id = &self.by_id;
        self.members.retain(|_, id| by_id.contains_key(id));
        self.gossiped.retain(|id| by_id.contains_key(id));
    }

    /// The ids of the pooled registrations, sorted.
    pub fn ids(&self) -> Vec<Hash32> {
        self.by_id.keys().copied().collect()
    }

    /// The pooled registrations, sorted by id.
    pub fn registrations(&self) -> Vec<Registration> {
        self.by_id.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnchain_proto::{RegistrationKind, Signature64, SubmissionAuth};

    fn sub(base: u8, member: u8, v: i32) -> Submission {
        Submission {
            chain_id: Hash32([1; 32]),
            base: Hash32([base; 32]),
            round: 1,
            num_examples: 1,
            dp: learnchain_proto::DpDeclaration {
                sample_rate: learnchain_proto::Fixed6(100_000),
                noise_multiplier: learnchain_proto::Fixed6(1_000_000),
                clip: learnchain_proto::Fixed6(1_000_000),
                steps: 1,
            },
            update: learnchain_proto::EncodedUpdate::I32(vec![v]),
            auth: SubmissionAuth::Ring {
                group: 0,
                ring_digest: Hash32::ZERO,
                tag: Hash32([member; 32]),
                c0: Hash32([v as u8; 32]),
                responses: vec![],
            },
        }
    }

    fn reg(member: u8, nonce: u64) -> Registration {
        Registration {
            chain_id: Hash32([1; 32]),
            member: Hash32([member; 32]),
            kind: RegistrationKind::Stamped { possession: Signature64([0; 64]), nonce },
        }
    }

    #[test]
    fn registrations_one_per_member_bounded_and_pruned() {
        let mut p = RegistrationPool::new(2);
        assert!(p.insert(reg(1, 0)).is_ok());
        assert_eq!(p.insert(reg(1, 0)), Err(RegistrationError::Duplicate));
        assert_eq!(p.insert(reg(1, 1)), Err(RegistrationError::Conflict(Hash32([1; 32]))));
        assert!(p.insert(reg(2, 0)).is_ok());
        assert_eq!(p.insert(reg(3, 0)), Err(RegistrationError::PoolFull));
        let (one, two) = (reg(1, 0).id(), reg(2, 0).id());
        assert_eq!(p.get(&two), Some(&reg(2, 0)));
        p.mark_gossiped(&one);
        p.mark_gossiped(&reg(9, 9).id());
        assert!(p.was_gossiped(&one) && !p.was_gossiped(&two) && !p.was_gossiped(&reg(9, 9).id()));
        p.retain(|r| r.member != Hash32([1; 32]));
        assert_eq!(p.len(), 1);
        assert!(!p.was_gossiped(&one), "a dropped registration's mark goes with it");
        assert!(p.insert(reg(1, 1)).is_ok(), "the member's slot is free again");
    }

    #[test]
    fn one_per_member_and_round_and_bounded() {
        let mut p = SubmissionPool::new(Hash32([2; 32]), 2);
        assert!(p.insert(sub(2, 1, 1)).is_ok());
        assert_eq!(p.insert(sub(2, 1, 1)), Err(SubmissionError::Duplicate));
        assert!(matches!(p.insert(sub(2, 1, 2)), Err(SubmissionError::Equivocation(_))));
        assert!(p.insert(sub(2, 2, 1)).is_ok());
        assert_eq!(p.insert(sub(2, 3, 1)), Err(SubmissionError::PoolFull));
        assert!(matches!(p.insert(sub(3, 4, 1)), Err(SubmissionError::NotOnHead(_))));
    }

    #[test]
    fn lookups_by_id_and_gossip_marks() {
        let mut p = SubmissionPool::new(Hash32([2; 32]), 4);
        let (a, b) = (sub(2, 1, 1), sub(2, 2, 1));
        let (ida, idb) = (p.insert(a.clone()).expect("a"), p.insert(b).expect("b"));
        assert_eq!(p.get(&ida), Some(&a));
        assert_eq!(p.get(&Hash32([0xee; 32])), None);
        let mut ids = vec![ida, idb];
        ids.sort();
        assert_eq!(p.ids(), ids);
        p.mark_gossiped(&ida);
        assert!(p.was_gossiped(&ida) && !p.was_gossiped(&idb));
        p.reset(Hash32([3; 32]));
        assert!(p.get(&ida).is_none() && !p.was_gossiped(&ida), "a new round forgets both");
    }

    #[test]
    fn orphans_return_when_their_base_becomes_head() {
        let mut p = SubmissionPool::new(Hash32([2; 32]), 4);
        let (five, six) = (sub(5, 1, 1), sub(6, 1, 1));
        p.hold_orphan(five.clone(), five.id());
        p.hold_orphan(six.clone(), six.id());
        p.hold_orphan(six.clone(), six.id());
        assert_eq!(p.find(&six.id()), Some(&six), "a held submission can be served");
        assert!(p.holds(&five.id()) && !p.contains(&five.id()), "held, not pooled");
        assert_eq!(p.reset(Hash32([5; 32])), vec![five.clone()]);
        assert!(!p.holds(&five.id()), "returned to the caller, no longer held");
        assert_eq!(p.reset(Hash32([6; 32])).len(), 1);
        assert!(p.reset(Hash32([6; 32])).is_empty());
    }
}
