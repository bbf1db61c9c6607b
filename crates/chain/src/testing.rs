//! Helpers that build valid chain objects for tests, benchmarks and tools: ring-signed
//! submissions for a chain's head and mined blocks. Not used by consensus code.

use std::sync::atomic::AtomicBool;

use learnchain_identity::MemberSecret;
use learnchain_proto::update::{EncodedUpdate, UpdateEncoding};
use learnchain_proto::{Block, Genesis, Hash32, Registration, Submission};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::auth::{sign_submission, unsigned};
use crate::chain::Chain;
use crate::pow::search;

/// A deterministic update vector for `params` parameters, distinct per `seed`, with every
/// coordinate in [-500, 500).
pub fn sample_delta(params: usize, seed: i32) -> Vec<i32> {
    (0..params as i32).map(|i| (seed.wrapping_mul(31).wrapping_add(i.wrapping_mul(7))).rem_euclid(1000) - 500).collect()
}

/// `delta` in `genesis`'s update encoding, deterministically: as it is for `i32`; for a
/// quantised encoding with per-group scales `⌈max|v| / max_level⌉` and levels rounded
/// toward zero (so the decoded update is never longer than `delta`).
pub fn encode_for(genesis: &Genesis, delta: &[i32]) -> EncodedUpdate {
    match genesis.consensus.update_encoding {
        UpdateEncoding::I32 => EncodedUpdate::I32(delta.to_vec()),
        UpdateEncoding::Quantized { width, groups } => {
            let m = i64::from(width.max_level());
            let max_scale = (i64::from(genesis.consensus.max_update_abs) / m).max(1);
            let mut scales = Vec::new();
            let mut levels = vec![0i32; delta.len()];
            for range in groups.ranges(&genesis.model) {
                let top = delta.get(range.clone()).unwrap_or(&[]).iter().map(|v| i64::from(v.unsigned_abs())).max().unwrap_or(0);
                let scale = ((top + m - 1) / m).clamp(1, max_scale);
                for i in range.filter(|&i| i < delta.len()) {
                    levels[i] = (i64::from(delta[i]) / scale).clamp(-m, m) as i32;
                }
                scales.push(scale as u32);
            }
            EncodedUpdate::quantized(width, groups, scales, &levels)
        }
    }
}

/// An unsigned submission for the next round on `chain`'s head, in the genesis encoding.
pub fn unsigned_submission(chain: &Chain, seed: i32) -> Submission {
    let head = chain.head();
    Submission {
        chain_id: chain.chain_id(),
        base: head.hash,
        round: head.height + 1,
        num_examples: 10,
        dp: chain.genesis().policy_declaration(),
        update: encode_for(chain.genesis(), &sample_delta(chain.genesis().param_count(), seed)),
        auth: unsigned(),
    }
}

/// A submission for the next round on `chain`'s head, ring-signed by `key` over its group
/// of the head's registry. A key that is not a member gets an unsigned submission (which
/// every validator refuses).
pub fn signed_submission(chain: &Chain, key: &MemberSecret, seed: i32) -> Submission {
    let mut s = unsigned_submission(chain, seed);
    let mut rng = ChaCha20Rng::seed_from_u64(seed as u64);
    if let Ok(rings) = chain.rings_at(&s.base) {
        let _ = sign_submission(&mut s, key, &rings, &mut rng);
    }
    s
}

/// Finds a nonce for `header`'s target and sets it.
pub fn solve(header: &mut learnchain_proto::Header) {
    if let Some(nonce) = search(header, 0, u64::MAX, &AtomicBool::new(false)) {
        header.nonce = nonce;
    }
}

/// A mined block on `chain`'s head carrying one submission per signer (seeds `seed`,
/// `seed + 1`, …), timestamped one block interval after the head.
pub fn mined_block(chain: &Chain, signers: &[&MemberSecret], seed: i32) -> Block {
    mined_block_with(chain, signers, vec![], seed)
}

/// [`mined_block`] that also carries `registrations`.
pub fn mined_block_with(chain: &Chain, signers: &[&MemberSecret], registrations: Vec<Registration>, seed: i32) -> Block {
    let subs: Vec<Submission> =
        signers.iter().enumerate().map(|(i, k)| signed_submission(chain, k, seed + i as i32)).collect();
    let now = chain.head().timestamp_ms + chain.genesis().pow.block_interval_ms;
    match chain.build_template(Hash32([9; 32]), subs, registrations, now) {
        Ok(t) => {
            let mut header = t.header;
            solve(&mut header);
            Block { header, registrations: t.registrations, submissions: t.submissions }
        }
        // Callers pass valid signers; an empty body is the only way to fail here.
        Err(_) => Block { header: chain.genesis().header(), registrations: vec![], submissions: vec![] },
    }
}
