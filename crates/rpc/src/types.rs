//! The JSON views the RPC server returns: plain serde structs, fields in snake_case.
//!
//! They are deliberately independent of `learnchain-proto`: the node converts its own
//! types into these at the API boundary ([`crate::NodeApi`]), so the wire format of the
//! RPC does not change when an internal type does. Conventions:
//!
//! - hashes, keys, targets and work are hex strings, lowercase, without a `0x` prefix;
//! - heights, timestamps (ms since the Unix epoch) and nonces are JSON integers (u64);
//! - model weights are the fixed-point consensus values converted to `f64`
//!   (`w as f64 / 2^frac_bits`), for display and export only; the consensus state is the
//!   integers behind `model_hash`;
//! - floats must be finite: serde_json writes NaN and infinities as `null`, which these
//!   types then refuse to read back.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The head of the best chain; also the payload of every `chain_head` notification.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct HeadView {
    /// Chain id (hash of the genesis), hex.
    pub chain_id: String,
    /// Height of the head block (genesis = 0).
    pub height: u64,
    /// Hash of the head block, hex.
    pub hash: String,
    /// Hash of the head's parent, hex.
    pub parent: String,
    /// Hash of the global model after the head block, hex.
    pub model_hash: String,
    /// State root of the head block (model and member registry), hex.
    pub state_root: String,
    /// Timestamp of the head block, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Cumulative proof-of-work of the chain up to the head, as a hex integer.
    pub total_work: String,
    /// Number of submissions the head block carries.
    pub submissions: usize,
    /// Number of registrations the head block carries.
    pub registrations: usize,
}

/// One model-update submission, as carried by a block or waiting in the mempool.
/// The update vector itself is not included, only its size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SubmissionView {
    /// Submission id (hash of its canonical encoding), hex.
    pub id: String,
    /// The round it belongs to (height of the block that will include it).
    pub round: u64,
    /// Linking tag of its ring signature for this round, hex.
    pub round_tag: String,
    /// Hash of the block the update was trained on, hex.
    pub base: String,
    /// Number of local training examples the data source declared.
    pub num_examples: u32,
    /// L2 norm of the update, in model units (fixed point converted to float).
    pub update_l2: f64,
    /// Declared DP-SGD Poisson sampling rate `q`.
    pub dp_sample_rate: f64,
    /// Declared DP-SGD noise multiplier `σ`.
    pub dp_noise_multiplier: f64,
    /// Declared DP-SGD per-example clip bound `C`.
    pub dp_clip: f64,
    /// Declared DP-SGD steps in the round.
    pub dp_steps: u32,
}

/// This node's differential-privacy spend (`privacy_status`).
///
/// A node that is not a data source answers with `data_source: false` and `null` for
/// every other field except `stopped` (false).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PrivacyStatusView {
    /// Whether this node trains and submits (has a privacy ledger).
    pub data_source: bool,
    /// The `ε` budget of the ledger.
    pub budget_epsilon: Option<f64>,
    /// `ε` spent so far at `delta`, recomputed from the ledger.
    pub epsilon_spent: Option<f64>,
    /// The `δ` the spend is stated at.
    pub delta: Option<f64>,
    /// The RDP order that gave the tightest `ε` (`null` under the PLD accountant, and
    /// before the first round).
    pub alpha: Option<f64>,
    /// The accountant of the ledger: `"pld"` or `"rdp"`.
    #[serde(default)]
    pub accountant: Option<String>,
    /// Rounds whose updates left this node (each is charged, also if no block included it).
    pub rounds_contributed: Option<u64>,
    /// `ε` the ledger would reach after one more round with the current parameters.
    pub epsilon_after_next_round: Option<f64>,
    /// Whether the node has stopped training and submitting because the next round would
    /// pass the budget (it runs on as an observer).
    pub stopped: bool,
    /// Sampling rate `q` this node trains with.
    pub sample_rate: Option<f64>,
    /// Noise multiplier `σ` this node trains with.
    pub noise_multiplier: Option<f64>,
    /// Clip bound `C` this node trains with.
    pub clip: Option<f64>,
    /// DP-SGD steps per round.
    pub steps_per_round: Option<u32>,
    /// Path of the ledger file.
    pub ledger_path: Option<String>,
}

/// A block: its header fields and the submissions in its body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BlockView {
    /// Block hash, hex.
    pub hash: String,
    /// Block height.
    pub height: u64,
    /// Parent hash, hex.
    pub parent: String,
    /// Timestamp, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Proof-of-work target, hex (256-bit big-endian).
    pub target: String,
    /// Miner's public key, hex.
    pub miner: String,
    /// Merkle root of the body items, hex.
    pub body_root: String,
    /// Hash of the global model after this block, hex.
    pub model_hash: String,
    /// The header's state root (model and member registry after this block), hex.
    pub state_root: String,
    /// Proof-of-work nonce.
    pub nonce: u64,
    /// The registry changes (registrations and revocations) this block carries, in body
    /// order.
    pub registrations: Vec<RegistrationView>,
    /// The submissions this block includes, in body order.
    pub submissions: Vec<SubmissionView>,
}

/// The global model after one block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelView {
    /// Height of the block after which this is the model.
    pub height: u64,
    /// Hash of that block, hex.
    pub block_hash: String,
    /// Hash of the fixed-point model state, hex (equals the block's `model_hash`).
    pub model_hash: String,
    /// Architecture name, e.g. `"softmax"` or `"mlp"`.
    pub architecture: String,
    /// Number of input features.
    pub features: u32,
    /// Number of output classes.
    pub classes: u32,
    /// Width of the first hidden layer (0 for architectures without one); kept for clients
    /// written before deeper networks; `hidden_layers` has every layer.
    pub hidden: u32,
    /// Width of every hidden layer, input side first (empty for softmax regression).
    #[serde(default)]
    pub hidden_layers: Vec<u32>,
    /// Fixed-point fraction bits of the consensus representation.
    pub frac_bits: u8,
    /// All parameters in the architecture's canonical order, as floats.
    pub weights: Vec<f64>,
}

/// The evaluation of the global model after one block on this node's evaluation data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricsView {
    /// Height of the block after which the model was evaluated.
    pub height: u64,
    /// Hash of that block, hex.
    pub block_hash: String,
    /// Fraction of examples classified correctly, in `[0, 1]`.
    pub accuracy: f64,
    /// Mean cross-entropy loss.
    pub loss: f64,
    /// Number of evaluation examples.
    pub examples: usize,
}

/// One connected peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PeerView {
    /// libp2p peer id (base58).
    pub peer_id: String,
    /// The remote address of each open connection to the peer.
    pub addresses: Vec<String>,
    /// The addresses the peer says it listens on (from identify; empty until it answered).
    #[serde(default)]
    pub listen_addrs: Vec<String>,
    /// The peer's agent version from identify, if it sent one.
    pub agent: Option<String>,
    /// `inbound` (the peer dialled us) or `outbound` (we dialled it).
    #[serde(default)]
    pub direction: String,
    /// The peer manager's score: 0 for a peer that never offended, lower after each
    /// offence, decaying back toward 0; at −20 the peer is disconnected, at −50 banned.
    #[serde(default)]
    pub score: f64,
    /// Gossipsub's own score of the peer (mesh behaviour, invalid messages, and the peer
    /// manager's score).
    #[serde(default)]
    pub gossip_score: f64,
    /// Offences counted against the peer.
    #[serde(default)]
    pub offences: u64,
    /// The most recent offence, by name (e.g. `invalid_block`, `rate_limited`).
    #[serde(default)]
    pub last_offence: Option<String>,
}

/// A peer the node has banned: its connections are refused until the ban ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BanView {
    /// libp2p peer id (base58).
    pub peer_id: String,
    /// Seconds until the ban ends.
    pub remaining_s: u64,
    /// The offence that brought the peer's score to the ban threshold.
    pub reason: String,
    /// The peer's score now.
    pub score: f64,
    /// Offences counted against the peer.
    pub offences: u64,
}

/// Facts about this node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct NodeInfoView {
    /// The node's name from its configuration (`--name`).
    #[serde(default)]
    pub name: String,
    /// Software version, e.g. `"learnchain/0.1.0"`.
    pub version: String,
    /// Chain id (hash of the genesis), hex.
    pub chain_id: String,
    /// Human-readable name of the genesis / network.
    pub genesis_name: String,
    /// This node's libp2p peer id.
    pub peer_id: String,
    /// Roles this node runs, e.g. `["miner", "data-source"]`.
    pub roles: Vec<String>,
    /// Multiaddresses the node listens on.
    pub listen_addrs: Vec<String>,
    /// Address this RPC server is bound to.
    pub rpc_addr: String,
    /// The node's data directory.
    pub data_dir: String,
    /// Height of the current head.
    pub height: u64,
    /// Number of submissions in the mempool.
    pub mempool: usize,
    /// Whether the node is still catching up with its peers.
    pub syncing: bool,
    /// The chain's aggregation rule, from its genesis, in the rule's text form (e.g.
    /// `"mean"`, `"krum:1"`, `"trimmed-mean:0.2"`).
    pub aggregation: String,
    /// Set when this node is a deliberately hostile data source for tests and demos (the
    /// attack it mounts, e.g. `"sign-flip"`); `null` otherwise.
    pub adversary: Option<String>,
}

/// The pool for the next block: submissions for the next round and pending registry
/// changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MempoolView {
    /// The round being collected (head height + 1).
    pub round: u64,
    /// The base every accepted submission must name (the head hash), hex.
    pub base: String,
    /// The waiting submissions, ordered by id.
    pub submissions: Vec<SubmissionView>,
    /// The registry changes (registrations and revocations) waiting for a block.
    pub registrations: Vec<RegistrationView>,
}

/// One registry entry (`members_list`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemberView {
    /// The member's public key, hex (64 digits).
    pub key: String,
    /// Height of the block that registered it (0 = genesis); it may sign submissions from
    /// the next block on.
    pub registered_at: u64,
    /// Height of the block that revoked it, `null` while it is active.
    pub revoked_at: Option<u64>,
    /// Whether the key is in the registry after the head (registered and not revoked).
    pub active: bool,
}

/// The member registry after the head (`members_list`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MembersView {
    /// Height of the head the registry is read at.
    pub height: u64,
    /// Ring size of the genesis: how many member keys one ring signature signs over.
    pub ring_size: u32,
    /// Number of ring groups submissions on top of the head sign over.
    pub groups: usize,
    /// Number of active members.
    pub active: usize,
    /// The enrolment authority's Ed25519 public key, hex; `null` if the chain has none.
    pub enrolment_authority: Option<String>,
    /// Proof-of-work bits a registration stamp needs (0 = open enrolment is closed).
    pub open_stamp_bits: u32,
    /// Every key ever registered, active or revoked, sorted by key.
    pub members: Vec<MemberView>,
}

/// A registry change (registration or revocation), as carried by a block or waiting in
/// the pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RegistrationView {
    /// Registration id, hex (the id `members_register` returned for it).
    pub id: String,
    /// The member public key it adds or removes, hex.
    pub member: String,
    /// `"register"` or `"revoke"`.
    pub action: String,
    /// What authorises it: `"authority"` (signed by the enrolment authority) or `"stamp"`
    /// (carries a proof-of-work stamp).
    pub authorisation: String,
}

/// What the block's aggregation rule did with one submission (`aggregate_report`).
///
/// Which of the optional fields are set depends on the rule: coordinate-wise rules
/// (median, trimmed mean, Bulyan's second stage) set `kept_coordinates` and
/// `coordinates`; the geometric median sets `weight_ppm`; distance-based rules (Krum,
/// multi-Krum, Bulyan's selection, l-nearest) set `score`. The others are `null`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubmissionAggregationView {
    /// Submission id, hex.
    pub id: String,
    /// Linking tag of its ring signature for the block's round, hex.
    pub round_tag: String,
    /// What the rule did with it: `"selected"` (it went into the aggregate whole),
    /// `"rejected"` (it was left out), `"trimmed"` (a coordinate-wise rule kept it at
    /// some coordinates only) or `"weighted"` (it went in with a weight of its own).
    pub outcome: String,
    /// Coordinate-wise rules: the number of coordinates at which it was kept.
    pub kept_coordinates: Option<u64>,
    /// Coordinate-wise rules: the number of coordinates of the update (the denominator
    /// of `kept_coordinates`).
    pub coordinates: Option<u64>,
    /// Geometric median: its share of the aggregate, in millionths.
    pub weight_ppm: Option<u32>,
    /// Its Krum score or its squared distance to the median, as a decimal integer string
    /// (the value is a u128, too large for a JSON number).
    pub score: Option<String>,
}

/// The aggregation of one block (`aggregate_report`): the block's rule recomputed over
/// the submissions it carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AggregateReportView {
    /// Height of the block.
    pub height: u64,
    /// Hash of the block, hex.
    pub hash: String,
    /// The aggregation rule in its text form, e.g. `"krum:1"`, `"trimmed-mean:0.2"`,
    /// `"mean"`.
    pub rule: String,
    /// One entry per submission, in body order (sorted by id); empty for the genesis
    /// block.
    pub submissions: Vec<SubmissionAggregationView>,
}
