//! Chain tests: import, every rejection, reorg equivalence and persistence.

use std::sync::atomic::AtomicBool;

use learnchain_identity::{MemberSecret, Ring};
use learnchain_proto::{Block, Genesis, Hash32, Submission};
use proptest::prelude::*;

use crate::chain::{Chain, ImportOutcome};
use crate::error::{BlockError, SnapshotError, SubmissionError};
use crate::pow::search;

fn keys(n: u8) -> Vec<MemberSecret> {
    learnchain_identity::test_member_keys(n as usize)
}

fn member_id(k: &MemberSecret) -> Hash32 {
    Hash32(k.public().to_bytes())
}

fn genesis(keys: &[MemberSecret]) -> Genesis {
    let members = keys.iter().map(member_id).collect();
    let mut g = Genesis::template("chain-test", 3, 2, members);
    g.consensus.quorum = 2;
    g
}

struct Node {
    chain: Chain,
    _dir: tempfile::TempDir,
}

fn node(g: &Genesis) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = Chain::open(&dir.path().join("chain.redb"), g.clone()).expect("open");
    Node { chain, _dir: dir }
}

fn submission(chain: &Chain, key: &MemberSecret, seed: i32) -> Submission {
    crate::testing::signed_submission(chain, key, seed)
}

/// Builds and mines a block on `chain`'s head with submissions from `signers`.
fn mine(chain: &Chain, signers: &[&MemberSecret], seed: i32) -> Block {
    let b = crate::testing::mined_block(chain, signers, seed);
    for s in &b.submissions {
        chain.check_submission(s).expect("valid submission");
    }
    b
}

fn far_future() -> u64 {
    u64::MAX / 2
}

#[test]
fn blocks_extend_the_head_and_apply_the_mean() {
    let k = keys(3);
    let g = genesis(&k);
    let mut a = node(&g);
    let before = a.chain.head_model().to_vec();
    let b1 = mine(&a.chain, &[&k[0], &k[1]], 1);
    let deltas: Vec<Vec<i32>> = b1.submissions.iter().map(|s| s.update.as_i32().expect("an i32 update").to_vec()).collect();
    let out = a.chain.import(b1, far_future()).expect("import");
    assert!(matches!(out, ImportOutcome::Extended { .. }));
    assert_eq!(a.chain.head().height, 1);
    for i in 0..before.len() {
        let s = i64::from(deltas[0][i]) + i64::from(deltas[1][i]);
        assert_eq!(i64::from(a.chain.head_model()[i]), i64::from(before[i]) + learnchain_aggregate::div_round(s, 2));
    }
}

#[test]
fn invalid_blocks_are_refused_and_state_is_untouched() {
    let k = keys(3);
    let g = genesis(&k);
    let mut a = node(&g);
    let good = mine(&a.chain, &[&k[0], &k[1]], 1);
    let head = a.chain.head().clone();

    let mut bad_pow = good.clone();
    bad_pow.header.target = Hash32([0; 32]);
    assert!(matches!(a.chain.import(bad_pow, far_future()), Err(BlockError::InsufficientWork)));

    let mut bad_model = good.clone();
    bad_model.header.state_root = Hash32([7; 32]);
    bad_model.header.nonce = search(&bad_model.header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    assert!(matches!(a.chain.import(bad_model, far_future()), Err(BlockError::StateRoot { .. })));

    let mut orphan = good.clone();
    orphan.header.parent = Hash32([5; 32]);
    orphan.header.nonce = search(&orphan.header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    let err = a.chain.import(orphan, far_future()).expect_err("orphan");
    assert!(matches!(err, BlockError::ForeignSubmission { .. } | BlockError::UnknownParent(_)));

    let mut dup = good.clone();
    dup.submissions[1] = dup.submissions[0].clone();
    assert!(a.chain.import(dup, far_future()).is_err());

    // An outsider signs over a ring of its own making (the registry with itself swapped in).
    let outsider = MemberSecret::from_seed(&[77; 32]);
    let mut foreign = mine(&a.chain, &[&k[0], &k[1]], 1);
    let mut bad_sub = crate::testing::unsigned_submission(&a.chain, 3);
    let rings = a.chain.rings_at(&bad_sub.base).expect("rings");
    let mut own = rings.ring(0).expect("one group").keys().to_vec();
    own[0] = outsider.public();
    let own = Ring::new(own).expect("ring");
    crate::auth::sign_with_ring(&mut bad_sub, &outsider, 0, &own, &mut rand::rngs::OsRng).expect("signs");
    foreign.submissions[0] = bad_sub;
    let ids: Vec<Hash32> = {
        foreign.submissions.sort_by_key(|s| s.id());
        foreign.submissions.iter().map(|s| s.id()).collect()
    };
    foreign.header.body_root = learnchain_proto::block::body_root(&[], &ids);
    foreign.header.nonce = search(&foreign.header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    assert!(matches!(
        a.chain.import(foreign, far_future()),
        Err(BlockError::Submission { error: SubmissionError::RingMismatch { group: 0 }, .. })
    ));

    let mut tampered = good.clone();
    tampered.submissions[0].update.as_i32_mut().expect("an i32 update")[0] += 1;
    assert!(matches!(
        a.chain.import(tampered, far_future()),
        Err(BlockError::BadBodyRoot | BlockError::Unsorted)
    ));

    let mut future = good.clone();
    future.header.timestamp_ms = 10;
    future.header.nonce = search(&future.header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    assert!(matches!(a.chain.import(future, far_future()), Err(BlockError::TimestampTooOld { .. })));

    assert!(matches!(a.chain.import(good.clone(), 0), Err(BlockError::TimestampInFuture { .. })));

    assert_eq!(a.chain.head(), &head);
    a.chain.import(good.clone(), far_future()).expect("the good block still imports");
    assert!(matches!(a.chain.import(good, far_future()), Err(BlockError::AlreadyKnown)));
}

#[test]
fn below_quorum_needs_the_round_timeout() {
    let k = keys(3);
    let g = genesis(&k);
    let mut a = node(&g);
    let lone = submission(&a.chain, &k[0], 1);
    let now = a.chain.head().timestamp_ms + 10;
    let t = a.chain.build_template(Hash32([9; 32]), vec![lone], vec![], now).expect("template");
    // The template itself moves the timestamp past the timeout, so the block is valid…
    assert!(t.header.timestamp_ms >= a.chain.head().timestamp_ms + g.consensus.round_timeout_ms);
    let mut header = t.header.clone();
    header.nonce = search(&header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    let ok = Block { header, registrations: vec![], submissions: t.submissions.clone() };
    // …and a miner that backdates it is refused.
    let mut early = t.header;
    early.timestamp_ms = now;
    early.nonce = search(&early, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    let early = Block { header: early, registrations: vec![], submissions: t.submissions };
    assert!(matches!(a.chain.import(early, far_future()), Err(BlockError::QuorumNotMet { .. })));
    a.chain.import(ok, far_future()).expect("after timeout");
}

#[test]
fn mempool_checks() {
    let k = keys(3);
    let g = genesis(&k);
    let a = node(&g);
    let s = submission(&a.chain, &k[0], 1);
    assert!(a.chain.check_submission(&s).is_ok());
    let mut stale = s.clone();
    stale.base = Hash32([3; 32]);
    assert_eq!(a.chain.check_submission(&stale), Err(SubmissionError::NotOnHead(Hash32([3; 32]))));
    let mut long = s.clone();
    long.update.as_i32_mut().expect("an i32 update").push(1);
    assert!(matches!(a.chain.check_submission(&long), Err(SubmissionError::WrongLength { .. })));
    let mut huge = s.clone();
    huge.update.as_i32_mut().expect("an i32 update")[0] = i32::MAX;
    assert!(matches!(a.chain.check_submission(&huge), Err(SubmissionError::UpdateTooLarge { .. })));
    let mut forged = s;
    forged.update.as_i32_mut().expect("an i32 update")[1] ^= 1;
    assert_eq!(
        a.chain.check_submission(&forged),
        Err(SubmissionError::BadRingSignature(learnchain_identity::VerifyError::Invalid))
    );
}

/// The genesis privacy policy and the update-norm bound are consensus rules: enforced on
/// the mempool and on blocks, whoever built them.
#[test]
fn weaker_privacy_and_oversized_updates_are_refused() {
    use learnchain_proto::privacy::{BoundContext, update_norm_bound_units};
    let k = keys(3);
    let g = genesis(&k);
    let mut a = node(&g);
    fn resign(chain: &Chain, mut s: Submission, key: &MemberSecret) -> Submission {
        let rings = chain.rings_at(&s.base).expect("rings");
        crate::auth::sign_submission(&mut s, key, &rings, &mut rand::rngs::OsRng).expect("member");
        s
    }

    // Each weaker declaration alone.
    let p = &g.privacy;
    let base = submission(&a.chain, &k[0], 1);
    for (what, edit) in [
        ("noise", Box::new(|s: &mut Submission| s.dp.noise_multiplier.0 = p.min_noise_multiplier.0 - 1) as Box<dyn Fn(&mut Submission)>),
        ("clip", Box::new(|s: &mut Submission| s.dp.clip.0 = p.clip_bound.0 + 1)),
        ("steps", Box::new(|s: &mut Submission| s.dp.steps = p.max_local_steps + 1)),
        ("rate", Box::new(|s: &mut Submission| s.dp.sample_rate.0 = p.max_sample_rate.0 + 1)),
        ("batch", Box::new(|s: &mut Submission| s.num_examples = 1)),
    ] {
        let mut s = base.clone();
        edit(&mut s);
        let s = resign(&a.chain, s, &k[0]);
        let err = a.chain.check_submission(&s).expect_err(what);
        assert!(matches!(err, SubmissionError::WeakPrivacy(_)), "{what}: {err}");
        // In a block (built by a miner that skipped the check) it is refused too.
        let other = submission(&a.chain, &k[1], 2);
        let now = a.chain.head().timestamp_ms + g.pow.block_interval_ms;
        let t = a.chain.build_template(Hash32([9; 32]), vec![s, other], vec![], now).expect("template");
        let mut header = t.header;
        header.nonce = search(&header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
        let err = a.chain.import(Block { header, registrations: vec![], submissions: t.submissions }, far_future()).expect_err(what);
        assert!(matches!(err, BlockError::Submission { error: SubmissionError::WeakPrivacy(_), .. }), "{what}: {err}");
    }

    // Just inside and just outside the norm bound.
    let ctx = BoundContext::for_genesis(&g, 0);
    let bound = update_norm_bound_units(&base.dp, base.num_examples, &ctx);
    let n = base.update.len();
    let mut inside = vec![0i32; n];
    inside[0] = i32::try_from(bound).expect("fits");
    let mut s = base.clone();
    s.update = learnchain_proto::EncodedUpdate::I32(inside);
    let s = resign(&a.chain, s, &k[0]);
    a.chain.check_submission(&s).expect("an update exactly at the bound is allowed");
    let mut outside = vec![0i32; n];
    outside[0] = i32::try_from(bound).expect("fits");
    outside[1] = 1;
    let mut big = base.clone();
    big.update = learnchain_proto::EncodedUpdate::I32(outside);
    let big = resign(&a.chain, big, &k[0]);
    let err = a.chain.check_submission(&big).expect_err("over the bound");
    assert!(matches!(err, SubmissionError::UpdateNormTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("exceeds"), "{err}");
    let head = a.chain.head().clone();
    let other = submission(&a.chain, &k[1], 2);
    let now = head.timestamp_ms + g.pow.block_interval_ms;
    let t = a.chain.build_template(Hash32([9; 32]), vec![big, other.clone()], vec![], now).expect("template");
    let mut header = t.header;
    header.nonce = search(&header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    let err = a.chain.import(Block { header, registrations: vec![], submissions: t.submissions }, far_future()).expect_err("oversized");
    assert!(matches!(err, BlockError::Submission { error: SubmissionError::UpdateNormTooLarge { .. }, .. }), "{err}");
    assert_eq!(a.chain.head(), &head, "nothing changed");
    let t = a.chain.build_template(Hash32([9; 32]), vec![s, other], vec![], now).expect("template");
    let mut header = t.header;
    header.nonce = search(&header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    a.chain.import(Block { header, registrations: vec![], submissions: t.submissions }, far_future()).expect("at the bound imports");
}

#[test]
fn restart_resumes_at_head() {
    let k = keys(3);
    let g = genesis(&k);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("chain.redb");
    let (head, model) = {
        let mut c = Chain::open(&path, g.clone()).expect("open");
        for i in 0..3 {
            let b = mine(&c, &[&k[0], &k[1]], i);
            c.import(b, far_future()).expect("import");
        }
        (c.head().clone(), c.head_model().to_vec())
    };
    let c = Chain::open(&path, g.clone()).expect("reopen");
    assert_eq!(c.head(), &head);
    assert_eq!(c.head_model(), model.as_slice());
    let mut other = g;
    other.name = "another".into();
    assert!(Chain::open(&path, other).is_err());
}

/// Mines and imports `n` blocks on `c`'s head.
fn extend(c: &mut Chain, k: &[MemberSecret], n: usize, seed: i32) {
    for i in 0..n {
        let b = mine(c, &[&k[0], &k[1]], seed + i as i32);
        c.import(b, far_future()).expect("import");
    }
}

#[test]
fn the_head_state_is_rebuilt_from_the_newest_checkpoint() {
    use crate::store::CHECKPOINT_INTERVAL;
    let k = keys(3);
    let g = genesis(&k);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("chain.redb");
    let n = 2 * CHECKPOINT_INTERVAL + 5;
    let (head, model, registry) = {
        let mut c = Chain::open(&path, g.clone()).expect("open");
        extend(&mut c, &k, n as usize, 0);
        // Checkpoints at genesis and every interval; the head (5 past one) has none.
        let heights: Vec<u64> = c.checkpoints().expect("checkpoints").into_iter().map(|(h, _)| h).collect();
        assert_eq!(heights, vec![0, CHECKPOINT_INTERVAL, 2 * CHECKPOINT_INTERVAL]);
        (c.head().clone(), c.head_model().to_vec(), c.registry().clone())
    };
    // Reopened: the checkpoint at 64 plus five blocks replayed.
    let c = Chain::open(&path, g).expect("reopen");
    assert_eq!(c.head(), &head);
    assert_eq!(c.head_model(), model.as_slice());
    assert_eq!(c.registry(), &registry);
    assert_eq!(head.state_root, learnchain_proto::hash::state_root(&head.model_hash, &registry.hash()));
}

#[test]
fn a_reorg_leaves_a_checkpoint_on_the_new_best_chain() {
    let k = keys(3);
    let g = genesis(&k);
    let (a, _) = branch(&g, &k, 2, 1);
    let (b, model_b) = branch(&g, &k, 3, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("chain.redb");
    {
        let mut c = Chain::open(&path, g.clone()).expect("open");
        for blk in a.into_iter().chain(b.clone()) {
            c.import(blk, far_future()).expect("import");
        }
        assert_eq!(c.head().hash, b[2].hash());
        // The reorg (at height 2 or 3, by which of the equal-work siblings has the lower
        // hash) wrote a checkpoint of its new head, on the new best chain.
        let cps = c.checkpoints().expect("checkpoints");
        assert!(
            cps.iter().any(|&(h, hash)| h > 0 && b.iter().any(|blk| blk.hash() == hash) && c.canonical_hash(h).ok().flatten() == Some(hash)),
            "{cps:?}"
        );
    }
    let c = Chain::open(&path, g).expect("reopen after the reorg");
    assert_eq!(c.head().hash, b[2].hash());
    assert_eq!(c.head_model(), model_b.as_slice());
}

#[test]
fn a_pruned_chain_keeps_the_last_bodies_and_refuses_a_reorg_it_cannot_rewind() {
    use crate::chain::MIN_PRUNE_KEEP;
    let k = keys(3);
    let g = genesis(&k);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("chain.redb");
    let mut c = Chain::open(&path, g.clone()).expect("open");
    let err = c.set_prune(Some(10)).expect_err("too few");
    assert!(err.to_string().contains(&MIN_PRUNE_KEEP.to_string()), "{err}");
    c.set_prune(Some(MIN_PRUNE_KEEP)).expect("prune");
    // A sibling of block 2, mined on another node that shares block 1.
    extend(&mut c, &k, 1, 0);
    let mut other = node(&g);
    other.chain.import(c.block_at(1).expect("read").expect("block 1"), far_future()).expect("import");
    let sibling = mine(&other.chain, &[&k[0], &k[2]], 999);
    let total = MIN_PRUNE_KEEP + 20;
    extend(&mut c, &k, (total - 1) as usize, 1);
    let head = c.head().height;
    assert_eq!(head, total);
    let floor = head + 1 - MIN_PRUNE_KEEP;
    assert_eq!(c.body_floor(), floor);
    assert!(c.block_at(floor - 1).expect("read").is_none(), "below the floor: pruned");
    assert!(c.block_at(floor).expect("read").is_some(), "the oldest kept body");
    assert!(c.canonical_hash(1).expect("read").is_some(), "the index and metas stay");
    // Bodies go a whole segment (a sixteenth of the kept heights) at a time: the files hold
    // the kept bodies and less than one segment of older ones, besides the one being written.
    let per = MIN_PRUNE_KEEP / 16;
    let blocks_dir = path.with_extension("blocks");
    let segments = std::fs::read_dir(&blocks_dir).expect("block dir").count() as u64;
    assert!(!blocks_dir.join("seg-00000000.blk").exists(), "the oldest segment is gone");
    assert!(segments * per >= MIN_PRUNE_KEEP && segments * per < MIN_PRUNE_KEEP + 2 * per, "{segments} segments of {per} blocks");
    let err = c.import(sibling, far_future()).expect_err("too deep");
    assert!(matches!(err, BlockError::ReorgTooDeep { fork: 1, floor: f } if f == floor), "{err}");
    assert_eq!(err.verdict(), crate::error::Verdict::Ignore, "not the sender's fault");
    // A restart finds the state from a checkpoint within the kept bodies.
    let model = c.head_model().to_vec();
    drop(c);
    let mut c = Chain::open(&path, g).expect("reopen");
    assert_eq!(c.head_model(), model.as_slice());
    assert_eq!(c.body_floor(), floor);
    c.set_prune(Some(MIN_PRUNE_KEEP)).expect("prune");
    extend(&mut c, &k, 1, 5000);
    assert_eq!(c.body_floor(), floor + 1);
}

/// Mines `len` blocks on a fresh chain with seeds starting at `seed`, returning them.
fn branch(g: &Genesis, k: &[MemberSecret], len: usize, seed: i32) -> (Vec<Block>, Vec<i32>) {
    let mut n = node(g);
    let mut blocks = Vec::new();
    for i in 0..len {
        let b = mine(&n.chain, &[&k[0], &k[1], &k[2]][..2 + (i + seed as usize) % 2], seed * 100 + i as i32);
        n.chain.import(b.clone(), far_future()).expect("import");
        blocks.push(b);
    }
    (blocks, n.chain.head_model().to_vec())
}

#[test]
fn a_reorg_deeper_than_the_metas_in_memory_reads_the_rest_from_the_store() {
    use crate::chain::META_WINDOW;
    let k = keys(3);
    let g = genesis(&k);
    let len = META_WINDOW as usize + 4;
    let (a, _) = branch(&g, &k, len, 1);
    let (b, model_b) = branch(&g, &k, len + 1, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("chain.redb");
    let mut c = Chain::open(&path, g.clone()).expect("open");
    for block in a.iter().cloned() {
        c.import(block, far_future()).expect("import a");
    }
    assert!(c.metas_in_memory() as u64 <= META_WINDOW + 1, "{} metas in memory", c.metas_in_memory());
    assert_eq!(c.meta(&a[0].hash()).map(|m| m.height), Some(1), "an old meta comes from the store");
    // Branch b forks at genesis, deeper than the window: its blocks are side blocks, then
    // its last one moves the head across the whole fork.
    for block in b.iter().cloned() {
        c.import(block, far_future()).expect("import b");
    }
    assert_eq!(c.head().hash, b[len].hash());
    assert_eq!(c.head_model(), model_b.as_slice());
    assert_eq!(c.canonical_hash(1).expect("read"), Some(b[0].hash()));
    assert!(c.metas_in_memory() as u64 <= 2 * (META_WINDOW + 1), "{} metas in memory", c.metas_in_memory());
    drop(c);
    let c = Chain::open(&path, g).expect("reopen");
    assert_eq!(c.head().hash, b[len].hash());
    assert!(c.metas_in_memory() as u64 <= 2 * (META_WINDOW + 1), "{} metas in memory after a restart", c.metas_in_memory());
    assert!(c.contains(&a[0].hash()) && c.contains(&b[0].hash()), "every block is still known");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    /// After any interleaving of two competing branches, the head is the heavier branch and
    /// its model equals the model built straight on that branch.
    #[test]
    fn reorg_model_equals_straight_build(len_a in 1usize..4, len_b in 1usize..5, interleave in any::<u64>()) {
        let k = keys(3);
        let g = genesis(&k);
        let (a, model_a) = branch(&g, &k, len_a, 1);
        let (b, model_b) = branch(&g, &k, len_b, 2);
        let mut x = node(&g);
        let (mut ia, mut ib) = (0, 0);
        let mut bits = interleave;
        while ia < a.len() || ib < b.len() {
            let take_a = ib >= b.len() || (ia < a.len() && bits & 1 == 1);
            bits = bits.rotate_right(1);
            if take_a { x.chain.import(a[ia].clone(), far_future()).expect("a"); ia += 1; }
            else { x.chain.import(b[ib].clone(), far_future()).expect("b"); ib += 1; }
        }
        let tip_a = a.last().map(Block::hash);
        let tip_b = b.last().map(Block::hash);
        let head = x.chain.head().hash;
        if len_a > len_b {
            prop_assert_eq!(Some(head), tip_a);
            prop_assert_eq!(x.chain.head_model(), model_a.as_slice());
        } else if len_b > len_a {
            prop_assert_eq!(Some(head), tip_b);
            prop_assert_eq!(x.chain.head_model(), model_b.as_slice());
        } else {
            prop_assert!(Some(head) == tip_a || Some(head) == tip_b);
        }
        // Any block's model can be recomputed from the head.
        if let Some(first) = a.first() {
            let (_, m1) = branch(&g, &k, 1, 1);
            prop_assert_eq!(x.chain.model_at(&first.hash()).expect("model"), m1);
        }
        // The canonical index follows the head.
        let h = x.chain.head().height;
        prop_assert_eq!(x.chain.canonical_hash(h).expect("read"), Some(head));
        prop_assert_eq!(x.chain.canonical_hash(h + 1).expect("read"), None);
    }
}

/// Mines `header` and wraps it with a body, recomputing the body root.
fn block_of(mut header: learnchain_proto::Header, registrations: Vec<learnchain_proto::Registration>, mut subs: Vec<Submission>) -> Block {
    subs.sort_by_key(Submission::id);
    let reg_ids: Vec<Hash32> = registrations.iter().map(learnchain_proto::Registration::id).collect();
    let ids: Vec<Hash32> = subs.iter().map(Submission::id).collect();
    header.body_root = learnchain_proto::block::body_root(&reg_ids, &ids);
    header.nonce = search(&header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    Block { header, registrations, submissions: subs }
}

#[test]
fn registrations_take_effect_from_the_next_block_and_revocations_end_membership() {
    use crate::registry::{authorised_registration, revocation};
    use crate::error::RegistrationError;
    let k = keys(3);
    let newcomer = MemberSecret::from_seed(&[50; 32]);
    let authority = ed25519_dalek::SigningKey::from_bytes(&[60; 32]);
    let mut g = genesis(&k);
    g.enrolment.authority = Some(Hash32(authority.verifying_key().to_bytes()));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("chain.redb");
    let mut a = Chain::open(&path, g.clone()).expect("open");
    let chain_id = a.chain_id();
    let genesis_hash = a.head().hash;
    let reg = authorised_registration(&chain_id, &authority, &newcomer, &mut rand::rngs::OsRng);
    assert_eq!(a.check_registration(&reg), Ok(()));
    assert!(a.check_submission(&submission(&a, &newcomer, 5)).is_err(), "not a member before registration");

    // Block 1 carries the registration; a submission of the newcomer in that same block
    // would sign over the registry after the parent, which does not hold it.
    let b1 = crate::testing::mined_block_with(&a, &[&k[0], &k[1]], vec![reg.clone()], 1);
    assert_eq!(b1.registrations.len(), 1);
    a.import(b1.clone(), far_future()).expect("block with a registration");
    let id = member_id(&newcomer);
    assert_eq!(a.registry().record(&id).map(|r| r.registered_at), Some(1));
    assert!(matches!(a.check_registration(&reg), Err(RegistrationError::AlreadyRegistered { height: 1, .. })));

    // From block 2 on it submits, once per round.
    let s = submission(&a, &newcomer, 7);
    a.check_submission(&s).expect("a member from the block after its registration");
    let s2 = submission(&a, &newcomer, 8);
    assert_eq!(s.round_tag(), s2.round_tag(), "one member, one round, one tag");
    let mut pool = crate::SubmissionPool::new(a.head().hash, 8);
    pool.insert(s.clone()).expect("first");
    assert!(matches!(pool.insert(s2.clone()), Err(SubmissionError::Equivocation(_))));
    let t = a.build_template(Hash32([9; 32]), vec![s.clone(), s2.clone()], vec![], far_future() / 2).expect("template");
    assert_eq!(t.submissions.len(), 1, "the template keeps one per tag");
    let mut twice = a.build_template(Hash32([9; 32]), vec![s.clone()], vec![], a.head().timestamp_ms + 100).expect("template");
    twice.header.timestamp_ms = a.head().timestamp_ms + g.consensus.round_timeout_ms + 1;
    let twice = block_of(twice.header, vec![], vec![s.clone(), s2]);
    assert!(matches!(a.import(twice, far_future()), Err(BlockError::DuplicateRoundTag(_))));

    // Block 2 revokes it; its submission in block 2 (based on block 1) still counts.
    let rev = revocation(&chain_id, &authority, &id);
    assert_eq!(a.check_registration(&rev), Ok(()));
    let b2 = crate::testing::mined_block_with(&a, &[&k[0], &newcomer], vec![rev.clone()], 2);
    assert_eq!(b2.submissions.len(), 2);
    a.import(b2, far_future()).expect("revocation");
    assert_eq!(a.registry().record(&id).and_then(|r| r.revoked_at), Some(2));
    // After it: no group holds the key, and the ring it used before is refused.
    let mut late = crate::testing::unsigned_submission(&a, 9);
    let old_rings = a.rings_at(&b1.hash()).expect("rings at block 1");
    crate::auth::sign_submission(&mut late, &newcomer, &old_rings, &mut rand::rngs::OsRng).expect("signs the old ring");
    assert_eq!(a.check_submission(&late), Err(SubmissionError::RingMismatch { group: 0 }), "revoked");
    assert!(matches!(a.check_registration(&reg), Err(RegistrationError::WasRevoked { height: 2, .. })));
    assert!(matches!(a.check_registration(&rev), Err(RegistrationError::WasRevoked { height: 2, .. })));

    // The registry persists with the head, and is rewound for any other block.
    let head = a.head().clone();
    drop(a);
    let mut a = Chain::open(&path, g.clone()).expect("reopen");
    assert_eq!(a.head(), &head);
    assert_eq!(a.registry().record(&id).and_then(|r| r.revoked_at), Some(2));
    assert!(a.registry_at(&b1.hash()).expect("at block 1").is_active(&id));
    assert!(a.registry_at(&genesis_hash).expect("at genesis").record(&id).is_none());

    // A heavier branch without the registration takes over: the registry rewinds with it.
    let (other, _) = branch(&g, &k, 4, 3);
    for b in other {
        a.import(b, far_future()).expect("other branch");
    }
    assert_eq!(a.head().height, 4);
    assert!(a.registry().record(&id).is_none(), "the reorg unwound the registration");
    assert!(a.check_registration(&reg).is_ok(), "and it may be registered again on this branch");
}

#[test]
fn open_enrolment_stamps_and_registration_only_blocks() {
    use crate::error::RegistrationError;
    use crate::registry::{authorised_registration, stamped_registration};
    let k = keys(2);
    let newcomer = MemberSecret::from_seed(&[51; 32]);
    let mut g = genesis(&k);
    let closed = node(&g);
    let chain_id = closed.chain.chain_id();
    let stamped = stamped_registration(&chain_id, 8, &newcomer, &mut rand::rngs::OsRng);
    assert_eq!(closed.chain.check_registration(&stamped), Err(RegistrationError::ClosedEnrolment));
    let forged = authorised_registration(&chain_id, &ed25519_dalek::SigningKey::from_bytes(&[1; 32]), &newcomer, &mut rand::rngs::OsRng);
    assert_eq!(closed.chain.check_registration(&forged), Err(RegistrationError::NoAuthority));

    g.enrolment.open_stamp_bits = 8;
    let mut a = node(&g);
    let chain_id = a.chain.chain_id();
    let weak = {
        let mut r = stamped_registration(&chain_id, 0, &newcomer, &mut rand::rngs::OsRng);
        // Find a nonce that misses the 8 bits.
        if let learnchain_proto::RegistrationKind::Stamped { nonce, .. } = &mut r.kind {
            while learnchain_proto::registration::leading_zero_bits(&learnchain_proto::registration::stamp_hash(&chain_id, &r.member, *nonce)) >= 8 {
                *nonce += 1;
            }
        }
        r
    };
    assert!(matches!(a.chain.check_registration(&weak), Err(RegistrationError::WeakStamp { required: 8, .. })));
    let good = stamped_registration(&chain_id, 8, &newcomer, &mut rand::rngs::OsRng);
    assert_eq!(a.chain.check_registration(&good), Ok(()));
    // Possession is bound: the stamp cannot be moved to another key.
    let mut moved = good.clone();
    moved.member = member_id(&k[0]);
    assert!(a.chain.check_registration(&moved).is_err());

    // A block of registrations only needs the round timeout and leaves the model alone.
    let model = a.chain.head_model().to_vec();
    let t = a.chain.build_template(Hash32([9; 32]), vec![], vec![good.clone()], a.chain.head().timestamp_ms + 10).expect("template");
    assert!(t.submissions.is_empty());
    assert!(t.header.timestamp_ms >= a.chain.head().timestamp_ms + g.consensus.round_timeout_ms);
    let b = block_of(t.header, t.registrations, vec![]);
    a.chain.import(b, far_future()).expect("registration-only block");
    assert_eq!(a.chain.head_model(), model.as_slice());
    assert!(a.chain.registry().is_active(&member_id(&newcomer)));
    assert!(matches!(
        a.chain.build_template(Hash32([9; 32]), vec![], vec![], far_future() / 2),
        Err(BlockError::EmptyBody)
    ));
    let s = submission(&a.chain, &newcomer, 3);
    a.chain.check_submission(&s).expect("the stamped member submits");
}

#[test]
fn a_large_registry_is_split_into_groups_and_each_member_signs_in_its_own() {
    let k = keys(10);
    let mut g = genesis(&k);
    g.consensus.ring_size = 4;
    g.fit_limits();
    let mut a = node(&g);
    let rings = a.chain.rings_at(&a.chain.head().hash).expect("rings");
    assert_eq!(rings.groups(), 3);
    let sizes: Vec<usize> = (0..3).map(|i| rings.ring(i).expect("group").len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 10);
    assert!(sizes.iter().all(|&n| (3..=4).contains(&n)), "{sizes:?}");
    let signers: Vec<&MemberSecret> = k.iter().collect();
    let b = mine(&a.chain, &signers, 1);
    assert_eq!(b.submissions.len(), 10);
    let mut groups = std::collections::HashSet::new();
    for s in &b.submissions {
        let learnchain_proto::SubmissionAuth::Ring { group, responses, .. } = &s.auth;
        assert!(responses.len() <= 4);
        groups.insert(*group);
    }
    assert_eq!(groups.len(), 3, "members sign in all three groups");
    a.chain.import(b, far_future()).expect("imports");
    // The groups are reshuffled by the next base.
    let next = a.chain.rings_at(&a.chain.head().hash).expect("rings");
    let first: Vec<_> = (0..3).map(|i| rings.ring(i).map(|r| r.digest())).collect();
    let second: Vec<_> = (0..3).map(|i| next.ring(i).map(|r| r.digest())).collect();
    assert_ne!(first, second);
}

#[test]
fn malformed_registration_bodies_are_refused() {
    use crate::registry::stamped_registration;
    let k = keys(2);
    let mut g = genesis(&k);
    g.enrolment.open_stamp_bits = 4;
    g.enrolment.max_per_block = 2;
    g.fit_limits();
    let mut a = node(&g);
    let chain_id = a.chain.chain_id();
    let regs: Vec<learnchain_proto::Registration> = (0..3)
        .map(|i| stamped_registration(&chain_id, 4, &MemberSecret::from_seed(&[70 + i; 32]), &mut rand::rngs::OsRng))
        .collect();
    let t = a.chain.build_template(Hash32([9; 32]), vec![], regs.clone(), far_future() / 2).expect("template");
    assert_eq!(t.registrations.len(), 2, "at most max_per_block");
    let header = t.header.clone();
    let mut sorted = regs.clone();
    sorted.sort_by_key(learnchain_proto::Registration::id);
    assert!(matches!(
        a.chain.import(block_of(header.clone(), sorted.clone(), vec![]), far_future()),
        Err(BlockError::RegistrationCount { got: 3, max: 2 })
    ));
    let reversed: Vec<_> = sorted[..2].iter().rev().cloned().collect();
    assert!(matches!(a.chain.import(block_of(header.clone(), reversed, vec![]), far_future()), Err(BlockError::RegistrationsUnsorted)));
    let mut bad = sorted[0].clone();
    if let learnchain_proto::RegistrationKind::Stamped { possession, .. } = &mut bad.kind {
        possession.0[0] ^= 1;
    }
    let err = a.chain.import(block_of(header.clone(), vec![bad], vec![]), far_future()).expect_err("bad possession");
    assert!(matches!(err, BlockError::Registration { index: 0, error: crate::RegistrationError::BadPossession }), "{err}");
    a.chain.import(block_of(header, t.registrations, vec![]), far_future()).expect("the template imports");
}

/// The genesis rule is a consensus rule: a block with fewer submissions than it needs is
/// refused, a template that cannot meet it is not built (or carries its registrations
/// alone), and the aggregate is the rule's.
#[test]
fn the_aggregation_rule_is_enforced_and_recomputed() {
    let k = keys(5);
    let mut g = genesis(&k);
    g.consensus.aggregation = learnchain_proto::AggregationRule::Krum { f: 1 };
    assert!(g.validate().is_err(), "a quorum of 2 cannot meet krum:1's 5");
    g.consensus.quorum = 5;
    g.validate().expect("quorum raised");
    let mut a = node(&g);
    let few: Vec<Submission> = k[..4].iter().enumerate().map(|(i, key)| submission(&a.chain, key, i as i32)).collect();
    assert!(matches!(
        a.chain.build_template(Hash32([9; 32]), few.clone(), vec![], far_future() / 2),
        Err(BlockError::TooFewForRule { got: 4, needed: 5, .. })
    ));
    // A miner that builds it anyway is refused by every validator.
    let t = a.chain.build_template(Hash32([9; 32]), few.iter().take(1).cloned().collect(), vec![], 0);
    assert!(t.is_err());
    let head = a.chain.head().clone();
    let header = learnchain_proto::Header {
        version: learnchain_proto::header::HEADER_VERSION,
        chain_id: a.chain.chain_id(),
        height: 1,
        parent: head.hash,
        timestamp_ms: head.timestamp_ms + g.consensus.round_timeout_ms + 1,
        target: a.chain.required_target(&head),
        miner: Hash32([9; 32]),
        body_root: Hash32::ZERO,
        state_root: Hash32::ZERO,
        nonce: 0,
    };
    assert!(matches!(
        a.chain.import(block_of(header, vec![], few), far_future()),
        Err(BlockError::TooFewForRule { got: 4, needed: 5, .. })
    ));
    // With five the block is built and its model is Krum's choice, not the mean.
    let signers: Vec<&MemberSecret> = k.iter().collect();
    let b = mine(&a.chain, &signers, 1);
    let updates: Vec<&[i32]> = b.submissions.iter().map(|s| s.update.as_i32().expect("an i32 update")).collect();
    let krum = learnchain_aggregate::aggregate(learnchain_aggregate::Rule::Krum { f: 1 }, &updates).expect("krum");
    assert!(updates.contains(&krum.as_slice()), "krum picks one of the updates");
    let mut expected = a.chain.head_model().to_vec();
    learnchain_aggregate::apply(&mut expected, &krum).expect("applies");
    let hash = b.hash();
    a.chain.import(b, far_future()).expect("imports");
    assert_eq!(a.chain.head_model(), expected.as_slice());
    let report = a.chain.aggregate_report(&hash).expect("report");
    assert_eq!(report.len(), 5);
    let selected = report.iter().filter(|(_, _, r)| r.outcome == learnchain_aggregate::Outcome::Selected).count();
    assert_eq!(selected, 1, "krum selects exactly one");
    assert!(report.iter().all(|(_, _, r)| r.score.is_some()));
}

/// Two tips of equal work: every node takes the lower hash, whatever order they came in.
#[test]
fn equal_work_ties_go_to_the_lower_hash_in_any_order() {
    let k = keys(3);
    let g = genesis(&k);
    let maker = node(&g);
    let a = mine(&maker.chain, &[&k[0], &k[1]], 1);
    let b = mine(&maker.chain, &[&k[1], &k[2]], 2);
    assert_eq!(a.header.target, b.header.target, "equal work");
    let low = a.hash().min(b.hash());
    for (first, second) in [(&a, &b), (&b, &a)] {
        let mut n = node(&g);
        n.chain.import(first.clone(), far_future()).expect("first");
        n.chain.import(second.clone(), far_future()).expect("second");
        assert_eq!(n.chain.head().hash, low);
        let expected = if low == a.hash() { &a } else { &b };
        let mut model = g.model.initial_weights();
        let updates: Vec<&[i32]> = expected.submissions.iter().map(|s| s.update.as_i32().expect("an i32 update")).collect();
        learnchain_aggregate::apply(&mut model, &learnchain_aggregate::mean(&updates).expect("mean")).expect("apply");
        assert_eq!(n.chain.head_model(), model.as_slice(), "the model follows the winning tip");
    }
}

fn node_with(g: &Genesis, caches: crate::cache::ChainCaches) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = Chain::open_with_caches(&dir.path().join("chain.redb"), g.clone(), caches).expect("open");
    Node { chain, _dir: dir }
}

/// A block on `chain`'s head carrying exactly `subs` (checked or not), its aggregate and
/// model hash recomputed, mined.
fn block_carrying(chain: &Chain, subs: Vec<Submission>) -> Block {
    let now = chain.head().timestamp_ms + chain.genesis().pow.block_interval_ms;
    let t = chain.build_template(Hash32([9; 32]), subs, vec![], now).expect("template");
    let mut header = t.header;
    crate::testing::solve(&mut header);
    Block { header, registrations: t.registrations, submissions: t.submissions }
}

/// The ways a copy of an honest submission is tampered with in [`caches_never_change_a_verdict`].
fn tamper(chain: &Chain, s: &mut Submission, kind: u8, key: &MemberSecret) {
    let learnchain_proto::SubmissionAuth::Ring { c0, ring_digest, tag, .. } = &mut s.auth;
    match kind {
        1 => {
            // The update, under its old signature.
            let v = &mut s.update.as_i32_mut().expect("an i32 update")[0];
            *v = v.wrapping_add(1);
        }
        2 => c0.0[0] ^= 1,                             // the signature
        3 => ring_digest.0[0] ^= 1,                    // the ring it names
        4 => tag.0[5] ^= 0x10,                         // the round tag
        5 => {
            // A valid signature over an update past its norm bound.
            let max = chain.genesis().consensus.max_update_abs;
            s.update.as_i32_mut().expect("an i32 update").iter_mut().for_each(|v| *v = max);
            let rings = chain.rings_at(&s.base).expect("rings");
            crate::auth::sign_submission(s, key, &rings, &mut rand::rngs::OsRng).expect("member");
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]
    /// The caches never decide validity. A chain whose caches another chain of the process
    /// filled — it verified the honest copy of every submission in its pool and imported
    /// every honest block first — reaches the same verdict on every block as a chain with
    /// empty caches, whatever one submission of the block was tampered with.
    #[test]
    fn caches_never_change_a_verdict(steps in prop::collection::vec((0u8..6, 0usize..3), 1..5)) {
        let k = keys(4);
        let g = genesis(&k);
        let shared = crate::cache::ChainCaches::new();
        let mut pool = node_with(&g, shared.clone());
        let mut warm = node_with(&g, shared.clone());
        let mut cold = node(&g);
        for (step, (kind, which)) in steps.into_iter().enumerate() {
            let signers = [&k[0], &k[1], &k[2]];
            let honest: Vec<Submission> =
                signers.iter().enumerate().map(|(i, key)| submission(&pool.chain, key, (step * 10 + i) as i32)).collect();
            for s in &honest {
                pool.chain.check_submission(s).expect("honest");
            }
            let mut subs = honest.clone();
            tamper(&pool.chain, &mut subs[which], kind, signers[which]);
            let block = block_carrying(&pool.chain, subs);
            let honest_block = block_carrying(&pool.chain, honest);
            // The pool's node sees the honest block first: its aggregate is cached too.
            pool.chain.import(honest_block.clone(), far_future()).expect("honest block");
            let verdict = |r: Result<ImportOutcome, BlockError>| r.map(|o| o.new_head().map(|m| m.hash));
            let w = verdict(warm.chain.import(block.clone(), far_future()));
            let c = verdict(cold.chain.import(block, far_future()));
            prop_assert_eq!(&w, &c);
            prop_assert_eq!(kind == 0, w.is_ok(), "kind {} gave {:?}", kind, w);
            if kind != 0 {
                for n in [&mut warm, &mut cold] {
                    n.chain.import(honest_block.clone(), far_future()).expect("honest block");
                }
            }
            prop_assert_eq!(warm.chain.head_model(), cold.chain.head_model());
        }
        prop_assert!(shared.verified.stats().hits > 0, "the warm chain used the cache");
    }
}

/// One process, many chains, one cache: a submission verified by one node's pool is not
/// verified again by another node's import, yet a tampered copy of it — in a pool or in a
/// block — is refused by every node.
#[test]
fn a_tampered_copy_is_refused_by_every_node_that_shares_the_cache() {
    let k = keys(3);
    let g = genesis(&k);
    let shared = crate::cache::ChainCaches::new();
    let mut nodes: Vec<Node> = (0..4).map(|_| node_with(&g, shared.clone())).collect();
    let honest: Vec<Submission> = k.iter().enumerate().map(|(i, key)| submission(&nodes[0].chain, key, i as i32)).collect();
    for s in &honest {
        nodes[0].chain.check_submission(s).expect("honest");
    }
    let before = shared.verified.stats();
    for kind in 1..=5u8 {
        let mut copy = honest[1].clone();
        tamper(&nodes[0].chain, &mut copy, kind, &k[1]);
        for n in &nodes {
            assert!(n.chain.check_submission(&copy).is_err(), "tampered copy {kind} pooled");
        }
        let mut subs = honest.clone();
        subs[1] = copy;
        let block = block_carrying(&nodes[0].chain, subs);
        for n in &mut nodes {
            let err = n.chain.import(block.clone(), far_future()).expect_err("tampered block");
            assert!(matches!(err, BlockError::Submission { .. }), "kind {kind}: {err}");
        }
    }
    let honest_block = block_carrying(&nodes[0].chain, honest);
    for n in &mut nodes {
        n.chain.import(honest_block.clone(), far_future()).expect("honest block");
    }
    let after = shared.verified.stats();
    assert!(after.hits >= before.hits + 3 * 4, "every node's import of the honest block hit the cache: {after:?}");
    assert_eq!(nodes[3].chain.head_model(), nodes[0].chain.head_model());
}

fn quantized_genesis(keys: &[MemberSecret], encoding: &str) -> Genesis {
    let mut g = genesis(keys);
    g.consensus.update_encoding = encoding.parse().expect("valid encoding");
    g.validate().expect("valid genesis");
    g
}

fn resigned(chain: &Chain, mut s: Submission, key: &MemberSecret) -> Submission {
    let rings = chain.rings_at(&s.base).expect("rings");
    crate::auth::sign_submission(&mut s, key, &rings, &mut rand::rngs::OsRng).expect("member");
    s
}

/// A block of quantised updates imports, and the model moves by the genesis rule over the
/// decoded integers — the same on every node.
#[test]
fn quantized_blocks_apply_the_rule_over_decoded_updates() {
    use learnchain_proto::update::UpdateEncoding;
    let k = keys(3);
    for enc in ["i8", "i16", "i8:128", "i16:4096"] {
        let g = quantized_genesis(&k, enc);
        let mut a = node(&g);
        let mut b = node(&g);
        let before = a.chain.head_model().to_vec();
        let b1 = mine(&a.chain, &[&k[0], &k[1]], 1);
        let decoded: Vec<Vec<i32>> = b1
            .submissions
            .iter()
            .map(|s| {
                assert_eq!(s.update.encoding(), g.consensus.update_encoding, "{enc}");
                assert!(!matches!(s.update.encoding(), UpdateEncoding::I32));
                crate::validate::decode_update(&g, s).expect("decodes").into_owned()
            })
            .collect();
        a.chain.import(b1.clone(), far_future()).expect(enc);
        b.chain.import(b1, far_future()).expect(enc);
        assert_eq!(a.chain.head().model_hash, b.chain.head().model_hash);
        for i in 0..before.len() {
            let s = i64::from(decoded[0][i]) + i64::from(decoded[1][i]);
            assert_eq!(i64::from(a.chain.head_model()[i]), i64::from(before[i]) + learnchain_aggregate::div_round(s, 2), "{enc}");
        }
        // The stored block re-aggregates to the same model (reorg path).
        let genesis_hash = a.chain.canonical_hash(0).expect("read").expect("genesis");
        assert_eq!(a.chain.model_at(&genesis_hash).expect("rewinds"), before);
        let report = a.chain.aggregate_report(&a.chain.head().hash).expect("report");
        assert_eq!(report.len(), 2);
    }
}

/// Each way a quantised update can be malformed is refused by its own error, with a Reject
/// verdict, in the pool and in a block.
#[test]
fn malformed_quantized_updates_are_refused_by_name() {
    use learnchain_proto::EncodedUpdate;
    use learnchain_proto::update::{ScaleGroups, Width};
    let k = keys(3);
    let g = quantized_genesis(&k, "i8");
    let a = node(&g);
    // Blocks go to a second node on the same genesis head: `a` stays borrowed for signing.
    let mut v = node(&g);
    let good = submission(&a.chain, &k[0], 1);
    a.chain.check_submission(&good).expect("valid");
    let EncodedUpdate::I8 { groups, scales, values } = good.update.clone() else { panic!("an i8 genesis makes i8 updates") };
    let max_scale = (g.consensus.max_update_abs / 127) as u32;
    let edit = |f: &dyn Fn(&mut Vec<u32>, &mut Vec<i8>)| {
        let (mut sc, mut v) = (scales.clone(), values.clone());
        f(&mut sc, &mut v);
        let mut s = good.clone();
        s.update = EncodedUpdate::I8 { groups, scales: sc, values: v };
        resigned(&a.chain, s, &k[0])
    };
    let mut wrong_encoding = good.clone();
    wrong_encoding.update = EncodedUpdate::I32(vec![0; g.param_count()]);
    let wrong_encoding = resigned(&a.chain, wrong_encoding, &k[0]);
    let mut wrong_groups = good.clone();
    wrong_groups.update = EncodedUpdate::quantized(Width::I8, ScaleGroups::Chunks(128), vec![1], &vec![0; g.param_count()]);
    let wrong_groups = resigned(&a.chain, wrong_groups, &k[0]);
    type Case = (&'static str, Submission, fn(&SubmissionError) -> bool);
    let cases: Vec<Case> = vec![
        ("wrong encoding", wrong_encoding, |e| matches!(e, SubmissionError::WrongEncoding { .. })),
        ("per chunk on a per-tensor chain", wrong_groups, |e| matches!(e, SubmissionError::WrongEncoding { .. })),
        ("missing scale", edit(&|s, _| { s.pop(); }), |e| matches!(e, SubmissionError::ScaleCount { expected: 2, got: 1 })),
        ("extra scale", edit(&|s, _| s.push(1)), |e| matches!(e, SubmissionError::ScaleCount { expected: 2, got: 3 })),
        ("zero scale", edit(&|s, _| s[1] = 0), |e| matches!(e, SubmissionError::ZeroScale { group: 1 })),
        ("oversized scale", edit(&|s, _| s[0] = max_scale + 1), |e| matches!(e, SubmissionError::ScaleTooLarge { group: 0, .. })),
        ("short values", edit(&|_, v| { v.pop(); }), |e| matches!(e, SubmissionError::WrongLength { .. })),
        ("long values", edit(&|_, v| v.push(0)), |e| matches!(e, SubmissionError::WrongLength { .. })),
        ("asymmetric level", edit(&|_, v| v[2] = i8::MIN), |e| matches!(e, SubmissionError::LevelOutOfRange { index: 2, .. })),
    ];
    let other = submission(&a.chain, &k[1], 2);
    let now = a.chain.head().timestamp_ms + g.pow.block_interval_ms;
    for (what, s, is) in cases {
        let err = a.chain.check_submission(&s).expect_err(what);
        assert!(is(&err), "{what}: {err}");
        assert_eq!(err.verdict(), crate::error::Verdict::Reject, "{what}");
        assert!(!err.to_string().is_empty());
        // A miner that skipped the check: the block is refused naming the submission.
        let mut header = a.chain.build_template(Hash32([9; 32]), vec![other.clone()], vec![], now).expect("template").header;
        header.state_root = Hash32::ZERO;
        let block = block_of(header, vec![], vec![s, other.clone()]);
        let err = v.chain.import(block, far_future()).expect_err(what);
        assert!(matches!(&err, BlockError::Submission { error, .. } if is(error)), "{what}: {err}");
    }
    // The largest scale is allowed, and still decodes within max_update_abs.
    let at_max = edit(&|s, _| s[0] = max_scale);
    a.chain.check_submission(&at_max).map(|_| ()).or_else(|e| match e {
        SubmissionError::UpdateNormTooLarge { .. } => Ok(()),
        other => Err(other),
    }).expect("the scale itself is acceptable");
    let b = mine(&a.chain, &[&k[0], &k[1]], 5);
    v.chain.import(b, far_future()).expect("valid quantised blocks still import");
    assert_eq!(v.chain.head().height, 1);
}

/// The update-norm bound applies to the decoded integers: an i8 update whose decoded norm
/// is just over the bound is refused, exactly at it accepted.
#[test]
fn the_norm_bound_applies_to_the_decoded_update() {
    use learnchain_proto::EncodedUpdate;
    use learnchain_proto::privacy::{BoundContext, update_norm_bound_units};
    use learnchain_proto::update::{ScaleGroups, Width};
    let k = keys(3);
    let g = quantized_genesis(&k, "i8");
    let a = node(&g);
    let base = submission(&a.chain, &k[0], 1);
    let bound = update_norm_bound_units(&base.dp, base.num_examples, &BoundContext::for_genesis(&g, 0));
    let n = g.param_count();
    // One coordinate at 127 × scale = bound exactly needs bound divisible by 127; use a
    // scale of ⌊bound/127⌋ (at the bound or under) and one step more (over).
    let scale = u32::try_from(bound / 127).expect("fits");
    let mut levels = vec![0i32; n];
    levels[0] = 127;
    let inside = EncodedUpdate::quantized(Width::I8, ScaleGroups::PerTensor, vec![scale, 1], &levels);
    let mut s = base.clone();
    s.update = inside;
    a.chain.check_submission(&resigned(&a.chain, s, &k[0])).expect("within the bound");
    levels[1] = 127;
    let over = EncodedUpdate::quantized(Width::I8, ScaleGroups::PerTensor, vec![scale + 1, 1], &levels);
    let mut s = base.clone();
    s.update = over;
    let err = a.chain.check_submission(&resigned(&a.chain, s, &k[0])).expect_err("over");
    assert!(matches!(err, SubmissionError::UpdateNormTooLarge { .. }), "{err}");
}

/// The aggregate of decoded updates does not depend on the order they arrive in or on the
/// node computing it: validators sort by id, and every rule is integer arithmetic.
#[test]
fn aggregate_over_decoded_updates_is_order_independent() {
    let k = keys(3);
    let g = quantized_genesis(&k, "i8:128");
    let a = node(&g);
    let subs: Vec<Submission> = (0..3).map(|i| submission(&a.chain, &k[i], 10 + i as i32)).collect();
    let now = a.chain.head().timestamp_ms + g.pow.block_interval_ms;
    let forward = a.chain.build_template(Hash32([9; 32]), subs.clone(), vec![], now).expect("template");
    let mut reversed = subs.clone();
    reversed.reverse();
    let backward = a.chain.build_template(Hash32([9; 32]), reversed, vec![], now).expect("template");
    assert_eq!(forward.header.state_root, backward.header.state_root);
    let decoded: Vec<Vec<i32>> = subs.iter().map(|s| crate::validate::decode_update(&g, s).expect("decodes").into_owned()).collect();
    for rule in [learnchain_aggregate::Rule::Mean, learnchain_aggregate::Rule::Median] {
        let mut views: Vec<&[i32]> = decoded.iter().map(Vec::as_slice).collect();
        let first = learnchain_aggregate::aggregate(rule, &views).expect("aggregates");
        views.rotate_left(1);
        assert_eq!(learnchain_aggregate::aggregate(rule, &views).expect("aggregates"), first);
    }
    let b = node(&g);
    let c = node(&g);
    let mut header = forward.header;
    header.nonce = search(&header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    let block = Block { header, registrations: vec![], submissions: forward.submissions };
    let (mut b, mut c) = (b, c);
    b.chain.import(block.clone(), far_future()).expect("imports");
    c.chain.import(block, far_future()).expect("imports");
    assert_eq!(b.chain.head_model(), c.chain.head_model());
}

/// The snapshot bytes of block `height` as a peer serves them: every chunk, in order.
fn served_state(c: &Chain, height: u64) -> Vec<u8> {
    let info = c.snapshots().expect("list").into_iter().find(|s| s.height == height).expect("listed");
    let mut out = Vec::new();
    for i in 0..info.chunks() {
        out.extend(c.snapshot_chunk(&info.block, i as u32).expect("read").expect("chunk"));
    }
    assert_eq!(out.len() as u64, info.bytes);
    assert!(c.snapshot_chunk(&info.block, info.chunks() as u32).expect("read").is_none(), "no chunk past the end");
    out
}

#[test]
fn a_fresh_chain_starts_from_a_snapshot_and_imports_the_blocks_after_it() {
    use crate::store::CHECKPOINT_INTERVAL;
    let k = keys(3);
    let g = genesis(&k);
    let mut a = node(&g);
    extend(&mut a.chain, &k, CHECKPOINT_INTERVAL as usize + 6, 0);
    let snap = CHECKPOINT_INTERVAL;
    assert_eq!(a.chain.snapshots().expect("list").iter().map(|s| s.height).collect::<Vec<_>>(), vec![snap]);
    let headers = a.chain.headers_by_range(1, snap as u32).expect("headers");
    for h in &headers {
        assert_eq!(Some(h.hash()), a.chain.canonical_hash(h.height).expect("read"), "a header rebuilt from its meta");
    }
    let state = served_state(&a.chain, snap);
    let mut b = node(&g);
    assert!(b.chain.is_fresh());
    let head = b.chain.install_snapshot(&headers, &state, far_future()).expect("installs");
    assert_eq!(head.height, snap);
    let at_snap = a.chain.canonical_hash(snap).expect("read").expect("canonical");
    assert_eq!(head.hash, at_snap);
    assert_eq!(b.chain.head_model(), a.chain.model_at(&at_snap).expect("model").as_slice());
    assert_eq!(b.chain.head().total_work, a.chain.meta(&at_snap).expect("meta").total_work);
    assert_eq!(b.chain.body_floor(), snap + 1);
    for h in snap + 1..=a.chain.head().height {
        b.chain.import(a.chain.block_at(h).expect("read").expect("block"), far_future()).expect("imports after the snapshot");
    }
    assert_eq!(b.chain.head(), a.chain.head());
    assert_eq!(b.chain.head_model(), a.chain.head_model());
    // A second install is refused: the chain is no longer fresh.
    assert!(matches!(b.chain.install_snapshot(&headers, &state, far_future()), Err(SnapshotError::NotFresh(_))));
    // The snapshot node serves its own checkpoint and headers from there on.
    assert_eq!(b.chain.headers_by_range(snap, 2).expect("headers").len(), 2);
}

#[test]
fn a_snapshot_that_does_not_add_up_is_refused_and_changes_nothing() {
    use crate::store::CHECKPOINT_INTERVAL;
    let k = keys(3);
    let g = genesis(&k);
    let mut a = node(&g);
    extend(&mut a.chain, &k, CHECKPOINT_INTERVAL as usize, 0);
    let snap = CHECKPOINT_INTERVAL;
    let headers = a.chain.headers_by_range(1, snap as u32).expect("headers");
    let state = served_state(&a.chain, snap);
    let b = node(&g);
    let mut b = b;
    let refuse = |chain: &mut Chain, headers: &[learnchain_proto::Header], state: &[u8]| {
        let err = chain.install_snapshot(headers, state, far_future()).expect_err("refused");
        assert!(chain.is_fresh(), "nothing installed after: {err}");
        assert_eq!(chain.meta(&headers[0].hash()), None, "no header kept after: {err}");
        err
    };
    // A weight changed and its hash recomputed: consistent bytes, not the state root.
    let mut other = state.clone();
    other[40] ^= 1;
    let model: Vec<i32> = other[40..40 + 4 * g.param_count()].chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    other[..32].copy_from_slice(&learnchain_proto::hash::model_hash(&model).0);
    assert!(matches!(refuse(&mut b.chain, &headers, &other), SnapshotError::StateRoot { .. }));
    // A flipped bit without the hash: malformed.
    let mut flipped = state.clone();
    flipped[41] ^= 1;
    assert!(matches!(refuse(&mut b.chain, &headers, &flipped), SnapshotError::Malformed(_)));
    // Truncated.
    assert!(matches!(refuse(&mut b.chain, &headers, &state[..state.len() - 1]), SnapshotError::Malformed(_)));
    // A header whose proof of work no longer meets its target (its state root is the
    // snapshot's, so only the header chain is wrong).
    let mut forged = headers.clone();
    forged[3].timestamp_ms += 1;
    let err = refuse(&mut b.chain, &forged, &state);
    assert!(matches!(err, SnapshotError::Header { height: 4, .. } | SnapshotError::Header { height: 5, .. }), "{err}");
    // Headers that skip one.
    let mut gap = headers.clone();
    gap.remove(10);
    assert!(matches!(refuse(&mut b.chain, &gap, &state), SnapshotError::Header { height: 12, .. }));
    // The good one still installs.
    b.chain.install_snapshot(&headers, &state, far_future()).expect("installs");
}
