//! The miner task: waits for a round's submissions, builds a block, races proof of work on
//! a blocking thread, and drops the race the moment a better head arrives.
//!
//! A block is built once the pool holds the genesis quorum of submissions for the head, or
//! once the round timeout has passed since the head arrived and the pool holds at least
//! as many submissions as the aggregation rule needs, or a registration. At the timeout a
//! miner short of its quorum pulls every peer's pool once, so a submission gossip did not
//! carry to it (a peer that had not seen the head yet ignores it rather than forwarding)
//! still makes the block. The nonce search runs on tokio's blocking pool with a cancel flag, checked every
//! 16 384 hashes; a new head, a pause or shutdown sets it. A mined block is imported, then
//! announced as a compact block (see [`crate::relay`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use learnchain_chain::pow;
use learnchain_net::NetworkHandle;
use learnchain_proto::{Block, Hash32};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::service::{ChainService, Origin};

/// Runs until `shutdown` turns true.
pub async fn run(
    svc: ChainService,
    net: NetworkHandle,
    miner_key: Hash32,
    mut enabled: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut heads = svc.heads();
    let mut pool = svc.pool_status();
    let quorum = svc.genesis().consensus.quorum as usize;
    // After the round timeout a block needs enough submissions for the aggregation rule,
    // or a registration to carry alone.
    let minimum = svc.genesis().consensus.aggregation.min_inputs().max(1);
    let timeout = Duration::from_millis(svc.genesis().consensus.round_timeout_ms);
    'round: loop {
        let head = heads.borrow_and_update().clone();
        let deadline = Instant::now() + timeout;
        let mut pulled = false;
        // Wait until the round is ready to mine.
        loop {
            if *shutdown.borrow() {
                return;
            }
            let status = *pool.borrow_and_update();
            let count = if status.base == head.meta.hash { status.count } else { 0 };
            let enough = count >= minimum || status.registrations >= 1;
            let past = Instant::now() >= deadline;
            let ready = *enabled.borrow() && (count >= quorum || (enough && past));
            if ready {
                break;
            }
            // Past the timeout and short of the quorum: gossip may have missed submissions
            // (a peer that had not seen the head yet ignores them rather than forwarding),
            // so ask every peer for its pool once this round.
            if past && !pulled && *enabled.borrow() {
                pulled = true;
                let added = crate::sync::pull_pools(&svc, &net).await;
                debug!(added, "pulled peers' pools at the round timeout");
                continue;
            }
            tokio::select! {
                _ = heads.changed() => continue 'round,
                _ = pool.changed() => {}
                _ = enabled.changed() => {}
                _ = tokio::time::sleep_until(deadline), if !past => {}
                _ = crate::service::stopped(&mut shutdown) => return,
            }
        }
        let template = match svc.build_template(miner_key) {
            Ok(t) => t,
            Err(e) => {
                warn!(error = %e, "cannot build a block template");
                // Wait for something to change rather than spin.
                tokio::select! {
                    _ = heads.changed() => {}
                    _ = pool.changed() => {}
                    _ = crate::service::stopped(&mut shutdown) => return,
                }
                continue;
            }
        };
        let height = template.header.height;
        let n = template.submissions.len();
        let r = template.registrations.len();
        debug!(height, submissions = n, registrations = r, "mining");
        let cancel = Arc::new(AtomicBool::new(false));
        let header = template.header.clone();
        let flag = cancel.clone();
        let started = Instant::now();
        let mut search = tokio::task::spawn_blocking(move || pow::search(&header, 0, u64::MAX, &flag));
        let nonce = loop {
            tokio::select! {
                r = &mut search => break r.ok().flatten(),
                _ = heads.changed() => {
                    cancel.store(true, Ordering::Relaxed);
                    let _ = search.await;
                    debug!(height, "race lost: new head");
                    continue 'round;
                }
                _ = enabled.changed() => {
                    if !*enabled.borrow() {
                        cancel.store(true, Ordering::Relaxed);
                        let _ = search.await;
                        continue 'round;
                    }
                }
                _ = crate::service::stopped(&mut shutdown) => {
                    cancel.store(true, Ordering::Relaxed);
                    let _ = search.await;
                    return;
                }
            }
        };
        // A pause that lands while the last hash is being checked still wins: no block is
        // published after `set_mining(false)` returns.
        if !*enabled.borrow() {
            continue;
        }
        let Some(nonce) = nonce else { continue };
        let mut header = template.header;
        header.nonce = nonce;
        let block = Block { header, registrations: template.registrations, submissions: template.submissions };
        let hash = block.hash();
        // Built before the import, which resets the pools the prefill rule reads.
        let compact = crate::relay::compact_of(&svc, &block);
        match svc.import_block(block, Origin::Local) {
            Ok(_) => {
                info!(height, block = %hash.short(), submissions = n, registrations = r, pow_ms = started.elapsed().as_millis() as u64, "mined block");
                crate::relay::announce(&net, &compact).await;
            }
            Err(e) => warn!(error = %e, height, "own block refused"),
        }
    }
}
