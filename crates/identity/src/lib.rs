//! learnchain identity: who may submit, without saying who submitted.
//!
//! - [`member`]: member keys on ristretto255 (separate from a node's libp2p key).
//! - [`blsag`]: back's linkable spontaneous anonymous group signatures (bLSAG, as in
//!   *Zero to Monero*, 2nd ed., §3.4) whose linking tag is scoped to a round,
//!   `I = x·H_p(chain id ‖ round)`: a verifier learns "one member of this ring, with this
//!   tag" and nothing more; two signatures by one member in one round share a tag, and the
//!   same member's tags in two rounds are unrelated.
//! - [`pop`]: Schnorr proofs of possession, so a registration shows its member holds the key.
//! - [`keystore`]: member key files (mode 0600), optionally sealed under a passphrase with
//!   argon2id and XChaCha20-Poly1305.
//!
//! Bytes in, bytes out: nothing here knows about blocks or submissions. Secrets are handled
//! with constant-time scalar and point arithmetic and zeroed on drop; verification works on
//! public data only and uses variable-time multiplication.

mod hash;

pub mod blsag;
pub mod keystore;
pub mod member;
pub mod pop;

/// Deterministic member keys for tests, benches and the devnet: key `i` is derived from the
/// seed `[i + 1, 0, …]` (as `u64` little-endian in the first 8 bytes).
pub fn test_member_keys(n: usize) -> Vec<MemberSecret> {
    (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            MemberSecret::from_seed(&seed)
        })
        .collect()
}

pub use blsag::{Ring, RingError, RingSignature, SignError, VerifyError, link_tag, ring_digest, sign, verify};
pub use keystore::{KdfParams, KeystoreError, KeystoreInfo};
pub use member::{KeyError, MemberPublic, MemberSecret};
