//! Update encodings on a 100 000-parameter softmax model: the bytes a submission's update
//! takes, and what a validator pays to read it.
//!
//! For each encoding (`i32`, `i16`, `i8`, `i8:128`, `i16:4096`) the bench prints the
//! encoded size of the update and of a whole ring-signed submission (64-member ring) per
//! parameter, then times `decode_bytes/{enc}` (canonical bytes → [`Submission`], what
//! gossip and sync do) and `decode_update/{enc}` (the shape checks and exact integer decoding
//! of [`decode_update`], once per submission per validation).

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use learnchain_chain::validate::decode_update;
use learnchain_chain::{Chain, testing};
use learnchain_identity::MemberSecret;
use learnchain_proto::encoding::encoded_len;
use learnchain_proto::{Genesis, Hash32, Submission, decode, encode};

const CLASSES: u32 = 10;
const PARAMS: u32 = 100_000;
const MEMBERS: usize = 64;

fn genesis(keys: &[MemberSecret], encoding: &str) -> Genesis {
    let members = keys.iter().map(|k| Hash32(k.public().to_bytes())).collect();
    let mut g = Genesis::template("bench-encoding", PARAMS / CLASSES - 1, CLASSES, members);
    g.consensus.ring_size = MEMBERS as u32;
    g.consensus.update_encoding = encoding.parse().expect("valid encoding");
    g.fit_limits();
    g.validate().expect("benchmark genesis is valid");
    g
}

fn bench(c: &mut Criterion) {
    let keys = learnchain_identity::test_member_keys(MEMBERS);
    let mut group = c.benchmark_group("encoding");
    group.throughput(Throughput::Elements(u64::from(PARAMS)));
    for enc in ["i32", "i16", "i8", "i8:128", "i16:4096"] {
        let g = genesis(&keys, enc);
        let dir = tempfile::tempdir().expect("tempdir");
        let chain = Chain::open(&dir.path().join("chain.redb"), g.clone()).expect("open");
        let s = testing::signed_submission(&chain, &keys[0], 1);
        chain.check_submission(&s).expect("a valid submission");
        let update = encoded_len(&s.update) - 1;
        let whole = encoded_len(&s);
        println!(
            "{enc:>8}: update {update} bytes = {:.4} bytes/parameter; signed submission {whole} bytes = {:.4} bytes/parameter",
            update as f64 / f64::from(PARAMS),
            whole as f64 / f64::from(PARAMS)
        );
        let bytes = encode(&s);
        let max = bytes.len();
        group.bench_function(format!("decode_bytes/{enc}"), |b| b.iter(|| decode::<Submission>(black_box(&bytes), max).expect("decodes")));
        group.bench_function(format!("decode_update/{enc}"), |b| {
            b.iter(|| decode_update(&g, black_box(&s)).expect("valid").len())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
