//! Multi-node scenarios on the in-process testnet.

use std::time::Duration;

use learnchain_chain::pow::target_to_u256;
use learnchain_tests::{Kind, Testnet};

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_propagate_and_every_node_agrees_on_the_model() -> anyhow::Result<()> {
    let net = Testnet::new(&[Kind::Miner, Kind::Source(0), Kind::Source(1), Kind::Observer]).await?;
    net.wait_height(3, 4, T).await?;
    net.set_mining(false);
    let head = net.wait_agree(&net.running(), T).await?;
    for i in net.running() {
        let h = net.head(i)?;
        assert_eq!(h.meta.model_hash, head.meta.model_hash);
        assert_eq!(*h.model, *head.model);
    }
    // The observer evaluates the head model on its test split; over JSON-RPC too.
    let observer = net.node(3)?;
    let addr = observer.rpc_addr.expect("rpc");
    let m = learnchain_rpc::client::call(addr, "model_metrics", serde_json::Value::Null).await?;
    let acc = m["accuracy"].as_f64().expect("accuracy");
    assert!(acc > 0.9, "accuracy {acc}");
    let block = learnchain_rpc::client::call(addr, "chain_getBlock", serde_json::json!([1])).await?;
    assert_eq!(block["height"], 1);
    assert!(block["submissions"].as_array().is_some_and(|s| !s.is_empty()));
    net.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_after_ten_blocks_catches_up() -> anyhow::Result<()> {
    let mut net = Testnet::new(&[Kind::Miner, Kind::Source(0), Kind::Source(1)]).await?;
    net.wait_height(0, 10, T).await?;
    net.set_mining(false);
    let head = net.wait_agree(&net.running(), T).await?;
    let late = net.add(Kind::Observer, net.all_addrs()).await?;
    assert_eq!(net.head(late)?.meta.height, 0);
    let caught = net.wait_agree(&net.running(), T).await?;
    assert_eq!(caught.meta.hash, head.meta.hash);
    assert!(caught.meta.height >= 10);
    assert_eq!(net.head(late)?.meta.model_hash, head.meta.model_hash);
    net.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_resumes_at_its_head() -> anyhow::Result<()> {
    let mut net = Testnet::new(&[Kind::Miner, Kind::Source(0), Kind::Source(1), Kind::Observer]).await?;
    net.wait_height(3, 5, T).await?;
    net.set_mining(false);
    let head = net.wait_agree(&net.running(), T).await?;
    net.stop(3).await?;
    // Restart with no bootnodes: what it has comes from its own data directory.
    net.restart(3, vec![]).await?;
    let resumed = net.head(3)?;
    assert_eq!(resumed.meta, head.meta);
    assert_eq!(*resumed.model, *head.model);
    net.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_miners_fork_and_the_fork_resolves() -> anyhow::Result<()> {
    // Two partitions under one genesis, each with its own miner and data sources, mine
    // competing branches; once connected, every node follows the branch with more work.
    let mut net = Testnet::empty(Testnet::genesis(2))?;
    let a_miner = net.add(Kind::Miner, vec![]).await?;
    let a_boot = net.all_addrs();
    let a_s0 = net.add(Kind::Source(0), a_boot.clone()).await?;
    let a_s1 = net.add(Kind::Source(1), a_boot).await?;
    let b_miner = net.add(Kind::Miner, vec![]).await?;
    let b_boot: Vec<String> = net.node(b_miner)?.listen_addrs.iter().map(ToString::to_string).collect();
    let b_s2 = net.add(Kind::Source(2), b_boot.clone()).await?;
    let b_s3 = net.add(Kind::Source(3), b_boot).await?;

    net.wait_height(a_miner, 3, T).await?;
    net.node(a_miner)?.set_mining(false);
    let a = net.wait_agree(&[a_miner, a_s0, a_s1], T).await?;
    // B mines a strictly longer branch (equal work would rightly stay a tie).
    net.wait_height(b_miner, a.meta.height + 2, T).await?;
    net.node(b_miner)?.set_mining(false);
    let b = net.wait_agree(&[b_miner, b_s2, b_s3], T).await?;
    let a = net.wait_agree(&[a_miner, a_s0, a_s1], T).await?;
    assert_ne!(a.meta.hash, b.meta.hash, "the partitions must have forked");

    // Heal the partition.
    for addr in net.node(b_miner)?.listen_addrs.clone() {
        net.node(a_miner)?.dial(addr).await?;
    }
    let winner = net.wait_agree(&net.running(), T).await?;
    let expect = if target_to_u256(&b.meta.total_work) > target_to_u256(&a.meta.total_work) { &b } else { &a };
    assert_eq!(winner.meta.hash, expect.meta.hash);
    assert_eq!(*winner.model, *expect.model, "model after the reorg equals the winning branch's");
    net.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_only_miner_restarting_mid_round_picks_up_the_pooled_submissions() -> anyhow::Result<()> {
    // Data sources submit once per head; a miner that was down when they did must get the
    // round's submissions from its peers' pools, or the chain would stall.
    let mut net = Testnet::new(&[Kind::Miner, Kind::Source(0), Kind::Source(1)]).await?;
    net.wait_height(0, 3, T).await?;
    net.node(0)?.set_mining(false);
    let head = net.wait_agree(&net.running(), T).await?;
    net.stop(0).await?;
    net.restart(0, net.all_addrs()).await?;
    assert_eq!(net.head(0)?.meta.hash, head.meta.hash);
    net.wait_height(0, head.meta.height + 2, T).await?;
    net.wait_agree(&net.running(), T).await?;
    net.shutdown().await;
    Ok(())
}
