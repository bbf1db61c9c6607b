//! The crate's one error type, [`PrivacyError`], and the parameter checks that produce it.
//!
//! Every variant names the parameter or the file at fault, so that a node can log it and an
//! operator can fix the configuration. Parameter checks live here, in one place, so the
//! accountant, the ledger and the noise functions agree on what a valid parameter is:
//!
//! | parameter | valid range |
//! |---|---|
//! | sampling rate `q` of a round | `(0, 1]` (the raw RDP function also accepts `q = 0`) |
//! | noise multiplier `σ` | finite and `> 0` |
//! | `δ` | `(0, 1)` |
//! | steps | `≥ 1` |
//! | RDP order `α` | finite, `> 1` and `≤` [`MAX_ORDER`] |
//! | `ε` budget or target | finite and `> 0` |
//! | `ε` at which a PLD's `δ` is read | finite and `≥ 0` |
//! | PLD value discretisation interval | finite, in `(0, 1]` |
//! | PLD tail mass truncation | `[0, 10⁻⁶]` |

use std::path::PathBuf;

/// Largest RDP order accepted. Integer orders cost `α + 1` terms; this keeps an
/// evaluation under a few milliseconds.
pub const MAX_ORDER: f64 = 100_000.0;

/// Everything that can go wrong in accounting, noising or the ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivacyError {
    /// The sampling rate `q` is outside `(0, 1]` (or not a number).
    #[error("sampling rate q must be in (0, 1], got {0}")]
    SamplingRate(f64),
    /// The noise multiplier `σ` is not finite or not positive.
    #[error("noise multiplier sigma must be finite and > 0, got {0}")]
    NoiseMultiplier(f64),
    /// `δ` is outside `(0, 1)`.
    #[error("delta must be in (0, 1), got {0}")]
    Delta(f64),
    /// A round declared zero steps.
    #[error("steps must be at least 1, got 0")]
    ZeroSteps,
    /// An RDP order is not finite, not `> 1`, or above [`MAX_ORDER`].
    #[error("RDP order alpha must be finite, > 1 and <= {MAX_ORDER}, got {0}")]
    Order(f64),
    /// An accountant was built with no orders.
    #[error("the set of RDP orders is empty")]
    NoOrders,
    /// An RDP vector does not have one value per order.
    #[error("{rdp} RDP values for {orders} orders")]
    LengthMismatch {
        /// Number of orders.
        orders: usize,
        /// Number of RDP values.
        rdp: usize,
    },
    /// The target `ε` handed to [`noise_for_epsilon`](crate::accountant::noise_for_epsilon)
    /// is not finite or not positive.
    #[error("target epsilon must be finite and > 0, got {0}")]
    TargetEpsilon(f64),
    /// Even the largest noise multiplier searched does not reach the target `ε`.
    #[error(
        "target epsilon {target} is unreachable: even sigma = {max_sigma} gives epsilon {achieved}"
    )]
    Unreachable {
        /// The requested `ε`.
        target: f64,
        /// The largest `σ` tried.
        max_sigma: f64,
        /// The `ε` that `σ = max_sigma` gives.
        achieved: f64,
    },
    /// No order gives a finite RDP bound, so no `ε` can be stated.
    #[error("no RDP order gives a finite bound for these parameters")]
    NoFiniteBound,
    /// The `ε` budget of a ledger is not finite or not positive.
    #[error("privacy budget epsilon must be finite and > 0, got {0}")]
    Budget(f64),
    /// The standard deviation handed to the noise function is not finite or negative.
    #[error("noise standard deviation must be finite and >= 0, got {0}")]
    NoiseStd(f64),
    /// The `ε` at which a `δ` is asked for is not finite or negative.
    #[error("epsilon must be finite and >= 0, got {0}")]
    Epsilon(f64),
    /// The PLD accountant's value discretisation interval is not finite or not in `(0, 1]`.
    #[error("PLD value discretization interval must be finite and in (0, 1], got {0}")]
    Discretization(f64),
    /// The PLD accountant's tail mass truncation is outside `[0, 10⁻⁶]`.
    #[error("PLD tail mass truncation must be in [0, 1e-6], got {0}")]
    TailMass(f64),
    /// `δ` is below the probability the PLD accountant puts on an infinite privacy loss
    /// (the truncated tails), so no finite `ε` can be stated at this `δ`.
    #[error("delta {delta} is below the PLD's infinite-loss mass {infinity_mass}; no finite epsilon at this delta")]
    PldDeltaTooSmall {
        /// The requested `δ`.
        delta: f64,
        /// The probability of an infinite privacy loss in the composed PLD.
        infinity_mass: f64,
    },
    /// The composition is too large for the PLD accountant even on its coarsest grid.
    #[error("the PLD accountant cannot represent this composition: {0}")]
    PldUnrepresentable(String),
    /// An accountant name other than `pld` or `rdp`.
    #[error("unknown privacy accountant {0:?}: expected \"pld\" or \"rdp\"")]
    UnknownAccountant(String),
    /// Reading, writing or syncing the ledger file failed.
    #[error("privacy ledger {path}: {source}")]
    Io {
        /// The ledger file (or its directory, or its temporary file).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The ledger file is larger than [`MAX_LEDGER_BYTES`](crate::ledger::MAX_LEDGER_BYTES).
    #[error("privacy ledger {path} is {len} bytes, more than the limit of {max}; refusing to read it")]
    LedgerTooLarge {
        /// The ledger file.
        path: PathBuf,
        /// Its size (at least).
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The ledger file exists but cannot be parsed or holds invalid values. The ledger is
    /// never reset on this error: the operator must repair or restore it.
    #[error("privacy ledger {path} is corrupt ({reason}); refusing to reset it — restore it from a backup")]
    LedgerCorrupt {
        /// The ledger file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The ledger on disk was created with a different `δ` or budget than requested.
    #[error("privacy ledger {path} stores {field} = {stored}, but {requested} was requested; a ledger's delta and budget are fixed when it is created")]
    LedgerConflict {
        /// The ledger file.
        path: PathBuf,
        /// `"delta"` or `"budget_epsilon"`.
        field: &'static str,
        /// The value in the file.
        stored: f64,
        /// The value passed to `open`.
        requested: f64,
    },
    /// Recording the round would spend more than the budget; nothing was written.
    #[error("round {round} would raise epsilon to {would_spend}, past the budget {budget}; not recorded")]
    BudgetExceeded {
        /// The refused round.
        round: u64,
        /// The `ε` the ledger would reach with it.
        would_spend: f64,
        /// The ledger's budget.
        budget: f64,
    },
}

/// Shorthand for this crate's results.
pub type Result<T, E = PrivacyError> = std::result::Result<T, E>;

/// `q ∈ (0, 1]`.
pub(crate) fn check_q(q: f64) -> Result<()> {
    if q > 0.0 && q <= 1.0 { Ok(()) } else { Err(PrivacyError::SamplingRate(q)) }
}

/// `σ` finite and `> 0`.
pub(crate) fn check_sigma(sigma: f64) -> Result<()> {
    if sigma.is_finite() && sigma > 0.0 { Ok(()) } else { Err(PrivacyError::NoiseMultiplier(sigma)) }
}

/// `δ ∈ (0, 1)`.
pub(crate) fn check_delta(delta: f64) -> Result<()> {
    if delta > 0.0 && delta < 1.0 { Ok(()) } else { Err(PrivacyError::Delta(delta)) }
}

/// `steps ≥ 1`.
pub(crate) fn check_steps(steps: u64) -> Result<()> {
    if steps >= 1 { Ok(()) } else { Err(PrivacyError::ZeroSteps) }
}

/// `α` finite, `> 1`, `≤ MAX_ORDER`.
pub(crate) fn check_order(alpha: f64) -> Result<()> {
    if alpha > 1.0 && alpha <= MAX_ORDER { Ok(()) } else { Err(PrivacyError::Order(alpha)) }
}
