//! The boundary between the RPC server and the node: the [`NodeApi`] trait, the
//! [`BlockRef`] selector and the [`ApiError`] the node answers with.
//!
//! Data flows one way: a request enters through jsonrpsee, the handlers in
//! [`crate::methods`] parse and check its parameters, call one `NodeApi` method, and
//! serialise the returned view. The node implements this trait over its own shared state
//! (head snapshot, block store, model store, network handle); this crate never sees the
//! node's types, only the plain views of [`crate::types`] — the reth pattern of an
//! `*-api` trait that the implementation side fulfils.
//!
//! Every method is synchronous. The server calls each of them on tokio's blocking pool
//! (jsonrpsee's `register_blocking_method`), so an implementation may take a
//! `std::sync` lock or read its database, but it should answer quickly: one request
//! holds one blocking thread until it returns.

use jsonrpsee::types::ErrorObjectOwned;
use tokio::sync::broadcast;

use crate::types::{
    AggregateReportView, BlockView, HeadView, MembersView, MempoolView, MetricsView, ModelView,
    NodeInfoView, PeerView, PrivacyStatusView, BanView,
};

/// JSON-RPC error code for [`ApiError::NotFound`].
pub const NOT_FOUND_CODE: i32 = -32001;
/// JSON-RPC error code for [`ApiError::Unavailable`].
pub const UNAVAILABLE_CODE: i32 = -32002;
/// JSON-RPC error code for [`ApiError::InvalidParams`] (the standard "Invalid params").
pub const INVALID_PARAMS_CODE: i32 = -32602;
/// JSON-RPC error code for [`ApiError::Internal`] (the standard "Internal error").
pub const INTERNAL_ERROR_CODE: i32 = -32603;

/// Which block a caller asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BlockRef {
    /// The block at this height on the node's current best chain.
    Height(u64),
    /// The block with this hash: always 64 lowercase hex digits without a `0x` prefix
    /// (the server normalises what the caller sent before calling the node).
    Hash(String),
}

impl std::fmt::Display for BlockRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockRef::Height(h) => write!(f, "height {h}"),
            BlockRef::Hash(hash) => write!(f, "hash {hash}"),
        }
    }
}

/// Why the node could not answer a request. Each variant maps to one JSON-RPC error
/// code (see [`ApiError::code`]); the message is sent to the caller verbatim, so it
/// must say what was wrong (e.g. `"no block at height 99 (head is 42)"`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The thing asked for does not exist (unknown hash, height above the head). Code -32001.
    #[error("not found: {0}")]
    NotFound(String),
    /// This node cannot answer this kind of request (e.g. it holds no evaluation data
    /// for model metrics), or cannot answer it yet. Code -32002.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The parameters were well-formed JSON but not acceptable. Code -32602.
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// The node failed while answering (database error, closed channel). Code -32603.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The JSON-RPC error code this error is reported with.
    pub fn code(&self) -> i32 {
        match self {
            ApiError::NotFound(_) => NOT_FOUND_CODE,
            ApiError::Unavailable(_) => UNAVAILABLE_CODE,
            ApiError::InvalidParams(_) => INVALID_PARAMS_CODE,
            ApiError::Internal(_) => INTERNAL_ERROR_CODE,
        }
    }
}

impl From<ApiError> for ErrorObjectOwned {
    fn from(err: ApiError) -> Self {
        ErrorObjectOwned::owned(err.code(), err.to_string(), None::<()>)
    }
}

/// What the RPC server needs from a node. The node implements it; the server holds it
/// as `Arc<dyn NodeApi>`.
///
/// All calls except [`NodeApi::subscribe_heads`] run on tokio's blocking thread pool.
pub trait NodeApi: Send + Sync + 'static {
    /// The head of the node's best chain.
    fn chain_head(&self) -> Result<HeadView, ApiError>;

    /// One block of the best chain (by height) or of the block store (by hash), with the
    /// submissions it carries. Unknown → [`ApiError::NotFound`].
    fn block(&self, at: BlockRef) -> Result<BlockView, ApiError>;

    /// The global model after the block at `height` (`None` = the head).
    /// A height above the head → [`ApiError::NotFound`]; a pruned model state →
    /// [`ApiError::Unavailable`].
    fn model(&self, height: Option<u64>) -> Result<ModelView, ApiError>;

    /// The global model after the block at `height` (`None` = the head) as a model file
    /// (safetensors bytes, `learnchain_model::export`), served at
    /// `GET /model.safetensors?height=H`. Errors as [`NodeApi::model`].
    fn model_file(&self, height: Option<u64>) -> Result<Vec<u8>, ApiError>;

    /// The evaluation of the global model after the block at `height` (`None` = the
    /// head) on this node's evaluation data. No evaluation data → [`ApiError::Unavailable`].
    fn model_metrics(&self, height: Option<u64>) -> Result<MetricsView, ApiError>;

    /// The peers the node is connected to.
    fn peers(&self) -> Result<Vec<PeerView>, ApiError>;

    /// The peers the node has banned.
    fn bans(&self) -> Result<Vec<BanView>, ApiError>;

    /// Static and live facts about this node.
    fn node_info(&self) -> Result<NodeInfoView, ApiError>;

    /// The submissions and registry changes waiting for the next block.
    fn mempool(&self) -> Result<MempoolView, ApiError>;

    /// This node's privacy budget and spend.
    fn privacy_status(&self) -> Result<PrivacyStatusView, ApiError>;

    /// Recomputes the aggregation of one block of the best chain (by height) or of the
    /// block store (by hash) with the chain's aggregation rule, and reports what the rule
    /// did with each submission the block carries. Unknown → [`ApiError::NotFound`]; the
    /// genesis block (no submissions) answers with an empty `submissions` list.
    fn aggregate_report(&self, at: BlockRef) -> Result<AggregateReportView, ApiError>;

    /// The member registry after the head of the best chain.
    fn members(&self) -> Result<MembersView, ApiError>;

    /// Checks a registration (its canonical encoding) and adds it to the pool and gossip;
    /// returns its id (hex). Invalid → [`ApiError::InvalidParams`] naming the reason.
    ///
    /// The server has already checked that `bytes` is non-empty and at most
    /// [`crate::methods::MAX_REGISTRATION_BYTES`] long; everything else is the node's to check.
    fn submit_registration(&self, bytes: Vec<u8>) -> Result<String, ApiError>;

    /// A receiver that yields every new head of the best chain (also after a reorg).
    /// Called once per WebSocket subscription, on an async task: it must not block.
    fn subscribe_heads(&self) -> broadcast::Receiver<HeadView>;
}
