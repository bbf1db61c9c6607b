//! What each subcommand does.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use learnchain_proto::{Architecture, Genesis, Hash32, Probability};

use crate::cli::{DevnetArgs, GenesisCommand, GenesisNewArgs, KeysCommand, PrivacyCommand, RunArgs};
use crate::config::NodeConfig;
use crate::devnet::{self, DevnetOptions};
use crate::keys;

/// Reads and validates a genesis file.
pub fn load_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read genesis file {}", path.display()))?;
    if meta.len() > 16 * 1024 * 1024 {
        bail!("genesis file {} is larger than 16 MiB", path.display());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read genesis file {}", path.display()))?;
    Genesis::from_toml_str(&text).with_context(|| format!("genesis file {} is invalid", path.display()))
}

/// The node config from a file and flags.
pub fn node_config(args: RunArgs) -> anyhow::Result<NodeConfig> {
    let mut c = match &args.config {
        Some(p) => NodeConfig::load(p)?,
        None => NodeConfig::default(),
    };
    if let Some(v) = args.name { c.name = v; }
    if let Some(v) = args.data_dir { c.data_dir = v; }
    if let Some(v) = args.genesis { c.genesis = v; }
    if !args.roles.is_empty() { c.roles = args.roles; }
    if !args.listen.is_empty() { c.listen = args.listen; }
    if !args.bootnodes.is_empty() { c.bootnodes = args.bootnodes; }
    if let Some(v) = args.rpc { c.rpc = v; }
    if let Some(v) = args.data { c.data.source = Some(v); }
    if let Some(v) = args.label_column { c.data.label_column = v; }
    if let Some(v) = args.split { c.data.split = v; }
    if let Some(v) = args.shards { c.data.shards = v; }
    if let Some(v) = args.shard { c.data.shard = v; }
    if let Some(v) = args.partition { c.data.partition = v; }
    if let Some(v) = args.member_key { c.member_key = Some(v); }
    if let Some(v) = args.epsilon_budget { c.privacy.epsilon_budget = v; }
    if let Some(v) = args.delta { c.privacy.delta = Some(v); }
    if let Some(v) = args.noise_multiplier { c.privacy.noise_multiplier = Some(v); }
    if let Some(v) = args.sample_rate { c.privacy.sample_rate = Some(v); }
    if let Some(v) = args.clip { c.privacy.clip = Some(v); }
    c.validate()?;
    Ok(c)
}

/// `learnchain run`.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = node_config(args)?;
    let genesis = load_genesis(&config.genesis)?;
    crate::node::run(config, genesis, shutdown_signal()).await
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// `learnchain devnet`.
pub async fn devnet(args: DevnetArgs) -> anyhow::Result<()> {
    if args.blocks == 0 {
        bail!("--blocks must be at least 1");
    }
    let opts = DevnetOptions {
        data_dir: args.data_dir,
        blocks: args.blocks,
        summary_json: args.summary_json,
        miners: args.miners,
        data_sources: args.data_sources,
        dataset: args.dataset,
        block_interval_ms: args.block_interval_ms,
        timeout: Duration::from_secs(args.timeout_s),
        epsilon_budget: args.epsilon_budget,
        delta: args.delta,
        noise_multiplier: args.noise_multiplier,
        verbose: true,
    };
    let summary = tokio::select! {
        s = devnet::run(opts) => s?,
        _ = shutdown_signal() => bail!("interrupted"),
    };
    if !summary.nodes_agree {
        bail!("nodes did not agree on the head");
    }
    Ok(())
}

fn new_genesis(a: GenesisNewArgs) -> anyhow::Result<()> {
    let mut members = Vec::new();
    for m in &a.members {
        members.push(Hash32::from_hex(m).map_err(|e| anyhow::anyhow!("--member {m:?}: {e}"))?);
    }
    for f in &a.member_keys {
        let seed = keys::read_seed(f)?;
        members.push(Hash32(ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes()));
    }
    if members.is_empty() {
        bail!("give at least one --member or --member-key");
    }
    let (features, classes) = match (a.dataset.as_deref(), a.features, a.classes) {
        (Some(name), _, _) => {
            let d = learnchain_model::data::builtin(name)?;
            (d.features() as u32, d.classes)
        }
        (None, Some(f), Some(c)) => (f, c),
        _ => bail!("give --dataset NAME, or --features and --classes"),
    };
    let mut g = Genesis::template(&a.name, features, classes, members);
    g.timestamp_ms = learnchain_chain::now_ms();
    match a.architecture.as_str() {
        "softmax" => {}
        "mlp" => {
            g.model.architecture = Architecture::Mlp;
            g.model.hidden = a.hidden;
            let params = g.model.param_count();
            let sub = 4 * params + learnchain_proto::genesis::SUBMISSION_OVERHEAD_BYTES;
            g.limits.max_submission_bytes = g.limits.max_submission_bytes.max(sub);
            g.limits.max_block_bytes = g.limits.max_block_bytes.max(2048 + u64::from(g.consensus.max_submissions) * sub);
            g.limits.max_sync_response_bytes = g.limits.max_sync_response_bytes.max(g.limits.max_block_bytes * 4);
        }
        other => bail!("--architecture {other:?}: expected softmax or mlp"),
    }
    if let Some(q) = a.quorum {
        g.consensus.quorum = q;
    }
    g.pow.block_interval_ms = a.block_interval_ms;
    g.pow.initial_target = learnchain_proto::genesis::target_for_difficulty(a.initial_difficulty);
    if g.pow.initial_target > g.pow.pow_limit {
        g.pow.pow_limit = g.pow.initial_target;
    }
    let f6 = crate::privacy::fixed;
    g.privacy.min_noise_multiplier = f6("min-noise-multiplier", a.min_noise_multiplier)?;
    g.privacy.clip_bound = f6("clip-bound", a.clip_bound)?;
    g.privacy.max_sample_rate = f6("max-sample-rate", a.max_sample_rate)?;
    g.privacy.delta = Probability::from_f64(a.delta).map_err(|e| anyhow::anyhow!("--delta: {e}"))?;
    g.training.local_steps = a.local_steps;
    g.privacy.max_local_steps = a.local_steps;
    g.validate()?;
    if a.out.exists() {
        bail!("{} exists; not overwriting", a.out.display());
    }
    std::fs::write(&a.out, g.to_toml_string()).with_context(|| format!("cannot write {}", a.out.display()))?;
    println!("wrote {} (chain id {})", a.out.display(), g.chain_id());
    Ok(())
}

/// `learnchain genesis …`.
pub fn genesis(cmd: GenesisCommand) -> anyhow::Result<()> {
    match cmd {
        GenesisCommand::New(a) => new_genesis(a),
        GenesisCommand::Show { file } => {
            let g = load_genesis(&file)?;
            println!("name:       {}", g.name);
            println!("chain id:   {}", g.chain_id());
            println!("model:      {:?}, {} parameters", g.model.architecture, g.model.param_count());
            println!("members:    {}", g.members.len());
            println!("quorum:     {} (max {} per block)", g.consensus.quorum, g.consensus.max_submissions);
            println!("aggregation: {:?}", g.consensus.aggregation);
            Ok(())
        }
    }
}

/// `learnchain keys …`.
pub fn keys_cmd(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::New { file } => {
            if file.exists() {
                bail!("{} exists; not overwriting", file.display());
            }
            let key = keys::member_key(&file)?;
            println!("{}", hex::encode(key.verifying_key().to_bytes()));
            Ok(())
        }
        KeysCommand::Show { file } => {
            let seed = keys::read_seed(&file)?;
            println!("{}", hex::encode(ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes()));
            Ok(())
        }
    }
}

/// One privacy plan, as printed by `learnchain privacy`.
#[derive(Debug, serde::Serialize)]
pub struct PrivacyPlan {
    /// ε spent.
    pub epsilon: f64,
    /// δ.
    pub delta: f64,
    /// σ.
    pub noise_multiplier: f64,
    /// q.
    pub sample_rate: f64,
    /// Steps.
    pub steps: u64,
    /// The RDP order at which ε is smallest.
    pub alpha: f64,
}

/// Computes the plan for a `learnchain privacy` command.
pub fn privacy_plan(cmd: &PrivacyCommand) -> anyhow::Result<PrivacyPlan> {
    use learnchain_privacy::{epsilon, noise_for_epsilon};
    let (q, sigma, steps, delta) = match *cmd {
        PrivacyCommand::Epsilon { sample_rate, noise_multiplier, steps, delta, .. } => {
            (sample_rate, noise_multiplier, steps, delta)
        }
        PrivacyCommand::Noise { target_epsilon, delta, sample_rate, steps, .. } => {
            let sigma = noise_for_epsilon(target_epsilon, delta, sample_rate, steps)?;
            (sample_rate, sigma, steps, delta)
        }
    };
    let spent = epsilon(q, sigma, steps, delta)?;
    Ok(PrivacyPlan { epsilon: spent.epsilon, delta, noise_multiplier: sigma, sample_rate: q, steps, alpha: spent.alpha })
}

/// `learnchain privacy …`.
pub fn privacy(cmd: PrivacyCommand) -> anyhow::Result<()> {
    let plan = privacy_plan(&cmd)?;
    let json = match cmd {
        PrivacyCommand::Epsilon { json, .. } | PrivacyCommand::Noise { json, .. } => json,
    };
    if json {
        println!("{}", serde_json::to_string(&plan)?);
    } else {
        match cmd {
            PrivacyCommand::Epsilon { .. } => println!(
                "epsilon = {:.6} at delta = {} (q = {}, sigma = {}, {} steps; best RDP order {})",
                plan.epsilon, plan.delta, plan.sample_rate, plan.noise_multiplier, plan.steps, plan.alpha
            ),
            PrivacyCommand::Noise { .. } => println!(
                "noise multiplier = {:.6} gives epsilon = {:.6} at delta = {} (q = {}, {} steps; best RDP order {})",
                plan.noise_multiplier, plan.epsilon, plan.delta, plan.sample_rate, plan.steps, plan.alpha
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privacy_plans() {
        let p = privacy_plan(&PrivacyCommand::Epsilon {
            sample_rate: 0.01,
            noise_multiplier: 1.1,
            steps: 1000,
            delta: 1e-5,
            json: true,
        })
        .expect("plan");
        assert!((p.epsilon - 1.7118).abs() < 0.01 * 1.7118, "{}", p.epsilon);
        let n = privacy_plan(&PrivacyCommand::Noise {
            target_epsilon: 1.7118,
            delta: 1e-5,
            sample_rate: 0.01,
            steps: 1000,
            json: true,
        })
        .expect("plan");
        assert!((n.noise_multiplier - 1.1).abs() < 0.01, "{}", n.noise_multiplier);
        assert!(n.epsilon <= 1.7118 + 1e-9);
        let bad = privacy_plan(&PrivacyCommand::Epsilon {
            sample_rate: 1.5,
            noise_multiplier: 1.1,
            steps: 1,
            delta: 1e-5,
            json: false,
        });
        assert!(bad.is_err());
    }
}
