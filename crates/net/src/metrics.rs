//! The network's Prometheus metrics, in one place: [`NetMetrics`].
//!
//! [`crate::new_with_metrics`] registers them in the caller's `prometheus_client` registry
//! (the node's, prefixed `learnchain_`), and the event loop updates them as it works; the
//! registry's owner encodes them when it is scraped. Nothing here waits: every update is an
//! atomic add or store.
//!
//! What is registered:
//! - libp2p's own swarm metrics (`libp2p-metrics`: connections, dials, identify, kad, ping,
//!   under `libp2p_`) and gossipsub's (`libp2p_gossipsub_`: mesh sizes, per-topic messages
//!   and bytes including forwards, scores);
//! - ours, under `net_`: the gossip payload bytes and messages per topic and direction
//!   (`in`: messages delivered to this node, after gossipsub's de-duplication and before the
//!   node's verdict; `out`: messages this node published, counted once, not per mesh peer),
//!   the peers by direction and score band, and the bytes every TCP connection carried
//!   (see `traffic`).
//!
//! The peer gauges are recomputed from the event loop's peer table whenever a connection
//! opens or closes and at every discovery tick, so a score that decays moves a peer
//! between bands within [`crate::DISCOVERY_INTERVAL`].

use std::fmt;

use learnchain_proto::topics::TopicKind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use libp2p::metrics::Recorder;

use crate::Direction;
use crate::scoring::READMIT_SCORE;
use crate::traffic::TrafficCounters;

/// Which way a message or a byte went: label value `in` or `out`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Way {
    /// Received from a peer.
    In,
    /// Sent to peers.
    Out,
}

impl EncodeLabelValue for Way {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), fmt::Error> {
        use fmt::Write;
        encoder.write_str(match self {
            Way::In => "in",
            Way::Out => "out",
        })
    }
}

/// The gossip topic, by its kind (the chain id part of the topic string is the same for
/// every topic of a node).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum Topic {
    blocks,
    compact_blocks,
    submissions,
    registrations,
}

impl From<TopicKind> for Topic {
    fn from(kind: TopicKind) -> Self {
        match kind {
            TopicKind::Blocks => Topic::blocks,
            TopicKind::CompactBlocks => Topic::compact_blocks,
            TopicKind::Submissions => Topic::submissions,
            TopicKind::Registrations => Topic::registrations,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: Topic,
    direction: Way,
}

/// The peer manager's score of a peer, in bands between its thresholds.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum ScoreBand {
    /// Score above −1: the peer has not offended, or its offences have decayed.
    neutral,
    /// Between −1 and the re-admission threshold (−10).
    penalised,
    /// At or below −10 (refused if it reconnects) and above the disconnect threshold.
    refused_on_return,
}

impl ScoreBand {
    const ALL: [ScoreBand; 3] = [ScoreBand::neutral, ScoreBand::penalised, ScoreBand::refused_on_return];

    pub(crate) fn of(score: f64) -> ScoreBand {
        if score > -1.0 {
            ScoreBand::neutral
        } else if score > READMIT_SCORE {
            ScoreBand::penalised
        } else {
            // A peer at the disconnect threshold (−20) or below is being disconnected; it
            // counts here until its connection closes.
            ScoreBand::refused_on_return
        }
    }
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum PeerDirection {
    inbound,
    outbound,
}

impl From<Direction> for PeerDirection {
    fn from(d: Direction) -> Self {
        match d {
            Direction::Inbound => PeerDirection::inbound,
            Direction::Outbound => PeerDirection::outbound,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    direction: PeerDirection,
    score_band: ScoreBand,
}

/// The network's metrics (see the module docs).
pub(crate) struct NetMetrics {
    /// libp2p's swarm and protocol metrics (none when nothing is registered).
    libp2p: Option<libp2p::metrics::Metrics>,
    gossip_bytes: Family<TopicLabels, Counter>,
    gossip_messages: Family<TopicLabels, Counter>,
    peers: Family<PeerLabels, Gauge>,
}

impl fmt::Debug for NetMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetMetrics").finish_non_exhaustive()
    }
}

impl NetMetrics {
    /// Registers every network metric in `registry`; the transport counters are read at
    /// each scrape.
    pub(crate) fn register(registry: &mut Registry, traffic: TrafficCounters) -> NetMetrics {
        let libp2p = libp2p::metrics::Metrics::new(registry);
        let net = registry.sub_registry_with_prefix("net");
        let gossip_bytes = Family::<TopicLabels, Counter>::default();
        net.register_with_unit(
            "gossip",
            "Gossip payload bytes by topic: in = delivered to this node (after de-duplication), out = published by it (once, not per peer)",
            Unit::Bytes,
            gossip_bytes.clone(),
        );
        let gossip_messages = Family::<TopicLabels, Counter>::default();
        net.register(
            "gossip_messages",
            "Gossip messages by topic: in = delivered to this node (after de-duplication), out = published by it",
            gossip_messages.clone(),
        );
        let peers = Family::<PeerLabels, Gauge>::default();
        net.register(
            "peers",
            "Connected peers by who dialled (inbound, outbound) and by the peer manager's score band",
            peers.clone(),
        );
        net.register_collector(Box::new(TransportBytes(traffic)));
        let metrics = NetMetrics { libp2p: Some(libp2p), gossip_bytes, gossip_messages, peers };
        // Every label set exists from the start, reading 0.
        metrics.set_peers(&[]);
        metrics
    }

    /// Metrics in no registry: ours count (cheaply) into nothing read, libp2p's are not kept.
    pub(crate) fn unregistered() -> NetMetrics {
        NetMetrics {
            libp2p: None,
            gossip_bytes: Family::default(),
            gossip_messages: Family::default(),
            peers: Family::default(),
        }
    }

    /// Hands a swarm or protocol event to libp2p's metrics, if they are kept.
    pub(crate) fn record<E>(&self, event: &E)
    where
        libp2p::metrics::Metrics: Recorder<E>,
    {
        if let Some(m) = &self.libp2p {
            m.record(event);
        }
    }

    /// A gossip message of `len` payload bytes on `kind` was delivered to this node.
    pub(crate) fn gossip_in(&self, kind: TopicKind, len: usize) {
        self.gossip(kind, Way::In, len);
    }

    /// This node published a gossip message of `len` payload bytes on `kind`.
    pub(crate) fn gossip_out(&self, kind: TopicKind, len: usize) {
        self.gossip(kind, Way::Out, len);
    }

    fn gossip(&self, kind: TopicKind, direction: Way, len: usize) {
        let labels = TopicLabels { topic: kind.into(), direction };
        self.gossip_bytes.get_or_create(&labels).inc_by(len as u64);
        self.gossip_messages.get_or_create(&labels).inc();
    }

    /// Sets the peer gauges from the connected peers' (direction, score): every label set,
    /// so a band that empties reads 0 rather than keeping its last count.
    pub(crate) fn set_peers(&self, peers: &[(Direction, f64)]) {
        for direction in [Direction::Inbound, Direction::Outbound] {
            for score_band in ScoreBand::ALL {
                let n = peers.iter().filter(|(d, s)| *d == direction && ScoreBand::of(*s) == score_band).count();
                let labels = PeerLabels { direction: direction.into(), score_band };
                self.peers.get_or_create(&labels).set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }
}

/// `net_transport_bytes_total{direction}`: the transport counters, read when scraped.
#[derive(Debug)]
struct TransportBytes(TrafficCounters);

impl Collector for TransportBytes {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let traffic = self.0.snapshot();
        let counter = ConstCounter::new(traffic.bytes_in);
        let mut family = encoder.encode_descriptor(
            "transport",
            "Bytes read from and written to peers' TCP streams (everything after TCP: multistream, Noise, Yamux, every protocol)",
            Some(&Unit::Bytes),
            counter.metric_type(),
        )?;
        counter.encode(family.encode_family(&[("direction", "in")])?)?;
        ConstCounter::new(traffic.bytes_out).encode(family.encode_family(&[("direction", "out")])?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn bands_follow_the_thresholds() {
        assert_eq!(ScoreBand::of(0.0), ScoreBand::neutral);
        assert_eq!(ScoreBand::of(-0.5), ScoreBand::neutral);
        assert_eq!(ScoreBand::of(-1.0), ScoreBand::penalised);
        assert_eq!(ScoreBand::of(-9.9), ScoreBand::penalised);
        assert_eq!(ScoreBand::of(READMIT_SCORE), ScoreBand::refused_on_return);
        assert_eq!(ScoreBand::of(-19.0), ScoreBand::refused_on_return);
    }

    #[test]
    fn encodes_topics_peers_and_transport() {
        let mut registry = Registry::with_prefix("learnchain");
        let traffic = TrafficCounters::default();
        let metrics = NetMetrics::register(&mut registry, traffic);
        metrics.gossip_in(TopicKind::Blocks, 100);
        metrics.gossip_in(TopicKind::Blocks, 50);
        metrics.gossip_out(TopicKind::Submissions, 7);
        metrics.set_peers(&[(Direction::Inbound, 0.0), (Direction::Inbound, -12.0), (Direction::Outbound, -3.0)]);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encode");
        for line in [
            "learnchain_net_gossip_bytes_total{topic=\"blocks\",direction=\"in\"} 150",
            "learnchain_net_gossip_messages_total{topic=\"blocks\",direction=\"in\"} 2",
            "learnchain_net_gossip_bytes_total{topic=\"submissions\",direction=\"out\"} 7",
            "learnchain_net_peers{direction=\"inbound\",score_band=\"neutral\"} 1",
            "learnchain_net_peers{direction=\"inbound\",score_band=\"refused_on_return\"} 1",
            "learnchain_net_peers{direction=\"outbound\",score_band=\"penalised\"} 1",
            "learnchain_net_peers{direction=\"outbound\",score_band=\"neutral\"} 0",
            "learnchain_net_transport_bytes_total{direction=\"in\"} 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains("learnchain_libp2p_"), "libp2p's metrics are registered:\n{text}");
        assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
    }
}
