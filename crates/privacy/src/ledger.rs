//! A data source's privacy ledger: the durable record of every round it released, from
//! which its total `(ε, δ)` spend is recomputed, and the gate that refuses a round that
//! would pass its budget (DESIGN.md, decision 4).
//!
//! # What is stored
//!
//! One JSON file per data source (see [`LedgerFile`] for the schema): a format tag and
//! version, `δ`, the `ε` budget, and for every contributed round its number and the DP-SGD
//! parameters `(q, σ, steps)`. Only parameters are stored, never derived numbers: on every
//! open and after every record the spend is recomputed from the history by the ledger's
//! accountant ([`Accountant`], chosen at open, PLD by default): rounds with identical
//! `(q, σ)` are grouped, and the groups composed — by the privacy-loss distribution
//! ([`pld`](crate::pld)), or by summing RDP vectors per order
//! ([`accountant`](crate::accountant)) — and stated as `ε` at the ledger's `δ`. The file
//! does not name the accountant: both bound the same releases, so a ledger written under
//! one opens under the other. Each entry is one release of an update trained on
//! the data; the same round number may therefore appear twice (for example, a retrain
//! after a reorg), and both releases are charged.
//!
//! # Rules
//!
//! * `δ` and the budget are fixed when the ledger is created. [`PrivacyLedger::open`] on an
//!   existing file with a different `δ` or budget (beyond a relative 10⁻⁹, which absorbs
//!   float printing) fails with [`PrivacyError::LedgerConflict`]; it never rewrites them,
//!   because raising a budget or changing `δ` silently would void the guarantee.
//! * A missing file is a new, empty ledger, written durably before `open` returns. A file
//!   that exists but cannot be read, is over [`MAX_LEDGER_BYTES`], or does not parse and
//!   validate is an error — never silently reset.
//! * [`PrivacyLedger::record`] refuses (and writes nothing) if the round would pass the
//!   budget; `ε` equal to the budget is allowed. Call it *before* the update leaves the
//!   node: the release is what spends privacy.
//!
//! # Durability
//!
//! [`PrivacyLedger::record`] returns only after the new ledger is on stable storage:
//! the whole file is written to `<name>.tmp` in the same directory, `fsync`ed, renamed
//! over the ledger (atomic on POSIX file systems), and the directory is `fsync`ed so the
//! rename itself survives a power cut. A crash at any point leaves either the old or the
//! new complete ledger; a stale `<name>.tmp` is ignored and overwritten by the next write.
//! The in-memory state changes only once the rename has happened; if the final directory
//! sync fails, the round stays counted (over-counting is the safe direction) and the
//! error is returned. One process must own a ledger file at a time (the node's state
//! directory is single-owner); there is no cross-process lock.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::select::{Accountant, Guarantee, RoundGroups, group_rounds};
use crate::error::{
    PrivacyError, Result, check_delta, check_q, check_sigma, check_steps,
};

/// Largest ledger file `open` will read.
pub const MAX_LEDGER_BYTES: u64 = 64 * 1024 * 1024;

/// The `format` tag of a ledger file.
pub const LEDGER_FORMAT: &str = "learnchain-privacy-ledger";

/// The current ledger file version.
pub const LEDGER_VERSION: u32 = 1;

/// Relative tolerance when comparing the stored `δ` and budget with the requested ones.
const PARAM_TOLERANCE: f64 = 1e-9;

/// The DP-SGD parameters of one contributed round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundParams {
    /// The round (block height) the update was trained for.
    pub round: u64,
    /// Poisson sampling rate, in `(0, 1]`.
    pub q: f64,
    /// Noise multiplier, finite and `> 0`.
    pub sigma: f64,
    /// DP-SGD steps taken in the round, `≥ 1`.
    pub steps: u64,
}

impl RoundParams {
    /// Checks `q`, `σ` and `steps`.
    pub fn validate(&self) -> Result<()> {
        check_q(self.q)?;
        check_sigma(self.sigma)?;
        check_steps(self.steps)
    }
}

/// The on-disk schema of a ledger (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerFile {
    /// Always [`LEDGER_FORMAT`].
    pub format: String,
    /// Always [`LEDGER_VERSION`].
    pub version: u32,
    /// The `δ` at which the spend is stated.
    pub delta: f64,
    /// The `ε` budget.
    pub budget_epsilon: f64,
    /// Every contributed round, in the order recorded.
    pub rounds: Vec<RoundParams>,
}

impl LedgerFile {
    /// Checks the format tag, version and every value.
    fn validate(&self) -> std::result::Result<(), String> {
        if self.format != LEDGER_FORMAT {
            return Err(format!("format is {:?}, expected {LEDGER_FORMAT:?}", self.format));
        }
        if self.version != LEDGER_VERSION {
            return Err(format!("version {} is not supported (expected {LEDGER_VERSION})", self.version));
        }
        check_delta(self.delta).map_err(|e| e.to_string())?;
        if !(self.budget_epsilon.is_finite() && self.budget_epsilon > 0.0) {
            return Err(PrivacyError::Budget(self.budget_epsilon).to_string());
        }
        for (i, r) in self.rounds.iter().enumerate() {
            r.validate().map_err(|e| format!("entry {i} (round {}): {e}", r.round))?;
        }
        Ok(())
    }
}

/// Spends already computed in this process, keyed by accountant, `δ` and the history
/// grouped by `(q, σ)`. Many ledgers of one process (a devnet's data sources) hold the same
/// history, and a data source asks for the same "one more round" figure several times a
/// round; the PLD accountant takes tens of milliseconds per call, so each distinct
/// history is composed once. The key holds every input of the computation, so a hit
/// returns exactly what a recomputation would.
static MEMO: std::sync::Mutex<BTreeMap<MemoKey, Guarantee>> = std::sync::Mutex::new(BTreeMap::new());
/// Entries the memo holds before it is emptied.
const MEMO_ENTRIES: usize = 4096;

type MemoKey = (Accountant, u64, RoundGroups);

/// The spend of `rounds` (plus `extra`) at `delta` by `accountant`, recomputed from the
/// history (or found in [`MEMO`]). `+∞` if the accountant gives no finite bound.
fn compute_spent(
    rounds: &[RoundParams],
    extra: Option<&RoundParams>,
    delta: f64,
    accountant: Accountant,
) -> Result<Guarantee> {
    let groups = group_rounds(rounds.iter().chain(extra))?;
    let key: MemoKey = (accountant, delta.to_bits(), groups.clone());
    if let Some(hit) = MEMO.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(*hit);
    }
    let spent = match accountant.epsilon_of_groups(&groups, delta) {
        Err(PrivacyError::NoFiniteBound | PrivacyError::PldDeltaTooSmall { .. }) => {
            Guarantee { epsilon: f64::INFINITY, delta, accountant, rdp_order: None }
        }
        other => other?,
    };
    let mut memo = MEMO.lock().unwrap_or_else(|p| p.into_inner());
    if memo.len() >= MEMO_ENTRIES {
        memo.clear();
    }
    memo.insert(key, spent);
    Ok(spent)
}

/// `ε ≤ budget`; false for a NaN `ε`.
fn within(epsilon: f64, budget: f64) -> bool {
    epsilon <= budget
}

/// An open privacy ledger (see the module docs).
#[derive(Debug)]
pub struct PrivacyLedger {
    path: PathBuf,
    file: LedgerFile,
    accountant: Accountant,
    spent: Guarantee,
}

impl PrivacyLedger {
    /// Opens the ledger at `path`, creating it (durably) if it does not exist.
    ///
    /// Errors if `budget_eps` or `delta` is invalid, if an existing ledger stores a
    /// different `δ` or budget ([`PrivacyError::LedgerConflict`]), if the file is larger
    /// than [`MAX_LEDGER_BYTES`], or if it is corrupt ([`PrivacyError::LedgerCorrupt`]).
    pub fn open(path: impl AsRef<Path>, budget_eps: f64, delta: f64) -> Result<Self> {
        Self::open_with(path, budget_eps, delta, Accountant::default())
    }

    /// [`PrivacyLedger::open`], accounting with `accountant` (the gate, [`spent`] and
    /// [`record`] all use it). The file does not record the accountant: both bound the
    /// same releases, so a ledger may be reopened with either.
    ///
    /// [`spent`]: Self::spent
    /// [`record`]: Self::record
    pub fn open_with(path: impl AsRef<Path>, budget_eps: f64, delta: f64, accountant: Accountant) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !(budget_eps.is_finite() && budget_eps > 0.0) {
            return Err(PrivacyError::Budget(budget_eps));
        }
        check_delta(delta)?;

        let file = match read_bounded(&path)? {
            None => {
                let file = LedgerFile {
                    format: LEDGER_FORMAT.to_owned(),
                    version: LEDGER_VERSION,
                    delta,
                    budget_epsilon: budget_eps,
                    rounds: Vec::new(),
                };
                write_durably(&path, &encode(&file, &path)?)?;
                file
            }
            Some(bytes) => {
                let file: LedgerFile = serde_json::from_slice(&bytes).map_err(|e| {
                    PrivacyError::LedgerCorrupt { path: path.clone(), reason: e.to_string() }
                })?;
                file.validate()
                    .map_err(|reason| PrivacyError::LedgerCorrupt { path: path.clone(), reason })?;
                for (field, stored, requested) in [
                    ("delta", file.delta, delta),
                    ("budget_epsilon", file.budget_epsilon, budget_eps),
                ] {
                    if (stored - requested).abs() > PARAM_TOLERANCE * stored.abs().max(requested.abs()) {
                        return Err(PrivacyError::LedgerConflict { path, field, stored, requested });
                    }
                }
                file
            }
        };
        let spent = compute_spent(&file.rounds, None, file.delta, accountant)?;
        Ok(Self { path, file, accountant, spent })
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `δ` of this ledger.
    pub fn delta(&self) -> f64 {
        self.file.delta
    }

    /// The `ε` budget of this ledger.
    pub fn budget(&self) -> f64 {
        self.file.budget_epsilon
    }

    /// Every recorded round, oldest first.
    pub fn rounds(&self) -> &[RoundParams] {
        &self.file.rounds
    }

    /// The accountant the ledger gates with.
    pub fn accountant(&self) -> Accountant {
        self.accountant
    }

    /// The `(ε, δ)` spent so far, recomputed from the stored history by the ledger's
    /// accountant (`ε = 0` for an empty ledger; `ε = +∞` if no finite bound exists).
    pub fn spent(&self) -> Guarantee {
        self.spent
    }

    /// The spend recomputed by `accountant`, whichever the ledger gates with (to report
    /// both figures).
    pub fn spent_by(&self, accountant: Accountant) -> Result<Guarantee> {
        compute_spent(&self.file.rounds, None, self.file.delta, accountant)
    }

    /// The budget left, `max(0, budget − ε spent)`.
    pub fn remaining(&self) -> f64 {
        (self.file.budget_epsilon - self.spent.epsilon).max(0.0)
    }

    /// The spend the ledger would reach if `next` were recorded.
    pub fn spent_with(&self, next: &RoundParams) -> Result<Guarantee> {
        next.validate()?;
        compute_spent(&self.file.rounds, Some(next), self.file.delta, self.accountant)
    }

    /// Whether recording `next` would take `ε` past the budget. Invalid parameters count
    /// as exceeding (they could never be recorded).
    pub fn would_exceed(&self, next: &RoundParams) -> bool {
        match self.spent_with(next) {
            Ok(s) => !within(s.epsilon, self.file.budget_epsilon),
            Err(_) => true,
        }
    }

    /// Records `round` and returns the new spend, after the ledger is durably on disk.
    ///
    /// Refuses with [`PrivacyError::BudgetExceeded`] (writing nothing) if the round would
    /// pass the budget.
    pub fn record(&mut self, round: RoundParams) -> Result<Guarantee> {
        let spent = self.spent_with(&round)?;
        if !within(spent.epsilon, self.file.budget_epsilon) {
            return Err(PrivacyError::BudgetExceeded {
                round: round.round,
                would_spend: spent.epsilon,
                budget: self.file.budget_epsilon,
            });
        }
        let mut next = self.file.clone();
        next.rounds.push(round);
        let path = self.path.clone();
        let bytes = encode(&next, &path)?;
        let synced = write_durably_then(&path, &bytes, || {
            // The rename has happened: the new ledger is the visible one.
            self.file = next;
            self.spent = spent;
        });
        synced.map(|()| spent)
    }
}

/// Serialises a ledger file as pretty JSON with a trailing newline.
fn encode(file: &LedgerFile, path: &Path) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(file).map_err(|e| PrivacyError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Reads the file at `path` if it exists, refusing files over [`MAX_LEDGER_BYTES`]
/// before reading them (and, should the file grow meanwhile, while reading).
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>> {
    let io_err = |source| PrivacyError::Io { path: path.to_path_buf(), source };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let len = file.metadata().map_err(io_err)?.len();
    let too_large = |len| PrivacyError::LedgerTooLarge {
        path: path.to_path_buf(),
        len,
        max: MAX_LEDGER_BYTES,
    };
    if len > MAX_LEDGER_BYTES {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(MAX_LEDGER_BYTES + 1).read_to_end(&mut bytes).map_err(io_err)?;
    if bytes.len() as u64 > MAX_LEDGER_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(Some(bytes))
}

/// The temporary file a write goes through: `<file name>.tmp` in the same directory.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces `path` with `bytes` durably (see the module docs).
fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    write_durably_then(path, bytes, || {})
}

/// [`write_durably`], running `after_rename` as soon as the new file is in place (before
/// the directory sync), so the caller's state follows what is visible on disk.
fn write_durably_then(path: &Path, bytes: &[u8], after_rename: impl FnOnce()) -> Result<()> {
    let tmp = temp_path(path);
    let on = |p: &Path| {
        let p = p.to_path_buf();
        move |source| PrivacyError::Io { path: p, source }
    };
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(on(&tmp))?;
        f.write_all(bytes).map_err(on(&tmp))?;
        f.sync_all().map_err(on(&tmp))?;
    }
    if let Err(e) = fs::rename(&tmp, path) {
        // Best effort: do not leave a complete-looking temporary file behind.
        let _ = fs::remove_file(&tmp);
        return Err(on(path)(e));
    }
    after_rename();
    let dir = parent_dir(path);
    sync_dir(dir).map_err(on(dir))
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened for syncing here; the rename is as durable as the platform
/// makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accountant::{RdpAccountant, epsilon};

    fn round(round: u64) -> RoundParams {
        RoundParams { round, q: 0.01, sigma: 1.1, steps: 100 }
    }

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    #[test]
    fn new_ledger_is_written_and_empty() -> Result<()> {
        let d = dir();
        let path = d.path().join("privacy.json");
        let ledger = PrivacyLedger::open(&path, 2.0, 1e-5)?;
        assert!(path.exists());
        assert_eq!(ledger.spent().epsilon, 0.0);
        assert_eq!(ledger.remaining(), 2.0);
        assert!(ledger.rounds().is_empty());
        Ok(())
    }

    #[test]
    fn persists_across_reopen_and_matches_accountant() -> Result<()> {
        let d = dir();
        let path = d.path().join("privacy.json");
        {
            let mut ledger = PrivacyLedger::open(&path, 5.0, 1e-5)?;
            for r in 1..=10 {
                ledger.record(round(r))?;
            }
        }
        let ledger = PrivacyLedger::open_with(&path, 5.0, 1e-5, Accountant::Rdp)?;
        assert_eq!(ledger.rounds().len(), 10);
        assert_eq!(ledger.rounds()[3], round(4));
        // 10 rounds of 100 steps = 1000 steps: the classic vector.
        let direct = epsilon(0.01, 1.1, 1000, 1e-5)?;
        assert!((ledger.spent().epsilon - direct.epsilon).abs() < 1e-12);
        assert!((ledger.spent().epsilon - 1.7118).abs() < 0.02);
        assert!(!path.with_file_name("privacy.json.tmp").exists());
        Ok(())
    }

    #[test]
    fn mixed_rounds_sum_rdp_per_order() -> Result<()> {
        let d = dir();
        let path = d.path().join("l.json");
        let mut ledger = PrivacyLedger::open_with(&path, 50.0, 1e-6, Accountant::Rdp)?;
        let a = RoundParams { round: 1, q: 0.02, sigma: 0.9, steps: 50 };
        let b = RoundParams { round: 2, q: 0.1, sigma: 2.0, steps: 30 };
        ledger.record(a)?;
        let s = ledger.record(b)?;
        let mut acc = RdpAccountant::new();
        acc.compose(0.02, 0.9, 50)?;
        acc.compose(0.1, 2.0, 30)?;
        let want = acc.spent(1e-6)?;
        assert!((s.epsilon - want.epsilon).abs() < 1e-12);
        assert_eq!(s.rdp_order, Some(want.alpha));
        // Conversion after summing is tighter than summing the per-round ε.
        let sum_eps = epsilon(0.02, 0.9, 50, 1e-6)?.epsilon + epsilon(0.1, 2.0, 30, 1e-6)?.epsilon;
        assert!(s.epsilon < sum_eps);
        Ok(())
    }

    #[test]
    fn refuses_at_the_budget() -> Result<()> {
        let d = dir();
        let path = d.path().join("l.json");
        let mut ledger = PrivacyLedger::open(&path, 1.0, 1e-5)?;
        let mut recorded = 0;
        loop {
            let next = round(recorded + 1);
            let exceed = ledger.would_exceed(&next);
            match ledger.record(next) {
                Ok(s) => {
                    assert!(!exceed);
                    assert!(s.epsilon <= 1.0);
                    recorded += 1;
                }
                Err(PrivacyError::BudgetExceeded { round, would_spend, budget }) => {
                    assert!(exceed);
                    assert_eq!(round, recorded + 1);
                    assert!(would_spend > budget);
                    break;
                }
                Err(e) => return Err(e),
            }
            assert!(recorded < 1000, "budget never reached");
        }
        assert!(recorded > 0);
        let before = fs::read(&path).map_err(|source| PrivacyError::Io { path: path.clone(), source })?;
        // A refused round leaves the file and the state untouched, also after reopening.
        assert!(ledger.record(round(999)).is_err());
        let after = fs::read(&path).map_err(|source| PrivacyError::Io { path: path.clone(), source })?;
        assert_eq!(before, after);
        let reopened = PrivacyLedger::open(&path, 1.0, 1e-5)?;
        assert_eq!(reopened.rounds().len(), recorded as usize);
        assert!(reopened.would_exceed(&round(0)));
        // A smaller round may still fit.
        let tiny = RoundParams { round: 1000, q: 1e-4, sigma: 20.0, steps: 1 };
        assert!(!reopened.would_exceed(&tiny));
        Ok(())
    }

    #[test]
    fn invalid_round_is_rejected() -> Result<()> {
        let d = dir();
        let mut ledger = PrivacyLedger::open(d.path().join("l.json"), 1.0, 1e-5)?;
        let bad = RoundParams { round: 1, q: 0.0, sigma: 1.0, steps: 1 };
        assert!(ledger.would_exceed(&bad));
        assert!(matches!(ledger.record(bad), Err(PrivacyError::SamplingRate(_))));
        let bad = RoundParams { round: 1, q: 0.5, sigma: f64::NAN, steps: 1 };
        assert!(matches!(ledger.record(bad), Err(PrivacyError::NoiseMultiplier(_))));
        let bad = RoundParams { round: 1, q: 0.5, sigma: 1.0, steps: 0 };
        assert!(matches!(ledger.record(bad), Err(PrivacyError::ZeroSteps)));
        assert!(ledger.rounds().is_empty());
        Ok(())
    }

    #[test]
    fn conflicting_parameters_are_refused() -> Result<()> {
        let d = dir();
        let path = d.path().join("l.json");
        PrivacyLedger::open(&path, 3.0, 1e-5)?.record(round(1))?;
        match PrivacyLedger::open(&path, 4.0, 1e-5) {
            Err(PrivacyError::LedgerConflict { field: "budget_epsilon", stored, requested, .. }) => {
                assert_eq!((stored, requested), (3.0, 4.0));
            }
            other => panic!("expected budget conflict, got {other:?}"),
        }
        match PrivacyLedger::open(&path, 3.0, 1e-6) {
            Err(e @ PrivacyError::LedgerConflict { field: "delta", .. }) => {
                assert!(e.to_string().contains("delta"));
            }
            other => panic!("expected delta conflict, got {other:?}"),
        }
        // Nothing was reset.
        assert_eq!(PrivacyLedger::open(&path, 3.0, 1e-5)?.rounds().len(), 1);
        Ok(())
    }

    #[test]
    fn bad_open_arguments() {
        let d = dir();
        let p = d.path().join("l.json");
        assert!(matches!(PrivacyLedger::open(&p, 0.0, 1e-5), Err(PrivacyError::Budget(_))));
        assert!(matches!(PrivacyLedger::open(&p, f64::INFINITY, 1e-5), Err(PrivacyError::Budget(_))));
        assert!(matches!(PrivacyLedger::open(&p, 1.0, 1.0), Err(PrivacyError::Delta(_))));
        assert!(!p.exists());
    }

    fn assert_corrupt(path: &Path, contents: &[u8]) {
        fs::write(path, contents).expect("write");
        match PrivacyLedger::open(path, 3.0, 1e-5) {
            Err(e @ PrivacyError::LedgerCorrupt { .. }) => {
                assert!(e.to_string().contains("corrupt"), "{e}");
            }
            other => panic!("expected corrupt error for {:?}, got {other:?}", String::from_utf8_lossy(contents)),
        }
        // Never silently reset: the bytes are still there.
        assert_eq!(fs::read(path).expect("read"), contents);
    }

    #[test]
    fn corrupt_files_give_clear_errors_and_are_kept() -> Result<()> {
        let d = dir();
        let path = d.path().join("l.json");
        let mut ledger = PrivacyLedger::open(&path, 3.0, 1e-5)?;
        ledger.record(round(1))?;
        let good = fs::read(&path).map_err(|source| PrivacyError::Io { path: path.clone(), source })?;

        assert_corrupt(&path, b"");
        assert_corrupt(&path, &good[..good.len() / 2]); // torn write
        assert_corrupt(&path, b"{\"not\": \"a ledger\"}");
        assert_corrupt(&path, b"\x00\x01\x02garbage");
        let text = String::from_utf8_lossy(&good).into_owned();
        assert_corrupt(&path, text.replace("\"q\": 0.01", "\"q\": 1.5").as_bytes());
        assert_corrupt(&path, text.replace("\"steps\": 100", "\"steps\": 0").as_bytes());
        assert_corrupt(&path, text.replace(LEDGER_FORMAT, "something-else").as_bytes());
        assert_corrupt(&path, text.replace("\"version\": 1", "\"version\": 99").as_bytes());
        assert_corrupt(&path, text.replace("\"delta\": 0.00001", "\"delta\": 2.0").as_bytes());
        Ok(())
    }

    #[test]
    fn oversized_file_is_refused_before_reading() {
        let d = dir();
        let path = d.path().join("l.json");
        let f = File::create(&path).expect("create");
        f.set_len(MAX_LEDGER_BYTES + 1).expect("set_len"); // sparse, nothing to read
        drop(f);
        assert!(matches!(
            PrivacyLedger::open(&path, 1.0, 1e-5),
            Err(PrivacyError::LedgerTooLarge { len, .. }) if len == MAX_LEDGER_BYTES + 1
        ));
    }

    #[test]
    fn stale_temp_file_from_a_crash_is_ignored() -> Result<()> {
        let d = dir();
        let path = d.path().join("l.json");
        let mut ledger = PrivacyLedger::open(&path, 3.0, 1e-5)?;
        ledger.record(round(1))?;
        drop(ledger);
        // A crash in the middle of the next write leaves a partial temp file behind.
        fs::write(temp_path(&path), b"{\"format\": \"learnchain-pri").expect("write tmp");
        let mut ledger = PrivacyLedger::open(&path, 3.0, 1e-5)?;
        assert_eq!(ledger.rounds().len(), 1);
        ledger.record(round(2))?;
        assert!(!temp_path(&path).exists());
        assert_eq!(PrivacyLedger::open(&path, 3.0, 1e-5)?.rounds().len(), 2);
        Ok(())
    }

    #[test]
    fn failed_write_keeps_old_ledger_and_state() -> Result<()> {
        let d = dir();
        let path = d.path().join("l.json");
        let mut ledger = PrivacyLedger::open(&path, 3.0, 1e-5)?;
        ledger.record(round(1))?;
        let spent = ledger.spent();
        let before = fs::read(&path).map_err(|source| PrivacyError::Io { path: path.clone(), source })?;
        // Make the temporary file impossible to create: the write fails before the rename.
        fs::create_dir(temp_path(&path)).expect("mkdir");
        assert!(matches!(ledger.record(round(2)), Err(PrivacyError::Io { .. })));
        assert_eq!(ledger.rounds().len(), 1);
        assert_eq!(ledger.spent(), spent);
        assert_eq!(fs::read(&path).expect("read"), before);
        fs::remove_dir(temp_path(&path)).expect("rmdir");
        ledger.record(round(2))?;
        assert_eq!(PrivacyLedger::open(&path, 3.0, 1e-5)?.rounds().len(), 2);
        Ok(())
    }

    #[test]
    fn spent_by_either_accountant() -> Result<()> {
        let d = dir();
        let mut ledger = PrivacyLedger::open(d.path().join("l.json"), 5.0, 1e-5)?;
        for r in 1..=10 {
            ledger.record(round(r))?;
        }
        // The default accountant is PLD: 10 rounds of 100 steps are the PLD reference
        // vector, 1.5154 against RDP's 1.7118.
        assert_eq!(ledger.accountant(), Accountant::Pld);
        let pld = ledger.spent_by(Accountant::Pld)?;
        assert_eq!(pld, ledger.spent());
        assert!((pld.epsilon - 1.515_370_248).abs() < 1e-6, "{pld:?}");
        assert_eq!(pld.delta, 1e-5);
        let rdp = ledger.spent_by(Accountant::Rdp)?;
        assert!((rdp.epsilon - 1.7118).abs() < 0.01, "{rdp:?}");
        assert!(rdp.rdp_order.is_some());
        Ok(())
    }

    /// A ledger file written by a version that accounted with RDP only (format 1, the
    /// schema unchanged since) opens under the PLD gate: the same releases, a tighter ε,
    /// so rounds the RDP gate had refused may now fit the same budget.
    #[test]
    fn a_ledger_written_under_rdp_still_reads() -> Result<()> {
        let d = dir();
        let path = d.path().join("privacy-ledger.json");
        let rounds: Vec<String> = (1..=10)
            .map(|r| format!(r#"    {{ "round": {r}, "q": 0.01, "sigma": 1.1, "steps": 100 }}"#))
            .collect();
        let old = format!(
            "{{\n  \"format\": \"learnchain-privacy-ledger\",\n  \"version\": 1,\n  \"delta\": 1e-05,\n  \"budget_epsilon\": 1.55,\n  \"rounds\": [\n{}\n  ]\n}}\n",
            rounds.join(",\n")
        );
        fs::write(&path, &old).map_err(|source| PrivacyError::Io { path: path.clone(), source })?;
        let rdp = PrivacyLedger::open_with(&path, 1.55, 1e-5, Accountant::Rdp)?;
        assert!(rdp.spent().epsilon > 1.55, "RDP says this ledger is over its budget: {:?}", rdp.spent());
        let mut pld = PrivacyLedger::open(&path, 1.55, 1e-5)?;
        assert_eq!(pld.rounds().len(), 10);
        assert!((pld.spent().epsilon - 1.515_370_248).abs() < 1e-6, "{:?}", pld.spent());
        assert_eq!(fs::read_to_string(&path).expect("read"), old, "opening never rewrites the file");
        // The PLD gate goes on charging from the recorded history.
        assert!(pld.would_exceed(&round(11)));
        pld.record(RoundParams { round: 11, q: 0.001, sigma: 1.1, steps: 10 })?;
        assert_eq!(PrivacyLedger::open(&path, 1.55, 1e-5)?.rounds().len(), 11);
        Ok(())
    }

    #[test]
    fn same_round_number_twice_is_charged_twice() -> Result<()> {
        let d = dir();
        let mut ledger = PrivacyLedger::open(d.path().join("l.json"), 10.0, 1e-5)?;
        let once = ledger.record(round(7))?;
        let twice = ledger.record(round(7))?;
        assert!(twice.epsilon > once.epsilon);
        Ok(())
    }
}
