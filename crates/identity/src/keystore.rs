//! Member key files.
//!
//! # Format
//!
//! A key file is one small JSON document (version 1):
//!
//! ```json
//! {
//!   "version": 1,
//!   "kind": "learnchain-member-key",
//!   "public": "<64 hex digits: the ristretto255 public key>",
//!   "secret": { "plain": "<64 hex digits: the secret scalar>" }
//! }
//! ```
//!
//! or, sealed under a passphrase,
//!
//! ```json
//!   "secret": {
//!     "argon2id": { "m_cost_kib": 19456, "t_cost": 2, "p_cost": 1, "salt": "<32 hex = 16 bytes>" },
//!     "xchacha20poly1305": { "nonce": "<48 hex = 24 bytes>", "ciphertext": "<96 hex = 48 bytes>" }
//!   }
//! ```
//!
//! Unknown fields are refused at every level. The public key is always stored in clear, so
//! [`read_public`] and [`inspect`] (what `keys show` needs) never ask for the passphrase;
//! [`read_secret`] checks that the secret it recovers has exactly that public key.
//!
//! # Encryption
//!
//! The 32-byte key is argon2id (version 0x13) of the passphrase's UTF-8 bytes (as given, not
//! normalised) under the stored salt and cost parameters; it seals the 32-byte secret with
//! XChaCha20-Poly1305 under a random 24-byte nonce, giving 32 + 16 bytes of ciphertext. The
//! AEAD's associated data binds the format version, the kind, the public key and the KDF
//! parameters with the salt, so altering any of them makes decryption fail as surely as a
//! wrong passphrase does ([`KeystoreError::WrongPassphrase`] says "or the file was
//! altered"). Salt and nonce come from the operating system's RNG. The derived key, the
//! plaintext and every buffer that holds the secret in hex are zeroed after use.
//! [`KdfParams::DEFAULT`] is OWASP's recommendation for argon2id: 19 MiB, 2 passes, 1 lane.
//!
//! # Permissions
//!
//! [`write_new`] never overwrites: it creates the file with `create_new` and, on unix, mode
//! 0600 from the moment it exists (missing parent directories are created with mode 0700),
//! then writes and fsyncs it. [`read_secret`] refuses, on unix, a file whose mode lets group
//! or others read or write it (`mode & 0o077 != 0`), as ssh does; reading only the public
//! part does not check.
//!
//! # Bounds
//!
//! A key file is hostile input until it parses. Before anything is allocated for it, a file
//! larger than [`MAX_FILE_LEN`] (16 KiB) is refused, and reading stops at that bound even if
//! the file grows meanwhile. Before any key derivation, cost parameters must lie within
//! argon2's own minimums and [`KdfParams::MAX_M_COST_KIB`] (1 GiB),
//! [`KdfParams::MAX_T_COST`] and [`KdfParams::MAX_P_COST`]; the salt must be exactly 16
//! bytes, the nonce exactly 24 and the ciphertext exactly 48.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::member::{MemberPublic, MemberSecret};

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The `kind` of a member key file.
pub const KIND: &str = "learnchain-member-key";
/// The largest key file read, in bytes (16 KiB); real files are well under 1 KiB.
pub const MAX_FILE_LEN: u64 = 16 * 1024;

const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const SECRET_LEN: usize = 32;
const CIPHERTEXT_LEN: usize = SECRET_LEN + 16;
/// Domain separation of the associated data.
const AAD_DOMAIN: &[u8] = b"learnchain/v1/keystore/aad";

/// argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KdfParams {
    /// Memory, in KiB.
    pub m_cost_kib: u32,
    /// Passes over the memory.
    pub t_cost: u32,
    /// Lanes (degree of parallelism).
    pub p_cost: u32,
}

impl KdfParams {
    /// OWASP's recommendation for argon2id: 19 MiB (19456 KiB), 2 passes, 1 lane.
    pub const DEFAULT: KdfParams = KdfParams { m_cost_kib: 19_456, t_cost: 2, p_cost: 1 };
    /// Cheap parameters (64 KiB, 1 pass, 1 lane) for tests only: they give a passphrase
    /// almost no protection against guessing.
    pub const TEST: KdfParams = KdfParams { m_cost_kib: 64, t_cost: 1, p_cost: 1 };
    /// The most memory a key file may ask for: 1 GiB.
    pub const MAX_M_COST_KIB: u32 = 1_048_576;
    /// The most passes a key file may ask for.
    pub const MAX_T_COST: u32 = 64;
    /// The most lanes a key file may ask for.
    pub const MAX_P_COST: u32 = 16;

    /// Checks the bounds above and argon2's own minimums (at least 1 pass, 1 lane and
    /// 8 KiB per lane), then builds argon2's parameters for a 32-byte output.
    fn check(&self) -> Result<argon2::Params, String> {
        let KdfParams { m_cost_kib, t_cost, p_cost } = *self;
        if m_cost_kib > Self::MAX_M_COST_KIB {
            return Err(format!(
                "argon2id m_cost_kib {m_cost_kib} is above the limit of {} KiB (1 GiB)",
                Self::MAX_M_COST_KIB
            ));
        }
        if t_cost > Self::MAX_T_COST {
            return Err(format!("argon2id t_cost {t_cost} is above the limit of {}", Self::MAX_T_COST));
        }
        if p_cost > Self::MAX_P_COST {
            return Err(format!("argon2id p_cost {p_cost} is above the limit of {}", Self::MAX_P_COST));
        }
        argon2::Params::new(m_cost_kib, t_cost, p_cost, Some(SECRET_LEN)).map_err(|e| {
            format!("argon2id parameters m_cost_kib {m_cost_kib}, t_cost {t_cost}, p_cost {p_cost} are invalid: {e}")
        })
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a key file says without its passphrase; see [`inspect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeystoreInfo {
    /// The member's public key, as stored.
    pub public: MemberPublic,
    /// Whether the secret is sealed under a passphrase.
    pub encrypted: bool,
    /// The argon2id parameters of a sealed secret; `None` for a plain one.
    pub kdf: Option<KdfParams>,
}

/// Why a key file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The file system refused (missing file, no permission, disk full, …).
    #[error("key file {}: {source}", .path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// [`write_new`] never overwrites a file.
    #[error("key file {} already exists; refusing to overwrite it", .0.display())]
    Exists(PathBuf),
    /// Larger than [`MAX_FILE_LEN`]: not a member key file.
    #[error("key file {} is larger than {MAX_FILE_LEN} bytes, so it is not a member key file", .0.display())]
    TooLarge(PathBuf),
    /// Not a well-formed member key file.
    #[error("key file {} is malformed: {reason}", .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A format version this build does not know.
    #[error("key file {} has format version {version}; this build reads version {FORMAT_VERSION}", .path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version it claims.
        version: u64,
    },
    /// The secret is sealed and no passphrase was given.
    #[error("key file {} is encrypted; a passphrase is required", .0.display())]
    PassphraseRequired(PathBuf),
    /// Decryption failed: a wrong passphrase, or an altered file.
    #[error("wrong passphrase for key file {} (or the file was altered)", .0.display())]
    WrongPassphrase(PathBuf),
    /// The secret does not belong to the public key stored beside it.
    #[error("key file {}: the secret key does not match the stored public key", .0.display())]
    PublicMismatch(PathBuf),
    /// The file's mode lets group or others read or write it.
    #[error(
        "key file {} has permissions {mode:04o}, which let other users read or change it; run chmod 600 {}",
        .path.display(), .path.display()
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits (`mode & 0o7777`).
        mode: u32,
    },
    /// An empty passphrase was given; `None` stores the key unencrypted.
    #[error("an empty passphrase is not allowed; give none to store the key unencrypted")]
    EmptyPassphrase,
    /// Key derivation or sealing failed, or the cost parameters to write are out of bounds.
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

/// Writes a new key file at `path`, sealed under `passphrase` with `params` if one is given,
/// in clear otherwise (`params` is then unused).
///
/// Missing parent directories are created (mode 0700 on unix). The file is created only if
/// it does not exist ([`KeystoreError::Exists`] otherwise), with mode 0600 on unix from the
/// start, and is fsynced before this returns; if writing fails, the partial file is
/// removed. An empty passphrase is refused ([`KeystoreError::EmptyPassphrase`]), as are
/// cost parameters outside the bounds of the module documentation ([`KeystoreError::Kdf`]).
pub fn write_new(
    path: &Path,
    secret: &MemberSecret,
    passphrase: Option<&str>,
    params: KdfParams,
) -> Result<(), KeystoreError> {
    let public = secret.public();
    let secret_doc = match passphrase {
        None => SecretDoc { plain: Some(secret_hex(secret)), argon2id: None, xchacha20poly1305: None },
        Some("") => return Err(KeystoreError::EmptyPassphrase),
        Some(passphrase) => {
            params.check().map_err(KeystoreError::Kdf)?;
            let mut salt = [0u8; SALT_LEN];
            let mut nonce = [0u8; NONCE_LEN];
            OsRng.fill_bytes(&mut salt);
            OsRng.fill_bytes(&mut nonce);
            let key = derive_key(passphrase, &salt, &params)?;
            let aad = associated_data(&public, &params, &salt);
            let plaintext = secret.to_bytes();
            let ciphertext = XChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
                .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext.as_ref(), aad: &aad })
                .map_err(|_| KeystoreError::Kdf("XChaCha20-Poly1305 sealing failed".into()))?;
            SecretDoc {
                plain: None,
                argon2id: Some(KdfDoc {
                    m_cost_kib: params.m_cost_kib,
                    t_cost: params.t_cost,
                    p_cost: params.p_cost,
                    salt: hex::encode(salt),
                }),
                xchacha20poly1305: Some(AeadDoc { nonce: hex::encode(nonce), ciphertext: hex::encode(ciphertext) }),
            }
        }
    };
    let doc = KeyFileDoc { version: FORMAT_VERSION, kind: KIND.to_owned(), public: public.to_string(), secret: secret_doc };
    // Sized up front so the buffer holding the secret never reallocates (leaving copies).
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_FILE_LEN as usize));
    serde_json::to_writer_pretty(&mut *bytes, &doc)
        .map_err(|e| KeystoreError::Kdf(format!("cannot encode the key file: {e}")))?;
    bytes.push(b'\n');

    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs(parent)?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => KeystoreError::Exists(path.to_owned()),
        _ => io_error(path, e),
    })?;
    if let Err(e) = file.write_all(&bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(io_error(path, e));
    }
    // Make the new directory entry durable too; some file systems cannot sync a directory.
    #[cfg(unix)]
    if let Some(parent) = path.parent() {
        let dir = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// The public key stored in a key file. Needs no passphrase and does not check the file's
/// permissions; the file must still be a well-formed key file.
pub fn read_public(path: &Path) -> Result<MemberPublic, KeystoreError> {
    Ok(inspect(path)?.public)
}

/// What a key file says without its passphrase: its public key, whether the secret is
/// encrypted, and under which argon2id parameters. Validates the whole file (bounds
/// included) but derives nothing and does not check the file's permissions.
pub fn inspect(path: &Path) -> Result<KeystoreInfo, KeystoreError> {
    let parsed = load(path, false)?;
    let kdf = match &parsed.secret {
        SecretPart::Plain(_) => None,
        SecretPart::Sealed { params, .. } => Some(*params),
    };
    Ok(KeystoreInfo { public: parsed.public, encrypted: kdf.is_some(), kdf })
}

/// The secret in a key file.
///
/// On unix, a file whose mode lets group or others read or write it is refused
/// ([`KeystoreError::Permissions`]) before it is read. A sealed secret needs its
/// passphrase ([`KeystoreError::PassphraseRequired`] without one); a passphrase given for a
/// plain file is ignored. The recovered secret must have the stored public key
/// ([`KeystoreError::PublicMismatch`]).
pub fn read_secret(path: &Path, passphrase: Option<&str>) -> Result<MemberSecret, KeystoreError> {
    let parsed = load(path, true)?;
    let bytes: Zeroizing<[u8; SECRET_LEN]> = match &parsed.secret {
        SecretPart::Plain(bytes) => bytes.clone(),
        SecretPart::Sealed { params, salt, nonce, ciphertext } => {
            let passphrase = match passphrase {
                None => return Err(KeystoreError::PassphraseRequired(path.to_owned())),
                Some("") => return Err(KeystoreError::EmptyPassphrase),
                Some(p) => p,
            };
            let key = derive_key(passphrase, salt, params)?;
            let aad = associated_data(&parsed.public, params, salt);
            let plaintext = Zeroizing::new(
                XChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
                    .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
                    .map_err(|_| KeystoreError::WrongPassphrase(path.to_owned()))?,
            );
            let mut bytes = Zeroizing::new([0u8; SECRET_LEN]);
            if plaintext.len() != SECRET_LEN {
                return Err(malformed(path, "the sealed secret is not 32 bytes"));
            }
            bytes.copy_from_slice(&plaintext);
            bytes
        }
    };
    let secret = MemberSecret::from_bytes(&bytes)
        .map_err(|e| malformed(path, format!("the secret is not a member key: {e}")))?;
    if secret.public() != parsed.public {
        return Err(KeystoreError::PublicMismatch(path.to_owned()));
    }
    Ok(secret)
}

/// The JSON document, as written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileDoc {
    version: u32,
    kind: String,
    public: String,
    secret: SecretDoc,
}

/// Just enough of a document to tell its kind and version, whatever else it holds.
#[derive(Deserialize)]
struct HeaderDoc {
    version: u64,
    kind: String,
}

/// Either `plain`, or both `argon2id` and `xchacha20poly1305`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    argon2id: Option<KdfDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xchacha20poly1305: Option<AeadDoc>,
}

impl Drop for SecretDoc {
    fn drop(&mut self) {
        if let Some(plain) = &mut self.plain {
            plain.zeroize();
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfDoc {
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AeadDoc {
    nonce: String,
    ciphertext: String,
}

/// A validated key file.
struct Parsed {
    public: MemberPublic,
    secret: SecretPart,
}

enum SecretPart {
    Plain(Zeroizing<[u8; SECRET_LEN]>),
    Sealed { params: KdfParams, salt: [u8; SALT_LEN], nonce: [u8; NONCE_LEN], ciphertext: [u8; CIPHERTEXT_LEN] },
}

/// Reads (within [`MAX_FILE_LEN`]) and validates a key file; checks its permissions first
/// when `private` is set.
fn load(path: &Path, private: bool) -> Result<Parsed, KeystoreError> {
    let bytes = read_bounded(path, private)?;
    let header: HeaderDoc = serde_json::from_slice(&bytes).map_err(|e| malformed(path, e.to_string()))?;
    if header.kind != KIND {
        return Err(malformed(path, format!("kind is {:?}, not {KIND:?}", header.kind)));
    }
    if header.version != u64::from(FORMAT_VERSION) {
        return Err(KeystoreError::UnsupportedVersion { path: path.to_owned(), version: header.version });
    }
    let mut doc: KeyFileDoc = serde_json::from_slice(&bytes).map_err(|e| malformed(path, e.to_string()))?;

    let mut public = [0u8; 32];
    hex::decode_to_slice(&doc.public, &mut public)
        .map_err(|e| malformed(path, format!("public key is not 64 hex digits: {e}")))?;
    let public =
        MemberPublic::from_bytes(public).map_err(|e| malformed(path, format!("public key is not a member key: {e}")))?;

    let secret = match (doc.secret.plain.take(), doc.secret.argon2id.take(), doc.secret.xchacha20poly1305.take()) {
        (Some(plain), None, None) => {
            let plain = Zeroizing::new(plain);
            let mut bytes = Zeroizing::new([0u8; SECRET_LEN]);
            hex::decode_to_slice(plain.as_bytes(), bytes.as_mut())
                .map_err(|e| malformed(path, format!("plain secret is not 64 hex digits: {e}")))?;
            SecretPart::Plain(bytes)
        }
        (None, Some(kdf), Some(aead)) => {
            let params = KdfParams { m_cost_kib: kdf.m_cost_kib, t_cost: kdf.t_cost, p_cost: kdf.p_cost };
            params.check().map_err(|reason| malformed(path, reason))?;
            SecretPart::Sealed {
                params,
                salt: decode_exact(path, "argon2id salt", &kdf.salt)?,
                nonce: decode_exact(path, "XChaCha20-Poly1305 nonce", &aead.nonce)?,
                ciphertext: decode_exact(path, "XChaCha20-Poly1305 ciphertext", &aead.ciphertext)?,
            }
        }
        _ => {
            return Err(malformed(
                path,
                "secret must hold either \"plain\", or both \"argon2id\" and \"xchacha20poly1305\"",
            ));
        }
    };
    Ok(Parsed { public, secret })
}

/// The file's bytes, at most [`MAX_FILE_LEN`] of them; with `private`, refuses on unix a
/// file that group or others may read or write, before reading it.
fn read_bounded(path: &Path, private: bool) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let metadata = file.metadata().map_err(|e| io_error(path, e))?;
    if !metadata.is_file() {
        return Err(malformed(path, "not a regular file"));
    }
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeystoreError::Permissions { path: path.to_owned(), mode });
        }
    }
    #[cfg(not(unix))]
    let _ = private;
    if metadata.len() > MAX_FILE_LEN {
        return Err(KeystoreError::TooLarge(path.to_owned()));
    }
    // One spare byte, to notice a file that grew past the bound since `metadata`.
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_FILE_LEN as usize + 1));
    file.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes).map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(KeystoreError::TooLarge(path.to_owned()));
    }
    Ok(bytes)
}

/// argon2id(passphrase, salt, params), 32 bytes.
fn derive_key(
    passphrase: &str,
    salt: &[u8; SALT_LEN],
    params: &KdfParams,
) -> Result<Zeroizing<[u8; SECRET_LEN]>, KeystoreError> {
    let params = params.check().map_err(KeystoreError::Kdf)?;
    let mut key = Zeroizing::new([0u8; SECRET_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| KeystoreError::Kdf(e.to_string()))?;
    Ok(key)
}

/// The AEAD's associated data: the format version, kind, public key, KDF parameters and
/// salt, each fixed-length or length-prefixed. (Version and kind are checked to be these
/// constants before decryption, so binding the constants binds the file's values.)
fn associated_data(public: &MemberPublic, params: &KdfParams, salt: &[u8; SALT_LEN]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(128);
    for part in [AAD_DOMAIN, KIND.as_bytes()] {
        aad.extend_from_slice(&(part.len() as u64).to_le_bytes());
        aad.extend_from_slice(part);
    }
    aad.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    aad.extend_from_slice(public.as_bytes());
    for cost in [params.m_cost_kib, params.t_cost, params.p_cost] {
        aad.extend_from_slice(&cost.to_le_bytes());
    }
    aad.extend_from_slice(salt);
    aad
}

/// The secret as 64 hex digits, without leaving copies in reallocated buffers.
fn secret_hex(secret: &MemberSecret) -> String {
    let mut digits = Zeroizing::new([0u8; 2 * SECRET_LEN]);
    // Cannot fail: the output is exactly twice the input.
    let _ = hex::encode_to_slice(secret.to_bytes().as_ref(), digits.as_mut());
    digits.iter().map(|&d| char::from(d)).collect::<String>()
}

/// Decodes a hex field of exactly `N` bytes.
fn decode_exact<const N: usize>(path: &Path, what: &str, text: &str) -> Result<[u8; N], KeystoreError> {
    let mut out = [0u8; N];
    if text.len() != 2 * N {
        return Err(malformed(path, format!("{what} must be {N} bytes ({} hex digits)", 2 * N)));
    }
    hex::decode_to_slice(text, &mut out).map_err(|e| malformed(path, format!("{what} is not hex: {e}")))?;
    Ok(out)
}

/// Creates missing directories (mode 0700 on unix).
fn create_dirs(dir: &Path) -> Result<(), KeystoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| io_error(dir, e))
}

fn io_error(path: &Path, source: io::Error) -> KeystoreError {
    KeystoreError::Io { path: path.to_owned(), source }
}

fn malformed(path: &Path, reason: impl Into<String>) -> KeystoreError {
    KeystoreError::Malformed { path: path.to_owned(), reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::{Value, json};

    const PASS: &str = "correct horse battery staple";

    fn key(seed: u64) -> MemberSecret {
        MemberSecret::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
    }

    fn json_of(path: &Path) -> Value {
        serde_json::from_slice(&fs::read(path).expect("read")).expect("json")
    }

    /// Replaces the file's contents, keeping its mode (0600).
    fn rewrite(path: &Path, value: &Value) {
        fs::write(path, serde_json::to_vec(value).expect("encode")).expect("write");
    }

    /// A new file with mode 0600 holding `bytes`.
    fn write_raw(path: &Path, bytes: &[u8]) {
        fs::write(path, bytes).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    }

    fn sealed_file(dir: &tempfile::TempDir, secret: &MemberSecret) -> PathBuf {
        let path = dir.path().join("member.key");
        write_new(&path, secret, Some(PASS), KdfParams::TEST).expect("write");
        path
    }

    #[test]
    fn keystore_plain_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/member.key");
        let k = key(1);
        write_new(&path, &k, None, KdfParams::TEST).expect("write");
        let back = read_secret(&path, None).expect("read");
        assert_eq!(back.public(), k.public());
        assert_eq!(*back.to_bytes(), *k.to_bytes());
        assert_eq!(read_secret(&path, Some("ignored")).expect("read").public(), k.public());
        assert_eq!(read_public(&path).expect("public"), k.public());
        assert_eq!(inspect(&path).expect("inspect"), KeystoreInfo { public: k.public(), encrypted: false, kdf: None });
        let v = json_of(&path);
        assert_eq!(v["version"], json!(1));
        assert_eq!(v["kind"], json!(KIND));
        assert_eq!(v["public"], json!(k.public().to_string()));
        assert_eq!(v["secret"], json!({ "plain": hex::encode(k.to_bytes().as_ref()) }));
    }

    #[test]
    fn keystore_sealed_round_trip_hides_the_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = key(2);
        let path = sealed_file(&dir, &k);
        let back = read_secret(&path, Some(PASS)).expect("read");
        assert_eq!(back.public(), k.public());
        assert_eq!(*back.to_bytes(), *k.to_bytes());
        assert_eq!(read_public(&path).expect("public"), k.public());
        let info = inspect(&path).expect("inspect");
        assert!(info.encrypted);
        assert_eq!(info.kdf, Some(KdfParams::TEST));
        let text = fs::read_to_string(&path).expect("read");
        assert!(!text.contains(&hex::encode(k.to_bytes().as_ref())), "secret in clear");
        let v = json_of(&path);
        assert_eq!(v["secret"]["argon2id"]["m_cost_kib"], json!(64));
        assert_eq!(v["secret"]["argon2id"]["salt"].as_str().map(str::len), Some(32));
        assert_eq!(v["secret"]["xchacha20poly1305"]["nonce"].as_str().map(str::len), Some(48));
        assert_eq!(v["secret"]["xchacha20poly1305"]["ciphertext"].as_str().map(str::len), Some(96));
        // Fresh salt and nonce each time.
        let other = dir.path().join("other.key");
        write_new(&other, &k, Some(PASS), KdfParams::TEST).expect("write");
        let w = json_of(&other);
        assert_ne!(v["secret"]["argon2id"]["salt"], w["secret"]["argon2id"]["salt"]);
        assert_ne!(v["secret"]["xchacha20poly1305"]["nonce"], w["secret"]["xchacha20poly1305"]["nonce"]);
    }

    /// A file sealed with [`KdfParams::DEFAULT`] (one real derivation). It also pins the
    /// format: key derivation and associated data may not change under version 1.
    #[test]
    fn keystore_default_params_known_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kat.key");
        write_raw(&path, KAT_FILE.as_bytes());
        let secret = read_secret(&path, Some(KAT_PASS)).expect("decrypts");
        assert_eq!(*secret.to_bytes(), *key(42).to_bytes());
        assert_eq!(inspect(&path).expect("inspect").kdf, Some(KdfParams::DEFAULT));
    }

    const KAT_PASS: &str = "learnchain known answer";
    const KAT_FILE: &str = r#"{
  "version": 1,
  "kind": "learnchain-member-key",
  "public": "e20d6c6012a6523c0732dc925878e72bf7a4697288858ad07aa76d1a3bcb0a0e",
  "secret": {
    "argon2id": {
      "m_cost_kib": 19456,
      "t_cost": 2,
      "p_cost": 1,
      "salt": "a90de7ce5f2e29ca5301f218a4f30b7c"
    },
    "xchacha20poly1305": {
      "nonce": "0240c98262dac626cb27626b6f3f71044d38671e93354b8e",
      "ciphertext": "c1ea515d018a741c76c6418e686a64fc590ca434aabd1fa846cc748f3b532e26cb77efbf7cd23ffd97795e2a5fdfc887"
    }
  }
}
"#;

    #[cfg(unix)]
    #[test]
    fn keystore_file_mode_is_0600_and_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let k = key(3);
        let path = sealed_file(&dir, &k);
        let plain = dir.path().join("plain.key");
        write_new(&plain, &k, None, KdfParams::TEST).expect("write");
        for p in [&path, &plain] {
            assert_eq!(fs::metadata(p).expect("stat").permissions().mode() & 0o7777, 0o600);
        }
        for (p, mode) in [(&path, 0o644), (&plain, 0o640), (&plain, 0o602)] {
            fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
            let err = read_secret(p, Some(PASS)).expect_err("refused");
            assert!(matches!(err, KeystoreError::Permissions { mode: m, .. } if m == mode), "{err}");
            if mode == 0o644 {
                let msg = err.to_string();
                assert!(msg.contains("0644") && msg.contains(&format!("chmod 600 {}", p.display())), "{msg}");
            }
            assert_eq!(read_public(p).expect("public needs no private file"), k.public());
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).expect("chmod");
        assert!(read_secret(&path, Some(PASS)).is_ok(), "owner-only read is fine");
    }

    #[test]
    fn keystore_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = sealed_file(&dir, &key(4));
        let before = fs::read(&path).expect("read");
        let err = write_new(&path, &key(5), None, KdfParams::TEST).expect_err("exists");
        assert!(matches!(&err, KeystoreError::Exists(p) if p == &path), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(fs::read(&path).expect("read"), before);
    }

    #[test]
    fn keystore_refuses_empty_passphrase_and_bad_params_on_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("member.key");
        let err = write_new(&path, &key(6), Some(""), KdfParams::TEST).expect_err("empty");
        assert!(matches!(err, KeystoreError::EmptyPassphrase), "{err}");
        let huge = KdfParams { m_cost_kib: KdfParams::MAX_M_COST_KIB + 1, ..KdfParams::TEST };
        let err = write_new(&path, &key(6), Some(PASS), huge).expect_err("huge");
        assert!(matches!(err, KeystoreError::Kdf(_)), "{err}");
        let tiny = KdfParams { m_cost_kib: 8, t_cost: 1, p_cost: 2 };
        assert!(matches!(write_new(&path, &key(6), Some(PASS), tiny), Err(KeystoreError::Kdf(_))));
        assert!(!path.exists(), "nothing written");
    }

    #[test]
    fn keystore_wrong_or_missing_passphrase() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = sealed_file(&dir, &key(7));
        let err = read_secret(&path, Some("Correct horse battery staple")).expect_err("wrong");
        assert!(matches!(&err, KeystoreError::WrongPassphrase(p) if p == &path), "{err}");
        assert!(err.to_string().contains("wrong passphrase"), "{err}");
        let err = read_secret(&path, None).expect_err("missing");
        assert!(matches!(&err, KeystoreError::PassphraseRequired(p) if p == &path), "{err}");
        assert!(matches!(read_secret(&path, Some("")), Err(KeystoreError::EmptyPassphrase)));
    }

    #[test]
    fn keystore_tampering_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = key(8);
        let path = sealed_file(&dir, &k);
        let original = json_of(&path);
        let other = key(9).public().to_string();
        let flip = |s: &Value| {
            let mut s = s.as_str().expect("str").to_owned();
            let c = if s.starts_with('0') { "1" } else { "0" };
            s.replace_range(0..1, c);
            json!(s)
        };
        let tampered: Vec<(&str, Value)> = vec![
            ("public", { let mut v = original.clone(); v["public"] = json!(other); v }),
            ("m_cost", { let mut v = original.clone(); v["secret"]["argon2id"]["m_cost_kib"] = json!(72); v }),
            ("t_cost", { let mut v = original.clone(); v["secret"]["argon2id"]["t_cost"] = json!(2); v }),
            ("salt", { let mut v = original.clone(); v["secret"]["argon2id"]["salt"] = flip(&v["secret"]["argon2id"]["salt"]); v }),
            ("nonce", {
                let mut v = original.clone();
                v["secret"]["xchacha20poly1305"]["nonce"] = flip(&v["secret"]["xchacha20poly1305"]["nonce"]);
                v
            }),
            ("ciphertext", {
                let mut v = original.clone();
                v["secret"]["xchacha20poly1305"]["ciphertext"] = flip(&v["secret"]["xchacha20poly1305"]["ciphertext"]);
                v
            }),
        ];
        for (what, v) in tampered {
            rewrite(&path, &v);
            let err = read_secret(&path, Some(PASS)).expect_err(what);
            assert!(matches!(err, KeystoreError::WrongPassphrase(_)), "{what}: {err}");
        }
        let mut v = original.clone();
        v["version"] = json!(2);
        rewrite(&path, &v);
        assert!(matches!(read_secret(&path, Some(PASS)), Err(KeystoreError::UnsupportedVersion { version: 2, .. })));
        let mut v = original.clone();
        v["kind"] = json!("learnchain-node-key");
        rewrite(&path, &v);
        assert!(matches!(read_secret(&path, Some(PASS)), Err(KeystoreError::Malformed { .. })));
        rewrite(&path, &original);
        assert_eq!(read_secret(&path, Some(PASS)).expect("untampered").public(), k.public());

        // A plain file whose public key was swapped.
        let plain = dir.path().join("plain.key");
        write_new(&plain, &k, None, KdfParams::TEST).expect("write");
        let mut v = json_of(&plain);
        v["public"] = json!(other);
        rewrite(&plain, &v);
        assert!(matches!(read_secret(&plain, None), Err(KeystoreError::PublicMismatch(_))));
    }

    /// The associated data changes with every field it binds, so a file whose AAD fields were
    /// edited cannot decrypt even when its key would still derive.
    #[test]
    fn keystore_associated_data_binds_each_field() {
        let (a, b) = (key(10).public(), key(11).public());
        let salt = [7u8; SALT_LEN];
        let base = associated_data(&a, &KdfParams::TEST, &salt);
        let variants = [
            associated_data(&b, &KdfParams::TEST, &salt),
            associated_data(&a, &KdfParams { m_cost_kib: 65, ..KdfParams::TEST }, &salt),
            associated_data(&a, &KdfParams { t_cost: 2, ..KdfParams::TEST }, &salt),
            associated_data(&a, &KdfParams { p_cost: 2, ..KdfParams::TEST }, &salt),
            associated_data(&a, &KdfParams::TEST, &[8u8; SALT_LEN]),
        ];
        for v in variants {
            assert_ne!(v, base);
        }
    }

    #[test]
    fn keystore_malformed_files_give_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = key(12);
        let good = json_of(&sealed_file(&dir, &k));
        let path = dir.path().join("bad.key");
        let check = |bytes: &[u8], want: &str| {
            let _ = fs::remove_file(&path);
            write_raw(&path, bytes);
            let err = read_public(&path).expect_err(want);
            let msg = err.to_string();
            assert!(msg.contains(want), "wanted {want:?} in {msg:?}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            err
        };
        let err = check(b"{\"version\": 1, \"kind\": ", "malformed");
        assert!(matches!(err, KeystoreError::Malformed { .. }));
        check(b"[]", "malformed");

        let mut v = good.clone();
        v["comment"] = json!("hi");
        check(&serde_json::to_vec(&v).expect("encode"), "unknown field `comment`");
        let mut v = good.clone();
        v["secret"]["argon2id"]["memory"] = json!(1);
        check(&serde_json::to_vec(&v).expect("encode"), "unknown field `memory`");
        let mut v = good.clone();
        v["secret"]["plain"] = json!(hex::encode(k.to_bytes().as_ref()));
        check(&serde_json::to_vec(&v).expect("encode"), "either \"plain\"");

        // Absurd cost parameters are refused before any memory is allocated for them.
        let mut v = good.clone();
        v["secret"]["argon2id"]["m_cost_kib"] = json!(4_000_000_000u32);
        let err = check(&serde_json::to_vec(&v).expect("encode"), "m_cost_kib 4000000000 is above the limit");
        assert!(matches!(err, KeystoreError::Malformed { .. }));
        let mut v = good.clone();
        v["secret"]["argon2id"]["m_cost_kib"] = json!(1u64 << 40);
        check(&serde_json::to_vec(&v).expect("encode"), "malformed");
        let mut v = good.clone();
        v["secret"]["argon2id"]["t_cost"] = json!(1000);
        check(&serde_json::to_vec(&v).expect("encode"), "t_cost 1000");
        let mut v = good.clone();
        v["secret"]["argon2id"]["p_cost"] = json!(0);
        check(&serde_json::to_vec(&v).expect("encode"), "invalid");
        let mut v = good.clone();
        v["secret"]["argon2id"]["salt"] = json!("00");
        check(&serde_json::to_vec(&v).expect("encode"), "salt must be 16 bytes");
        let mut v = good.clone();
        v["secret"]["xchacha20poly1305"]["nonce"] = json!("zz".repeat(24));
        check(&serde_json::to_vec(&v).expect("encode"), "nonce is not hex");
        let mut v = good.clone();
        v["secret"]["xchacha20poly1305"]["ciphertext"] = json!("00".repeat(64));
        check(&serde_json::to_vec(&v).expect("encode"), "ciphertext must be 48 bytes");
        let mut v = good.clone();
        v["public"] = json!("00".repeat(32));
        check(&serde_json::to_vec(&v).expect("encode"), "public key is not a member key");

        let mut big = serde_json::to_vec(&good).expect("encode");
        big.resize(MAX_FILE_LEN as usize + 1, b' ');
        let err = check(&big, "larger than");
        assert!(matches!(err, KeystoreError::TooLarge(_)));
        big.truncate(MAX_FILE_LEN as usize);
        let _ = fs::remove_file(&path);
        write_raw(&path, &big);
        assert_eq!(read_public(&path).expect("at the bound"), k.public());

        let missing = dir.path().join("missing.key");
        assert!(matches!(read_public(&missing), Err(KeystoreError::Io { .. })));
        assert!(matches!(read_public(dir.path()), Err(KeystoreError::Malformed { .. })));
    }
}
