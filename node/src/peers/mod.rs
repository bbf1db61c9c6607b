//! What this node knows about its peers, as opposed to the chain: the list the RPC shows
//! ([`list`]) and the rejection log ([`rejections`]), which turns a flood of invalid messages
//! from one peer into a line per interval. Scores and bans live in the network crate's peer
//! manager; the node reports offences to it through the network handle.

pub mod list;
pub mod rejections;

pub use list::PeerList;
pub use rejections::RejectionLog;
