//! Wire and on-chain types of learnchain.
//!
//! This crate owns everything two nodes must agree on byte for byte: the genesis
//! ([`genesis`]), block headers and their fixed proof-of-work layout ([`header`]), blocks and
//! their body root ([`block`]), compact blocks for relay ([`compact`]), model-update submissions ([`submission`]) and their gossip announcements ([`announce`]), member registry
//! changes ([`registration`]), the sync protocol's
//! messages ([`sync`]), the update encodings and their exact decoding ([`update`]), gossip topic names ([`topics`]), the canonical encoding with its
//! version byte and size limits ([`encoding`]) and the hashes ([`hash`]). It does no I/O.
//!
//! Consensus values are integers: the only floats here are hyper-parameters of *local*
//! training, and even those are carried as integer millionths ([`fixed::Fixed6`]) so that
//! the chain id never depends on float formatting.

pub mod announce;
pub mod block;
pub mod compact;
pub mod encoding;
pub mod fixed;
pub mod genesis;
pub mod hash;
pub mod header;
pub mod model;
pub mod privacy;
pub mod registration;
pub mod submission;
pub mod sync;
pub mod topics;
pub mod update;

pub use announce::SubmissionAnnouncement;
pub use block::Block;
pub use compact::CompactBlock;
pub use encoding::{DecodeError, decode, encode};
pub use fixed::{Decimal9, Fixed6, Probability};
pub use genesis::{AggregationRule, Architecture, Genesis, GenesisError};
pub use hash::Hash32;
pub use privacy::{DpDeclaration, PrivacyPolicy};
pub use header::{HEADER_LEN, Header};
pub use registration::{Registration, RegistrationKind, RegistryAction};
pub use submission::{Signature64, Submission, SubmissionAuth};
pub use sync::{StatusMessage, SyncRequest, SyncResponse};
pub use update::{EncodedUpdate, UpdateEncoding, UpdateError};
