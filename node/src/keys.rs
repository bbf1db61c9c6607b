//! Key files: the node's libp2p identity, a data source's member key and an enrolment
//! authority's key.
//!
//! The node key and the authority key are Ed25519 secret seeds written as 64 hex digits in
//! a file created with mode 0600 (never group- or world-readable). The member key is a
//! ristretto255 keystore (`learnchain-identity`'s `keystore`: JSON, mode 0600, optionally
//! sealed under a passphrase with argon2id and XChaCha20-Poly1305). The passphrase comes
//! from `--passphrase-file` or the `LEARNCHAIN_KEY_PASSPHRASE` environment variable, never
//! from a command-line argument (which other users can read in the process list).
//!
//! A missing node key or member key is created on first start; a malformed file is an
//! error naming the file, never silently replaced.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use ed25519_dalek::SigningKey;
use learnchain_identity::MemberSecret;
use learnchain_identity::keystore::{self, KdfParams};
use zeroize::Zeroizing;

/// Reads a 32-byte seed from `path`, or creates one if the file does not exist.
pub fn load_or_create_seed(path: &Path) -> anyhow::Result<[u8; 32]> {
    if path.exists() {
        return read_seed(path);
    }
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    write_seed(path, &seed)?;
    Ok(seed)
}

/// Reads a seed file.
pub fn read_seed(path: &Path) -> anyhow::Result<[u8; 32]> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read key file {}", path.display()))?;
    if meta.len() > 1024 {
        bail!("key file {} is too large to be a key", path.display());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read key file {}", path.display()))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed)
        .with_context(|| format!("key file {} does not hold 64 hex digits", path.display()))?;
    Ok(seed)
}

/// Writes a seed file with mode 0600, refusing to overwrite.
pub fn write_seed(path: &Path, seed: &[u8; 32]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("cannot create key file {}", path.display()))?;
    writeln!(f, "{}", hex::encode(seed))?;
    f.sync_all()?;
    Ok(())
}

/// The environment variable a key passphrase may come from.
pub const PASSPHRASE_ENV: &str = "LEARNCHAIN_KEY_PASSPHRASE";

/// The passphrase for a member keystore: the first line of `file` if given, else the
/// `LEARNCHAIN_KEY_PASSPHRASE` environment variable, else none.
pub fn passphrase(file: Option<&Path>) -> anyhow::Result<Option<Zeroizing<String>>> {
    if let Some(f) = file {
        let meta = std::fs::metadata(f).with_context(|| format!("cannot read passphrase file {}", f.display()))?;
        if meta.len() > 4096 {
            bail!("passphrase file {} is larger than 4 KiB", f.display());
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(f).with_context(|| format!("cannot read passphrase file {}", f.display()))?,
        );
        let line = text.lines().next().unwrap_or_default();
        if line.is_empty() {
            bail!("passphrase file {} is empty", f.display());
        }
        return Ok(Some(Zeroizing::new(line.to_string())));
    }
    Ok(std::env::var(PASSPHRASE_ENV).ok().filter(|p| !p.is_empty()).map(Zeroizing::new))
}

/// A member key from its keystore, or a new unencrypted one if the file does not exist.
pub fn member_key(path: &Path, passphrase: Option<&str>) -> anyhow::Result<MemberSecret> {
    if !path.exists() {
        let key = MemberSecret::generate(&mut rand::rngs::OsRng);
        keystore::write_new(path, &key, passphrase, KdfParams::DEFAULT)?;
        return Ok(key);
    }
    Ok(keystore::read_secret(path, passphrase)?)
}

/// An enrolment authority's Ed25519 key from its seed file (which must exist).
pub fn authority_key(path: &Path) -> anyhow::Result<SigningKey> {
    Ok(SigningKey::from_bytes(&read_seed(path)?))
}

/// The libp2p identity from `DATA_DIR/node.key` (created if missing).
pub fn node_keypair(data_dir: &Path) -> anyhow::Result<libp2p::identity::Keypair> {
    let seed = load_or_create_seed(&data_dir.join("node.key"))?;
    libp2p::identity::Keypair::ed25519_from_bytes(seed).context("node key is not a valid Ed25519 seed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_with_0600_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("k");
        let a = load_or_create_seed(&p).expect("create");
        assert_eq!(load_or_create_seed(&p).expect("read"), a);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&p, "not hex").expect("write");
        assert!(read_seed(&p).is_err());
        assert!(write_seed(&p, &a).is_err(), "never overwrites");
    }

    #[test]
    fn member_keys_are_created_then_read_back_and_a_wrong_passphrase_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("sub").join("member.key");
        let a = member_key(&p, None).expect("created");
        assert_eq!(member_key(&p, None).expect("read").public(), a.public());
        let sealed = dir.path().join("sealed.key");
        keystore::write_new(&sealed, &a, Some("right horse"), KdfParams::TEST).expect("write");
        assert_eq!(member_key(&sealed, Some("right horse")).expect("opens").public(), a.public());
        let err = format!("{:#}", member_key(&sealed, Some("wrong")).expect_err("wrong passphrase"));
        assert!(err.contains("wrong passphrase"), "{err}");
        let err = format!("{:#}", member_key(&sealed, None).expect_err("no passphrase"));
        assert!(err.contains("passphrase"), "{err}");
        let pf = dir.path().join("pass");
        std::fs::write(&pf, "right horse\n").expect("write");
        assert_eq!(passphrase(Some(&pf)).expect("read").as_deref().map(String::as_str), Some("right horse"));
        std::fs::write(&pf, "").expect("write");
        assert!(passphrase(Some(&pf)).is_err(), "an empty passphrase file is refused");
    }
}
