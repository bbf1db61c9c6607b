//! The data-source task: on every new head, train locally from the head model with DP-SGD,
//! encode the update in the genesis update encoding (`learnchain_model::quantize`: `i32`, or
//! stochastically rounded `i16` / `i8` levels — post-processing, no extra ε — always within
//! the validators' norm bound), ring-sign it as an anonymous member of its group of the registry
//! after the head, record the round in the privacy ledger and submit it, once per round.
//!
//! A head whose registry does not hold the member key (not registered yet, or revoked) is
//! skipped before training, so no privacy budget is spent on an update that could not be
//! submitted. Logs name a submission by its round tag, never by the member key.
//!
//! Before each round the [`PrivacyGate`] is asked whether one more round fits the `ε`
//! budget; when it does not, the task says so in the log and ends (the node runs on as an
//! observer). The round is written durably to the ledger after training and *before* the
//! update is handed to the pool or the network, so no released update is ever uncounted,
//! whatever kills the process. Training noise, Poisson sampling and the quantiser's
//! stochastic rounding come from a ChaCha20 generator seeded from the operating system for
//! each round.
//!
//! Training runs on tokio's blocking pool. If the head moves while training, the result is
//! dropped and training starts again on the new head. A submission is published when at
//! least one peer listens on the submissions topic; until then it waits (a data source that
//! starts before its peers must not lose its first round).

use std::sync::Arc;
use std::time::Duration;

use learnchain_chain::auth::{BaseRings, sign_submission, unsigned};
use learnchain_identity::MemberSecret;
use learnchain_model::quantize::{UpdateBounds, encode_integers, encode_trained};
use learnchain_model::{Dataset, DpParams, fixed::quantize_delta, train_local_dp};
use learnchain_net::{NetError, NetworkHandle, TopicKind};
use learnchain_proto::privacy::step_radius;
use learnchain_proto::{Hash32, Submission, encode};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::adversary::{Adversary, UpdateLimits};
use crate::privacy::{Admission, SharedGate, lock};
use crate::service::{ChainService, HeadSnapshot};

/// Runs until `shutdown` turns true.
pub async fn run(
    svc: ChainService,
    net: NetworkHandle,
    key: Arc<MemberSecret>,
    data: Arc<Dataset>,
    gate: SharedGate,
    adversary: Option<Adversary>,
    mut shutdown: watch::Receiver<bool>,
) {
    // The honest update of the previous round (what a `replay-stale` adversary resubmits).
    let mut previous: Option<Vec<i32>> = None;
    let mut heads = svc.heads();
    let mut done: Option<Hash32> = None;
    let me = Hash32(key.public().to_bytes());
    let mut waiting_logged = false;
    let mut catching_up = svc.catching_up();
    let mut catch_up_logged = false;
    loop {
        // Checked by value: `submit` may already have consumed the change notification.
        if *shutdown.borrow() {
            return;
        }
        let head = heads.borrow_and_update().clone();
        if done != Some(head.meta.hash) {
            if *catching_up.borrow_and_update() > 0 {
                // The heads passing by now are already old: an update on one would be refused
                // as stale and still cost ε. Train once the download is done.
                if !catch_up_logged {
                    info!(height = head.meta.height, "catching up with peers; training waits until the head is current");
                    catch_up_logged = true;
                }
                tokio::select! {
                    _ = catching_up.wait_for(|n| *n == 0) => {}
                    _ = crate::service::stopped(&mut shutdown) => return,
                }
                continue;
            }
            catch_up_logged = false;
            done = Some(head.meta.hash);
            let round = head.meta.height + 1;
            let rings = svc.lock().chain.rings_at(&head.meta.hash);
            let rings = match rings {
                Ok(r) if r.ring_for(&me).is_some() => {
                    waiting_logged = false;
                    r
                }
                Ok(_) => {
                    if !waiting_logged {
                        info!(round, "the member key is not in the registry at this head; waiting for it before training");
                        waiting_logged = true;
                    }
                    continue; // `done` is set: the loop waits for the next head

                }
                Err(e) => {
                    warn!(error = %e, round, "cannot read the member registry at the head");
                    continue;
                }
            };
            let admission = lock(&gate).admit(round);
            if let Admission::Stop { spent, next, budget } = admission {
                let delta = lock(&gate).plan().delta;
                warn!(
                    round,
                    epsilon_spent = spent,
                    epsilon_next = next,
                    epsilon_budget = budget,
                    delta,
                    "privacy budget reached: one more round would spend ε = {next:.4} of the budget {budget} (δ = {delta:e}); \
                     this node stops training and submitting and runs on as an observer"
                );
                return;
            }
            match train(&svc, &key, &rings, &data, &gate, &head, adversary, previous.as_deref()).await {
                Ok((s, honest)) => {
                    previous = Some(honest);
                    if heads.borrow().meta.hash != head.meta.hash {
                        continue; // stale: the head moved while training; nothing was released
                    }
                    // fsync: off the async threads.
                    let g2 = gate.clone();
                    let recorded = tokio::task::spawn_blocking(move || lock(&g2).record(round))
                        .await
                        .unwrap_or_else(|e| Err(anyhow::anyhow!("ledger task failed: {e}")));
                    match recorded {
                        Ok(spent) => {
                            info!(round, epsilon_spent = spent, "privacy ledger updated");
                            submit(&svc, &net, s, &mut heads, &mut shutdown).await;
                        }
                        Err(e) => {
                            error!(round, error = format!("{e:#}"), "update withheld: the privacy ledger could not record it");
                        }
                    }
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

#[allow(clippy::too_many_arguments)]
async fn train(
    svc: &ChainService,
    key: &Arc<MemberSecret>,
    rings: &Arc<BaseRings>,
    data: &Arc<Dataset>,
    gate: &SharedGate,
    head: &HeadSnapshot,
    adversary: Option<Adversary>,
    previous: Option<&[i32]>,
) -> anyhow::Result<(Submission, Vec<i32>)> {
    let g = svc.genesis().clone();
    let model = head.model.clone();
    let data = data.clone();
    let declaration = lock(gate).plan().declaration;
    let examples = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let dp = DpParams {
        sample_rate: declaration.sample_rate.to_f64(),
        noise_multiplier: declaration.noise_multiplier.to_f64(),
        clip: declaration.clip.to_f64(),
        max_step_norm: step_radius(&declaration, examples, g.model.param_count()),
    };
    let limits = UpdateLimits::new(&g, &declaration, examples, &head.model);
    let previous = previous.map(<[i32]>::to_vec);
    let (encoded, honest, g) = tokio::task::spawn_blocking(move || {
        let mut training = g.training.clone();
        training.local_steps = declaration.steps;
        let bounds = UpdateBounds { max_abs: g.consensus.max_update_abs, norm_bound: limits.norm_bound };
        let encoding = g.consensus.update_encoding;
        let out = ChaCha20Rng::from_rng(rand::rngs::OsRng)
            .map_err(|e| anyhow::anyhow!("the operating system's random generator failed: {e}"))
            .and_then(|mut rng| {
                let update = train_local_dp(&g.model, &training, &dp, &model, &data, &mut rng)?;
                let honest = quantize_delta(&model, &update.params, g.model.frac_bits, g.consensus.max_update_abs);
                // Encoded after the noise (post-processing), with the same generator.
                let encoded = match adversary {
                    Some(a) => {
                        let hostile = a.corrupt(honest.clone(), previous.as_deref(), &limits, &mut rng);
                        encode_integers(encoding, &g.model, &hostile, bounds, &mut rng)
                    }
                    None => encode_trained(encoding, &g.model, &model, &update.params, bounds, &mut rng),
                };
                Ok((encoded, honest))
            });
        out.map(|(e, h)| (e, h, g))
    })
    .await??;
    let mut s = Submission {
        chain_id: g.chain_id(),
        base: head.meta.hash,
        round: head.meta.height + 1,
        num_examples: examples,
        dp: declaration,
        update: encoded,
        auth: unsigned(),
    };
    let (key, rings) = (key.clone(), rings.clone());
    let s = tokio::task::spawn_blocking(move || {
        sign_submission(&mut s, &key, &rings, &mut rand::rngs::OsRng).map(|()| s)
    })
    .await??;
    Ok((s, honest))
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
