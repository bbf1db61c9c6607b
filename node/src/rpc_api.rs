//! The node's answers to JSON-RPC: [`NodeRpc`] implements `learnchain_rpc::NodeApi` over the
//! chain service, the peer list and this node's evaluation data. Submissions are shown by
//! their round tag; nothing here links a submission to a member key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use learnchain_chain::BlockMeta;
use learnchain_model::{Dataset, Metrics, evaluate};
use learnchain_net::TopicKind;
use learnchain_proto::registration::MAX_REGISTRATION_BYTES;
use learnchain_proto::{Block, Genesis, Hash32, Registration, RegistrationKind, Submission, decode};
use learnchain_aggregate::Outcome;
use learnchain_rpc::{
    AggregateReportView, SubmissionAggregationView, ApiError, BlockRef, BlockView, HeadView, MemberView, MembersView, MempoolView, MetricsView, ModelView, NodeApi,
    NodeInfoView, PeerView, BanView, RegistrationView, SubmissionView,
};
use tokio::sync::broadcast;

use crate::service::ChainService;

/// Static facts about the node for `node_info`.
#[derive(Clone, Debug, Default)]
pub struct NodeFacts {
    /// Node name.
    pub name: String,
    /// libp2p peer id.
    pub peer_id: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Listen addresses.
    pub listen_addrs: Vec<String>,
    /// RPC address.
    pub rpc_addr: String,
    /// Data directory.
    pub data_dir: String,
    /// The hostile behaviour of a deliberately adversarial data source.
    pub adversary: Option<String>,
}

/// Bounded cache of evaluation results by block hash.
#[derive(Default)]
pub struct MetricsCache {
    map: HashMap<Hash32, Metrics>,
    order: std::collections::VecDeque<Hash32>,
}

impl MetricsCache {
    const CAP: usize = 512;

    /// A cached result.
    pub fn get(&self, h: &Hash32) -> Option<Metrics> {
        self.map.get(h).cloned()
    }

    /// Stores a result, evicting the oldest beyond the capacity.
    pub fn put(&mut self, h: Hash32, m: Metrics) {
        if self.map.insert(h, m).is_none() {
            self.order.push_back(h);
            if self.order.len() > Self::CAP
                && let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
        }
    }
}

/// The `NodeApi` of a running node.
pub struct NodeRpc {
    /// Chain access.
    pub svc: ChainService,
    /// Static facts (the RPC address is filled in once bound).
    pub facts: Arc<Mutex<NodeFacts>>,
    /// Connected peers, kept current by the node loop.
    pub peers: crate::peers::PeerList,
    /// Evaluation data, if the node has some.
    pub eval: Option<Arc<Dataset>>,
    /// Evaluation results.
    pub metrics: Arc<Mutex<MetricsCache>>,
    /// New heads for subscriptions.
    pub heads: broadcast::Sender<HeadView>,
    /// The network, to gossip registrations that arrive over RPC.
    pub net: learnchain_net::NetworkHandle,
    /// Whether a sync is running.
    pub syncing: Arc<std::sync::atomic::AtomicBool>,
    /// The privacy gate of a data source.
    pub privacy: Option<crate::privacy::SharedGate>,
    /// Where the last walk down the chain for evaluations stopped (see
    /// [`NodeRpc::metrics_for`]).
    pub walk: Mutex<Option<Walked>>,
}

/// A block and the model after it, where an evaluation walk stopped.
pub struct Walked {
    meta: BlockMeta,
    model: Vec<i32>,
}

/// The RPC view of a block meta.
pub fn head_view(chain_id: &Hash32, m: &BlockMeta) -> HeadView {
    HeadView {
        chain_id: chain_id.to_hex(),
        height: m.height,
        hash: m.hash.to_hex(),
        parent: m.parent.to_hex(),
        model_hash: m.model_hash.to_hex(),
        state_root: m.state_root.to_hex(),
        timestamp_ms: m.timestamp_ms,
        total_work: m.total_work.to_hex(),
        submissions: m.submissions as usize,
        registrations: m.registrations as usize,
    }
}

fn registration_view(r: &Registration) -> RegistrationView {
    let (action, authorisation) = match r.kind {
        RegistrationKind::Authorised { .. } => ("register", "authority"),
        RegistrationKind::Stamped { .. } => ("register", "stamp"),
        RegistrationKind::Revoked { .. } => ("revoke", "authority"),
    };
    RegistrationView {
        id: r.id().to_hex(),
        member: r.member.to_hex(),
        action: action.into(),
        authorisation: authorisation.into(),
    }
}

fn submission_view(s: &Submission, g: &Genesis) -> SubmissionView {
    let scale = g.model.scale();
    // Pooled and stored submissions were checked, so they decode; should one not, its
    // norm is shown as null.
    let l2 = learnchain_chain::validate::decode_update(g, s)
        .map_or(f64::NAN, |u| u.iter().map(|&v| (f64::from(v) / scale).powi(2)).sum::<f64>().sqrt());
    SubmissionView {
        id: s.id().to_hex(),
        round: s.round,
        round_tag: s.round_tag().to_hex(),
        base: s.base.to_hex(),
        num_examples: s.num_examples,
        update_l2: l2,
        dp_sample_rate: s.dp.sample_rate.to_f64(),
        dp_noise_multiplier: s.dp.noise_multiplier.to_f64(),
        dp_clip: s.dp.clip.to_f64(),
        dp_steps: s.dp.steps,
    }
}

fn block_view(b: &Block, model_hash: &Hash32, g: &Genesis) -> BlockView {
    let h = &b.header;
    BlockView {
        hash: b.hash().to_hex(),
        height: h.height,
        parent: h.parent.to_hex(),
        timestamp_ms: h.timestamp_ms,
        target: h.target.to_hex(),
        miner: h.miner.to_hex(),
        body_root: h.body_root.to_hex(),
        model_hash: model_hash.to_hex(),
        state_root: h.state_root.to_hex(),
        nonce: h.nonce,
        registrations: b.registrations.iter().map(registration_view).collect(),
        submissions: b.submissions.iter().map(|s| submission_view(s, g)).collect(),
    }
}

/// The hash of the block `at` names: canonical by height, any known block by hash.
fn block_hash(chain: &learnchain_chain::Chain, at: &BlockRef) -> Result<Hash32, ApiError> {
    match at {
        BlockRef::Height(h) => chain.canonical_hash(*h).map_err(internal)?,
        BlockRef::Hash(s) => {
            let hash = Hash32::from_hex(s).map_err(|e| ApiError::InvalidParams(format!("block hash: {e}")))?;
            chain.contains(&hash).then_some(hash)
        }
    }
    .ok_or_else(|| ApiError::NotFound(format!("no block at {at}")))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

impl NodeRpc {
    fn meta_at(&self, height: Option<u64>) -> Result<BlockMeta, ApiError> {
        crate::model::meta_at(&self.svc.lock().chain, height)
    }

    fn model_of(&self, meta: &BlockMeta) -> Result<Vec<i32>, ApiError> {
        self.svc.lock().chain.model_at(&meta.hash).map_err(internal)
    }

    /// Evaluates the model after `meta` on this node's evaluation data (cached).
    ///
    /// A height not evaluated yet is reached by walking down the chain one block at a time
    /// (each step takes the chain lock for one block's aggregate only), from the head or
    /// from where the last walk stopped if that is at or above its height, and every height
    /// passed on the way is evaluated too (each result is cached by block hash, so it holds
    /// whichever branch it was on). A walk that reaches the height on another branch than
    /// `meta`'s unwinds to `meta` at once ([`Chain::model_at`](learnchain_chain::Chain::model_at)). So a client asking for the last N heights
    /// (the explorer's chart) costs N steps in all, in whichever order it asks, and never
    /// holds the chain for long.
    pub fn metrics_for(&self, meta: &BlockMeta) -> Result<Metrics, ApiError> {
        let eval = self
            .eval
            .as_ref()
            .ok_or_else(|| ApiError::Unavailable("this node holds no evaluation data".into()))?;
        if let Some(m) = self.cached(&meta.hash) {
            return Ok(m);
        }
        let model_spec = &self.svc.genesis().model;
        let mut walk = self.walk.lock().unwrap_or_else(|p| p.into_inner());
        let (mut at, mut model) = match walk.take() {
            Some(w) if w.meta.height >= meta.height => (w.meta, w.model),
            _ => {
                let head = self.svc.head();
                (head.meta.clone(), head.model.to_vec())
            }
        };
        while at.height > meta.height {
            let parent = {
                let st = self.svc.lock();
                st.chain.unwind_block(&at.hash, &mut model).map_err(internal)?;
                st.chain.meta(&at.parent)
            };
            at = parent.ok_or_else(|| ApiError::Internal(format!("the parent of block {} is unknown", at.hash)))?;
            if at.height > meta.height && self.cached(&at.hash).is_none() {
                let m = evaluate(model_spec, &model, eval).map_err(internal)?;
                self.metrics.lock().unwrap_or_else(|p| p.into_inner()).put(at.hash, m);
            }
        }
        if at.hash != meta.hash {
            // `meta` is on another branch than where the walk started: unwind to it at once.
            model = self.model_of(meta)?;
            at = meta.clone();
        }
        let m = evaluate(model_spec, &model, eval).map_err(internal)?;
        self.metrics.lock().unwrap_or_else(|p| p.into_inner()).put(meta.hash, m);
        *walk = Some(Walked { meta: at, model });
        Ok(m)
    }

    fn cached(&self, hash: &Hash32) -> Option<Metrics> {
        self.metrics.lock().unwrap_or_else(|p| p.into_inner()).get(hash)
    }
}

impl NodeApi for NodeRpc {
    fn chain_head(&self) -> Result<HeadView, ApiError> {
        let st = self.svc.lock();
        Ok(head_view(&st.chain.chain_id(), st.chain.head()))
    }

    fn block(&self, at: BlockRef) -> Result<BlockView, ApiError> {
        let genesis = self.svc.genesis();
        let st = self.svc.lock();
        let hash = block_hash(&st.chain, &at)?;
        let block = st.chain.block(&hash).map_err(internal)?;
        let meta = st.chain.meta(&hash);
        block
            .zip(meta)
            .map(|(b, m)| block_view(&b, &m.model_hash, genesis))
            .ok_or_else(|| ApiError::NotFound(format!("no block at {at}")))
    }

    fn model(&self, height: Option<u64>) -> Result<ModelView, ApiError> {
        let meta = self.meta_at(height)?;
        let weights = self.model_of(&meta)?;
        let spec = &self.svc.genesis().model;
        let scale = spec.scale();
        Ok(ModelView {
            height: meta.height,
            block_hash: meta.hash.to_hex(),
            model_hash: meta.model_hash.to_hex(),
            architecture: format!("{:?}", spec.architecture).to_lowercase(),
            features: spec.features,
            classes: spec.classes,
            hidden: spec.hidden.first().copied().unwrap_or(0),
            hidden_layers: spec.hidden.clone(),
            frac_bits: spec.frac_bits,
            weights: weights.iter().map(|&w| f64::from(w) / scale).collect(),
        })
    }

    fn model_file(&self, height: Option<u64>) -> Result<Vec<u8>, ApiError> {
        // Read under the chain's lock, encode (megabytes for a large model) outside it.
        let (provenance, weights) = crate::model::weights_at(&self.svc.lock().chain, height)?;
        crate::model::encode(&self.svc.genesis().model, &weights, &provenance)
    }

    fn model_metrics(&self, height: Option<u64>) -> Result<MetricsView, ApiError> {
        let meta = self.meta_at(height)?;
        let m = self.metrics_for(&meta)?;
        Ok(MetricsView {
            height: meta.height,
            block_hash: meta.hash.to_hex(),
            accuracy: m.accuracy,
            loss: m.loss,
            examples: m.examples,
        })
    }

    fn peers(&self) -> Result<Vec<PeerView>, ApiError> {
        let mut peers = self.peers.views();
        // The list is refreshed on connects and disconnects; scores change in between.
        for view in &mut peers {
            if let Ok(id) = view.peer_id.parse::<learnchain_net::PeerId>() {
                let standing = self.net.standing(&id);
                view.score = standing.score;
                view.offences = standing.offences;
                view.last_offence = standing.last_offence.map(|o| o.name().to_string());
            }
        }
        Ok(peers)
    }

    fn bans(&self) -> Result<Vec<BanView>, ApiError> {
        Ok(self
            .net
            .bans()
            .into_iter()
            .map(|b| BanView {
                peer_id: b.peer_id.to_string(),
                remaining_s: b.remaining.as_secs(),
                reason: b.reason.name().to_string(),
                score: b.score,
                offences: b.offences,
            })
            .collect())
    }

    fn node_info(&self) -> Result<NodeInfoView, ApiError> {
        let facts = self.facts.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let st = self.svc.lock();
        let g = self.svc.genesis();
        Ok(NodeInfoView {
            name: facts.name,
            version: env!("CARGO_PKG_VERSION").into(),
            chain_id: st.chain.chain_id().to_hex(),
            genesis_name: g.name.clone(),
            peer_id: facts.peer_id,
            roles: facts.roles,
            listen_addrs: facts.listen_addrs,
            rpc_addr: facts.rpc_addr,
            data_dir: facts.data_dir,
            height: st.chain.head().height,
            mempool: st.pool.len(),
            syncing: self.syncing.load(std::sync::atomic::Ordering::Relaxed),
            aggregation: g.consensus.aggregation.to_string(),
            adversary: facts.adversary,
        })
    }

    fn privacy_status(&self) -> Result<learnchain_rpc::PrivacyStatusView, ApiError> {
        Ok(match &self.privacy {
            Some(gate) => crate::privacy::lock(gate).status(),
            None => crate::privacy::not_a_data_source(),
        })
    }

    fn mempool(&self) -> Result<MempoolView, ApiError> {
        let genesis = self.svc.genesis();
        let st = self.svc.lock();
        Ok(MempoolView {
            round: st.chain.head().height + 1,
            base: st.pool.base().to_hex(),
            registrations: st.registrations.registrations().iter().map(registration_view).collect(),
            submissions: st.pool.submissions().iter().map(|s| submission_view(s, genesis)).collect(),
        })
    }

    fn members(&self) -> Result<MembersView, ApiError> {
        let st = self.svc.lock();
        let g = self.svc.genesis();
        let head = st.chain.head().clone();
        let groups = st.chain.rings_at(&head.hash).map_err(internal)?.groups();
        let registry = st.chain.registry();
        let members: Vec<MemberView> = registry
            .records()
            .map(|(k, r)| MemberView {
                key: k.to_hex(),
                registered_at: r.registered_at,
                revoked_at: r.revoked_at,
                active: r.revoked_at.is_none(),
            })
            .collect();
        Ok(MembersView {
            height: head.height,
            ring_size: g.consensus.ring_size,
            groups,
            active: members.iter().filter(|m| m.active).count(),
            enrolment_authority: g.enrolment.authority.map(|a| a.to_hex()),
            open_stamp_bits: g.enrolment.open_stamp_bits,
            members,
        })
    }

    fn submit_registration(&self, bytes: Vec<u8>) -> Result<String, ApiError> {
        let r: Registration = decode(&bytes, MAX_REGISTRATION_BYTES)
            .map_err(|e| ApiError::InvalidParams(format!("registration: {e}")))?;
        let id = self.svc.add_registration(r).map_err(|e| ApiError::InvalidParams(e.to_string()))?;
        // This runs on tokio's blocking pool, inside the runtime: wait for the publish here.
        let published = tokio::runtime::Handle::current().block_on(self.net.publish(TopicKind::Registrations, bytes));
        if let Err(e) = published {
            tracing::debug!(error = %e, "registration from RPC pooled but not gossiped");
        }
        Ok(id.to_hex())
    }

    fn aggregate_report(&self, at: BlockRef) -> Result<AggregateReportView, ApiError> {
        let st = self.svc.lock();
        let hash = block_hash(&st.chain, &at)?;
        let height = st.chain.meta(&hash).map(|m| m.height).unwrap_or_default();
        let report = st.chain.aggregate_report(&hash).map_err(internal)?;
        Ok(AggregateReportView {
            height,
            hash: hash.to_hex(),
            rule: self.svc.genesis().consensus.aggregation.to_string(),
            submissions: report
                .into_iter()
                .map(|(id, tag, r)| {
                    let (outcome, kept, of, ppm) = match r.outcome {
                        Outcome::Selected => ("selected", None, None, None),
                        Outcome::Rejected => ("rejected", None, None, None),
                        Outcome::Trimmed { kept, of } => ("trimmed", Some(kept), Some(of), None),
                        Outcome::Weighted { ppm } => ("weighted", None, None, Some(ppm)),
                    };
                    SubmissionAggregationView {
                        id: id.to_hex(),
                        round_tag: tag.to_hex(),
                        outcome: outcome.into(),
                        kept_coordinates: kept,
                        coordinates: of,
                        weight_ppm: ppm,
                        score: r.score.map(|v| v.to_string()),
                    }
                })
                .collect(),
        })
    }

    fn subscribe_heads(&self) -> broadcast::Receiver<HeadView> {
        self.heads.subscribe()
    }
}
