//! An in-process testnet for multi-node scenarios.
//!
//! [`Testnet`] starts real nodes — each with its own libp2p swarm on 127.0.0.1, data
//! directory and JSON-RPC port — inside the test's tokio runtime, with a fast genesis and
//! the built-in breast-cancer data sharded among the data sources. Tests wait on *events*
//! (head changes on the nodes' watch channels) with a deadline as a safety net, never on
//! sleeps. Tests of the real binary live beside it in `node/tests/`, where Cargo guarantees
//! the `learnchain` binary is built.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use learnchain_identity::MemberSecret;
use learnchain_identity::keystore::{self, KdfParams};
use learnchain_node::privacy::PrivacyConfig;
use learnchain_node::{DataConfig, HeadSnapshot, Node, NodeConfig, Role};
use learnchain_proto::{Genesis, Hash32};
use tokio::sync::watch;

/// What one node of a testnet does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A miner.
    Miner,
    /// A data source holding training shard `n` (of [`Testnet::SHARDS`]).
    Source(usize),
    /// A deliberately hostile data source on shard `n`, with the `--adversary` kind given.
    Adversary(usize, &'static str),
    /// An observer holding the test split.
    Observer,
}

/// A set of in-process nodes sharing one genesis.
pub struct Testnet {
    /// Holds every node's data directory.
    pub dir: tempfile::TempDir,
    /// The genesis.
    pub genesis: Genesis,
    /// Nodes by index (`None` once stopped).
    pub nodes: Vec<Option<Node>>,
    /// Privacy settings of data sources added from now on (default: a budget so large it
    /// never stops a test; privacy tests set their own).
    pub privacy: PrivacyConfig,
    /// `target_peers` of nodes added from now on (default as for `learnchain run`).
    pub target_peers: usize,
    /// `max_peers` of nodes added from now on (default as for `learnchain run`).
    pub max_peers: usize,
    /// `enforce_peer_scores` of nodes added from now on (default true).
    pub enforce_peer_scores: bool,
    /// `prune` of nodes added from now on (default `None`, archive nodes).
    pub prune: Option<u64>,
    configs: Vec<NodeConfig>,
}

/// The network configuration of a bare libp2p peer a test drives by hand (a hostile peer,
/// a relayer, a listener): listening on `listen`, with discovery off, so it stays connected to
/// exactly the nodes the test dials.
pub fn bare(chain_id: Hash32, listen: learnchain_net::Multiaddr) -> learnchain_net::NetConfig {
    learnchain_net::NetConfig { discovery: false, ..learnchain_net::NetConfig::local(chain_id, vec![listen]) }
}

/// Deterministic junk of `len` bytes from `seed` (xorshift), for hostile payloads whose
/// every copy must be a new message (gossip message ids are content hashes).
pub fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Installs a test log subscriber once (respects `RUST_LOG`, default warnings only).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

impl Testnet {
    /// Training shards in every testnet.
    pub const SHARDS: usize = 4;

    /// A member key for shard `i`, derived deterministically.
    pub fn member_key(i: usize) -> MemberSecret {
        MemberSecret::from_seed(&[i as u8 + 1; 32])
    }

    /// The public key of [`Testnet::member_key`] `i`, as the chain writes it.
    pub fn member_id(i: usize) -> Hash32 {
        Hash32(Self::member_key(i).public().to_bytes())
    }

    /// A fast genesis for breast-cancer with every shard's member listed and a quorum of
    /// `quorum`.
    pub fn genesis(quorum: u32) -> Genesis {
        Self::genesis_with_members(quorum, 0..Self::SHARDS)
    }

    /// [`Testnet::genesis`] listing only the members of `shards` (others may enrol later if
    /// the caller opens enrolment).
    pub fn genesis_with_members(quorum: u32, shards: impl Iterator<Item = usize>) -> Genesis {
        let members = shards.map(Self::member_id).collect();
        let mut g = Genesis::template("testnet", 30, 2, members);
        g.timestamp_ms = learnchain_chain::now_ms();
        g.consensus.quorum = quorum;
        g.consensus.round_timeout_ms = 3_000;
        g.pow.block_interval_ms = 100;
        g
    }

    /// An empty testnet.
    pub fn empty(genesis: Genesis) -> anyhow::Result<Self> {
        init_logs();
        Ok(Testnet {
            dir: tempfile::tempdir()?,
            genesis,
            nodes: Vec::new(),
            privacy: PrivacyConfig { epsilon_budget: 1e6, ..PrivacyConfig::default() },
            target_peers: learnchain_net::DEFAULT_TARGET_PEERS,
            max_peers: learnchain_net::DEFAULT_MAX_PEERS,
            enforce_peer_scores: true,
            prune: None,
            configs: Vec::new(),
        })
    }

    /// Starts nodes of the given kinds, each bootstrapping from all nodes before it.
    pub async fn new(kinds: &[Kind]) -> anyhow::Result<Self> {
        let mut t = Self::empty(Self::genesis(2))?;
        t.add_all(kinds).await?;
        Ok(t)
    }

    /// Starts nodes of the given kinds, each bootstrapping from all nodes before it.
    pub async fn add_all(&mut self, kinds: &[Kind]) -> anyhow::Result<()> {
        for k in kinds {
            let boot = self.all_addrs();
            self.add(*k, boot).await?;
        }
        Ok(())
    }

    /// Listen addresses (with `/p2p/`) of every running node.
    pub fn all_addrs(&self) -> Vec<String> {
        self.nodes.iter().flatten().flat_map(|n| n.listen_addrs.iter().map(ToString::to_string)).collect()
    }

    /// Starts a node of `kind` with the given bootnodes; returns its index.
    pub async fn add(&mut self, kind: Kind, bootnodes: Vec<String>) -> anyhow::Result<usize> {
        self.add_with_data(kind, None, bootnodes).await
    }

    /// [`Testnet::add`] with the node's data configured by `data` instead of the kind's
    /// default (a built-in shard for a source, the test split for an observer).
    pub async fn add_with_data(
        &mut self,
        kind: Kind,
        data: Option<DataConfig>,
        bootnodes: Vec<String>,
    ) -> anyhow::Result<usize> {
        let i = self.nodes.len();
        let name = format!("n{i}-{}", match kind {
            Kind::Miner => "miner".to_string(),
            Kind::Source(s) => format!("source{s}"),
            Kind::Adversary(s, _) => format!("adversary{s}"),
            Kind::Observer => "observer".to_string(),
        });
        let data_dir = self.dir.path().join(&name);
        let (roles, default_data, member_key) = match kind {
            Kind::Miner => (vec![Role::Miner], DataConfig::default(), None),
            Kind::Observer => (
                vec![Role::Observer],
                DataConfig { source: Some("builtin:breast-cancer".into()), split: "test".into(), ..DataConfig::default() },
                None,
            ),
            Kind::Source(s) | Kind::Adversary(s, _) => {
                let path = data_dir.join("member.key");
                std::fs::create_dir_all(&data_dir)?;
                if !path.exists() {
                    keystore::write_new(&path, &Self::member_key(s), None, KdfParams::TEST)?;
                }
                (
                    vec![Role::DataSource],
                    DataConfig {
                        source: Some("builtin:breast-cancer".into()),
                        shards: Self::SHARDS,
                        shard: s,
                        evaluate: false,
                        ..DataConfig::default()
                    },
                    Some(path),
                )
            }
        };
        let data = data.unwrap_or(default_data);
        let config = NodeConfig {
            name,
            data_dir,
            genesis: PathBuf::new(),
            roles,
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            bootnodes,
            rpc: "127.0.0.1:0".into(),
            // Every test node serves its metrics, so any test can scrape them.
            metrics: Some("127.0.0.1:0".into()),
            data,
            member_key,
            member_key_passphrase_file: None,
            request_timeout_s: 5,
            bootnode_timeout_s: 0,
            target_peers: self.target_peers,
            max_peers: self.max_peers,
            mdns: false,
            discovery: true,
            gossip_scoring: true,
            enforce_peer_scores: self.enforce_peer_scores,
            prune: self.prune,
            sync: learnchain_node::sync::snapshot::SyncMode::Snapshot,
            store_cache_mib: 16,
            privacy: self.privacy.clone(),
            adversary: match kind {
                Kind::Adversary(_, a) => Some(a.to_string()),
                _ => None,
            },
        };
        let node = Node::start(config.clone(), self.genesis.clone()).await?;
        self.nodes.push(Some(node));
        self.configs.push(config);
        Ok(i)
    }

    /// The running node `i`.
    pub fn node(&self, i: usize) -> anyhow::Result<&Node> {
        self.nodes.get(i).and_then(Option::as_ref).with_context(|| format!("node {i} is not running"))
    }

    /// The head of node `i`.
    pub fn head(&self, i: usize) -> anyhow::Result<HeadSnapshot> {
        Ok(self.node(i)?.svc.head())
    }

    /// Stops node `i` cleanly.
    pub async fn stop(&mut self, i: usize) -> anyhow::Result<()> {
        let node = self.nodes.get_mut(i).and_then(Option::take).with_context(|| format!("node {i} is not running"))?;
        node.shutdown().await;
        Ok(())
    }

    /// Starts a stopped node again from its data directory, with the given bootnodes.
    pub async fn restart(&mut self, i: usize, bootnodes: Vec<String>) -> anyhow::Result<()> {
        let mut config = self.configs.get(i).cloned().with_context(|| format!("no node {i}"))?;
        config.bootnodes = bootnodes;
        let node = Node::start(config, self.genesis.clone()).await?;
        self.nodes[i] = Some(node);
        Ok(())
    }

    /// Pauses or resumes mining on every running node.
    pub fn set_mining(&self, on: bool) {
        for n in self.nodes.iter().flatten() {
            n.set_mining(on);
        }
    }

    /// Waits until node `i`'s head is at least `height`.
    pub async fn wait_height(&self, i: usize, height: u64, timeout: Duration) -> anyhow::Result<HeadSnapshot> {
        let mut rx = self.node(i)?.heads();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let head = rx.borrow_and_update().clone();
            if head.meta.height >= height {
                return Ok(head);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => bail!("node {i} stopped"),
                Err(_) => bail!("node {i} stuck at height {} waiting for {height}", head.meta.height),
            }
        }
    }

    /// Waits until `pred` holds for node `i`'s chain, checking at every new head; `what`
    /// names the condition in the error when `timeout` passes first.
    pub async fn wait_until(
        &self,
        i: usize,
        what: &str,
        pred: impl Fn(&learnchain_chain::Chain) -> anyhow::Result<bool>,
        timeout: Duration,
    ) -> anyhow::Result<HeadSnapshot> {
        let node = self.node(i)?;
        let mut rx = node.heads();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let head = rx.borrow_and_update().clone();
            if pred(&node.svc.lock().chain)? {
                return Ok(head);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => bail!("node {i} stopped while waiting until {what}"),
                Err(_) => bail!("node {i} at height {}: timed out waiting until {what}", head.meta.height),
            }
        }
    }

    /// The heights of node `i`'s canonical blocks carrying a submission of member key `k`
    /// (recognised by its round tags: only a key's holder can do this).
    pub fn rounds_of(&self, i: usize, key: &MemberSecret) -> anyhow::Result<Vec<u64>> {
        let chain_id = self.genesis.chain_id();
        let st = self.node(i)?.svc.lock();
        let mut out = Vec::new();
        for h in 1..=st.chain.head().height {
            let block = st.chain.block_at(h)?.with_context(|| format!("no block at {h}"))?;
            let tag = Hash32(learnchain_identity::link_tag(key, &chain_id.0, h));
            if block.submissions.iter().any(|s| s.round_tag() == tag) {
                out.push(h);
            }
        }
        Ok(out)
    }

    /// Waits until every node in `which` has the same head; returns it.
    pub async fn wait_agree(&self, which: &[usize], timeout: Duration) -> anyhow::Result<HeadSnapshot> {
        let mut rxs: Vec<watch::Receiver<HeadSnapshot>> =
            which.iter().map(|&i| self.node(i).map(Node::heads)).collect::<Result<_, _>>()?;
        let deadline = tokio::time::Instant::now() + timeout;
        if learnchain_node::wait_agree(&mut rxs, deadline).await {
            return rxs.first().map(|r| r.borrow().clone()).context("no nodes given");
        }
        let desc: Vec<String> = rxs
            .iter()
            .map(|r| {
                let h = r.borrow();
                format!("{}@{}", h.meta.hash.short(), h.meta.height)
            })
            .collect();
        bail!("nodes {which:?} did not agree: {desc:?}")
    }

    /// Indices of running nodes.
    pub fn running(&self) -> Vec<usize> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.is_some()).map(|(i, _)| i).collect()
    }

    /// Shuts every node down.
    pub async fn shutdown(mut self) {
        for n in self.nodes.iter_mut() {
            if let Some(n) = n.take() {
                n.shutdown().await;
            }
        }
    }
}
