//! What each subcommand does.

use std::time::Duration;

use anyhow::{Context, bail};
use learnchain_proto::{Architecture, Genesis, Hash32, Probability};

use ed25519_dalek::SigningKey;
use learnchain_identity::MemberSecret;
use learnchain_identity::keystore::{self, KdfParams};

use crate::cli::{DevnetArgs, GenesisCommand, GenesisNewArgs, KeysCommand, MembersCommand, PlotArgs, PrivacyCommand, RunArgs, StatusArgs};
use crate::config::NodeConfig;
use crate::devnet::{self, DevnetOptions};
pub use crate::config::load_genesis;
use crate::keys;


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
    if let Some(v) = args.bootnode_timeout_s { c.bootnode_timeout_s = v; }
    if let Some(v) = args.target_peers { c.target_peers = v; }
    if let Some(v) = args.max_peers { c.max_peers = v; }
    if args.mdns { c.mdns = true; }
    if let Some(v) = args.prune { c.prune = Some(v); }
    if let Some(v) = args.sync { c.sync = v; }
    if let Some(v) = args.store_cache_mib { c.store_cache_mib = v; }
    if let Some(v) = args.rpc { c.rpc = v; }
    if let Some(v) = args.metrics { c.metrics = Some(v); }
    if let Some(v) = args.data { c.data.source = Some(v); }
    if let Some(v) = args.label_column { c.data.label_column = v; }
    if let Some(v) = args.split { c.data.split = v; }
    if let Some(v) = args.shards { c.data.shards = v; }
    if let Some(v) = args.shard { c.data.shard = v; }
    if let Some(v) = args.partition { c.data.partition = v; }
    if let Some(v) = args.member_key { c.member_key = Some(v); }
    if let Some(v) = args.passphrase_file { c.member_key_passphrase_file = Some(v); }
    if let Some(v) = args.epsilon_budget { c.privacy.epsilon_budget = v; }
    if let Some(v) = args.delta { c.privacy.delta = Some(v); }
    if let Some(v) = args.noise_multiplier { c.privacy.noise_multiplier = Some(v); }
    if let Some(v) = args.sample_rate { c.privacy.sample_rate = Some(v); }
    if let Some(v) = args.clip { c.privacy.clip = Some(v); }
    if let Some(v) = args.accountant { c.privacy.accountant = v; }
    if let Some(v) = args.adversary { c.adversary = Some(v); }
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
        plot: args.plot,
        miners: args.miners,
        data_sources: args.data_sources,
        dataset: args.dataset,
        block_interval_ms: args.block_interval_ms,
        timeout: Duration::from_secs(args.timeout_s),
        epsilon_budget: args.epsilon_budget,
        delta: args.delta,
        noise_multiplier: args.noise_multiplier,
        aggregation: args.aggregation.parse().map_err(|e: String| anyhow::anyhow!("--aggregation: {e}"))?,
        update_encoding: args.update_encoding.parse().map_err(|e: String| anyhow::anyhow!("--update-encoding: {e}"))?,
        // `--hidden 0` (the default) is softmax regression.
        hidden: if args.hidden == [0] { Vec::new() } else { args.hidden },
        partition: {
            crate::data::parse_partition(&args.partition).context("--partition")?;
            args.partition
        },
        local_steps: args.local_steps,
        learning_rate: args.learning_rate,
        sample_rate: {
            if !(args.sample_rate > 0.0 && args.sample_rate <= 1.0) {
                bail!("--sample-rate must be in (0, 1], got {}", args.sample_rate);
            }
            args.sample_rate
        },
        adversaries: args.adversaries,
        adversary: args.adversary.parse().map_err(|e: String| anyhow::anyhow!("--adversary: {e}"))?,
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

/// `learnchain plot`: a CSV table as a chart.
pub fn plot(a: PlotArgs) -> anyhow::Result<()> {
    crate::plot::check_output(&a.output).context("--output")?;
    let table = crate::plot::table::read_table(&a.input).with_context(|| format!("cannot plot {}", a.input.display()))?;
    let opts = crate::plot::table::TableOptions {
        title: a.title,
        x_label: a.x_label,
        y_label: a.y_label,
        y2_label: a.y2_label,
        columns: a.columns,
        right: a.right,
        bars: a.bars,
        log_x: a.log_x,
    };
    let name = a.input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let chart = crate::plot::table::table_chart(&table, &opts, &name).with_context(|| format!("cannot plot {}", a.input.display()))?;
    crate::plot::write(&chart, &a.output).with_context(|| format!("cannot write {}", a.output.display()))
}

/// `learnchain status`.
pub async fn status(a: StatusArgs) -> anyhow::Result<()> {
    let addr: std::net::SocketAddr =
        a.rpc.parse().map_err(|e| anyhow::anyhow!("--rpc {:?} is not an IP:port address: {e}", a.rpc))?;
    if a.timeout_s == 0 {
        bail!("--timeout-s must be at least 1");
    }
    let s = crate::status::fetch(addr, Duration::from_secs(a.timeout_s)).await?;
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!("{}", s.line());
    }
    Ok(())
}

fn new_genesis(a: GenesisNewArgs) -> anyhow::Result<()> {
    if a.keep_existing && a.out.exists() {
        let g = load_genesis(&a.out).with_context(|| {
            format!("--keep-existing: {} exists but is not a valid genesis; move it away to write a new one", a.out.display())
        })?;
        println!("kept {} (chain id {})", a.out.display(), g.chain_id());
        return Ok(());
    }
    let mut members = Vec::new();
    for m in &a.members {
        members.push(Hash32::from_hex(m).map_err(|e| anyhow::anyhow!("--member {m:?}: {e}"))?);
    }
    for f in &a.member_keys {
        let public = learnchain_identity::keystore::read_public(f)?;
        members.push(Hash32(public.to_bytes()));
    }
    let authority = match &a.authority_key {
        Some(f) => Some(Hash32(keys::authority_key(f)?.verifying_key().to_bytes())),
        None => None,
    };
    if members.is_empty() && authority.is_none() && a.open_stamp_bits == 0 {
        bail!("give at least one --member or --member-key, or allow enrolment (--authority-key or --open-stamp-bits)");
    }
    let input_from = a.input_from.clone().or_else(|| a.dataset.as_ref().map(|name| format!("builtin:{name}")));
    let input = match &input_from {
        Some(source) => Some(crate::data::reference_transform(source, &a.label).context("--input-from")?),
        None => None,
    };
    let (features, classes) = match (&input, a.features, a.classes) {
        (Some(t), _, _) => (t.features.len() as u32, t.classes.len() as u32),
        (None, Some(f), Some(c)) => {
            eprintln!(
                "note: the genesis has no [model.input]: each node will standardize features with its own data's \
                 statistics, and an exported model cannot say how to scale its inputs; give --input-from to agree one"
            );
            (f, c)
        }
        _ => bail!("give --dataset NAME or --input-from builtin:NAME|csv:FILE, or --features and --classes"),
    };
    let mut g = Genesis::template(&a.name, features, classes, members);
    g.model.input = input;
    g.timestamp_ms = learnchain_chain::now_ms();
    g.enrolment.authority = authority;
    g.enrolment.open_stamp_bits = a.open_stamp_bits;
    if let Some(r) = a.ring_size {
        g.consensus.ring_size = r;
    }
    match a.architecture.as_str() {
        "softmax" => {}
        "mlp" => {
            g.model.architecture = Architecture::Mlp;
            g.model.hidden = a.hidden.clone();
        }
        other => bail!("--architecture {other:?}: expected softmax or mlp"),
    }
    g.fit_limits();
    if let Some(q) = a.quorum {
        g.consensus.quorum = q;
    }
    g.consensus.aggregation = a.aggregation.parse().map_err(|e: String| anyhow::anyhow!("--aggregation: {e}"))?;
    g.consensus.update_encoding =
        a.update_encoding.parse().map_err(|e: String| anyhow::anyhow!("--update-encoding: {e}"))?;
    let needed = g.consensus.aggregation.min_inputs() as u32;
    if a.quorum.is_none() && g.consensus.quorum < needed {
        // The quorum defaults to the member count; a rule that needs more raises it.
        g.consensus.quorum = needed;
    }
    g.consensus.max_submissions = g.consensus.max_submissions.max(g.consensus.quorum);
    g.fit_limits();
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
        GenesisCommand::New(a) => new_genesis(*a),
        GenesisCommand::Show { file } => {
            let g = load_genesis(&file)?;
            println!("name:       {}", g.name);
            println!("chain id:   {}", g.chain_id());
            println!("model:      {:?}, {} parameters", g.model.architecture, g.model.param_count());
            println!("members:    {} (rings of at most {})", g.members.len(), g.consensus.ring_size);
            match &g.enrolment.authority {
                Some(a) => println!("enrolment:  authority {a}"),
                None => println!("enrolment:  no authority"),
            }
            if g.enrolment.open_stamp_bits > 0 {
                println!("            open, stamps of {} bits", g.enrolment.open_stamp_bits);
            }
            println!("quorum:     {} (max {} per block)", g.consensus.quorum, g.consensus.max_submissions);
            println!("aggregation: {}", g.consensus.aggregation);
            println!("update encoding: {}", g.consensus.update_encoding);
            Ok(())
        }
    }
}

/// `learnchain keys …`.
pub fn keys_cmd(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::New { file, authority: true, passphrase_file } => {
            if passphrase_file.is_some() {
                bail!("--passphrase-file seals member keys; an authority key is a 0600 seed file");
            }
            if file.exists() {
                bail!("{} exists; not overwriting", file.display());
            }
            let key = SigningKey::from_bytes(&keys::load_or_create_seed(&file)?);
            println!("{}", hex::encode(key.verifying_key().to_bytes()));
            Ok(())
        }
        KeysCommand::New { file, authority: false, passphrase_file } => {
            let pass = keys::passphrase(passphrase_file.as_deref())?;
            let key = MemberSecret::generate(&mut rand::rngs::OsRng);
            keystore::write_new(&file, &key, pass.as_ref().map(|p| p.as_str()), KdfParams::DEFAULT)?;
            println!("{}", key.public());
            if pass.is_none() {
                eprintln!(
                    "note: {} is not encrypted; give --passphrase-file or set {} to seal a key",
                    file.display(),
                    keys::PASSPHRASE_ENV
                );
            }
            Ok(())
        }
        KeysCommand::Show { file } => {
            match keystore::inspect(&file) {
                Ok(info) => {
                    println!("member key {}", info.public);
                    match info.kdf {
                        Some(k) => println!(
                            "encrypted: argon2id (m = {} KiB, t = {}, p = {}) + XChaCha20-Poly1305",
                            k.m_cost_kib, k.t_cost, k.p_cost
                        ),
                        None => println!("encrypted: no"),
                    }
                }
                Err(member_err) => match keys::authority_key(&file) {
                    Ok(key) => println!("ed25519 key {}", hex::encode(key.verifying_key().to_bytes())),
                    Err(_) => return Err(member_err.into()),
                },
            }
            Ok(())
        }
    }
}

/// `learnchain members …`.
pub async fn members_cmd(cmd: MembersCommand) -> anyhow::Result<()> {
    use learnchain_rpc::methods::{MEMBERS_LIST, MEMBERS_REGISTER, NODE_INFO};
    let addr = |rpc: &str| -> anyhow::Result<std::net::SocketAddr> {
        rpc.parse().with_context(|| format!("--rpc {rpc:?} is not an IP:port address"))
    };
    let call = |addr, method: &'static str, params: serde_json::Value| async move {
        learnchain_rpc::client::call(addr, method, params)
            .await
            .with_context(|| format!("{method} on the node at {addr}"))
    };
    match cmd {
        MembersCommand::List { rpc, json } => {
            let value = call(addr(&rpc)?, MEMBERS_LIST, serde_json::json!([])).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(());
            }
            let view: learnchain_rpc::MembersView = serde_json::from_value(value)?;
            println!(
                "height {}: {} active members in {} ring group(s) of at most {}",
                view.height, view.active, view.groups, view.ring_size
            );
            for m in &view.members {
                match m.revoked_at {
                    Some(r) => println!("{}  registered at {:>6}  revoked at {r}", m.key, m.registered_at),
                    None => println!("{}  registered at {:>6}", m.key, m.registered_at),
                }
            }
            Ok(())
        }
        MembersCommand::Enrol { member_key, passphrase_file, authority_key, rpc } => {
            let addr = addr(&rpc)?;
            let pass = keys::passphrase(passphrase_file.as_deref())?;
            let member = keystore::read_secret(&member_key, pass.as_ref().map(|p| p.as_str()))?;
            let info: learnchain_rpc::NodeInfoView = serde_json::from_value(call(addr, NODE_INFO, serde_json::json!([])).await?)?;
            let chain_id = Hash32::from_hex(&info.chain_id).map_err(|e| anyhow::anyhow!("node_info chain_id: {e}"))?;
            let registration = match authority_key {
                Some(f) => {
                    let authority = keys::authority_key(&f)?;
                    learnchain_chain::registry::authorised_registration(&chain_id, &authority, &member, &mut rand::rngs::OsRng)
                }
                None => {
                    let view: learnchain_rpc::MembersView =
                        serde_json::from_value(call(addr, MEMBERS_LIST, serde_json::json!([])).await?)?;
                    if view.open_stamp_bits == 0 {
                        bail!("chain {} has no open enrolment; give --authority-key (the enrolment authority registers members)", info.genesis_name);
                    }
                    let bits = view.open_stamp_bits;
                    eprintln!("computing an enrolment stamp of {bits} bits (about 2^{bits} hashes)…");
                    tokio::task::spawn_blocking(move || {
                        learnchain_chain::registry::stamped_registration(&chain_id, bits, &member, &mut rand::rngs::OsRng)
                    })
                    .await?
                }
            };
            let hex = hex::encode(learnchain_proto::encode(&registration));
            let id = call(addr, MEMBERS_REGISTER, serde_json::json!([hex])).await?;
            println!("registration {} submitted for member {}", id.as_str().unwrap_or_default(), registration.member);
            println!("the key may sign from the block after the one that includes it (see `learnchain members list`)");
            Ok(())
        }
        MembersCommand::Revoke { member, authority_key, rpc } => {
            let addr = addr(&rpc)?;
            let member = Hash32::from_hex(&member).map_err(|e| anyhow::anyhow!("--member: {e}"))?;
            let authority = keys::authority_key(&authority_key)?;
            let info: learnchain_rpc::NodeInfoView = serde_json::from_value(call(addr, NODE_INFO, serde_json::json!([])).await?)?;
            let chain_id = Hash32::from_hex(&info.chain_id).map_err(|e| anyhow::anyhow!("node_info chain_id: {e}"))?;
            let registration = learnchain_chain::registry::revocation(&chain_id, &authority, &member);
            let hex = hex::encode(learnchain_proto::encode(&registration));
            let id = call(addr, MEMBERS_REGISTER, serde_json::json!([hex])).await?;
            println!("revocation {} submitted for member {member}", id.as_str().unwrap_or_default());
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
    /// The accountant that computed ε: `pld` or `rdp`.
    pub accountant: learnchain_privacy::Accountant,
    /// The RDP order at which ε is smallest (`rdp` only).
    pub alpha: Option<f64>,
}

/// Computes the plan for a `learnchain privacy` command.
pub fn privacy_plan(cmd: &PrivacyCommand) -> anyhow::Result<PrivacyPlan> {
    let (q, sigma, steps, delta, accountant) = match *cmd {
        PrivacyCommand::Epsilon { sample_rate, noise_multiplier, steps, delta, accountant, .. } => {
            (sample_rate, noise_multiplier, steps, delta, accountant)
        }
        PrivacyCommand::Noise { target_epsilon, delta, sample_rate, steps, accountant, .. } => {
            let sigma = accountant.noise_for_epsilon(target_epsilon, delta, sample_rate, steps)?;
            (sample_rate, sigma, steps, delta, accountant)
        }
    };
    let spent = accountant.epsilon(q, sigma, steps, delta)?;
    Ok(PrivacyPlan {
        epsilon: spent.epsilon,
        delta,
        noise_multiplier: sigma,
        sample_rate: q,
        steps,
        accountant,
        alpha: spent.rdp_order,
    })
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
        let how = match plan.alpha {
            Some(alpha) => format!("rdp accountant, best order {alpha}"),
            None => format!("{} accountant", plan.accountant),
        };
        match cmd {
            PrivacyCommand::Epsilon { .. } => println!(
                "epsilon = {:.6} at delta = {} (q = {}, sigma = {}, {} steps; {how})",
                plan.epsilon, plan.delta, plan.sample_rate, plan.noise_multiplier, plan.steps
            ),
            PrivacyCommand::Noise { .. } => println!(
                "noise multiplier = {:.6} gives epsilon = {:.6} at delta = {} (q = {}, {} steps; {how})",
                plan.noise_multiplier, plan.epsilon, plan.delta, plan.sample_rate, plan.steps
            ),
        }
    }
    Ok(())
}

/// `learnchain model …`.
pub async fn model_cmd(cmd: crate::cli::ModelCommand) -> anyhow::Result<()> {
    let crate::cli::ModelCommand::Export { rpc, data_dir, genesis, height, out, timeout_s } = cmd;
    if timeout_s == 0 {
        bail!("--timeout-s must be at least 1");
    }
    crate::model::export(crate::model::export::ExportArgs {
        rpc,
        data_dir,
        genesis,
        height,
        out,
        timeout: Duration::from_secs(timeout_s),
    })
    .await
}

/// `learnchain predict`.
pub fn predict(a: crate::cli::PredictArgs) -> anyhow::Result<()> {
    crate::model::predict(crate::model::predict::PredictArgs {
        model: a.model,
        data: a.data,
        split: a.split,
        label: a.label,
        out: a.out,
        json: a.json,
    })
}

/// `learnchain data …`.
pub fn data_cmd(cmd: crate::cli::DataCommand) -> anyhow::Result<()> {
    let crate::cli::DataCommand::Export { data, split, label, out } = cmd;
    let full = crate::data::load_source(&data, &label, None)?;
    let defaults = crate::config::DataConfig::default();
    let rows = match split.as_str() {
        "all" => full,
        "train" | "test" => {
            let (train, test) = full.split(defaults.test_fraction, defaults.split_seed)?;
            if split == "train" { train } else { test }
        }
        other => anyhow::bail!("--split {other:?} is not train, test or all"),
    };
    match out {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .with_context(|| format!("cannot create {} (an existing file is never overwritten)", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            learnchain_model::data::write_csv(&rows, &label, &mut w)
                .and_then(|()| std::io::Write::flush(&mut w))
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {} examples of {} features and {} classes to {}", rows.len(), rows.features(), rows.classes, path.display());
        }
        None => learnchain_model::data::write_csv(&rows, &label, std::io::stdout().lock())
            .context("cannot write the CSV to standard output")?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privacy_plans() {
        use learnchain_privacy::Accountant;
        let epsilon = |accountant| {
            privacy_plan(&PrivacyCommand::Epsilon {
                sample_rate: 0.01,
                noise_multiplier: 1.1,
                steps: 1000,
                delta: 1e-5,
                accountant,
                json: true,
            })
            .expect("plan")
        };
        // The reference vector: PLD 1.515, RDP 1.712.
        let (pld, rdp) = (epsilon(Accountant::Pld), epsilon(Accountant::Rdp));
        assert!((pld.epsilon - 1.5154).abs() < 1e-3, "{}", pld.epsilon);
        assert_eq!(pld.alpha, None);
        assert!((rdp.epsilon - 1.7118).abs() < 0.01 * 1.7118, "{}", rdp.epsilon);
        assert!(rdp.alpha.is_some());
        let n = privacy_plan(&PrivacyCommand::Noise {
            target_epsilon: 1.7118,
            delta: 1e-5,
            sample_rate: 0.01,
            steps: 1000,
            accountant: Accountant::Rdp,
            json: true,
        })
        .expect("plan");
        assert!((n.noise_multiplier - 1.1).abs() < 0.01, "{}", n.noise_multiplier);
        assert!(n.epsilon <= 1.7118 + 1e-9);
        // The same budget buys less noise under PLD.
        let m = privacy_plan(&PrivacyCommand::Noise {
            target_epsilon: 1.7118,
            delta: 1e-5,
            sample_rate: 0.01,
            steps: 1000,
            accountant: Accountant::Pld,
            json: true,
        })
        .expect("plan");
        assert!(m.noise_multiplier < n.noise_multiplier && m.epsilon <= 1.7118 + 1e-9, "{m:?}");
        let bad = privacy_plan(&PrivacyCommand::Epsilon {
            sample_rate: 1.5,
            noise_multiplier: 1.1,
            steps: 1,
            delta: 1e-5,
            accountant: Accountant::Pld,
            json: false,
        });
        assert!(bad.is_err());
    }
}
