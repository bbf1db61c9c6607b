//! Gossip payloads of every topic, as the node's `on_gossip` (node/src/node/gossip.rs) and the relays of
//! node/src/sync/{compact,pool}.rs decode them. The first input byte selects the topic
//! (`b & 3`: 0 blocks, 1 compact blocks, 2 submission announcements, 3 registrations) and the
//! genesis variant (`(b >> 2) % 3`, see `learnchain_fuzz::fixture`); the rest is the payload,
//! decoded with `learnchain_proto::decode` under the limit the node uses for that topic: the
//! genesis `limits.max_block_bytes` for blocks and compact blocks, `MAX_ANNOUNCEMENT_BYTES`
//! for announcements, `MAX_REGISTRATION_BYTES` for registrations.
//!
//! Asserts: no panic, no over-limit allocation (ASan / `-rss_limit_mb`), and for every payload
//! that decodes, that re-encoding gives the same bytes (the canonical encoding promises one
//! encoding per value, proto/src/encoding.rs). A decoded value then goes through the checks
//! the node runs without chain state: `CheckedBlock::check` for a block (and its compact form
//! round-trips); the node's pre-fetch checks of a compact block
//! (`learnchain_fuzz::check_compact_stateless`) and, when every item is prefilled, the rebuilt
//! block through `CheckedBlock::check` with the compact block's hash; the stateless
//! announcement judgement; and every stateless registration check.
#![no_main]

use std::collections::HashMap;

use learnchain_chain::validate::CheckedBlock;
use learnchain_fuzz::{check_compact_stateless, check_registration, fixture, judge_announcement};
use learnchain_proto::announce::MAX_ANNOUNCEMENT_BYTES;
use learnchain_proto::registration::MAX_REGISTRATION_BYTES;
use learnchain_proto::{Block, CompactBlock, Hash32, Registration, Submission, SubmissionAnnouncement, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else { return };
    let f = fixture(selector >> 2);
    let max_block = f.genesis.limits.max_block_bytes as usize;
    match selector & 3 {
        0 => {
            let Ok(block) = decode::<Block>(payload, max_block) else { return };
            assert_eq!(encode(&block), payload, "a block decoded from non-canonical bytes");
            let compact = CompactBlock::from_block(&block, |_| true, max_block);
            let bytes = encode(&compact);
            assert_eq!(decode::<CompactBlock>(&bytes, usize::MAX).as_ref(), Ok(&compact));
            let hash = block.hash();
            if let Ok(checked) = CheckedBlock::check(&f.genesis, &f.chain_id, block) {
                assert_eq!(checked.hash, hash);
                assert_eq!(checked.block.compute_body_root(), checked.block.header.body_root);
            }
        }
        1 => {
            let Ok(compact) = decode::<CompactBlock>(payload, max_block) else { return };
            assert_eq!(encode(&compact), payload, "a compact block decoded from non-canonical bytes");
            let Ok(hash) = check_compact_stateless(f, &compact) else { return };
            assert_eq!(hash, compact.hash());
            if compact.prefilled_registrations.len() != compact.registration_ids.len()
                || compact.prefilled_submissions.len() != compact.submission_ids.len()
            {
                return;
            }
            // Every item prefilled: the node rebuilds the block from them alone.
            let mut regs: HashMap<Hash32, Registration> =
                compact.prefilled_registrations.iter().map(|r| (r.id(), r.clone())).collect();
            let mut subs: HashMap<Hash32, Submission> =
                compact.prefilled_submissions.iter().map(|s| (s.id(), s.clone())).collect();
            let registrations: Option<Vec<Registration>> =
                compact.registration_ids.iter().map(|id| regs.remove(id)).collect();
            let submissions: Option<Vec<Submission>> = compact.submission_ids.iter().map(|id| subs.remove(id)).collect();
            let (Some(registrations), Some(submissions)) = (registrations, submissions) else { return };
            let block = compact.into_block(registrations, submissions);
            assert_eq!(block.hash(), hash);
            if let Ok(checked) = CheckedBlock::check(&f.genesis, &f.chain_id, block) {
                assert_eq!(checked.hash, hash);
            }
        }
        2 => {
            let Ok(a) = decode::<SubmissionAnnouncement>(payload, MAX_ANNOUNCEMENT_BYTES) else { return };
            assert_eq!(encode(&a), payload, "an announcement decoded from non-canonical bytes");
            let _ = judge_announcement(f, &a);
        }
        _ => {
            let Ok(r) = decode::<Registration>(payload, MAX_REGISTRATION_BYTES) else { return };
            assert_eq!(encode(&r), payload, "a registration decoded from non-canonical bytes");
            if let Ok(id) = check_registration(f, &r) {
                assert_eq!(id, r.id());
            }
        }
    }
});
