//! [`NetError`]: every way a network operation requested through a
//! [`NetworkHandle`](crate::NetworkHandle) can fail.
//!
//! Errors are created in the event loop (from libp2p's dial, publish and request-response
//! failures) and leave through the oneshot reply of the command that caused them. Each
//! variant's doc says what it means for the caller, in particular whether it says anything
//! about the remote peer.

use thiserror::Error;

/// Why a network operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum NetError {
    /// No connected peer is subscribed to the topic, so the message went nowhere. Benign:
    /// normal for a lone node or right after start-up; nothing was cached, so the same
    /// message may be published again later.
    #[error("no peers subscribed to the topic")]
    NoPeers,
    /// The same content was already published or received recently (message ids are content
    /// hashes). Benign.
    #[error("message already published")]
    Duplicate,
    /// The payload is larger than its topic's limit; it was not sent. A local bug, not a
    /// peer's fault.
    #[error("message of {len} bytes exceeds the {max}-byte limit of its topic")]
    TooLarge {
        /// Payload bytes.
        len: usize,
        /// The topic's limit.
        max: usize,
    },
    /// Gossipsub refused the message for another reason (e.g. every peer's queue is full).
    #[error("publish failed: {0}")]
    Publish(String),
    /// The peer did not answer within the request timeout. Says little about the peer on its
    /// own; repeated timeouts suggest a slow or unresponsive peer.
    #[error("request timed out")]
    Timeout,
    /// The event loop has stopped (or stopped before answering); the network is gone.
    #[error("network event loop has stopped")]
    Closed,
    /// No connection to the peer could be established (unreachable, wrong peer id, no known
    /// address, our own address).
    #[error("dial failed: {0}")]
    Dial(String),
    /// The connection closed before the response arrived.
    #[error("connection closed before the response arrived")]
    ConnectionClosed,
    /// The peer closed the stream without a complete response: it declined to answer or
    /// could not (e.g. it dropped the request under load). Not proof of misbehaviour.
    #[error("peer closed the stream without a response")]
    NoResponse,
    /// The peer does not speak the sync protocol.
    #[error("peer does not support the sync protocol")]
    UnsupportedProtocol,
    /// The peer's response could not be read or decoded (too large, malformed, truncated).
    /// The peer broke the protocol.
    #[error("codec error: {0}")]
    Codec(String),
    /// Building the transport or listening on an address failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// The configuration cannot be used (e.g. a size limit out of range).
    #[error("invalid network configuration: {0}")]
    Config(String),
}
