//! learnchain's chain: validation pipeline, proof of work and retarget, fork choice and
//! reorg over an integer model, the submission pool and the durable block store.
//!
//! Data enters as decoded [`learnchain_proto::Block`]s and
//! [`learnchain_proto::Submission`]s handed in by the node; it leaves as
//! [`ImportOutcome`]s, heads, models and blocks read back for peers and RPC. Nothing here
//! does network I/O; disk I/O is confined to [`store`].

pub mod auth;
pub mod bodies;
pub mod cache;
pub mod chain;
pub mod difficulty;
pub mod error;
pub mod pool;
pub mod pow;
pub mod registry;
pub mod store;
pub mod testing;
pub mod validate;

pub use cache::ChainCaches;
pub use chain::{BlockTemplate, Chain, ImportOutcome, now_ms};
pub use error::{BlockError, ChainError, RegistrationError, SnapshotError, SubmissionError, Verdict};
pub use pool::{RegistrationPool, SubmissionPool};
pub use registry::{MemberRecord, Registry};
pub use store::BlockMeta;

#[cfg(test)]
mod tests;
