//! The event loop's handlers for what the swarm reports: gossip, sync, identify and ping
//! events, and connections opening, closing and failing.
//!
//! Each handler updates the event loop's bookkeeping (peers, pending dials and requests,
//! bootnode state, the routing table, sync budgets) and turns what the node must hear into
//! [`NetEvent`]s; gossip over its topic's limit, gossip from a peer that is shut out, and sync
//! requests over a peer's budget are dealt with here and never surface.

use std::time::Instant;

use learnchain_proto::{SyncRequest, SyncResponse};
use libp2p::{
    Multiaddr, PeerId,
    core::ConnectedPoint,
    gossipsub::{self, MessageAcceptance},
    identify, kad, mdns, ping,
    request_response::{self, InboundFailure, OutboundFailure},
    swarm::{ConnectionError, ConnectionId, DialError},
};
use tracing::{debug, info, trace, warn};

use super::{EventLoop, MAX_LISTEN_ADDRS, PeerState};
use crate::{
    Direction, GossipId, NetError, NetEvent, Offence, SyncResponder, WireResponse, config::IDENTIFY_PROTOCOL_VERSION,
    discovery::dialable, handle::lock, limits::Admission,
};

impl EventLoop {
    pub(super) fn on_gossipsub_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                self.on_gossip_message(message_id, propagation_source, message);
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                self.on_peer_subscribed(peer_id, &topic)
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                debug!(peer = %peer_id, %topic, "peer unsubscribed");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                debug!(peer = %peer_id, "peer does not speak gossipsub");
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                debug!(peer = %peer_id, ?failed_messages, "slow gossip peer");
            }
        }
    }

    fn on_gossip_message(&mut self, message_id: gossipsub::MessageId, source: PeerId, message: gossipsub::Message) {
        let Some(kind) = self.topics.kind(&message.topic) else {
            debug!(peer = %source, topic = %message.topic, "gossip on a foreign topic rejected");
            self.report(&message_id, &source, MessageAcceptance::Reject);
            self.penalize(source, Offence::OversizedGossip);
            return;
        };
        let max = self.topics.max_bytes(kind);
        if message.data.len() > max {
            debug!(peer = %source, topic = ?kind, len = message.data.len(), max, "oversized gossip rejected");
            self.report(&message_id, &source, MessageAcceptance::Reject);
            self.penalize(source, Offence::OversizedGossip);
            return;
        }
        if lock(&self.scores).is_unwelcome(&source, Instant::now()) {
            trace!(peer = %source, "gossip from a shut-out peer dropped");
            self.report(&message_id, &source, MessageAcceptance::Ignore);
            return;
        }
        self.metrics.gossip_in(kind, message.data.len());
        let id = GossipId { message_id, source, kind };
        trace!(peer = %id.source, topic = ?kind, id = %id.message_id, len = message.data.len(), "gossip received");
        let source = id.source;
        self.emit(NetEvent::Gossip {
            kind,
            id,
            source,
            data: message.data,
        });
    }

    fn on_peer_subscribed(&mut self, peer: PeerId, topic: &gossipsub::TopicHash) {
        let Some(kind) = self.topics.kind(topic) else {
            trace!(%peer, %topic, "peer subscribed to a foreign topic");
            return;
        };
        debug!(%peer, topic = ?kind, "peer subscribed");
        let peers = self.topic_peers(kind);
        let (ready, waiting) = std::mem::take(&mut self.topic_waiters)
            .into_iter()
            .partition::<Vec<_>, _>(|w| w.kind == kind && peers.len() >= w.min);
        self.topic_waiters = waiting;
        for waiter in ready {
            let _ = waiter.reply.send(peers.clone());
        }
    }

    pub(super) fn on_sync_event(
        &mut self,
        event: request_response::Event<SyncRequest, WireResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request_id, request, channel,
                } => {
                    let admission = self.budget.admit(peer, request_id, Instant::now());
                    if let Some(refusal) = admission.refusal() {
                        debug!(%peer, ?admission, "sync request refused");
                        let _ = self.swarm.behaviour_mut().sync.send_response(channel, SyncResponse::Refused(refusal).into());
                        if admission == Admission::OverRate {
                            self.penalize(peer, Offence::RateLimited);
                        }
                        return;
                    }
                    debug!(%peer, ?request, "sync request received");
                    let responder = SyncResponder(channel);
                    self.emit(NetEvent::SyncRequest {
                        peer,
                        request,
                        responder,
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    trace!(%peer, %request_id, "sync response received");
                    if let Some(reply) = self.pending_requests.remove(&request_id) {
                        let _ = reply.send(Ok(response.into_value()));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(%peer, %request_id, %error, "sync request failed");
                if let Some(reply) = self.pending_requests.remove(&request_id) {
                    let _ = reply.send(Err(outbound_error(error)));
                }
            }
            request_response::Event::InboundFailure { peer, error, request_id, .. } => {
                self.budget.done(&peer, &request_id);
                match error {
                    // Our own response was over the limit: a bug in the caller, not the peer.
                    InboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                        warn!(%peer, error = %e, "sync response not sent");
                    }
                    // The request did not decode or broke a request limit.
                    InboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        debug!(%peer, error = %e, "malformed sync request");
                        self.penalize(peer, Offence::MalformedRequest);
                    }
                    error => debug!(%peer, %error, "inbound sync request failed"),
                }
            }
            request_response::Event::ResponseSent {
                peer, request_id, ..
            } => {
                self.budget.done(&peer, &request_id);
                trace!(%peer, %request_id, "sync response sent");
            }
        }
    }

    pub(super) fn on_identify_event(&mut self, event: identify::Event) {
        match event {
            identify::Event::Received { peer_id, info, .. } => {
                if info.protocol_version != IDENTIFY_PROTOCOL_VERSION {
                    warn!(peer = %peer_id, version = %info.protocol_version, "peer speaks another protocol; banning it");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    self.penalize(peer_id, Offence::WrongNetwork);
                    return;
                }
                debug!(peer = %peer_id, agent = %info.agent_version, "peer identified");
                // A peer reached over a real network also lists its loopback address, which
                // from here is our own host: kept only for peers that are on loopback too.
                let on_loopback =
                    self.peers.get(&peer_id).is_some_and(|st| st.connections.values().any(is_loopback));
                let listen: Vec<Multiaddr> = info
                    .listen_addrs
                    .iter()
                    .filter(|a| dialable(a) && (on_loopback || !is_loopback(a)))
                    .take(MAX_LISTEN_ADDRS)
                    .cloned()
                    .collect();
                if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut()
                    && kad.protocol_names().iter().any(|p| info.protocols.contains(p))
                {
                    for addr in &listen {
                        kad.add_address(&peer_id, addr.clone());
                    }
                }
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.listen_addrs = listen;
                    // Identify answers again on every push; report the first answer and a
                    // changed agent only.
                    if state.agent.as_deref() != Some(info.agent_version.as_str()) {
                        state.agent = Some(info.agent_version);
                        self.emit(NetEvent::PeerIdentified(peer_id));
                    }
                }
            }
            identify::Event::Error { peer_id, error, .. } => {
                debug!(peer = %peer_id, %error, "identify failed");
            }
            identify::Event::Sent { .. } | identify::Event::Pushed { .. } => {}
        }
    }

    pub(super) fn on_connection_established(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        endpoint: &ConnectedPoint,
        num_established: u32,
    ) {
        let remote = endpoint.get_remote_address().clone();
        if let Some(bootnode) = self.bootnodes.on_established(connection, peer) {
            info!(%peer, %bootnode, "connected to bootnode");
            let address = bootnode.clone();
            self.emit(NetEvent::BootnodeConnected { peer, address });
        }
        if let Some(reply) = self.pending_dials.remove(&connection) {
            let _ = reply.send(Ok(()));
        }
        self.discovery.connected(&peer);
        let direction = if endpoint.is_dialer() { Direction::Outbound } else { Direction::Inbound };
        self.peers
            .entry(peer)
            .or_insert_with(|| PeerState {
                connections: Default::default(),
                direction,
                agent: None,
                listen_addrs: Vec::new(),
            })
            .connections
            .insert(connection, remote.clone());
        let returning = {
            let mut scores = lock(&self.scores);
            let now = Instant::now();
            if scores.is_unwelcome(&peer, now) { Some(scores.ban_returning(peer, now)) } else { None }
        };
        match returning {
            Some(Some(offence)) => {
                info!(%peer, "a peer shut out for its score reconnected; banning it");
                self.enforce(peer, crate::scoring::Action::Ban, offence);
            }
            Some(None) => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            None => {}
        }
        if num_established == 1 {
            info!(%peer, address = %remote, "peer connected");
            self.count_peers();
            self.emit(NetEvent::PeerConnected(peer));
        }
    }

    pub(super) fn on_connection_closed(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        num_established: u32,
        cause: Option<ConnectionError>,
    ) {
        if let Some(state) = self.peers.get_mut(&peer) {
            state.connections.remove(&connection);
        }
        if num_established == 0 {
            self.peers.remove(&peer);
            self.budget.disconnected(&peer);
            match cause {
                Some(cause) => info!(%peer, %cause, "peer disconnected"),
                None => info!(%peer, "peer disconnected"),
            }
            self.count_peers();
            self.emit(NetEvent::PeerDisconnected(peer));
        }
    }

    pub(super) fn on_dial_failure(
        &mut self,
        connection: ConnectionId,
        peer: Option<PeerId>,
        error: &DialError,
    ) {
        let was_self = matches!(error, DialError::LocalPeerId { .. });
        if let Some(bootnode) = self.bootnodes.on_dial_failed(connection, was_self) {
            if was_self {
                debug!(%bootnode, "bootnode is this node; not dialling it again");
            } else {
                debug!(%bootnode, %error, "bootnode dial failed; will retry");
                let address = bootnode.clone();
                self.emit(NetEvent::BootnodeDialFailed { address, error: dial_error_cause(error) });
            }
        }
        if let Some(peer) = peer {
            self.discovery.dial_failed(peer, Instant::now());
        }
        if let Some(reply) = self.pending_dials.remove(&connection) {
            let _ = reply.send(Err(NetError::Dial(error.to_string())));
        } else if let Some(peer) = peer {
            debug!(%peer, %error, "dial failed");
        }
    }

    pub(super) fn on_kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::RoutingUpdated { peer, is_new_peer, .. } => {
                trace!(%peer, is_new_peer, "routing table updated");
                if is_new_peer {
                    self.dial_more();
                }
            }
            kad::Event::OutboundQueryProgressed { id, result, step, .. } => {
                if let kad::QueryResult::GetClosestPeers(result) = result {
                    let peers = match result {
                        Ok(ok) => ok.peers,
                        Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                    };
                    debug!(found = peers.len(), "random walk step");
                    if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                        for found in peers {
                            for addr in found.addrs.into_iter().filter(dialable) {
                                kad.add_address(&found.peer_id, addr);
                            }
                        }
                    }
                }
                if step.last {
                    self.discovery.query_done(id);
                    self.dial_more();
                }
            }
            kad::Event::UnroutablePeer { peer } => trace!(%peer, "peer without a known listen address"),
            other => trace!(event = ?other, "kademlia event"),
        }
    }

    pub(super) fn on_mdns_event(&mut self, event: mdns::Event) {
        match event {
            mdns::Event::Discovered(found) => {
                if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                    for (peer, addr) in found {
                        if dialable(&addr) {
                            debug!(%peer, %addr, "found on the local network");
                            kad.add_address(&peer, addr);
                        }
                    }
                }
                self.dial_more();
            }
            mdns::Event::Expired(gone) => {
                if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                    for (peer, addr) in gone {
                        kad.remove_address(&peer, &addr);
                    }
                }
            }
        }
    }

    pub(super) fn on_new_listen_addr(&mut self, address: Multiaddr) {
        info!(%address, "listening");
        self.emit(NetEvent::Listening(address));
    }
}

/// Whether `addr` is on a loopback IP.
fn is_loopback(addr: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => ip.is_loopback(),
        Some(Protocol::Ip6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

pub(super) fn on_ping_event(event: ping::Event) {
    match event.result {
        Ok(rtt) => trace!(peer = %event.peer, ?rtt, "ping"),
        Err(error) => debug!(peer = %event.peer, %error, "ping failed"),
    }
}

/// Maps a request-response failure to the error the requester sees.
fn outbound_error(error: OutboundFailure) -> NetError {
    match error {
        OutboundFailure::DialFailure => NetError::Dial("could not connect to the peer".into()),
        OutboundFailure::Timeout => NetError::Timeout,
        OutboundFailure::ConnectionClosed => NetError::ConnectionClosed,
        OutboundFailure::UnsupportedProtocols => NetError::UnsupportedProtocol,
        OutboundFailure::Io(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            NetError::NoResponse
        }
        OutboundFailure::Io(error) => NetError::Codec(error.to_string()),
    }
}

/// The root cause of a dial failure in one line: for a transport failure the innermost
/// error of each attempt (libp2p nests the same message several levels deep), deduplicated.
fn dial_error_cause(error: &DialError) -> String {
    fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
        let mut cur = e;
        while let Some(next) = cur.source() {
            cur = next;
        }
        cur.to_string()
    }
    let mut causes: Vec<String> = Vec::new();
    match error {
        DialError::Transport(attempts) => {
            for (_, e) in attempts {
                let cause = innermost(e);
                let cause = cause.split_whitespace().collect::<Vec<_>>().join(" ");
                if !causes.contains(&cause) {
                    causes.push(cause);
                }
            }
        }
        other => causes.push(other.to_string().split_whitespace().collect::<Vec<_>>().join(" ")),
    }
    causes.join("; ")
}
