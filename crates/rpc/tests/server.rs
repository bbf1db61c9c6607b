//! End-to-end tests of the RPC server over real sockets: a fake [`NodeApi`], the server
//! on `127.0.0.1:0`, and every method called through `client::call`, raw HTTP and a
//! hand-rolled minimal WebSocket client (no ws-client dependency).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use learnchain_rpc::client::{self, ClientError};
use learnchain_rpc::methods;
use learnchain_rpc::ws_client::WsClient;
use learnchain_rpc::{
    AggregateReportView, ApiError, BlockRef, BlockView, HeadView, MemberView, MembersView,
    MempoolView, MetricsView, ModelView, NodeApi, NodeInfoView, PeerView, BanView, PrivacyStatusView,
    RegistrationView, RpcHandle, SubmissionAggregationView, SubmissionView,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

const HEAD_HEIGHT: u64 = 2;
/// Height at which the fake node fails internally.
const BROKEN_HEIGHT: u64 = 999;
/// Large enough that the JSON of the model exceeds the 1 MiB request limit.
const BIG_MODEL_WEIGHTS: usize = 300_000;

fn hash_of(tag: u64) -> String {
    format!("{tag:064x}")
}

fn submission(i: u64) -> SubmissionView {
    SubmissionView {
        id: hash_of(0x5000 + i),
        round: HEAD_HEIGHT + 1,
        round_tag: hash_of(0x7000 + i),
        base: hash_of(0xb000 + HEAD_HEIGHT),
        num_examples: 100 + i as u32,
        update_l2: 0.25 * i as f64,
        dp_sample_rate: 0.1,
        dp_noise_multiplier: 1.1,
        dp_clip: 1.0,
        dp_steps: 5,
    }
}

fn registration(i: u64) -> RegistrationView {
    let action = if i.is_multiple_of(2) {
        "revoke"
    } else {
        "register"
    };
    let authorisation = if i.is_multiple_of(3) {
        "stamp"
    } else {
        "authority"
    };
    RegistrationView {
        id: hash_of(0xe000 + i),
        member: hash_of(0x3000 + i),
        action: action.into(),
        authorisation: authorisation.into(),
    }
}

fn members() -> MembersView {
    MembersView {
        height: HEAD_HEIGHT,
        ring_size: 4,
        groups: 1,
        active: 2,
        enrolment_authority: Some(hash_of(0xa11)),
        open_stamp_bits: 12,
        members: vec![
            MemberView {
                key: hash_of(0x3000),
                registered_at: 0,
                revoked_at: None,
                active: true,
            },
            MemberView {
                key: hash_of(0x3001),
                registered_at: 1,
                revoked_at: None,
                active: true,
            },
            MemberView {
                key: hash_of(0x3002),
                registered_at: 0,
                revoked_at: Some(2),
                active: false,
            },
        ],
    }
}

/// First byte of a registration the fake node refuses.
const REFUSED_REGISTRATION: u8 = 0xff;

fn privacy() -> PrivacyStatusView {
    PrivacyStatusView {
        data_source: true,
        budget_epsilon: Some(2.0),
        epsilon_spent: Some(0.75),
        delta: Some(1e-5),
        alpha: Some(14.5),
        accountant: Some("rdp".into()),
        rounds_contributed: Some(6),
        epsilon_after_next_round: Some(0.8),
        stopped: false,
        sample_rate: Some(0.1),
        noise_multiplier: Some(1.1),
        clip: Some(1.0),
        steps_per_round: Some(5),
        ledger_path: Some("/data/privacy-ledger.json".into()),
    }
}

fn block(height: u64) -> BlockView {
    BlockView {
        hash: hash_of(0xb000 + height),
        height,
        parent: if height == 0 {
            hash_of(0)
        } else {
            hash_of(0xb000 + height - 1)
        },
        timestamp_ms: 1_700_000_000_000 + height * 1000,
        target: "00ff".repeat(16),
        miner: hash_of(0xaa),
        body_root: hash_of(0xc000 + height),
        model_hash: hash_of(0xd000 + height),
        state_root: hash_of(0xe000 + height),
        nonce: 42 + height,
        registrations: (1..=height).map(registration).collect(),
        submissions: (0..height).map(submission).collect(),
    }
}

fn head_of(b: &BlockView) -> HeadView {
    HeadView {
        chain_id: hash_of(0xc4a1),
        height: b.height,
        hash: b.hash.clone(),
        parent: b.parent.clone(),
        model_hash: b.model_hash.clone(),
        state_root: b.state_root.clone(),
        timestamp_ms: b.timestamp_ms,
        total_work: format!("{:x}", 1000 * (b.height + 1)),
        submissions: b.submissions.len(),
        registrations: b.registrations.len(),
    }
}

fn model(height: u64) -> ModelView {
    let weights = if height == 1 {
        (0..BIG_MODEL_WEIGHTS).map(|i| i as f64 / 1024.0).collect()
    } else {
        vec![0.5, -0.25, 1.0, 0.0]
    };
    ModelView {
        height,
        block_hash: hash_of(0xb000 + height),
        model_hash: hash_of(0xd000 + height),
        architecture: "softmax".into(),
        features: 2,
        classes: 2,
        hidden: 0,
        hidden_layers: vec![],
        frac_bits: 16,
        weights,
    }
}

fn peers() -> Vec<PeerView> {
    vec![
        PeerView {
            peer_id: "12D3KooWA".into(),
            addresses: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            agent: Some("learnchain/0.1.0".into()),
            direction: "outbound".into(),
            score: -10.0,
            gossip_score: -20.5,
            offences: 1,
            last_offence: Some("invalid_block".into()),
        },
        PeerView {
            peer_id: "12D3KooWB".into(),
            addresses: vec![],
            listen_addrs: vec![],
            agent: None,
            direction: "inbound".into(),
            score: 0.0,
            gossip_score: 0.0,
            offences: 0,
            last_offence: None,
        },
    ]
}

fn node_info() -> NodeInfoView {
    NodeInfoView {
        name: "test-node".into(),
        version: "learnchain/0.1.0".into(),
        chain_id: hash_of(0xc4a1),
        genesis_name: "devnet".into(),
        peer_id: "12D3KooWSelf".into(),
        roles: vec!["miner".into(), "data-source".into()],
        listen_addrs: vec!["/ip4/127.0.0.1/tcp/4000".into()],
        rpc_addr: "127.0.0.1:0".into(),
        data_dir: "/tmp/learnchain".into(),
        height: HEAD_HEIGHT,
        mempool: 2,
        syncing: false,
        aggregation: AGGREGATION_RULE.into(),
        adversary: Some("sign-flip".into()),
    }
}

/// The fake chain's aggregation rule.
const AGGREGATION_RULE: &str = "krum:1";

/// The fake node's report for `b`: Krum keeps the first submission and rejects the rest;
/// the scores are near `u128::MAX`, far beyond what a JSON number holds exactly.
fn aggregate_report(b: &BlockView) -> AggregateReportView {
    let submissions = b
        .submissions
        .iter()
        .enumerate()
        .map(|(i, s)| SubmissionAggregationView {
            id: s.id.clone(),
            round_tag: s.round_tag.clone(),
            outcome: if i == 0 { "selected" } else { "rejected" }.into(),
            kept_coordinates: None,
            coordinates: None,
            weight_ppm: None,
            score: Some((u128::MAX - i as u128).to_string()),
        })
        .collect();
    AggregateReportView {
        height: b.height,
        hash: b.hash.clone(),
        rule: AGGREGATION_RULE.into(),
        submissions,
    }
}

fn mempool() -> MempoolView {
    MempoolView {
        round: HEAD_HEIGHT + 1,
        base: hash_of(0xb000 + HEAD_HEIGHT),
        submissions: vec![submission(1), submission(2)],
        registrations: vec![registration(3), registration(4)],
    }
}

/// A node with blocks 0..=2 in memory and no evaluation data.
struct FakeNode {
    heads: broadcast::Sender<HeadView>,
    /// Every registration `submit_registration` was called with, accepted or not.
    registrations: Mutex<Vec<Vec<u8>>>,
}

impl FakeNode {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            heads: broadcast::channel(16).0,
            registrations: Mutex::new(Vec::new()),
        })
    }

    fn received_registrations(&self) -> Vec<Vec<u8>> {
        self.registrations.lock().expect("lock").clone()
    }

    fn height(&self, height: Option<u64>) -> Result<u64, ApiError> {
        match height.unwrap_or(HEAD_HEIGHT) {
            BROKEN_HEIGHT => Err(ApiError::Internal(
                "model store read failed: checksum mismatch".into(),
            )),
            h if h > HEAD_HEIGHT => Err(ApiError::NotFound(format!(
                "no block at height {h} (head is {HEAD_HEIGHT})"
            ))),
            h => Ok(h),
        }
    }
}

impl NodeApi for FakeNode {
    fn chain_head(&self) -> Result<HeadView, ApiError> {
        Ok(head_of(&block(HEAD_HEIGHT)))
    }

    fn block(&self, at: BlockRef) -> Result<BlockView, ApiError> {
        match at {
            BlockRef::Height(h) => self.height(Some(h)).map(block),
            BlockRef::Hash(hash) => (0..=HEAD_HEIGHT)
                .map(block)
                .find(|b| b.hash == hash)
                .ok_or_else(|| ApiError::NotFound(format!("no block with hash {hash}"))),
        }
    }

    fn model(&self, height: Option<u64>) -> Result<ModelView, ApiError> {
        self.height(height).map(model)
    }

    fn model_file(&self, height: Option<u64>) -> Result<Vec<u8>, ApiError> {
        self.height(height).map(|h| format!("model file {h}").into_bytes())
    }

    fn aggregate_report(&self, at: BlockRef) -> Result<AggregateReportView, ApiError> {
        self.block(at).map(|b| aggregate_report(&b))
    }

    fn model_metrics(&self, height: Option<u64>) -> Result<MetricsView, ApiError> {
        self.height(height)?;
        Err(ApiError::Unavailable(
            "this node has no evaluation data".into(),
        ))
    }

    fn peers(&self) -> Result<Vec<PeerView>, ApiError> {
        Ok(peers())
    }

    fn bans(&self) -> Result<Vec<BanView>, ApiError> {
        Ok(vec![BanView {
            peer_id: "12D3KooWC".into(),
            remaining_s: 1799,
            reason: "invalid_submission".into(),
            score: -50.0,
            offences: 5,
        }])
    }

    fn node_info(&self) -> Result<NodeInfoView, ApiError> {
        Ok(node_info())
    }

    fn mempool(&self) -> Result<MempoolView, ApiError> {
        Ok(mempool())
    }

    fn privacy_status(&self) -> Result<PrivacyStatusView, ApiError> {
        Ok(privacy())
    }

    fn members(&self) -> Result<MembersView, ApiError> {
        Ok(members())
    }

    /// Accepts anything whose first byte is not [`REFUSED_REGISTRATION`]; the id is the
    /// length and first byte, so tests can tell which bytes arrived.
    fn submit_registration(&self, bytes: Vec<u8>) -> Result<String, ApiError> {
        self.registrations.lock().expect("lock").push(bytes.clone());
        match bytes.first() {
            Some(&REFUSED_REGISTRATION) => Err(ApiError::InvalidParams(
                "registration: authority signature does not verify".into(),
            )),
            first => Ok(registration_id(bytes.len(), first.copied().unwrap_or(0))),
        }
    }

    fn subscribe_heads(&self) -> broadcast::Receiver<HeadView> {
        self.heads.subscribe()
    }
}

fn registration_id(len: usize, first: u8) -> String {
    format!("{:064x}", (len << 8) | usize::from(first))
}

async fn start_fake() -> (Arc<FakeNode>, RpcHandle) {
    let node = FakeNode::new();
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    let handle = learnchain_rpc::start(addr, node.clone())
        .await
        .expect("server starts");
    assert_ne!(handle.local_addr().port(), 0);
    (node, handle)
}

async fn call_ok<T: serde::de::DeserializeOwned>(
    addr: SocketAddr,
    method: &str,
    params: Value,
) -> T {
    let value = client::call(addr, method, params)
        .await
        .unwrap_or_else(|e| panic!("{method} failed: {e}"));
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{method} result does not parse: {e}"))
}

async fn call_err(addr: SocketAddr, method: &str, params: Value) -> (i64, String) {
    match client::call(addr, method, params).await {
        Err(ClientError::Rpc { code, message }) => (code, message),
        other => panic!("{method}: expected an RPC error, got {other:?}"),
    }
}

#[tokio::test]
async fn every_method_answers() {
    let (_node, server) = start_fake().await;
    let addr = server.local_addr();

    let head: HeadView = call_ok(addr, "chain_head", Value::Null).await;
    assert_eq!(head, head_of(&block(HEAD_HEIGHT)));
    let head_again: HeadView = call_ok(addr, "chain_head", json!([])).await;
    assert_eq!(head_again, head);

    let b1: BlockView = call_ok(addr, "chain_getBlock", json!([1])).await;
    assert_eq!(b1, block(1));
    let by_hash: BlockView = call_ok(addr, "chain_getBlock", json!([block(2).hash])).await;
    assert_eq!(by_hash, block(2));
    let prefixed = format!("0x{}", block(0).hash.to_uppercase());
    let by_prefixed: BlockView = call_ok(addr, "chain_getBlock", json!([prefixed])).await;
    assert_eq!(by_prefixed, block(0));
    let named: BlockView = call_ok(addr, "chain_getBlock", json!({ "block": 2 })).await;
    assert_eq!(named, block(2));

    let head_model: ModelView = call_ok(addr, "model_get", Value::Null).await;
    assert_eq!(head_model, model(HEAD_HEIGHT));
    let null_model: ModelView = call_ok(addr, "model_get", json!([null])).await;
    assert_eq!(null_model, model(HEAD_HEIGHT));
    let named_model: ModelView = call_ok(addr, "model_get", json!({ "height": 0 })).await;
    assert_eq!(named_model, model(0));
    // Larger than the 1 MiB request limit: the response limit is separate.
    let big: ModelView = call_ok(addr, "model_get", json!([1])).await;
    assert_eq!(big.weights.len(), BIG_MODEL_WEIGHTS);
    assert_eq!(big, model(1));

    let p: Vec<PeerView> = call_ok(addr, "net_peers", Value::Null).await;
    assert_eq!(p, peers());
    let bans: Vec<BanView> = call_ok(addr, "net_bans", Value::Null).await;
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].reason, "invalid_submission");
    let info: NodeInfoView = call_ok(addr, "node_info", Value::Null).await;
    assert_eq!(info, node_info());
    let pool: MempoolView = call_ok(addr, "mempool_content", Value::Null).await;
    assert_eq!(pool, mempool());
    let status: PrivacyStatusView = call_ok(addr, "privacy_status", Value::Null).await;
    assert_eq!(status, privacy());
    let registry: MembersView = call_ok(addr, "members_list", Value::Null).await;
    assert_eq!(registry, members());

    let names: Vec<String> = call_ok(addr, "rpc_methods", Value::Null).await;
    let mut expected = vec![
        methods::CHAIN_HEAD,
        methods::CHAIN_GET_BLOCK,
        methods::MODEL_GET,
        methods::MODEL_METRICS,
        methods::NET_PEERS,
        methods::NET_BANS,
        methods::NODE_INFO,
        methods::MEMPOOL_CONTENT,
        methods::PRIVACY_STATUS,
        methods::AGGREGATE_REPORT,
        methods::MEMBERS_LIST,
        methods::MEMBERS_REGISTER,
        methods::RPC_METHODS,
        methods::RPC_DISCOVER,
        methods::CHAIN_SUBSCRIBE_HEADS,
        methods::CHAIN_UNSUBSCRIBE_HEADS,
    ];
    expected.sort_unstable();
    assert_eq!(names, expected);

    server.stop().await;
}

/// The properties a schema (or the component it refers to) declares.
fn properties<'a>(doc: &'a Value, schema: &'a Value) -> Option<std::collections::BTreeSet<&'a str>> {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => &doc["components"]["schemas"][r.strip_prefix("#/components/schemas/")?],
        None => schema,
    };
    Some(schema.get("properties")?.as_object()?.keys().map(String::as_str).collect())
}

#[tokio::test]
async fn rpc_discover_documents_exactly_the_methods_answered_and_their_results() {
    let (_node, server) = start_fake().await;
    let addr = server.local_addr();
    let doc: Value = call_ok(addr, "rpc.discover", Value::Null).await;
    assert!(doc["openrpc"].as_str().is_some_and(|v| v.starts_with("1.")), "{}", doc["openrpc"]);
    let answered: std::collections::BTreeSet<String> =
        call_ok::<Vec<String>>(addr, "rpc_methods", Value::Null).await.into_iter().collect();
    let methods = doc["methods"].as_array().expect("methods");
    let documented: std::collections::BTreeSet<String> =
        methods.iter().map(|m| m["name"].as_str().expect("name").to_owned()).collect();
    let missing: Vec<&String> = answered.difference(&documented).collect();
    let extra: Vec<&String> = documented.difference(&answered).collect();
    assert!(missing.is_empty(), "answered but not in rpc.discover: {missing:?}");
    assert!(extra.is_empty(), "in rpc.discover but not answered: {extra:?}");
    let mut checked = 0;
    // Each method's result schema names exactly the fields its answer carries (the fake
    // node answers every read; an array result is checked on its first item).
    for m in methods {
        let name = m["name"].as_str().expect("name");
        assert!(m["params"].is_array() && m["result"]["schema"].is_object(), "{name}: params and result");
        let params = match name {
            "chain_getBlock" | "aggregate_report" => json!([1]),
            "members_register" | "chain_subscribeHeads" | "chain_unsubscribeHeads" | "rpc.discover" => continue,
            _ => Value::Null,
        };
        // An error answer (the fake has no evaluation data) has no result to check.
        let Ok(answer) = client::call(addr, name, params).await else { continue };
        let (value, schema) = match (&answer, m["result"]["schema"].get("items")) {
            (Value::Array(items), Some(item)) => match items.first() {
                Some(first) => (first.clone(), item.clone()),
                None => continue,
            },
            _ => (answer.clone(), m["result"]["schema"].clone()),
        };
        let Value::Object(fields) = &value else { continue };
        let sent: std::collections::BTreeSet<&str> = fields.keys().map(String::as_str).collect();
        let declared = properties(&doc, &schema).unwrap_or_else(|| panic!("{name}: no properties in {schema}"));
        assert_eq!(sent, declared, "{name}: the fields sent and the fields its schema declares");
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} results were checked against their schemas");
    server.stop().await;
}

#[tokio::test]
async fn errors_carry_codes_and_say_what_was_wrong() {
    let (_node, server) = start_fake().await;
    let addr = server.local_addr();

    let (code, _) = call_err(addr, "chain_nonsense", Value::Null).await;
    assert_eq!(code, -32601);

    // Not found, unavailable, internal.
    let (code, msg) = call_err(addr, "chain_getBlock", json!([99])).await;
    assert_eq!(code, -32001);
    assert!(msg.contains("height 99"), "{msg}");
    let unknown = hash_of(0xdead);
    let (code, msg) = call_err(addr, "chain_getBlock", json!([unknown])).await;
    assert_eq!(code, -32001);
    assert!(msg.contains(&unknown), "{msg}");
    let (code, _) = call_err(addr, "model_get", json!([7])).await;
    assert_eq!(code, -32001);
    let (code, msg) = call_err(addr, "model_metrics", Value::Null).await;
    assert_eq!(code, -32002);
    assert!(msg.contains("evaluation data"), "{msg}");
    let (code, msg) = call_err(addr, "model_get", json!([BROKEN_HEIGHT])).await;
    assert_eq!(code, -32603);
    assert!(msg.contains("checksum"), "{msg}");

    // Bad params never reach the node.
    let bad_block_params = [
        (json!([]), "requires 1 parameter"),
        (Value::Null, "requires 1 parameter"),
        (json!([1, 2]), "at most 1 parameter"),
        (json!([-1]), "non-negative integer"),
        (json!([1.5]), "non-negative integer"),
        (json!(["12"]), "64 hex digits"),
        (json!(["0x1234"]), "64 hex digits"),
        (json!(["g".repeat(64)]), "must be hex"),
        (json!([true]), "block height (integer) or a block hash"),
        (
            json!([{ "height": 1 }]),
            "block height (integer) or a block hash",
        ),
        (json!({ "height": 1 }), "unknown parameter"),
    ];
    for method in ["chain_getBlock", "aggregate_report"] {
        for (params, expect) in &bad_block_params {
            let (code, msg) = call_err(addr, method, params.clone()).await;
            assert_eq!(code, -32602, "{method} {params}: {msg}");
            assert!(
                msg.contains(expect),
                "{method} {params}: {msg:?} lacks {expect:?}"
            );
            assert!(msg.contains(method), "{msg}");
        }
    }
    for (method, params) in [
        ("model_get", json!(["1"])),
        ("model_get", json!([1, 2])),
        ("model_metrics", json!({ "hieght": 1 })),
        ("chain_head", json!([1])),
        ("net_peers", json!({ "x": 1 })),
        ("node_info", json!([null])),
        ("mempool_content", json!(["all"])),
        ("members_list", json!([true])),
        ("members_register", json!({ "reg": "00" })),
        ("rpc_methods", json!([1])),
    ] {
        let (code, msg) = call_err(addr, method, params.clone()).await;
        assert_eq!(code, -32602, "{method} {params}: {msg}");
        assert!(msg.contains(method), "{msg}");
    }

    server.stop().await;
}

#[tokio::test]
async fn aggregate_report_by_height_and_hash() {
    let (_node, server) = start_fake().await;
    let addr = server.local_addr();

    // The typed client wrapper, by height and by hash.
    let report = client::aggregate_report(addr, BlockRef::Height(HEAD_HEIGHT))
        .await
        .expect("aggregate_report by height");
    assert_eq!(report, aggregate_report(&block(HEAD_HEIGHT)));
    assert_eq!(report.submissions.len(), 2);
    assert_eq!(report.submissions[0].outcome, "selected");
    assert_eq!(report.submissions[1].outcome, "rejected");
    let by_hash = client::aggregate_report(addr, BlockRef::Hash(block(1).hash))
        .await
        .expect("aggregate_report by hash");
    assert_eq!(by_hash, aggregate_report(&block(1)));

    // The genesis block carries no submissions: an empty list, not an error.
    let genesis = client::aggregate_report(addr, BlockRef::Height(0))
        .await
        .expect("aggregate_report of the genesis");
    assert_eq!(genesis.height, 0);
    assert_eq!(genesis.rule, AGGREGATION_RULE);
    assert!(genesis.submissions.is_empty());

    // 0x prefix, upper case, and the named form.
    let prefixed = format!("0x{}", block(2).hash.to_uppercase());
    let report: AggregateReportView =
        call_ok(addr, methods::AGGREGATE_REPORT, json!([prefixed])).await;
    assert_eq!(report, aggregate_report(&block(2)));
    let named: AggregateReportView =
        call_ok(addr, methods::AGGREGATE_REPORT, json!({ "block": 1 })).await;
    assert_eq!(named, aggregate_report(&block(1)));

    // The JSON shape: the u128 score is a decimal string, unused fields are null.
    let raw = client::call(addr, methods::AGGREGATE_REPORT, json!([2]))
        .await
        .expect("aggregate_report");
    assert_eq!(raw["rule"], AGGREGATION_RULE, "{raw}");
    let first = &raw["submissions"][0];
    assert_eq!(first["score"], u128::MAX.to_string(), "{raw}");
    assert_eq!(first["id"], block(2).submissions[0].id, "{raw}");
    assert_eq!(first["weight_ppm"], Value::Null, "{raw}");
    assert_eq!(first["kept_coordinates"], Value::Null, "{raw}");
    assert_eq!(first["coordinates"], Value::Null, "{raw}");

    // Unknown blocks: -32001, by height and by hash.
    for at in [BlockRef::Height(99), BlockRef::Hash(hash_of(0xdead))] {
        match client::aggregate_report(addr, at.clone()).await {
            Err(ClientError::Rpc { code, message }) => {
                assert_eq!(code, -32001, "{at}: {message}");
                assert!(message.contains("not found"), "{at}: {message}");
            }
            other => panic!("{at}: expected not found, got {other:?}"),
        }
    }
    let (code, msg) = call_err(addr, methods::AGGREGATE_REPORT, json!([BROKEN_HEIGHT])).await;
    assert_eq!(code, -32603, "{msg}");

    // Bad params never reach the node.
    for params in [
        Value::Null,
        json!([]),
        json!(["12"]),
        json!([-1]),
        json!([true]),
        json!({ "height": 1 }),
    ] {
        let (code, msg) = call_err(addr, methods::AGGREGATE_REPORT, params.clone()).await;
        assert_eq!(code, -32602, "{params}: {msg}");
        assert!(msg.contains(methods::AGGREGATE_REPORT), "{msg}");
    }

    server.stop().await;
}

#[tokio::test]
async fn member_registry_list_and_register() {
    let (node, server) = start_fake().await;
    let addr = server.local_addr();

    // The typed client wrappers.
    let registry = client::members_list(addr).await.expect("members_list");
    assert_eq!(registry, members());
    let id = client::members_register(addr, "0102a0")
        .await
        .expect("members_register");
    assert_eq!(id, registration_id(3, 1));
    assert_eq!(node.received_registrations(), vec![vec![1, 2, 0xa0]]);

    // The JSON shape: `null` while not revoked, "register"/"revoke" actions.
    let raw = client::call(addr, "members_list", json!([]))
        .await
        .expect("members_list");
    assert_eq!(raw["members"][0]["revoked_at"], Value::Null, "{raw}");
    assert_eq!(raw["members"][2]["revoked_at"], 2, "{raw}");
    let block: BlockView = call_ok(addr, "chain_getBlock", json!([2])).await;
    assert_eq!(block.registrations, vec![registration(1), registration(2)]);
    let raw_pool = client::call(addr, "mempool_content", Value::Null)
        .await
        .expect("mempool_content");
    assert_eq!(
        raw_pool["registrations"][1]["action"], "revoke",
        "{raw_pool}"
    );
    let head: HeadView = call_ok(addr, "chain_head", Value::Null).await;
    assert_eq!(head.registrations, 2);

    // 0x prefix, upper case, named form, and exactly the size limit.
    let id: String = call_ok(addr, "members_register", json!(["0XABcd"])).await;
    assert_eq!(id, registration_id(2, 0xab));
    let id: String = call_ok(addr, "members_register", json!({ "registration": "7f" })).await;
    assert_eq!(id, registration_id(1, 0x7f));
    let largest = "42".repeat(methods::MAX_REGISTRATION_BYTES);
    let id = client::members_register(addr, &format!("0x{largest}"))
        .await
        .expect("512 bytes are accepted");
    assert_eq!(id, registration_id(methods::MAX_REGISTRATION_BYTES, 0x42));
    assert_eq!(node.received_registrations().len(), 4);

    // Malformed registrations never reach the node.
    let too_long = "42".repeat(methods::MAX_REGISTRATION_BYTES + 1);
    let huge = "zz".repeat(100_000);
    let bad_params = [
        (json!([too_long]), "too large"),
        (json!([format!("0x{too_long}")]), "too large"),
        (json!([huge]), "too large"),
        (json!(["0xabc"]), "even number of hex digits"),
        (json!(["12zz"]), "must be hex"),
        (json!(["0x"]), "empty"),
        (json!([42]), "hex string"),
        (json!([]), "requires 1 parameter"),
        (Value::Null, "requires 1 parameter"),
        (json!(["00", "00"]), "at most 1 parameter"),
        (json!({ "registration": null }), "requires 1 parameter"),
        (json!({ "bytes": "00" }), "unknown parameter"),
    ];
    for (params, expect) in bad_params {
        let (code, msg) = call_err(addr, "members_register", params.clone()).await;
        let shown: String = params.to_string().chars().take(80).collect();
        assert_eq!(code, -32602, "{shown}: {msg}");
        assert!(msg.contains(expect), "{shown}: {msg:?} lacks {expect:?}");
        assert!(msg.contains("members_register"), "{msg}");
        assert!(msg.len() < 300, "{msg}");
    }
    assert_eq!(node.received_registrations().len(), 4);

    // A registration the node refuses: -32602 with the node's reason.
    match client::members_register(addr, "ff00").await {
        Err(ClientError::Rpc { code, message }) => {
            assert_eq!(code, -32602);
            assert!(message.contains("authority signature"), "{message}");
        }
        other => panic!("expected the node's refusal, got {other:?}"),
    }
    assert_eq!(node.received_registrations().len(), 5);

    server.stop().await;
}

/// Sends raw bytes as one HTTP/1.1 request and returns the status and the JSON body.
async fn raw_http(addr: SocketAddr, request: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8(response).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header terminator");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn post(body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn protocol_errors_from_raw_requests() {
    let (_node, server) = start_fake().await;
    let addr = server.local_addr();

    let (_, rsp) = raw_http(
        addr,
        &post(r#"{"jsonrpc":"2.0","id":1,"method":"chain_head""#),
    )
    .await;
    assert_eq!(rsp["error"]["code"], -32700, "{rsp}");
    let (_, rsp) = raw_http(addr, &post("not json at all")).await;
    assert_eq!(rsp["error"]["code"], -32700, "{rsp}");

    let (_, rsp) = raw_http(addr, &post(r#"{"jsonrpc":"2.0","id":1}"#)).await;
    assert_eq!(rsp["error"]["code"], -32600, "{rsp}");
    let (_, rsp) = raw_http(addr, &post(r#"{"jsonrpc":"2.0","id":1,"method":5}"#)).await;
    assert_eq!(rsp["error"]["code"], -32600, "{rsp}");

    let (status, rsp) = raw_http(addr, &post(r#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#)).await;
    assert_eq!(status, 200);
    assert_eq!(rsp["error"]["code"], -32601, "{rsp}");

    // A body announced larger than 1 MiB is refused from its headers alone.
    let oversized = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                      Content-Length: 2000000\r\nConnection: close\r\n\r\n";
    let (status, rsp) = raw_http(addr, oversized).await;
    assert_eq!(status, 413);
    assert_eq!(rsp["error"]["code"], -32007, "{rsp}");

    // Batches work up to their limit.
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"chain_head"},{"jsonrpc":"2.0","id":2,"method":"nope"}]"#;
    let (_, rsp) = raw_http(addr, &post(batch)).await;
    let rsp = rsp.as_array().expect("batch response").clone();
    assert_eq!(rsp.len(), 2);
    let too_big: Vec<Value> = (0..100)
        .map(|i| json!({ "jsonrpc": "2.0", "id": i, "method": "chain_head" }))
        .collect();
    let (_, rsp) = raw_http(addr, &post(&Value::from(too_big).to_string())).await;
    assert!(rsp["error"]["code"].is_i64(), "{rsp}");

    server.stop().await;
}

#[tokio::test]
async fn client_times_out_and_reports_connection_errors() {
    // A listener that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let accept = tokio::spawn(async move {
        let conn = silent.accept().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(conn);
    });
    let err = client::call_with_timeout(
        silent_addr,
        "chain_head",
        Value::Null,
        Duration::from_millis(200),
    )
    .await
    .expect_err("must time out");
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    accept.abort();

    let (_node, server) = start_fake().await;
    let addr = server.local_addr();
    server.stop().await;
    let err = client::call_with_timeout(addr, "chain_head", Value::Null, Duration::from_secs(5))
        .await
        .expect_err("server is stopped");
    assert!(matches!(err, ClientError::Io { .. }), "{err}");
}

/// A head subscription's connection: JSON over [`WsClient`].
struct Ws(WsClient);

impl Ws {
    async fn connect(addr: SocketAddr) -> Ws {
        Ws(WsClient::connect(addr, "/").await.expect("websocket handshake"))
    }

    async fn send(&mut self, msg: &Value) {
        self.0.send_text(&msg.to_string()).await.expect("send frame");
    }

    /// The next text message, or `None` when the server closes the connection.
    async fn recv(&mut self) -> Option<Value> {
        let text = self.0.recv_text().await.ok()??;
        Some(serde_json::from_str(&text).expect("text frame is JSON"))
    }

    async fn recv_timeout(&mut self) -> Option<Value> {
        tokio::time::timeout(Duration::from_secs(10), self.recv())
            .await
            .expect("message in time")
    }
}

#[tokio::test]
async fn websocket_head_subscription() {
    let (node, server) = start_fake().await;
    let addr = server.local_addr();
    let mut ws = Ws::connect(addr).await;

    // Plain calls work over WebSocket too.
    ws.send(&json!({ "jsonrpc": "2.0", "id": 1, "method": "chain_head" }))
        .await;
    let rsp = ws.recv_timeout().await.expect("response");
    assert_eq!(rsp["result"]["height"], HEAD_HEIGHT);

    ws.send(&json!({ "jsonrpc": "2.0", "id": 2, "method": "chain_subscribeHeads", "params": [1] }))
        .await;
    let rsp = ws.recv_timeout().await.expect("response");
    assert_eq!(rsp["error"]["code"], -32602, "{rsp}");

    ws.send(&json!({ "jsonrpc": "2.0", "id": 3, "method": "chain_subscribeHeads" }))
        .await;
    let rsp = ws.recv_timeout().await.expect("response");
    assert_eq!(rsp["id"], 3);
    let sub_id = rsp["result"].clone();
    assert!(!sub_id.is_null(), "{rsp}");

    let mut new_block = block(HEAD_HEIGHT);
    for height in [3, 4] {
        new_block.height = height;
        new_block.hash = hash_of(0xb000 + height);
        let head = head_of(&new_block);
        node.heads.send(head.clone()).expect("a subscriber");
        let note = ws.recv_timeout().await.expect("notification");
        assert_eq!(note["method"], "chain_head", "{note}");
        assert_eq!(note["params"]["subscription"], sub_id);
        let got: HeadView =
            serde_json::from_value(note["params"]["result"].clone()).expect("HeadView");
        assert_eq!(got, head);
    }

    ws.send(&json!({ "jsonrpc": "2.0", "id": 4, "method": "chain_unsubscribeHeads", "params": [sub_id] })).await;
    let rsp = ws.recv_timeout().await.expect("response");
    assert_eq!(rsp["result"], true, "{rsp}");

    // Stopping the server closes the open WebSocket connection.
    let stopped = tokio::time::timeout(Duration::from_secs(10), server.stop()).await;
    assert!(
        stopped.is_ok(),
        "graceful stop hangs with an open WebSocket"
    );
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), ws.recv())
            .await
            .expect("closed"),
        None
    );
}

#[tokio::test]
async fn bind_error_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let err = learnchain_rpc::start(addr, FakeNode::new())
        .await
        .expect_err("port in use");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn the_model_file_route_serves_bytes_beside_json_rpc() {
    let (_node, handle) = start_fake().await;
    let addr = handle.local_addr();
    let t = Duration::from_secs(10);
    assert_eq!(client::get(addr, "/model.safetensors", t).await.expect("head"), b"model file 2");
    assert_eq!(client::get(addr, "/model.safetensors?height=1", t).await.expect("height 1"), b"model file 1");
    let status = |r: Result<Vec<u8>, ClientError>| match r {
        Err(ClientError::Http { status, body }) => (status, body),
        other => panic!("expected an HTTP error, got {other:?}"),
    };
    let (code, body) = status(client::get(addr, "/model.safetensors?height=7", t).await);
    assert_eq!(code, 404);
    assert!(body.contains("no block at height 7"), "{body}");
    let (code, body) = status(client::get(addr, "/model.safetensors?height=x", t).await);
    assert_eq!((code, body.contains("\"x\"")), (400, true), "{body}");
    let (code, _) = status(client::get(addr, &format!("/model.safetensors?height={BROKEN_HEIGHT}"), t).await);
    assert_eq!(code, 500);
    // JSON-RPC on the same port is untouched.
    let head: HeadView = call_ok(addr, "chain_head", Value::Null).await;
    assert_eq!(head.height, HEAD_HEIGHT);
    handle.stop().await;
}
