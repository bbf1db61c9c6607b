//! The genesis: every protocol parameter of a chain, written as a TOML file a person can read
//! and edit, and hashed canonically into the chain id.
//!
//! A genesis is loaded with [`Genesis::from_toml_str`], which parses *and* validates it:
//! anything that would make the chain impossible to run (a quorum above the member count, a
//! model larger than the size limits allow, an initial target above the PoW limit, …) is
//! refused with a message naming the field. Unknown fields are refused too, so a typo cannot
//! silently fall back to a default.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::block::empty_body_root;
use crate::encoding::{self, MAX_MESSAGE_BYTES};
use crate::fixed::{Fixed6, Probability};
use crate::hash::{Hash32, TAG_CHAIN_ID, TaggedHasher, model_hash};
use crate::header::{HEADER_VERSION, Header};
pub use crate::model::{Architecture, ModelSpec};
pub use crate::privacy::PrivacyPolicy;
use crate::privacy::{MAX_CLIP_BOUND, MAX_NOISE_MULTIPLIER};
pub use crate::update::UpdateEncoding;

/// Hard ceiling on submissions in one block, whatever a genesis asks for.
pub const MAX_SUBMISSIONS_HARD: u32 = 1024;
/// Hard ceiling on model parameters.
pub const MAX_MODEL_PARAMS_HARD: u64 = 4_000_000;

/// Most hidden layers of an MLP.
pub const MAX_HIDDEN_LAYERS: usize = 16;
/// Hard ceiling on the ring size, whatever a genesis asks for.
pub const MAX_RING_SIZE_HARD: u32 = 1024;
/// Hard ceiling on registrations in one block.
pub const MAX_REGISTRATIONS_HARD: u32 = 1024;
/// Most leading zero bits an open-enrolment stamp may be asked for.
pub const MAX_STAMP_BITS: u32 = 40;

/// Bytes of a submission besides its update vector (ids, round, counts, DP declaration and a
/// ring signature over `ring_size` members), rounded up.
pub fn submission_overhead_bytes(ring_size: u32) -> u64 {
    512 + 32 * u64::from(ring_size)
}

/// How the accepted updates of a block are combined. A consensus rule: every validator
/// recomputes it from the block body (`learnchain-aggregate` has the integer definitions).
///
/// In TOML a rule without parameters is a string (`aggregation = "median"`), one with
/// parameters a table (`aggregation = { krum = { f = 1 } }`). On the command line and in
/// logs it is written `RULE[:PARAMS]` ([`AggregationRule::from_str`]): `mean`, `median`,
/// `trimmed-mean:0.2`, `krum:1`, `multi-krum:1,4`, `bulyan:1`, `geometric-median:8`,
/// `l-nearest:5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AggregationRule {
    /// Coordinate-wise arithmetic mean (FedAvg with equal weights), rounded half away from
    /// zero.
    Mean,
    /// Coordinate-wise median.
    Median,
    /// Coordinate-wise mean after dropping the ⌊β·n⌋ smallest and largest values.
    TrimmedMean {
        /// β, the fraction trimmed from each side, in [0, 0.5).
        beta: Fixed6,
    },
    /// Krum: the update with the smallest sum of squared distances to its n − f − 2 nearest.
    Krum {
        /// Byzantine updates tolerated; needs n ≥ 2f + 3.
        f: u32,
    },
    /// Multi-Krum: the mean of the m updates with the best Krum scores.
    MultiKrum {
        /// Byzantine updates tolerated; needs n ≥ 2f + 3.
        f: u32,
        /// Updates averaged.
        m: u32,
    },
    /// Bulyan: iterated Krum selects n − 2f, then a coordinate-wise trimmed mean.
    Bulyan {
        /// Byzantine updates tolerated; needs n ≥ 4f + 3.
        f: u32,
    },
    /// Geometric median by a fixed number of integer Weiszfeld iterations.
    GeometricMedian {
        /// Iterations, 1 to 100.
        iterations: u32,
    },
    /// LearningChain's l-nearest: the mean of the l updates nearest the coordinate-wise
    /// median.
    LNearest {
        /// Updates averaged.
        l: u32,
    },
}

impl AggregationRule {
    /// The integer rule of `learnchain-aggregate`.
    pub fn to_rule(self) -> learnchain_aggregate::Rule {
        use learnchain_aggregate::Rule;
        match self {
            AggregationRule::Mean => Rule::Mean,
            AggregationRule::Median => Rule::Median,
            AggregationRule::TrimmedMean { beta } => {
                Rule::TrimmedMean { trim_ppm: u32::try_from(beta.0).unwrap_or(u32::MAX) }
            }
            AggregationRule::Krum { f } => Rule::Krum { f },
            AggregationRule::MultiKrum { f, m } => Rule::MultiKrum { f, m },
            AggregationRule::Bulyan { f } => Rule::Bulyan { f },
            AggregationRule::GeometricMedian { iterations } => Rule::GeometricMedian { iterations },
            AggregationRule::LNearest { l } => Rule::LNearest { l },
        }
    }

    /// The fewest submissions a block must carry for the rule to run (a block of
    /// registrations only carries none and is exempt).
    pub fn min_inputs(self) -> usize {
        learnchain_aggregate::min_inputs(self.to_rule())
    }
}

/// The rule's parameters alone (β range, m ≥ 1, iteration bounds, …): its precondition at
/// the largest input count any block could have.
fn check_rule_parameters(rule: learnchain_aggregate::Rule) -> Result<(), learnchain_aggregate::AggregateError> {
    learnchain_aggregate::check_precondition(rule, learnchain_aggregate::MAX_INPUTS)
}

impl std::fmt::Display for AggregationRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            AggregationRule::Mean => f.write_str("mean"),
            AggregationRule::Median => f.write_str("median"),
            AggregationRule::TrimmedMean { beta } => write!(f, "trimmed-mean:{beta}"),
            AggregationRule::Krum { f: byz } => write!(f, "krum:{byz}"),
            AggregationRule::MultiKrum { f: byz, m } => write!(f, "multi-krum:{byz},{m}"),
            AggregationRule::Bulyan { f: byz } => write!(f, "bulyan:{byz}"),
            AggregationRule::GeometricMedian { iterations } => write!(f, "geometric-median:{iterations}"),
            AggregationRule::LNearest { l } => write!(f, "l-nearest:{l}"),
        }
    }
}

impl std::str::FromStr for AggregationRule {
    type Err = String;

    /// Parses `RULE[:PARAMS]` (see the type's docs).
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, params) = match s.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        };
        let int = |what: &str| -> Result<u32, String> {
            let p = params.ok_or_else(|| format!("{name} needs {what}, e.g. {name}:1"))?;
            p.trim().parse::<u32>().map_err(|_| format!("{name}: {what} must be a whole number, got {p:?}"))
        };
        let rule = match name {
            "mean" | "median" if params.is_some() => return Err(format!("{name} takes no parameters")),
            "mean" => AggregationRule::Mean,
            "median" => AggregationRule::Median,
            "trimmed-mean" => {
                let p = params.ok_or("trimmed-mean needs β, e.g. trimmed-mean:0.2")?;
                let beta: f64 = p.trim().parse().map_err(|_| format!("trimmed-mean: β must be a number, got {p:?}"))?;
                if !(0.0..0.5).contains(&beta) {
                    return Err(format!("trimmed-mean: β must be in [0, 0.5), got {beta}"));
                }
                AggregationRule::TrimmedMean { beta: Fixed6((beta * Fixed6::SCALE as f64).round() as u64) }
            }
            "krum" => AggregationRule::Krum { f: int("f")? },
            "multi-krum" => {
                let p = params.ok_or("multi-krum needs f and m, e.g. multi-krum:1,4")?;
                let (a, b) = p.split_once(',').ok_or("multi-krum needs f and m, e.g. multi-krum:1,4")?;
                let parse = |v: &str, what: &str| {
                    v.trim().parse::<u32>().map_err(|_| format!("multi-krum: {what} must be a whole number, got {v:?}"))
                };
                AggregationRule::MultiKrum { f: parse(a, "f")?, m: parse(b, "m")? }
            }
            "bulyan" => AggregationRule::Bulyan { f: int("f")? },
            "geometric-median" => AggregationRule::GeometricMedian { iterations: int("the iteration count")? },
            "l-nearest" => AggregationRule::LNearest { l: int("l")? },
            other => {
                return Err(format!(
                    "unknown aggregation rule {other:?}: expected mean, median, trimmed-mean:β, krum:f, multi-krum:f,m, bulyan:f, geometric-median:iterations or l-nearest:l"
                ));
            }
        };
        check_rule_parameters(rule.to_rule()).map_err(|e| e.to_string())?;
        Ok(rule)
    }
}

/// Hyper-parameters of local training. They shape what honest data sources do; validators
/// do not re-run training.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingParams {
    /// SGD step size.
    pub learning_rate: Fixed6,
    /// Local SGD steps per round.
    pub local_steps: u32,
    /// Examples per step.
    pub batch_size: u32,
    /// L2 weight decay.
    #[serde(default)]
    pub weight_decay: Fixed6,
}

/// Rules for what a block may contain and how updates combine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusParams {
    /// Submissions a miner waits for before building a block (it may build with fewer, at
    /// least one, once `round_timeout_ms` has passed since the head arrived).
    pub quorum: u32,
    /// Most submissions one block may carry.
    pub max_submissions: u32,
    /// Round timeout in milliseconds.
    pub round_timeout_ms: u64,
    /// The aggregation rule.
    pub aggregation: AggregationRule,
    /// Largest absolute value of any coordinate of a quantized update.
    pub max_update_abs: i32,
    /// Most members in one ring. A registry up to this size is one ring; a larger one is
    /// split into groups of at most this size by a permutation seeded from the base block's
    /// hash, and a submission signs over its member's group. The anonymity set of a
    /// submission is its group.
    #[serde(default = "default_ring_size")]
    pub ring_size: u32,
    /// How submissions carry their update: `"i32"` (the default), `"i16"` / `"i8"` with one
    /// scale per tensor, or `"i16:N"` / `"i8:N"` with one scale per chunk of N parameters
    /// (see [`crate::update`]). The default is not written, so a genesis without the key
    /// keeps its chain id.
    #[serde(default, skip_serializing_if = "UpdateEncoding::is_i32")]
    pub update_encoding: UpdateEncoding,
}

fn default_ring_size() -> u32 {
    32
}

/// Who may join the member registry after genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentParams {
    /// Ed25519 public key of the enrolment authority, which may register and revoke
    /// members. None: no authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<Hash32>,
    /// Open enrolment: anyone may register a key with a proof-of-work stamp of at least
    /// this many leading zero bits. 0: closed (only the authority registers).
    #[serde(default)]
    pub open_stamp_bits: u32,
    /// Most registrations one block may carry.
    #[serde(default = "default_max_registrations")]
    pub max_per_block: u32,
}

fn default_max_registrations() -> u32 {
    64
}

impl Default for EnrolmentParams {
    /// Closed: the genesis members only.
    fn default() -> Self {
        EnrolmentParams { authority: None, open_stamp_bits: 0, max_per_block: default_max_registrations() }
    }
}

impl EnrolmentParams {
    /// Whether the registry can change after genesis.
    pub fn is_open(&self) -> bool {
        self.authority.is_some() || self.open_stamp_bits > 0
    }
}

/// Proof-of-work parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowParams {
    /// Target of block 1 (256-bit big-endian; a hash must be ≤ it).
    pub initial_target: Hash32,
    /// The easiest target ever allowed (the difficulty floor).
    pub pow_limit: Hash32,
    /// Block interval the retarget steers toward, in milliseconds.
    pub block_interval_ms: u64,
    /// Smoothing window N of the per-block EMA retarget (see `learnchain-chain`'s
    /// `difficulty` module).
    pub retarget_window: u32,
    /// How far ahead of local time a block timestamp may be, in milliseconds.
    #[serde(default = "default_max_future_ms")]
    pub max_future_ms: u64,
    /// How many ancestors the median-time-past rule looks at.
    #[serde(default = "default_median_time_span")]
    pub median_time_span: u32,
}

fn default_max_future_ms() -> u64 {
    15_000
}

fn default_median_time_span() -> u32 {
    11
}

/// Size limits of messages on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest encoded block.
    pub max_block_bytes: u64,
    /// Largest encoded submission.
    pub max_submission_bytes: u64,
    /// Largest sync response.
    pub max_sync_response_bytes: u64,
    /// Most blocks one sync request may ask for.
    pub max_blocks_per_request: u32,
}

/// Every protocol parameter of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// A name for people; part of the chain id.
    pub name: String,
    /// Timestamp of the genesis block, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The global model.
    pub model: ModelSpec,
    /// Local training.
    pub training: TrainingParams,
    /// Block contents and aggregation.
    pub consensus: ConsensusParams,
    /// Proof of work.
    pub pow: PowParams,
    /// Message size limits.
    pub limits: Limits,
    /// Differential-privacy policy every submission must meet.
    pub privacy: PrivacyPolicy,
    /// Who may join or leave the registry later.
    #[serde(default)]
    pub enrolment: EnrolmentParams,
    /// Member public keys (ristretto255 encodings) registered from the start: the registry
    /// after the genesis block.
    pub members: Vec<Hash32>,
}

/// Why a genesis was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum GenesisError {
    /// The TOML did not parse into a genesis.
    #[error("genesis is not valid TOML for a learnchain genesis: {0}")]
    Parse(String),
    /// A field has a value the protocol cannot run with.
    #[error("genesis field `{field}` is invalid: {reason}")]
    Invalid {
        /// Dotted path of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The target at which a block takes `hashes` attempts on average: `⌊(2^256 − 1) / hashes⌋`
/// (`hashes` of 0 counts as 1).
pub fn target_for_difficulty(hashes: u64) -> Hash32 {
    let t = primitive_types::U256::MAX / primitive_types::U256::from(hashes.max(1));
    Hash32(t.to_big_endian())
}

fn invalid(field: &'static str, reason: impl Into<String>) -> GenesisError {
    GenesisError::Invalid { field, reason: reason.into() }
}

impl Genesis {
    /// Parses and validates a genesis TOML document.
    pub fn from_toml_str(s: &str) -> Result<Self, GenesisError> {
        let g: Genesis = toml::from_str(s).map_err(|e| GenesisError::Parse(e.to_string()))?;
        g.validate()?;
        Ok(g)
    }

    /// The genesis as TOML.
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The chain id: the tagged hash of the canonical encoding.
    pub fn chain_id(&self) -> Hash32 {
        TaggedHasher::new(TAG_CHAIN_ID).update(encoding::encode(self)).finish()
    }

    /// Number of model parameters (valid after [`Genesis::validate`]).
    pub fn param_count(&self) -> usize {
        usize::try_from(self.model.param_count()).unwrap_or(usize::MAX)
    }

    /// The state root of the genesis block: the initial model and the genesis members.
    pub fn state_root(&self) -> Hash32 {
        let mut members = self.members.clone();
        members.sort_unstable();
        members.dedup();
        let registry = crate::hash::registry_hash(members.iter().map(|k| (k, 0, None)));
        crate::hash::state_root(&model_hash(&self.model.initial_weights()), &registry)
    }

    /// The genesis block's header (height 0, no parent, initial model and members).
    pub fn header(&self) -> Header {
        Header {
            version: HEADER_VERSION,
            chain_id: self.chain_id(),
            height: 0,
            parent: Hash32::ZERO,
            timestamp_ms: self.timestamp_ms,
            target: self.pow.initial_target,
            miner: Hash32::ZERO,
            body_root: empty_body_root(),
            state_root: self.state_root(),
            nonce: 0,
        }
    }

    /// Raises the size limits, where they are lower, to what a full block of this genesis
    /// needs: a submission of this model over a full ring, the maximum submissions and
    /// registrations per block, and a sync response of several such blocks. Call after
    /// changing the model, the ring size or the per-block maxima.
    pub fn fit_limits(&mut self) {
        let submission = self.consensus.update_encoding.max_update_bytes(&self.model)
            + submission_overhead_bytes(self.consensus.ring_size.min(MAX_RING_SIZE_HARD));
        let block = 2048
            + u64::from(self.consensus.max_submissions) * submission
            + u64::from(self.enrolment.max_per_block) * crate::registration::MAX_REGISTRATION_BYTES as u64;
        let l = &mut self.limits;
        l.max_submission_bytes = l.max_submission_bytes.max(submission);
        l.max_block_bytes = l.max_block_bytes.max(block).min(MAX_MESSAGE_BYTES as u64);
        l.max_sync_response_bytes =
            l.max_sync_response_bytes.max(l.max_block_bytes.saturating_mul(4)).min(MAX_MESSAGE_BYTES as u64);
    }

    /// The weakest declaration the privacy policy allows with the genesis's local steps:
    /// the largest sampling rate, the smallest noise multiplier, the largest clip bound.
    pub fn policy_declaration(&self) -> crate::privacy::DpDeclaration {
        crate::privacy::DpDeclaration {
            sample_rate: self.privacy.max_sample_rate,
            noise_multiplier: self.privacy.min_noise_multiplier,
            clip: self.privacy.clip_bound,
            steps: self.training.local_steps,
        }
    }

    /// Checks every rule a runnable chain needs.
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.name.is_empty() || self.name.len() > 64 {
            return Err(invalid("name", "must be 1 to 64 characters"));
        }
        let m = &self.model;
        if !(4..=24).contains(&m.frac_bits) {
            return Err(invalid("model.frac_bits", "must be between 4 and 24"));
        }
        if m.features == 0 || m.features > 100_000 {
            return Err(invalid("model.features", "must be between 1 and 100000"));
        }
        if m.classes < 2 || m.classes > 10_000 {
            return Err(invalid("model.classes", "must be between 2 and 10000"));
        }
        match m.architecture {
            Architecture::Softmax if !m.hidden.is_empty() => {
                return Err(invalid("model.hidden", "must be 0 for a softmax model"));
            }
            Architecture::Mlp if m.hidden.is_empty() || m.hidden.len() > MAX_HIDDEN_LAYERS => {
                return Err(invalid(
                    "model.hidden",
                    format!("an MLP needs 1 to {MAX_HIDDEN_LAYERS} hidden layers (hidden = 32 or hidden = [64, 32])"),
                ));
            }
            Architecture::Mlp if m.hidden.iter().any(|&h| h == 0 || h > 100_000) => {
                return Err(invalid("model.hidden", "every hidden layer needs 1 to 100000 units"));
            }
            _ => {}
        }
        if let Some(input) = &m.input {
            input.check(m.features, m.classes).map_err(|(field, why)| GenesisError::Invalid {
                field: match field {
                    "features" => "model.input.features",
                    "centre" => "model.input.centre",
                    "scale" => "model.input.scale",
                    _ => "model.input.classes",
                },
                reason: why,
            })?;
        }
        let params = m.param_count();
        if params > MAX_MODEL_PARAMS_HARD {
            return Err(invalid(
                "model",
                format!("{params} parameters exceed the limit of {MAX_MODEL_PARAMS_HARD}"),
            ));
        }
        let t = &self.training;
        if t.learning_rate.0 == 0 {
            return Err(invalid("training.learning_rate", "must be positive"));
        }
        if t.local_steps == 0 || t.local_steps > 100_000 {
            return Err(invalid("training.local_steps", "must be between 1 and 100000"));
        }
        if t.batch_size == 0 {
            return Err(invalid("training.batch_size", "must be positive"));
        }
        if u128::from(t.learning_rate.0) * u128::from(t.weight_decay.0) > u128::from(Fixed6::SCALE).pow(2) {
            return Err(invalid(
                "training.weight_decay",
                "learning_rate × weight_decay must be at most 1 (the decay step would overshoot zero)",
            ));
        }
        self.validate_privacy()?;
        let c = &self.consensus;
        if c.quorum == 0 {
            return Err(invalid("consensus.quorum", "must be at least 1"));
        }
        if c.max_submissions < c.quorum || c.max_submissions > MAX_SUBMISSIONS_HARD {
            return Err(invalid(
                "consensus.max_submissions",
                format!("must be between quorum ({}) and {MAX_SUBMISSIONS_HARD}", c.quorum),
            ));
        }
        if c.round_timeout_ms == 0 {
            return Err(invalid("consensus.round_timeout_ms", "must be positive"));
        }
        let rule = c.aggregation;
        check_rule_parameters(rule.to_rule())
            .map_err(|e| invalid("consensus.aggregation", e.to_string()))?;
        let needed = rule.min_inputs();
        if (c.quorum as usize) < needed || (c.max_submissions as usize) < needed {
            return Err(invalid(
                "consensus.aggregation",
                format!(
                    "{rule} needs at least {needed} submissions per block; raise consensus.quorum ({}) and consensus.max_submissions ({}) to at least {needed}",
                    c.quorum, c.max_submissions
                ),
            ));
        }
        if c.max_update_abs <= 0 {
            return Err(invalid("consensus.max_update_abs", "must be positive"));
        }
        c.update_encoding.check().map_err(|why| {
            invalid("consensus.update_encoding", format!("{}: {why}", c.update_encoding))
        })?;
        if let UpdateEncoding::Quantized { width, .. } = c.update_encoding
            && c.max_update_abs < width.max_level()
        {
            return Err(invalid(
                "consensus.max_update_abs",
                format!(
                    "must be at least {} for update_encoding {} (a scale of one grid unit must fit)",
                    width.max_level(),
                    c.update_encoding
                ),
            ));
        }
        let p = &self.pow;
        if p.pow_limit == Hash32::ZERO {
            return Err(invalid("pow.pow_limit", "must be non-zero"));
        }
        if p.initial_target == Hash32::ZERO || p.initial_target > p.pow_limit {
            return Err(invalid("pow.initial_target", "must be non-zero and at most pow.pow_limit"));
        }
        if p.block_interval_ms == 0 {
            return Err(invalid("pow.block_interval_ms", "must be positive"));
        }
        if p.retarget_window == 0 || p.retarget_window > 10_000 {
            return Err(invalid("pow.retarget_window", "must be between 1 and 10000"));
        }
        if p.median_time_span == 0 || p.median_time_span > 101 {
            return Err(invalid("pow.median_time_span", "must be between 1 and 101"));
        }
        let l = &self.limits;
        let min_submission =
            c.update_encoding.max_update_bytes(m) + submission_overhead_bytes(c.ring_size.min(MAX_RING_SIZE_HARD));
        if l.max_submission_bytes < min_submission {
            return Err(invalid(
                "limits.max_submission_bytes",
                format!("must be at least {min_submission} to carry one update of this model"),
            ));
        }
        let min_block = 1024
            + u64::from(c.quorum) * min_submission
            + u64::from(self.enrolment.max_per_block) * crate::registration::MAX_REGISTRATION_BYTES as u64;
        if l.max_block_bytes < min_block {
            return Err(invalid(
                "limits.max_block_bytes",
                format!("must be at least {min_block} to carry a quorum of updates"),
            ));
        }
        if l.max_block_bytes > MAX_MESSAGE_BYTES as u64 {
            return Err(invalid("limits.max_block_bytes", "exceeds the 64 MiB message ceiling"));
        }
        if l.max_sync_response_bytes < l.max_block_bytes + 64
            || l.max_sync_response_bytes > MAX_MESSAGE_BYTES as u64
        {
            return Err(invalid(
                "limits.max_sync_response_bytes",
                "must hold at least one block and stay within 64 MiB",
            ));
        }
        if l.max_blocks_per_request == 0 || l.max_blocks_per_request > 1024 {
            return Err(invalid("limits.max_blocks_per_request", "must be between 1 and 1024"));
        }
        self.validate_members()
    }

    fn validate_members(&self) -> Result<(), GenesisError> {
        let c = &self.consensus;
        if c.ring_size == 0 || c.ring_size > MAX_RING_SIZE_HARD {
            return Err(invalid("consensus.ring_size", format!("must be between 1 and {MAX_RING_SIZE_HARD}")));
        }
        let e = &self.enrolment;
        if e.open_stamp_bits > MAX_STAMP_BITS {
            return Err(invalid("enrolment.open_stamp_bits", format!("must be at most {MAX_STAMP_BITS}")));
        }
        if e.max_per_block == 0 || e.max_per_block > MAX_REGISTRATIONS_HARD {
            return Err(invalid("enrolment.max_per_block", format!("must be between 1 and {MAX_REGISTRATIONS_HARD}")));
        }
        if let Some(key) = &e.authority {
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&key.0)
                .map_err(|_| invalid("enrolment.authority", "is not a valid Ed25519 public key"))?;
            if vk.is_weak() {
                return Err(invalid("enrolment.authority", "is a small-order Ed25519 point, not a key"));
            }
        }
        if !e.is_open() && self.members.len() < c.quorum as usize {
            return Err(invalid(
                "members",
                format!(
                    "{} members cannot meet a quorum of {} and enrolment is closed",
                    self.members.len(),
                    c.quorum
                ),
            ));
        }
        for (i, m) in self.members.iter().enumerate() {
            learnchain_identity::MemberPublic::from_bytes(m.0)
                .map_err(|e| invalid("members", format!("entry {i} ({m}) is not a member key: {e}")))?;
        }
        let mut sorted = self.members.clone();
        sorted.sort();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(invalid("members", "lists the same key twice"));
        }
        Ok(())
    }

    fn validate_privacy(&self) -> Result<(), GenesisError> {
        let p = &self.privacy;
        if p.delta.0 == 0 || p.delta >= Probability(Probability::SCALE) {
            return Err(invalid("privacy.delta", format!("{} is not in (0, 1)", p.delta)));
        }
        if p.min_noise_multiplier.0 == 0 || p.min_noise_multiplier > MAX_NOISE_MULTIPLIER {
            return Err(invalid(
                "privacy.min_noise_multiplier",
                format!("{} must be above 0 and at most {MAX_NOISE_MULTIPLIER}", p.min_noise_multiplier),
            ));
        }
        if p.clip_bound.0 == 0 || p.clip_bound > MAX_CLIP_BOUND {
            return Err(invalid(
                "privacy.clip_bound",
                format!("{} must be above 0 and at most {MAX_CLIP_BOUND}", p.clip_bound),
            ));
        }
        if p.max_sample_rate.0 == 0 || p.max_sample_rate.0 > Fixed6::SCALE {
            return Err(invalid("privacy.max_sample_rate", format!("{} is not in (0, 1]", p.max_sample_rate)));
        }
        if p.max_local_steps < self.training.local_steps {
            return Err(invalid(
                "privacy.max_local_steps",
                format!(
                    "{} is below training.local_steps ({}): honest data sources would be refused",
                    p.max_local_steps, self.training.local_steps
                ),
            ));
        }
        Ok(())
    }

    /// A genesis for a softmax model over `features` inputs and `classes` classes with the
    /// given members and sensible defaults for a local network: near-trivial proof of work,
    /// two-second blocks, FedAvg. Callers adjust fields before use.
    pub fn template(name: &str, features: u32, classes: u32, members: Vec<Hash32>) -> Self {
        let quorum = (members.len() as u32).clamp(1, 4);
        // Easy target: about 1 in 2^12 hashes succeed, so blocks come in milliseconds on a
        // laptop and the retarget takes it from there.
        let mut initial = [0xffu8; 32];
        initial[0] = 0x00;
        initial[1] = 0x0f;
        let mut limit = [0xffu8; 32];
        limit[0] = 0x0f;
        let model = ModelSpec {
            architecture: Architecture::Softmax,
            features,
            classes,
            hidden: Vec::new(),
            init_seed: 1,
            frac_bits: 16,
            input: None,
        };
        let params = model.param_count();
        let ring_size = default_ring_size();
        let submission = 4 * params + submission_overhead_bytes(ring_size);
        Genesis {
            name: name.to_string(),
            timestamp_ms: 1_764_000_000_000,
            model,
            training: TrainingParams {
                learning_rate: Fixed6(100_000),
                local_steps: 10,
                batch_size: 16,
                weight_decay: Fixed6(0),
            },
            consensus: ConsensusParams {
                quorum,
                max_submissions: 16,
                round_timeout_ms: 5_000,
                aggregation: AggregationRule::Mean,
                max_update_abs: 1 << 24,
                ring_size,
                update_encoding: UpdateEncoding::I32,
            },
            pow: PowParams {
                initial_target: Hash32(initial),
                pow_limit: Hash32(limit),
                block_interval_ms: 2_000,
                retarget_window: 16,
                max_future_ms: default_max_future_ms(),
                median_time_span: default_median_time_span(),
            },
            limits: Limits {
                max_block_bytes: (2048 + 16 * submission + 64 * 512).max(1 << 20),
                max_submission_bytes: submission.max(64 * 1024),
                max_sync_response_bytes: (2048 + 16 * submission + 64 * 512).max(1 << 20) * 8,
                max_blocks_per_request: 64,
            },
            privacy: PrivacyPolicy {
                delta: Probability(10_000_000_000), // 1e-5
                min_noise_multiplier: Fixed6(2_000_000),
                clip_bound: Fixed6(1_000_000),
                max_local_steps: 10,
                max_sample_rate: Fixed6(100_000),
            },
            enrolment: EnrolmentParams::default(),
            members,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: u8) -> Vec<Hash32> {
        learnchain_identity::test_member_keys(n as usize).iter().map(|k| Hash32(k.public().to_bytes())).collect()
    }

    #[test]
    fn template_is_valid_and_round_trips_through_toml() {
        let g = Genesis::template("test", 30, 2, members(4));
        g.validate().expect("template valid");
        let text = g.to_toml_string();
        let back = Genesis::from_toml_str(&text).expect("parses");
        assert_eq!(back, g);
        assert_eq!(back.chain_id(), g.chain_id());
    }

    #[test]
    fn difficulty_to_target() {
        assert_eq!(target_for_difficulty(1), Hash32([0xff; 32]));
        let t = target_for_difficulty(1 << 20);
        assert_eq!(&t.0[..3], &[0x00, 0x00, 0x0f]);
        assert_eq!(target_for_difficulty(0), target_for_difficulty(1));
    }

    #[test]
    fn chain_id_changes_with_any_parameter() {
        let g = Genesis::template("test", 30, 2, members(4));
        let mut h = g.clone();
        h.training.learning_rate = Fixed6(100_001);
        assert_ne!(g.chain_id(), h.chain_id());
    }

    #[test]
    fn bad_genesis_is_refused_with_field_name() {
        let mut g = Genesis::template("test", 30, 2, members(4));
        g.consensus.quorum = 5;
        assert!(matches!(g.validate(), Err(GenesisError::Invalid { field: "consensus.max_submissions", .. }) | Err(GenesisError::Invalid { field: "members", .. })));
        let mut g = Genesis::template("test", 30, 2, members(4));
        g.pow.initial_target = Hash32([0xff; 32]);
        assert!(matches!(g.validate(), Err(GenesisError::Invalid { field: "pow.initial_target", .. })));
        let mut g = Genesis::template("test", 30, 2, members(4));
        g.members.push(g.members[0]);
        assert!(matches!(g.validate(), Err(GenesisError::Invalid { field: "members", .. })));
        let mut g = Genesis::template("test", 30, 2, members(4));
        g.members[1] = Hash32([0xff; 32]);
        assert!(matches!(g.validate(), Err(GenesisError::Invalid { field: "members", .. })), "not a point");
        let mut g = Genesis::template("test", 30, 2, members(4));
        g.consensus.ring_size = 0;
        assert!(matches!(g.validate(), Err(GenesisError::Invalid { field: "consensus.ring_size", .. })));
        let mut g = Genesis::template("test", 30, 2, members(4));
        let mut identity = [0u8; 32];
        identity[0] = 1;
        g.enrolment.authority = Some(Hash32(identity));
        assert!(matches!(g.validate(), Err(GenesisError::Invalid { field: "enrolment.authority", .. })));
        // An open registry may start below the quorum, even empty.
        let mut g = Genesis::template("test", 30, 2, vec![]);
        g.consensus.quorum = 2;
        assert!(matches!(g.validate(), Err(GenesisError::Invalid { field: "members", .. })));
        g.enrolment.open_stamp_bits = 12;
        g.validate().expect("open enrolment from an empty registry");
        assert!(matches!(Genesis::from_toml_str("name = 3"), Err(GenesisError::Parse(_))));
        let text = Genesis::template("test", 30, 2, members(4)).to_toml_string();
        let typo = text.replacen("quorum", "quorom", 1);
        assert!(matches!(Genesis::from_toml_str(&typo), Err(GenesisError::Parse(_))));
    }

    #[test]
    fn nonsense_privacy_policy_is_refused_naming_the_field() {
        let field_of = |edit: &dyn Fn(&mut Genesis)| {
            let mut g = Genesis::template("test", 30, 2, members(4));
            edit(&mut g);
            match g.validate() {
                Err(GenesisError::Invalid { field, .. }) => field,
                other => panic!("expected a refusal, got {other:?}"),
            }
        };
        assert_eq!(field_of(&|g| g.privacy.min_noise_multiplier = Fixed6(0)), "privacy.min_noise_multiplier");
        assert_eq!(field_of(&|g| g.privacy.clip_bound = Fixed6(0)), "privacy.clip_bound");
        assert_eq!(field_of(&|g| g.privacy.max_sample_rate = Fixed6(0)), "privacy.max_sample_rate");
        assert_eq!(field_of(&|g| g.privacy.max_sample_rate = Fixed6(1_000_001)), "privacy.max_sample_rate");
        assert_eq!(field_of(&|g| g.privacy.delta = Probability(0)), "privacy.delta");
        assert_eq!(field_of(&|g| g.privacy.delta = Probability(Probability::SCALE)), "privacy.delta");
        assert_eq!(field_of(&|g| g.privacy.max_local_steps = 3), "privacy.max_local_steps");
        assert_eq!(field_of(&|g| g.training.weight_decay = Fixed6(20_000_000)), "training.weight_decay");
        // q = 1 is allowed; δ written as a float in TOML reads back exactly.
        let mut g = Genesis::template("test", 30, 2, members(4));
        g.privacy.max_sample_rate = Fixed6(1_000_000);
        g.privacy.delta = Probability::from_f64(1e-9).expect("valid");
        let back = Genesis::from_toml_str(&g.to_toml_string()).expect("valid");
        assert_eq!(back.chain_id(), g.chain_id());
        let text = g.to_toml_string().replace("max_sample_rate = 1.0", "max_sample_rate = -0.5");
        assert!(matches!(Genesis::from_toml_str(&text), Err(GenesisError::Parse(_))));
    }

    /// The default encoding is not written: the canonical bytes (and so the chain id) of a
    /// genesis without the key are those of the consensus section as it was before the key
    /// existed, and the TOML does not mention it.
    #[test]
    fn update_encoding_defaults_to_i32_without_changing_the_chain_id() {
        #[derive(Serialize)]
        struct ConsensusBefore {
            quorum: u32,
            max_submissions: u32,
            round_timeout_ms: u64,
            aggregation: AggregationRule,
            max_update_abs: i32,
            ring_size: u32,
        }
        let g = Genesis::template("test", 30, 2, members(4));
        let c = &g.consensus;
        let before = ConsensusBefore {
            quorum: c.quorum,
            max_submissions: c.max_submissions,
            round_timeout_ms: c.round_timeout_ms,
            aggregation: c.aggregation,
            max_update_abs: c.max_update_abs,
            ring_size: c.ring_size,
        };
        assert_eq!(encoding::encode(c), encoding::encode(&before));
        let text = g.to_toml_string();
        assert!(!text.contains("update_encoding"), "{text}");
        let explicit = text.replacen("ring_size = 32", "ring_size = 32\nupdate_encoding = \"i32\"", 1);
        assert_ne!(explicit, text);
        let back = Genesis::from_toml_str(&explicit).expect("explicit i32 parses");
        assert_eq!(back.chain_id(), g.chain_id());
        assert_eq!(back.consensus.update_encoding, UpdateEncoding::I32);
    }

    #[test]
    fn update_encoding_is_part_of_the_chain_and_checked() {
        let g = Genesis::template("test", 30, 2, members(4));
        for enc in ["i16", "i8", "i16:128", "i8:4096"] {
            let mut q = g.clone();
            q.consensus.update_encoding = enc.parse().expect("valid");
            q.validate().expect(enc);
            assert_ne!(q.chain_id(), g.chain_id(), "{enc}");
            let text = q.to_toml_string();
            assert!(text.contains(&format!("update_encoding = \"{enc}\"")), "{text}");
            let back = Genesis::from_toml_str(&text).expect(enc);
            assert_eq!(back, q);
            assert_eq!(back.chain_id(), q.chain_id());
        }
        let text = g.to_toml_string().replacen("ring_size = 32", "ring_size = 32\nupdate_encoding = \"i8:12\"", 1);
        match Genesis::from_toml_str(&text) {
            Err(GenesisError::Parse(msg)) => assert!(msg.contains("update_encoding") && msg.contains("[128, 1048576]"), "{msg}"),
            other => panic!("expected a parse error, got {other:?}"),
        }
        let text = g.to_toml_string().replacen("ring_size = 32", "ring_size = 32\nupdate_encoding = \"f16\"", 1);
        match Genesis::from_toml_str(&text) {
            Err(GenesisError::Parse(msg)) => assert!(msg.contains("i16:N / i8:N"), "{msg}"),
            other => panic!("expected a parse error, got {other:?}"),
        }
        let mut bad = g.clone();
        bad.consensus.update_encoding = UpdateEncoding::Quantized {
            width: crate::update::Width::I8,
            groups: crate::update::ScaleGroups::Chunks(5),
        };
        assert!(matches!(bad.validate(), Err(GenesisError::Invalid { field: "consensus.update_encoding", .. })));
        let mut small = g.clone();
        small.consensus.update_encoding = "i16".parse().expect("valid");
        small.consensus.max_update_abs = 30_000;
        assert!(matches!(small.validate(), Err(GenesisError::Invalid { field: "consensus.max_update_abs", .. })));
        small.consensus.update_encoding = "i8".parse().expect("valid");
        small.validate().expect("30000 holds i8 levels");
    }

    /// A quantised genesis may carry smaller limits: they only need to hold its updates.
    #[test]
    fn limits_follow_the_encoding() {
        let mut g = Genesis::template("test", 3_000, 10, members(4));
        g.fit_limits();
        let i32_bytes = g.limits.max_submission_bytes;
        g.consensus.update_encoding = "i8:256".parse().expect("valid");
        g.limits.max_submission_bytes = 1;
        g.limits.max_block_bytes = 1;
        g.fit_limits();
        g.validate().expect("fitted");
        assert!(g.limits.max_submission_bytes * 3 < i32_bytes, "{} vs {i32_bytes}", g.limits.max_submission_bytes);
    }
}
