//! Submission announcements: how an update travels the gossip mesh without its bytes.
//!
//! A data source does not gossip its submission. It gossips a [`SubmissionAnnouncement`]
//! (the submission's id, base, round and encoded size, about 80 bytes) on
//! `/learnchain/<chain>/submissions/2`, and serves the submission itself to whoever asks
//! ([`crate::SyncRequest::PoolItems`]). A node that receives an announcement for an id it
//! lacks fetches the submission once, from the peer that forwarded the announcement to it,
//! validates it, and only then lets gossip forward the announcement: every node that
//! forwards an announcement can serve what it names. Each node so receives every update
//! once, whatever the mesh degree; only the small announcement is duplicated. (Full-payload
//! gossip delivered each update about once per mesh peer.)
//!
//! The announcement is not trusted: the fetched submission must have the announced id
//! (which hashes every byte of it), base, round and size, or the announcing peer is at
//! fault.

use serde::{Deserialize, Serialize};

use crate::Submission;
use crate::encoding::encoded_len;
use crate::hash::Hash32;

/// Largest encoded announcement accepted on the submissions topic (it is 82 bytes).
pub const MAX_ANNOUNCEMENT_BYTES: usize = 128;

/// "I hold this submission and can serve it."
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubmissionAnnouncement {
    /// [`Submission::id`].
    pub id: Hash32,
    /// The submission's base block.
    pub base: Hash32,
    /// The submission's round.
    pub round: u64,
    /// Length of the submission's canonical encoding, so a fetcher can size its requests
    /// within the response limit before it asks.
    pub bytes: u32,
}

impl SubmissionAnnouncement {
    /// The announcement of `s`, whose id is `id` (saves hashing the update again).
    pub fn of(s: &Submission, id: Hash32) -> Self {
        SubmissionAnnouncement {
            id,
            base: s.base,
            round: s.round,
            bytes: u32::try_from(encoded_len(s)).unwrap_or(u32::MAX),
        }
    }

    /// Whether `s` (with id `id`) is what this announces: same id, base, round and size.
    pub fn matches(&self, s: &Submission, id: &Hash32) -> bool {
        *self == SubmissionAnnouncement::of(s, *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{decode, encode};
    use crate::privacy::DpDeclaration;
    use crate::submission::SubmissionAuth;
    use crate::{EncodedUpdate, Fixed6};

    fn sample(round: u64) -> Submission {
        Submission {
            chain_id: Hash32([1; 32]),
            base: Hash32([2; 32]),
            round,
            num_examples: 10,
            dp: DpDeclaration { sample_rate: Fixed6(1), noise_multiplier: Fixed6(1), clip: Fixed6(1), steps: 1 },
            update: EncodedUpdate::I32(vec![1, 2, 3]),
            auth: SubmissionAuth::Ring {
                group: 0,
                ring_digest: Hash32([3; 32]),
                tag: Hash32([4; 32]),
                c0: Hash32([5; 32]),
                responses: vec![Hash32([6; 32])],
            },
        }
    }

    #[test]
    fn an_announcement_fits_its_limit_and_matches_only_its_submission() {
        let s = sample(3);
        let a = SubmissionAnnouncement::of(&s, s.id());
        let bytes = encode(&a);
        assert!(bytes.len() <= MAX_ANNOUNCEMENT_BYTES, "{} bytes", bytes.len());
        assert_eq!(decode::<SubmissionAnnouncement>(&bytes, MAX_ANNOUNCEMENT_BYTES), Ok(a));
        assert_eq!(a.bytes as usize, encode(&s).len());
        assert!(a.matches(&s, &s.id()));
        let other = sample(4);
        assert!(!a.matches(&other, &other.id()));
        // An announcement that lies about the round of the submission it names.
        let lying = SubmissionAnnouncement { round: 9, ..a };
        assert!(!lying.matches(&s, &s.id()));
    }
}
