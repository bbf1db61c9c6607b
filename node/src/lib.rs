//! The learnchain node: configuration, wiring of the chain, network, RPC, miner and data
//! source, the devnet and the command line. The binary `learnchain` is a thin `main` over
//! this library, so tests can start nodes in-process.

pub mod adversary;
pub mod bootnode;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod devnet;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod node;
pub mod peers;
pub mod plot;
pub mod privacy;
pub mod roles;
pub mod rpc_api;
pub mod service;
pub mod status;
pub mod sync;

pub use config::{DataConfig, NodeConfig, Role};
pub use node::{Node, run};
pub use service::{ChainService, HeadSnapshot, wait_agree};
