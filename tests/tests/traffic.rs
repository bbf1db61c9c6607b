//! What a round costs on the wire: bytes sent and received per node per round against the
//! bytes of the round's submissions, on an in-process testnet shaped like the devnet (2
//! miners, 4 data sources, an observer, quorum 4).
//!
//! Ignored by default (it measures, and its figure depends on the machine's timing); run it
//! with `cargo test -p learnchain-tests --test traffic -- --ignored --nocapture`. It reads
//! every node's transport counters ([`learnchain_net::NetworkHandle::traffic`]) when the
//! observer reaches the first measured height and again `ROUNDS` blocks later, and prints
//! the mean per node of `bytes_in` and of `(bytes_in + bytes_out) / 2` per round (in a
//! closed network every byte one node sends another receives, so the two agree up to
//! in-flight bytes), and their ratio to the mean encoded size of the submissions the
//! measured blocks carry.

use std::time::Duration;

use anyhow::Context;
use learnchain_net::Traffic;
use learnchain_proto::encoding::encoded_len;
use learnchain_tests::{Kind, Testnet};

const ROUNDS: u64 = 20;
const T: Duration = Duration::from_secs(120);
const OBSERVER: usize = 6;

fn snapshot(net: &Testnet) -> anyhow::Result<Vec<Traffic>> {
    net.running().into_iter().map(|i| Ok(net.node(i)?.net.traffic())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn wire_bytes_per_node_per_round() -> anyhow::Result<()> {
    let mut net = Testnet::empty(Testnet::genesis(4))?;
    for kind in [Kind::Miner, Kind::Miner, Kind::Source(0), Kind::Source(1), Kind::Source(2), Kind::Source(3), Kind::Observer] {
        let boot = net.all_addrs();
        net.add(kind, boot).await?;
    }
    // Start after the first blocks: connections, identify and the first syncs are done.
    let start = 3;
    net.wait_height(OBSERVER, start, T).await?;
    let before = snapshot(&net)?;
    net.wait_height(OBSERVER, start + ROUNDS, T).await?;
    let after = snapshot(&net)?;
    let (mut submission_bytes, mut submissions) = (0usize, 0usize);
    {
        let st = net.node(OBSERVER)?.svc.lock();
        for h in start + 1..=start + ROUNDS {
            let block = st.chain.block_at(h)?.with_context(|| format!("block {h}"))?;
            submissions += block.submissions.len();
            submission_bytes += block.submissions.iter().map(encoded_len).sum::<usize>();
        }
    }
    let nodes = before.len() as f64;
    let rounds = ROUNDS as f64;
    let bytes_in: u64 = after.iter().zip(&before).map(|(a, b)| a.bytes_in - b.bytes_in).sum();
    let bytes_out: u64 = after.iter().zip(&before).map(|(a, b)| a.bytes_out - b.bytes_out).sum();
    let per_round = submission_bytes as f64 / rounds;
    let in_per_node = bytes_in as f64 / nodes / rounds;
    let half_total_per_node = (bytes_in + bytes_out) as f64 / 2.0 / nodes / rounds;
    println!(
        "{} nodes, {ROUNDS} rounds, {:.1} submissions of {:.0} bytes per round ({per_round:.0} bytes)",
        before.len(),
        submissions as f64 / rounds,
        submission_bytes as f64 / submissions.max(1) as f64
    );
    println!(
        "per node per round: received {in_per_node:.0} bytes ({:.2}x the submissions), (sent + received) / 2 \
         {half_total_per_node:.0} bytes ({:.2}x), sent + received {:.0} bytes",
        in_per_node / per_round,
        half_total_per_node / per_round,
        2.0 * half_total_per_node
    );
    // Every node but a data source receives every submission at least once.
    anyhow::ensure!(submissions > 0 && in_per_node >= per_round * 0.5, "the counters missed the gossip");
    net.shutdown().await;
    Ok(())
}
