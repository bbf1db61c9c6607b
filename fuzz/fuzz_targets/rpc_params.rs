//! JSON-RPC requests to the node's RPC server (crates/rpc): the method table and its
//! parameter parsing (`methods::module` and the private `params` module are not public, so the
//! real server, `RpcServer::start`, runs once on 127.0.0.1:0 over a fake `NodeApi`, and each
//! input is one HTTP request on a kept-alive connection). The first input byte selects the
//! form: `b % 4` = 0: the rest is a whole JSON-RPC body (single call or batch) POSTed to `/`;
//! 1: the rest is the `params` of the method `RPC_METHODS[second byte]`; 2: the rest is the
//! query of `GET /model.safetensors?…` (the plain-HTTP route of crates/rpc/src/http.rs; bytes
//! a URI cannot carry are percent-encoded); 3: the rest is POSTed to `/model.safetensors`.
//!
//! Asserts: no panic anywhere in the server (libFuzzer aborts on a panic in any thread);
//! every JSON-RPC answer is JSON, with HTTP 200 (or 400 for a parse error or an invalid
//! request); the fake node only ever sees
//! parameters the server promises to have checked (a block hash normalised to 64 lower-case
//! hex digits; a registration of 1 to 512 bytes, which the fake decodes and checks as the
//! node does); an invalid-params error message stays short whatever the request held
//! (crates/rpc/src/params.rs: "an error message never grows with the request").
#![no_main]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use learnchain_fuzz::{check_registration, fixture};
use learnchain_proto::registration::MAX_REGISTRATION_BYTES;
use learnchain_proto::{Registration, decode};
use learnchain_rpc::{
    AggregateReportView, ApiError, BanView, BlockRef, BlockView, HeadView, MembersView, MempoolView, MetricsView, ModelView,
    NodeApi, NodeInfoView, PeerView, PrivacyStatusView, RpcConfig, RpcServer,
};
use libfuzzer_sys::fuzz_target;
use tokio::sync::broadcast;

/// Every method name of the server.
const RPC_METHODS: &[&str] = &[
    "chain_head",
    "chain_getBlock",
    "model_get",
    "model_metrics",
    "net_peers",
    "node_info",
    "mempool_content",
    "privacy_status",
    "aggregate_report",
    "members_list",
    "members_register",
    "rpc_methods",
    "chain_subscribeHeads",
    "chain_unsubscribeHeads",
    "net_bans",
    "no_such_method",
];

/// Longest invalid-params message accepted, in characters (the server quotes at most 80
/// characters of any value it received, and each may be escaped).
const MAX_ERROR_CHARS: usize = 2048;

struct FakeNode {
    heads: broadcast::Sender<HeadView>,
}

fn not_found<T>() -> Result<T, ApiError> {
    Err(ApiError::NotFound("fuzz node".into()))
}

fn check_ref(at: &BlockRef) {
    if let BlockRef::Hash(h) = at {
        assert!(
            h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "the server passed the node a block hash that is not 64 lower-case hex digits: {h:?}"
        );
    }
}

impl NodeApi for FakeNode {
    fn chain_head(&self) -> Result<HeadView, ApiError> {
        not_found()
    }
    fn block(&self, at: BlockRef) -> Result<BlockView, ApiError> {
        check_ref(&at);
        not_found()
    }
    fn model(&self, _: Option<u64>) -> Result<ModelView, ApiError> {
        not_found()
    }
    fn model_file(&self, _: Option<u64>) -> Result<Vec<u8>, ApiError> {
        Ok(b"not a model".to_vec())
    }
    fn model_metrics(&self, _: Option<u64>) -> Result<MetricsView, ApiError> {
        Err(ApiError::Unavailable("fuzz node".into()))
    }
    fn peers(&self) -> Result<Vec<PeerView>, ApiError> {
        Ok(Vec::new())
    }
    fn bans(&self) -> Result<Vec<BanView>, ApiError> {
        Ok(Vec::new())
    }
    fn node_info(&self) -> Result<NodeInfoView, ApiError> {
        not_found()
    }
    fn mempool(&self) -> Result<MempoolView, ApiError> {
        not_found()
    }
    fn privacy_status(&self) -> Result<PrivacyStatusView, ApiError> {
        not_found()
    }
    fn aggregate_report(&self, at: BlockRef) -> Result<AggregateReportView, ApiError> {
        check_ref(&at);
        not_found()
    }
    fn members(&self) -> Result<MembersView, ApiError> {
        not_found()
    }
    fn submit_registration(&self, bytes: Vec<u8>) -> Result<String, ApiError> {
        assert!(!bytes.is_empty() && bytes.len() <= 512, "the server passed {} registration bytes", bytes.len());
        // As the node does (node/src/rpc_api.rs): decode, then check.
        let r: Registration =
            decode(&bytes, MAX_REGISTRATION_BYTES).map_err(|e| ApiError::InvalidParams(format!("registration: {e}")))?;
        let id = check_registration(fixture(0), &r).map_err(ApiError::InvalidParams)?;
        Ok(id.to_hex())
    }
    fn subscribe_heads(&self) -> broadcast::Receiver<HeadView> {
        self.heads.subscribe()
    }
}

/// The server's address; started once, on a runtime of its own thread.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .max_blocking_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let api = std::sync::Arc::new(FakeNode { heads: broadcast::channel(4).0 });
                let handle = RpcServer::new(RpcConfig::default())
                    .start("127.0.0.1:0".parse().expect("address"), api)
                    .await
                    .expect("the RPC server starts");
                tx.send(handle.local_addr()).expect("address sent");
                std::future::pending::<()>().await;
                drop(handle);
            });
        });
        rx.recv().expect("the RPC server started")
    })
}

/// The kept-alive connection.
static CONN: Mutex<Option<BufReader<TcpStream>>> = Mutex::new(None);

fn connect() -> BufReader<TcpStream> {
    let stream = TcpStream::connect(server()).expect("connect to the RPC server");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    BufReader::new(stream)
}

/// Sends one request and returns the status and body; reconnects once if the kept-alive
/// connection was closed.
fn exchange(head: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut guard = CONN.lock().unwrap_or_else(|p| p.into_inner());
    for attempt in 0..2 {
        let conn = guard.get_or_insert_with(connect);
        match send(conn, head, body) {
            Ok((status, body, keep)) => {
                if !keep {
                    *guard = None;
                }
                return (status, body);
            }
            Err(e) => {
                *guard = None;
                assert!(attempt == 0, "the RPC server did not answer twice: {e}");
            }
        }
    }
    unreachable!("returned or asserted above")
}

fn send(conn: &mut BufReader<TcpStream>, head: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>, bool)> {
    let mut request = format!("{head}\r\nHost: fuzz\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    request.extend_from_slice(body);
    conn.get_mut().write_all(&request)?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(bad("closed"));
    }
    let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("status line"))?;
    let (mut length, mut chunked, mut keep) = (None, false, true);
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Err(bad("closed in the head"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((name, value)) = l.split_once(':') else { continue };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_ascii_lowercase());
        match name.as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.contains("chunked"),
            "connection" => keep = !value.contains("close"),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if chunked {
        loop {
            line.clear();
            conn.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).map_err(|_| bad("chunk size"))?;
            let mut chunk = vec![0; size + 2];
            conn.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        out.resize(n, 0);
        conn.read_exact(&mut out)?;
    } else {
        conn.read_to_end(&mut out)?;
        keep = false;
    }
    Ok((status, out, keep))
}

/// `bytes` as a URI query: unreserved characters and `&`, `=` kept, everything else
/// percent-encoded.
fn query(bytes: &[u8]) -> String {
    let mut q = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~&=".contains(&b) {
            q.push(b as char);
        } else {
            q.push_str(&format!("%{b:02X}"));
        }
    }
    q
}

fn check_json_rpc(status: u16, body: &[u8], single: bool) {
    let value: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("the JSON-RPC answer (HTTP {status}) is not JSON ({e}): {}", String::from_utf8_lossy(body)));
    // jsonrpsee answers a body that is not JSON (-32700) or not a request (-32600) with 400.
    let code = value.get("error").and_then(|e| e.get("code")).and_then(serde_json::Value::as_i64);
    assert!(
        status == 200 || (status == 400 && matches!(code, Some(-32700 | -32600))),
        "JSON-RPC answered with HTTP {status}: {value}"
    );
    if !single {
        return;
    }
    if let Some(err) = value.get("error")
        && err.get("code").and_then(serde_json::Value::as_i64) == Some(-32602)
    {
        let message = err.get("message").and_then(serde_json::Value::as_str).unwrap_or("");
        assert!(
            message.chars().count() <= MAX_ERROR_CHARS,
            "an invalid-params message of {} characters",
            message.chars().count()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 4 {
        0 => {
            let (status, body) = exchange("POST / HTTP/1.1\r\nContent-Type: application/json", rest);
            // An empty batch or an unparsable body still gets a JSON answer; a request of
            // only notifications gets none.
            if !body.is_empty() {
                check_json_rpc(status, &body, false);
            }
        }
        1 => {
            let Some((&m, params)) = rest.split_first() else { return };
            let method = RPC_METHODS[usize::from(m) % RPC_METHODS.len()];
            let mut request = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":"#).into_bytes();
            request.extend_from_slice(params);
            request.push(b'}');
            let (status, body) = exchange("POST / HTTP/1.1\r\nContent-Type: application/json", &request);
            check_json_rpc(status, &body, true);
        }
        2 => {
            let (status, _) = exchange(&format!("GET /model.safetensors?{} HTTP/1.1", query(rest)), &[]);
            assert!(matches!(status, 200 | 400 | 404), "GET /model.safetensors answered {status}");
        }
        _ => {
            let (status, _) = exchange("POST /model.safetensors HTTP/1.1", rest);
            assert_eq!(status, 405);
        }
    }
});
