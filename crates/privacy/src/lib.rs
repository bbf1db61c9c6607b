//! Privacy for learnchain data sources (DESIGN.md, decision 4): the differential-privacy
//! machinery a data source runs around its local DP-SGD training.
//!
//! * [`noise`] — per-example L2 clipping and Gaussian noise from a CSPRNG, the two
//!   operations that make one DP-SGD step private.
//! * [`accountant`] — the Rényi-DP accountant of the Poisson-subsampled Gaussian mechanism
//!   (Mironov 2017; Mironov, Talwar, Zhang 2019), composition over steps and rounds, the
//!   conversion to `(ε, δ)` of Balle et al. 2020, and the inverse search for the noise
//!   multiplier that meets a target `ε`.
//! * [`pld`] — the privacy-loss-distribution accountant of the same mechanism (Koskela et
//!   al. 2020; Gopi et al. 2021; pessimistic connect-the-dots discretisation of Doroshenko
//!   et al. 2022, as in Google's `dp-accounting`): numerical composition by FFT, both
//!   directions of add-or-remove-one neighbouring, near-tight `(ε, δ)`.
//! * [`select`] — [`Accountant`] (`pld` | `rdp`, default `pld`), which dispatches `ε` and
//!   noise searches to either, and the common result [`Guarantee`].
//! * [`ledger`] — the durable per-data-source record of every round released, from which
//!   the spend is recomputed (gated by RDP; [`PrivacyLedger::spent_by`] reads it with
//!   either accountant), and which refuses a round that would pass the budget.
//!
//! Data enters as plain numbers (gradients, DP parameters) and leaves as plain numbers and
//! one JSON file; nothing here touches the network or consensus state, and no float from
//! this crate enters a hash (decision 1). All errors are [`PrivacyError`].

pub mod accountant;
mod error;
pub mod ledger;
pub mod noise;
pub mod pld;
pub mod select;
mod special;

pub use accountant::{RdpAccountant, Spent, epsilon, noise_for_epsilon};
pub use error::{PrivacyError, Result};
pub use ledger::{PrivacyLedger, RoundParams};
pub use noise::{add_gaussian_noise, clip_l2};
pub use pld::{
    ComposedPld, PldAccountant, PldConfig, PldSpent, pld_delta, pld_epsilon, pld_noise_for_epsilon,
};
pub use select::{Accountant, Guarantee};
