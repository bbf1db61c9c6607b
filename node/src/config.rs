//! Node configuration: a TOML file with `#[serde(default)]` sections, overridden by flags.
//!
//! Every field has a default, so an empty file is a valid observer on loopback. Paths that
//! are relative are taken relative to the current directory. [`NodeConfig::validate`]
//! catches what serde cannot (no roles, a data-source without data, bad addresses) with a
//! message naming the field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

pub use crate::data::DataConfig;

/// Reads and validates a genesis file.
pub fn load_genesis(path: &Path) -> anyhow::Result<learnchain_proto::Genesis> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read genesis file {}", path.display()))?;
    if meta.len() > 16 * 1024 * 1024 {
        bail!("genesis file {} is larger than 16 MiB", path.display());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read genesis file {}", path.display()))?;
    learnchain_proto::Genesis::from_toml_str(&text).with_context(|| format!("genesis file {} is invalid", path.display()))
}

/// Largest config file read.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Largest [`NodeConfig::max_peers`] accepted.
pub const MAX_MAX_PEERS: usize = 10_000;

/// Default of [`NodeConfig::bootnode_timeout_s`].
pub const DEFAULT_BOOTNODE_TIMEOUT_S: u64 = 60;

/// What a node does besides following the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Builds blocks and races proof of work.
    Miner,
    /// Trains on local data and submits updates.
    DataSource,
    /// Follows and serves the chain only.
    Observer,
}

impl Role {
    /// Name as in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Miner => "miner",
            Role::DataSource => "data-source",
            Role::Observer => "observer",
        }
    }
}


/// Everything a node needs to start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// A name for logs.
    pub name: String,
    /// Directory for the chain database, keys and privacy ledger.
    pub data_dir: PathBuf,
    /// Genesis TOML file.
    pub genesis: PathBuf,
    /// Roles.
    pub roles: Vec<Role>,
    /// libp2p listen multiaddrs.
    pub listen: Vec<String>,
    /// Bootnode multiaddrs.
    pub bootnodes: Vec<String>,
    /// Connections the node dials toward, through discovery, when it has fewer.
    pub target_peers: usize,
    /// Most connections; further inbound ones are refused.
    pub max_peers: usize,
    /// Find peers on the local network with mDNS.
    pub mdns: bool,
    /// Find peers through Kademlia (default true). Off, the node knows its bootnodes and the
    /// peers that dial it, as the devnet does, which wires its own mesh.
    pub discovery: bool,
    /// Run gossipsub's own peer scoring (default true; the peer manager's scores and bans do
    /// not depend on it).
    pub gossip_scoring: bool,
    /// Disconnect and ban peers whose score falls below the thresholds (default true).
    /// Off, offences are still counted and shown by `net_peers`: for tests.
    pub enforce_peer_scores: bool,
    /// Keep the block bodies of the last this many heights only (at least
    /// `learnchain_chain::chain::MIN_PRUNE_KEEP`); `None` keeps every body (an archive node).
    pub prune: Option<u64>,
    /// How an empty data dir catches up: `snapshot` (default) from a peer's recent state,
    /// or `full` from genesis.
    pub sync: crate::sync::snapshot::SyncMode,
    /// The chain store's page cache in MiB (default 16): the largest part of a node's
    /// memory that grows with use.
    pub store_cache_mib: usize,
    /// JSON-RPC address; `none` disables it.
    pub rpc: String,
    /// Prometheus metrics endpoint (`GET /metrics`): `IP:PORT`, or a bare `PORT` for
    /// `127.0.0.1:PORT`; absent or `none` (the default) serves none.
    pub metrics: Option<String>,
    /// Local data.
    pub data: DataConfig,
    /// Member key file of a data source (default: `DATA_DIR/member.key`).
    pub member_key: Option<PathBuf>,
    /// File whose first line is the member key's passphrase (default: the
    /// `LEARNCHAIN_KEY_PASSPHRASE` environment variable; none for an unencrypted key).
    pub member_key_passphrase_file: Option<PathBuf>,
    /// Sync request timeout in seconds.
    pub request_timeout_s: u64,
    /// A node with bootnodes stops with an error when none of them has answered within
    /// this many seconds of its start; 0 keeps trying forever.
    pub bootnode_timeout_s: u64,
    /// Differential privacy of a data source: budget, δ and DP-SGD parameters.
    pub privacy: crate::privacy::PrivacyConfig,
    /// Makes this data source deliberately hostile, for tests and demos of the aggregation
    /// rules (see `adversary`): `sign-flip`, `scale:K`, `gaussian:S`, `label-flip`, `zero`
    /// or `replay-stale`.
    pub adversary: Option<String>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "node".into(),
            data_dir: PathBuf::from("learnchain-data"),
            genesis: PathBuf::from("genesis.toml"),
            roles: vec![Role::Observer],
            listen: vec!["/ip4/0.0.0.0/tcp/30333".into()],
            bootnodes: vec![],
            target_peers: learnchain_net::DEFAULT_TARGET_PEERS,
            max_peers: learnchain_net::DEFAULT_MAX_PEERS,
            mdns: false,
            discovery: true,
            gossip_scoring: true,
            enforce_peer_scores: true,
            prune: None,
            sync: crate::sync::snapshot::SyncMode::Snapshot,
            store_cache_mib: 16,
            rpc: "127.0.0.1:8545".into(),
            metrics: None,
            data: DataConfig::default(),
            member_key: None,
            member_key_passphrase_file: None,
            request_timeout_s: 10,
            bootnode_timeout_s: DEFAULT_BOOTNODE_TIMEOUT_S,
            privacy: crate::privacy::PrivacyConfig::default(),
            adversary: None,
        }
    }
}

impl NodeConfig {
    /// Reads a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        if meta.len() > MAX_CONFIG_BYTES {
            bail!("config file {} is larger than {} KiB", path.display(), MAX_CONFIG_BYTES / 1024);
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {} is invalid", path.display()))
    }

    /// Whether the node has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The RPC address, or `None` when disabled.
    pub fn rpc_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        if self.rpc == "none" || self.rpc.is_empty() {
            return Ok(None);
        }
        self.rpc
            .parse()
            .map(Some)
            .with_context(|| format!("rpc = {:?} is not an IP:port address (or \"none\")", self.rpc))
    }

    /// The metrics address, or `None` when off. A bare port binds 127.0.0.1.
    pub fn metrics_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        match self.metrics.as_deref().map(str::trim) {
            None | Some("" | "none") => Ok(None),
            Some(text) => {
                if let Ok(port) = text.parse::<u16>() {
                    return Ok(Some(SocketAddr::from(([127, 0, 0, 1], port))));
                }
                text.parse().map(Some).with_context(|| {
                    format!("metrics = {text:?} is not an IP:port address, a port (for 127.0.0.1), or \"none\"")
                })
            }
        }
    }

    /// The member key path.
    pub fn member_key_path(&self) -> PathBuf {
        self.member_key.clone().unwrap_or_else(|| self.data_dir.join("member.key"))
    }

    /// The hostile behaviour this node was asked for, if any.
    pub fn adversary(&self) -> anyhow::Result<Option<crate::adversary::Adversary>> {
        self.adversary
            .as_deref()
            .map(|a| a.parse().map_err(|e: String| anyhow::anyhow!("adversary: {e}")))
            .transpose()
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.adversary()?.is_some() && !self.has(Role::DataSource) {
            bail!("adversary: only a data source can be an adversary (add the data-source role)");
        }
        if self.roles.is_empty() {
            bail!("roles: give at least one of miner, data-source, observer");
        }
        if self.store_cache_mib == 0 {
            bail!("store_cache_mib: give at least 1 (MiB)");
        }
        if let Some(n) = self.prune
            && n < learnchain_chain::chain::MIN_PRUNE_KEEP
        {
            bail!(
                "prune: {n} is too few; a pruned node keeps at least {} blocks (it rebuilds its state from a checkpoint up to that deep after a restart)",
                learnchain_chain::chain::MIN_PRUNE_KEEP
            );
        }
        self.rpc_addr()?;
        self.metrics_addr()?;
        if self.has(Role::DataSource) && self.data.source.is_none() {
            bail!("data.source: a data-source needs local data (builtin:NAME or csv:PATH)");
        }
        self.data.validate()?;
        if self.request_timeout_s == 0 {
            bail!("request_timeout_s must be positive");
        }
        if self.max_peers == 0 || self.max_peers > MAX_MAX_PEERS {
            bail!("max_peers must be between 1 and {MAX_MAX_PEERS}, got {}", self.max_peers);
        }
        if self.target_peers > self.max_peers {
            bail!("target_peers ({}) must not exceed max_peers ({})", self.target_peers, self.max_peers);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_a_valid_observer_and_typos_are_refused() {
        let c: NodeConfig = toml::from_str("").expect("defaults");
        c.validate().expect("valid");
        assert!(toml::from_str::<NodeConfig>("rolez = []").is_err());
        let c: NodeConfig = toml::from_str("roles = [\"data-source\"]").expect("parses");
        assert!(c.validate().is_err());
        let c: NodeConfig = toml::from_str("rpc = \"nope\"").expect("parses");
        assert!(c.validate().is_err());
    }

    #[test]
    fn metrics_address_defaults_to_off_and_loopback() {
        let c = NodeConfig::default();
        assert_eq!(c.metrics_addr().expect("ok"), None);
        let c: NodeConfig = toml::from_str("metrics = \"9100\"").expect("parses");
        assert_eq!(c.metrics_addr().expect("ok"), Some("127.0.0.1:9100".parse().expect("addr")));
        let c: NodeConfig = toml::from_str("metrics = \"0.0.0.0:9100\"").expect("parses");
        assert_eq!(c.metrics_addr().expect("ok"), Some("0.0.0.0:9100".parse().expect("addr")));
        let c: NodeConfig = toml::from_str("metrics = \"none\"").expect("parses");
        assert_eq!(c.metrics_addr().expect("ok"), None);
        let c: NodeConfig = toml::from_str("metrics = \"localhost:x\"").expect("parses");
        let err = c.validate().expect_err("refused");
        assert!(format!("{err:#}").contains("metrics = \"localhost:x\""), "{err:#}");
    }

    #[test]
    fn privacy_section_parses_and_typos_are_refused() {
        let c: NodeConfig =
            toml::from_str("[privacy]\nepsilon_budget = 3.5\nnoise_multiplier = 2.5\ndelta = 1e-6\n").expect("parses");
        assert_eq!(c.privacy.epsilon_budget, 3.5);
        assert_eq!(c.privacy.noise_multiplier, Some(2.5));
        assert_eq!(c.privacy.delta, Some(1e-6));
        assert_eq!(c.privacy.sample_rate, None);
        let empty: NodeConfig = toml::from_str("").expect("defaults");
        assert_eq!(empty.privacy.epsilon_budget, crate::privacy::DEFAULT_EPSILON_BUDGET);
        let err = toml::from_str::<NodeConfig>("[privacy]\nepsilon_budjet = 3.5\n").expect_err("typo");
        assert!(err.to_string().contains("epsilon_budjet"), "{err}");
    }

    #[test]
    fn oversized_config_file_is_refused_before_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.toml");
        let f = std::fs::File::create(&path).expect("create");
        f.set_len(MAX_CONFIG_BYTES + 1).expect("sparse file");
        let err = NodeConfig::load(&path).expect_err("too large");
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}
