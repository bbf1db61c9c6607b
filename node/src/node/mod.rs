//! A running node: wiring of the chain service, the network, sync, RPC, and the miner and
//! data-source tasks, with a clean shutdown.
//!
//! [`Node::start`] opens the chain in the data directory, builds the libp2p swarm, waits
//! until it listens, starts RPC and spawns every task by name. The node loop (one
//! `select!`, each arm an `on_*` function) turns network events into chain calls: gossip is
//! decoded within the genesis size limit and validated, and its verdict reported back
//! (compact blocks are checked here and rebuilt in a task of their own, see
//! [`crate::sync::compact`]; submission announcements are fetched by a task per peer, see
//! [`crate::sync::pool`]);
//! sync requests are served; a new peer or a block with an unknown parent starts a sync
//! with that peer (the gossip and sync-request handlers are in the `gossip` submodule).
//! [`Node::shutdown`] signals every task, waits for each, and stops RPC.
//! [`run`] is the daemon: start, wait for the caller's shutdown future, shut down.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use learnchain_chain::{Chain, ChainCaches, Verdict as ChainVerdict};
use learnchain_model::Dataset;
use learnchain_net::{Multiaddr, NetConfig, NetEvent, NetworkHandle, PeerId, TopicKind, Verdict};
use learnchain_identity::MemberSecret;
use learnchain_proto::{Genesis, Hash32};
use learnchain_rpc::HeadView;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::bootnode::BootnodeWatch;
use crate::config::{NodeConfig, Role};
use crate::peers::PeerList;
use crate::rpc_api::{MetricsCache, NodeFacts, NodeRpc, head_view};
use crate::service::{ChainService, HeadSnapshot};
use crate::privacy::{PrivacyGate, PrivacyPlan};
use crate::sync::compact::CompactRelay;
use crate::sync::pool::Fetcher;
use crate::roles::{datasource, enrol, miner};
use crate::{data, keys, sync};

mod gossip;

/// Longest a node with bootnodes treats its stored head as possibly old before any peer
/// has told it otherwise.
const FIRST_SYNC_GRACE: Duration = Duration::from_secs(15);

/// How long a peer found to run another chain stays connected before it is banned, so that
/// its own status request to us is answered and it can say why it stops.
const WRONG_CHAIN_GRACE: Duration = Duration::from_secs(2);

/// How often the node asks peers for their status even without a reason.
const RESYNC_INTERVAL: Duration = Duration::from_secs(10);

/// How many peers one resync interval asks (in turn, so every peer is asked eventually).
const RESYNC_PEERS: usize = 3;

/// A started node.
pub struct Node {
    /// Name from the config.
    pub name: String,
    /// The chain service.
    pub svc: ChainService,
    /// The network handle.
    pub net: NetworkHandle,
    /// libp2p peer id.
    pub peer_id: PeerId,
    /// Public key of the node's identity; a miner writes it into its headers.
    pub node_key: Hash32,
    /// Addresses the swarm listens on, each with the `/p2p/` suffix.
    pub listen_addrs: Vec<Multiaddr>,
    /// The RPC address, if RPC runs.
    pub rpc_addr: Option<SocketAddr>,
    /// The RPC implementation (also usable in-process).
    pub api: Arc<NodeRpc>,
    peers: PeerList,
    /// A data source's training examples as the model reads them (after the input scaling).
    pub training_data: Option<Arc<Dataset>>,
    mining: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
    /// Set (once) when the node cannot go on: see [`Node::failed`].
    fatal: watch::Receiver<Option<String>>,
    tasks: Vec<(String, JoinHandle<()>)>,
    rpc: Option<learnchain_rpc::RpcHandle>,
    /// The `--metrics` endpoint, serving the node's metrics and the network's (see
    /// [`crate::metrics`]).
    metrics_server: Option<learnchain_rpc::metrics::MetricsHandle>,
}

pub(crate) fn to_verdict(v: ChainVerdict) -> Verdict {
    match v {
        ChainVerdict::Accept => Verdict::Accept,
        ChainVerdict::Ignore => Verdict::Ignore,
        ChainVerdict::Reject => Verdict::Reject,
    }
}

fn parse_addrs(list: &[String], what: &str) -> anyhow::Result<Vec<Multiaddr>> {
    list.iter()
        .map(|a| a.parse::<Multiaddr>().with_context(|| format!("{what} address {a:?} is not a multiaddr")))
        .collect()
}

/// What a data source needs, prepared before the network starts so that a bad privacy
/// setting stops the node before it listens.
struct DataSourceParts {
    key: Arc<MemberSecret>,
    /// Whether the node registers its key itself (open enrolment, key not yet registered).
    enrol: bool,
    train: Arc<Dataset>,
    gate: crate::privacy::SharedGate,
}

impl Node {
    /// Starts a node.
    pub async fn start(config: NodeConfig, genesis: Genesis) -> anyhow::Result<Node> {
        Node::start_with_caches(config, genesis, ChainCaches::new()).await
    }

    /// [`Node::start`] with chain caches shared with the other nodes of this process (a
    /// devnet, a testnet): an item one node verified is not verified again by the others
    /// (see `learnchain_chain::cache`).
    pub async fn start_with_caches(config: NodeConfig, genesis: Genesis, caches: ChainCaches) -> anyhow::Result<Node> {
        config.validate()?;
        let span = info_span!("node", name = %config.name);
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        let chain_id = genesis.chain_id();
        let store_cache = config.store_cache_mib.saturating_mul(1 << 20);
        let mut chain = Chain::open_sized(&config.data_dir.join("chain.redb"), genesis.clone(), caches, store_cache)
            .with_context(|| format!("cannot open the chain in {}", config.data_dir.display()))?;
        chain.set_prune(config.prune)?;
        let svc = ChainService::new(chain);
        let local = data::load_local(&config.data, genesis.model.input.as_ref())?;
        if let Some(train) = &local.train
            && train.features() != genesis.model.features as usize {
                anyhow::bail!(
                    "local data has {} features but the genesis model expects {}",
                    train.features(),
                    genesis.model.features
                );
            }
        let adversary = config.adversary()?;
        let data_source = if config.has(Role::DataSource) {
            let path = config.member_key_path();
            let pass = keys::passphrase(config.member_key_passphrase_file.as_deref())?;
            let key = keys::member_key(&path, pass.as_ref().map(|p| p.as_str()))
                .with_context(|| format!("cannot load the member key {}", path.display()))?;
            let member = Hash32(key.public().to_bytes());
            let record = svc.lock().chain.registry().record(&member).copied();
            let enrolment = &genesis.enrolment;
            let enrol = match record {
                Some(learnchain_chain::MemberRecord { revoked_at: Some(h), .. }) => anyhow::bail!(
                    "member key {member} ({}) was revoked at height {h}; revoked keys do not return: make a new key \
                     (learnchain keys new) and register it",
                    path.display()
                ),
                Some(_) => false,
                None if !enrolment.is_open() => anyhow::bail!(
                    "member key {member} ({}) is not a member: it is not in the genesis members and this chain has no \
                     enrolment; add it to the genesis or run as an observer",
                    path.display()
                ),
                None if enrolment.open_stamp_bits > 0 => {
                    info!(parent: &span, member = %member, "member key not registered yet: enrolling with a proof-of-work stamp");
                    true
                }
                None => {
                    warn!(
                        parent: &span,
                        member = %member,
                        "member key not registered yet; the enrolment authority registers it with \
                         `learnchain members enrol --member-key FILE --authority-key AUTHORITY_FILE`; \
                         this node trains once a block has registered it"
                    );
                    false
                }
            };
            let train = local.train.ok_or_else(|| anyhow::anyhow!("data-source role without training data"))?;
            let train: Arc<Dataset> = Arc::new(match adversary {
                Some(a) => {
                    warn!(
                        parent: &span,
                        adversary = %a,
                        "THIS DATA SOURCE IS A DELIBERATE ADVERSARY ({a}): its updates are hostile, for tests and demos of the aggregation rule"
                    );
                    a.training_data(&train)
                }
                None => train,
            });
            let plan = PrivacyPlan::resolve(&config.privacy, &genesis, train.len())?;
            let gate = PrivacyGate::open(&config.data_dir, plan)?;
            let spent = gate.ledger().spent().epsilon;
            let d = plan.declaration;
            info!(
                parent: &span,
                examples = train.len(),
                sample_rate = %d.sample_rate,
                noise_multiplier = %d.noise_multiplier,
                clip = %d.clip,
                steps = d.steps,
                epsilon_budget = plan.budget,
                epsilon_spent = spent,
                epsilon_per_round = plan.one_round_epsilon,
                delta = plan.delta,
                "data source ready (DP-SGD)"
            );
            Some(DataSourceParts { key: Arc::new(key), enrol, train, gate: Arc::new(Mutex::new(gate)) })
        } else {
            None
        };
        let keypair = keys::node_keypair(&config.data_dir)?;
        // The miner key in headers is the public half of the node's Ed25519 identity.
        let node_key = Hash32(
            keypair.public().try_into_ed25519().context("node identity is not an Ed25519 key")?.to_bytes(),
        );
        let bootnodes = parse_addrs(&config.bootnodes, "bootnode")?;
        let timeout = (config.bootnode_timeout_s > 0).then(|| Duration::from_secs(config.bootnode_timeout_s));
        let watch = Arc::new(Mutex::new(BootnodeWatch::new(bootnodes.clone(), chain_id, timeout)));
        let (fatal_tx, fatal) = watch::channel(None);
        let fatal_tx = Arc::new(fatal_tx);
        let net_config = NetConfig {
            keypair,
            listen: parse_addrs(&config.listen, "listen")?,
            bootnodes,
            chain_id,
            max_block_bytes: genesis.limits.max_block_bytes as usize,
            max_sync_response_bytes: genesis.limits.max_sync_response_bytes as usize,
            request_timeout: Duration::from_secs(config.request_timeout_s),
            target_peers: config.target_peers,
            max_peers: config.max_peers,
            mdns: config.mdns,
            enforce_peer_scores: config.enforce_peer_scores,
            discovery: config.discovery,
            gossip_scoring: config.gossip_scoring,
        };
        // Metrics are kept (libp2p's and gossipsub's cost work per message) only when served.
        let metrics_addr = config.metrics_addr()?;
        let mut registry = metrics_addr.map(|addr| {
            let mut registry = prometheus_client::registry::Registry::with_prefix("learnchain");
            svc.metrics().register(&mut registry);
            (addr, registry)
        });
        let (net, mut events, event_loop) = match registry.as_mut() {
            Some((_, registry)) => learnchain_net::new_with_metrics(net_config, registry),
            None => learnchain_net::new(net_config),
        }
        .context("cannot start networking")?;
        let peer_id = net.local_peer_id();
        let (shutdown, _) = watch::channel(false);
        let (mining, _) = watch::channel(true);
        let mut tasks = Vec::new();
        tasks.push(("network".to_string(), tokio::spawn(event_loop.run().instrument(span.clone()))));

        // Wait until the swarm listens, so callers can hand the address to other nodes.
        let mut early = Vec::new();
        let mut listen_addrs = Vec::new();
        let wanted = config.listen.len().max(1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while listen_addrs.len() < wanted {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(NetEvent::Listening(addr))) => {
                    listen_addrs.push(addr.with(libp2p::multiaddr::Protocol::P2p(peer_id)))
                }
                Ok(Some(other)) => early.push(other),
                Ok(None) => anyhow::bail!("network stopped during start-up"),
                Err(_) if !listen_addrs.is_empty() => break,
                Err(_) => anyhow::bail!("network did not start listening on {:?}", config.listen),
            }
        }

        let (head_tx, _) = broadcast::channel::<HeadView>(64);
        let eval = local.eval.map(Arc::new);
        let peers = PeerList::default();
        let syncing = Arc::new(AtomicBool::new(false));
        let rpc_addr_cfg = config.rpc_addr()?;
        let facts = NodeFacts {
            name: config.name.clone(),
            peer_id: peer_id.to_string(),
            roles: config.roles.iter().map(|r| r.as_str().to_string()).collect(),
            listen_addrs: listen_addrs.iter().map(ToString::to_string).collect(),
            rpc_addr: String::new(),
            data_dir: config.data_dir.display().to_string(),
            adversary: adversary.map(|a| a.to_string()),
        };
        let api = Arc::new(NodeRpc {
            svc: svc.clone(),
            facts: Arc::new(Mutex::new(facts)),
            peers: peers.clone(),
            eval: eval.clone(),
            metrics: Arc::new(Mutex::new(MetricsCache::default())),
            heads: head_tx.clone(),
            net: net.clone(),
            syncing: syncing.clone(),
            privacy: data_source.as_ref().map(|d| d.gate.clone()),
            walk: Mutex::new(None),
        });
        let (rpc, rpc_addr) = match rpc_addr_cfg {
            Some(addr) => {
                let handle = match learnchain_rpc::start(addr, api.clone()).await {
                    Ok(h) => h,
                    Err(learnchain_rpc::RpcError::Bind { source, .. })
                        if source.kind() == std::io::ErrorKind::AddrInUse =>
                    {
                        anyhow::bail!(
                            "cannot start JSON-RPC on {addr}: the port is already in use (another node, or another \
                             program, holds it); stop it, or give this node another --rpc address (or --rpc none)"
                        )
                    }
                    Err(e) => return Err(e).with_context(|| format!("cannot start JSON-RPC on {addr}")),
                };
                let bound = handle.local_addr();
                api.facts.lock().unwrap_or_else(|p| p.into_inner()).rpc_addr = bound.to_string();
                (Some(handle), Some(bound))
            }
            None => (None, None),
        };
        let metrics_server = match registry {
            Some((addr, registry)) => Some(crate::metrics::serve(addr, Arc::new(registry)).await?),
            None => None,
        };

        // Head forwarder: chain heads → RPC subscriptions; evaluation on observers.
        {
            let mut rx = svc.head_events();
            let tx = head_tx.clone();
            let api2 = api.clone();
            let mut stop = shutdown.subscribe();
            tasks.push((
                "heads".into(),
                tokio::spawn(
                    async move {
                        loop {
                            tokio::select! {
                                r = rx.recv() => match r {
                                    Ok(meta) => {
                                        let _ = tx.send(head_view(&chain_id, &meta));
                                        if api2.eval.is_some() {
                                            let api3 = api2.clone();
                                            let (height, m) = (meta.height, api3.svc.metrics().clone());
                                            if let Ok(Ok(e)) = tokio::task::spawn_blocking(move || api3.metrics_for(&meta)).await {
                                                m.on_evaluation(height, e.accuracy, e.loss);
                                            }
                                        }
                                    }
                                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                                    Err(_) => return,
                                },
                                _ = crate::service::stopped(&mut stop) => return,
                            }
                        }
                    }
                    .instrument(span.clone()),
                ),
            ));
        }

        // Until it has compared heads with a peer, a node with bootnodes does not know whether
        // its stored head is current: it counts as catching up (a data source waits), for at
        // most FIRST_SYNC_GRACE when no peer answers. Marked before the data source starts.
        let has_bootnodes = !config.bootnodes.is_empty();
        let first_sync = Arc::new(Mutex::new(has_bootnodes.then(|| svc.begin_catch_up())));
        if config.has(Role::Miner) {
            let miner_key = node_key;
            tasks.push((
                "miner".into(),
                tokio::spawn(
                    miner::run(svc.clone(), net.clone(), miner_key, mining.subscribe(), shutdown.subscribe())
                        .instrument(span.clone()),
                ),
            ));
        }
        let training_data = data_source.as_ref().map(|d| d.train.clone());
        if let Some(ds) = data_source {
            if ds.enrol {
                tasks.push((
                    "enrol".into(),
                    tokio::spawn(
                        enrol::run(svc.clone(), net.clone(), ds.key.clone(), shutdown.subscribe()).instrument(span.clone()),
                    ),
                ));
            }
            tasks.push((
                "data-source".into(),
                tokio::spawn(
                    datasource::run(svc.clone(), net.clone(), ds.key, ds.train, ds.gate, adversary, shutdown.subscribe())
                        .instrument(span.clone()),
                ),
            ));
        }

        if let Some(after) = watch.lock().unwrap_or_else(|p| p.into_inner()).deadline() {
            let (watch, fatal) = (watch.clone(), fatal_tx.clone());
            let task = after_delay(after, shutdown.subscribe(), move || {
                let msg = watch.lock().unwrap_or_else(|p| p.into_inner()).on_timeout();
                if let Some(msg) = msg {
                    set_fatal(&fatal, msg);
                }
            });
            tasks.push(("bootnode-watch".into(), task));
        }
        if has_bootnodes {
            let grace = first_sync.clone();
            let task = after_delay(FIRST_SYNC_GRACE, shutdown.subscribe(), move || {
                grace.lock().unwrap_or_else(|p| p.into_inner()).take();
            });
            tasks.push(("first-sync-grace".into(), task));
        }
        let looper = NodeLoop {
            relay: CompactRelay::new(svc.clone(), net.clone()),
            fetcher: Fetcher::new(svc.clone(), net.clone()),
            first_sync,
            watch,
            fatal: fatal_tx,
            svc: svc.clone(),
            tasks: JoinSet::new(),
            net: net.clone(),
            peers: peers.clone(),
            syncing_with: Arc::new(Mutex::new(HashSet::new())),
            syncing,
            snapshot_gate: (config.sync == sync::snapshot::SyncMode::Snapshot).then(|| Arc::new(tokio::sync::Mutex::new(()))),
            serving: Arc::new(tokio::sync::Semaphore::new(sync::SERVED_AT_ONCE)),
            resync_cursor: 0,
        };
        let stop = shutdown.subscribe();
        tasks.push(("node-loop".into(), tokio::spawn(looper.run(events, early, stop).instrument(span.clone()))));

        let head = svc.head();
        info!(parent: &span, %peer_id, height = head.meta.height, head = %head.meta.hash.short(),
            rpc = ?rpc_addr, listen = ?listen_addrs, chain = %chain_id.short(), "node started");
        Ok(Node {
            training_data,
            name: config.name,
            svc,
            net,
            peer_id,
            node_key,
            listen_addrs,
            rpc_addr,
            api,
            peers,
            mining,
            shutdown,
            fatal,
            tasks,
            rpc,
            metrics_server,
        })
    }

    /// The address of the metrics endpoint, if `--metrics` asked for one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|m| m.local_addr())
    }

    /// Follows the head.
    pub fn heads(&self) -> watch::Receiver<HeadSnapshot> {
        self.svc.heads()
    }

    /// Follows the number of connected peers.
    pub fn peer_count(&self) -> watch::Receiver<usize> {
        self.peers.count()
    }

    /// Completes with the reason when the node cannot go on (no bootnode answered in time,
    /// or a bootnode runs another chain); pending forever otherwise.
    pub async fn failed(&self) -> String {
        let mut rx = self.fatal.clone();
        loop {
            if let Some(msg) = rx.borrow_and_update().clone() {
                return msg;
            }
            if rx.changed().await.is_err() {
                // Every sender is gone: the node is stopping and will not fail now.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Pauses or resumes mining.
    pub fn set_mining(&self, on: bool) {
        self.mining.send_replace(on);
    }

    /// Dials another node.
    pub async fn dial(&self, addr: Multiaddr) -> anyhow::Result<()> {
        self.net.dial(addr).await.context("dial failed")
    }

    /// Signals every task, waits for each, and stops RPC.
    pub async fn shutdown(self) {
        let Node { net, tasks, rpc, name, svc, api, shutdown, metrics_server, .. } = self;
        if let Some(rpc) = rpc {
            rpc.stop().await;
        }
        if let Some(metrics) = metrics_server {
            metrics.stop().await;
        }
        shutdown.send_replace(true);
        // The network event loop ends when every handle is gone.
        drop(net);
        drop(api);
        for (task, handle) in tasks {
            match tokio::time::timeout(Duration::from_secs(10), handle).await {
                Ok(_) => debug!(node = %name, task, "task stopped"),
                Err(_) => warn!(node = %name, task, "task did not stop within 10 s"),
            }
        }
        // Every task is done; close the chain (and release its database lock) before
        // returning. A blocking RPC call may still be finishing, so allow it a moment.
        let mut svc = svc;
        let mut closed = false;
        for _ in 0..250 {
            match svc.try_close() {
                Ok(()) => {
                    closed = true;
                    break;
                }
                Err(still_shared) => {
                    svc = still_shared;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        if !closed {
            warn!(node = %name, "chain still in use 5 s after shutdown; it closes when the last user ends");
        }
        info!(node = %name, "node stopped");
    }
}

/// The node loop: network events in, chain calls out.
struct NodeLoop {
    /// Rebuilds the compact blocks peers announce.
    relay: CompactRelay,
    /// Fetches the submissions peers announce.
    fetcher: Fetcher,
    /// Held until the first sync with a peer has ended (see `Node::start`).
    first_sync: Arc<Mutex<Option<crate::service::CatchUp>>>,
    /// Bootnode reachability and chain agreement.
    watch: Arc<Mutex<BootnodeWatch>>,
    /// Where a fatal error goes.
    fatal: Arc<watch::Sender<Option<String>>>,
    svc: ChainService,
    /// Tasks this loop spawned (sync, serving, peer refresh); shut down with the loop.
    tasks: JoinSet<()>,
    net: NetworkHandle,
    peers: PeerList,
    syncing_with: Arc<Mutex<HashSet<PeerId>>>,
    syncing: Arc<AtomicBool>,
    /// With snapshot sync on, one snapshot sync at a time (see `sync::snapshot`).
    snapshot_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Sync requests being answered, across all peers (see [`sync::SERVED_AT_ONCE`]).
    serving: Arc<tokio::sync::Semaphore>,
    /// Where the next resync starts in the sorted peer list.
    resync_cursor: usize,
}

impl NodeLoop {
    async fn run(mut self, mut events: mpsc::Receiver<NetEvent>, early: Vec<NetEvent>, mut stop: watch::Receiver<bool>) {
        for e in early {
            self.on_event(e).await;
        }
        let mut resync = tokio::time::interval(RESYNC_INTERVAL);
        resync.tick().await;
        loop {
            tokio::select! {
                e = events.recv() => match e {
                    Some(e) => self.on_event(e).await,
                    None => break,
                },
                _ = resync.tick() => self.on_resync().await,
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                _ = crate::service::stopped(&mut stop) => break,
            }
        }
        self.tasks.shutdown().await;
    }

    async fn on_event(&mut self, e: NetEvent) {
        match e {
            NetEvent::Gossip { kind, id, source, data } => self.on_gossip(kind, id, source, data).await,
            NetEvent::SyncRequest { peer, request, responder } => self.on_sync_request(peer, request, responder),
            NetEvent::PeerConnected(peer) => {
                debug!(%peer, "peer connected");
                self.refresh_peers();
                self.start_sync(peer);
            }
            // The RPC's peer list is refreshed once identify has named the agent too.
            NetEvent::PeerIdentified(_) => self.refresh_peers(),
            NetEvent::PeerDisconnected(peer) => {
                debug!(%peer, "peer disconnected");
                self.svc.forget_peer(&peer);
                self.refresh_peers();
            }
            // Logged by the network; its connections are closing.
            NetEvent::PeerBanned { peer, .. } => self.svc.forget_peer(&peer),
            NetEvent::Listening(addr) => info!(%addr, "listening"),
            NetEvent::BootnodeConnected { peer, address } => {
                self.watch.lock().unwrap_or_else(|p| p.into_inner()).on_connected(peer, address);
            }
            NetEvent::BootnodeDialFailed { address, error } => {
                let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
                if !watch.reached() {
                    info!(bootnode = %address, %error, "bootnode not reachable yet; retrying");
                }
                watch.on_dial_failed(&address, error);
            }
        }
    }

    /// Compares heads with a few peers, in turn: every peer is asked within
    /// `⌈peers / RESYNC_PEERS⌉` intervals, and a node with a hundred peers sends a few
    /// requests per interval rather than a hundred (gossip and the unknown-parent sync do the
    /// urgent work; this only repairs what they missed).
    async fn on_resync(&mut self) {
        // Gossipsub scores and identify answers change without an event.
        self.refresh_peers();
        let mut peers: Vec<PeerId> = self.net.peers().await.into_iter().map(|p| p.peer_id).collect();
        if peers.is_empty() {
            return;
        }
        peers.sort();
        let start = self.resync_cursor % peers.len();
        self.resync_cursor = self.resync_cursor.wrapping_add(RESYNC_PEERS);
        for p in peers.iter().cycle().skip(start).take(RESYNC_PEERS.min(peers.len())) {
            self.start_sync(*p);
        }
    }

    fn refresh_peers(&mut self) {
        let net = self.net.clone();
        let peers = self.peers.clone();
        self.tasks.spawn(async move { peers.refresh(&net).await });
    }

    fn start_sync(&mut self, peer: PeerId) {
        {
            let mut set = self.syncing_with.lock().unwrap_or_else(|p| p.into_inner());
            if !set.insert(peer) {
                return;
            }
        }
        let svc = self.svc.clone();
        let net = self.net.clone();
        let set = self.syncing_with.clone();
        let flag = self.syncing.clone();
        let watch = self.watch.clone();
        let fatal = self.fatal.clone();
        let first_sync = self.first_sync.clone();
        let gate = self.snapshot_gate.clone();
        self.tasks.spawn(
            async move {
                flag.store(true, Ordering::Relaxed);
                let result = match sync::snapshot::start_from_snapshot(&svc, &net, peer, gate.as_deref()).await {
                    Ok(()) => sync::sync_with(&svc, &net, peer).await,
                    Err(e) => Err(e),
                };
                if result.is_ok() {
                    // Heads compared (and any download done): the stored head is no longer in doubt.
                    first_sync.lock().unwrap_or_else(|p| p.into_inner()).take();
                }
                let verdict = match &result {
                    Ok(_) => {
                        watch.lock().unwrap_or_else(|p| p.into_inner()).on_same_chain(&peer);
                        None
                    }
                    Err(e) => e.downcast_ref::<sync::WrongChain>().and_then(|w| {
                        watch.lock().unwrap_or_else(|p| p.into_inner()).on_other_chain(&peer, &w.theirs)
                    }),
                };
                if let Err(e) = &result {
                    if let Some(fault) = e.downcast_ref::<sync::PeerFault>() {
                        svc.log_rejection(peer, "sync answer", fault, true);
                        net.penalize(peer, fault.offence).await;
                    } else if e.downcast_ref::<sync::WrongChain>().is_some() {
                        // Banned, but only once the peer has had time to get our own status
                        // answer: it is told it is on another chain rather than cut off.
                        tokio::time::sleep(WRONG_CHAIN_GRACE).await;
                        net.penalize(peer, learnchain_net::Offence::WrongNetwork).await;
                    }
                }
                if let Some(msg) = verdict {
                    set_fatal(&fatal, msg);
                }
                match result {
                    Ok((0, _)) => {}
                    Ok((n, last)) => {
                        info!(%peer, blocks = n, height = svc.head().meta.height, "synced");
                        // Announce only a head this sync brought in; one that came by gossip
                        // has been gossiped already.
                        if last == Some(svc.head().meta.hash) {
                            announce_head(&svc, &net).await;
                        }
                    }
                    Err(e) => debug!(%peer, error = %e, "sync stopped"),
                }
                sync::pull_pending(&svc, &net, peer).await;
                let mut s = set.lock().unwrap_or_else(|p| p.into_inner());
                s.remove(&peer);
                flag.store(!s.is_empty(), Ordering::Relaxed);
            }
            .in_current_span(),
        );
    }
}

/// Runs `f` once `delay` has passed, unless the node stops first.
fn after_delay(delay: Duration, mut stop: watch::Receiver<bool>, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(delay) => f(),
            _ = crate::service::stopped(&mut stop) => {}
        }
    })
}

/// Records the first fatal error; later ones are dropped (the node is stopping).
fn set_fatal(fatal: &watch::Sender<Option<String>>, msg: String) {
    fatal.send_if_modified(|f| {
        if f.is_some() {
            return false;
        }
        *f = Some(msg);
        true
    });
}

/// Gossips the head block after a sync moved it, so peers that follow us (and missed the
/// blocks we just downloaded) learn of the new tip now rather than at their next resync:
/// they see an unknown parent and sync from us.
async fn announce_head(svc: &ChainService, net: &NetworkHandle) {
    let head = svc.head().meta.hash;
    let block = svc.lock().chain.block(&head);
    if let Ok(Some(block)) = block
        && let Err(e) = net.publish(TopicKind::Blocks, learnchain_proto::encode(&block)).await {
            debug!(error = %e, "head announcement not gossiped");
        }
}

/// Runs a node until `shutdown` completes, then stops it cleanly.
pub async fn run(config: NodeConfig, genesis: Genesis, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    // A signal during start-up ends the start (dropping what was opened) and exits cleanly.
    let node = tokio::select! {
        node = Node::start(config, genesis) => node?,
        _ = &mut shutdown => {
            info!("shutdown requested during start-up");
            return Ok(());
        }
    };
    let failure = tokio::select! {
        _ = &mut shutdown => None,
        msg = node.failed() => Some(msg),
    };
    match failure {
        None => {
            info!("shutting down");
            node.shutdown().await;
            Ok(())
        }
        Some(msg) => {
            tracing::error!("{msg}");
            node.shutdown().await;
            anyhow::bail!(msg)
        }
    }
}
