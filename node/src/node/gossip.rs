//! The node loop's handling of what peers send: gossip (decoded within the genesis limits,
//! validated, its verdict reported back; compact blocks and submission announcements handed
//! to their own tasks) and sync requests (served on the blocking pool).
//!
//! Data enters as the network's gossip and sync-request events and leaves as verdicts and
//! responses through the network handle; what validation accepts enters the chain through
//! the chain service.

use learnchain_chain::Verdict as ChainVerdict;
use learnchain_net::{GossipId, PeerId, SyncResponder, TopicKind, Verdict};
use learnchain_proto::registration::MAX_REGISTRATION_BYTES;
use learnchain_proto::{Block, Registration, SyncRequest, decode};
use tracing::{Instrument, debug, warn};

use super::{NodeLoop, to_verdict};
use crate::service::Origin;
use crate::sync;
use crate::sync::pool::Announced;

impl NodeLoop {
    pub(super) async fn on_gossip(&mut self, kind: TopicKind, id: GossipId, source: PeerId, data: Vec<u8>) {
        // Queued before the peer manager shut the peer out: not worth validating.
        if self.net.is_unwelcome(&source) {
            self.net.report_validation(id, Verdict::Ignore).await;
            return;
        }
        let limits = &self.svc.genesis().limits;
        let verdict = match kind {
            TopicKind::Blocks => match decode::<Block>(&data, limits.max_block_bytes as usize) {
                Err(e) => {
                    self.svc.log_rejection(source, "undecodable block", &e, true);
                    Verdict::Reject
                }
                Ok(block) => match self.svc.import(block, Origin::Gossip).await {
                    Ok(_) => Verdict::Accept,
                    Err(e) => {
                        if matches!(e, learnchain_chain::BlockError::UnknownParent(_)) {
                            self.start_sync(source);
                        }
                        let v = e.verdict();
                        self.svc.log_rejection(source, "block", &e, v == ChainVerdict::Reject);
                        to_verdict(v)
                    }
                },
            },
            TopicKind::CompactBlocks => match self.relay.check(&data) {
                Ok(checked) => {
                    // Fetching may take a round trip or two: off the node loop.
                    let relay = self.relay.clone();
                    self.tasks.spawn(
                        async move {
                            relay.rebuild(id, source, checked).await;
                        }
                        .in_current_span(),
                    );
                    return;
                }
                Err(e) => {
                    if e.unknown_parent().is_some() {
                        self.start_sync(source);
                    }
                    let v = e.verdict();
                    self.svc.log_rejection(source, "compact block", &e, v == ChainVerdict::Reject);
                    to_verdict(v)
                }
            },
            TopicKind::Submissions => match self.fetcher.on_announcement(id.clone(), source, &data) {
                Announced::Now(v) => v,
                Announced::Queued { start } => {
                    if start {
                        self.tasks.spawn(self.fetcher.clone().drain(source).in_current_span());
                    }
                    return;
                }
            },
            TopicKind::Registrations => match decode::<Registration>(&data, MAX_REGISTRATION_BYTES) {
                Err(e) => {
                    self.svc.log_rejection(source, "undecodable registration", &e, true);
                    Verdict::Reject
                }
                Ok(r) => match self.svc.add_registration_via(r, Origin::Gossip) {
                    Ok(id) => {
                        debug!(registration = %id.short(), "registration accepted");
                        Verdict::Accept
                    }
                    Err(e) => {
                        let v = e.verdict();
                        self.svc.log_rejection(source, "registration", &e, v == ChainVerdict::Reject);
                        to_verdict(v)
                    }
                },
            },
        };
        self.net.report_validation(id, verdict).await;
    }

    pub(super) fn on_sync_request(&mut self, peer: PeerId, request: SyncRequest, responder: SyncResponder) {
        let svc = self.svc.clone();
        let net = self.net.clone();
        let serving = self.serving.clone();
        self.tasks.spawn(
            async move {
                // A bounded number of answers (each up to the genesis response limit) is
                // read and held at once, whatever the number of peers asking; the others
                // wait their turn, and past the wait are told the node is busy.
                let permit = match tokio::time::timeout(sync::SERVE_WAIT, serving.acquire_owned()).await {
                    Ok(Ok(p)) => p,
                    _ => {
                        let busy = format!("busy: this node answers {} sync requests at once", sync::SERVED_AT_ONCE);
                        net.respond(responder, learnchain_proto::SyncResponse::Refused(busy)).await;
                        return;
                    }
                };
                let response = tokio::task::spawn_blocking(move || sync::serve(&svc, request)).await;
                match response {
                    Ok(r) => net.respond(responder, r).await,
                    Err(e) => warn!(%peer, error = %e, "serving a sync request failed"),
                }
                drop(permit);
            }
            .in_current_span(),
        );
    }
}
