//! [`EventLoop`]: the one task that owns the libp2p swarm.
//!
//! Data enters from four places, one `tokio::select!` arm each: swarm events (from peers),
//! commands (from [`NetworkHandle`](crate::NetworkHandle)s), the bootnode redial timer and
//! the discovery timer (dialling toward the target peer count, ending bans).
//! Data leaves as [`NetEvent`]s on the event channel and as answers on the commands' oneshot
//! replies. The loop stops when every handle is dropped.
//!
//! The event loop never waits on the node: events are sent with `try_send`. If the channel
//! is full (the node is not keeping up) the event is dropped and logged, and a dropped gossip
//! message is reported `Ignore` so gossipsub does not hold it. Waiting instead would stall
//! the swarm and could deadlock a node that awaits a handle call while it is behind on
//! events.
//!
//! Gossip size limits are enforced here per topic: a message larger than its topic's limit,
//! or on a topic that is not ours, is reported `Reject` at once, charged to its sender, and
//! never reaches the node; nor does anything from a peer the peer manager has shut out.
//! Inbound sync requests pass the per-peer budget (`limits`) first. Penalties the node
//! reports are already counted in the shared ledger (`scoring`); the event loop carries out
//! the disconnects and bans they call for.
//! The handlers of swarm events live in the `swarm_events` submodule; this file holds the
//! state, the `select!` loop and the commands.

use std::{collections::HashMap, ops::ControlFlow, time::Instant};

use futures::StreamExt;
use learnchain_proto::{SyncRequest, SyncResponse, topics::TopicKind};
use libp2p::{
    Multiaddr, PeerId, Swarm,
    gossipsub::{MessageAcceptance, MessageId, PublishError},
    request_response::OutboundRequestId,
    swarm::{ConnectionId, DialError, SwarmEvent, dial_opts::{DialOpts, PeerCondition}},
};
use tokio::{
    sync::{mpsc, mpsc::error::TrySendError, oneshot},
    time::MissedTickBehavior,
};
use tracing::{Instrument, debug, info, info_span, trace, warn};

use crate::{
    Direction, GossipId, NetError, NetEvent, Offence, PeerInfo, SyncResponder, Verdict, WireResponse,
    behaviour::{Behaviour, BehaviourEvent, Topics},
    bootnodes::{Bootnodes, dial_opts},
    config::BOOTNODE_REDIAL_INTERVAL,
    discovery::{DISCOVERY_INTERVAL, Discovery, PruneCandidate, prune_order},
    handle::{Command, SharedScores, lock},
    limits::SyncBudget,
    metrics::NetMetrics,
    scoring::Action,
};

mod swarm_events;

/// What we know of a connected peer.
#[derive(Debug)]
struct PeerState {
    /// Remote address of each open connection.
    connections: HashMap<ConnectionId, Multiaddr>,
    /// Who opened the first connection.
    direction: Direction,
    /// Identify agent string.
    agent: Option<String>,
    /// Listen addresses from identify (at most [`MAX_LISTEN_ADDRS`]).
    listen_addrs: Vec<Multiaddr>,
}

/// Most listen addresses of one peer taken from identify.
const MAX_LISTEN_ADDRS: usize = 16;

/// A handle waiting for enough peers on a topic.
#[derive(Debug)]
struct TopicWaiter {
    kind: TopicKind,
    min: usize,
    reply: oneshot::Sender<Vec<PeerId>>,
}

/// What the event loop is built with besides the swarm and its channels.
pub(crate) struct LoopParts {
    pub(crate) topics: Topics,
    pub(crate) bootnodes: Bootnodes,
    pub(crate) discovery: Discovery,
    pub(crate) scores: SharedScores,
    pub(crate) metrics: NetMetrics,
}

/// The swarm task. Create it with [`crate::new`] and spawn [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    topics: Topics,
    bootnodes: Bootnodes,
    peers: HashMap<PeerId, PeerState>,
    pending_dials: HashMap<ConnectionId, oneshot::Sender<Result<(), NetError>>>,
    pending_requests: HashMap<OutboundRequestId, oneshot::Sender<Result<SyncResponse, NetError>>>,
    topic_waiters: Vec<TopicWaiter>,
    discovery: Discovery,
    scores: SharedScores,
    budget: SyncBudget,
    metrics: NetMetrics,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("local_peer_id", self.swarm.local_peer_id())
            .field("peers", &self.peers.len())
            .field("pending_requests", &self.pending_requests.len())
            .finish_non_exhaustive()
    }
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetEvent>,
        parts: LoopParts,
    ) -> Self {
        let LoopParts { topics, bootnodes, discovery, scores, metrics } = parts;
        EventLoop {
            swarm,
            commands,
            events,
            topics,
            bootnodes,
            peers: HashMap::new(),
            pending_dials: HashMap::new(),
            pending_requests: HashMap::new(),
            topic_waiters: Vec::new(),
            discovery,
            scores,
            budget: SyncBudget::default(),
            metrics,
        }
    }

    /// Runs the swarm until every [`NetworkHandle`](crate::NetworkHandle) is dropped.
    /// Bootnodes are dialled at once and redialled every
    /// [`BOOTNODE_REDIAL_INTERVAL`] while not connected.
    pub async fn run(self) {
        let span = info_span!("net", local_peer = %self.swarm.local_peer_id());
        self.run_loop().instrument(span).await;
    }

    async fn run_loop(mut self) {
        let mut redial = tokio::time::interval(BOOTNODE_REDIAL_INTERVAL);
        redial.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut discover = tokio::time::interval(DISCOVERY_INTERVAL);
        discover.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => {
                    if self.on_command(command).is_break() {
                        break;
                    }
                }
                _ = redial.tick() => self.on_redial_tick(),
                _ = discover.tick() => self.on_discovery_tick(),
            }
        }
        info!("every network handle dropped; network event loop stopped");
    }

    // ---- events to the node -------------------------------------------------------------

    /// Hands `event` to the node without waiting. A dropped gossip message is released
    /// (`Ignore`); a dropped sync request's responder closes the peer's stream.
    fn emit(&mut self, event: NetEvent) {
        let (event, full) = match self.events.try_send(event) {
            Ok(()) => return,
            Err(TrySendError::Full(event)) => (event, true),
            Err(TrySendError::Closed(event)) => (event, false),
        };
        if let NetEvent::Gossip { id, .. } = &event {
            let id = id.clone();
            self.report(&id.message_id, &id.source, MessageAcceptance::Ignore);
        }
        if full {
            warn!(
                event = event_name(&event),
                "event channel full, node is not keeping up; event dropped"
            );
        } else {
            debug!(
                event = event_name(&event),
                "event receiver dropped; event discarded"
            );
        }
    }

    /// Tells gossipsub the fate of a held message.
    fn report(&mut self, message_id: &MessageId, source: &PeerId, acceptance: MessageAcceptance) {
        let found = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(message_id, source, acceptance);
        if !found {
            debug!(peer = %source, id = %message_id, "verdict for a message no longer cached");
        }
    }

    /// Charges `peer` with `offence` (from the event loop's own checks) and acts on it.
    fn penalize(&mut self, peer: PeerId, offence: Offence) {
        let action = lock(&self.scores).penalize(peer, offence, Instant::now());
        self.enforce(peer, action, offence);
    }

    /// Carries out what a penalty called for: a disconnect, or a ban (connections closed
    /// and refused, gossipsub told to distrust the peer).
    fn enforce(&mut self, peer: PeerId, action: Action, offence: Offence) {
        let score = lock(&self.scores).standing(&peer, Instant::now()).score;
        let _ = self.swarm.behaviour_mut().gossipsub.set_application_score(&peer, score);
        match action {
            Action::None => {}
            Action::Disconnect => {
                if self.swarm.is_connected(&peer) {
                    info!(%peer, %offence, score, "peer's score fell below the disconnect threshold; disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            }
            Action::Ban => {
                if self.swarm.behaviour_mut().bans.block_peer(peer) {
                    warn!(%peer, %offence, score, ban_s = crate::BAN_DURATION.as_secs(), "peer banned");
                    if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                        kad.remove_peer(&peer);
                    }
                    self.emit(NetEvent::PeerBanned { peer, offence });
                }
            }
        }
    }

    // ---- select! arms ---------------------------------------------------------------------

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.metrics.record(&event);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => {
                self.metrics.record(&event);
                self.on_gossipsub_event(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => {
                self.metrics.record(&event);
                self.on_identify_event(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(event)) => {
                self.metrics.record(&event);
                swarm_events::on_ping_event(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => {
                self.metrics.record(&event);
                self.on_kad_event(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(event)) => self.on_mdns_event(event),
            // Both only deny connections; there is nothing to handle.
            SwarmEvent::Behaviour(BehaviourEvent::Bans(never) | BehaviourEvent::Limits(never)) => match never {},
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                self.on_connection_established(
                    peer_id,
                    connection_id,
                    &endpoint,
                    num_established.get(),
                );
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                self.on_connection_closed(peer_id, connection_id, num_established, cause);
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                self.on_dial_failure(connection_id, peer_id, &error);
            }
            SwarmEvent::NewListenAddr { address, .. } => self.on_new_listen_addr(address),
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                debug!(%address, "listen address expired")
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                warn!(?addresses, ?reason, "listener closed");
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                debug!(remote = %send_back_addr, %error, "incoming connection failed");
            }
            other => trace!(event = ?other, "swarm event"),
        }
    }

    /// Handles one command; `Break` once every handle is dropped.
    fn on_command(&mut self, command: Option<Command>) -> ControlFlow<()> {
        let Some(command) = command else {
            return ControlFlow::Break(());
        };
        match command {
            Command::Publish { kind, data, reply } => {
                let _ = reply.send(self.on_publish(kind, data));
            }
            Command::ReportValidation { id, verdict, penalty } => {
                self.on_report_validation(&id, verdict);
                if let Some((action, offence)) = penalty {
                    self.enforce(id.source, action, offence);
                }
            }
            Command::Enforce { peer, action, offence } => self.enforce(peer, action, offence),
            Command::Request {
                peer,
                request,
                reply,
            } => self.on_request(peer, request, reply),
            Command::Respond {
                responder,
                response,
            } => self.on_respond(responder, response),
            Command::Peers { reply } => {
                let _ = reply.send(self.peer_infos());
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::Dial { addr, reply } => self.on_dial(addr, reply),
            Command::TopicPeers { kind, reply } => {
                let _ = reply.send(self.topic_peers(kind));
            }
            Command::WaitForTopicPeers { kind, min, reply } => {
                self.on_wait_for_topic_peers(TopicWaiter { kind, min, reply });
            }
        }
        ControlFlow::Continue(())
    }

    /// Redials bootnodes that are not connected. The network does not need them once the
    /// node knows other peers (discovery finds those), but a configured bootnode is a peer the
    /// operator chose, and redialling it every few seconds costs a failed TCP connect.
    fn on_redial_tick(&mut self) {
        let due = self.bootnodes.due(|peer| self.swarm.is_connected(peer));
        for (index, addr) in due {
            let opts = dial_opts(&addr);
            let connection = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => {
                    debug!(bootnode = %addr, "dialling bootnode");
                    self.bootnodes.dialing(index, connection);
                }
                Err(DialError::DialPeerConditionFalse(_)) => {}
                Err(error) => debug!(bootnode = %addr, %error, "cannot dial bootnode"),
            }
        }
    }

    /// Ends bans that are over, and dials toward the target peer count.
    fn on_discovery_tick(&mut self) {
        let now = Instant::now();
        let ended = lock(&self.scores).expire_bans(now);
        // Also lifts blocks whose ban the ledger dropped to make room.
        let blocked: Vec<PeerId> = self.swarm.behaviour().bans.blocked_peers().iter().copied().collect();
        let scores = lock(&self.scores);
        let lift: Vec<PeerId> = blocked.into_iter().filter(|p| !scores.is_banned(p, now)).collect();
        drop(scores);
        for peer in lift {
            self.swarm.behaviour_mut().bans.unblock_peer(peer);
            if ended.contains(&peer) {
                info!(%peer, "ban ended");
            }
        }
        self.prune_excess();
        self.dial_more();
        self.count_peers();
    }

    /// Sets the peer gauges from the peer table and the current scores.
    fn count_peers(&mut self) {
        let now = Instant::now();
        let scores = lock(&self.scores);
        let peers: Vec<(Direction, f64)> =
            self.peers.iter().map(|(peer, state)| (state.direction, scores.standing(peer, now).score)).collect();
        drop(scores);
        self.metrics.set_peers(&peers);
    }

    /// Closes connections beyond `max_peers − PRUNE_HEADROOM` (see the `discovery` module).
    fn prune_excess(&mut self) {
        let excess = self.discovery.excess(self.peers.len());
        if excess == 0 {
            return;
        }
        let now = Instant::now();
        let mesh: std::collections::HashSet<PeerId> =
            self.swarm.behaviour().gossipsub.all_mesh_peers().copied().collect();
        let scores = lock(&self.scores);
        let mut candidates: Vec<PruneCandidate> = self
            .peers
            .iter()
            .map(|(peer, state)| PruneCandidate {
                peer: *peer,
                in_mesh: mesh.contains(peer),
                inbound: state.direction == Direction::Inbound,
                score: scores.standing(peer, now).score,
            })
            .collect();
        drop(scores);
        prune_order(&mut candidates);
        for c in candidates.into_iter().take(excess) {
            debug!(peer = %c.peer, in_mesh = c.in_mesh, inbound = c.inbound, "closing an excess connection");
            let _ = self.swarm.disconnect_peer_id(c.peer);
        }
    }

    /// Dials routing-table peers toward the target; starts a random walk when the table
    /// has too few (see the `discovery` module).
    pub(crate) fn dial_more(&mut self) {
        let now = Instant::now();
        let mut wanted = self.discovery.wanted(self.peers.len(), now);
        if wanted == 0 {
            return;
        }
        let local = *self.swarm.local_peer_id();
        let mut candidates = Vec::new();
        let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else { return };
        for bucket in kad.kbuckets() {
            for entry in bucket.iter() {
                candidates.push((*entry.node.key.preimage(), entry.node.value.clone().into_vec()));
            }
        }
        let scores = lock(&self.scores);
        candidates.retain(|(peer, _)| {
            *peer != local
                && !self.peers.contains_key(peer)
                && self.discovery.may_dial(peer, now)
                && !scores.is_unwelcome(peer, now)
        });
        drop(scores);
        for (peer, addrs) in candidates {
            if wanted == 0 {
                break;
            }
            let opts = DialOpts::peer_id(peer)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .addresses(addrs)
                .build();
            match self.swarm.dial(opts) {
                Ok(()) => {
                    debug!(%peer, "dialling a discovered peer");
                    self.discovery.dialed(peer, now);
                    wanted -= 1;
                }
                Err(error) => trace!(%peer, %error, "not dialling a discovered peer"),
            }
        }
        if wanted > 0
            && self.discovery.may_walk(now)
            && !self.peers.is_empty()
            && let Some(kad) = self.swarm.behaviour_mut().kad.as_mut()
        {
            let id = kad.get_closest_peers(PeerId::random());
            debug!(wanted, "random walk for more peers");
            self.discovery.walking(id, now);
        }
    }

    // ---- commands ------------------------------------------------------------------------

    fn on_publish(&mut self, kind: TopicKind, data: Vec<u8>) -> Result<(), NetError> {
        let max = self.topics.max_bytes(kind);
        if data.len() > max {
            return Err(NetError::TooLarge {
                len: data.len(),
                max,
            });
        }
        let topic = self.topics.hash(kind).clone();
        let len = data.len();
        match self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
            Ok(id) => {
                debug!(topic = ?kind, %id, len, "published");
                self.metrics.gossip_out(kind, len);
                Ok(())
            }
            Err(PublishError::NoPeersSubscribedToTopic) => {
                debug!(topic = ?kind, "not published: no peers on the topic");
                Err(NetError::NoPeers)
            }
            Err(PublishError::Duplicate) => Err(NetError::Duplicate),
            Err(PublishError::MessageTooLarge) => Err(NetError::TooLarge { len, max }),
            Err(error) => {
                warn!(topic = ?kind, %error, "publish failed");
                Err(NetError::Publish(error.to_string()))
            }
        }
    }

    fn on_report_validation(&mut self, id: &GossipId, verdict: Verdict) {
        trace!(peer = %id.source, id = %id.message_id, ?verdict, "gossip verdict");
        self.report(&id.message_id, &id.source, verdict.into());
    }

    fn on_request(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, NetError>>,
    ) {
        if peer == *self.swarm.local_peer_id() {
            let _ = reply.send(Err(NetError::Dial(
                "cannot send a request to ourselves".into(),
            )));
            return;
        }
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        trace!(%peer, %id, "sync request sent");
        self.pending_requests.insert(id, reply);
    }

    fn on_respond(&mut self, responder: SyncResponder, response: WireResponse) {
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(responder.0, response)
            .is_err()
        {
            debug!("sync response dropped: the request timed out or its connection closed");
        }
    }

    fn on_dial(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<(), NetError>>) {
        let opts = dial_opts(&addr);
        let connection = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                debug!(%addr, "dialling");
                self.pending_dials.insert(connection, reply);
            }
            Err(DialError::DialPeerConditionFalse(_)) => {
                let _ = reply.send(Ok(()));
            }
            Err(error) => {
                debug!(%addr, %error, "dial failed");
                let _ = reply.send(Err(NetError::Dial(error.to_string())));
            }
        }
    }

    fn on_wait_for_topic_peers(&mut self, waiter: TopicWaiter) {
        let peers = self.topic_peers(waiter.kind);
        if peers.len() >= waiter.min {
            let _ = waiter.reply.send(peers);
        } else {
            self.topic_waiters.retain(|w| !w.reply.is_closed());
            self.topic_waiters.push(waiter);
        }
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        let now = Instant::now();
        let scores = lock(&self.scores);
        let gossipsub = &self.swarm.behaviour().gossipsub;
        let mut infos: Vec<PeerInfo> = self
            .peers
            .iter()
            .map(|(peer, state)| PeerInfo {
                peer_id: *peer,
                addresses: state.connections.values().cloned().collect(),
                listen_addrs: state.listen_addrs.clone(),
                agent: state.agent.clone(),
                direction: state.direction,
                standing: scores.standing(peer, now),
                gossip_score: gossipsub.peer_score(peer).unwrap_or(0.0),
            })
            .collect();
        infos.sort_by_key(|info| info.peer_id);
        infos
    }

    fn topic_peers(&self, kind: TopicKind) -> Vec<PeerId> {
        let topic = self.topics.hash(kind);
        self.swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&topic))
            .map(|(peer, _)| *peer)
            .collect()
    }
}

/// A short name of `event` for logs (without its payload).
fn event_name(event: &NetEvent) -> &'static str {
    match event {
        NetEvent::Gossip { .. } => "gossip",
        NetEvent::SyncRequest { .. } => "sync_request",
        NetEvent::PeerConnected(_) => "peer_connected",
        NetEvent::PeerIdentified(_) => "peer_identified",
        NetEvent::PeerDisconnected(_) => "peer_disconnected",
        NetEvent::PeerBanned { .. } => "peer_banned",
        NetEvent::Listening(_) => "listening",
        NetEvent::BootnodeConnected { .. } => "bootnode_connected",
        NetEvent::BootnodeDialFailed { .. } => "bootnode_dial_failed",
    }
}
