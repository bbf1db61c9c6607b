//! `learnchain model export`: the model file of a block, from a running node's RPC port
//! (`GET /model.safetensors`) or a stopped node's data directory, written to a file.
//!
//! The bytes are read back through `learnchain_model::export` before they are written, so a
//! damaged answer never becomes a file, and the file is written whole (temporary file, then
//! rename) and never over an existing one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use learnchain_chain::Chain;
use learnchain_model::export::{ModelFile, from_safetensors};

/// What `model export` was asked.
#[derive(Debug)]
pub struct ExportArgs {
    /// A running node's RPC address.
    pub rpc: Option<String>,
    /// A stopped node's data directory.
    pub data_dir: Option<PathBuf>,
    /// The genesis of `data_dir`'s chain.
    pub genesis: Option<PathBuf>,
    /// The block (`None`: the head).
    pub height: Option<u64>,
    /// Where to write.
    pub out: PathBuf,
    /// How long to wait for the node.
    pub timeout: Duration,
}

/// Runs `learnchain model export`.
pub async fn export(a: ExportArgs) -> anyhow::Result<()> {
    if a.out.exists() {
        bail!("{} exists; an existing file is never overwritten", a.out.display());
    }
    let bytes = match (&a.rpc, &a.data_dir) {
        (Some(rpc), None) => {
            let addr: std::net::SocketAddr =
                rpc.parse().map_err(|e| anyhow::anyhow!("--rpc {rpc:?} is not an IP:port address: {e}"))?;
            let path = match a.height {
                Some(h) => format!("{}?height={h}", learnchain_rpc::http::MODEL_FILE_PATH),
                None => learnchain_rpc::http::MODEL_FILE_PATH.to_owned(),
            };
            learnchain_rpc::client::get(addr, &path, a.timeout)
                .await
                .with_context(|| format!("cannot fetch the model from the node at {addr}"))?
        }
        (None, Some(dir)) => {
            let genesis = genesis_of(dir, a.genesis.as_deref())?;
            let dir = dir.clone();
            let height = a.height;
            tokio::task::spawn_blocking(move || from_data_dir(&dir, genesis, height)).await??
        }
        _ => bail!("give exactly one of --rpc ADDR (a running node) and --data-dir DIR (a stopped one)"),
    };
    let file = from_safetensors(&bytes).context("the node's model file does not read back")?;
    write_new(&a.out, &bytes)?;
    eprintln!("wrote {}: {}", a.out.display(), describe(&file, bytes.len()));
    Ok(())
}

/// The genesis of a data directory: `--genesis`, else `genesis.toml` in it or its parent
/// (a devnet's layout).
fn genesis_of(dir: &Path, given: Option<&Path>) -> anyhow::Result<learnchain_proto::Genesis> {
    if let Some(path) = given {
        return crate::config::load_genesis(path);
    }
    for candidate in [dir.join("genesis.toml"), dir.join("..").join("genesis.toml")] {
        if candidate.exists() {
            return crate::config::load_genesis(&candidate);
        }
    }
    bail!("no genesis.toml in {} or its parent: give --genesis FILE", dir.display())
}

fn from_data_dir(dir: &Path, genesis: learnchain_proto::Genesis, height: Option<u64>) -> anyhow::Result<Vec<u8>> {
    let db = dir.join("chain.redb");
    if !db.exists() {
        bail!("{} holds no chain (no chain.redb): is it a node's data directory?", dir.display());
    }
    let chain = Chain::open(&db, genesis)
        .with_context(|| format!("cannot open the chain in {} (is its node still running?)", dir.display()))?;
    super::file_at(&chain, height).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Writes `bytes` to `path`, which must not exist, through a temporary file beside it.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    // hard_link fails if the target exists, so a file created meanwhile is not replaced.
    let linked = std::fs::hard_link(&tmp, path).with_context(|| format!("cannot create {}", path.display()));
    let _ = std::fs::remove_file(&tmp);
    linked
}

/// One line about a model file.
pub(crate) fn describe(f: &ModelFile, bytes: usize) -> String {
    let p = &f.provenance;
    format!(
        "{} model, {} features → {} classes, {} parameters, block {} at height {} of chain {}, model hash {} ({}), {} bytes",
        f.spec.describe(),
        f.spec.features,
        f.spec.classes,
        f.spec.param_count(),
        p.block_hash,
        p.height,
        p.chain_id,
        p.model_hash,
        if f.hash_verified { "verified against the weights" } else { "not checked: weights beyond float32 precision" },
        bytes
    )
}
