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

/// A network on an i8 genesis: data sources send one byte per parameter, every node decodes
/// the same integers and agrees on the model, and the model still learns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_i8_network_agrees_and_learns() -> anyhow::Result<()> {
    let mut g = Testnet::genesis(2);
    g.consensus.update_encoding = "i8".parse().map_err(|e: String| anyhow::anyhow!(e))?;
    g.validate()?;
    let mut net = Testnet::empty(g)?;
    for k in [Kind::Miner, Kind::Source(0), Kind::Source(1), Kind::Observer] {
        let boot = net.all_addrs();
        net.add(k, boot).await?;
    }
    net.wait_height(3, 4, T).await?;
    net.set_mining(false);
    let head = net.wait_agree(&net.running(), T).await?;
    for i in net.running() {
        assert_eq!(*net.head(i)?.model, *head.model);
    }
    let observer = net.node(3)?;
    let block = observer.svc.lock().chain.block_at(1)?.expect("block 1");
    assert!(!block.submissions.is_empty());
    for s in &block.submissions {
        assert!(matches!(s.update, learnchain_proto::EncodedUpdate::I8 { .. }), "an i8 update");
    }
    let addr = observer.rpc_addr.expect("rpc");
    let m = learnchain_rpc::client::call(addr, "model_metrics", serde_json::Value::Null).await?;
    let acc = m["accuracy"].as_f64().expect("accuracy");
    assert!(acc > 0.9, "accuracy {acc}");
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
async fn a_node_with_an_empty_data_dir_starts_from_a_snapshot() -> anyhow::Result<()> {
    use learnchain_chain::store::CHECKPOINT_INTERVAL;
    let mut net = Testnet::new(&[Kind::Miner, Kind::Source(0), Kind::Source(1)]).await?;
    net.wait_height(0, CHECKPOINT_INTERVAL + 4, T * 3).await?;
    // Mining goes on while the newcomer downloads: the blocks after the snapshot are
    // imported in full, then followed by gossip.
    let late = net.add(Kind::Observer, net.all_addrs()).await?;
    net.wait_until(late, "a snapshot installed", |c| Ok(c.body_floor() > 0), T).await?;
    let top = net.head(0)?.meta.height;
    net.wait_height(late, top + 2, T).await?;
    net.set_mining(false);
    let head = net.wait_agree(&net.running(), T).await?;
    {
        let (newcomer, miner) = (net.node(late)?.svc.clone(), net.node(0)?.svc.clone());
        let (ours, theirs) = (newcomer.lock(), miner.lock());
        let floor = ours.chain.body_floor();
        assert!(floor > CHECKPOINT_INTERVAL && floor <= head.meta.height, "installed at {}", floor - 1);
        assert!(ours.chain.block_at(1)?.is_none(), "no body before the snapshot");
        assert_eq!(ours.chain.canonical_hash(1)?, theirs.chain.canonical_hash(1)?, "the header chain is the miner's");
        assert_eq!(ours.chain.head_model(), theirs.chain.head_model());
    }
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
    // B mines a strictly longer branch (at equal work the lower hash would win either way).
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

/// Waits until the data source `i` has stopped at its privacy budget.
async fn wait_privacy_stopped(net: &Testnet, i: usize) -> anyhow::Result<()> {
    use anyhow::Context;
    let gate = net.node(i)?.api.privacy.clone().context("not a data source")?;
    let mut changes = learnchain_node::privacy::lock(&gate).subscribe();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        changes.borrow_and_update();
        if learnchain_node::privacy::lock(&gate).stopped() {
            return Ok(());
        }
        tokio::time::timeout_at(deadline, changes.changed()).await.context("the data source never stopped")??;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_source_stops_at_its_budget_and_a_restart_does_not_reset_it() -> anyhow::Result<()> {
    use learnchain_node::privacy::{PrivacyConfig, lock};
    let mut net = Testnet::empty(Testnet::genesis(2))?;
    let g = net.genesis.clone();
    let miner = net.add(Kind::Miner, vec![]).await?;
    let boot = net.all_addrs();
    net.add(Kind::Source(0), boot.clone()).await?;
    net.add(Kind::Source(1), boot.clone()).await?;
    // Source 2 may afford exactly three rounds: ε(3 rounds) ≤ budget < ε(4 rounds).
    let d = g.policy_declaration();
    let (q, sigma, steps) = (d.sample_rate.to_f64(), d.noise_multiplier.to_f64(), u64::from(d.steps));
    let delta = g.privacy.delta.to_f64();
    let eps = |rounds: u64| learnchain_privacy::Accountant::Pld.epsilon(q, sigma, rounds * steps, delta).map(|s| s.epsilon);
    let budget = (eps(3)? + eps(4)?) / 2.0;
    net.privacy = PrivacyConfig { epsilon_budget: budget, ..PrivacyConfig::default() };
    let limited = net.add(Kind::Source(2), boot).await?;

    wait_privacy_stopped(&net, limited).await?;
    let (recorded, spent) = {
        let gate = net.node(limited)?.api.privacy.clone().expect("data source");
        let g = lock(&gate);
        (g.ledger().rounds().to_vec(), g.ledger().spent().epsilon)
    };
    assert_eq!(recorded.len(), 3, "exactly the rounds the budget allows: {recorded:?}");
    assert!(spent <= budget);
    // Over JSON-RPC, too.
    let addr = net.node(limited)?.rpc_addr.expect("rpc");
    let status = learnchain_rpc::client::call(addr, "privacy_status", serde_json::Value::Null).await?;
    assert_eq!(status["stopped"], true);
    assert_eq!(status["rounds_contributed"], 3);

    // The chain goes on without it, and every update of it that reached a block was charged.
    let stop_height = net.head(miner)?.meta.height;
    net.wait_height(miner, stop_height + 3, T).await?;
    // Only the key's holder can tell its submissions: their round tags are its linking tags.
    let key = Testnet::member_key(2);
    let included = net.rounds_of(miner, &key)?;
    let recorded_rounds: Vec<u64> = recorded.iter().map(|r| r.round).collect();
    assert!(included.iter().all(|r| recorded_rounds.contains(r)), "included {included:?}, recorded {recorded_rounds:?}");

    // A restart reads the ledger and stops again at once; nothing is reset.
    net.stop(limited).await?;
    net.restart(limited, net.all_addrs()).await?;
    wait_privacy_stopped(&net, limited).await?;
    let gate = net.node(limited)?.api.privacy.clone().expect("data source");
    assert_eq!(lock(&gate).ledger().rounds().len(), 3);
    net.shutdown().await;
    Ok(())
}

/// A data source that was down while the chain moved on downloads the blocks it missed
/// without training on them: every head passing by during the catch-up is already old, so
/// an update on it would be refused as stale and still cost ε. Its ledger gains no round
/// at or below the height the network had reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_source_catching_up_spends_no_epsilon_on_old_heads() -> anyhow::Result<()> {
    use learnchain_node::privacy::lock;
    let mut net = Testnet::empty(Testnet::genesis(2))?;
    let miner = net.add(Kind::Miner, vec![]).await?;
    let boot = net.all_addrs();
    for s in [0, 1, 2] {
        net.add(Kind::Source(s), boot.clone()).await?;
    }
    let late = 3;
    net.wait_height(late, 2, T).await?;
    net.stop(late).await?;
    let stopped_at = net.head(miner)?.meta.height;
    net.wait_height(miner, stopped_at + 12, T).await?;
    net.set_mining(false);
    let reached = net.wait_agree(&[0, 1, 2], T).await?.meta.height;
    net.restart(late, boot).await?;
    let before = lock(&net.node(late)?.api.privacy.clone().expect("data source")).ledger().rounds().len();
    net.wait_agree(&[0, late], T).await?;
    net.set_mining(true);
    net.wait_height(miner, reached + 2, T).await?;
    let gate = net.node(late)?.api.privacy.clone().expect("data source");
    let rounds: Vec<u64> = lock(&gate).ledger().rounds()[before..].iter().map(|r| r.round).collect();
    assert!(!rounds.is_empty(), "it trains again once caught up");
    assert!(rounds.iter().all(|&r| r > reached), "rounds charged after the restart {rounds:?}; the network was at {reached}");
    net.shutdown().await;
    Ok(())
}

/// The enrolment authority registers a fourth data source over JSON-RPC; it submits from
/// the block after the one that registered it; the authority revokes it and its updates
/// stop. Blocks never show which member sent an update; only the key's holder can find its
/// own by their round tags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authority_registers_and_revokes_a_member_over_rpc() -> anyhow::Result<()> {
    use learnchain_chain::registry::{authorised_registration, revocation};
    let authority = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
    let mut g = Testnet::genesis_with_members(2, 0..2);
    g.enrolment.authority = Some(learnchain_proto::Hash32(authority.verifying_key().to_bytes()));
    let mut net = Testnet::empty(g)?;
    let miner = net.add(Kind::Miner, vec![]).await?;
    for s in [0, 1, 3] {
        let boot = net.all_addrs();
        net.add(Kind::Source(s), boot).await?;
    }
    let newcomer = Testnet::member_key(3);
    let id = Testnet::member_id(3);
    let chain_id = net.genesis.chain_id();
    net.wait_height(miner, 2, T).await?;
    assert!(net.rounds_of(miner, &newcomer)?.is_empty(), "not a member yet");

    let addr = net.node(miner)?.rpc_addr.expect("rpc");
    let reg = authorised_registration(&chain_id, &authority, &newcomer, &mut rand::rngs::OsRng);
    let answer = learnchain_rpc::client::members_register(addr, &hex::encode(learnchain_proto::encode(&reg))).await?;
    assert_eq!(answer, reg.id().to_hex());
    let registered = net.wait_until(miner, "the registry holds the newcomer", |c| Ok(c.registry().is_active(&id)), T).await?;
    let at = registered.meta.height;
    let mut waited = 0;
    while net.rounds_of(miner, &newcomer)?.is_empty() {
        net.wait_height(miner, at + 1 + waited, T).await?;
        waited += 1;
        anyhow::ensure!(waited < 20, "no update of the newcomer in 20 blocks");
    }
    let first = net.rounds_of(miner, &newcomer)?[0];
    assert!(first > at, "submitted in round {first}, registered in block {at}");

    // Over RPC: the registry with heights, and blocks showing round tags, not members.
    let members = learnchain_rpc::client::members_list(addr).await?;
    let entry = members.members.iter().find(|m| m.key == id.to_hex()).expect("listed");
    assert_eq!((entry.registered_at, entry.revoked_at, entry.active), (at, None, true));
    assert_eq!(members.active, 3);
    let block = learnchain_rpc::client::call(addr, "chain_getBlock", serde_json::json!([first])).await?;
    let text = block.to_string();
    assert!(!text.contains(&id.to_hex()), "a block view names a member key: {text}");
    assert!(text.contains("round_tag"));

    // Revoked: its submissions end with the block after the revoking one.
    let rev = revocation(&chain_id, &authority, &id);
    learnchain_rpc::client::members_register(addr, &hex::encode(learnchain_proto::encode(&rev))).await?;
    let revoked = net
        .wait_until(miner, "the registry revokes the newcomer", |c| Ok(c.registry().record(&id).is_some_and(|r| r.revoked_at.is_some())), T)
        .await?;
    net.wait_height(miner, revoked.meta.height + 3, T).await?;
    // The revocation's height is read once the chain has moved on: a fork at the height it
    // was first seen may have carried it into the next block instead.
    let members = learnchain_rpc::client::members_list(addr).await?;
    let entry = members.members.iter().find(|m| m.key == id.to_hex()).expect("listed");
    let end = entry.revoked_at.expect("still revoked");
    assert!(!entry.active);
    let rounds = net.rounds_of(miner, &newcomer)?;
    assert!(rounds.iter().all(|&r| r <= end), "updates after the revocation at {end}: {rounds:?}");
    net.shutdown().await;
    Ok(())
}

/// Under open enrolment a data source whose key no block has registered stamps its own
/// registration, gossips it, and contributes once a block has included it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_source_enrols_itself_under_open_enrolment() -> anyhow::Result<()> {
    let mut g = Testnet::genesis_with_members(2, 0..2);
    g.enrolment.open_stamp_bits = 10;
    let mut net = Testnet::empty(g)?;
    let miner = net.add(Kind::Miner, vec![]).await?;
    for s in [0, 1, 2] {
        let boot = net.all_addrs();
        net.add(Kind::Source(s), boot).await?;
    }
    let id = Testnet::member_id(2);
    let registered = net.wait_until(miner, "the registry holds source 2", |c| Ok(c.registry().is_active(&id)), T).await?;
    let newcomer = Testnet::member_key(2);
    let mut h = registered.meta.height;
    while net.rounds_of(miner, &newcomer)?.is_empty() {
        h += 1;
        net.wait_height(miner, h, T).await?;
        anyhow::ensure!(h < registered.meta.height + 20, "no update of the enrolled source in 20 blocks");
    }
    net.shutdown().await;
    Ok(())
}

/// A chain with no members yet: the first data source's registration reaches only an
/// observer (no miner is up), so no block can carry it and no head ever changes to make the
/// data source offer it again. A miner that connects later pulls the observer's pending
/// registrations and mines them: the network starts by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_that_joins_later_pulls_a_pending_registration() -> anyhow::Result<()> {
    let mut g = Testnet::genesis_with_members(1, 0..0);
    g.enrolment.open_stamp_bits = 8;
    let mut net = Testnet::empty(g)?;
    let observer = net.add(Kind::Observer, vec![]).await?;
    let boot = net.all_addrs();
    net.add(Kind::Source(0), boot.clone()).await?;
    let mut pool = net.node(observer)?.svc.pool_status();
    tokio::time::timeout(T, pool.wait_for(|p| p.registrations >= 1)).await??;
    // What the observer serves to a peer that asks.
    let served = learnchain_node::sync::serve(&net.node(observer)?.svc, learnchain_proto::SyncRequest::PendingRegistrations).into_value();
    match served {
        learnchain_proto::SyncResponse::Registrations(r) => {
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].member, Testnet::member_id(0));
        }
        other => panic!("pending registrations answered with {other:?}"),
    }
    let miner = net.add(Kind::Miner, boot).await?;
    let id = Testnet::member_id(0);
    net.wait_until(miner, "the registry holds source 0", |c| Ok(c.registry().is_active(&id)), T).await?;
    net.shutdown().await;
    Ok(())
}

/// Runs a miner, three honest data sources, one adversary of `kind` and an observer under
/// `rule` for `blocks` blocks; returns the observer's test accuracy of the head model.
async fn accuracy_under_attack(rule: &str, kind: &'static str, blocks: u64) -> anyhow::Result<f64> {
    let mut g = Testnet::genesis(4);
    g.consensus.aggregation = rule.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let mut net = Testnet::empty(g)?;
    let mut boot = Vec::new();
    for k in [Kind::Miner, Kind::Source(0), Kind::Source(1), Kind::Source(2), Kind::Adversary(3, kind), Kind::Observer] {
        let i = net.add(k, boot.clone()).await?;
        boot.extend(net.node(i)?.listen_addrs.iter().map(ToString::to_string));
    }
    let observer = 5;
    let head = net.wait_height(observer, blocks, T).await?;
    // Every block carried the adversary's update too (4 submissions each): the rule, not
    // a missing submission, made the difference.
    let addr = net.node(observer)?.rpc_addr.expect("rpc");
    let report = learnchain_rpc::client::aggregate_report(addr, learnchain_rpc::BlockRef::Height(head.meta.height)).await?;
    assert_eq!(report.submissions.len(), 4, "{report:?}");
    assert_eq!(report.rule, rule);
    let m = learnchain_rpc::client::call(addr, "model_metrics", serde_json::json!([head.meta.height])).await?;
    let acc = m["accuracy"].as_f64().expect("accuracy");
    let info = learnchain_rpc::client::call(net.node(4)?.rpc_addr.expect("rpc"), "node_info", serde_json::Value::Null).await?;
    assert_eq!(info["adversary"], kind, "the adversary says so in node_info");
    net.shutdown().await;
    Ok(acc)
}

/// One data source of four flips the sign of its update (×10, shrunk onto the norm bound
/// the validators allow): under the mean the model is dragged away; under the median and
/// l-nearest it learns as if the adversary were not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robust_rule_beats_the_mean_against_a_sign_flipping_source() -> anyhow::Result<()> {
    let blocks = 8;
    let mean = accuracy_under_attack("mean", "sign-flip:10", blocks).await?;
    let median = accuracy_under_attack("median", "sign-flip:10", blocks).await?;
    let nearest = accuracy_under_attack("l-nearest:2", "sign-flip:10", blocks).await?;
    eprintln!("accuracy after {blocks} blocks with one sign-flip:10 source of 4: mean {mean:.3}, median {median:.3}, l-nearest:2 {nearest:.3}");
    assert!(median >= 0.9 && nearest >= 0.9, "robust rules learn: median {median}, l-nearest {nearest}");
    assert!(median > mean + 0.1 && nearest > mean + 0.1, "mean {mean} vs median {median}, l-nearest {nearest}");
    Ok(())
}

/// The block the data sources trained on loses to a sibling (another miner's block at the
/// same height, same body, lower hash): each data source signs the same update again for
/// the winner — same round tag, new base — and its privacy ledger gains no round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_source_whose_block_loses_to_a_sibling_resubmits_without_spending_epsilon() -> anyhow::Result<()> {
    use anyhow::Context;
    use learnchain_node::privacy::lock;
    use learnchain_node::service::Origin;
    use learnchain_proto::Hash32;

    let net = Testnet::new(&[Kind::Miner, Kind::Source(0), Kind::Source(1), Kind::Observer]).await?;
    let all = net.running();
    let (sources, observer) = ([1usize, 2], 3usize);
    net.wait_height(observer, 2, T).await?;
    net.set_mining(false);
    let head = net.wait_agree(&all, T).await?;
    // Both sources train on the head; their updates reach the observer's pool.
    let obs = net.node(observer)?;
    let mut pool = obs.svc.pool_status();
    let full = |base: Hash32| move |p: &learnchain_node::service::PoolStatus| p.base == base && p.count == 2;
    tokio::time::timeout(T, pool.wait_for(full(head.meta.hash))).await.context("the head's updates never pooled")??;
    let tags = |svc: &learnchain_node::service::ChainService| {
        let mut t: Vec<Hash32> = svc.lock().pool.submissions().iter().map(|s| s.round_tag()).collect();
        t.sort();
        t
    };
    let tags_before = tags(&obs.svc);
    let ledger = |i: usize| -> anyhow::Result<usize> {
        let gate = net.node(i)?.api.privacy.clone().context("a data source")?;
        Ok(lock(&gate).ledger().rounds().len())
    };
    let rounds_before = sources.iter().map(|&i| ledger(i)).collect::<anyhow::Result<Vec<_>>>()?;

    let block = obs.svc.lock().chain.block(&head.meta.hash)?.context("the head block")?;
    // A solved sibling's hash is uniform below the target, so N tries all land above the
    // head's with probability 1/(N + 1) on average: 4096 keep that below 0.03%.
    let mut sibling = block.clone();
    let target = block.hash();
    sibling.header = tokio::task::spawn_blocking(move || {
        let mut header = sibling.header.clone();
        for key in 1u16..=4096 {
            let mut miner = [0u8; 32];
            miner[..2].copy_from_slice(&key.to_le_bytes());
            miner[2] = 0xa5;
            header.miner = Hash32(miner);
            learnchain_chain::testing::solve(&mut header);
            if header.hash() < target {
                break;
            }
        }
        header
    })
    .await?;
    anyhow::ensure!(sibling.hash() < block.hash(), "no sibling with a lower hash in 4096 tries");
    for &i in &all {
        // Some nodes may have it by gossip already.
        let _ = net.node(i)?.svc.import_block(sibling.clone(), Origin::Sync);
    }
    let agreed = net.wait_agree(&all, T).await?;
    assert_eq!(agreed.meta.hash, sibling.hash(), "every node took the sibling");
    tokio::time::timeout(T, pool.wait_for(full(sibling.hash())))
        .await
        .context("the updates were not submitted again for the sibling")??;
    assert_eq!(tags(&obs.svc), tags_before, "the same members' updates, one per member, for the same round");
    assert!(obs.svc.lock().pool.submissions().iter().all(|s| s.base == sibling.hash()));
    let rounds_after = sources.iter().map(|&i| ledger(i)).collect::<anyhow::Result<Vec<_>>>()?;
    assert_eq!(rounds_after, rounds_before, "no privacy budget was spent on the sibling");

    // And the round goes on from the sibling.
    net.set_mining(true);
    net.wait_height(observer, agreed.meta.height + 1, T).await?;
    net.shutdown().await;
    Ok(())
}

/// One input scaling for the whole network: four data sources, each with its own CSV of a
/// non-iid (Dirichlet 0.5) shard of raw breast-cancer rows, whose class mixes and feature
/// statistics differ. The genesis carries the transform; every node's training inputs are
/// exactly `(x − centre) / scale` of its raw rows with the genesis values (nothing fitted
/// on its own shard), and the network trains and agrees. A CSV with another column layout
/// is refused with the column named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_scales_its_non_iid_shard_with_the_agreed_transform() -> anyhow::Result<()> {
    use learnchain_model::data::{self, apply_transform, fit_transform};
    use learnchain_node::DataConfig;

    let full = data::builtin("breast-cancer")?;
    let (train, _) = full.split(0.2, 42)?;
    let transform = fit_transform(&train)?;
    let mut genesis = Testnet::genesis(2);
    genesis.model.input = Some(transform.clone());
    genesis.validate()?;
    let mut net = Testnet::empty(genesis)?;
    let shards = train.partition_dirichlet(Testnet::SHARDS, 0.5, 7)?;
    let mut raw = Vec::new();
    let boot = {
        net.add(Kind::Miner, vec![]).await?;
        net.all_addrs()
    };
    for (s, shard) in shards.iter().enumerate().take(2) {
        let path = net.dir.path().join(format!("shard-{s}.csv"));
        data::write_csv(shard, "label", std::fs::File::create(&path)?)?;
        let cfg = DataConfig {
            source: Some(format!("csv:{}", path.display())),
            test_fraction: 0.0,
            evaluate: false,
            ..DataConfig::default()
        };
        net.add_with_data(Kind::Source(s), Some(cfg), boot.clone()).await?;
        raw.push(shard.clone());
    }
    // The shards really are non-iid: their class mixes differ.
    let share = |d: &data::Dataset| d.y.iter().filter(|&&y| y == 1).count() as f64 / d.len() as f64;
    assert!((share(&raw[0]) - share(&raw[1])).abs() > 0.05, "{} vs {}", share(&raw[0]), share(&raw[1]));
    for (s, shard) in raw.iter().enumerate() {
        let node = net.node(s + 1)?;
        let seen = node.training_data.as_ref().expect("a data source's training data");
        let mut expected = shard.clone();
        apply_transform(&transform, &mut expected)?;
        // A node's split of its own file reorders rows: compare as sorted rows.
        let rows = |d: &data::Dataset| {
            let mut r: Vec<Vec<u64>> = d.x.rows().into_iter().map(|r| r.iter().map(|v| v.to_bits()).collect()).collect();
            r.sort();
            r
        };
        assert_eq!(rows(seen), rows(&expected), "node {} scales with the genesis transform", s + 1);
    }
    net.wait_height(0, 2, T).await?;
    net.wait_agree(&net.running(), T).await?;

    // A data source whose CSV has its columns in another order is refused, naming them.
    let mut swapped = raw[0].clone();
    swapped.feature_names.swap(0, 1);
    let path = net.dir.path().join("swapped.csv");
    data::write_csv(&swapped, "label", std::fs::File::create(&path)?)?;
    let cfg = DataConfig { source: Some(format!("csv:{}", path.display())), test_fraction: 0.0, ..DataConfig::default() };
    let err = net.add_with_data(Kind::Source(2), Some(cfg), boot).await.expect_err("columns out of order");
    let msg = format!("{err:#}");
    assert!(msg.contains("column 1 is `mean texture`") && msg.contains("`mean radius`"), "{msg}");
    net.shutdown().await;
    Ok(())
}
