//! Compact blocks (after Bitcoin's BIP 152): a new block as its header, the ids of its body
//! items, and the few items the miner expects peers to lack.
//!
//! Every update a block carries has already crossed the network once as a gossiped
//! submission, so a miner announces a block as a [`CompactBlock`] on the compact-blocks
//! topic: the 220-byte header, the registration ids and submission ids in body order (32
//! bytes each, the same ids the header's body root commits to), and *prefilled* items in
//! full. A receiver rebuilds the body from its pools and the prefilled items, asks the
//! announcing peer for the rest by id ([`crate::SyncRequest::BodyItems`]), and falls back to
//! the full block by hash when that fails. The full [`Block`] stays the canonical form: it is
//! what is hashed, validated, stored and synced; a compact block is only a way to move one.
//!
//! The prefill rule (the miner's side): an item is prefilled unless it reached the miner by
//! gossip, i.e. the miner's own submissions and registrations, and those it received
//! otherwise (pulled from a peer's pool at the round timeout because gossip did not carry
//! them, or submitted over RPC), which its peers are likely to lack too. Prefilled items are
//! added only while the encoded compact block stays within the genesis
//! `limits.max_block_bytes` (the compact-blocks topic's limit); anything left out is fetched.
//!
//! The ids are full 32-byte ids, not BIP 152's 6-byte short ids: no salt, no collisions to
//! handle, and the body-root check ([`CompactBlock::body_root_matches`]) can run on the ids
//! alone before anything is fetched.

use serde::{Deserialize, Serialize};

use crate::block::{Block, body_root};
use crate::encoding::encoded_len;
use crate::hash::Hash32;
use crate::header::Header;
use crate::registration::Registration;
use crate::submission::Submission;

/// A block announced by header and item ids, with some items in full.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactBlock {
    /// The block's header.
    pub header: Header,
    /// Ids of the body's registrations, in body order.
    pub registration_ids: Vec<Hash32>,
    /// Ids of the body's submissions, in body order.
    pub submission_ids: Vec<Hash32>,
    /// Registrations sent in full (each one's id is in `registration_ids`), in body order.
    pub prefilled_registrations: Vec<Registration>,
    /// Submissions sent in full (each one's id is in `submission_ids`), in body order.
    pub prefilled_submissions: Vec<Submission>,
}

impl CompactBlock {
    /// The compact form of `block`, prefilling the items `prefill` selects (by id) while the
    /// encoding stays within `max_bytes`; registrations are considered first (they are small
    /// and rare), then submissions, each in body order.
    pub fn from_block(block: &Block, mut prefill: impl FnMut(&Hash32) -> bool, max_bytes: usize) -> Self {
        let registration_ids: Vec<Hash32> = block.registrations.iter().map(Registration::id).collect();
        let submission_ids: Vec<Hash32> = block.submissions.iter().map(Submission::id).collect();
        let mut compact = CompactBlock {
            header: block.header.clone(),
            registration_ids,
            submission_ids,
            prefilled_registrations: Vec::new(),
            prefilled_submissions: Vec::new(),
        };
        let mut size = encoded_len(&compact);
        for (r, id) in block.registrations.iter().zip(&compact.registration_ids) {
            let add = encoded_len(r);
            if prefill(id) && size.saturating_add(add) <= max_bytes {
                size += add;
                compact.prefilled_registrations.push(r.clone());
            }
        }
        for (s, id) in block.submissions.iter().zip(&compact.submission_ids) {
            let add = encoded_len(s);
            if prefill(id) && size.saturating_add(add) <= max_bytes {
                size += add;
                compact.prefilled_submissions.push(s.clone());
            }
        }
        compact
    }

    /// The announced block's hash (its header's).
    pub fn hash(&self) -> Hash32 {
        self.header.hash()
    }

    /// Whether the ids are those the header's body root commits to.
    pub fn body_root_matches(&self) -> bool {
        body_root(&self.registration_ids, &self.submission_ids) == self.header.body_root
    }

    /// The full block from the body items in id order. The caller supplies every item; ids
    /// are not checked here (see the node's relay, which checks each item against its id).
    pub fn into_block(self, registrations: Vec<Registration>, submissions: Vec<Submission>) -> Block {
        Block { header: self.header, registrations, submissions }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{DecodeError, decode, encode};
    use crate::registration::RegistrationKind;
    use crate::submission::{Signature64, SubmissionAuth};
    use crate::{DpDeclaration, Fixed6};

    fn submission(v: i32, len: usize) -> Submission {
        Submission {
            chain_id: Hash32([1; 32]),
            base: Hash32([2; 32]),
            round: 1,
            num_examples: 10,
            dp: DpDeclaration {
                sample_rate: Fixed6(100_000),
                noise_multiplier: Fixed6(1_000_000),
                clip: Fixed6(1_000_000),
                steps: 1,
            },
            update: crate::update::EncodedUpdate::I32(vec![v; len]),
            auth: SubmissionAuth::Ring {
                group: 0,
                ring_digest: Hash32::ZERO,
                tag: Hash32([v as u8; 32]),
                c0: Hash32([3; 32]),
                responses: vec![Hash32([4; 32])],
            },
        }
    }

    fn block(n: usize, len: usize) -> Block {
        let mut submissions: Vec<Submission> = (0..n).map(|i| submission(i as i32 + 1, len)).collect();
        submissions.sort_by_key(Submission::id);
        let registrations = vec![Registration {
            chain_id: Hash32([1; 32]),
            member: Hash32([9; 32]),
            kind: RegistrationKind::Stamped { possession: Signature64([5; 64]), nonce: 3 },
        }];
        let mut header = Header {
            version: 1,
            chain_id: Hash32([1; 32]),
            height: 1,
            parent: Hash32([2; 32]),
            timestamp_ms: 1,
            target: Hash32([0xff; 32]),
            miner: Hash32::ZERO,
            body_root: Hash32::ZERO,
            state_root: Hash32::ZERO,
            nonce: 0,
        };
        let mut b = Block { header: header.clone(), registrations, submissions };
        header.body_root = b.compute_body_root();
        b.header = header;
        b
    }

    #[test]
    fn round_trip_and_body_root() {
        let b = block(4, 100);
        let first = b.submissions[0].id();
        let compact = CompactBlock::from_block(&b, |id| *id == first, usize::MAX);
        assert_eq!(compact.prefilled_submissions, vec![b.submissions[0].clone()]);
        assert!(compact.prefilled_registrations.is_empty());
        assert_eq!(compact.hash(), b.hash());
        assert!(compact.body_root_matches());
        let bytes = encode(&compact);
        assert_eq!(decode::<CompactBlock>(&bytes, bytes.len()), Ok(compact.clone()));
        assert!(bytes.len() < encode(&b).len() / 2, "a compact block of ids is much smaller than the block");

        let mut swapped = compact.clone();
        swapped.submission_ids.swap(0, 1);
        assert!(!swapped.body_root_matches(), "order is committed to");
        let mut moved = compact.clone();
        let id = moved.submission_ids.pop().expect("an id");
        moved.registration_ids.push(id);
        assert!(!moved.body_root_matches(), "the list an id is in is committed to");

        let rebuilt = compact.into_block(b.registrations.clone(), b.submissions.clone());
        assert_eq!(rebuilt, b);
    }

    #[test]
    fn prefilling_stays_within_the_limit() {
        let b = block(4, 1000);
        let bare = encode(&CompactBlock::from_block(&b, |_| false, usize::MAX)).len();
        let one = encoded_len(&b.submissions[0]);
        let limit = bare + encoded_len(&b.registrations[0]) + one + one / 2;
        let compact = CompactBlock::from_block(&b, |_| true, limit);
        assert_eq!(compact.prefilled_registrations.len(), 1);
        assert_eq!(compact.prefilled_submissions.len(), 1, "only one submission fits");
        assert!(encode(&compact).len() <= limit);
        let bytes = encode(&compact);
        assert!(matches!(decode::<CompactBlock>(&bytes, bytes.len() - 1), Err(DecodeError::TooLarge { .. })));
    }
}
