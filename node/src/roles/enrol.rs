//! The enrolment task of a data source on an open-enrolment chain: registers the node's own
//! member key with a proof-of-work stamp, and keeps offering the registration until a block
//! includes it.
//!
//! The stamp (about `2^open_stamp_bits` hashes) is computed once, on tokio's blocking pool.
//! The registration goes into this node's own pool (so its miner, if any, includes it) and
//! out on the registrations topic; it is offered again every few heads while the registry
//! does not hold the key, since a gossip message sent while no miner listened is lost. The
//! task ends when the registry after the head holds the key — the data source signs from
//! the next block on — or if the key was revoked.

use std::sync::Arc;
use std::time::Duration;

use learnchain_chain::registry::stamped_registration;
use learnchain_chain::{MemberRecord, RegistrationError};
use learnchain_identity::MemberSecret;
use learnchain_net::{NetError, NetworkHandle, TopicKind};
use learnchain_proto::{Hash32, encode};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::service::ChainService;

/// Heads between two offers of a registration no block has included yet.
const REOFFER_EVERY: u32 = 4;

/// Runs until the key is registered (or revoked), or `shutdown` turns true.
pub async fn run(svc: ChainService, net: NetworkHandle, key: Arc<MemberSecret>, mut shutdown: watch::Receiver<bool>) {
    let chain_id = svc.genesis().chain_id();
    let bits = svc.genesis().enrolment.open_stamp_bits;
    let me = Hash32(key.public().to_bytes());
    let started = std::time::Instant::now();
    let k = key.clone();
    let stamping = tokio::task::spawn_blocking(move || stamped_registration(&chain_id, bits, &k, &mut rand::rngs::OsRng));
    let registration = tokio::select! {
        r = stamping => match r {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "enrolment stamp task failed");
                return;
            }
        },
        _ = crate::service::stopped(&mut shutdown) => return,
    };
    info!(bits, ms = started.elapsed().as_millis() as u64, "enrolment stamp found");
    let bytes = encode(&registration);
    let mut heads = svc.heads();
    let mut since_offer = 0u32;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let record = svc.lock().chain.registry().record(&me).copied();
        match record {
            Some(MemberRecord { revoked_at: Some(h), .. }) => {
                warn!(height = h, "member key revoked; enrolment ends");
                return;
            }
            Some(MemberRecord { registered_at, .. }) => {
                info!(height = registered_at, "member key registered; submissions start with the next block");
                return;
            }
            None => {}
        }
        if since_offer == 0 {
            match svc.add_registration(registration.clone()) {
                Ok(_) | Err(RegistrationError::Duplicate | RegistrationError::Conflict(_)) => {}
                Err(e) => {
                    warn!(error = %e, "own registration refused");
                    return;
                }
            }
            match net.publish(TopicKind::Registrations, bytes.clone()).await {
                Ok(()) => debug!("registration offered"),
                Err(NetError::NoPeers) => {
                    debug!("no peers on the registrations topic yet");
                    tokio::select! {
                        _ = tokio::time::timeout(Duration::from_secs(1), net.wait_for_topic_peers(TopicKind::Registrations, 1)) => {}
                        _ = crate::service::stopped(&mut shutdown) => return,
                    }
                    continue;
                }
                Err(e) => debug!(error = %e, "registration not gossiped"),
            }
        }
        since_offer = (since_offer + 1) % REOFFER_EVERY;
        tokio::select! {
            _ = heads.changed() => {}
            _ = crate::service::stopped(&mut shutdown) => return,
        }
    }
}
