//! Multi-node tests of the network crate over real TCP on 127.0.0.1.
//!
//! Every test is driven by events: it waits for the `NetEvent` or handle answer it needs
//! next. The timeout around each wait is only a safety net against hangs.

use std::{future::Future, time::Duration};

use learnchain_net::{
    Multiaddr, NetConfig, NetError, NetEvent, NetworkHandle, PeerId, SyncResponder, TopicKind,
    Verdict,
};
use learnchain_proto::{Hash32, StatusMessage, SyncRequest, SyncResponse};
use libp2p::{identity::Keypair, multiaddr::Protocol};
use tokio::{sync::mpsc::Receiver, task::JoinHandle};

const SAFETY: Duration = Duration::from_secs(30);
const CHAIN: Hash32 = Hash32([7; 32]);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(SAFETY, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

fn config() -> NetConfig {
    let mut config = NetConfig::local(CHAIN, vec![loopback(0)]);
    config.request_timeout = Duration::from_secs(2);
    config
}

fn loopback(port: u16) -> Multiaddr {
    Multiaddr::empty()
        .with(Protocol::Ip4([127, 0, 0, 1].into()))
        .with(Protocol::Tcp(port))
}

struct Node {
    handle: NetworkHandle,
    events: Receiver<NetEvent>,
    /// The first listen address, without `/p2p` suffix.
    addr: Multiaddr,
    task: JoinHandle<()>,
}

impl Node {
    async fn start(config: NetConfig) -> Node {
        let (handle, mut events, event_loop) = learnchain_net::new(config).expect("network starts");
        let task = tokio::spawn(event_loop.run());
        let addr = within("listen address", async {
            loop {
                match events.recv().await {
                    Some(NetEvent::Listening(addr)) => return addr,
                    Some(_) => {}
                    None => panic!("event stream closed"),
                }
            }
        })
        .await;
        Node {
            handle,
            events,
            addr,
            task,
        }
    }

    fn id(&self) -> PeerId {
        self.handle.local_peer_id()
    }

    /// The listen address with the `/p2p/<id>` suffix.
    fn p2p_addr(&self) -> Multiaddr {
        self.addr.clone().with(Protocol::P2p(self.id()))
    }

    /// The first event `pick` maps to `Some`, skipping others.
    async fn next<T>(&mut self, what: &str, mut pick: impl FnMut(NetEvent) -> Option<T>) -> T {
        let events = &mut self.events;
        within(what, async {
            loop {
                let event = events.recv().await.expect("event stream open");
                if let Some(found) = pick(event) {
                    return found;
                }
            }
        })
        .await
    }

    async fn connected_to(&mut self, peer: PeerId) {
        self.next("peer connected", |e| match e {
            NetEvent::PeerConnected(p) if p == peer => Some(()),
            _ => None,
        })
        .await
    }

    /// The next gossip message (kind, id, source, data).
    async fn gossip(&mut self) -> (TopicKind, learnchain_net::GossipId, PeerId, Vec<u8>) {
        self.next("gossip", |e| match e {
            NetEvent::Gossip {
                kind,
                id,
                source,
                data,
            } => Some((kind, id, source, data)),
            _ => None,
        })
        .await
    }

    async fn sync_request(&mut self) -> (PeerId, SyncRequest, SyncResponder) {
        self.next("sync request", |e| match e {
            NetEvent::SyncRequest {
                peer,
                request,
                responder,
            } => Some((peer, request, responder)),
            _ => None,
        })
        .await
    }

    /// Waits until each of `peers` is subscribed to `kind` as seen from this node.
    async fn sees_subscribed(&self, kind: TopicKind, peers: &[PeerId]) {
        within("topic subscriptions", async {
            let mut min = 1;
            loop {
                let on_topic = self
                    .handle
                    .wait_for_topic_peers(kind, min)
                    .await
                    .expect("running");
                if peers.iter().all(|p| on_topic.contains(p)) {
                    return;
                }
                min = on_topic.len() + 1;
            }
        })
        .await
    }
}

/// Two nodes, `b` bootstrapping from `a`, both having seen the connection.
async fn pair(config_a: NetConfig, mut config_b: NetConfig) -> (Node, Node) {
    let mut a = Node::start(config_a).await;
    config_b.bootnodes = vec![a.p2p_addr()];
    let mut b = Node::start(config_b).await;
    b.connected_to(a.id()).await;
    a.connected_to(b.id()).await;
    (a, b)
}

#[tokio::test]
async fn accepted_gossip_is_delivered_and_forwarded_rejected_gossip_is_not() {
    // a — b — c in a line; c bootstraps from b's address without a /p2p suffix.
    let mut a = Node::start(config()).await;
    let mut config_b = config();
    config_b.bootnodes = vec![a.p2p_addr()];
    let mut b = Node::start(config_b).await;
    let mut config_c = config();
    config_c.bootnodes = vec![b.addr.clone()];
    let mut c = Node::start(config_c).await;
    a.connected_to(b.id()).await;
    c.connected_to(b.id()).await;
    a.sees_subscribed(TopicKind::Blocks, &[b.id()]).await;
    b.sees_subscribed(TopicKind::Blocks, &[a.id(), c.id()])
        .await;

    a.handle
        .publish(TopicKind::Blocks, b"rejected block".to_vec())
        .await
        .expect("published");
    let (kind, id, source, data) = b.gossip().await;
    assert_eq!(
        (kind, source, data.as_slice()),
        (TopicKind::Blocks, a.id(), &b"rejected block"[..])
    );
    assert_eq!(id.source(), a.id());
    assert_eq!(
        id.message_id(),
        learnchain_proto::hash::sha256(&data).as_bytes(),
        "content id"
    );
    b.handle.report_validation(id, Verdict::Reject).await;

    a.handle
        .publish(TopicKind::Blocks, b"good block".to_vec())
        .await
        .expect("published");
    let (_, id, _, data) = b.gossip().await;
    assert_eq!(data, b"good block");
    b.handle.report_validation(id, Verdict::Accept).await;

    // c hears only what b accepted, from b.
    let (kind, id, source, data) = c.gossip().await;
    assert_eq!(
        (kind, source, data.as_slice()),
        (TopicKind::Blocks, b.id(), &b"good block"[..])
    );
    c.handle.report_validation(id, Verdict::Accept).await;

    // The same content again is a duplicate, not a new message.
    assert_eq!(
        a.handle
            .publish(TopicKind::Blocks, b"good block".to_vec())
            .await,
        Err(NetError::Duplicate)
    );
    // Submissions travel on their own topic.
    a.sees_subscribed(TopicKind::Submissions, &[b.id()]).await;
    a.handle
        .publish(TopicKind::Submissions, b"update".to_vec())
        .await
        .expect("published");
    let (kind, _, _, data) = b.gossip().await;
    assert_eq!(
        (kind, data.as_slice()),
        (TopicKind::Submissions, &b"update"[..])
    );
}

#[tokio::test]
async fn oversized_gossip_is_rejected_and_never_surfaced() {
    let mut big = config();
    big.max_block_bytes = 4096;
    let mut small = config();
    small.max_block_bytes = 1000;
    let (a, mut b) = pair(big, small).await;
    a.sees_subscribed(TopicKind::Blocks, &[b.id()]).await;

    // Locally, the limit is refused before anything is sent.
    assert_eq!(
        b.handle.publish(TopicKind::Blocks, vec![0; 1001]).await,
        Err(NetError::TooLarge {
            len: 1001,
            max: 1000
        })
    );
    // a allows 4096 bytes, b only 1000: b must drop the first message and surface the second.
    a.handle
        .publish(TopicKind::Blocks, vec![1; 1001])
        .await
        .expect("within a's limit");
    a.handle
        .publish(TopicKind::Blocks, b"small".to_vec())
        .await
        .expect("published");
    let (_, _, _, data) = b.gossip().await;
    assert_eq!(data, b"small", "the oversized message was not delivered");
}

#[tokio::test]
async fn sync_request_response_round_trip() {
    let (mut a, b) = pair(config(), config()).await;
    let status = StatusMessage {
        chain_id: CHAIN,
        head: Hash32([1; 32]),
        height: 42,
        total_work: Hash32([2; 32]),
    };

    let client = b.handle.clone();
    let a_id = a.id();
    let pending = tokio::spawn(async move { client.request(a_id, SyncRequest::Status).await });
    let (peer, request, responder) = a.sync_request().await;
    assert_eq!((peer, request), (b.id(), SyncRequest::Status));
    a.handle
        .respond(responder, SyncResponse::Status(status.clone()))
        .await;
    let response = within("status response", pending).await.expect("task");
    assert_eq!(response, Ok(SyncResponse::Status(status)));

    let client = b.handle.clone();
    let range = SyncRequest::BlocksByRange {
        start: 1,
        count: 16,
    };
    let pending = tokio::spawn(async move { client.request(a_id, range).await });
    let (_, request, responder) = a.sync_request().await;
    assert_eq!(
        request,
        SyncRequest::BlocksByRange {
            start: 1,
            count: 16
        }
    );
    a.handle
        .respond(responder, SyncResponse::Blocks(Vec::new()))
        .await;
    let response = within("blocks response", pending).await.expect("task");
    assert_eq!(response, Ok(SyncResponse::Blocks(Vec::new())));

    let peers = b.handle.peers().await;
    assert_eq!(
        peers.iter().map(|p| p.peer_id).collect::<Vec<_>>(),
        vec![a.id()]
    );
    assert!(!peers[0].addresses.is_empty());
    assert!(!b.handle.listen_addrs().await.is_empty());
}

#[tokio::test]
async fn requests_fail_instead_of_hanging() {
    let (mut a, b) = pair(config(), config()).await;
    let a_id = a.id();

    // a holds the responder without answering: b times out (request_timeout is 2 s).
    let client = b.handle.clone();
    let pending = tokio::spawn(async move { client.request(a_id, SyncRequest::Status).await });
    let (_, _, held) = a.sync_request().await;
    assert_eq!(
        within("timeout", pending).await.expect("task"),
        Err(NetError::Timeout)
    );
    // A late answer goes nowhere and harms nothing.
    a.handle
        .respond(held, SyncResponse::Refused("late".into()))
        .await;

    // a drops the responder: b gets an error without waiting for the timeout.
    let client = b.handle.clone();
    let hashes = SyncRequest::BlocksByHash {
        hashes: vec![Hash32([3; 32])],
    };
    let pending = tokio::spawn(async move { client.request(a_id, hashes).await });
    let (_, _, responder) = a.sync_request().await;
    drop(responder);
    let result = within("error", pending).await.expect("task");
    assert_eq!(result, Err(NetError::NoResponse));

    // A peer we know no address of, and ourselves, fail to dial.
    let stranger = Keypair::generate_ed25519().public().to_peer_id();
    let result = within(
        "dial failure",
        b.handle.request(stranger, SyncRequest::Status),
    )
    .await;
    assert!(matches!(result, Err(NetError::Dial(_))), "{result:?}");
    let result = within("self", b.handle.request(b.id(), SyncRequest::Status)).await;
    assert!(matches!(result, Err(NetError::Dial(_))), "{result:?}");
}

#[tokio::test]
async fn oversized_sync_response_is_a_codec_error() {
    let mut strict = config();
    strict.max_sync_response_bytes = 64;
    let (mut a, b) = pair(config(), strict).await;
    let client = b.handle.clone();
    let a_id = a.id();
    let pending = tokio::spawn(async move { client.request(a_id, SyncRequest::Status).await });
    let (_, _, responder) = a.sync_request().await;
    // Within a's limit, over b's.
    a.handle
        .respond(responder, SyncResponse::Refused("x".repeat(200)))
        .await;
    let result = within("codec error", pending).await.expect("task");
    assert!(matches!(result, Err(NetError::Codec(_))), "{result:?}");
}

#[tokio::test]
async fn lone_node_publishes_nowhere_and_dials_fail() {
    let node = Node::start(config()).await;
    assert_eq!(
        node.handle
            .publish(TopicKind::Blocks, b"block".to_vec())
            .await,
        Err(NetError::NoPeers)
    );
    // Nothing listens on the port of a listener we bound and closed.
    let port = free_port();
    let result = within("dial", node.handle.dial(loopback(port))).await;
    assert!(matches!(result, Err(NetError::Dial(_))), "{result:?}");
}

#[tokio::test]
async fn bootnode_that_starts_later_is_redialled() {
    // Something that is not a learnchain node holds the bootnode's port at first: it accepts
    // b's first dial and hangs up, so that dial fails. Only a redial can then reach a.
    let impostor = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = impostor.local_addr().expect("addr").port();
    let mut config_b = config();
    config_b.bootnodes = vec![loopback(port)];
    let mut b = Node::start(config_b).await;
    let (socket, _) = within("b's first dial", impostor.accept())
        .await
        .expect("accept");
    drop(socket);
    drop(impostor);

    let a = Node::start(NetConfig {
        listen: vec![loopback(port)],
        ..config()
    })
    .await;
    b.connected_to(a.id()).await;
    assert_eq!(b.handle.peers().await.len(), 1);
}

#[tokio::test]
async fn dns_addresses_and_explicit_dials_connect() {
    let mut a = Node::start(config()).await;
    let b = Node::start(config()).await;
    let Some(Protocol::Tcp(port)) = a.addr.iter().last() else {
        panic!("tcp address")
    };
    let dns: Multiaddr = format!("/dns4/localhost/tcp/{port}/p2p/{}", a.id())
        .parse()
        .expect("addr");
    within("dial", b.handle.dial(dns.clone()))
        .await
        .expect("dial over dns");
    a.connected_to(b.id()).await;
    // Already connected: a second dial of the same peer is a no-op.
    within("dial", b.handle.dial(dns)).await.expect("no-op");
}

#[tokio::test]
async fn event_loop_stops_when_every_handle_is_dropped() {
    let node = Node::start(config()).await;
    let Node {
        handle,
        mut events,
        task,
        ..
    } = node;
    let clone = handle.clone();
    drop(handle);
    drop(clone);
    within("event loop exit", task)
        .await
        .expect("task ended cleanly");
    within("event stream end", async {
        while events.recv().await.is_some() {}
    })
    .await;
}

#[test]
fn invalid_limits_are_refused() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    runtime.block_on(async {
        let result = learnchain_net::new(NetConfig {
            max_block_bytes: 0,
            ..config()
        });
        assert!(matches!(result, Err(NetError::Config(_))));
        let result = learnchain_net::new(NetConfig {
            request_timeout: Duration::ZERO,
            ..config()
        });
        assert!(matches!(result, Err(NetError::Config(_))));
    });
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test]
async fn traffic_counts_every_byte_both_ways() {
    let (a, mut b) = pair(config(), config()).await;
    a.sees_subscribed(TopicKind::Blocks, &[b.id()]).await;
    let (a0, b0) = (a.handle.traffic(), b.handle.traffic());
    assert!(a0.bytes_out > 0 && a0.bytes_in > 0, "handshakes and subscriptions are counted: {a0:?}");
    let payload = vec![0x5a; 200_000];
    a.handle
        .publish(TopicKind::Blocks, payload.clone())
        .await
        .expect("published");
    let (kind, id, _, data) = b.gossip().await;
    assert_eq!((kind, data.len()), (TopicKind::Blocks, payload.len()));
    b.handle.report_validation(id, Verdict::Ignore).await;
    let (a1, b1) = (a.handle.traffic(), b.handle.traffic());
    let len = payload.len() as u64;
    assert!(a1.bytes_out - a0.bytes_out >= len, "sent {a0:?} → {a1:?}");
    assert!(b1.bytes_in - b0.bytes_in >= len, "received {b0:?} → {b1:?}");
    // Noise adds 16 bytes per frame of at most 65 535, Yamux 12 per frame: a few hundred
    // bytes on 200 kB, plus the gossipsub envelope.
    assert!(b1.bytes_in - b0.bytes_in < len + 8 * 1024, "received {b0:?} → {b1:?}");
    assert_eq!(a1.total(), a1.bytes_in + a1.bytes_out);
}

/// A peer's agent string is known once identify has answered, and the node hears of it:
/// `peers()` (what `net_peers` shows) names the agent after `PeerIdentified`, where it
/// was still unknown when the connection was first reported.
#[tokio::test]
async fn peers_show_their_agent_once_identified() {
    let mut a = Node::start(config()).await;
    let mut config_b = config();
    config_b.bootnodes = vec![a.p2p_addr()];
    let b = Node::start(config_b).await;
    let peer = b.id();
    a.next("peer identified", |e| match e {
        NetEvent::PeerIdentified(p) if p == peer => Some(()),
        _ => None,
    })
    .await;
    let peers = a.handle.peers().await;
    let info = peers.iter().find(|p| p.peer_id == peer).expect("b is a peer of a");
    let agent = info.agent.as_deref().expect("an agent after identify");
    assert!(agent.starts_with("learnchain/"), "{agent}");
}
