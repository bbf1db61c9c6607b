//! A minimal WebSocket client (RFC 6455) for text messages: [`WsClient`].
//!
//! Enough to follow a node's `chain_subscribeHeads` subscription from a script or a test, or
//! to speak any text protocol over a WebSocket (the explorer's browser test drives Chromium's
//! DevTools protocol with it), without an HTTP stack. [`WsClient::connect`] sends the
//! upgrade request and checks for `101`; [`WsClient::send_text`] sends one masked text frame;
//! [`WsClient::recv_text`] returns the next text message, reassembling fragments, answering
//! pings and skipping pongs, and `None` once the server closes. Everything read is bounded
//! before it is allocated: the handshake answer at [`MAX_HANDSHAKE_BYTES`], a message at the
//! client's limit ([`DEFAULT_MAX_MESSAGE_BYTES`] unless [`WsClient::with_max_message`] says
//! otherwise). A frame the server masked is refused, as the RFC requires.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::ClientError;

/// Largest handshake answer (status line and headers) read.
pub const MAX_HANDSHAKE_BYTES: usize = 16 * 1024;
/// Default largest message accepted.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// A WebSocket connection (see the module docs).
#[derive(Debug)]
pub struct WsClient {
    stream: TcpStream,
    addr: SocketAddr,
    mask: u32,
    max_message: usize,
}

impl WsClient {
    /// Opens `ws://addr{path}` (`path` starts with `/`).
    pub async fn connect(addr: SocketAddr, path: &str) -> Result<WsClient, ClientError> {
        let io = |source| ClientError::Io { addr, source };
        let mut stream = TcpStream::connect(addr).await.map_err(io)?;
        // The key is fixed: this client does not check the server's accept hash.
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() >= MAX_HANDSHAKE_BYTES {
                return Err(ClientError::TooLarge { limit: MAX_HANDSHAKE_BYTES });
            }
            head.push(stream.read_u8().await.map_err(io)?);
        }
        if !head.starts_with(b"HTTP/1.1 101") {
            let head = String::from_utf8_lossy(&head);
            let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            return Err(ClientError::Http { status, body: head.lines().next().unwrap_or("").to_owned() });
        }
        Ok(WsClient { stream, addr, mask: 0x1234_5678, max_message: DEFAULT_MAX_MESSAGE_BYTES })
    }

    /// Accepts messages of at most `bytes`.
    pub fn with_max_message(self, bytes: usize) -> WsClient {
        WsClient { max_message: bytes, ..self }
    }

    /// Sends `text` as one text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.frame(TEXT, text.as_bytes()).await
    }

    async fn frame(&mut self, opcode: u8, payload: &[u8]) -> Result<(), ClientError> {
        // Client frames must be masked; the mask need not be secret here (no proxy between).
        self.mask = self.mask.rotate_left(7) ^ 0x9e37_79b9;
        let mask = self.mask.to_be_bytes();
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend((n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend((n as u64).to_be_bytes());
            }
        }
        frame.extend(mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        let addr = self.addr;
        self.stream.write_all(&frame).await.map_err(|source| ClientError::Io { addr, source })
    }

    /// The next text message; `None` when the server closed the connection (a close frame,
    /// or the end of the stream between messages).
    pub async fn recv_text(&mut self) -> Result<Option<String>, ClientError> {
        let addr = self.addr;
        let io = |source| ClientError::Io { addr, source };
        let mut message = Vec::new();
        loop {
            let b0 = match self.stream.read_u8().await {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && message.is_empty() => return Ok(None),
                Err(e) => return Err(io(e)),
            };
            let b1 = self.stream.read_u8().await.map_err(io)?;
            if b1 & 0x80 != 0 {
                return Err(ClientError::InvalidResponse("the server masked a frame".into()));
            }
            let len = match b1 & 0x7f {
                126 => u64::from(self.stream.read_u16().await.map_err(io)?),
                127 => self.stream.read_u64().await.map_err(io)?,
                n => u64::from(n),
            };
            let room = self.max_message.saturating_sub(message.len());
            let len = usize::try_from(len)
                .ok()
                .filter(|&n| n <= room)
                .ok_or(ClientError::TooLarge { limit: self.max_message })?;
            let mut payload = vec![0; len];
            self.stream.read_exact(&mut payload).await.map_err(io)?;
            match b0 & 0x0f {
                0x0..=0x2 => message.extend(payload),
                CLOSE => return Ok(None),
                PING => {
                    self.frame(PONG, &payload).await?;
                    continue;
                }
                _ => continue,
            }
            if b0 & 0x80 != 0 {
                return String::from_utf8(message)
                    .map(Some)
                    .map_err(|_| ClientError::InvalidResponse("a text message that is not UTF-8".into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers the handshake, then writes `frames` and closes.
    async fn serving(frames: Vec<u8>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(s.read_u8().await.expect("request"));
            }
            s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
                .await
                .expect("answer");
            s.write_all(&frames).await.expect("frames");
            // Read the client's pong (if any) before closing.
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(std::time::Duration::from_millis(200), s.read_to_end(&mut rest)).await;
        });
        addr
    }

    #[tokio::test]
    async fn fragments_pings_close_and_limits() {
        // "hel" + ping + "lo" (fragmented), then close.
        let frames = [
            &[0x01, 3][..],
            b"hel",
            &[0x89, 1, b'x'],
            &[0x80, 2],
            b"lo",
            &[0x88, 0],
        ]
        .concat();
        let mut ws = WsClient::connect(serving(frames).await, "/").await.expect("connect");
        assert_eq!(ws.recv_text().await.expect("message").as_deref(), Some("hello"));
        assert_eq!(ws.recv_text().await.expect("close"), None);

        let big = [&[0x81, 126, 0x01, 0x00][..], &[b'a'; 256]].concat();
        let mut ws = WsClient::connect(serving(big).await, "/").await.expect("connect").with_max_message(100);
        assert!(matches!(ws.recv_text().await, Err(ClientError::TooLarge { limit: 100 })));

        let masked = vec![0x81, 0x81, 1, 2, 3, 4, b'a'];
        let mut ws = WsClient::connect(serving(masked).await, "/").await.expect("connect");
        assert!(matches!(ws.recv_text().await, Err(ClientError::InvalidResponse(_))));
    }
}
