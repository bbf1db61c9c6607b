//! Chain tests: import, every rejection, reorg equivalence and persistence.

use std::sync::atomic::AtomicBool;

use ed25519_dalek::SigningKey;
use learnchain_proto::{Block, Genesis, Hash32, Submission};
use proptest::prelude::*;

use crate::chain::{Chain, ImportOutcome};
use crate::error::{BlockError, SubmissionError};
use crate::pow::search;

fn keys(n: u8) -> Vec<SigningKey> {
    (1..=n).map(|i| SigningKey::from_bytes(&[i; 32])).collect()
}

fn genesis(keys: &[SigningKey]) -> Genesis {
    let members = keys.iter().map(|k| Hash32(k.verifying_key().to_bytes())).collect();
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

fn submission(chain: &Chain, key: &SigningKey, seed: i32) -> Submission {
    crate::testing::signed_submission(chain, key, seed)
}

/// Builds and mines a block on `chain`'s head with submissions from `signers`.
fn mine(chain: &Chain, signers: &[&SigningKey], seed: i32) -> Block {
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
    let deltas: Vec<Vec<i32>> = b1.submissions.iter().map(|s| s.delta.clone()).collect();
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
    bad_model.header.model_hash = Hash32([7; 32]);
    bad_model.header.nonce = search(&bad_model.header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    assert!(matches!(a.chain.import(bad_model, far_future()), Err(BlockError::ModelHash { .. })));

    let mut orphan = good.clone();
    orphan.header.parent = Hash32([5; 32]);
    orphan.header.nonce = search(&orphan.header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    let err = a.chain.import(orphan, far_future()).expect_err("orphan");
    assert!(matches!(err, BlockError::ForeignSubmission { .. } | BlockError::UnknownParent(_)));

    let mut dup = good.clone();
    dup.submissions[1] = dup.submissions[0].clone();
    assert!(a.chain.import(dup, far_future()).is_err());

    let outsider = SigningKey::from_bytes(&[77; 32]);
    let mut foreign = mine(&a.chain, &[&k[0], &k[1]], 1);
    let mut bad_sub = submission(&a.chain, &outsider, 3);
    bad_sub.round = foreign.submissions[0].round;
    foreign.submissions[0] = bad_sub;
    let ids: Vec<Hash32> = {
        foreign.submissions.sort_by_key(|s| s.id());
        foreign.submissions.iter().map(|s| s.id()).collect()
    };
    foreign.header.body_root = learnchain_proto::block::merkle_root(&ids);
    foreign.header.nonce = search(&foreign.header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    assert!(matches!(
        a.chain.import(foreign, far_future()),
        Err(BlockError::Submission { error: SubmissionError::UnknownMember(_), .. })
    ));

    let mut tampered = good.clone();
    tampered.submissions[0].delta[0] += 1;
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
    let t = a.chain.build_template(Hash32([9; 32]), vec![lone], now).expect("template");
    // The template itself moves the timestamp past the timeout, so the block is valid…
    assert!(t.header.timestamp_ms >= a.chain.head().timestamp_ms + g.consensus.round_timeout_ms);
    let mut header = t.header.clone();
    header.nonce = search(&header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    let ok = Block { header, submissions: t.submissions.clone() };
    // …and a miner that backdates it is refused.
    let mut early = t.header;
    early.timestamp_ms = now;
    early.nonce = search(&early, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    let early = Block { header: early, submissions: t.submissions };
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
    long.delta.push(1);
    assert!(matches!(a.chain.check_submission(&long), Err(SubmissionError::WrongLength { .. })));
    let mut huge = s.clone();
    huge.delta[0] = i32::MAX;
    assert!(matches!(a.chain.check_submission(&huge), Err(SubmissionError::UpdateTooLarge { .. })));
    let mut forged = s;
    forged.delta[1] ^= 1;
    assert_eq!(a.chain.check_submission(&forged), Err(SubmissionError::BadSignature));
}

/// The genesis privacy policy and the update-norm bound are consensus rules: enforced on
/// the mempool and on blocks, whoever built them.
#[test]
fn weaker_privacy_and_oversized_updates_are_refused() {
    use learnchain_proto::privacy::{BoundContext, update_norm_bound_units};
    let k = keys(3);
    let g = genesis(&k);
    let mut a = node(&g);
    let resign = |mut s: Submission, key: &SigningKey| {
        crate::auth::sign_submission(&mut s, key);
        s
    };

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
        let s = resign(s, &k[0]);
        let err = a.chain.check_submission(&s).expect_err(what);
        assert!(matches!(err, SubmissionError::WeakPrivacy(_)), "{what}: {err}");
        // In a block (built by a miner that skipped the check) it is refused too.
        let other = submission(&a.chain, &k[1], 2);
        let now = a.chain.head().timestamp_ms + g.pow.block_interval_ms;
        let t = a.chain.build_template(Hash32([9; 32]), vec![s, other], now).expect("template");
        let mut header = t.header;
        header.nonce = search(&header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
        let err = a.chain.import(Block { header, submissions: t.submissions }, far_future()).expect_err(what);
        assert!(matches!(err, BlockError::Submission { error: SubmissionError::WeakPrivacy(_), .. }), "{what}: {err}");
    }

    // Just inside and just outside the norm bound.
    let ctx = BoundContext::for_genesis(&g, 0);
    let bound = update_norm_bound_units(&base.dp, base.num_examples, &ctx);
    let n = base.delta.len();
    let mut inside = vec![0i32; n];
    inside[0] = i32::try_from(bound).expect("fits");
    let mut s = base.clone();
    s.delta = inside;
    let s = resign(s, &k[0]);
    a.chain.check_submission(&s).expect("an update exactly at the bound is allowed");
    let mut outside = vec![0i32; n];
    outside[0] = i32::try_from(bound).expect("fits");
    outside[1] = 1;
    let mut big = base.clone();
    big.delta = outside;
    let big = resign(big, &k[0]);
    let err = a.chain.check_submission(&big).expect_err("over the bound");
    assert!(matches!(err, SubmissionError::UpdateNormTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("exceeds"), "{err}");
    let head = a.chain.head().clone();
    let other = submission(&a.chain, &k[1], 2);
    let now = head.timestamp_ms + g.pow.block_interval_ms;
    let t = a.chain.build_template(Hash32([9; 32]), vec![big, other.clone()], now).expect("template");
    let mut header = t.header;
    header.nonce = search(&header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    let err = a.chain.import(Block { header, submissions: t.submissions }, far_future()).expect_err("oversized");
    assert!(matches!(err, BlockError::Submission { error: SubmissionError::UpdateNormTooLarge { .. }, .. }), "{err}");
    assert_eq!(a.chain.head(), &head, "nothing changed");
    let t = a.chain.build_template(Hash32([9; 32]), vec![s, other], now).expect("template");
    let mut header = t.header;
    header.nonce = search(&header, 0, u64::MAX, &AtomicBool::new(false)).expect("nonce");
    a.chain.import(Block { header, submissions: t.submissions }, far_future()).expect("at the bound imports");
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

/// Mines `len` blocks on a fresh chain with seeds starting at `seed`, returning them.
fn branch(g: &Genesis, k: &[SigningKey], len: usize, seed: i32) -> (Vec<Block>, Vec<i32>) {
    let mut n = node(g);
    let mut blocks = Vec::new();
    for i in 0..len {
        let b = mine(&n.chain, &[&k[0], &k[1], &k[2]][..2 + (i + seed as usize) % 2], seed * 100 + i as i32);
        n.chain.import(b.clone(), far_future()).expect("import");
        blocks.push(b);
    }
    (blocks, n.chain.head_model().to_vec())
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
