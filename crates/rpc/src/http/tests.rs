//! The routes over real sockets: a fake [`NodeApi`], the server on `127.0.0.1:0`, and
//! raw HTTP/1.1 written by hand, so every status, header and byte is the server's own.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc};

use super::*;
use crate::types::{
    AggregateReportView, BanView, BlockView, HeadView, MembersView, MempoolView, MetricsView,
    ModelView, NodeInfoView, PeerView, PrivacyStatusView,
};
use crate::{BlockRef, RpcHandle};

/// The height whose model file waits until the test opens the gate.
const GATED_HEIGHT: u64 = 77;
/// Longest any exchange in these tests may take.
const T: Duration = Duration::from_secs(10);

/// A node that knows its head and serves model files; everything else is unavailable.
struct Fake {
    heads: broadcast::Sender<HeadView>,
    gate: Mutex<bool>,
    opened: Condvar,
    gated: mpsc::UnboundedSender<()>,
}

impl Fake {
    fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<()>) {
        let (gated, entered) = mpsc::unbounded_channel();
        let fake = Fake { heads: broadcast::channel(4).0, gate: Mutex::new(false), opened: Condvar::new(), gated };
        (Arc::new(fake), entered)
    }

    fn open_gate(&self) {
        *self.gate.lock().expect("gate") = true;
        self.opened.notify_all();
    }
}

fn unavailable<T>() -> Result<T, ApiError> {
    Err(ApiError::Unavailable("not in this fake".into()))
}

impl NodeApi for Fake {
    fn chain_head(&self) -> Result<HeadView, ApiError> {
        Ok(HeadView {
            chain_id: "c".repeat(64),
            height: 5,
            hash: "b".repeat(64),
            parent: "a".repeat(64),
            model_hash: "d".repeat(64),
            state_root: "e".repeat(64),
            timestamp_ms: 1_700_000_000_000,
            total_work: "ff".into(),
            submissions: 2,
            registrations: 0,
        })
    }
    fn block(&self, _: BlockRef) -> Result<BlockView, ApiError> {
        unavailable()
    }
    fn model(&self, _: Option<u64>) -> Result<ModelView, ApiError> {
        unavailable()
    }
    fn model_file(&self, height: Option<u64>) -> Result<Vec<u8>, ApiError> {
        if height == Some(GATED_HEIGHT) {
            let _ = self.gated.send(());
            let mut open = self.gate.lock().map_err(|_| ApiError::Internal("gate poisoned".into()))?;
            while !*open {
                open = self.opened.wait(open).map_err(|_| ApiError::Internal("gate poisoned".into()))?;
            }
        }
        match height {
            Some(h) if h > GATED_HEIGHT => Err(ApiError::NotFound(format!("no block at height {h}"))),
            h => Ok(format!("model file {h:?}").into_bytes()),
        }
    }
    fn model_metrics(&self, _: Option<u64>) -> Result<MetricsView, ApiError> {
        unavailable()
    }
    fn peers(&self) -> Result<Vec<PeerView>, ApiError> {
        unavailable()
    }
    fn bans(&self) -> Result<Vec<BanView>, ApiError> {
        unavailable()
    }
    fn node_info(&self) -> Result<NodeInfoView, ApiError> {
        unavailable()
    }
    fn mempool(&self) -> Result<MempoolView, ApiError> {
        unavailable()
    }
    fn privacy_status(&self) -> Result<PrivacyStatusView, ApiError> {
        unavailable()
    }
    fn aggregate_report(&self, _: BlockRef) -> Result<AggregateReportView, ApiError> {
        unavailable()
    }
    fn members(&self) -> Result<MembersView, ApiError> {
        unavailable()
    }
    fn submit_registration(&self, _: Vec<u8>) -> Result<String, ApiError> {
        unavailable()
    }
    fn subscribe_heads(&self) -> broadcast::Receiver<HeadView> {
        self.heads.subscribe()
    }
}

/// The server as the node runs it.
async fn start() -> (Arc<Fake>, mpsc::UnboundedReceiver<()>, RpcHandle) {
    let (fake, entered) = Fake::new();
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    let handle = crate::start(addr, fake.clone()).await.expect("server starts");
    (fake, entered, handle)
}

/// A server with its own jsonrpsee limits and request deadline.
async fn start_with(config: ServerConfig, deadline: Duration) -> (SocketAddr, ServerHandle) {
    let (fake, _) = Fake::new();
    let module = crate::methods::module(fake.clone()).expect("method table");
    let routes = HttpRoutes::new(fake).with_request_deadline(deadline);
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(routes))
        .build("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = server.local_addr().expect("address");
    (addr, server.start(module))
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Reads one response from `stream` until the server closes it (requests say
/// `Connection: close`); `Content-Length` bodies only, which is all these routes send.
async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut raw = Vec::new();
    tokio::time::timeout(T, stream.read_to_end(&mut raw)).await.expect("answer in time").expect("read");
    parse(&raw)
}

fn parse(raw: &[u8]) -> Answer {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer { status, headers, body: raw[end + 4..].to_vec() }
}

async fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    read_answer(&mut stream).await
}

fn request(method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

fn post(body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const CHAIN_HEAD: &str = r#"{"jsonrpc":"2.0","id":1,"method":"chain_head"}"#;

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

#[test]
fn routes_by_method_and_path() {
    use Route::*;
    let cases = [
        (Method::POST, "/", false, JsonRpc),
        (Method::GET, "/", true, JsonRpc),
        (Method::GET, "/", false, Page),
        (Method::HEAD, "/", false, Page),
        (Method::GET, INDEX_PATH, false, Page),
        (Method::PUT, "/", false, NotAllowed("GET, HEAD, POST")),
        (Method::POST, INDEX_PATH, false, NotAllowed("GET, HEAD")),
        (Method::GET, INDEX_PATH, true, Page),
        (Method::GET, MODEL_FILE_PATH, false, ModelFile),
        (Method::HEAD, MODEL_FILE_PATH, false, NotAllowed("GET")),
        (Method::GET, "/favicon.ico", false, NotFound),
        (Method::POST, "/rpc", false, NotFound),
        (Method::GET, "/ws", true, NotFound),
        (Method::GET, "//", false, NotFound),
        (Method::GET, "/index.html/", false, NotFound),
    ];
    for (method, path, upgrade, want) in cases {
        assert_eq!(route(&method, path, upgrade), want, "{method} {path} (upgrade: {upgrade})");
    }
}

#[test]
fn model_file_queries() {
    assert_eq!(parse_height(None), Ok(None));
    assert_eq!(parse_height(Some("")), Ok(None));
    assert_eq!(parse_height(Some("height=12")), Ok(Some(12)));
    assert!(parse_height(Some("height=x")).expect_err("refused").contains("\"x\""));
    assert!(parse_height(Some("height=1&height=2")).expect_err("refused").contains("twice"));
    assert!(parse_height(Some("h=1")).expect_err("refused").contains("\"h=1\""));
}

#[tokio::test]
async fn the_page_is_served_at_the_root_with_its_policy() {
    let (_fake, _, server) = start().await;
    let addr = server.local_addr();
    let page = &*explorer::PAGE;
    for path in ["/", INDEX_PATH, "/?from=bookmark"] {
        let a = exchange(addr, &request("GET", path, "")).await;
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(a.body, page.html.as_bytes(), "{path}");
        assert_eq!(a.header("content-security-policy"), Some(page.csp.as_str()));
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(a.header("cache-control"), Some("no-cache"));
        assert_eq!(a.header("x-frame-options"), Some("DENY"));
        assert_eq!(a.header("etag"), Some(page.etag.as_str()));
    }
    let head = exchange(addr, &request("HEAD", "/", "")).await;
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(head.header("content-security-policy"), Some(page.csp.as_str()));

    // A browser holding this page revalidates and gets 304 with no body.
    for tag in [page.etag.clone(), format!("W/{}", page.etag), format!("\"other\", {}", page.etag)] {
        let a = exchange(addr, &request("GET", "/", &format!("If-None-Match: {tag}\r\n"))).await;
        assert_eq!((a.status, a.body.len()), (304, 0), "{tag}");
        assert_eq!(a.header("etag"), Some(page.etag.as_str()));
    }
    let stale = exchange(addr, &request("GET", "/", "If-None-Match: \"an-older-build\"\r\n")).await;
    assert_eq!(stale.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405() {
    let (_fake, _, server) = start().await;
    let addr = server.local_addr();
    for (method, path) in [
        ("GET", "/favicon.ico"),
        ("GET", "/index.htm"),
        ("GET", "/model.safetensors/1"),
        ("POST", "/rpc"),
        ("GET", "/%3Cscript%3E"),
    ] {
        let a = exchange(addr, &request(method, path, "")).await;
        assert_eq!(a.status, 404, "{method} {path}");
        assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        assert!(!a.text().contains("script"), "the path is not echoed: {}", a.text());
    }
    // A WebSocket upgrade elsewhere than / is not JSON-RPC either.
    let a = exchange(addr, &request("GET", "/ws", UPGRADE)).await;
    assert_eq!(a.status, 404);
    for (method, path, allow) in [
        ("PUT", "/", "GET, HEAD, POST"),
        ("DELETE", "/", "GET, HEAD, POST"),
        ("POST", INDEX_PATH, "GET, HEAD"),
        ("POST", MODEL_FILE_PATH, "GET"),
    ] {
        let a = exchange(addr, &request(method, path, "Content-Length: 0\r\n")).await;
        assert_eq!(a.status, 405, "{method} {path}");
        assert_eq!(a.header("allow"), Some(allow), "{method} {path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn json_rpc_and_websocket_still_answer_on_the_root() {
    let (_fake, _, server) = start().await;
    let addr = server.local_addr();
    let a = exchange(addr, &post(CHAIN_HEAD)).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["result"]["height"], 5, "{}", a.text());
    // The WebSocket handshake on / reaches jsonrpsee.
    let mut ws = TcpStream::connect(addr).await.expect("connect");
    ws.write_all(format!("GET / HTTP/1.1\r\nHost: localhost\r\n{UPGRADE}\r\n").as_bytes()).await.expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tokio::time::timeout(T, ws.read_u8()).await.expect("in time").expect("handshake answer"));
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    drop(ws);
    server.stop().await;
}

#[tokio::test]
async fn another_sites_page_cannot_call_the_node() {
    let (_fake, _, server) = start().await;
    let addr = server.local_addr();
    // The explorer's own origin (the Host it was served from) is let through.
    let same = format!("GET / HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost\r\n{UPGRADE}\r\n");
    let mut ws = TcpStream::connect(addr).await.expect("connect");
    ws.write_all(same.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tokio::time::timeout(T, ws.read_u8()).await.expect("in time").expect("handshake answer"));
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    drop(ws);
    // A WebSocket or a POST from another origin is refused before jsonrpsee sees it.
    let foreign = format!("GET / HTTP/1.1\r\nHost: localhost\r\nOrigin: http://evil.example\r\n{UPGRADE}\r\n");
    let a = exchange(addr, foreign.as_bytes()).await;
    assert_eq!(a.status, 403, "{}", a.text());
    assert!(a.text().contains("cross-origin"), "{}", a.text());
    let body = CHAIN_HEAD;
    let foreign_post = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nOrigin: null\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(exchange(addr, foreign_post.as_bytes()).await.status, 403);
    server.stop().await;
}

#[tokio::test]
async fn the_model_file_route_serves_at_most_a_few_at_once() {
    let (fake, mut entered, server) = start().await;
    let addr = server.local_addr();
    let a = exchange(addr, &request("GET", "/model.safetensors?height=3", "")).await;
    assert_eq!((a.status, a.body.as_slice()), (200, b"model file Some(3)".as_slice()));
    assert_eq!(a.header("content-disposition"), Some("attachment; filename=\"model-3.safetensors\""));
    let a = exchange(addr, &request("GET", "/model.safetensors?height=99", "")).await;
    assert_eq!(a.status, 404);
    let a = exchange(addr, &request("GET", "/model.safetensors?h=1", "")).await;
    assert_eq!(a.status, 400);

    // MAX_MODEL_FILE_TASKS requests held inside the node; one more is turned away at once.
    let mut held = Vec::new();
    for _ in 0..MAX_MODEL_FILE_TASKS {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(&request("GET", &format!("/model.safetensors?height={GATED_HEIGHT}"), "")).await.expect("write");
        held.push(stream);
        tokio::time::timeout(T, entered.recv()).await.expect("the node is asked").expect("channel");
    }
    let busy = exchange(addr, &request("GET", "/model.safetensors?height=1", "")).await;
    assert_eq!(busy.status, 503, "{}", busy.text());
    assert!(busy.text().contains("busy"), "{}", busy.text());
    // JSON-RPC and the page do not wait for model files.
    assert_eq!(exchange(addr, &post(CHAIN_HEAD)).await.json()["result"]["height"], 5);
    assert_eq!(exchange(addr, &request("GET", "/", "")).await.status, 200);
    fake.open_gate();
    for mut stream in held {
        assert_eq!(read_answer(&mut stream).await.status, 200);
    }
    let a = exchange(addr, &request("GET", "/model.safetensors", "")).await;
    assert_eq!((a.status, a.body.as_slice()), (200, b"model file None".as_slice()));
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_request_line_does_not_stop_other_clients() {
    let (_fake, _, server) = start().await;
    let addr = server.local_addr();
    let mut stalled = TcpStream::connect(addr).await.expect("connect");
    stalled.write_all(b"GET /inde").await.expect("write");
    // While it stalls, others are served: the page, JSON-RPC, more than once.
    for _ in 0..3 {
        assert_eq!(exchange(addr, &request("GET", "/", "")).await.status, 200);
        assert_eq!(exchange(addr, &post(CHAIN_HEAD)).await.json()["result"]["height"], 5);
    }
    // The stalled connection was waiting all along, and is answered once it completes.
    stalled.write_all(b"x.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.expect("write");
    assert_eq!(read_answer(&mut stalled).await.status, 200);
    server.stop().await;
}

/// A second request on a kept-alive connection would have no header deadline (jsonrpsee
/// runs hyper without a timer), so the server answers one request per connection and
/// closes it, for every route but the WebSocket handshake.
#[tokio::test]
async fn every_connection_carries_one_request() {
    let (_fake, _, server) = start().await;
    let addr = server.local_addr();
    let keep_alive = |method: &str, path: &str| format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes();
    let json_rpc = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{CHAIN_HEAD}",
        CHAIN_HEAD.len()
    );
    for request in [
        keep_alive("GET", "/"),
        keep_alive("GET", "/nope"),
        keep_alive("PUT", "/"),
        keep_alive("GET", "/model.safetensors?height=2"),
        json_rpc.into_bytes(),
    ] {
        // read_answer reads until the server closes the connection.
        let a = exchange(addr, &request).await;
        assert_eq!(a.header("connection"), Some("close"), "{}", String::from_utf8_lossy(&request));
    }
    server.stop().await;
}

/// A client that sends its headers and then its body too slowly holds one of jsonrpsee's
/// connection slots; the request deadline answers it 408 and frees the slot.
#[tokio::test]
async fn a_slow_body_is_cut_off_at_the_deadline_and_frees_its_slot() {
    let deadline = Duration::from_millis(400);
    let config = ServerConfig::builder().max_connections(1).build();
    let (addr, server) = start_with(config, deadline).await;
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    slow.write_all(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    // hyper sends 100 Continue once jsonrpsee reads the body, so the slot is taken by then.
    let mut interim = [0u8; 25];
    tokio::time::timeout(T, slow.read_exact(&mut interim)).await.expect("in time").expect("100 Continue");
    assert!(interim.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"), "{}", String::from_utf8_lossy(&interim));
    slow.write_all(&CHAIN_HEAD.as_bytes()[..10]).await.expect("write");
    // The only slot is held: another caller is refused for now.
    let refused = exchange(addr, &post(CHAIN_HEAD)).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    let cut = read_answer(&mut slow).await;
    assert_eq!(cut.status, 408, "{}", cut.text());
    assert!(started.elapsed() >= deadline);
    // The slot is free again.
    let a = exchange(addr, &post(CHAIN_HEAD)).await;
    assert_eq!(a.json()["result"]["height"], 5, "{}", a.text());
    let _ = server.stop();
    server.stopped().await;
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let config = ServerConfig::builder().max_request_body_size(1024).build();
    let (addr, server) = start_with(config, DEFAULT_REQUEST_DEADLINE).await;
    // Announced too large: refused from the headers.
    let a = exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 5000\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 413);
    // Not announced (chunked) and too large: refused once the limit is passed.
    let chunk = format!("{:x}\r\n{}\r\n", 4096, " ".repeat(4096));
    let mut chunked = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    chunked.extend(chunk.as_bytes());
    chunked.extend(b"0\r\n\r\n");
    // jsonrpsee stops reading at the limit but reports it as an internal error (its body
    // reader surfaces the limit as a stream error), not as 413.
    let a = exchange(addr, &chunked).await;
    assert_eq!((a.status, a.json()["error"]["code"].as_i64()), (500, Some(-32603)), "{}", a.text());
    // Headers beyond hyper's buffer: refused (431) without reaching any route.
    let huge = request("GET", "/", &format!("X-Padding: {}\r\n", "a".repeat(512 * 1024)));
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may close before reading it all; what it answered is what counts.
    let _ = stream.write_all(&huge).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(T, stream.read_to_end(&mut raw)).await.expect("answer in time");
    assert!(raw.starts_with(b"HTTP/1.1 431"), "{}", String::from_utf8_lossy(&raw[..raw.len().min(200)]));
    // And the server goes on serving.
    assert_eq!(exchange(addr, &request("GET", "/", "")).await.status, 200);
    let _ = server.stop();
    server.stopped().await;
}
