//! The command line: `learnchain run | devnet | genesis | keys | members | privacy | status |
//! data | model | predict | plot`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Role;

/// learnchain: federated learning on a proof-of-work chain, without a central server.
#[derive(Debug, Parser)]
#[command(
    name = "learnchain",
    version,
    about = "learnchain: federated learning on a proof-of-work chain, without a central server",
    long_about = None
)]
pub struct Cli {
    /// Log filter (tracing `EnvFilter` syntax, e.g. `info` or `learnchain=debug`); `RUST_LOG`
    /// takes precedence.
    #[arg(long, global = true)]
    pub log: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node.
    Run(Box<RunArgs>),
    /// Run a whole local network in one process with built-in data.
    Devnet(DevnetArgs),
    /// Create or inspect a genesis file.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// Create or inspect key files.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List, register or revoke members of a running chain.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Plan differential privacy: ε for given DP-SGD parameters, or the noise for a target ε.
    #[command(subcommand)]
    Privacy(PrivacyCommand),
    /// One line about a running node (role, height, head, peers, accuracy), from its RPC;
    /// exits non-zero when the node does not answer (a container healthcheck).
    Status(StatusArgs),
    /// Work with datasets: write a built-in one as the CSV a data source reads.
    #[command(subcommand)]
    Data(DataCommand),
    /// Take the trained model out of the chain: write it as a safetensors file.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Apply a model file to data: one prediction per example, and accuracy and a
    /// confusion matrix when the data has labels.
    Predict(PredictArgs),
    /// Draw a CSV table as a chart (SVG or PNG): the first column is x, every other column
    /// a series. Numbers in the first column make a line chart, names (or --bars) grouped
    /// bars; an empty cell is a missing value.
    Plot(PlotArgs),
}

/// `learnchain plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// The CSV table: a header row, then one row per x value (at most 8 MiB; lines
    /// starting with # are comments).
    #[arg(long)]
    pub input: PathBuf,
    /// The image to write: FILE.svg or FILE.png (replaced if it exists).
    #[arg(long)]
    pub output: PathBuf,
    /// Title (default: the input's file name).
    #[arg(long)]
    pub title: Option<String>,
    /// x axis label (default: the first column's header).
    #[arg(long)]
    pub x_label: Option<String>,
    /// Left y axis label (default: the series' header when there is one series).
    #[arg(long)]
    pub y_label: Option<String>,
    /// The series columns to draw, in this order (comma-separated headers; default: every
    /// column after the first).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Columns to draw against a second y axis on the right (comma-separated headers).
    #[arg(long, value_delimiter = ',')]
    pub right: Vec<String>,
    /// Right y axis label (default: the --right column names).
    #[arg(long, requires = "right")]
    pub y2_label: Option<String>,
    /// Grouped bars, one group per row, even when the first column is numeric.
    #[arg(long)]
    pub bars: bool,
    /// Logarithmic x axis (a numeric, positive first column).
    #[arg(long, conflicts_with = "bars")]
    pub log_x: bool,
}

/// `learnchain model …`.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Write the global model after a block as a safetensors file: one float32 tensor per
    /// layer weight (`layers.N.weight`, [inputs, outputs]) and bias (`layers.N.bias`), and
    /// metadata naming the chain, block, model hash, architecture, feature columns, class
    /// labels and input transform. Never overwrites a file.
    Export {
        /// A running node's JSON-RPC address (the file comes from its
        /// GET /model.safetensors).
        #[arg(long, conflicts_with = "data_dir", required_unless_present = "data_dir")]
        rpc: Option<String>,
        /// A stopped node's data directory, read directly.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The genesis of --data-dir's chain (default: genesis.toml in the directory or
        /// its parent).
        #[arg(long, requires = "data_dir")]
        genesis: Option<PathBuf>,
        /// The block height (default: the head).
        #[arg(long)]
        height: Option<u64>,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// Give up on --rpc after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout_s: u64,
    },
}

/// `learnchain predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A model file from `learnchain model export`.
    #[arg(long)]
    pub model: PathBuf,
    /// builtin:NAME (breast-cancer, digits) or csv:FILE with the model's feature columns
    /// (and, optionally, a label column).
    #[arg(long)]
    pub data: String,
    /// all, or the nodes' train or test split (test fraction 0.2, seed 42).
    #[arg(long, default_value = "all")]
    pub split: String,
    /// Name of the label column of a CSV (optional in the file).
    #[arg(long, default_value = "label")]
    pub label: String,
    /// Write one row per example here: example, predicted class[, label], the probability
    /// of each class. Never overwrites a file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object (examples, accuracy, confusion, …) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `learnchain data …`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Write a dataset split as CSV: a header of the feature names and the label column,
    /// then one row per example with its raw (unstandardized) features and class index.
    /// The split is the one nodes use (test fraction 0.2, split seed 42), so
    /// `--split test` is the test set an observer evaluates on.
    Export {
        /// builtin:NAME (breast-cancer, digits) or csv:FILE.
        #[arg(long)]
        data: String,
        /// train, test or all.
        #[arg(long, default_value = "all")]
        split: String,
        /// Name of the label column (read from a csv: source, written to the output).
        #[arg(long, default_value = "label")]
        label: String,
        /// The CSV file to write (never overwritten); standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `learnchain status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The node's JSON-RPC address.
    #[arg(long, default_value = "127.0.0.1:8545")]
    pub rpc: String,
    /// Print one JSON object instead of a line of text.
    #[arg(long)]
    pub json: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 5)]
    pub timeout_s: u64,
}

/// `learnchain privacy …`: the RDP accountant of the Poisson-subsampled Gaussian mechanism
/// with the (ε, δ) conversion of Balle et al. 2020.
#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Print ε for a sampling rate, noise multiplier, step count and δ.
    Epsilon {
        /// Poisson sampling rate q, in (0, 1].
        #[arg(long)]
        sample_rate: f64,
        /// Noise multiplier σ (noise std / clip bound), > 0.
        #[arg(long)]
        noise_multiplier: f64,
        /// DP-SGD steps in total (over all rounds).
        #[arg(long)]
        steps: u64,
        /// δ, in (0, 1).
        #[arg(long)]
        delta: f64,
        /// The accountant: pld (privacy-loss distribution, the tighter bound) or rdp
        /// (Rényi DP).
        #[arg(long, default_value = "pld")]
        accountant: learnchain_privacy::Accountant,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print the smallest noise multiplier σ that keeps ε at or below a target.
    Noise {
        /// Target ε, > 0.
        #[arg(long)]
        target_epsilon: f64,
        /// δ, in (0, 1).
        #[arg(long)]
        delta: f64,
        /// Poisson sampling rate q, in (0, 1].
        #[arg(long)]
        sample_rate: f64,
        /// DP-SGD steps in total.
        #[arg(long)]
        steps: u64,
        /// The accountant: pld (privacy-loss distribution, the tighter bound) or rdp
        /// (Rényi DP).
        #[arg(long, default_value = "pld")]
        accountant: learnchain_privacy::Accountant,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `learnchain run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Config file (TOML); flags override it.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Node name for logs.
    #[arg(long)]
    pub name: Option<String>,
    /// Data directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Genesis file.
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// Roles (repeat or comma-separate): miner, data-source, observer.
    #[arg(long = "role", value_enum, value_delimiter = ',')]
    pub roles: Vec<Role>,
    /// libp2p listen multiaddr (repeatable).
    #[arg(long)]
    pub listen: Vec<String>,
    /// Bootnode multiaddr (repeatable): `/dns4/HOST/tcp/PORT` or `/ip4/IP/tcp/PORT`, with an
    /// optional `/p2p/PEER_ID`.
    #[arg(long = "bootnode")]
    pub bootnodes: Vec<String>,
    /// Connections to keep: below this many the node dials peers it discovered (Kademlia,
    /// mDNS). Default 8.
    #[arg(long)]
    pub target_peers: Option<usize>,
    /// Most connections; further inbound ones are refused. Default 32.
    #[arg(long)]
    pub max_peers: Option<usize>,
    /// Find peers on the local network with mDNS (off by default).
    #[arg(long)]
    pub mdns: bool,
    /// Keep the block bodies of the last N heights only (N ≥ 128) and drop older ones; the
    /// node still serves headers, metas and snapshots. Without it the node keeps every body
    /// (an archive node).
    #[arg(long, value_name = "N")]
    pub prune: Option<u64>,
    /// How an empty data dir catches up: `snapshot` (default: the state at a recent block
    /// from a peer, checked against its header's state root, then the blocks after it) or
    /// `full` (every block from genesis).
    #[arg(long, value_enum)]
    pub sync: Option<crate::sync::snapshot::SyncMode>,
    /// The chain store's page cache in MiB (default 16).
    #[arg(long, value_name = "MIB")]
    pub store_cache_mib: Option<usize>,
    /// Stop with an error when no bootnode has answered within this many seconds of the
    /// start (0 = keep trying forever). Default 60.
    #[arg(long)]
    pub bootnode_timeout_s: Option<u64>,
    /// JSON-RPC address, or `none`.
    #[arg(long)]
    pub rpc: Option<String>,
    /// Serve Prometheus metrics (OpenMetrics text) at http://ADDR/metrics: `IP:PORT`, or a
    /// bare `PORT` for 127.0.0.1 (default: off).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Local data: `builtin:NAME` or `csv:PATH`.
    #[arg(long, visible_alias = "dataset")]
    pub data: Option<String>,
    /// Label column of a CSV file.
    #[arg(long, visible_alias = "label")]
    pub label_column: Option<String>,
    /// Which split of the data this node holds: train or test.
    #[arg(long)]
    pub split: Option<String>,
    /// Shard count of the training split.
    #[arg(long)]
    pub shards: Option<usize>,
    /// This node's shard (0-based).
    #[arg(long)]
    pub shard: Option<usize>,
    /// Partition: iid or dirichlet:ALPHA.
    #[arg(long)]
    pub partition: Option<String>,
    /// Member key file of a data source (a keystore from `learnchain keys new`; created,
    /// unencrypted, if missing).
    #[arg(long)]
    pub member_key: Option<PathBuf>,
    /// File whose first line is the member key's passphrase (default: the
    /// LEARNCHAIN_KEY_PASSPHRASE environment variable).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Total ε this data source may spend (at --delta); fixed when its privacy ledger is
    /// created. Default 10.
    #[arg(long)]
    pub epsilon_budget: Option<f64>,
    /// δ of the privacy accounting (default: the genesis privacy.delta).
    #[arg(long)]
    pub delta: Option<f64>,
    /// DP-SGD noise multiplier σ (default: the genesis minimum).
    #[arg(long)]
    pub noise_multiplier: Option<f64>,
    /// DP-SGD Poisson sampling rate q (default: the genesis maximum).
    #[arg(long)]
    pub sample_rate: Option<f64>,
    /// DP-SGD per-example clip bound C (default: the genesis clip bound).
    #[arg(long)]
    pub clip: Option<f64>,
    /// Accountant of the privacy ledger and its budget gate: pld (default; the tighter
    /// bound) or rdp.
    #[arg(long)]
    pub accountant: Option<learnchain_privacy::Accountant>,
    /// Make this data source deliberately hostile (tests and demos of the aggregation
    /// rules): sign-flip[:K], scale:K, gaussian:S, label-flip, zero or replay-stale.
    #[arg(long)]
    pub adversary: Option<String>,
}

/// `learnchain devnet`.
#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// Directory for the nodes' data (default: a fresh temporary directory). A directory
    /// that already holds a devnet is resumed.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Blocks to mine.
    #[arg(long, default_value_t = 20)]
    pub blocks: u64,
    /// Write a JSON summary here.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Draw test accuracy, test loss and ε spent (the largest of any data source) against
    /// height into this file, FILE.svg or FILE.png, when the devnet ends (also when it
    /// times out, with the heights it reached).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Miner nodes.
    #[arg(long, default_value_t = 2)]
    pub miners: usize,
    /// Data-source nodes.
    #[arg(long, default_value_t = 4)]
    pub data_sources: usize,
    /// Built-in dataset: breast-cancer or digits.
    #[arg(long, default_value = "breast-cancer")]
    pub dataset: String,
    /// Target block interval of a new devnet genesis, in milliseconds. The initial
    /// difficulty is calibrated to this machine's hash rate so blocks come at about this pace.
    /// Default: about the time a round of the data sources takes on this machine (one
    /// training round is timed at start), at least 200 ms.
    #[arg(long)]
    pub block_interval_ms: Option<u64>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_s: u64,
    /// ε budget of every data source (at --delta). Each trains with DP-SGD and stops
    /// submitting before it would pass this.
    #[arg(long, default_value_t = 2.0)]
    pub epsilon_budget: f64,
    /// δ of the privacy accounting.
    #[arg(long, default_value_t = 1e-5)]
    pub delta: f64,
    /// DP-SGD noise multiplier σ of a new devnet genesis (default: the smallest that lets
    /// every data source contribute to every block within the budget).
    #[arg(long)]
    pub noise_multiplier: Option<f64>,
    /// Aggregation rule of a new devnet genesis: mean, median, trimmed-mean:β, krum:f,
    /// multi-krum:f,m, bulyan:f, geometric-median:iterations or l-nearest:l.
    #[arg(long, default_value = "mean")]
    pub aggregation: String,
    /// Update encoding of a new devnet genesis: i32, i16, i8 (one scale per tensor), or
    /// i16:N / i8:N (one scale per chunk of N parameters, 128 ≤ N ≤ 1048576).
    #[arg(long, default_value = "i32")]
    pub update_encoding: String,
    /// Hidden layers of the model: 0 (default) for softmax regression, N for an MLP with one
    /// hidden layer of N units, N1,N2,… for an MLP with several (ReLU) hidden layers (a new
    /// devnet only; one layer has about (features + classes + 1) × N parameters).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub hidden: Vec<u32>,
    /// How the training split is cut among the data sources: iid, or dirichlet:ALPHA
    /// (non-iid: each source's class mix drawn from Dirichlet(ALPHA); smaller is more
    /// skewed).
    #[arg(long, default_value = "iid")]
    pub partition: String,
    /// DP-SGD steps each data source runs per round (a new devnet only).
    #[arg(long, default_value_t = crate::devnet::DEVNET_LOCAL_STEPS)]
    pub local_steps: u32,
    /// SGD learning rate (a new devnet only).
    #[arg(long, default_value_t = crate::devnet::DEVNET_LEARNING_RATE)]
    pub learning_rate: f64,
    /// DP-SGD Poisson sampling rate q (a new devnet only; raised where a shard is too
    /// small for an expected batch of one example).
    #[arg(long, default_value_t = crate::devnet::DEVNET_SAMPLE_RATE)]
    pub sample_rate: f64,
    /// How many data sources (the last ones) are adversaries.
    #[arg(long, default_value_t = 0)]
    pub adversaries: usize,
    /// What adversaries do: sign-flip[:K], scale:K, gaussian:S, label-flip, zero or replay-stale.
    #[arg(long, default_value = "sign-flip")]
    pub adversary: String,
}

/// `learnchain genesis …`.
#[derive(Debug, Subcommand)]
pub enum GenesisCommand {
    /// Write a new genesis file.
    New(Box<GenesisNewArgs>),
    /// Validate a genesis file and print its chain id.
    Show {
        /// The genesis file.
        file: PathBuf,
    },
}

/// `learnchain genesis new`.
#[derive(Debug, Args)]
pub struct GenesisNewArgs {
    /// Output file.
    #[arg(long, short)]
    pub out: PathBuf,
    /// If the output file already holds a valid genesis, keep it, print its chain id and
    /// succeed (for an init step that runs on every start of a cluster).
    #[arg(long)]
    pub keep_existing: bool,
    /// Chain name.
    #[arg(long, default_value = "learnchain")]
    pub name: String,
    /// Member public key (64 hex digits; repeatable).
    #[arg(long = "member")]
    pub members: Vec<String>,
    /// Member key file whose public key to list (repeatable).
    #[arg(long = "member-key")]
    pub member_keys: Vec<PathBuf>,
    /// Enrolment authority key file (from `keys new --authority`): it may register and
    /// revoke members later.
    #[arg(long)]
    pub authority_key: Option<PathBuf>,
    /// Open enrolment: anyone may register with a proof-of-work stamp of this many leading
    /// zero bits (0 = closed). About 2^bits hashes per registration.
    #[arg(long, default_value_t = 0)]
    pub open_stamp_bits: u32,
    /// Most members in one ring (the anonymity set of a submission).
    #[arg(long)]
    pub ring_size: Option<u32>,
    /// Built-in dataset whose shape the model takes.
    #[arg(long, conflicts_with_all = ["features", "classes"])]
    pub dataset: Option<String>,
    /// Where the model's input transform ([model.input]: feature columns, centre and scale
    /// of each, class labels) is computed from: builtin:NAME or csv:FILE, its training split
    /// (80%, the nodes' default split). Default: the --dataset's. The model takes its
    /// shape.
    #[arg(long, conflicts_with_all = ["features", "classes"])]
    pub input_from: Option<String>,
    /// Label column of --input-from's CSV.
    #[arg(long, default_value = "label")]
    pub label: String,
    /// Input features (without --dataset; the genesis then has no input transform and
    /// each node standardizes with its own data).
    #[arg(long, requires = "classes")]
    pub features: Option<u32>,
    /// Classes (without --dataset).
    #[arg(long, requires = "features")]
    pub classes: Option<u32>,
    /// softmax or mlp.
    #[arg(long, default_value = "softmax")]
    pub architecture: String,
    /// Hidden layers of an MLP: N units, or N1,N2,… for several layers.
    #[arg(long, value_delimiter = ',', default_value = "32")]
    pub hidden: Vec<u32>,
    /// Submissions a block waits for.
    #[arg(long)]
    pub quorum: Option<u32>,
    /// Aggregation rule: mean, median, trimmed-mean:β, krum:f, multi-krum:f,m, bulyan:f,
    /// geometric-median:iterations or l-nearest:l.
    #[arg(long, default_value = "mean")]
    pub aggregation: String,
    /// How submissions carry their update: i32, i16, i8 (one scale per tensor), or
    /// i16:N / i8:N (one scale per chunk of N parameters, 128 ≤ N ≤ 1048576).
    #[arg(long, default_value = "i32")]
    pub update_encoding: String,
    /// Target block interval in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub block_interval_ms: u64,
    /// Expected hashes per block at the start (the retarget adjusts from there). One core
    /// with SHA-NI does roughly 10 M hashes per second.
    #[arg(long, default_value_t = 1 << 22)]
    pub initial_difficulty: u64,
    /// Privacy policy: smallest noise multiplier σ a submission may declare.
    #[arg(long, default_value_t = 2.0)]
    pub min_noise_multiplier: f64,
    /// Privacy policy: largest per-example clip bound C.
    #[arg(long, default_value_t = 1.0)]
    pub clip_bound: f64,
    /// Privacy policy: largest Poisson sampling rate q.
    #[arg(long, default_value_t = 0.1)]
    pub max_sample_rate: f64,
    /// Local DP-SGD steps per round (also the policy's maximum).
    #[arg(long, default_value_t = 10)]
    pub local_steps: u32,
    /// δ data sources account at by default.
    #[arg(long, default_value_t = 1e-5)]
    pub delta: f64,
}

/// `learnchain keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a new key file (mode 0600, never overwritten) and print its public key.
    ///
    /// A member key is sealed under a passphrase when one is given (--passphrase-file or the
    /// LEARNCHAIN_KEY_PASSPHRASE environment variable), otherwise stored unencrypted.
    New {
        /// The key file to create.
        file: PathBuf,
        /// Create an enrolment authority key (Ed25519) instead of a member key; its public
        /// key goes into the genesis as `enrolment.authority`.
        #[arg(long)]
        authority: bool,
        /// File whose first line is the passphrase to seal a member key with.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Print the public key of a key file (no passphrase needed).
    Show {
        /// The key file.
        file: PathBuf,
    },
}

/// `learnchain members …`: the member registry of a running node's chain, over its RPC.
#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// List registered member keys with the heights that registered and revoked them.
    List {
        /// The node's JSON-RPC address.
        #[arg(long, default_value = "127.0.0.1:8545")]
        rpc: String,
        /// Print the JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Register a member key: signed by the enrolment authority (--authority-key), or with
    /// a proof-of-work stamp where the chain allows open enrolment. The member proves it
    /// holds its key, so the member key file is needed either way.
    Enrol {
        /// The member's key file.
        #[arg(long)]
        member_key: PathBuf,
        /// File whose first line is the member key's passphrase (default: the
        /// LEARNCHAIN_KEY_PASSPHRASE environment variable).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// The enrolment authority's key file; without it, open enrolment with a stamp.
        #[arg(long)]
        authority_key: Option<PathBuf>,
        /// The node's JSON-RPC address.
        #[arg(long, default_value = "127.0.0.1:8545")]
        rpc: String,
    },
    /// Revoke a member key (enrolment authority only).
    Revoke {
        /// The member's public key (64 hex digits).
        #[arg(long)]
        member: String,
        /// The enrolment authority's key file.
        #[arg(long)]
        authority_key: PathBuf,
        /// The node's JSON-RPC address.
        #[arg(long, default_value = "127.0.0.1:8545")]
        rpc: String,
    },
}
