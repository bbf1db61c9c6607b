//! The Prometheus endpoint: `GET /metrics` on its own address, in the OpenMetrics text
//! format.
//!
//! [`MetricsServer::start`] binds the address the node was given with `--metrics` and
//! serves the node's `prometheus_client` registry (its own metrics and the network's) to
//! every scrape. The server owns nothing of the node: a scrape reads the registry's
//! atomics and encodes them, so it never waits on the chain or the swarm, and the node
//! never waits on a scraper.
//!
//! It speaks just enough HTTP/1.1 for a scraper, and bounds everything a client sends:
//! at most [`MAX_CONNECTIONS`] connections at once (more are closed at once), a request
//! head of at most [`MAX_REQUEST_HEAD_BYTES`] (431 beyond), read within
//! [`REQUEST_TIMEOUT`] (408 after; a client that stalls holds one slot for that long at
//! most), one request per connection (`Connection: close`). `GET` or `HEAD` of `/metrics`
//! is answered (a query string is ignored); other paths get 404, other methods 405.
//!
//! Encoding is paid at most once per [`MIN_ENCODE_INTERVAL`]: a scrape within that time of
//! the last encoding gets the same text. And at most [`MAX_SCRAPES_PER_SECOND`] scrapes a
//! second get the text at all (a burst of as many at once); beyond that a scrape gets a
//! short 429. A client that scrapes in a loop therefore costs the node one encoding and a
//! few hundred kilobytes a second, not a core (measured on 2 cores: 17,000 scrapes a second
//! of a 63 kB text took the chain from 24 blocks in 15 s to 7 before these bounds).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

use crate::server::RpcError;

/// The path the metrics are served at.
pub const METRICS_PATH: &str = "/metrics";
/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Largest request head (request line and headers) read from a client.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
/// Longest a client may take to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest time between two encodings of the registry (see the module docs).
pub const MIN_ENCODE_INTERVAL: Duration = Duration::from_secs(1);
/// Most scrapes answered with the metrics per second (and in one burst); more get 429.
pub const MAX_SCRAPES_PER_SECOND: u32 = 10;
/// The content type of OpenMetrics text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Starts the metrics endpoint.
#[derive(Clone, Copy, Debug)]
pub struct MetricsServer {
    request_timeout: Duration,
    encode_interval: Duration,
}

impl Default for MetricsServer {
    fn default() -> Self {
        MetricsServer { request_timeout: REQUEST_TIMEOUT, encode_interval: MIN_ENCODE_INTERVAL }
    }
}

impl MetricsServer {
    /// Gives clients `timeout` to send their request head (default [`REQUEST_TIMEOUT`]).
    pub fn with_request_timeout(self, timeout: Duration) -> Self {
        MetricsServer { request_timeout: timeout, ..self }
    }

    /// Encodes the registry at most once per `interval` (default [`MIN_ENCODE_INTERVAL`];
    /// zero encodes at every scrape).
    pub fn with_encode_interval(self, interval: Duration) -> Self {
        MetricsServer { encode_interval: interval, ..self }
    }

    /// Binds `addr` and serves `registry` at [`METRICS_PATH`] on the current tokio runtime.
    pub async fn start(self, addr: SocketAddr, registry: Arc<Registry>) -> Result<MetricsHandle, RpcError> {
        let listener = TcpListener::bind(addr).await.map_err(|source| RpcError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| RpcError::Bind { addr, source })?;
        let (stop, stopped) = oneshot::channel();
        let scrapes = Arc::new(Scrapes {
            registry,
            interval: self.encode_interval,
            last: Mutex::new(None),
            budget: Mutex::new((Instant::now(), f64::from(MAX_SCRAPES_PER_SECOND))),
        });
        let task = tokio::spawn(accept_loop(listener, scrapes, stopped, self.request_timeout));
        tracing::info!(addr = %local_addr, "Prometheus metrics at http://{local_addr}{METRICS_PATH}");
        Ok(MetricsHandle { local_addr, stop, task })
    }
}

/// A running metrics endpoint; dropping it stops accepting (without waiting).
#[derive(Debug)]
pub struct MetricsHandle {
    local_addr: SocketAddr,
    /// Sent, or dropped with the handle, to stop the accept loop.
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl MetricsHandle {
    /// The bound address (the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and waits for the accept loop to end (scrapes in flight finish on
    /// their own, within [`REQUEST_TIMEOUT`]).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The registry and its last encoding.
struct Scrapes {
    registry: Arc<Registry>,
    interval: Duration,
    last: Mutex<Option<(Instant, Arc<str>)>>,
    /// A token bucket: when it was last filled, and the scrapes it still allows.
    budget: Mutex<(Instant, f64)>,
}

impl Scrapes {
    /// Takes one scrape from the budget; false when it is spent.
    fn allow(&self) -> bool {
        let rate = f64::from(MAX_SCRAPES_PER_SECOND);
        let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let tokens = (budget.1 + now.duration_since(budget.0).as_secs_f64() * rate).min(rate);
        *budget = (now, tokens);
        if tokens >= 1.0 {
            budget.1 = tokens - 1.0;
            true
        } else {
            false
        }
    }

    /// The registry as OpenMetrics text, encoded now or at most `interval` ago. Concurrent
    /// scrapes wait for one encoding (about a millisecond) instead of each doing their own.
    fn text(&self) -> Result<Arc<str>, std::fmt::Error> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, text)) = last.as_ref()
            && at.elapsed() < self.interval
        {
            return Ok(text.clone());
        }
        let mut body = String::new();
        prometheus_client::encoding::text::encode(&mut body, &self.registry)?;
        let text: Arc<str> = body.into();
        *last = Some((Instant::now(), text.clone()));
        Ok(text)
    }
}

async fn accept_loop(listener: TcpListener, scrapes: Arc<Scrapes>, mut stop: oneshot::Receiver<()>, timeout: Duration) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        tracing::debug!(%peer, "metrics: too many connections; closing one");
                        continue;
                    };
                    let scrapes = scrapes.clone();
                    tokio::spawn(async move {
                        serve(stream, &scrapes, timeout).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::debug!(error = %e, "metrics: accept failed");
                    // Out of file descriptors, say: do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    tracing::info!("Prometheus metrics endpoint stopped");
}

/// Reads one request head and answers it.
async fn serve(mut stream: TcpStream, scrapes: &Scrapes, timeout: Duration) {
    let response = match tokio::time::timeout(timeout, read_head(&mut stream)).await {
        Err(_) => plain(408, "Request Timeout", "the request head did not arrive in time"),
        Ok(Err(HeadError::TooLarge)) => plain(
            431,
            "Request Header Fields Too Large",
            &format!("the request head is larger than {MAX_REQUEST_HEAD_BYTES} bytes"),
        ),
        Ok(Err(HeadError::Closed)) => return,
        Ok(Ok(head)) => answer(&head, scrapes),
    };
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

enum HeadError {
    TooLarge,
    Closed,
}

/// The request head (up to the blank line), at most [`MAX_REQUEST_HEAD_BYTES`].
async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| HeadError::Closed)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_blank_line(&head) {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > MAX_REQUEST_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").or_else(|| buf.windows(2).position(|w| w == b"\n\n"))
}

/// The response to a request head.
fn answer(head: &[u8], scrapes: &Scrapes) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let line = text.lines().next().unwrap_or("");
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return plain(400, "Bad Request", "malformed request line");
    };
    if !version.starts_with("HTTP/1.") {
        return plain(505, "HTTP Version Not Supported", "only HTTP/1.x is spoken here");
    }
    let path = target.split('?').next().unwrap_or("");
    if path != METRICS_PATH {
        return plain(404, "Not Found", &format!("no such path; the metrics are at {METRICS_PATH}"));
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return plain(405, "Method Not Allowed", &format!("{METRICS_PATH} answers GET and HEAD only")),
    };
    if !scrapes.allow() {
        return plain(429, "Too Many Requests", &format!("at most {MAX_SCRAPES_PER_SECOND} scrapes a second"));
    }
    let body = match scrapes.text() {
        Ok(body) => body,
        Err(e) => return plain(500, "Internal Server Error", &format!("cannot encode the metrics: {e}")),
    };
    let mut response = response_head(200, "OK", CONTENT_TYPE, body.len());
    if !head_only {
        response.extend_from_slice(body.as_bytes());
    }
    response
}

fn response_head(status: u16, reason: &str, content_type: &str, len: usize) -> Vec<u8> {
    let mut head = String::new();
    let _ = write!(
        head,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    head.into_bytes()
}

fn plain(status: u16, reason: &str, message: &str) -> Vec<u8> {
    let body = format!("{message}\n");
    let mut response = response_head(status, reason, "text/plain; charset=utf-8", body.len());
    response.extend_from_slice(body.as_bytes());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::gauge::Gauge;

    async fn started() -> (MetricsHandle, Gauge) {
        started_with(MetricsServer::default().with_encode_interval(Duration::ZERO)).await
    }

    async fn started_with(server: MetricsServer) -> (MetricsHandle, Gauge) {
        let mut registry = Registry::with_prefix("learnchain");
        let gauge = Gauge::<i64>::default();
        registry.register("chain_head_height", "Height of the head", gauge.clone());
        gauge.set(42);
        let handle = server.start("127.0.0.1:0".parse().expect("addr"), Arc::new(registry)).await.expect("start");
        (handle, gauge)
    }

    async fn request(addr: SocketAddr, raw: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(raw).await.expect("write");
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.expect("read");
        String::from_utf8(out).expect("utf-8")
    }

    #[tokio::test]
    async fn serves_openmetrics_and_refuses_the_rest() {
        let (handle, gauge) = started().await;
        let addr = handle.local_addr();
        let ok = request(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains(CONTENT_TYPE), "{ok}");
        assert!(ok.contains("learnchain_chain_head_height 42\n"), "{ok}");
        assert!(ok.ends_with("# EOF\n"), "{ok}");
        gauge.set(43);
        let again = request(addr, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
        assert!(again.contains("learnchain_chain_head_height 43\n"), "a scrape reads the live value: {again}");
        let head = request(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200") && !head.contains("learnchain_"), "{head}");
        assert!(request(addr, b"GET / HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404"));
        assert!(request(addr, b"GET /metricsx HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404"));
        assert!(request(addr, b"POST /metrics HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 405"));
        assert!(request(addr, b"nonsense\r\n\r\n").await.starts_with("HTTP/1.1 400"));
        // Three scrapes so far; the rest of the burst, then 429.
        let mut statuses = Vec::new();
        for _ in 0..MAX_SCRAPES_PER_SECOND {
            statuses.push(request(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await[..12].to_owned());
        }
        assert!(statuses.iter().any(|s| s == "HTTP/1.1 429"), "a scrape loop is cut off: {statuses:?}");
        assert!(statuses.iter().filter(|s| *s == "HTTP/1.1 200").count() >= 5, "{statuses:?}");
        let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_REQUEST_HEAD_BYTES + 10));
        assert!(request(addr, &huge).await.starts_with("HTTP/1.1 431"), "an oversized head is refused");
        handle.stop().await;
    }

    #[tokio::test]
    async fn a_stalled_client_does_not_hold_up_the_others() {
        let (handle, _) = started().await;
        let addr = handle.local_addr();
        // Half a request line, never finished; and more stalled clients than there are slots.
        let mut stalled = Vec::new();
        for _ in 0..MAX_CONNECTIONS - 1 {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(b"GET /met").await.expect("write");
            stalled.push(s);
        }
        let ok = request(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(ok.contains("learnchain_chain_head_height 42"), "{ok}");
        drop(stalled);
        handle.stop().await;
    }

    #[tokio::test]
    async fn scrapes_in_a_loop_reuse_one_encoding() {
        let (handle, gauge) = started_with(MetricsServer::default().with_encode_interval(Duration::from_secs(3600))).await;
        let addr = handle.local_addr();
        let first = request(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        gauge.set(7);
        let second = request(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert_eq!(first, second, "a scrape within the interval gets the last encoding");
        assert!(second.contains("learnchain_chain_head_height 42\n"), "{second}");
        handle.stop().await;
    }

    #[tokio::test]
    async fn a_stalled_client_is_timed_out() {
        let (handle, _) = started_with(MetricsServer::default().with_request_timeout(Duration::from_millis(200))).await;
        let mut s = TcpStream::connect(handle.local_addr()).await.expect("connect");
        s.write_all(b"GET /met").await.expect("write");
        let mut out = Vec::new();
        // The server answers 408 and closes once the timeout passes.
        s.read_to_end(&mut out).await.expect("read");
        assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&out));
        handle.stop().await;
    }
}
