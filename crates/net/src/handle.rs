//! [`NetworkHandle`]: the node's cloneable way to ask the network for something.
//!
//! Every method but [`NetworkHandle::traffic`] (which reads shared counters) turns into one [`Command`] sent over a bounded channel to the event loop;
//! commands that have an answer carry a `oneshot` sender the event loop completes. If the
//! event loop is gone, methods return [`NetError::Closed`] (or nothing, for fire-and-forget
//! commands). When the last handle is dropped the command channel closes and the event loop
//! stops.

use learnchain_proto::{SyncRequest, SyncResponse, topics::TopicKind};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use crate::scoring::{Action, BanInfo, Offence, Scoreboard};
use crate::traffic::{Traffic, TrafficCounters};
use crate::{GossipId, NetError, PeerInfo, SyncResponder, Verdict, WireResponse};

/// The peer manager's ledger, shared by the handles and the event loop.
pub(crate) type SharedScores = Arc<Mutex<Scoreboard>>;

/// Locks the ledger (a panic elsewhere while it was held leaves it usable: every update
/// is a whole entry).
pub(crate) fn lock(scores: &SharedScores) -> MutexGuard<'_, Scoreboard> {
    scores.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a handle asks of the event loop.
#[derive(Debug)]
pub(crate) enum Command {
    /// Publish `data` on the topic `kind`.
    Publish {
        kind: TopicKind,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    /// Report the node's verdict on a received gossip message and, for a rejection, what the
    /// penalty already counted calls for and the offence charged.
    ReportValidation { id: GossipId, verdict: Verdict, penalty: Option<(Action, Offence)> },
    /// Act on a penalty already counted: update gossipsub's view of the score, and
    /// disconnect or ban the peer when the action says so.
    Enforce { peer: PeerId, action: Action, offence: Offence },
    /// Send a sync request and wait for the answer.
    Request {
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, NetError>>,
    },
    /// Answer an inbound sync request.
    Respond {
        responder: SyncResponder,
        response: WireResponse,
    },
    /// List connected peers.
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    /// List our listen addresses.
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    /// Connect to an address.
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    /// Peers subscribed to a topic.
    TopicPeers {
        kind: TopicKind,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    /// Resolve once at least `min` peers are subscribed to a topic.
    WaitForTopicPeers {
        kind: TopicKind,
        min: usize,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
}

/// A cloneable handle to the network's event loop.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    request_timeout: Duration,
    traffic: TrafficCounters,
    scores: SharedScores,
}

impl NetworkHandle {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        local_peer_id: PeerId,
        request_timeout: Duration,
        traffic: TrafficCounters,
        scores: SharedScores,
    ) -> Self {
        NetworkHandle {
            commands,
            local_peer_id,
            request_timeout,
            traffic,
            scores,
        }
    }

    /// Sends `command`; false if the event loop is gone.
    async fn send(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }

    /// Sends a command built around a fresh oneshot and waits for its answer.
    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (reply, answer) = oneshot::channel();
        if !self.send(command(reply)).await {
            return Err(NetError::Closed);
        }
        answer.await.map_err(|_| NetError::Closed)
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Bytes received and sent on every connection of this node since the network was
    /// built, counted on the raw TCP streams: all protocols (gossip with its duplicates and
    /// control messages, sync, identify, ping) and the Noise, Yamux and multistream-select
    /// overhead, but not TCP/IP headers. Cheap (two atomic loads), and still readable after
    /// the event loop has stopped.
    pub fn traffic(&self) -> Traffic {
        self.traffic.snapshot()
    }

    /// Publishes `data` on the topic `kind`. [`NetError::NoPeers`] when no connected peer is
    /// subscribed to it (benign); [`NetError::TooLarge`] over the topic's limit.
    pub async fn publish(&self, kind: TopicKind, data: Vec<u8>) -> Result<(), NetError> {
        self.ask(|reply| Command::Publish { kind, data, reply })
            .await?
    }

    /// Reports the node's verdict on the gossip message `id`: `Accept` forwards it to our
    /// mesh, `Ignore` drops it, `Reject` drops it and charges the sender with
    /// [`GossipId::offence`] (counted before this returns; see [`NetworkHandle::penalize`]).
    pub async fn report_validation(&self, id: GossipId, verdict: Verdict) {
        match verdict {
            Verdict::Reject => {
                let offence = id.offence();
                self.report_rejection(id, offence).await;
            }
            Verdict::Accept | Verdict::Ignore => {
                self.send(Command::ReportValidation { id, verdict, penalty: None }).await;
            }
        }
    }

    /// Rejects the gossip message `id` as [`Verdict::Reject`] does, charging the sender with
    /// `offence` instead of the topic's default (e.g. [`Offence::NotServed`] for a compact
    /// block whose items its sender then did not serve).
    pub async fn report_rejection(&self, id: GossipId, offence: Offence) {
        let action = lock(&self.scores).penalize(id.source, offence, Instant::now());
        self.send(Command::ReportValidation { id, verdict: Verdict::Reject, penalty: Some((action, offence)) }).await;
    }

    /// Charges `peer` with `offence`: its score drops by [`Offence::penalty`] at once, and
    /// when it reaches the disconnect or ban threshold the event loop acts on it. For what
    /// is not a gossip verdict (a sync answer that lies, an announced item not served).
    pub async fn penalize(&self, peer: PeerId, offence: Offence) {
        let action = lock(&self.scores).penalize(peer, offence, Instant::now());
        self.send(Command::Enforce { peer, action, offence }).await;
    }

    /// Whether what `peer` sends should be dropped unread: it is banned, or shut out for its
    /// score and not yet readmitted (messages it sent before it was disconnected may still be
    /// queued).
    pub fn is_unwelcome(&self, peer: &PeerId) -> bool {
        lock(&self.scores).is_unwelcome(peer, Instant::now())
    }

    /// `peer`'s score and offences now.
    pub fn standing(&self, peer: &PeerId) -> crate::Standing {
        lock(&self.scores).standing(peer, Instant::now())
    }

    /// The bans in force, longest remaining first. Readable after the event loop stopped.
    pub fn bans(&self) -> Vec<BanInfo> {
        lock(&self.scores).bans(Instant::now())
    }

    /// Sends `request` to `peer` (dialling it if needed and possible) and waits for the
    /// answer, at most the configured `request_timeout`. Errors rather than hangs: timeout,
    /// dial failure, closed connection, or a response that is too large or malformed.
    pub async fn request(
        &self,
        peer: PeerId,
        request: SyncRequest,
    ) -> Result<SyncResponse, NetError> {
        let (reply, answer) = oneshot::channel();
        if !self
            .send(Command::Request {
                peer,
                request,
                reply,
            })
            .await
        {
            return Err(NetError::Closed);
        }
        match tokio::time::timeout(self.request_timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(NetError::Closed),
            Err(_) => Err(NetError::Timeout),
        }
    }

    /// Answers an inbound sync request. If the peer is gone or the request timed out, the
    /// response is dropped (and logged).
    pub async fn respond(&self, responder: SyncResponder, response: impl Into<WireResponse>) {
        self.send(Command::Respond {
            responder,
            response: response.into(),
        })
        .await;
    }

    /// The connected peers. Empty if the event loop is gone.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        self.ask(|reply| Command::Peers { reply })
            .await
            .unwrap_or_default()
    }

    /// The addresses this node listens on. Empty if the event loop is gone.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.ask(|reply| Command::ListenAddrs { reply })
            .await
            .unwrap_or_default()
    }

    /// Connects to `addr` (with or without a `/p2p/<id>` suffix) and returns once the
    /// connection is established or has failed. `Ok` at once if the peer named by the
    /// suffix is already connected or being dialled.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.ask(|reply| Command::Dial { addr, reply }).await?
    }

    /// The connected peers subscribed to the topic `kind`: those a publish would reach.
    pub async fn topic_peers(&self, kind: TopicKind) -> Vec<PeerId> {
        self.ask(|reply| Command::TopicPeers { kind, reply })
            .await
            .unwrap_or_default()
    }

    /// Waits until at least `min` connected peers are subscribed to the topic `kind` and
    /// returns them (at once if there already are). Does not time out by itself; wrap it in
    /// a timeout where that matters.
    pub async fn wait_for_topic_peers(
        &self,
        kind: TopicKind,
        min: usize,
    ) -> Result<Vec<PeerId>, NetError> {
        self.ask(|reply| Command::WaitForTopicPeers { kind, min, reply })
            .await
    }
}
