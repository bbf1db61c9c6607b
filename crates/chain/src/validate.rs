//! The block validation pipeline, as types.
//!
//! A block moves through stages, each a type that can only be built by passing the checks
//! before it, so an unchecked block can never reach the store:
//!
//! 1. [`CheckedBlock`] — context-free checks, cheapest and most likely to reject first:
//!    version and chain id, body counts (including the aggregation rule's minimum), proof of work (one SHA-256d), then each
//!    registration's chain, ids ascending and one per member; each submission's shape
//!    (chain, the genesis update encoding, length, scales and coordinate bounds — the update
//!    is decoded to exact integers here, once — base = parent, round = height, declared
//!    DP-SGD parameters against the genesis privacy policy), ids in strictly ascending
//!    order, unique round tags; and the body root.
//! 2. [`ContextualBlock`] (built in `chain.rs`) — against the parent: known parent, height,
//!    retarget, median time past, future drift, quorum-or-timeout.
//! 3. `ExecutedBlock` (in `chain.rs`) — each decoded update's norm within the bound its
//!    declaration implies ([`check_update_norm`]; it may read the parent's model); registrations'
//!    signatures, stamps and proofs of possession, then applied to the registry after the
//!    parent; ring signatures against the rings of the registry after the parent; aggregate
//!    recomputed over the decoded updates and applied to the parent's model, model hash
//!    matched.

use std::borrow::Cow;
use std::collections::HashSet;

use learnchain_proto::block::body_root;
use learnchain_proto::header::HEADER_VERSION;
use learnchain_proto::privacy;
use learnchain_proto::{Block, Genesis, Hash32, Submission};

use crate::error::{BlockError, RegistrationError, SubmissionError};
use crate::pow::meets_target;

/// A submission's update decoded to one `i32` per parameter in grid units, with every check
/// of its form (see [`learnchain_proto::update`]): the genesis encoding, one coordinate per
/// parameter, scales and coordinate bounds. Borrowed for `i32` updates.
pub fn decode_update<'a>(genesis: &Genesis, s: &'a Submission) -> Result<Cow<'a, [i32]>, SubmissionError> {
    let c = &genesis.consensus;
    Ok(s.update.decode(c.update_encoding, &genesis.model, c.max_update_abs)?)
}

/// Shape checks of one submission that need no chain state: chain, encoding, length and
/// bounds, and the declared DP parameters against the policy. Returns the decoded update
/// ([`decode_update`]), so later checks and the aggregate do not decode it again.
pub fn check_submission_shape<'a>(genesis: &Genesis, chain_id: &Hash32, s: &'a Submission) -> Result<Cow<'a, [i32]>, SubmissionError> {
    if s.chain_id != *chain_id {
        return Err(SubmissionError::WrongChain { expected: *chain_id, got: s.chain_id });
    }
    let update = decode_update(genesis, s)?;
    genesis.privacy.check(&s.dp, s.num_examples)?;
    Ok(update)
}

/// `Σ w_i²` of a base model, as the update-norm bound needs it: only when the genesis has
/// weight decay (otherwise the bound does not read it, and this is 0 without a pass over
/// the model).
pub fn base_norm_sq(genesis: &Genesis, base_model: &[i32]) -> u128 {
    if genesis.training.weight_decay.0 == 0 { 0 } else { privacy::norm_sq(base_model) }
}

/// The update-norm check of [`learnchain_proto::privacy`]: `‖Δ‖² ≤ B²` for the bound `B`
/// implied by the submission's declaration, exactly, in integers, over the decoded update
/// `update` ([`decode_update`]). `base_norm_sq` comes from [`base_norm_sq`] for the
/// submission's base model.
pub fn check_update_norm(genesis: &Genesis, s: &Submission, update: &[i32], base_norm_sq: u128) -> Result<(), SubmissionError> {
    let ctx = privacy::BoundContext::for_genesis(genesis, base_norm_sq);
    let bound = privacy::update_norm_bound_units(&s.dp, s.num_examples, &ctx);
    let norm_sq = privacy::norm_sq(update);
    if norm_sq > bound.saturating_mul(bound) {
        return Err(SubmissionError::UpdateNormTooLarge { norm: privacy::isqrt_ceil(norm_sq), bound });
    }
    Ok(())
}

/// A block that passed every context-free check. Carries the hash, each submission's
/// signing digest and its decoded update, so later stages neither hash nor decode the
/// updates again.
#[derive(Debug)]
pub struct CheckedBlock {
    /// The block.
    pub block: Block,
    /// Its hash.
    pub hash: Hash32,
    /// Signing digest of each submission, in body order.
    pub digests: Vec<Hash32>,
    /// Id of each submission, in body order.
    pub ids: Vec<Hash32>,
    /// Id of each registration, in body order.
    pub registration_ids: Vec<Hash32>,
    /// Decoded updates: see [`CheckedBlock::updates`].
    pub decoded: DecodedUpdates,
}

/// The decoded updates of a block's submissions, in body order: `None` where the submission
/// is an `i32` update (its vector is used in place), else the decoded vector.
#[derive(Debug, Default)]
pub struct DecodedUpdates(Vec<Option<Vec<i32>>>);

impl DecodedUpdates {
    /// Keeps the decoded form of one more submission.
    pub fn push(&mut self, update: Cow<'_, [i32]>) {
        self.0.push(match update {
            Cow::Borrowed(_) => None,
            Cow::Owned(v) => Some(v),
        });
    }

    /// The decoded updates of `submissions` (the submissions they were decoded from).
    pub fn updates<'a>(&'a self, submissions: &'a [Submission]) -> Vec<&'a [i32]> {
        submissions
            .iter()
            .zip(&self.0)
            .map(|(s, d)| d.as_deref().or_else(|| s.update.as_i32()).unwrap_or(&[]))
            .collect()
    }
}

impl CheckedBlock {
    /// The decoded update of each submission, in body order.
    pub fn updates(&self) -> Vec<&[i32]> {
        self.decoded.updates(&self.block.submissions)
    }

    /// Runs the context-free checks.
    pub fn check(genesis: &Genesis, chain_id: &Hash32, block: Block) -> Result<Self, BlockError> {
        let h = &block.header;
        if h.version != HEADER_VERSION {
            return Err(BlockError::Version(h.version));
        }
        if h.chain_id != *chain_id {
            return Err(BlockError::WrongChain { expected: *chain_id, got: h.chain_id });
        }
        let n = block.submissions.len();
        let max = genesis.consensus.max_submissions;
        if n > max as usize {
            return Err(BlockError::SubmissionCount { got: n, max });
        }
        let max_regs = genesis.enrolment.max_per_block;
        if block.registrations.len() > max_regs as usize {
            return Err(BlockError::RegistrationCount { got: block.registrations.len(), max: max_regs });
        }
        if n == 0 && block.registrations.is_empty() {
            return Err(BlockError::EmptyBody);
        }
        let rule = genesis.consensus.aggregation;
        if n > 0 && n < rule.min_inputs() {
            return Err(BlockError::TooFewForRule { got: n, needed: rule.min_inputs(), rule: rule.to_string() });
        }
        let hash = h.hash();
        if !meets_target(&hash, &h.target) {
            return Err(BlockError::InsufficientWork);
        }
        let mut reg_ids: Vec<Hash32> = Vec::with_capacity(block.registrations.len());
        let mut registrants = HashSet::with_capacity(block.registrations.len());
        for (index, r) in block.registrations.iter().enumerate() {
            if r.chain_id != *chain_id {
                return Err(BlockError::Registration {
                    index,
                    error: RegistrationError::WrongChain { expected: *chain_id, got: r.chain_id },
                });
            }
            let id = r.id();
            if reg_ids.last().is_some_and(|prev| *prev >= id) || !registrants.insert(r.member) {
                return Err(BlockError::RegistrationsUnsorted);
            }
            reg_ids.push(id);
        }
        let mut digests = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        let mut tags = HashSet::with_capacity(n);
        let mut decoded = DecodedUpdates(Vec::with_capacity(n));
        for (index, s) in block.submissions.iter().enumerate() {
            let update = check_submission_shape(genesis, chain_id, s)
                .map_err(|error| BlockError::Submission { index, error })?;
            decoded.push(update);
            if s.base != h.parent {
                return Err(BlockError::ForeignSubmission { index, base: s.base });
            }
            if s.round != h.height {
                return Err(BlockError::Submission {
                    index,
                    error: SubmissionError::WrongRound { expected: h.height, got: s.round },
                });
            }
            let tag = s.round_tag();
            if !tags.insert(tag) {
                return Err(BlockError::DuplicateRoundTag(tag));
            }
            let digest = s.signing_digest();
            let id = s.id_from_digest(&digest);
            if ids.last().is_some_and(|prev| *prev >= id) {
                return Err(BlockError::Unsorted);
            }
            digests.push(digest);
            ids.push(id);
        }
        if body_root(&reg_ids, &ids) != h.body_root {
            return Err(BlockError::BadBodyRoot);
        }
        Ok(CheckedBlock { block, hash, digests, ids, registration_ids: reg_ids, decoded })
    }
}
