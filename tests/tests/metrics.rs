//! The Prometheus endpoint of running nodes: every node's `/metrics` reports its own head,
//! what it imported and refused, its peers and gossip traffic; a data source its ε and
//! training time; the observer its model's accuracy and loss.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use learnchain_rpc::client;
use learnchain_tests::{Kind, Testnet};

const T: Duration = Duration::from_secs(60);

/// Samples of an OpenMetrics text: `name{labels}` → value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(net: &Testnet, i: usize) -> anyhow::Result<(String, HashMap<String, f64>)> {
    let addr = net.node(i)?.metrics_addr().expect("every test node serves metrics");
    let body = client::get(addr, "/metrics", Duration::from_secs(5)).await?;
    let text = String::from_utf8(body)?;
    anyhow::ensure!(text.ends_with("# EOF\n"), "not OpenMetrics text: {text}");
    let parsed = samples(&text);
    Ok((text, parsed))
}

fn value(s: &HashMap<String, f64>, key: &str) -> f64 {
    *s.get(key).unwrap_or_else(|| panic!("no sample {key}"))
}

fn sum_prefix(s: &HashMap<String, f64>, prefix: &str) -> f64 {
    s.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum()
}

/// The metric families of `text` that are ours (not libp2p's or gossipsub's), by the name
/// their samples carry without the `_total` / `_info` suffix.
fn our_families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| !name.starts_with("learnchain_libp2p_") && !name.starts_with("learnchain_gossipsub_"))
        .map(str::to_owned)
        .collect()
}

/// The README's Metrics table names every family a node exports, and no other: the
/// `*_rejected` families, which appear once something was refused, are the only ones a
/// clean run does not show.
fn readme_lists_exactly(text: &str) -> anyhow::Result<()> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))?;
    let section = readme.split("\n## Metrics\n").nth(1).and_then(|s| s.split("\n## ").next()).unwrap_or("");
    let listed: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `learnchain_"))
        .filter_map(|l| l.split('`').next())
        .map(|n| {
            let n = format!("learnchain_{n}");
            n.strip_suffix("_total").or_else(|| n.strip_suffix("_info")).map(str::to_owned).unwrap_or(n)
        })
        .collect();
    let exported = our_families(text);
    let unlisted: Vec<&String> = exported.difference(&listed).collect();
    anyhow::ensure!(unlisted.is_empty(), "exported but not in the README's Metrics table: {unlisted:?}");
    let absent: Vec<&String> = listed.difference(&exported).filter(|n| !n.ends_with("_rejected")).collect();
    anyhow::ensure!(absent.is_empty(), "in the README's Metrics table but not exported: {absent:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_reports_its_chain_peers_and_role_over_metrics() -> anyhow::Result<()> {
    let net = Testnet::new(&[Kind::Miner, Kind::Source(0), Kind::Source(1), Kind::Observer]).await?;
    net.wait_height(3, 3, T).await?;
    net.set_mining(false);
    let head = net.wait_agree(&net.running(), T).await?;
    let height = head.meta.height as f64;

    for i in net.running() {
        let (text, s) = scrape(&net, i).await?;
        assert_eq!(value(&s, "learnchain_chain_head_height"), height, "node {i}");
        assert!(value(&s, "learnchain_chain_total_work") > 0.0, "node {i}");
        let imported = sum_prefix(&s, "learnchain_chain_blocks_imported_total");
        assert!(imported >= height, "node {i} imported {imported} blocks for a chain of {height}");
        assert!(value(&s, "learnchain_chain_block_import_seconds_count") >= height, "node {i}");
        let peers = sum_prefix(&s, "learnchain_net_peers{");
        assert_eq!(peers as usize, net.node(i)?.peer_count().borrow().to_owned(), "node {i}: peer gauges");
        assert!(value(&s, "learnchain_net_transport_bytes_total{direction=\"in\"}") > 0.0, "node {i}");
        assert!(text.contains("learnchain_libp2p_"), "node {i}: libp2p's swarm metrics");
        assert!(text.contains("learnchain_gossipsub_"), "node {i}: gossipsub's metrics");
        assert!(text.contains("learnchain_build_info{version=\""), "node {i}");
    }

    // The miner's blocks left as compact blocks; the others received them.
    let (miner_text, miner) = scrape(&net, 0).await?;
    readme_lists_exactly(&miner_text)?;
    assert_eq!(value(&miner, "learnchain_miner_blocks_mined_total"), height);
    assert!(value(&miner, "learnchain_net_gossip_bytes_total{topic=\"compact_blocks\",direction=\"out\"}") > 0.0);
    assert!(value(&miner, "learnchain_submissions_accepted_total") >= height, "a quorum per block entered the pool");
    assert!(value(&miner, "learnchain_round_latency_seconds_count") >= 1.0);

    // A data source reports its privacy spend and training.
    let (_, source) = scrape(&net, 1).await?;
    let spent = value(&source, "learnchain_privacy_epsilon_spent");
    let budget = value(&source, "learnchain_privacy_epsilon_budget");
    assert!(spent > 0.0 && spent <= budget, "ε spent {spent} of {budget}");
    assert!(value(&source, "learnchain_privacy_rounds_contributed") >= 1.0);
    assert!(value(&source, "learnchain_training_seconds_count") >= 1.0);
    assert!(value(&source, "learnchain_net_gossip_bytes_total{topic=\"compact_blocks\",direction=\"in\"}") > 0.0);

    // The observer evaluates each head (in a task of its own); wait until it has done the
    // last one, checking at each scrape.
    let deadline = tokio::time::Instant::now() + T;
    let observer = loop {
        let (_, s) = scrape(&net, 3).await?;
        if s.get("learnchain_model_evaluated_height") == Some(&height) {
            break s;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the observer never evaluated height {height}");
        // Within the endpoint's 10 scrapes a second.
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    let accuracy = value(&observer, "learnchain_model_test_accuracy");
    let loss = value(&observer, "learnchain_model_test_loss");
    let rpc = client::call(net.node(3)?.rpc_addr.expect("rpc"), "model_metrics", serde_json::Value::Null).await?;
    // The text format prints floats to about 16 digits: equal up to the last one.
    let close = |a: f64, b: Option<f64>| b.is_some_and(|b| (a - b).abs() < 1e-12);
    assert!(close(accuracy, rpc["accuracy"].as_f64()), "the gauge {accuracy} is the RPC's accuracy of the head: {rpc}");
    assert!(close(loss, rpc["loss"].as_f64()), "the gauge {loss} is the RPC's loss of the head: {rpc}");
    // The observer holds no ledger: no ε is reported as spent.
    assert_eq!(value(&observer, "learnchain_privacy_epsilon_spent"), 0.0);
    net.shutdown().await;
    Ok(())
}

/// The model's metrics at every height, read back from a restarted observer (an empty cache,
/// so each is reached by walking down the chain), are what it reported before, in either
/// order of asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_heights_are_evaluated_again_after_a_restart() -> anyhow::Result<()> {
    let mut net = Testnet::new(&[Kind::Miner, Kind::Source(0), Kind::Source(1), Kind::Observer]).await?;
    net.wait_height(3, 6, T).await?;
    net.set_mining(false);
    let head = net.wait_agree(&net.running(), T).await?;
    let h = head.meta.height;
    let all = |net: &Testnet, order: Vec<u64>| {
        let addr = net.node(3).map(|n| n.rpc_addr.expect("rpc"));
        async move {
            let addr = addr?;
            let mut out = std::collections::BTreeMap::new();
            for height in order {
                let m = client::call(addr, "model_metrics", serde_json::json!([height])).await?;
                out.insert(height, (m["accuracy"].as_f64(), m["loss"].as_f64()));
            }
            anyhow::Ok(out)
        }
    };
    let before = all(&net, (0..=h).collect()).await?;
    net.stop(3).await?;
    net.restart(3, net.all_addrs()).await?;
    net.wait_height(3, h, T).await?;
    let descending = all(&net, (0..=h).rev().collect()).await?;
    assert_eq!(before, descending, "heights asked from the head down");
    net.stop(3).await?;
    net.restart(3, net.all_addrs()).await?;
    net.wait_height(3, h, T).await?;
    let ascending = all(&net, (0..=h).collect()).await?;
    assert_eq!(before, ascending, "heights asked from genesis up");
    net.shutdown().await;
    Ok(())
}
