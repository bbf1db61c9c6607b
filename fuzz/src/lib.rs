//! Shared fixtures of the learnchain fuzz targets.
//!
//! - [`fixture`]: three small, valid genesis variants (one per update encoding family:
//!   `i32`, `i8` per tensor, `i16:128`), each with an enrolment authority and open
//!   enrolment at one stamp bit, so every registration kind can pass its stateless checks.
//!   The targets decode under these geneses' limits and check against their chain ids.
//! - [`check_compact_stateless`] and [`judge_announcement`]: the node's cheap checks of a
//!   gossiped compact block and submission announcement that need no chain state, mirrored
//!   from `node/src/sync/{compact,pool}.rs` (there they take a `ChainService`).
//! - [`check_submission`] and [`check_registration`]: every stateless check the chain runs on
//!   one pool item (shape, policy, norm bound, ring signature against the genesis registry;
//!   registration chain, key, authorisation, stamp and proof of possession).
//! - The seed builders ([`seed_submission`], [`seed_block`], …) used by `examples/seeds.rs`.

use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use learnchain_chain::auth::{BaseRings, sign_submission};
use learnchain_chain::pow::meets_target;
use learnchain_chain::registry::{Registry, authorised_registration, check_authorisation, revocation, stamped_registration};
use learnchain_chain::testing::{encode_for, sample_delta};
use learnchain_chain::validate::{base_norm_sq, check_submission_shape, check_update_norm};
use learnchain_identity::MemberSecret;
use learnchain_proto::announce::SubmissionAnnouncement;
use learnchain_proto::block::body_root;
use learnchain_proto::header::HEADER_VERSION;
use learnchain_proto::{Block, CompactBlock, Genesis, Hash32, Header, Registration, Submission, UpdateEncoding};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// One genesis the targets decode and check under.
pub struct Fixture {
    /// The genesis (validated).
    pub genesis: Genesis,
    /// Its chain id.
    pub chain_id: Hash32,
    /// Its genesis block's hash (the base of round-1 submissions).
    pub genesis_hash: Hash32,
    /// The genesis member keys (test keys 0..4).
    pub members: Vec<MemberSecret>,
    /// The enrolment authority's key.
    pub authority: SigningKey,
    /// The genesis initial model, for the update-norm bound.
    pub initial_weights: Vec<i32>,
}

/// Number of genesis variants.
pub const FIXTURES: usize = 3;

fn build(variant: usize) -> Fixture {
    let members = learnchain_identity::test_member_keys(4);
    let keys = members.iter().map(|k| Hash32(k.public().to_bytes())).collect();
    let mut g = Genesis::template(&format!("fuzz-{variant}"), 4, 2, keys);
    let authority = SigningKey::from_bytes(&[7u8; 32]);
    g.enrolment.authority = Some(Hash32(authority.verifying_key().to_bytes()));
    g.enrolment.open_stamp_bits = 1;
    g.consensus.update_encoding = match variant {
        0 => UpdateEncoding::I32,
        1 => "i8".parse().expect("valid encoding"),
        _ => "i16:128".parse().expect("valid encoding"),
    };
    g.fit_limits();
    g.validate().expect("the fuzz genesis is valid");
    let chain_id = g.chain_id();
    let genesis_hash = g.header().hash();
    let initial_weights = g.model.initial_weights();
    Fixture { genesis: g, chain_id, genesis_hash, members, authority, initial_weights }
}

/// The genesis variant `selector % FIXTURES`.
pub fn fixture(selector: u8) -> &'static Fixture {
    static ALL: OnceLock<Vec<Fixture>> = OnceLock::new();
    let all = ALL.get_or_init(|| (0..FIXTURES).map(build).collect());
    &all[selector as usize % FIXTURES]
}

/// The node's checks of a gossiped compact block before any fetch, without the two that
/// need the chain (block already known, parent known): `check_compact` in
/// `node/src/sync/compact.rs`, in the same order.
pub fn check_compact_stateless(f: &Fixture, compact: &CompactBlock) -> Result<Hash32, String> {
    let g = &f.genesis;
    let (regs, subs) = (&compact.registration_ids, &compact.submission_ids);
    if subs.len() > g.consensus.max_submissions as usize {
        return Err("too many submission ids".into());
    }
    if regs.len() > g.enrolment.max_per_block as usize {
        return Err("too many registration ids".into());
    }
    if subs.is_empty() && regs.is_empty() {
        return Err("empty body".into());
    }
    let rule = g.consensus.aggregation;
    if !subs.is_empty() && subs.len() < rule.min_inputs() {
        return Err("too few for the rule".into());
    }
    if !strictly_ascending(regs) || !strictly_ascending(subs) {
        return Err("ids not ascending".into());
    }
    let h = &compact.header;
    if h.version != HEADER_VERSION {
        return Err("header version".into());
    }
    if h.chain_id != f.chain_id {
        return Err("wrong chain".into());
    }
    let hash = h.hash();
    if !meets_target(&hash, &h.target) {
        return Err("insufficient work".into());
    }
    if !compact.body_root_matches() {
        return Err("bad body root".into());
    }
    check_prefilled(regs, compact.prefilled_registrations.iter().map(Registration::id))?;
    check_prefilled(subs, compact.prefilled_submissions.iter().map(Submission::id))?;
    Ok(hash)
}

fn strictly_ascending(ids: &[Hash32]) -> bool {
    ids.windows(2).all(|w| w[0] < w[1])
}

fn check_prefilled(ids: &[Hash32], prefilled: impl Iterator<Item = Hash32>) -> Result<(), String> {
    let listed: std::collections::HashSet<&Hash32> = ids.iter().collect();
    let mut seen = std::collections::HashSet::new();
    for id in prefilled {
        if !listed.contains(&id) || !seen.insert(id) {
            return Err("prefilled item not listed or sent twice".into());
        }
    }
    Ok(())
}

/// The stateless part of the node's judgement of a gossiped announcement
/// (`judge_before_fetch` in `node/src/sync/pool.rs`): the announced size against the genesis
/// limit, and the round against the base when the base is the genesis block.
pub fn judge_announcement(f: &Fixture, a: &SubmissionAnnouncement) -> Result<(), String> {
    if u64::from(a.bytes) > f.genesis.limits.max_submission_bytes {
        return Err("announced submission larger than the genesis allows".into());
    }
    if a.base == f.genesis_hash && a.round != 1 {
        return Err("round is not the base's next".into());
    }
    Ok(())
}

/// Every check the chain runs on one submission without chain state: its shape against the
/// genesis (chain, encoding, length, scales, bounds, DP policy), its update-norm bound on the
/// initial model, and its ring signature against the genesis registry's rings at its base.
pub fn check_submission(f: &Fixture, s: &Submission) -> Result<Hash32, String> {
    let update = check_submission_shape(&f.genesis, &f.chain_id, s).map_err(|e| e.to_string())?;
    let base_norm = base_norm_sq(&f.genesis, &f.initial_weights);
    check_update_norm(&f.genesis, s, &update, base_norm).map_err(|e| e.to_string())?;
    let digest = s.signing_digest();
    let rings = BaseRings::new(&Registry::genesis(&f.genesis), &s.base, f.genesis.consensus.ring_size);
    rings.verify(s, &digest).map_err(|e| e.to_string())?;
    Ok(s.id_from_digest(&digest))
}

/// Every check the chain runs on one registration without chain state: chain, member key,
/// authorisation, stamp, proof of possession, and the rules against the genesis registry.
pub fn check_registration(f: &Fixture, r: &Registration) -> Result<Hash32, String> {
    check_authorisation(&f.genesis, &f.chain_id, r).map_err(|e| e.to_string())?;
    Registry::genesis(&f.genesis).check(r).map_err(|e| e.to_string())?;
    Ok(r.id())
}

// ---- Seed builders (examples/seeds.rs) ----

/// A valid round-1 submission on the genesis block, ring-signed by member `signer % 4`.
pub fn seed_submission(f: &Fixture, signer: usize, seed: i32) -> Submission {
    let g = &f.genesis;
    let mut s = Submission {
        chain_id: f.chain_id,
        base: f.genesis_hash,
        round: 1,
        num_examples: 1000,
        dp: g.policy_declaration(),
        update: encode_for(g, &sample_delta(g.param_count(), seed).iter().map(|v| v / 64).collect::<Vec<_>>()),
        auth: learnchain_chain::auth::unsigned(),
    };
    let rings = BaseRings::new(&Registry::genesis(g), &f.genesis_hash, g.consensus.ring_size);
    let mut rng = ChaCha20Rng::seed_from_u64(seed as u64);
    sign_submission(&mut s, &f.members[signer % f.members.len()], &rings, &mut rng).expect("a genesis member signs");
    s
}

/// Valid registrations of a new member: authorised, stamped, and a revocation of member 0.
pub fn seed_registrations(f: &Fixture) -> Vec<Registration> {
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let newcomer = MemberSecret::from_seed(&[42u8; 32]);
    let other = MemberSecret::from_seed(&[43u8; 32]);
    vec![
        authorised_registration(&f.chain_id, &f.authority, &newcomer, &mut rng),
        stamped_registration(&f.chain_id, f.genesis.enrolment.open_stamp_bits, &other, &mut rng),
        revocation(&f.chain_id, &f.authority, &Hash32(f.members[0].public().to_bytes())),
    ]
}

/// A block at height 1 on the genesis block carrying `submissions` and `registrations`
/// (sorted as a block must be), with the easiest target so its proof of work always holds.
pub fn seed_block(f: &Fixture, mut submissions: Vec<Submission>, mut registrations: Vec<Registration>) -> Block {
    submissions.sort_by_key(Submission::id);
    registrations.sort_by_key(Registration::id);
    let reg_ids: Vec<Hash32> = registrations.iter().map(Registration::id).collect();
    let sub_ids: Vec<Hash32> = submissions.iter().map(Submission::id).collect();
    let header = Header {
        version: HEADER_VERSION,
        chain_id: f.chain_id,
        height: 1,
        parent: f.genesis_hash,
        timestamp_ms: f.genesis.timestamp_ms + 2_000,
        target: Hash32([0xff; 32]),
        miner: Hash32([9; 32]),
        body_root: body_root(&reg_ids, &sub_ids),
        state_root: Hash32::ZERO,
        nonce: 0,
    };
    Block { header, registrations, submissions }
}

// ---- Files for the path-based readers ----

/// A scratch file of this process for readers that take a path (in `/dev/shm` when it
/// exists, so no disk is touched): `name` in a directory of its own, created once.
pub fn scratch_path(name: &str) -> std::path::PathBuf {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() };
        let dir = base.join(format!("learnchain-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    });
    dir.join(name)
}

/// Replaces the file at `path` with `bytes`, with the given unix mode.
pub fn write_scratch(path: &std::path::Path, bytes: &[u8], mode: u32) {
    let _ = std::fs::remove_file(path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = opts.open(path).expect("scratch file");
    std::io::Write::write_all(&mut file, bytes).expect("scratch write");
}

/// Whether a keystore's argon2id parameters are cheap enough to run once per fuzz input
/// (at most 256 KiB·passes in all); dearer files are only parsed and inspected, since the
/// format allows up to 1 GiB × 64 passes by design.
pub fn cheap_kdf(kdf: Option<learnchain_identity::KdfParams>) -> bool {
    kdf.is_none_or(|k| u64::from(k.m_cost_kib) * u64::from(k.t_cost) <= 256)
}
