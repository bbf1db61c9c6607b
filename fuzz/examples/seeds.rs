//! Writes seed corpora for every fuzz target: a few valid encodings of each input kind, built
//! with the project's own encoders, so the fuzzers start past the outer checks.
//!
//! `cargo run --example seeds [-- DIR]` (default `corpus/`, relative to the fuzz crate):
//! writes `DIR/<target>/seed-NNN` for every target whose corpus directory is empty or absent. Every seed is checked to pass the checks its target runs,
//! so a seed that stops being valid fails here rather than silently starting a fuzzer cold.

use std::path::{Path, PathBuf};

use learnchain_chain::validate::CheckedBlock;
use learnchain_fuzz::{FIXTURES, check_compact_stateless, check_registration, check_submission, fixture, seed_block, seed_registrations, seed_submission};
use learnchain_identity::keystore::{self, KdfParams};
use learnchain_identity::MemberSecret;
use learnchain_model::export::{Provenance, to_safetensors};
use learnchain_proto::{CompactBlock, Hash32, StatusMessage, SubmissionAnnouncement, SyncRequest, SyncResponse, encode};

struct Out {
    dir: PathBuf,
    count: usize,
    /// Targets whose corpus already had entries when this started: left alone.
    skip: Vec<String>,
}

impl Out {
    fn put(&mut self, target: &str, bytes: &[u8]) {
        let dir = self.dir.join(target);
        if self.skip.iter().any(|t| t == target) {
            return;
        }
        std::fs::create_dir_all(&dir).expect("corpus directory");
        let path = (0..).map(|n| dir.join(format!("seed-{n:03}"))).find(|p| !p.exists()).expect("a free name");
        std::fs::write(path, bytes).expect("seed written");
        self.count += 1;
    }

    fn with(&mut self, target: &str, prefix: &[u8], bytes: &[u8]) {
        let mut v = prefix.to_vec();
        v.extend_from_slice(bytes);
        self.put(target, &v);
    }
}

fn main() {
    let dir = std::env::args().nth(1).map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"), PathBuf::from);
    // Only targets with an empty (or no) corpus get seeds, so a rerun adds nothing twice.
    let skip = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_some()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut out = Out { dir, count: 0, skip };
    chain_messages(&mut out);
    files(&mut out);
    rpc(&mut out);
    println!("wrote {} seeds under {}", out.count, out.dir.display());
}

fn chain_messages(out: &mut Out) {
    for v in 0..FIXTURES as u8 {
        let f = fixture(v);
        let subs: Vec<_> = (0..4).map(|i| seed_submission(f, i, 10 * i32::from(v) + i as i32)).collect();
        for s in &subs {
            check_submission(f, s).expect("a seed submission passes the stateless checks");
        }
        let regs = seed_registrations(f);
        for r in &regs {
            check_registration(f, r).expect("a seed registration passes the stateless checks");
        }
        let one = seed_block(f, vec![subs[0].clone()], vec![]);
        let full = seed_block(f, subs.clone(), regs.clone());
        let regs_only = seed_block(f, vec![], regs[..2].to_vec());
        for b in [&one, &full, &regs_only] {
            CheckedBlock::check(&f.genesis, &f.chain_id, b.clone()).expect("a seed block passes the context-free checks");
        }
        let max = f.genesis.limits.max_block_bytes as usize;

        // gossip: selector = variant << 2 | topic.
        let sel = |topic: u8| [(v << 2) | topic];
        for b in [&one, &full, &regs_only] {
            out.with("gossip", &sel(0), &encode(b));
        }
        for prefill in [true, false] {
            let c = CompactBlock::from_block(&full, |_| prefill, max);
            check_compact_stateless(f, &c).expect("a seed compact block passes the cheap checks");
            out.with("gossip", &sel(1), &encode(&c));
        }
        for s in &subs[..2] {
            out.with("gossip", &sel(2), &encode(&SubmissionAnnouncement::of(s, s.id())));
        }
        for r in &regs {
            out.with("gossip", &sel(3), &encode(r));
        }

        // sync_messages: selector = variant << 1 | response.
        let req = [v << 1];
        let resp = [(v << 1) | 1];
        let ids: Vec<Hash32> = subs.iter().map(|s| s.id()).collect();
        let reg_ids: Vec<Hash32> = regs.iter().map(|r| r.id()).collect();
        let requests = [
            SyncRequest::Status,
            SyncRequest::BlocksByRange { start: 1, count: 16 },
            SyncRequest::BlocksByHash { hashes: vec![full.hash(), one.hash()] },
            SyncRequest::Pool,
            SyncRequest::PendingRegistrations,
            SyncRequest::BodyItems { block: full.hash(), registrations: reg_ids.clone(), submissions: ids.clone() },
            SyncRequest::PoolIds,
            SyncRequest::PoolItems { registrations: reg_ids.clone(), submissions: ids.clone() },
        ];
        for r in &requests {
            out.with("sync_messages", &req, &encode(r));
        }
        let responses = [
            SyncResponse::Status(StatusMessage {
                chain_id: f.chain_id,
                head: full.hash(),
                height: 1,
                total_work: Hash32([0; 32]),
            }),
            SyncResponse::Blocks(vec![one.clone(), full.clone()]),
            SyncResponse::Submissions(subs.clone()),
            SyncResponse::Refused("at most 1024 item ids per request".into()),
            SyncResponse::Registrations(regs.clone()),
            SyncResponse::BodyItems { registrations: regs.clone(), submissions: subs.clone() },
            SyncResponse::PoolIds { registrations: reg_ids.clone(), submissions: ids.clone() },
        ];
        for r in &responses {
            out.with("sync_messages", &resp, &encode(r));
        }

        // items: selector (variant), u16 request length, request, response.
        for (request, response) in [
            (&requests[5], SyncResponse::BodyItems { registrations: regs.clone(), submissions: subs.clone() }),
            (&requests[7], SyncResponse::BodyItems { registrations: vec![], submissions: subs[..2].to_vec() }),
            (
                &SyncRequest::PoolItems { registrations: vec![], submissions: vec![ids[3]] },
                SyncResponse::BodyItems { registrations: vec![], submissions: vec![subs[3].clone()] },
            ),
        ] {
            let rq = encode(request);
            let mut bytes = vec![v];
            bytes.extend_from_slice(&(rq.len() as u16).to_le_bytes());
            bytes.extend_from_slice(&rq);
            bytes.extend_from_slice(&encode(&response));
            out.put("items", &bytes);
        }

        // genesis_toml
        out.put("genesis_toml", f.genesis.to_toml_string().as_bytes());
    }
}

fn files(out: &mut Out) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/tests/fixtures");
    for name in ["genesis-v0-mlp.toml", "genesis-v0-softmax.toml"] {
        if let Ok(text) = std::fs::read(fixtures.join(name)) {
            out.put("genesis_toml", &text);
        }
    }

    // csv: selector (label column, classes given), limits byte, file.
    let csvs: [(&[u8], &[u8]); 7] = [
        (&[8, 0], b"f1,f2\n0.1,2\n0.2,3\n"),
        (&[8, 0], b"f1,label\n0.1,yes\n0.2,1\n"),
        (&[0, 0], b"a,b,label\n1,2,0\n3.5,-4e2,1\n0,0,0\n"),
        (&[0, 0], b"x, y ,label\n1,2,cat\n3,4,dog\n5,6,cat\n"),
        (&[4, 0], b"f1,label,f2\n0.1,yes,2\n0.2,0,3\n0.3,1,4\n"),
        (&[1, 1], b"\"q,1\",y\n\"1\",\"a\"\n2,b\n"),
        (&[0, 0], b"a,label\n1,01\n2,1\n3,0\n"),
    ];
    for (prefix, text) in csvs {
        out.with("csv", prefix, text);
    }

    // keystore and node_keys (member key): a plain and a sealed key file.
    let tmp = std::env::temp_dir().join(format!("learnchain-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let key = MemberSecret::from_seed(&[5u8; 32]);
    for (name, pass) in [("plain.key", None), ("sealed.key", Some("right horse"))] {
        let path = tmp.join(name);
        let _ = std::fs::remove_file(&path);
        keystore::write_new(&path, &key, pass, KdfParams::TEST).expect("key file written");
        let bytes = std::fs::read(&path).expect("key file read");
        out.with("keystore", &[2], &bytes);
        out.with("keystore", &[0], &bytes);
        out.with("node_keys", &[3 | 8], &bytes);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let seed = format!("{}\n", "0123456789abcdef".repeat(4));
    out.with("node_keys", &[0], seed.as_bytes());
    out.with("node_keys", &[1], seed.as_bytes());
    out.with("node_keys", &[2], b"right horse\nsecond line\n");

    // node_config
    for text in [
        "",
        "name = \"a\"\nroles = [\"miner\", \"observer\"]\nrpc = \"127.0.0.1:8545\"\nlisten = [\"/ip4/0.0.0.0/tcp/30333\"]\nbootnodes = []\n",
        "roles = [\"data-source\"]\nadversary = \"scale:10\"\n[data]\nsource = \"builtin:digits\"\nshards = 4\nshard = 3\npartition = \"dirichlet:0.5\"\ntest_fraction = 0.25\n[privacy]\nepsilon_budget = 8.0\nnoise_multiplier = 2.5\nsample_rate = 0.05\nclip = 1.0\naccountant = \"rdp\"\n",
        "roles = [\"data-source\"]\n[data]\nsource = \"csv:data.csv\"\nlabel_column = \"y\"\nsplit = \"test\"\n[privacy]\ndelta = 1e-6\naccountant = \"pld\"\n",
    ] {
        out.put("node_config", text.as_bytes());
    }

    // model_file: the fuzz genesis's initial model as a file.
    let f = fixture(0);
    let provenance =
        Provenance { chain_id: f.chain_id, height: 0, block_hash: f.genesis_hash, model_hash: f.genesis.header().model_hash };
    let bytes = to_safetensors(&f.genesis.model, &f.initial_weights, &provenance).expect("model file");
    learnchain_model::export::from_safetensors(&bytes).expect("the seed model file reads back");
    out.put("model_file", &bytes);
}

fn rpc(out: &mut Out) {
    let whole = [
        r#"{"jsonrpc":"2.0","id":1,"method":"chain_head"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"chain_getBlock","params":[12]}"#,
        r#"[{"jsonrpc":"2.0","id":3,"method":"model_get","params":{"height":3}},{"jsonrpc":"2.0","method":"rpc_methods"}]"#,
        r#"{"jsonrpc":"2.0","id":"x","method":"members_register","params":{"registration":"0x0102"}}"#,
    ];
    for body in whole {
        out.with("rpc_params", &[0], body.as_bytes());
    }
    let f = fixture(0);
    let reg = hex_of(&encode(&seed_registrations(f)[0]));
    let hash = "AB".repeat(32);
    let params: [(u8, String); 8] = [
        (1, format!("[\"0x{hash}\"]")),
        (1, "{\"block\": 7}".into()),
        (2, "[null]".into()),
        (3, "{\"height\": 18446744073709551615}".into()),
        (8, format!("{{\"block\": \"{hash}\"}}")),
        (10, format!("[\"0x{reg}\"]")),
        (10, "{\"registration\": \"zz\"}".into()),
        (0, "[]".into()),
    ];
    for (m, p) in params {
        out.with("rpc_params", &[1, m], p.as_bytes());
    }
    out.with("rpc_params", &[2], b"height=12");
    out.with("rpc_params", &[2], b"");
    out.with("rpc_params", &[3], b"x");
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
