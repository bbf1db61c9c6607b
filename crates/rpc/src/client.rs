//! A minimal async JSON-RPC 2.0 client over HTTP/1.1, on a bare `tokio::net::TcpStream`.
//!
//! Used by the devnet driver and end-to-end tests to talk to a node's RPC server without
//! pulling in an HTTP stack. Each [`call`] opens one connection, sends one
//! `POST /` with `Content-Type: application/json` and `Connection: close`, reads one
//! response and closes. The response is read with limits checked before allocating:
//! the status line and headers together may not exceed [`MAX_HEADER_BYTES`], and the
//! body (sized by `Content-Length`, by `chunked` transfer encoding, or read to EOF) may
//! not exceed [`MAX_RESPONSE_BYTES`]. The whole exchange, connect included, is bounded
//! by a timeout ([`DEFAULT_TIMEOUT`] for [`call`], the caller's for
//! [`call_with_timeout`]). A JSON-RPC error object becomes [`ClientError::Rpc`], also when
//! the server sent it with a non-2xx HTTP status (parse errors come back as 400).
//!
//! Typed wrappers ([`aggregate_report`], [`members_list`], [`members_register`]) call one
//! method each and parse its result into the view of [`crate::types`]; a result that does
//! not parse is [`ClientError::InvalidResponse`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::api::BlockRef;
use crate::methods;
use crate::types::{AggregateReportView, MembersView};

/// Largest response body accepted: 64 MiB (the server's default response limit).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Largest status line plus headers accepted: 64 KiB.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Timeout of [`call`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest chunk-size line of a chunked body.
const MAX_CHUNK_LINE_BYTES: usize = 1024;
/// How much of an unexpected body is kept in [`ClientError::Http`].
const MAX_ERROR_BODY_CHARS: usize = 512;

/// Request ids, unique within the process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, writing or reading failed.
    #[error("i/o error talking to {addr}: {source}")]
    Io {
        /// The server's address.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// No complete response within the timeout.
    #[error("no response from {addr} within {after:?}")]
    Timeout {
        /// The server's address.
        addr: SocketAddr,
        /// The timeout that expired.
        after: Duration,
    },
    /// The server answered with a non-2xx HTTP status and no JSON-RPC error object.
    #[error("HTTP status {status}: {body}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, lossily decoded.
        body: String,
    },
    /// The response is not well-formed HTTP or JSON-RPC.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The response body is larger than the limit.
    #[error("response larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The server returned a JSON-RPC error object.
    #[error("JSON-RPC error {code}: {message}")]
    Rpc {
        /// The error code (e.g. -32601 method not found).
        code: i64,
        /// The error message.
        message: String,
    },
}

/// Calls `method` with `params` (an array, an object, or `Value::Null` for none) on the
/// server at `addr` and returns the `result`, within [`DEFAULT_TIMEOUT`].
pub async fn call(addr: SocketAddr, method: &str, params: Value) -> Result<Value, ClientError> {
    call_with_timeout(addr, method, params, DEFAULT_TIMEOUT).await
}

/// Like [`call`], with the whole exchange (connect, send, receive) bounded by `timeout`.
pub async fn call_with_timeout(
    addr: SocketAddr,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Result<Value, ClientError> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut request = json!({ "jsonrpc": "2.0", "id": id, "method": method });
    if !params.is_null() {
        request["params"] = params;
    }
    let body = request.to_string();
    let exchange = async {
        let (status, body) = post(addr, body.as_bytes()).await?;
        interpret(id, status, &body)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout {
            addr,
            after: timeout,
        })?
}

/// Like [`call_with_timeout`], with the result parsed into `T` (a view of
/// [`crate::types`]).
pub async fn call_typed<T: DeserializeOwned>(
    addr: SocketAddr,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Result<T, ClientError> {
    let result = call_with_timeout(addr, method, params, timeout).await?;
    typed(method, result)
}

/// `aggregate_report(block)` on the server at `addr`: what the chain's aggregation rule
/// did with each submission of the block `at` (a height, or a block hash as hex with an
/// optional `0x`). An unknown block comes back as [`ClientError::Rpc`] with code -32001.
pub async fn aggregate_report(
    addr: SocketAddr,
    at: BlockRef,
) -> Result<AggregateReportView, ClientError> {
    let block = match at {
        BlockRef::Height(height) => json!(height),
        BlockRef::Hash(hash) => json!(hash),
    };
    let result = call(addr, methods::AGGREGATE_REPORT, json!([block])).await?;
    typed(methods::AGGREGATE_REPORT, result)
}

/// `members_list()` on the server at `addr`: its member registry after the head.
pub async fn members_list(addr: SocketAddr) -> Result<MembersView, ClientError> {
    let result = call(addr, methods::MEMBERS_LIST, Value::Null).await?;
    typed(methods::MEMBERS_LIST, result)
}

/// `members_register(registration)` on the server at `addr`: submits a registration given
/// as the hex (optional `0x`) of its canonical encoding and returns its id (hex). A
/// registration the node refuses comes back as [`ClientError::Rpc`] with code -32602.
pub async fn members_register(addr: SocketAddr, hex: &str) -> Result<String, ClientError> {
    let result = call(addr, methods::MEMBERS_REGISTER, json!([hex])).await?;
    typed(methods::MEMBERS_REGISTER, result)
}

/// Parses the result of `method` into its view.
fn typed<T: DeserializeOwned>(method: &str, result: Value) -> Result<T, ClientError> {
    serde_json::from_value(result)
        .map_err(|e| ClientError::InvalidResponse(format!("{method} result does not parse: {e}")))
}

/// `GET path_and_query` on the server at `addr` (a plain HTTP route beside JSON-RPC, such
/// as `/model.safetensors?height=3`): the body of a 2xx answer, or [`ClientError::Http`]
/// with the status and the start of the body. Bounded by `timeout` and
/// [`MAX_RESPONSE_BYTES`].
pub async fn get(addr: SocketAddr, path_and_query: &str, timeout: Duration) -> Result<Vec<u8>, ClientError> {
    let exchange = async {
        let head = format!("GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        let (status, body) = send(addr, head.as_bytes(), &[]).await?;
        if (200..300).contains(&status) { Ok(body) } else { Err(http_error(status, &body)) }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout { addr, after: timeout })?
}

/// Sends one POST and returns the status and the body.
async fn post(addr: SocketAddr, body: &[u8]) -> Result<(u16, Vec<u8>), ClientError> {
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    send(addr, head.as_bytes(), body).await
}

/// Sends one request (its head, then its body) and reads the response.
async fn send(addr: SocketAddr, head: &[u8], body: &[u8]) -> Result<(u16, Vec<u8>), ClientError> {
    let io = |source| ClientError::Io { addr, source };
    let mut stream = TcpStream::connect(addr).await.map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    stream.write_all(head).await.map_err(io)?;
    stream.write_all(body).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    read_response(BufReader::new(stream), MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| match e {
            ReadError::Io(source) => ClientError::Io { addr, source },
            ReadError::Client(e) => e,
        })
}

/// Turns an HTTP response into the call's result.
fn interpret(id: u64, status: u16, body: &[u8]) -> Result<Value, ClientError> {
    let success = (200..300).contains(&status);
    let response: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) if !success => return Err(http_error(status, body)),
        Err(e) if body.is_empty() => {
            return Err(ClientError::InvalidResponse(format!(
                "empty response body ({e})"
            )));
        }
        Err(e) => {
            return Err(ClientError::InvalidResponse(format!(
                "body is not JSON: {e}"
            )));
        }
    };
    let Value::Object(mut response) = response else {
        return Err(invalid_or_http(
            success,
            status,
            body,
            "response is not a JSON object",
        ));
    };
    if let Some(error) = response.remove("error") {
        let code = error.get("code").and_then(Value::as_i64);
        let message = error.get("message").and_then(Value::as_str);
        return match (code, message) {
            (Some(code), Some(message)) => Err(ClientError::Rpc {
                code,
                message: message.to_owned(),
            }),
            _ => Err(ClientError::InvalidResponse(format!(
                "malformed error object: {error}"
            ))),
        };
    }
    if !success {
        return Err(http_error(status, body));
    }
    if response.get("id").and_then(Value::as_u64) != Some(id) {
        return Err(ClientError::InvalidResponse(format!(
            "response id {} does not match request id {id}",
            response.get("id").unwrap_or(&Value::Null)
        )));
    }
    response
        .remove("result")
        .ok_or_else(|| ClientError::InvalidResponse("response has neither result nor error".into()))
}

fn invalid_or_http(success: bool, status: u16, body: &[u8], what: &str) -> ClientError {
    if success {
        ClientError::InvalidResponse(what.to_owned())
    } else {
        http_error(status, body)
    }
}

fn http_error(status: u16, body: &[u8]) -> ClientError {
    let body = String::from_utf8_lossy(body)
        .chars()
        .take(MAX_ERROR_BODY_CHARS)
        .collect();
    ClientError::Http { status, body }
}

/// An error while reading a response: I/O (the caller adds the address) or a protocol error.
#[derive(Debug)]
enum ReadError {
    Io(std::io::Error),
    Client(ClientError),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl From<ClientError> for ReadError {
    fn from(e: ClientError) -> Self {
        ReadError::Client(e)
    }
}

fn invalid(msg: impl Into<String>) -> ReadError {
    ReadError::Client(ClientError::InvalidResponse(msg.into()))
}

/// How the body's end is marked.
enum Framing {
    Length(usize),
    Chunked,
    UntilEof,
}

/// Reads one HTTP/1.x response (skipping interim 1xx responses) with a body of at most
/// `max_body` bytes.
async fn read_response<R>(mut r: R, max_body: usize) -> Result<(u16, Vec<u8>), ReadError>
where
    R: AsyncBufRead + Unpin,
{
    let mut header_budget = MAX_HEADER_BYTES;
    let (status, framing) = loop {
        let (status, framing) = read_head(&mut r, &mut header_budget).await?;
        if !(100..200).contains(&status) {
            break (status, framing);
        }
    };
    let body = match framing {
        Framing::Length(len) => {
            if len > max_body {
                return Err(ClientError::TooLarge { limit: max_body }.into());
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).await.map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => invalid(format!(
                    "connection closed before the {len}-byte body was read"
                )),
                _ => ReadError::Io(e),
            })?;
            body
        }
        Framing::Chunked => read_chunked(&mut r, max_body).await?,
        Framing::UntilEof => {
            let mut body = Vec::new();
            let cap = u64::try_from(max_body)
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            (&mut r).take(cap).read_to_end(&mut body).await?;
            if body.len() > max_body {
                return Err(ClientError::TooLarge { limit: max_body }.into());
            }
            body
        }
    };
    Ok((status, body))
}

/// Reads a status line and headers; returns the status and the body framing.
async fn read_head<R>(r: &mut R, budget: &mut usize) -> Result<(u16, Framing), ReadError>
where
    R: AsyncBufRead + Unpin,
{
    let status_line = read_line(r, budget, "status line").await?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!(
            "not an HTTP/1.x status line: {status_line:?}"
        )));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or_else(|| invalid(format!("bad status code in {status_line:?}")))?;

    let mut length: Option<usize> = None;
    let mut chunked = false;
    loop {
        let line = read_line(r, budget, "headers").await?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid(format!("malformed header line {line:?}")));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            let len = value
                .parse::<usize>()
                .map_err(|_| invalid(format!("bad Content-Length {value:?}")))?;
            if length.is_some_and(|l| l != len) {
                return Err(invalid("conflicting Content-Length headers"));
            }
            length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        }
    }
    // A 1xx, 204 or 304 response has no body.
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(len) = length {
        Framing::Length(len)
    } else {
        Framing::UntilEof
    };
    Ok((status, framing))
}

/// Reads a `chunked` body, refusing to grow it past `max_body`. Trailers are skipped.
async fn read_chunked<R>(r: &mut R, max_body: usize) -> Result<Vec<u8>, ReadError>
where
    R: AsyncBufRead + Unpin,
{
    let mut body = Vec::new();
    loop {
        let mut budget = MAX_CHUNK_LINE_BYTES;
        let line = read_line(r, &mut budget, "chunk size").await?;
        let digits = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(digits, 16)
            .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            break;
        }
        if size > max_body - body.len() {
            return Err(ClientError::TooLarge { limit: max_body }.into());
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => invalid("connection closed inside a chunk"),
                _ => ReadError::Io(e),
            })?;
        let mut budget = MAX_CHUNK_LINE_BYTES;
        if !read_line(r, &mut budget, "chunk end").await?.is_empty() {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
    // Trailers up to the empty line; a server closing the connection here is fine.
    let mut budget = MAX_HEADER_BYTES;
    while let Ok(line) = read_line(r, &mut budget, "trailers").await {
        if line.is_empty() {
            break;
        }
    }
    Ok(body)
}

/// Reads one CRLF- (or LF-) terminated line of at most `budget` bytes, charging it to
/// the budget, and returns it without the terminator.
async fn read_line<R>(r: &mut R, budget: &mut usize, what: &str) -> Result<String, ReadError>
where
    R: AsyncBufRead + Unpin,
{
    let mut line = Vec::new();
    let limit = u64::try_from(*budget).unwrap_or(u64::MAX);
    let n = (&mut *r).take(limit).read_until(b'\n', &mut line).await?;
    if line.last() != Some(&b'\n') {
        return Err(if n == *budget {
            invalid(format!("response {what} exceed the size limit"))
        } else {
            invalid(format!("connection closed while reading the {what}"))
        });
    }
    *budget -= n;
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid(format!("response {what}: not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(raw: &[u8], max: usize) -> Result<(u16, Vec<u8>), ReadError> {
        read_response(raw, max).await
    }

    #[tokio::test]
    async fn content_length_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
        let (status, body) = parse(raw, 100).await.expect("must succeed");
        assert_eq!((status, body.as_slice()), (200, &b"hello"[..]));
    }

    #[tokio::test]
    async fn chunked_body_and_interim_response() {
        let raw =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                    3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: y\r\n\r\n";
        let (status, body) = parse(raw, 100).await.expect("must succeed");
        assert_eq!((status, body.as_slice()), (200, &b"abcde"[..]));
    }

    #[tokio::test]
    async fn body_until_eof() {
        let raw = b"HTTP/1.0 200 OK\n\n{\"a\":1}";
        let (_, body) = parse(raw, 100).await.expect("must succeed");
        assert_eq!(body, b"{\"a\":1}");
    }

    #[tokio::test]
    async fn limits_checked_before_allocating() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n";
        assert!(matches!(
            parse(raw, 1024).await,
            Err(ReadError::Client(ClientError::TooLarge { limit: 1024 }))
        ));
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n";
        assert!(matches!(
            parse(raw, 1024).await,
            Err(ReadError::Client(ClientError::TooLarge { .. }))
        ));
        let raw = b"HTTP/1.1 200 OK\r\n\r\n0123456789";
        assert!(matches!(
            parse(raw, 9).await,
            Err(ReadError::Client(ClientError::TooLarge { .. }))
        ));
        let mut raw = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', MAX_HEADER_BYTES));
        assert!(matches!(
            parse(&raw, 9).await,
            Err(ReadError::Client(ClientError::InvalidResponse(_)))
        ));
    }

    #[tokio::test]
    async fn malformed_heads() {
        for raw in [
            &b"SMTP 220 hi\r\n\r\n"[..],
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno-colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\n",
        ] {
            assert!(
                matches!(
                    parse(raw, 100).await,
                    Err(ReadError::Client(ClientError::InvalidResponse(_)))
                ),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn interpret_results_and_errors() {
        assert_eq!(
            interpret(7, 200, br#"{"jsonrpc":"2.0","id":7,"result":[1]}"#).expect("must succeed"),
            json!([1])
        );
        assert!(matches!(
            interpret(7, 200, br#"{"jsonrpc":"2.0","id":8,"result":1}"#),
            Err(ClientError::InvalidResponse(_))
        ));
        assert!(matches!(
            interpret(
                7,
                400,
                br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#
            ),
            Err(ClientError::Rpc { code: -32700, .. })
        ));
        assert!(matches!(
            interpret(7, 405, b"POST is required"),
            Err(ClientError::Http { status: 405, .. })
        ));
        assert!(matches!(
            interpret(7, 200, b""),
            Err(ClientError::InvalidResponse(_))
        ));
    }
}
