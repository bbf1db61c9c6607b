//! What a node does besides following the chain, one task per role: the miner (builds
//! blocks from the pool and races proof of work), the data source (trains under DP-SGD,
//! signs and submits one update per round) and its enrolment (stamps and gossips its own
//! registration under open enrolment). Each task reads the chain through the
//! [`crate::service::ChainService`] (heads, pool status) and hands what it makes back to it
//! and to the network; none of them touches the chain directly.

pub mod datasource;
pub mod enrol;
pub mod miner;
