//! The sync protocol's wire codec ([`SyncCodec`]) for libp2p request-response.
//!
//! Each request and each response is one frame on its own stream: a `u32` big-endian length,
//! then that many bytes of the canonical `learnchain-proto` encoding. Reading is bounded the
//! way every read from a peer is: the length prefix is checked against the limit
//! ([`MAX_REQUEST_BYTES`] for requests, the genesis `max_sync_response_bytes` for responses)
//! *before* any buffer is allocated, the body is read through `take(len)` so memory grows only
//! as bytes actually arrive, and `proto::decode` checks the same limit again. The writer
//! refuses to send a frame the reader on the other side would refuse.
//!
//! There is no separate decode timeout here: request-response applies the configured request
//! timeout to the whole exchange (open stream, write, read), so a peer that trickles bytes is
//! cut off by it.

use std::io;

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use learnchain_proto::{
    SyncRequest, SyncResponse, decode, encode, encoding::MAX_MESSAGE_BYTES,
    sync::MAX_SYNC_REQUEST_BYTES, topics::SYNC_PROTOCOL,
};
use libp2p::{StreamProtocol, request_response};

/// Largest encoded sync request read or written.
pub const MAX_REQUEST_BYTES: usize = MAX_SYNC_REQUEST_BYTES;

/// Hard cap on any sync response, whatever the configuration says: the largest message the
/// canonical encoding accepts.
pub const MAX_RESPONSE_BYTES_CAP: usize = MAX_MESSAGE_BYTES;

/// The first bytes of the body buffer reserved up front; the rest grows as data arrives.
const INITIAL_READ_CAPACITY: usize = 64 * 1024;

/// The sync protocol name as a libp2p stream protocol.
pub(crate) const SYNC_STREAM_PROTOCOL: StreamProtocol = StreamProtocol::new(SYNC_PROTOCOL);

/// A sync response as the codec writes it: a value to encode, or the canonical encoding of
/// one already made (blocks served from storage as received, see
/// [`SyncResponse::encoded_blocks`]). What the codec reads is always decoded: a
/// [`WireResponse::Value`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireResponse {
    /// A response to encode.
    Value(SyncResponse),
    /// A response's canonical encoding, sent as is.
    Encoded(Vec<u8>),
}

impl WireResponse {
    /// The response itself (an encoded one decoded; it was made by this node, so it
    /// decodes, but a bad one is a `Refused`).
    pub fn into_value(self) -> SyncResponse {
        match self {
            WireResponse::Value(r) => r,
            WireResponse::Encoded(b) => decode(&b, MAX_MESSAGE_BYTES).unwrap_or_else(|e| SyncResponse::Refused(format!("bad encoded response: {e}"))),
        }
    }
}

impl From<SyncResponse> for WireResponse {
    fn from(r: SyncResponse) -> Self {
        WireResponse::Value(r)
    }
}

/// Length-prefixed, size-limited codec for [`SyncRequest`] / [`SyncResponse`].
#[derive(Clone, Debug)]
pub(crate) struct SyncCodec {
    /// Largest request frame body.
    max_request_bytes: usize,
    /// Largest response frame body.
    max_response_bytes: usize,
}

impl SyncCodec {
    /// A codec that accepts responses up to `max_response_bytes` (capped at
    /// [`MAX_RESPONSE_BYTES_CAP`]) and requests up to [`MAX_REQUEST_BYTES`].
    pub(crate) fn new(max_response_bytes: usize) -> Self {
        SyncCodec {
            max_request_bytes: MAX_REQUEST_BYTES,
            max_response_bytes: max_response_bytes.min(MAX_RESPONSE_BYTES_CAP),
        }
    }
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads one frame of at most `max` body bytes. The length is checked before anything is
/// allocated; a stream that ends early is `UnexpectedEof`.
pub(crate) async fn read_frame<T>(io: &mut T, max: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix);
    let len = usize::try_from(len).map_err(|_| invalid_data(format!("frame of {len} bytes")))?;
    if len > max {
        return Err(invalid_data(format!(
            "frame of {len} bytes exceeds the limit of {max} bytes"
        )));
    }
    let mut body = Vec::with_capacity(len.min(INITIAL_READ_CAPACITY));
    // `len <= max <= usize::MAX`, and a usize always fits a u64 on supported targets.
    let limit = u64::try_from(len).unwrap_or(u64::MAX);
    io.take(limit).read_to_end(&mut body).await?;
    if body.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame truncated: {} of {len} bytes", body.len()),
        ));
    }
    Ok(body)
}

/// Writes `body` as one frame, refusing bodies over `max` (the peer would refuse them too).
pub(crate) async fn write_frame<T>(io: &mut T, body: &[u8], max: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    let len = body.len();
    let prefix = u32::try_from(len)
        .ok()
        .filter(|_| len <= max)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("refusing to send a frame of {len} bytes (limit {max} bytes)"),
            )
        })?;
    io.write_all(&prefix.to_be_bytes()).await?;
    io.write_all(body).await?;
    io.flush().await
}

/// Reads one frame and decodes it with the same limit.
async fn read_decoded<T, F, M>(io: &mut T, max: usize, decode_body: F) -> io::Result<M>
where
    T: AsyncRead + Unpin + Send,
    F: FnOnce(&[u8], usize) -> Result<M, learnchain_proto::DecodeError>,
{
    let body = read_frame(io, max).await?;
    decode_body(&body, max).map_err(|e| invalid_data(e.to_string()))
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = WireResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_decoded(io, self.max_request_bytes, decode::<SyncRequest>).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<WireResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_decoded(io, self.max_response_bytes, decode::<SyncResponse>).await.map(WireResponse::Value)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &encode(&request), self.max_request_bytes).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: WireResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match response {
            WireResponse::Value(r) => write_frame(io, &encode(&r), self.max_response_bytes).await,
            WireResponse::Encoded(bytes) => write_frame(io, &bytes, self.max_response_bytes).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::{executor::block_on, io::Cursor};
    use learnchain_proto::{Hash32, StatusMessage};
    use request_response::Codec as _;

    use super::*;

    fn frame(len: u32, body: &[u8]) -> Cursor<Vec<u8>> {
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        Cursor::new(bytes)
    }

    #[test]
    fn request_and_response_round_trip() {
        let mut codec = SyncCodec::new(1 << 20);
        let p = SYNC_STREAM_PROTOCOL;
        let request = SyncRequest::BlocksByRange { start: 7, count: 3 };
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_request(&p, &mut wire, request.clone())).expect("write");
        wire.set_position(0);
        assert_eq!(
            block_on(codec.read_request(&p, &mut wire)).expect("read"),
            request
        );

        let response = SyncResponse::Status(StatusMessage {
            chain_id: Hash32([1; 32]),
            head: Hash32([2; 32]),
            height: 9,
            total_work: Hash32([3; 32]),
        });
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_response(&p, &mut wire, response.clone().into())).expect("write");
        let written = wire.get_ref().clone();
        let body_len = u32::from_be_bytes([written[0], written[1], written[2], written[3]]);
        assert_eq!(
            body_len as usize,
            written.len() - 4,
            "prefix is the big-endian body length"
        );
        wire.set_position(0);
        assert_eq!(
            block_on(codec.read_response(&p, &mut wire)).expect("read"),
            WireResponse::Value(response.clone())
        );
        // An already encoded response goes out as the same frame.
        let mut encoded = Cursor::new(Vec::new());
        block_on(codec.write_response(&p, &mut encoded, WireResponse::Encoded(encode(&response)))).expect("write");
        assert_eq!(encoded.get_ref(), &written);
    }

    #[test]
    fn oversized_length_prefix_is_refused_before_reading_the_body() {
        // The prefix claims 4 GiB - 1 bytes and no body follows. Refusal must come from the
        // limit check (InvalidData), not from running out of input after allocating (Eof).
        let mut wire = frame(u32::MAX, &[]);
        let err = block_on(read_frame(&mut wire, 1024)).expect_err("must refuse");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
        assert_eq!(wire.position(), 4, "nothing after the prefix was read");

        // The same through the codec, for requests (fixed limit) and responses (configured).
        let mut codec = SyncCodec::new(100);
        let p = SYNC_STREAM_PROTOCOL;
        let mut wire = frame((MAX_REQUEST_BYTES + 1) as u32, &[]);
        let err = block_on(codec.read_request(&p, &mut wire)).expect_err("must refuse");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let mut wire = frame(101, &[0; 101]);
        let err = block_on(codec.read_response(&p, &mut wire)).expect_err("must refuse");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(wire.position(), 4);
    }

    #[test]
    fn a_frame_at_the_limit_is_read() {
        let mut wire = frame(5, b"hello");
        assert_eq!(block_on(read_frame(&mut wire, 5)).expect("read"), b"hello");
    }

    #[test]
    fn truncated_frames_are_errors() {
        let mut wire = frame(10, b"short");
        let err = block_on(read_frame(&mut wire, 100)).expect_err("truncated");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut wire = Cursor::new(vec![0u8, 0]);
        let err = block_on(read_frame(&mut wire, 100)).expect_err("truncated prefix");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn malformed_bodies_are_invalid_data() {
        let mut codec = SyncCodec::new(1 << 20);
        let p = SYNC_STREAM_PROTOCOL;
        let mut wire = frame(3, &[9, 9, 9]); // wrong version byte
        let err = block_on(codec.read_request(&p, &mut wire)).expect_err("malformed");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let mut wire = frame(0, &[]); // empty body
        let err = block_on(codec.read_response(&p, &mut wire)).expect_err("empty");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn writer_refuses_frames_the_peer_would_refuse() {
        let mut codec = SyncCodec::new(16);
        let p = SYNC_STREAM_PROTOCOL;
        let big = SyncResponse::Refused("x".repeat(64));
        let mut wire = Cursor::new(Vec::new());
        let err = block_on(codec.write_response(&p, &mut wire, big.clone().into())).expect_err("too large");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = block_on(codec.write_response(&p, &mut wire, WireResponse::Encoded(encode(&big)))).expect_err("too large");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(wire.get_ref().is_empty(), "nothing was written");
    }
}
