//! Transport-level traffic counters: every byte this node's TCP connections carry.
//!
//! The swarm's TCP transport is wrapped so that each raw TCP stream, before the Noise
//! handshake, counts what it reads and writes into one shared pair of atomic counters
//! ([`TrafficCounters`]). What is counted is therefore everything that crosses the socket on
//! every connection, inbound and outbound, for every protocol: multistream-select
//! negotiation, the Noise handshake and its per-frame overhead, Yamux framing, gossipsub
//! (including duplicates, IHAVE/IWANT/IDONTWANT control messages and messages later
//! refused), the sync protocol, identify and ping. Not counted: TCP/IP headers,
//! retransmissions, DNS lookups and connection attempts that never reach an established TCP
//! stream. The counters start at zero when the network is built and only grow.
//!
//! Reading them ([`NetworkHandle::traffic`](crate::NetworkHandle::traffic)) is two relaxed
//! atomic loads: no round trip to the event loop.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};

/// Bytes this node has received and sent on all its connections since the network started
/// (see the module docs of `traffic` for exactly which bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes read from peers' TCP streams.
    pub bytes_in: u64,
    /// Bytes written to peers' TCP streams.
    pub bytes_out: u64,
}

impl Traffic {
    /// `bytes_in + bytes_out`.
    pub fn total(&self) -> u64 {
        self.bytes_in.saturating_add(self.bytes_out)
    }
}

/// The shared counters behind [`Traffic`]; cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct TrafficCounters(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl TrafficCounters {
    /// The counts so far.
    pub(crate) fn snapshot(&self) -> Traffic {
        Traffic {
            bytes_in: self.0.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.0.bytes_out.load(Ordering::Relaxed),
        }
    }

    fn add_in(&self, n: usize) {
        self.0.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn add_out(&self, n: usize) {
        self.0.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A stream that counts the bytes read from and written to `inner`.
#[derive(Debug)]
pub(crate) struct CountingStream<S> {
    inner: S,
    counters: TrafficCounters,
}

impl<S> CountingStream<S> {
    pub(crate) fn new(inner: S, counters: TrafficCounters) -> Self {
        CountingStream { inner, counters }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            this.counters.add_in(*n);
        }
        poll
    }

    fn poll_read_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &poll {
            this.counters.add_in(*n);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            this.counters.add_out(*n);
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &poll {
            this.counters.add_out(*n);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::io::{AsyncReadExt, AsyncWriteExt, Cursor};

    use super::*;

    #[test]
    fn reads_and_writes_are_counted_exactly() {
        let counters = TrafficCounters::default();
        let mut stream = CountingStream::new(Cursor::new(vec![7u8; 10]), counters.clone());
        let mut buf = [0u8; 4];
        block_on(stream.read_exact(&mut buf)).expect("read");
        assert_eq!(counters.snapshot(), Traffic { bytes_in: 4, bytes_out: 0 });
        block_on(stream.write_all(b"hello")).expect("write");
        let mut rest = Vec::new();
        block_on(stream.read_to_end(&mut rest)).expect("read");
        assert_eq!(rest.len(), 1, "the write replaced 5 of the 6 unread bytes");
        assert_eq!(counters.snapshot(), Traffic { bytes_in: 5, bytes_out: 5 });
        assert_eq!(counters.snapshot().total(), 10);
    }
}
