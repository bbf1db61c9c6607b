//! Starting and stopping the JSON-RPC server: [`RpcConfig`], [`RpcServer`], [`start`],
//! [`RpcHandle`].
//!
//! One jsonrpsee server answers HTTP POST and WebSocket on the same port, with the plain
//! HTTP routes of [`crate::http`] beside them (the web explorer at `GET /`, `GET
//! /model.safetensors`; 404 for any other path). The node
//! passes the address (its default is `127.0.0.1`; port 0 picks a free port, which
//! [`RpcHandle::local_addr`] reports). Every byte from a client is bounded before it is
//! buffered: the request body size, the number of connections, subscriptions per
//! connection and the batch length are all limits of [`RpcConfig`]; the response limit
//! is large because `model_get` returns whole weight vectors. The server runs on its
//! own tokio tasks; [`RpcHandle::stop`] stops accepting, lets open connections finish
//! and returns when the last one has closed. Dropping the handle also stops the server
//! (without waiting), so the node must keep it for as long as the RPC should run.

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::server::{BatchRequestConfig, Server, ServerConfig, ServerHandle};
use serde::{Deserialize, Serialize};

use crate::api::NodeApi;
use crate::methods;

/// 1 MiB: default bound of a request body (and of a WebSocket message).
pub const DEFAULT_MAX_REQUEST_BYTES: u32 = 1024 * 1024;
/// 64 MiB: default bound of a response, large enough for a model's weights.
pub const DEFAULT_MAX_RESPONSE_BYTES: u32 = 64 * 1024 * 1024;
/// Default bound of simultaneous connections (HTTP and WebSocket together).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 64;
/// Default bound of subscriptions per WebSocket connection.
pub const DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION: u32 = 16;
/// Default bound of calls in one batch request.
pub const DEFAULT_MAX_BATCH_LEN: u32 = 32;

/// Limits of the RPC server. Every field has a default, so a TOML `[rpc]` table may
/// name only the ones it changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// Largest accepted request body or WebSocket message, in bytes.
    pub max_request_bytes: u32,
    /// Largest response, in bytes; a larger one is replaced by error -32008.
    pub max_response_bytes: u32,
    /// Most simultaneous connections; further ones are refused.
    pub max_connections: u32,
    /// Most subscriptions on one WebSocket connection.
    pub max_subscriptions_per_connection: u32,
    /// Most calls in one batch request; 0 disables batches.
    pub max_batch_len: u32,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_subscriptions_per_connection: DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
            max_batch_len: DEFAULT_MAX_BATCH_LEN,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The listening socket could not be bound (address in use, no permission).
    #[error("cannot bind the RPC server to {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The method table could not be built (a duplicate method name: a bug in this crate).
    #[error("cannot register RPC methods: {0}")]
    Methods(String),
}

/// A JSON-RPC server over a [`NodeApi`], configured by an [`RpcConfig`].
#[derive(Clone, Debug, Default)]
pub struct RpcServer {
    config: RpcConfig,
}

impl RpcServer {
    /// A server with these limits.
    pub fn new(config: RpcConfig) -> Self {
        Self { config }
    }

    /// The limits this server will run with.
    pub fn config(&self) -> &RpcConfig {
        &self.config
    }

    /// Binds `addr` and starts serving `api` on the current tokio runtime.
    pub async fn start(
        self,
        addr: SocketAddr,
        api: Arc<dyn NodeApi>,
    ) -> Result<RpcHandle, RpcError> {
        let module = methods::module(api.clone()).map_err(|e| RpcError::Methods(e.to_string()))?;
        let c = &self.config;
        let batches = match c.max_batch_len {
            0 => BatchRequestConfig::Disabled,
            n => BatchRequestConfig::Limit(n),
        };
        let server_config = ServerConfig::builder()
            .max_request_body_size(c.max_request_bytes)
            .max_response_body_size(c.max_response_bytes)
            .max_connections(c.max_connections)
            .max_subscriptions_per_connection(c.max_subscriptions_per_connection)
            .set_batch_request_config(batches)
            .build();
        let http_routes = tower::ServiceBuilder::new().layer(crate::http::HttpRoutes::new(api));
        let server = Server::builder()
            .set_config(server_config)
            .set_http_middleware(http_routes)
            .build(addr)
            .await
            .map_err(|source| RpcError::Bind { addr, source })?;
        let local_addr = server
            .local_addr()
            .map_err(|source| RpcError::Bind { addr, source })?;
        let handle = server.start(module);
        tracing::info!(addr = %local_addr, "JSON-RPC server listening (HTTP and WebSocket)");
        Ok(RpcHandle { local_addr, handle })
    }
}

/// Starts a server with the default [`RpcConfig`] on `addr`.
pub async fn start(addr: SocketAddr, api: Arc<dyn NodeApi>) -> Result<RpcHandle, RpcError> {
    RpcServer::default().start(addr, api).await
}

/// A running server. Dropping it stops the server without waiting for it.
#[derive(Debug)]
pub struct RpcHandle {
    local_addr: SocketAddr,
    handle: ServerHandle,
}

impl RpcHandle {
    /// The address the server is bound to (the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections and waits until every open connection has closed:
    /// HTTP calls in flight are answered, WebSocket connections are closed.
    pub async fn stop(self) {
        // Err only if it was already stopped, which is the state we want.
        let _ = self.handle.stop();
        self.handle.stopped().await;
        tracing::info!(addr = %self.local_addr, "JSON-RPC server stopped");
    }
}
