//! The data-source task: on every new head, train locally from the head model, quantize the
//! update, sign it with the member key and submit it, once per round.
//!
//! Training runs on tokio's blocking pool. If the head moves while training, the result is
//! dropped and training starts again on the new head. A submission is published when at
//! least one peer listens on the submissions topic; until then it waits (a data source that
//! starts before its peers must not lose its first round).

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use learnchain_chain::auth::sign_submission;
use learnchain_model::{Dataset, fixed::quantize_delta, train_local};
use learnchain_net::{NetError, NetworkHandle, TopicKind};
use learnchain_proto::{Hash32, Signature64, Submission, SubmissionAuth, encode};
use rand::RngCore;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::service::{ChainService, HeadSnapshot};

/// Runs until `shutdown` turns true.
pub async fn run(
    svc: ChainService,
    net: NetworkHandle,
    key: SigningKey,
    data: Arc<Dataset>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut heads = svc.heads();
    let mut done: Option<Hash32> = None;
    loop {
        // Checked by value: `submit` may already have consumed the change notification.
        if *shutdown.borrow() {
            return;
        }
        let head = heads.borrow_and_update().clone();
        if done != Some(head.meta.hash) {
            done = Some(head.meta.hash);
            match train(&svc, &key, &data, &head).await {
                Ok(s) => {
                    if heads.borrow().meta.hash != head.meta.hash {
                        continue; // stale: the head moved while training
                    }
                    submit(&svc, &net, s, &mut heads, &mut shutdown).await;
                }
                Err(e) => warn!(error = %e, "local training failed"),
            }
        }
        tokio::select! {
            _ = heads.changed() => {}
            _ = crate::service::stopped(&mut shutdown) => return,
        }
    }
}

async fn train(svc: &ChainService, key: &SigningKey, data: &Arc<Dataset>, head: &HeadSnapshot) -> anyhow::Result<Submission> {
    let g = svc.genesis().clone();
    let model = head.model.clone();
    let data = data.clone();
    let seed = rand::rngs::OsRng.next_u64();
    let (update, g) = tokio::task::spawn_blocking(move || {
        let u = train_local(&g.model, &g.training, &model, &data, seed);
        (u, g)
    })
    .await?;
    let update = update?;
    let delta = quantize_delta(&head.model, &update.params, g.model.frac_bits, g.consensus.max_update_abs);
    let mut s = Submission {
        chain_id: g.chain_id(),
        base: head.meta.hash,
        round: head.meta.height + 1,
        num_examples: update.examples,
        delta,
        auth: SubmissionAuth::Ed25519 { key: Hash32::ZERO, signature: Signature64([0; 64]) },
    };
    sign_submission(&mut s, key);
    Ok(s)
}

async fn submit(
    svc: &ChainService,
    net: &NetworkHandle,
    s: Submission,
    heads: &mut watch::Receiver<HeadSnapshot>,
    shutdown: &mut watch::Receiver<bool>,
) {
    let round = s.round;
    let tag = s.round_tag();
    match svc.add_submission(s.clone()) {
        Ok(_) => {}
        Err(e) => {
            warn!(error = %e, round, "own submission refused");
            return;
        }
    }
    let bytes = encode(&s);
    loop {
        match net.publish(TopicKind::Submissions, bytes.clone()).await {
            Ok(()) => {
                info!(round, tag = %tag.short(), "submitted update");
                return;
            }
            Err(NetError::NoPeers) => {
                debug!(round, "no peers on the submissions topic yet; waiting");
                tokio::select! {
                    _ = tokio::time::timeout(Duration::from_secs(1), net.wait_for_topic_peers(TopicKind::Submissions, 1)) => {}
                    _ = heads.changed() => return,
                    _ = crate::service::stopped(shutdown) => return,
                }
            }
            Err(e) => {
                warn!(error = %e, round, "submission not gossiped");
                return;
            }
        }
    }
}
