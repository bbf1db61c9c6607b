//! Gossip topic and protocol names, versioned and scoped by chain id so that nodes of
//! different chains or protocol versions never exchange messages.

use crate::hash::Hash32;

/// The request-response sync protocol.
pub const SYNC_PROTOCOL: &str = "/learnchain/sync/1";

/// The identify protocol version; peers announcing another one are disconnected.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/learnchain/id/1";

/// What a gossip topic carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TopicKind {
    /// New blocks.
    Blocks,
    /// Data sources' submissions.
    Submissions,
    /// Member registrations and revocations.
    Registrations,
}

impl TopicKind {
    /// Every kind.
    pub const ALL: [TopicKind; 3] = [TopicKind::Blocks, TopicKind::Submissions, TopicKind::Registrations];

    /// Topic string for this kind on the chain `chain_id`.
    pub fn topic(self, chain_id: &Hash32) -> String {
        let kind = match self {
            TopicKind::Blocks => "blocks",
            TopicKind::Submissions => "submissions",
            TopicKind::Registrations => "registrations",
        };
        format!("/learnchain/{}/{kind}/1", &chain_id.to_hex()[..16])
    }
}
