//! Rounds of many data sources, in one process (the devnet, whose nodes share the
//! pure-result caches) with 2 miners: at 32 data sources every block carries at least 90%
//! of the round's updates, at 100 at least 95%; every node's chain holds the same block —
//! so the same model hash — at every height; and the summary reports what the round cost.

use std::time::Duration;

use learnchain_chain::Chain;
use learnchain_node::devnet::{self, DevnetOptions, DevnetSummary};

const BLOCKS: u64 = 5;

/// One devnet at a time: two would share the cores and stretch each other's rounds.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs a devnet of `sources` data sources for [`BLOCKS`] blocks and checks that every
/// canonical block carries at least `percent`% of them and every node holds the same chain.
async fn fill_every_block(sources: usize, percent: usize) -> anyhow::Result<DevnetSummary> {
    let _serial = ONE_AT_A_TIME.lock().await;
    learnchain_tests::init_logs();
    let dir = tempfile::tempdir()?;
    let opts = DevnetOptions {
        data_dir: Some(dir.path().to_path_buf()),
        blocks: BLOCKS,
        data_sources: sources,
        timeout: Duration::from_secs(400),
        verbose: false,
        ..DevnetOptions::default()
    };
    let summary = devnet::run(opts).await?;
    assert!(summary.nodes_agree, "{summary:?}");
    assert!(summary.height >= BLOCKS);
    assert!(summary.seconds_per_block > 0.0 && summary.bytes_per_block > 0.0 && summary.wire_bytes_per_node_per_round > 0.0);

    // Every node stopped; read each one's stored chain.
    let genesis = learnchain_node::commands::load_genesis(&dir.path().join("genesis.toml"))?;
    let mut names = vec!["observer".to_string()];
    names.extend((1..=2).map(|i| format!("miner-{i}")));
    names.extend((1..=sources).map(|i| format!("source-{i}")));
    let observer = Chain::open(&dir.path().join("observer").join("chain.redb"), genesis.clone())?;
    let needed = (sources * percent).div_ceil(100) as u32;
    let mut canonical = Vec::new();
    for h in 1..=summary.height {
        let hash = observer.canonical_hash(h)?.expect("canonical block");
        let meta = observer.meta(&hash).expect("meta");
        assert!(
            meta.submissions >= needed,
            "block {h} carries {} of the round's {sources} updates (at least {needed} wanted)",
            meta.submissions
        );
        canonical.push((hash, meta.model_hash));
    }
    drop(observer);
    for name in &names[1..] {
        let chain = Chain::open(&dir.path().join(name).join("chain.redb"), genesis.clone())?;
        for (h, (hash, model)) in (1..).zip(&canonical) {
            let theirs = chain.canonical_hash(h)?;
            assert_eq!(theirs, Some(*hash), "{name} at height {h}");
            assert_eq!(chain.meta(hash).map(|m| m.model_hash), Some(*model), "{name}'s model at height {h}");
        }
    }
    Ok(summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_sources_fill_every_block_and_agree_on_every_model() -> anyhow::Result<()> {
    fill_every_block(32, 90).await?;
    Ok(())
}

/// The devnet summary at 100 data sources: every block at least 95 of their updates, and
/// the keys that say what a round cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_sources_fill_every_block_and_the_summary_says_what_it_cost() -> anyhow::Result<()> {
    let summary = fill_every_block(100, 95).await?;
    let json = serde_json::to_value(&summary)?;
    for key in ["seconds_per_block", "bytes_per_block", "wire_bytes_per_node_per_round", "validation_ms_per_block", "block_interval_ms"] {
        assert!(json[key].as_f64().is_some_and(|v| v > 0.0), "summary key {key}: {json}");
    }
    assert_eq!(json["update_encoding"], "i32");
    assert!(summary.submissions >= 95 * BLOCKS, "{} submissions in {BLOCKS} blocks", summary.submissions);
    // A hundred signed i32 updates of breast-cancer's 62 parameters: over 100 kB a block.
    assert!(summary.bytes_per_block > 100_000.0, "{} bytes per block", summary.bytes_per_block);
    assert!(summary.block_interval_ms >= devnet::DEFAULT_BLOCK_INTERVAL_MS);
    assert_eq!(summary.data_sources_stopped, 0, "no data source ran out of budget");
    Ok(())
}
