//! Blocks and the Merkle root of their bodies.
//!
//! A block is a header plus the registrations and submissions it accepted. The header's
//! `body_root` is the tagged hash of two Merkle roots — of the registration ids and of the
//! submission ids, each in body order — built as binary trees with tagged leaf and node
//! hashes (RFC 6962 style, an odd node is promoted unchanged), so no two different bodies
//! share a root and a duplicated last item is not a second-preimage trick.

use serde::{Deserialize, Serialize};

use crate::hash::{Hash32, TAG_BODY, TAG_MERKLE_LEAF, TAG_MERKLE_NODE, TaggedHasher};
use crate::header::Header;
use crate::registration::Registration;
use crate::submission::Submission;

/// A block: header and body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// Registry changes, sorted by id; effective from the next block.
    pub registrations: Vec<Registration>,
    /// The accepted submissions, sorted by id.
    pub submissions: Vec<Submission>,
}

impl Block {
    /// The block hash.
    pub fn hash(&self) -> Hash32 {
        self.header.hash()
    }

    /// Recomputes the body root.
    pub fn compute_body_root(&self) -> Hash32 {
        let registrations: Vec<Hash32> = self.registrations.iter().map(Registration::id).collect();
        let submissions: Vec<Hash32> = self.submissions.iter().map(Submission::id).collect();
        body_root(&registrations, &submissions)
    }
}

/// The body root over registration ids and submission ids (each in body order).
pub fn body_root(registration_ids: &[Hash32], submission_ids: &[Hash32]) -> Hash32 {
    TaggedHasher::new(TAG_BODY)
        .update(merkle_root(registration_ids).0)
        .update(merkle_root(submission_ids).0)
        .finish()
}

/// The body root of an empty block (the genesis).
pub fn empty_body_root() -> Hash32 {
    body_root(&[], &[])
}

/// Merkle root over `items` (tagged leaves and nodes; the root of nothing is the tagged hash
/// of nothing).
pub fn merkle_root(items: &[Hash32]) -> Hash32 {
    if items.is_empty() {
        return TaggedHasher::new(TAG_MERKLE_LEAF).finish();
    }
    let mut level: Vec<Hash32> = items
        .iter()
        .map(|h| TaggedHasher::new(TAG_MERKLE_LEAF).update(h.0).finish())
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => TaggedHasher::new(TAG_MERKLE_NODE).update(l.0).update(r.0).finish(),
                [single] => *single,
                _ => Hash32::ZERO,
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merkle_root_distinguishes_bodies() {
        let a = Hash32([1; 32]);
        let b = Hash32([2; 32]);
        let c = Hash32([3; 32]);
        let roots = [
            merkle_root(&[]),
            merkle_root(&[a]),
            merkle_root(&[a, b]),
            merkle_root(&[b, a]),
            merkle_root(&[a, b, c]),
            merkle_root(&[a, b, c, c]),
        ];
        for i in 0..roots.len() {
            for j in i + 1..roots.len() {
                assert_ne!(roots[i], roots[j], "{i} vs {j}");
            }
        }
        assert_ne!(body_root(&[a], &[b]), body_root(&[], &[a, b]), "moving an id between lists changes the root");
        assert_ne!(body_root(&[a], &[]), body_root(&[], &[a]));
    }
}
