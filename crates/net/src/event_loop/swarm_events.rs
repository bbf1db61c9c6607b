//! The event loop's handlers for what the swarm reports: gossip, sync, identify and ping
//! events, and connections opening, closing and failing.
//!
//! Each handler updates the event loop's bookkeeping (peers, pending dials and requests,
//! bootnode state) and turns what the node must hear into [`NetEvent`]s; gossip over its
//! topic's limit is rejected here and never surfaces.

use learnchain_proto::{SyncRequest, SyncResponse};
use libp2p::{
    Multiaddr, PeerId,
    core::ConnectedPoint,
    gossipsub::{self, MessageAcceptance},
    identify, ping,
    request_response::{self, OutboundFailure},
    swarm::{ConnectionError, ConnectionId, DialError},
};
use tracing::{debug, info, trace, warn};

use super::EventLoop;
use crate::{GossipId, NetError, NetEvent, SyncResponder, config::IDENTIFY_PROTOCOL_VERSION};

impl EventLoop {
    pub(super) fn on_gossipsub_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                self.on_gossip_message(
                    GossipId {
                        message_id,
                        source: propagation_source,
                    },
                    message,
                );
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

    fn on_gossip_message(&mut self, id: GossipId, message: gossipsub::Message) {
        let Some(kind) = self.topics.kind(&message.topic) else {
            debug!(peer = %id.source, topic = %message.topic, "gossip on a foreign topic rejected");
            self.report(&id, MessageAcceptance::Reject);
            return;
        };
        let max = self.topics.max_bytes(kind);
        if message.data.len() > max {
            debug!(peer = %id.source, topic = ?kind, len = message.data.len(), max, "oversized gossip rejected");
            self.report(&id, MessageAcceptance::Reject);
            return;
        }
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
        event: request_response::Event<SyncRequest, SyncResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
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
                        let _ = reply.send(Ok(response));
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
            request_response::Event::InboundFailure { peer, error, .. } => match error {
                // Our own response was over the limit: a bug in the caller, not the peer.
                request_response::InboundFailure::Io(e)
                    if e.kind() == std::io::ErrorKind::InvalidInput =>
                {
                    warn!(%peer, error = %e, "sync response not sent");
                }
                error => debug!(%peer, %error, "inbound sync request failed"),
            },
            request_response::Event::ResponseSent {
                peer, request_id, ..
            } => {
                trace!(%peer, %request_id, "sync response sent");
            }
        }
    }

    pub(super) fn on_identify_event(&mut self, event: identify::Event) {
        match event {
            identify::Event::Received { peer_id, info, .. } => {
                if info.protocol_version != IDENTIFY_PROTOCOL_VERSION {
                    warn!(peer = %peer_id, version = %info.protocol_version, "peer speaks another protocol; disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                debug!(peer = %peer_id, agent = %info.agent_version, "peer identified");
                if let Some(state) = self.peers.get_mut(&peer_id) {
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
        self.peers
            .entry(peer)
            .or_default()
            .connections
            .insert(connection, remote.clone());
        if num_established == 1 {
            info!(%peer, address = %remote, "peer connected");
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
            match cause {
                Some(cause) => info!(%peer, %cause, "peer disconnected"),
                None => info!(%peer, "peer disconnected"),
            }
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
        if let Some(reply) = self.pending_dials.remove(&connection) {
            let _ = reply.send(Err(NetError::Dial(error.to_string())));
        } else if let Some(peer) = peer {
            debug!(%peer, %error, "dial failed");
        }
    }

    pub(super) fn on_new_listen_addr(&mut self, address: Multiaddr) {
        info!(%address, "listening");
        self.emit(NetEvent::Listening(address));
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
