//! Item-fetch exchanges: a `SyncRequest::BodyItems` / `SyncRequest::PoolItems` request and the
//! `SyncResponse::BodyItems` answer to it, as node/src/sync/compact.rs (`CompactRelay::fetch`)
//! and node/src/sync/pool.rs (`Fetcher::fetch`, `pull_items`) exchange them. Input: one
//! selector byte (genesis variant `b % 3`), a `u16` little-endian request length, the request
//! frame body, then the response frame body; each is decoded with `learnchain_proto::decode`
//! under the codec's limits (`MAX_SYNC_REQUEST_BYTES`; the genesis `max_sync_response_bytes`).
//!
//! Asserts: no panic or unbounded allocation; each decoded message re-encodes to the same
//! bytes (one encoding per value). The request then meets the server's id limit
//! (`MAX_BODY_ITEM_IDS`, `serve_body_items` / `serve_pool_items`). Given both, the answer is
//! checked as the asking node checks it: no more items than ids asked, every item filling an
//! empty slot of an id asked for (the relay's `fill`), the fetched submission matching its
//! announcement (`SubmissionAnnouncement::matches`), and every item through the stateless
//! chain checks (shape, policy, norm bound and ring signature of a submission; chain, key,
//! authorisation, stamp, proof of possession and registry rules of a registration).
#![no_main]

use learnchain_fuzz::{check_registration, check_submission, fixture};
use learnchain_proto::encoding::MAX_MESSAGE_BYTES;
use learnchain_proto::sync::{MAX_BODY_ITEM_IDS, MAX_SYNC_REQUEST_BYTES};
use learnchain_proto::{Hash32, SubmissionAnnouncement, SyncRequest, SyncResponse, decode, encode};
use libfuzzer_sys::fuzz_target;

/// Fills the first empty slot whose id is `id` (node/src/sync/compact.rs `fill`).
fn fill(ids: &[Hash32], slots: &mut [bool], id: Hash32) -> bool {
    match ids.iter().zip(slots.iter_mut()).find(|(i, slot)| **i == id && !**slot) {
        Some((_, slot)) => {
            *slot = true;
            true
        }
        None => false,
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let f = fixture(data[0]);
    let len = usize::from(u16::from_le_bytes([data[1], data[2]]));
    let rest = &data[3..];
    let (request_bytes, response_bytes) = rest.split_at(len.min(rest.len()));

    let request = decode::<SyncRequest>(request_bytes, MAX_SYNC_REQUEST_BYTES).ok();
    if let Some(r) = &request {
        assert_eq!(encode(r), request_bytes, "a request decoded from non-canonical bytes");
    }
    let (asked_regs, asked_subs, pool) = match request {
        Some(SyncRequest::BodyItems { registrations, submissions, .. }) => (registrations, submissions, false),
        Some(SyncRequest::PoolItems { registrations, submissions }) => (registrations, submissions, true),
        _ => (Vec::new(), Vec::new(), false),
    };
    if asked_regs.len() + asked_subs.len() > MAX_BODY_ITEM_IDS {
        // The server refuses it; the asking node never sends it.
        return;
    }

    let max = (f.genesis.limits.max_sync_response_bytes as usize).min(MAX_MESSAGE_BYTES);
    let Ok(response) = decode::<SyncResponse>(response_bytes, max) else { return };
    assert_eq!(encode(&response), response_bytes, "a response decoded from non-canonical bytes");
    let SyncResponse::BodyItems { registrations, submissions } = response else { return };
    if registrations.len() + submissions.len() > asked_regs.len() + asked_subs.len() {
        return; // WrongItems: more items than ids asked.
    }
    let mut reg_slots = vec![false; asked_regs.len()];
    let mut sub_slots = vec![false; asked_subs.len()];
    for r in &registrations {
        let id = r.id();
        if !fill(&asked_regs, &mut reg_slots, id) {
            return; // WrongItems: not asked for.
        }
        if let Ok(checked) = check_registration(f, r) {
            assert_eq!(checked, id);
        }
    }
    for s in &submissions {
        let id = s.id();
        if !fill(&asked_subs, &mut sub_slots, id) {
            return;
        }
        if pool {
            let a = SubmissionAnnouncement::of(s, id);
            assert!(a.matches(s, &id));
            assert_eq!(decode::<SubmissionAnnouncement>(&encode(&a), usize::MAX), Ok(a));
        }
        if let Ok(checked) = check_submission(f, s) {
            assert_eq!(checked, id);
        }
    }
});
