//! Sync protocol messages: `SyncRequest` and `SyncResponse` through `learnchain_proto::decode`
//! under the limits the sync codec applies (crates/net/src/codec.rs: `MAX_REQUEST_BYTES` =
//! `MAX_SYNC_REQUEST_BYTES` for requests, the genesis `limits.max_sync_response_bytes`, capped
//! at `MAX_MESSAGE_BYTES`, for responses). The codec's length-prefixed framing (`read_frame`)
//! is `pub(crate)` in crates/net and not reachable from here; this drives the decode it calls
//! on each frame body. The first input byte selects request (even) or response (odd) and the
//! genesis variant (`(b >> 1) % 3`); the rest is the frame body.
//!
//! Asserts: no panic or unbounded allocation; a decoded message re-encodes to the same bytes
//! (the canonical encoding promises one encoding per value); then the stateless checks the
//! node makes of it: on the serving side (node/src/sync/mod.rs `serve`) the per-request id and
//! hash limits, on the asking side each block of a `Blocks` answer through
//! `CheckedBlock::check`, each pooled item through the stateless submission and registration
//! checks, and the `PoolIds` count limits (node/src/sync/pool.rs `pool_ids`).
#![no_main]

use learnchain_chain::validate::CheckedBlock;
use learnchain_fuzz::{check_registration, check_submission, fixture};
use learnchain_proto::encoding::MAX_MESSAGE_BYTES;
use learnchain_proto::sync::{MAX_BODY_ITEM_IDS, MAX_HASHES_PER_REQUEST, MAX_POOL_REGISTRATION_IDS, MAX_SYNC_REQUEST_BYTES};
use learnchain_proto::{SyncRequest, SyncResponse, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let f = fixture(selector >> 1);
    if selector & 1 == 0 {
        let Ok(request) = decode::<SyncRequest>(body, MAX_SYNC_REQUEST_BYTES) else { return };
        assert_eq!(encode(&request), body, "a request decoded from non-canonical bytes");
        match &request {
            SyncRequest::BlocksByHash { hashes } => {
                let _refused = hashes.len() > MAX_HASHES_PER_REQUEST;
            }
            SyncRequest::BlocksByRange { count, .. } => {
                let _served = (*count).min(f.genesis.limits.max_blocks_per_request);
            }
            SyncRequest::BodyItems { .. } | SyncRequest::PoolItems { .. } => {
                let _refused = request.body_item_count() > MAX_BODY_ITEM_IDS;
            }
            SyncRequest::Status | SyncRequest::Pool | SyncRequest::PendingRegistrations | SyncRequest::PoolIds => {}
        }
    } else {
        let max = (f.genesis.limits.max_sync_response_bytes as usize).min(MAX_MESSAGE_BYTES);
        let Ok(response) = decode::<SyncResponse>(body, max) else { return };
        assert_eq!(encode(&response), body, "a response decoded from non-canonical bytes");
        match response {
            SyncResponse::Blocks(blocks) => {
                for block in blocks {
                    let hash = block.hash();
                    if let Ok(checked) = CheckedBlock::check(&f.genesis, &f.chain_id, block) {
                        assert_eq!(checked.hash, hash);
                    }
                }
            }
            SyncResponse::Submissions(subs) => {
                for s in &subs {
                    let _ = check_submission(f, s);
                }
            }
            SyncResponse::Registrations(regs) => {
                for r in &regs {
                    let _ = check_registration(f, r);
                }
            }
            SyncResponse::BodyItems { registrations, submissions } => {
                for r in &registrations {
                    let _ = check_registration(f, r);
                }
                for s in &submissions {
                    let _ = check_submission(f, s);
                }
            }
            SyncResponse::PoolIds { registrations, submissions } => {
                let _refused = submissions.len() > f.genesis.consensus.max_submissions as usize
                    || registrations.len() > MAX_POOL_REGISTRATION_IDS;
            }
            SyncResponse::Status(_) | SyncResponse::Refused(_) => {}
        }
    }
});
