//! `learnchain status`: one line (or one JSON object) about a running node, from its RPC.
//!
//! It asks `node_info`, `chain_head` and `net_peers`, and, where the node has them,
//! `model_metrics` (a node holding evaluation data) and `privacy_status` (a data source).
//! Any failure of the first three is an error, so the command doubles as a container
//! healthcheck: exit 0 means the node answers.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use learnchain_rpc::client::{ClientError, call_typed};
use learnchain_rpc::methods;
use learnchain_rpc::{HeadView, MetricsView, NodeInfoView, PeerView, PrivacyStatusView};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// What `learnchain status` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeStatus {
    /// The node's name.
    pub name: String,
    /// Its roles joined with `+`, e.g. `miner` or `data-source`.
    pub role: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// Chain id, hex.
    pub chain_id: String,
    /// libp2p peer id.
    pub peer_id: String,
    /// Head height.
    pub height: u64,
    /// Head block hash, hex.
    pub head_hash: String,
    /// Model hash after the head, hex.
    pub model_hash: String,
    /// Connected peers.
    pub peers: usize,
    /// Whether the node is catching up.
    pub syncing: bool,
    /// Submissions waiting for the next block.
    pub mempool: usize,
    /// Test accuracy of the head model, where the node holds evaluation data.
    pub accuracy: Option<f64>,
    /// `ε` spent by a data source.
    pub epsilon_spent: Option<f64>,
    /// `ε` budget of a data source.
    pub epsilon_budget: Option<f64>,
}

impl NodeStatus {
    /// The one-line text form.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{:<14} {:<12} height {:>5}  head {}  model {}  peers {:>2}",
            self.name,
            self.role,
            self.height,
            short(&self.head_hash),
            short(&self.model_hash),
            self.peers
        );
        if let Some(a) = self.accuracy {
            s.push_str(&format!("  accuracy {:.1}%", 100.0 * a));
        }
        if let (Some(spent), Some(budget)) = (self.epsilon_spent, self.epsilon_budget) {
            s.push_str(&format!("  ε {spent:.2}/{budget}"));
        }
        if self.syncing {
            s.push_str("  syncing");
        }
        s
    }
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

async fn get<T: DeserializeOwned>(addr: SocketAddr, method: &str, timeout: Duration) -> Result<T, ClientError> {
    call_typed(addr, method, Value::Null, timeout).await
}

/// Asks the node at `addr`, each call bounded by `timeout`.
pub async fn fetch(addr: SocketAddr, timeout: Duration) -> anyhow::Result<NodeStatus> {
    let info: NodeInfoView = get(addr, methods::NODE_INFO, timeout)
        .await
        .with_context(|| format!("the node at {addr} does not answer JSON-RPC"))?;
    let head: HeadView = get(addr, methods::CHAIN_HEAD, timeout).await.context("chain_head")?;
    let peers: Vec<PeerView> = get(addr, methods::NET_PEERS, timeout).await.context("net_peers")?;
    // Optional: a node without evaluation data, or not a data source, answers with an error
    // or with nulls.
    let metrics: Option<MetricsView> = get(addr, methods::MODEL_METRICS, timeout).await.ok();
    let privacy: Option<PrivacyStatusView> = get(addr, methods::PRIVACY_STATUS, timeout).await.ok();
    let (epsilon_spent, epsilon_budget) = match privacy {
        Some(p) if p.data_source => (p.epsilon_spent, p.budget_epsilon),
        _ => (None, None),
    };
    Ok(NodeStatus {
        name: info.name,
        role: info.roles.join("+"),
        roles: info.roles,
        chain_id: info.chain_id,
        peer_id: info.peer_id,
        height: head.height,
        head_hash: head.hash,
        model_hash: head.model_hash,
        peers: peers.len(),
        syncing: info.syncing,
        mempool: info.mempool,
        accuracy: metrics.map(|m| m.accuracy),
        epsilon_spent,
        epsilon_budget,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_what_is_known() {
        let mut s = NodeStatus {
            name: "miner-1".into(),
            role: "miner".into(),
            roles: vec!["miner".into()],
            chain_id: "c".repeat(64),
            peer_id: "12D3".into(),
            height: 42,
            head_hash: "ab".repeat(32),
            model_hash: "cd".repeat(32),
            peers: 6,
            syncing: false,
            mempool: 0,
            accuracy: None,
            epsilon_spent: None,
            epsilon_budget: None,
        };
        let line = s.line();
        assert!(line.contains("miner-1") && line.contains("height    42") && line.contains("abababababab"), "{line}");
        assert!(!line.contains("accuracy"), "{line}");
        s.accuracy = Some(0.9561);
        s.epsilon_spent = Some(1.234);
        s.epsilon_budget = Some(10.0);
        let line = s.line();
        assert!(line.contains("accuracy 95.6%") && line.contains("ε 1.23/10"), "{line}");
        let json = serde_json::to_value(&s).expect("json");
        for k in ["name", "role", "height", "head_hash", "model_hash", "peers", "accuracy"] {
            assert!(json.get(k).is_some(), "{k}");
        }
    }
}
