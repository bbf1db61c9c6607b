//! Member key files: the identity crate's keystore readers (crates/identity/src/keystore.rs)
//! `inspect`, `read_public` and `read_secret`, which take a path: the input (after one
//! selector byte) is written to a scratch file in /dev/shm with mode 0600 (or 0644 when
//! `b & 4`, to reach the permission check) and read back. The selector's low bits choose the
//! passphrase given to `read_secret`: none, the empty one, `right horse` (the seeds' one), or
//! `wrong`. `read_secret` runs only when the file's argon2id cost is small
//! (`learnchain_fuzz::cheap_kdf`); costlier files, which the format allows by design up to
//! 1 GiB, are parsed and inspected only.
//!
//! Asserts: no panic or unbounded allocation; `read_public` agrees with `inspect`; a secret
//! that `read_secret` returns has the stored public key; a file `inspect` refuses is refused
//! by `read_secret` too.
#![no_main]

use learnchain_fuzz::{cheap_kdf, scratch_path, write_scratch};
use learnchain_identity::keystore::{inspect, read_public, read_secret};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, file)) = data.split_first() else { return };
    let path = scratch_path("member.key");
    write_scratch(&path, file, if selector & 4 == 0 { 0o600 } else { 0o644 });
    let passphrase = [None, Some(""), Some("right horse"), Some("wrong")][usize::from(selector & 3)];
    match inspect(&path) {
        Ok(info) => {
            assert_eq!(read_public(&path).ok(), Some(info.public));
            if cheap_kdf(info.kdf)
                && let Ok(secret) = read_secret(&path, passphrase)
            {
                assert_eq!(secret.public(), info.public);
            }
        }
        Err(_) => {
            assert!(read_public(&path).is_err());
            assert!(read_secret(&path, passphrase).is_err());
        }
    }
});
