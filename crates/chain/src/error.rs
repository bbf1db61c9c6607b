//! Validation errors and what each one means for the peer that sent the object.
//!
//! Every way a block or submission can fail is a variant here. [`BlockError::verdict`] and
//! [`SubmissionError::verdict`] are the single place that maps an error to a gossip
//! [`Verdict`]: `Reject` means the sender broke a rule no honest node breaks (penalise it),
//! `Ignore` means the object is useless to us now but the sender may be honest (a block
//! whose parent we lack, a stale submission, a duplicate).

use learnchain_proto::{DecodeError, Hash32, UpdateEncoding, UpdateError};
use thiserror::Error;

/// What to tell gossip about a message, and so what the sender deserves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: propagate.
    Accept,
    /// Not useful now, not the sender's fault: drop quietly.
    Ignore,
    /// Invalid by the rules: drop and penalise the sender.
    Reject,
}

/// Why a submission is not acceptable.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SubmissionError {
    /// Bytes did not decode.
    #[error("undecodable submission: {0}")]
    Decode(#[from] DecodeError),
    /// Made for another chain.
    #[error("submission for chain {got}, this chain is {expected}")]
    WrongChain {
        /// This chain.
        expected: Hash32,
        /// The submission's chain.
        got: Hash32,
    },
    /// The update does not have one coordinate per model parameter.
    #[error("update has {got} coordinates, the model has {expected}")]
    WrongLength {
        /// Model parameters.
        expected: usize,
        /// Update coordinates.
        got: usize,
    },
    /// A coordinate exceeds the genesis bound.
    #[error("update coordinate {index} is {value}, beyond the bound ±{bound}")]
    UpdateTooLarge {
        /// The coordinate.
        index: usize,
        /// Its value.
        value: i32,
        /// The genesis bound.
        bound: i32,
    },
    /// The update is not in the genesis `update_encoding`.
    #[error("update is encoded as {got}, but this chain's genesis update_encoding is {expected}")]
    WrongEncoding {
        /// The genesis encoding.
        expected: UpdateEncoding,
        /// The submission's.
        got: UpdateEncoding,
    },
    /// A quantised update without one scale per tensor or chunk of its encoding.
    #[error("update carries {got} scales, its encoding needs {expected} (one per tensor or chunk)")]
    ScaleCount {
        /// Groups of the encoding.
        expected: usize,
        /// Scales carried.
        got: usize,
    },
    /// A quantised update with a scale of zero.
    #[error("update scale {group} is 0; every scale must be at least 1 grid unit")]
    ZeroScale {
        /// The tensor or chunk.
        group: usize,
    },
    /// A scale large enough that a level could decode beyond `max_update_abs`.
    #[error("update scale {group} is {scale} grid units, above {max}: a level could decode beyond max_update_abs")]
    ScaleTooLarge {
        /// The tensor or chunk.
        group: usize,
        /// Its scale.
        scale: u32,
        /// `max_update_abs / max_level`.
        max: u32,
    },
    /// A quantised level outside the symmetric range (`-128` for `i8`, `-32768` for `i16`).
    #[error("update level {index} is {value}, outside the symmetric range ±{max}")]
    LevelOutOfRange {
        /// The coordinate.
        index: usize,
        /// Its level.
        value: i32,
        /// The largest level magnitude.
        max: i32,
    },
    /// The declared DP-SGD parameters are weaker than the genesis privacy policy.
    #[error("weaker privacy than the network allows: {0}")]
    WeakPrivacy(#[from] learnchain_proto::privacy::PolicyViolation),
    /// The update is longer than its declared DP-SGD parameters allow.
    #[error(
        "update L2 norm {norm} exceeds {bound} (grid units), the most its declared steps, learning rate, clip and noise allow"
    )]
    UpdateNormTooLarge {
        /// `⌈‖Δ‖⌉` in grid units (the check itself compares exact squares).
        norm: u128,
        /// The bound in grid units.
        bound: u128,
    },
    /// The round is not base height + 1.
    #[error("submission claims round {got} but its base implies round {expected}")]
    WrongRound {
        /// Base height + 1.
        expected: u64,
        /// Claimed round.
        got: u64,
    },
    /// The registry at the base is empty: nobody may submit.
    #[error("no member is registered at the base block")]
    NoMembers,
    /// The ring names a group the registry at the base does not have.
    #[error("ring group {group} does not exist at the base block ({groups} groups)")]
    UnknownGroup {
        /// Claimed group.
        group: u32,
        /// Groups at the base.
        groups: usize,
    },
    /// The ring is not the registry (or the named group of it) at the base: taken at
    /// another height, or containing a non-member or a revoked member.
    #[error("the ring is not group {group} of the member registry at the base block (a ring from another height, or with a key that is not a member there)")]
    RingMismatch {
        /// Claimed group.
        group: u32,
    },
    /// The ring signature does not verify.
    #[error("ring signature does not verify: {0}")]
    BadRingSignature(learnchain_identity::VerifyError),
    /// The base is not our head (stale, or for a branch we are not on).
    #[error("base {0} is not the current head")]
    NotOnHead(Hash32),
    /// We already hold this submission.
    #[error("submission already known")]
    Duplicate,
    /// The same member already submitted something else this round.
    #[error("a different submission with round tag {0} is already known this round")]
    Equivocation(Hash32),
    /// The pool holds as many as it may.
    #[error("submission pool is full")]
    PoolFull,
}

impl From<UpdateError> for SubmissionError {
    /// Each way an encoded update can be malformed is its own submission error.
    fn from(e: UpdateError) -> Self {
        match e {
            UpdateError::WrongEncoding { expected, got } => SubmissionError::WrongEncoding { expected, got },
            UpdateError::WrongLength { expected, got } => SubmissionError::WrongLength { expected, got },
            UpdateError::CoordinateTooLarge { index, value, bound } => SubmissionError::UpdateTooLarge { index, value, bound },
            UpdateError::ScaleCount { expected, got } => SubmissionError::ScaleCount { expected, got },
            UpdateError::ZeroScale { group } => SubmissionError::ZeroScale { group },
            UpdateError::ScaleTooLarge { group, scale, max } => SubmissionError::ScaleTooLarge { group, scale, max },
            UpdateError::LevelOutOfRange { index, value, max } => SubmissionError::LevelOutOfRange { index, value, max },
        }
    }
}

impl SubmissionError {
    /// A short name of the error's kind, `snake_case` (the `reason` label of the node's
    /// rejection metrics; a bounded set).
    pub fn reason(&self) -> &'static str {
        match self {
            SubmissionError::Decode(..) => "decode",
            SubmissionError::WrongChain { .. } => "wrong_chain",
            SubmissionError::WrongLength { .. } => "wrong_length",
            SubmissionError::UpdateTooLarge { .. } => "update_too_large",
            SubmissionError::WrongEncoding { .. } => "wrong_encoding",
            SubmissionError::ScaleCount { .. } => "scale_count",
            SubmissionError::ZeroScale { .. } => "zero_scale",
            SubmissionError::ScaleTooLarge { .. } => "scale_too_large",
            SubmissionError::LevelOutOfRange { .. } => "level_out_of_range",
            SubmissionError::WeakPrivacy(..) => "weak_privacy",
            SubmissionError::UpdateNormTooLarge { .. } => "update_norm_too_large",
            SubmissionError::WrongRound { .. } => "wrong_round",
            SubmissionError::NoMembers => "no_members",
            SubmissionError::UnknownGroup { .. } => "unknown_group",
            SubmissionError::RingMismatch { .. } => "ring_mismatch",
            SubmissionError::BadRingSignature(..) => "bad_ring_signature",
            SubmissionError::NotOnHead(..) => "not_on_head",
            SubmissionError::Duplicate => "duplicate",
            SubmissionError::Equivocation(..) => "equivocation",
            SubmissionError::PoolFull => "pool_full",
        }
    }

    /// The gossip verdict for this error.
    pub fn verdict(&self) -> Verdict {
        match self {
            SubmissionError::NotOnHead(_) | SubmissionError::Duplicate | SubmissionError::PoolFull => {
                Verdict::Ignore
            }
            _ => Verdict::Reject,
        }
    }
}

/// Why a registration is not acceptable.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RegistrationError {
    /// Bytes did not decode.
    #[error("undecodable registration: {0}")]
    Decode(#[from] DecodeError),
    /// Made for another chain.
    #[error("registration for chain {got}, this chain is {expected}")]
    WrongChain {
        /// This chain.
        expected: Hash32,
        /// The registration's chain.
        got: Hash32,
    },
    /// The member key is not a ristretto255 point.
    #[error("member {0} is not a valid member key: {1}")]
    NotAKey(Hash32, learnchain_identity::KeyError),
    /// Signed by an authority, but the genesis names none.
    #[error("this chain has no enrolment authority")]
    NoAuthority,
    /// The authority's signature does not verify.
    #[error("the enrolment authority's signature does not verify")]
    BadAuthoritySignature,
    /// The member's proof of possession does not verify.
    #[error("the member's proof of possession of its key does not verify")]
    BadPossession,
    /// A stamped registration on a chain without open enrolment.
    #[error("this chain does not allow open enrolment")]
    ClosedEnrolment,
    /// The enrolment stamp has too little work.
    #[error("enrolment stamp has {bits} leading zero bits, {required} required")]
    WeakStamp {
        /// Bits found.
        bits: u32,
        /// Genesis requirement.
        required: u32,
    },
    /// The key is already registered.
    #[error("member {member} is already registered (at height {height})")]
    AlreadyRegistered {
        /// The key.
        member: Hash32,
        /// Registration height.
        height: u64,
    },
    /// The key was revoked; revoked keys do not come back.
    #[error("member {member} was revoked at height {height}")]
    WasRevoked {
        /// The key.
        member: Hash32,
        /// Revocation height.
        height: u64,
    },
    /// A revocation of a key that is not registered.
    #[error("member {0} is not registered")]
    NotAMember(Hash32),
    /// Already pooled.
    #[error("registration already known")]
    Duplicate,
    /// Another registration for the same member is pooled.
    #[error("another registration for member {0} is already pending")]
    Conflict(Hash32),
    /// The pool holds as many as it may.
    #[error("registration pool is full")]
    PoolFull,
}

impl RegistrationError {
    /// A short name of the error's kind, `snake_case` (the `reason` label of the node's
    /// rejection metrics; a bounded set).
    pub fn reason(&self) -> &'static str {
        match self {
            RegistrationError::Decode(..) => "decode",
            RegistrationError::WrongChain { .. } => "wrong_chain",
            RegistrationError::NotAKey(..) => "not_a_key",
            RegistrationError::NoAuthority => "no_authority",
            RegistrationError::BadAuthoritySignature => "bad_authority_signature",
            RegistrationError::BadPossession => "bad_possession",
            RegistrationError::ClosedEnrolment => "closed_enrolment",
            RegistrationError::WeakStamp { .. } => "weak_stamp",
            RegistrationError::AlreadyRegistered { .. } => "already_registered",
            RegistrationError::WasRevoked { .. } => "was_revoked",
            RegistrationError::NotAMember(..) => "not_a_member",
            RegistrationError::Duplicate => "duplicate",
            RegistrationError::Conflict(..) => "conflict",
            RegistrationError::PoolFull => "pool_full",
        }
    }

    /// The gossip verdict for this error: a registration that raced another into a block
    /// (already registered, already revoked, pending) is ignored, a forged or malformed one
    /// rejected.
    pub fn verdict(&self) -> Verdict {
        match self {
            RegistrationError::AlreadyRegistered { .. }
            | RegistrationError::WasRevoked { .. }
            | RegistrationError::NotAMember(_)
            | RegistrationError::Duplicate
            | RegistrationError::Conflict(_)
            | RegistrationError::PoolFull => Verdict::Ignore,
            _ => Verdict::Reject,
        }
    }
}

/// Why a block is not acceptable.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BlockError {
    /// Bytes did not decode.
    #[error("undecodable block: {0}")]
    Decode(#[from] DecodeError),
    /// Made for another chain.
    #[error("block for chain {got}, this chain is {expected}")]
    WrongChain {
        /// This chain.
        expected: Hash32,
        /// The block's chain.
        got: Hash32,
    },
    /// Unknown header version.
    #[error("unsupported header version {0}")]
    Version(u32),
    /// Already stored.
    #[error("block already known")]
    AlreadyKnown,
    /// The hash does not meet the target.
    #[error("proof of work does not meet the target")]
    InsufficientWork,
    /// The body root does not match the body.
    #[error("body root does not match the body")]
    BadBodyRoot,
    /// Neither submissions nor registrations.
    #[error("block carries neither submissions nor registrations")]
    EmptyBody,
    /// More registrations than the genesis allows.
    #[error("block carries {got} registrations; at most {max} allowed")]
    RegistrationCount {
        /// Carried.
        got: usize,
        /// Genesis maximum.
        max: u32,
    },
    /// Registrations not in strictly ascending id order, or two for one member.
    #[error("registrations are not sorted by id, or two concern one member")]
    RegistrationsUnsorted,
    /// A registration is invalid.
    #[error("registration {index} is invalid: {error}")]
    Registration {
        /// Position in the body.
        index: usize,
        /// What is wrong with it.
        error: RegistrationError,
    },
    /// Fewer submissions than the aggregation rule needs (a block carries none, or enough).
    #[error("block carries {got} submissions but the aggregation rule {rule} needs at least {needed}")]
    TooFewForRule {
        /// Carried.
        got: usize,
        /// The rule's minimum.
        needed: usize,
        /// The rule.
        rule: String,
    },
    /// More submissions than the genesis allows.
    #[error("block carries {got} submissions; at most {max} allowed")]
    SubmissionCount {
        /// Carried.
        got: usize,
        /// Genesis maximum.
        max: u32,
    },
    /// Submissions not in strictly ascending id order (or duplicated).
    #[error("submissions are not sorted by id without duplicates")]
    Unsorted,
    /// Two submissions with one round tag.
    #[error("two submissions share the round tag {0}")]
    DuplicateRoundTag(Hash32),
    /// A submission is invalid.
    #[error("submission {index} is invalid: {error}")]
    Submission {
        /// Position in the body.
        index: usize,
        /// What is wrong with it.
        error: SubmissionError,
    },
    /// A submission's base is not the block's parent.
    #[error("submission {index} is based on {base}, not on the parent")]
    ForeignSubmission {
        /// Position in the body.
        index: usize,
        /// Its base.
        base: Hash32,
    },
    /// Parent not known (yet).
    #[error("parent {0} is unknown")]
    UnknownParent(Hash32),
    /// Height is not parent height + 1.
    #[error("height {got}, expected {expected}")]
    Height {
        /// Parent height + 1.
        expected: u64,
        /// Header height.
        got: u64,
    },
    /// The target is not the retarget rule's.
    #[error("target {got} differs from the required {expected}")]
    Target {
        /// Required.
        expected: Hash32,
        /// In the header.
        got: Hash32,
    },
    /// Timestamp not after the median time past.
    #[error("timestamp {got} is not after the median time past {median}")]
    TimestampTooOld {
        /// Median time past.
        median: u64,
        /// Header timestamp.
        got: u64,
    },
    /// Timestamp too far ahead of our clock.
    #[error("timestamp {got} is more than {max_ahead_ms} ms ahead of local time {now}")]
    TimestampInFuture {
        /// Header timestamp.
        got: u64,
        /// Local time.
        now: u64,
        /// Allowed drift.
        max_ahead_ms: u64,
    },
    /// Fewer submissions than the quorum before the round timeout elapsed.
    #[error("{got} submissions is below the quorum {quorum} and the round timeout had not passed")]
    QuorumNotMet {
        /// Carried.
        got: usize,
        /// Genesis quorum.
        quorum: u32,
    },
    /// The aggregate would overflow the model.
    #[error("applying the aggregate overflows the model at coordinate {0}")]
    ModelOverflow(usize),
    /// The post-state (model and registry) differs from the header's state root.
    #[error("state root {got} differs from the computed {expected} (the model or registry after this block is not what the header claims)")]
    StateRoot {
        /// Computed.
        expected: Hash32,
        /// In the header.
        got: Hash32,
    },
    /// The block's branch forks below the heights whose bodies this pruned node keeps, so
    /// it cannot rewind to it. Not the sender's fault: the block may well be valid.
    #[error("the block's branch forks from the best chain at height {fork}, below height {floor}, the lowest whose bodies this node keeps (--prune): a pruned node cannot rewind that deep; an archive node, or a fresh snapshot sync, can follow it")]
    ReorgTooDeep {
        /// Height of the last block the branch shares with the best chain.
        fork: u64,
        /// The lowest height with bodies.
        floor: u64,
    },
    /// A local storage failure (not the sender's fault).
    #[error("storage error: {0}")]
    Storage(String),
}

impl BlockError {
    /// A short name of the error's kind, `snake_case` (the `reason` label of the node's
    /// rejection metrics; a bounded set).
    pub fn reason(&self) -> &'static str {
        match self {
            BlockError::Decode(..) => "decode",
            BlockError::WrongChain { .. } => "wrong_chain",
            BlockError::Version(..) => "version",
            BlockError::AlreadyKnown => "already_known",
            BlockError::InsufficientWork => "insufficient_work",
            BlockError::BadBodyRoot => "bad_body_root",
            BlockError::EmptyBody => "empty_body",
            BlockError::RegistrationCount { .. } => "registration_count",
            BlockError::RegistrationsUnsorted => "registrations_unsorted",
            BlockError::Registration { .. } => "registration",
            BlockError::TooFewForRule { .. } => "too_few_for_rule",
            BlockError::SubmissionCount { .. } => "submission_count",
            BlockError::Unsorted => "unsorted",
            BlockError::DuplicateRoundTag(..) => "duplicate_round_tag",
            BlockError::Submission { .. } => "submission",
            BlockError::ForeignSubmission { .. } => "foreign_submission",
            BlockError::UnknownParent(..) => "unknown_parent",
            BlockError::Height { .. } => "height",
            BlockError::Target { .. } => "target",
            BlockError::TimestampTooOld { .. } => "timestamp_too_old",
            BlockError::TimestampInFuture { .. } => "timestamp_in_future",
            BlockError::QuorumNotMet { .. } => "quorum_not_met",
            BlockError::ModelOverflow(..) => "model_overflow",
            BlockError::StateRoot { .. } => "state_root",
            BlockError::ReorgTooDeep { .. } => "reorg_too_deep",
            BlockError::Storage(..) => "storage",
        }
    }

    /// The gossip verdict for this error.
    pub fn verdict(&self) -> Verdict {
        match self {
            BlockError::AlreadyKnown
            | BlockError::UnknownParent(_)
            | BlockError::TimestampInFuture { .. }
            | BlockError::ReorgTooDeep { .. }
            | BlockError::Storage(_) => Verdict::Ignore,
            _ => Verdict::Reject,
        }
    }
}

/// Why a snapshot (headers and state bytes from a peer) was not installed. Every variant but
/// `NotFresh` and `Storage` is the serving peer's fault.
#[derive(Debug, Error)]
pub enum SnapshotError {
    /// The chain already holds blocks: a snapshot only starts a fresh data dir.
    #[error("the chain already holds blocks up to height {0}; a snapshot only starts an empty data dir")]
    NotFresh(u64),
    /// No headers.
    #[error("a snapshot without headers")]
    NoHeaders,
    /// A header fails the checks import runs on headers.
    #[error("header {height} of the snapshot's chain is invalid: {error}")]
    Header {
        /// Its height.
        height: u64,
        /// What is wrong.
        error: BlockError,
    },
    /// The state bytes do not parse as a model and registry of this genesis.
    #[error("the snapshot's state is malformed: {0}")]
    Malformed(String),
    /// The state does not match the block's state root.
    #[error("the snapshot's state hashes to {got}, but block {height}'s state root is {expected}")]
    StateRoot {
        /// The block's height.
        height: u64,
        /// The block's state root.
        expected: Hash32,
        /// What the state hashes to.
        got: Hash32,
    },
    /// A local storage failure (not the peer's fault).
    #[error("storage error: {0}")]
    Storage(String),
}

/// Errors opening or reading the chain.
#[derive(Debug, Error)]
pub enum ChainError {
    /// The database failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// A setting the chain cannot run with.
    #[error("{0}")]
    Config(String),
    /// The data directory belongs to another chain.
    #[error("data directory holds chain {found}, but the genesis defines chain {expected}; use another --data-dir")]
    WrongChain {
        /// From the genesis.
        expected: Hash32,
        /// In the database.
        found: Hash32,
    },
    /// The data directory was written by a learnchain with another store layout.
    #[error("the data directory uses store schema {found}, this learnchain uses schema {expected}; start with a fresh --data-dir (the chain is re-synced from peers)")]
    Schema {
        /// In the database (1 for stores written before schemas were recorded).
        found: u32,
        /// This code's.
        expected: u32,
    },
    /// The stored state is inconsistent.
    #[error("stored chain state is inconsistent: {0}")]
    Corrupt(String),
    /// Not found.
    #[error("not found: {0}")]
    NotFound(String),
}

impl From<redb::Error> for ChainError {
    fn from(e: redb::Error) -> Self {
        ChainError::Storage(e.to_string())
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ChainError {
            fn from(e: $t) -> Self { ChainError::Storage(e.to_string()) }
        }
    )*};
}
storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<ChainError> for BlockError {
    fn from(e: ChainError) -> Self {
        BlockError::Storage(e.to_string())
    }
}
