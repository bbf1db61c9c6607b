//! Gossip topic and protocol names, versioned and scoped by chain id so that nodes of
//! different chains or protocol versions never exchange messages.
//!
//! New blocks travel as compact blocks ([`crate::compact::CompactBlock`]) on their own
//! topic, `/learnchain/<chain>/compact-blocks/2`, which a miner publishes on. The full-block
//! topic stays: a node announces a head it downloaded by sync there, and every node still
//! validates and imports full blocks from it. Two topics rather than a tagged message on one
//! keep each topic's payload a single type with its own limit, and let a later version of
//! either change without touching the other.
//!
//! Submissions travel as announcements ([`crate::announce`]) on
//! `/learnchain/<chain>/submissions/2`; the bytes themselves are fetched by request.

use crate::hash::Hash32;

/// The request-response sync protocol.
pub const SYNC_PROTOCOL: &str = "/learnchain/sync/2";

/// The identify protocol version; peers announcing another one are disconnected. Version 2
/// is the network of header version 2 (state roots) and snapshot sync.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/learnchain/id/2";

/// The Kademlia protocol of the chain `chain_id`: `/learnchain/<chain>/kad/1`, so that the
/// peer discovery of one chain never mixes with another chain's (or with the public IPFS
/// DHT, whose protocol is `/ipfs/kad/1.0.0`).
pub fn kad_protocol(chain_id: &Hash32) -> String {
    format!("/learnchain/{}/kad/1", &chain_id.to_hex()[..16])
}

/// What a gossip topic carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TopicKind {
    /// Full blocks (heads announced after a sync).
    Blocks,
    /// New blocks as compact blocks: header, item ids and prefilled items.
    CompactBlocks,
    /// Data sources' submissions, announced by id
    /// ([`crate::announce::SubmissionAnnouncement`]) and fetched by request.
    Submissions,
    /// Member registrations and revocations.
    Registrations,
}

impl TopicKind {
    /// Every kind.
    pub const ALL: [TopicKind; 4] =
        [TopicKind::Blocks, TopicKind::CompactBlocks, TopicKind::Submissions, TopicKind::Registrations];

    /// Topic string for this kind on the chain `chain_id`.
    pub fn topic(self, chain_id: &Hash32) -> String {
        let kind = match self {
            TopicKind::Blocks => "blocks",
            TopicKind::CompactBlocks => "compact-blocks",
            TopicKind::Submissions => "submissions",
            TopicKind::Registrations => "registrations",
        };
        // Version 2 of the submissions topic carries announcements (version 1 carried
        // whole submissions); version 2 of the block topics carries headers with a state
        // root (version 1 had the model hash).
        let version = match self {
            TopicKind::Registrations => 1,
            _ => 2,
        };
        format!("/learnchain/{}/{kind}/{version}", &chain_id.to_hex()[..16])
    }
}
