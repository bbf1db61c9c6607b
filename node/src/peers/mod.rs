//! What this node knows about its peers' behaviour, as opposed to the chain: today the
//! rejection log ([`rejections`]), which turns a flood of invalid messages from one peer into
//! a line per interval.

pub mod rejections;

pub use rejections::RejectionLog;
