//! A round of many data sources: 32 data sources and 2 miners in one process (the devnet,
//! whose nodes share the pure-result caches), every block carrying at least 90% of the
//! round's updates, and every node's chain holding the same block — so the same model
//! hash — at every height.

use std::time::Duration;

use learnchain_chain::Chain;
use learnchain_node::devnet::{self, DevnetOptions};

const SOURCES: usize = 32;
const BLOCKS: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_sources_fill_every_block_and_agree_on_every_model() -> anyhow::Result<()> {
    learnchain_tests::init_logs();
    let dir = tempfile::tempdir()?;
    let opts = DevnetOptions {
        data_dir: Some(dir.path().to_path_buf()),
        blocks: BLOCKS,
        data_sources: SOURCES,
        timeout: Duration::from_secs(240),
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
    names.extend((1..=SOURCES).map(|i| format!("source-{i}")));
    let observer = Chain::open(&dir.path().join("observer").join("chain.redb"), genesis.clone())?;
    let needed = (SOURCES * 9).div_ceil(10) as u32;
    let mut canonical = Vec::new();
    for h in 1..=summary.height {
        let hash = observer.canonical_hash(h)?.expect("canonical block");
        let meta = observer.meta(&hash).expect("meta");
        assert!(
            meta.submissions >= needed,
            "block {h} carries {} of the round's {SOURCES} updates (at least {needed} wanted)",
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
    Ok(())
}
