//! The JSON-RPC method table: names, parameter handling and the call into [`NodeApi`].
//!
//! `module()` builds one jsonrpsee `RpcModule` whose context is the node's
//! `Arc<dyn NodeApi>`. Every handler first checks its parameters (private module
//! `params`, so a malformed request never reaches the node), then makes one `NodeApi` call on
//! tokio's blocking pool and returns the view, or the [`ApiError`] mapped to its
//! JSON-RPC code. `chain_subscribeHeads` forwards the node's head broadcast to one
//! WebSocket subscriber until the client unsubscribes, disconnects or the node closes
//! the broadcast; a subscriber that falls behind skips the heads it missed.

use std::sync::Arc;

use jsonrpsee::core::SubscriptionError;
use jsonrpsee::server::{RegisterMethodError, RpcModule, SubscriptionMessage};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::api::{ApiError, NodeApi};
use crate::params;

/// `chain_head()` → [`crate::HeadView`].
pub const CHAIN_HEAD: &str = "chain_head";
/// `chain_getBlock(block)` → [`crate::BlockView`]; `block` is a height or a block hash
/// (64 hex digits, optional `0x`). Named form: `{"block": …}`.
pub const CHAIN_GET_BLOCK: &str = "chain_getBlock";
/// `model_get(height?)` → [`crate::ModelView`]; absent or `null` = head.
/// Named form: `{"height": …}`.
pub const MODEL_GET: &str = "model_get";
/// `model_metrics(height?)` → [`crate::MetricsView`]; absent or `null` = head.
/// Named form: `{"height": …}`.
pub const MODEL_METRICS: &str = "model_metrics";
/// `net_peers()` → array of [`crate::PeerView`].
pub const NET_PEERS: &str = "net_peers";
/// `net_bans()` → array of [`crate::BanView`], longest remaining first.
pub const NET_BANS: &str = "net_bans";
/// `node_info()` → [`crate::NodeInfoView`].
pub const NODE_INFO: &str = "node_info";
/// `mempool_content()` → [`crate::MempoolView`].
pub const MEMPOOL_CONTENT: &str = "mempool_content";
/// `privacy_status()` → [`crate::PrivacyStatusView`].
pub const PRIVACY_STATUS: &str = "privacy_status";
/// `aggregate_report(block)` → [`crate::AggregateReportView`]: what the chain's
/// aggregation rule did with each submission of the block. `block` is a height or a block
/// hash (64 hex digits, optional `0x`), as for [`CHAIN_GET_BLOCK`]. Named form:
/// `{"block": …}`.
pub const AGGREGATE_REPORT: &str = "aggregate_report";
/// `members_list()` → [`crate::MembersView`]: the member registry after the head.
pub const MEMBERS_LIST: &str = "members_list";
/// `members_register(registration)` → the registration's id (hex string). `registration`
/// is the registration's canonical encoding as hex (optional `0x`), at most
/// [`MAX_REGISTRATION_BYTES`] bytes once decoded; the node checks it, adds it to its pool
/// and gossips it. Named form: `{"registration": "…"}`.
pub const MEMBERS_REGISTER: &str = "members_register";
/// Largest registration `members_register` accepts, in bytes (decoded), so at most twice
/// as many hex digits.
pub const MAX_REGISTRATION_BYTES: usize = 512;
/// `rpc_methods()` → sorted array of every method name this server answers.
pub const RPC_METHODS: &str = "rpc_methods";
/// `rpc.discover()` → the OpenRPC document of this server ([`crate::openrpc`]).
pub const RPC_DISCOVER: &str = "rpc.discover";
/// `chain_subscribeHeads()` (WebSocket only) → subscription id; then one
/// [`CHAIN_HEAD_NOTIFICATION`] per new head.
pub const CHAIN_SUBSCRIBE_HEADS: &str = "chain_subscribeHeads";
/// `chain_unsubscribeHeads(subscription_id)` → `true` if the subscription existed.
pub const CHAIN_UNSUBSCRIBE_HEADS: &str = "chain_unsubscribeHeads";
/// The `method` of head notifications:
/// `{"jsonrpc":"2.0","method":"chain_head","params":{"subscription":id,"result":HeadView}}`.
pub const CHAIN_HEAD_NOTIFICATION: &str = "chain_head";

/// The context every handler receives.
type Ctx = Arc<dyn NodeApi>;

/// Builds the complete method table over `api`.
pub(crate) fn module(api: Arc<dyn NodeApi>) -> Result<RpcModule<Ctx>, RegisterMethodError> {
    let mut module = RpcModule::new(api);

    register(&mut module, CHAIN_HEAD, |params, api| {
        params::none(CHAIN_HEAD, params)?;
        api.chain_head()
    })?;
    register(&mut module, CHAIN_GET_BLOCK, |params, api| {
        let value = params::required_one(CHAIN_GET_BLOCK, "block", params)?;
        let at = params::block_ref(CHAIN_GET_BLOCK, &value)?;
        api.block(at)
    })?;
    register(&mut module, MODEL_GET, |params, api| {
        let height = optional_height(MODEL_GET, params)?;
        api.model(height)
    })?;
    register(&mut module, MODEL_METRICS, |params, api| {
        let height = optional_height(MODEL_METRICS, params)?;
        api.model_metrics(height)
    })?;
    register(&mut module, NET_PEERS, |params, api| {
        params::none(NET_PEERS, params)?;
        api.peers()
    })?;
    register(&mut module, NET_BANS, |params, api| {
        params::none(NET_BANS, params)?;
        api.bans()
    })?;
    register(&mut module, NODE_INFO, |params, api| {
        params::none(NODE_INFO, params)?;
        api.node_info()
    })?;
    register(&mut module, MEMPOOL_CONTENT, |params, api| {
        params::none(MEMPOOL_CONTENT, params)?;
        api.mempool()
    })?;
    register(&mut module, PRIVACY_STATUS, |params, api| {
        params::none(PRIVACY_STATUS, params)?;
        api.privacy_status()
    })?;
    register(&mut module, AGGREGATE_REPORT, |params, api| {
        let value = params::required_one(AGGREGATE_REPORT, "block", params)?;
        let at = params::block_ref(AGGREGATE_REPORT, &value)?;
        api.aggregate_report(at)
    })?;
    register(&mut module, MEMBERS_LIST, |params, api| {
        params::none(MEMBERS_LIST, params)?;
        api.members()
    })?;
    register(&mut module, MEMBERS_REGISTER, |params, api| {
        let value = params::required_one(MEMBERS_REGISTER, "registration", params)?;
        let bytes = params::hex_bytes(
            MEMBERS_REGISTER,
            "registration",
            &value,
            MAX_REGISTRATION_BYTES,
        )?;
        api.submit_registration(bytes)
    })?;
    register_head_subscription(&mut module)?;
    let discovered = crate::openrpc::document(env!("CARGO_PKG_VERSION"));
    module.register_method(RPC_DISCOVER, move |params, _, _| {
        params::none(RPC_DISCOVER, &params).map(|()| discovered.clone())
    })?;

    // Last, so the list is complete; it names itself too.
    let mut names: Vec<&'static str> = module.method_names().chain([RPC_METHODS]).collect();
    names.sort_unstable();
    module.register_method(RPC_METHODS, move |params, _, _| {
        params::none(RPC_METHODS, &params).map(|()| names.clone())
    })?;

    Ok(module)
}

fn optional_height(method: &str, params: &Params<'_>) -> Result<Option<u64>, ApiError> {
    params::optional_one(method, "height", params)?
        .map(|v| params::height(method, &v))
        .transpose()
}

/// Registers a handler that runs on the blocking pool and logs the errors it returns.
fn register<T, F>(
    module: &mut RpcModule<Ctx>,
    method: &'static str,
    handler: F,
) -> Result<(), RegisterMethodError>
where
    T: Serialize + Clone + 'static,
    F: Fn(&Params<'_>, &dyn NodeApi) -> Result<T, ApiError> + Clone + Send + Sync + 'static,
{
    module.register_blocking_method(method, move |params, ctx, _| {
        let result = handler(&params, ctx.as_ref().as_ref());
        match &result {
            Err(err @ ApiError::Internal(_)) => {
                tracing::warn!(method, error = %err, "rpc call failed")
            }
            Err(err) => tracing::debug!(method, error = %err, "rpc call rejected"),
            Ok(_) => tracing::trace!(method, "rpc call answered"),
        }
        result
    })?;
    Ok(())
}

fn register_head_subscription(module: &mut RpcModule<Ctx>) -> Result<(), RegisterMethodError> {
    module.register_subscription(
        CHAIN_SUBSCRIBE_HEADS,
        CHAIN_HEAD_NOTIFICATION,
        CHAIN_UNSUBSCRIBE_HEADS,
        |params, pending, ctx, _| async move {
            if let Err(err) = params::none(CHAIN_SUBSCRIBE_HEADS, &params) {
                pending.reject(ErrorObjectOwned::from(err)).await;
                return Ok(());
            }
            // Subscribe before accepting, so no head between the two is lost.
            let mut heads = ctx.subscribe_heads();
            let sink = pending.accept().await?;
            tracing::debug!(subscription = ?sink.subscription_id(), "head subscription opened");
            loop {
                tokio::select! {
                    () = sink.closed() => break,
                    head = heads.recv() => match head {
                        Ok(head) => {
                            let msg = SubscriptionMessage::new(
                                sink.method_name(),
                                sink.subscription_id(),
                                &head,
                            )?;
                            if sink.send(msg).await.is_err() {
                                break;
                            }
                        }
                        Err(RecvError::Lagged(skipped)) => {
                            tracing::debug!(skipped, "head subscriber lagged; skipping to newer heads");
                        }
                        Err(RecvError::Closed) => {
                            return Err(SubscriptionError::from("the node closed its head stream"));
                        }
                    },
                }
            }
            tracing::debug!(subscription = ?sink.subscription_id(), "head subscription closed");
            Ok(())
        },
    )?;
    Ok(())
}

