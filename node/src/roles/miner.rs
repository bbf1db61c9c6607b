//! The miner task: waits for a round's submissions, builds a block, races proof of work on
//! a thread of its own, and drops the race the moment a better head arrives.
//!
//! A block is built once the pool holds the genesis quorum of submissions for the head, or
//! once the round timeout has passed since the head arrived (or mining resumed) and the pool holds at least
//! as many submissions as the aggregation rule needs, or a registration. At the timeout a
//! miner short of its quorum pulls every peer's pool once, so a submission gossip did not
//! carry to it (a peer that had not seen the head yet ignores it rather than forwarding)
//! still makes the block. The nonce search runs on a thread of its own at the lowest
//! priority with a cancel flag, checked every 16 384 hashes; a new head, a pause or shutdown
//! sets it. Submissions that arrive while the race runs are not left for a later round:
//! the template is rebuilt with them and the search starts again (a memoryless race loses
//! nothing by restarting). A mined block is imported, then announced as a compact block
//! (see [`crate::sync::compact`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use learnchain_chain::{BlockTemplate, pow};
use learnchain_net::NetworkHandle;
use learnchain_proto::{Block, Hash32, Header};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::service::{ChainService, Origin, PoolStatus};

/// Shortest time between two refreshes of the template being mined; a refresh waits at
/// least four times as long as building the last template took, so large models are not
/// aggregated over and over.
const REFRESH_MIN: Duration = Duration::from_millis(100);

/// Niceness of the proof-of-work thread: the node's own validation and relaying, and every
/// other node of a devnet on the same cores, go first.
#[cfg(target_os = "linux")]
const POW_NICE: i32 = 19;

/// A block template on the head, or `None` after waiting for a change (the head, the pool,
/// shutdown) when none can be built now.
async fn build(
    svc: &ChainService,
    miner_key: Hash32,
    heads: &mut watch::Receiver<crate::service::HeadSnapshot>,
    pool: &mut watch::Receiver<PoolStatus>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<BlockTemplate> {
    match svc.build_template(miner_key) {
        Ok(t) => Some(t),
        Err(e) => {
            warn!(error = %e, "cannot build a block template");
            // Wait for something to change rather than spin.
            tokio::select! {
                _ = heads.changed() => {}
                _ = pool.changed() => {}
                _ = crate::service::stopped(shutdown) => {}
            }
            None
        }
    }
}

/// Searches a nonce for `header` on a thread of its own at the lowest priority; the flag
/// cancels it (checked every 16 384 hashes). The receiver yields the nonce, `None` when
/// cancelled, or an error if the thread could not start.
fn spawn_pow(header: Header) -> (Arc<AtomicBool>, oneshot::Receiver<Option<u64>>) {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new().name("pow".into()).spawn(move || {
        lower_priority();
        let _ = tx.send(pow::search(&header, 0, u64::MAX, &flag));
    });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the proof-of-work thread");
    }
    (cancel, rx)
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    let thread = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(thread), POW_NICE) {
        debug!(error = %e, "proof of work runs at normal priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

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
    let max_submissions = svc.genesis().consensus.max_submissions as usize;
    'round: loop {
        let head = heads.borrow_and_update().clone();
        // The round clock starts when the head arrives, or when mining resumes after a pause
        // (a paused miner did not watch the pool fill, and a devnet starts its miners
        // paused until every node is up, so the first round is not cut short by start-up).
        let mut deadline = Instant::now() + timeout;
        let mut pulled = false;
        let mut was_on = *enabled.borrow();
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
                _ = enabled.changed() => {
                    let on = *enabled.borrow_and_update();
                    if on && !was_on {
                        deadline = Instant::now() + timeout;
                        pulled = false;
                    }
                    was_on = on;
                }
                _ = tokio::time::sleep_until(deadline), if !past => {}
                _ = crate::service::stopped(&mut shutdown) => return,
            }
        }
        let built = Instant::now();
        // The pool as the template saw it: a refresh is due only when it holds more.
        let mut pooled_at_build = pool.borrow_and_update().count;
        let Some(mut template) = build(&svc, miner_key, &mut heads, &mut pool, &mut shutdown).await else {
            if *shutdown.borrow() {
                return;
            }
            continue;
        };
        let mut build_time = built.elapsed();
        let started = Instant::now();
        // Mine; while the pool grows past the template, rebuild it with the newcomers and
        // start the search again (proof of work is memoryless: nothing is lost), at most
        // once per refresh interval, so the block carries the round's late submissions too.
        let nonce = loop {
            let height = template.header.height;
            debug!(height, submissions = template.submissions.len(), registrations = template.registrations.len(), "mining");
            let (cancel, mut search) = spawn_pow(template.header.clone());
            let refresh_at = Instant::now() + REFRESH_MIN.max(build_time * 4);
            let in_template = template.submissions.len();
            // Newcomers since the last build, and room for them (a template short of the
            // pool because of the block size limit is not rebuilt for nothing).
            let grown =
                |p: &PoolStatus| p.base == head.meta.hash && p.count > pooled_at_build && in_template < max_submissions;
            let mut pending = grown(&pool.borrow_and_update());
            let stop = |cancel: &AtomicBool| cancel.store(true, Ordering::Relaxed);
            tokio::select! {
                r = &mut search => break r.ok().flatten(),
                _ = heads.changed() => {
                    stop(&cancel);
                    let _ = search.await;
                    debug!(height, "race lost: new head");
                    continue 'round;
                }
                _ = async { enabled.wait_for(|on| !*on).await.is_ok() } => {
                    stop(&cancel);
                    let _ = search.await;
                    continue 'round;
                }
                _ = crate::service::stopped(&mut shutdown) => {
                    stop(&cancel);
                    let _ = search.await;
                    return;
                }
                _ = async {
                    while !pending {
                        if pool.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                        pending = grown(&pool.borrow_and_update());
                    }
                    tokio::time::sleep_until(refresh_at).await;
                } => {
                    stop(&cancel);
                    // The search may have found a nonce in the meantime: keep it.
                    if let Ok(Some(nonce)) = search.await {
                        break Some(nonce);
                    }
                    let rebuilt = Instant::now();
                    pooled_at_build = pool.borrow_and_update().count;
                    match svc.build_template(miner_key) {
                        Ok(t) if t.header.parent == head.meta.hash => {
                            template = t;
                            build_time = rebuilt.elapsed();
                        }
                        Ok(_) => continue 'round,
                        Err(e) => debug!(error = %e, "template refresh failed; mining the previous one"),
                    }
                }
            }
        };
        let height = template.header.height;
        let n = template.submissions.len();
        let r = template.registrations.len();
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
        let compact = crate::sync::compact::compact_of(&svc, &block);
        match svc.import(block, Origin::Local).await {
            Ok(_) => {
                svc.metrics().on_mined();
                info!(height, block = %hash.short(), submissions = n, registrations = r, pow_ms = started.elapsed().as_millis() as u64, "mined block");
                crate::sync::compact::announce(&net, &compact).await;
            }
            Err(e) => warn!(error = %e, height, "own block refused"),
        }
    }
}
