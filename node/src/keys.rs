//! Key files: the node's libp2p identity and a data source's member key.
//!
//! Both are Ed25519 secret seeds written as 64 hex digits in a file created with mode 0600
//! (never group- or world-readable). A missing file is created on first start; a malformed
//! one is an error naming the file, never silently replaced.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use ed25519_dalek::SigningKey;

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

/// A member signing key from its file (created if missing).
pub fn member_key(path: &Path) -> anyhow::Result<SigningKey> {
    Ok(SigningKey::from_bytes(&load_or_create_seed(path)?))
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
}
