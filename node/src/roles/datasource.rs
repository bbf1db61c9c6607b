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
//! dropped and training starts again on the new head. When a released update's block loses
//! to a sibling (two miners found a block at one height), the same update is signed again
//! for the winner rather than trained again: a fork costs no ε (see `Released`). A submission is published when at
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
use learnchain_proto::{DpDeclaration, Genesis, Hash32, Submission, SubmissionAnnouncement, encode};
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
    // The last update this node released, and the bases it was signed for.
    let mut released: Option<Released> = None;
    report_privacy(&svc, &gate);
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
            // A sibling of the block the last update was trained on replaced it: sign that
            // update again for the new head instead of training again.
            if let Some(r) = released.as_mut().filter(|r| r.replaced_by(&head.meta)) {
                let signed = match r.signed.iter().find(|s| s.base == head.meta.hash) {
                    // Back to a block it was signed for already (the pool forgot it when the
                    // head left that block): the same bytes again.
                    Some(s) => Ok(s.clone()),
                    None => {
                        let s = Submission { base: head.meta.hash, auth: unsigned(), ..r.signed[0].clone() };
                        let signed = sign(s, &key, &rings).await;
                        if let Ok(s) = &signed {
                            r.signed.push(s.clone());
                        }
                        signed
                    }
                };
                match signed {
                    Ok(s) if heads.borrow().meta.hash == head.meta.hash => {
                        if submit(&svc, &net, s, &mut heads, &mut shutdown).await {
                            info!(round, "the block this round's update was trained on lost to a sibling: the same update \
                                 is submitted again for the winner (no training, no ε)");
                            continue;
                        }
                    }
                    Ok(_) => continue, // the head moved while signing
                    Err(e) => warn!(error = %e, round, "cannot sign the update again for the sibling head"),
                }
                // Refused for this head (its norm bound differs, say): train as usual.
            }
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
                            report_privacy(&svc, &gate);
                            released = Some(Released { parent: head.meta.parent, round, signed: vec![s.clone()] });
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

/// Puts the ledger's spend in the node's metrics.
fn report_privacy(svc: &ChainService, gate: &SharedGate) {
    let gate = lock(gate);
    let ledger = gate.ledger();
    svc.metrics().on_privacy(ledger.spent().epsilon, ledger.budget(), ledger.rounds().len() as u64);
}

/// The DP-SGD settings of a round under `declaration`, for a shard of `examples`.
pub(crate) fn dp_params(g: &Genesis, declaration: &DpDeclaration, examples: u32) -> DpParams {
    DpParams {
        sample_rate: declaration.sample_rate.to_f64(),
        noise_multiplier: declaration.noise_multiplier.to_f64(),
        clip: declaration.clip.to_f64(),
        max_step_norm: step_radius(declaration, examples, g.model.param_count()),
    }
}

/// An update this node released, as signed for each base so far (all children of
/// `parent`; the first is the one it was trained on).
struct Released {
    parent: Hash32,
    round: u64,
    signed: Vec<Submission>,
}

impl Released {
    /// Whether `head` is the block this update was trained on or a sibling of it (same
    /// parent, so the same round). Two miners that found a
    /// block at one height aggregated nearly the same round of updates, so the models after
    /// them differ by a fraction of one round's step: an update trained on one is as good
    /// on the other as a fresh one. Releasing the same noised update again is
    /// post-processing and costs no ε, where training again would spend a round of budget
    /// on every fork.
    fn replaced_by(&self, head: &learnchain_chain::BlockMeta) -> bool {
        head.parent == self.parent && head.height + 1 == self.round
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
    let dp = dp_params(&g, &declaration, examples);
    let limits = UpdateLimits::new(&g, &declaration, examples, &head.model);
    let previous = previous.map(<[i32]>::to_vec);
    let started = std::time::Instant::now();
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
    svc.metrics().on_training(started.elapsed());
    let s = Submission {
        chain_id: g.chain_id(),
        base: head.meta.hash,
        round: head.meta.height + 1,
        num_examples: examples,
        dp: declaration,
        update: encoded,
        auth: unsigned(),
    };
    Ok((sign(s, key, rings).await?, honest))
}

/// Ring-signs `s` for its base as `key`, on the blocking pool.
async fn sign(mut s: Submission, key: &Arc<MemberSecret>, rings: &Arc<BaseRings>) -> anyhow::Result<Submission> {
    let (key, rings) = (key.clone(), rings.clone());
    tokio::task::spawn_blocking(move || sign_submission(&mut s, &key, &rings, &mut rand::rngs::OsRng).map(|()| s))
        .await?
        .map_err(anyhow::Error::from)
}

/// Pools and announces `s`; returns whether this node's own pool took it (it is announced
/// when a peer listens, unless the head moves or the node stops first).
async fn submit(
    svc: &ChainService,
    net: &NetworkHandle,
    s: Submission,
    heads: &mut watch::Receiver<HeadSnapshot>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let round = s.round;
    let tag = s.round_tag();
    let announcement = match svc.add_submission(s.clone()) {
        Ok(id) => SubmissionAnnouncement::of(&s, id),
        // Pooled already (and announced when it was pooled).
        Err(learnchain_chain::SubmissionError::Duplicate) => return true,
        Err(e) => {
            warn!(error = %e, round, "own submission refused");
            return false;
        }
    };
    // The pool holds the submission; gossip carries only its announcement, and peers fetch
    // the bytes from this node (see `crate::sync::pool`).
    let bytes = encode(&announcement);
    loop {
        match net.publish(TopicKind::Submissions, bytes.clone()).await {
            Ok(()) => {
                info!(round, tag = %tag.short(), "submitted update");
                return true;
            }
            Err(NetError::NoPeers) => {
                debug!(round, "no peers on the submissions topic yet; waiting");
                tokio::select! {
                    _ = tokio::time::timeout(Duration::from_secs(1), net.wait_for_topic_peers(TopicKind::Submissions, 1)) => {}
                    _ = heads.changed() => return true,
                    _ = crate::service::stopped(shutdown) => return true,
                }
            }
            Err(e) => {
                warn!(error = %e, round, "submission not gossiped");
                return true;
            }
        }
    }
}
