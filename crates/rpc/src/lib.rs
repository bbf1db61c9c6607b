//! `learnchain-rpc`: the node's JSON-RPC 2.0 server (HTTP POST and WebSocket on one
//! port) and a minimal HTTP client for it.
//!
//! The crate knows nothing of the node's internals. The node implements [`NodeApi`]
//! and hands an `Arc<dyn NodeApi>` to [`start`] (or [`RpcServer::start`] with its own
//! [`RpcConfig`]); the server answers from it with the plain serde views of [`types`],
//! whose hashes are hex strings. Errors the node returns are [`ApiError`]s, each with
//! its own JSON-RPC code.
//!
//! | method | params | result |
//! |---|---|---|
//! | `chain_head` | — | [`HeadView`] |
//! | `chain_getBlock` | height, or hash (64 hex, optional `0x`) | [`BlockView`] |
//! | `model_get` | optional height (absent/`null` = head) | [`ModelView`] |
//! | `model_metrics` | optional height | [`MetricsView`] |
//! | `net_peers` | — | array of [`PeerView`] |
//! | `net_bans` | — | array of [`BanView`] |
//! | `node_info` | — | [`NodeInfoView`] |
//! | `mempool_content` | — | [`MempoolView`] |
//! | `privacy_status` | — | [`PrivacyStatusView`] |
//! | `members_list` | — | [`MembersView`] |
//! | `aggregate_report` | height, or hash (64 hex, optional `0x`) | [`AggregateReportView`] |
//! | `members_register` | registration: hex (optional `0x`) of its canonical bytes, at most 512 bytes | registration id, hex |
//! | `rpc_methods` | — | `[string]`, sorted |
//! | `rpc.discover` | — | the OpenRPC 1.x document of every method, with params and result schemas ([`openrpc`]) |
//! | `chain_subscribeHeads` / `chain_unsubscribeHeads` | — / subscription id | WebSocket notifications `chain_head` carrying [`HeadView`] |
//!
//! Beside JSON-RPC, the port answers plain HTTP routes ([`http`]): `GET /` the web explorer
//! (one embedded page over this same JSON-RPC), `GET /model.safetensors?height=H` the model
//! file of that block (absent height: the head); any other path is 404.
//!
//! Error codes: -32700 malformed JSON, -32600 invalid request, -32601 unknown method,
//! -32602 invalid params, -32603 internal, -32001 not found, -32002 unavailable on this
//! node, -32007/-32008 request/response too large.
//!
//! [`metrics`] serves the node's Prometheus registry at `GET /metrics` on an address of its
//! own (`--metrics`).
//!
//! [`ws_client`] is a minimal WebSocket client for text messages (head subscriptions from
//! scripts and tests).
//!
//! [`client`] is a dependency-free async HTTP/1.1 JSON-RPC client used by the devnet
//! driver and end-to-end tests.

pub mod api;
pub mod client;
pub mod http;
pub mod methods;
pub mod metrics;
pub mod openrpc;
mod params;
pub mod server;
pub mod types;
pub mod ws_client;

pub use api::{ApiError, BlockRef, NodeApi};
pub use server::{RpcConfig, RpcError, RpcHandle, RpcServer, start};
pub use types::{
    AggregateReportView, BlockView, HeadView, MemberView, MembersView, MempoolView, MetricsView,
    ModelView, NodeInfoView, PeerView, BanView, PrivacyStatusView, RegistrationView,
    SubmissionAggregationView, SubmissionView,
};
