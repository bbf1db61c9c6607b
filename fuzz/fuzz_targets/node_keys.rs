//! The node's key file readers (node/src/keys.rs), which take paths: `read_seed` and
//! `authority_key` (64 hex digits), `node_keypair` (the libp2p identity from
//! `DATA_DIR/node.key`), `passphrase` (first line of a passphrase file) and `member_key` on an
//! existing keystore (through the identity keystore). The first input byte selects the reader
//! (`b % 5`); the rest is written to a scratch file (mode 0600) in /dev/shm. `member_key` runs
//! only when the keystore's argon2id cost is small (`learnchain_fuzz::cheap_kdf`).
//!
//! Asserts: no panic; `read_seed` accepts exactly what is, trimmed, 64 hex digits, and
//! `authority_key` / `node_keypair` agree with it; a passphrase read is the file's first
//! line and never empty.
#![no_main]

use learnchain_fuzz::{cheap_kdf, scratch_path, write_scratch};
use learnchain_identity::keystore::inspect;
use learnchain_node::keys::{authority_key, member_key, node_keypair, passphrase, read_seed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, file)) = data.split_first() else { return };
    match selector % 5 {
        0 | 1 => {
            let path = scratch_path("seed.key");
            write_scratch(&path, file, 0o600);
            let seed = read_seed(&path);
            let expected = std::str::from_utf8(file).ok().filter(|_| file.len() <= 1024).and_then(|t| {
                let mut out = [0u8; 32];
                hex_decode(t.trim(), &mut out).then_some(out)
            });
            assert_eq!(seed.as_ref().ok(), expected.as_ref(), "read_seed disagrees with 64 trimmed hex digits");
            if let Ok(seed) = seed {
                if selector % 5 == 0 {
                    let key = authority_key(&path).expect("a readable seed is an authority key");
                    assert_eq!(key.to_bytes(), seed);
                } else {
                    let dir = scratch_path("data");
                    std::fs::create_dir_all(&dir).expect("scratch dir");
                    write_scratch(&dir.join("node.key"), file, 0o600);
                    node_keypair(&dir).expect("a readable seed is a node key");
                }
            }
        }
        2 => {
            let path = scratch_path("passphrase");
            write_scratch(&path, file, 0o600);
            if let Ok(Some(p)) = passphrase(Some(&path)) {
                assert!(!p.is_empty());
                let text = std::str::from_utf8(file).expect("a passphrase read from UTF-8");
                assert_eq!(text.lines().next(), Some(p.as_str()));
            }
        }
        _ => {
            let path = scratch_path("member.key");
            write_scratch(&path, file, 0o600);
            let Ok(info) = inspect(&path) else { return };
            if cheap_kdf(info.kdf) {
                let pass = (selector & 8 != 0).then_some("right horse");
                if let Ok(key) = member_key(&path, pass) {
                    assert_eq!(key.public(), info.public);
                }
            }
        }
    }
});

/// Exactly 64 hex digits (either case) into 32 bytes.
fn hex_decode(s: &str, out: &mut [u8; 32]) -> bool {
    let b = s.as_bytes();
    if b.len() != 64 {
        return false;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    for (i, pair) in b.chunks_exact(2).enumerate() {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => out[i] = (h << 4) | l,
            _ => return false,
        }
    }
    true
}
