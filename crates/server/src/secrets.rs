//! Secrets of the platform: the master key that seals account values
//! (XChaCha20-Poly1305, a random nonce per value), and the tokens and API
//! keys that are shown once and kept only as SHA-256 hashes. Tokens and keys
//! carry 256 random bits, so a fast hash is enough to make a stolen
//! database useless; a slow password hash would cost every gateway call.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// What can go wrong with secrets.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("SLUICE_MASTER_KEY must be 32 bytes in base64 (44 characters) or hex (64)")]
    BadMasterKey,
    #[error("cannot read or write the key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the system has no randomness: {0}")]
    Random(String),
    #[error("a sealed value cannot be opened: wrong master key or damaged data")]
    Open,
}

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(bytes)
}

/// A new secret with a readable prefix (`slt_` tokens, `slk_` API keys).
pub fn new_secret(prefix: &str) -> Result<String, SecretError> {
    let bytes = random_bytes::<32>()?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The stored form of a token or key.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    out
}

/// The public identifier of a secret: its prefix and first characters.
pub fn secret_id(secret: &str) -> String {
    secret.chars().take(12).collect()
}

/// Seals and opens account values.
#[derive(Clone)]
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// The key from `SLUICE_MASTER_KEY` text (base64 or hex of 32 bytes).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[i * 2..i * 2 + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| SecretError::BadMasterKey)?
        } else {
            STANDARD
                .decode(text)
                .map_err(|_| SecretError::BadMasterKey)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadMasterKey)?;
        Ok(Self::from_bytes(&key))
    }

    fn from_bytes(key: &[u8; 32]) -> Self {
        MasterKey {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// The key from the environment's text when given, else from the key
    /// file in `dir` (made, mode 0600, when missing).
    pub fn load(from_env: Option<&str>, dir: &Path) -> Result<Self, SecretError> {
        if let Some(text) = from_env {
            return Self::parse(text);
        }
        let path = dir.join("master.key");
        let file_error = |source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = random_bytes::<32>()?;
                write_private(&path, &STANDARD.encode(key)).map_err(file_error)?;
                Ok(Self::from_bytes(&key))
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// Encrypts `plain`; the nonce travels in front of the ciphertext.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, SecretError> {
        let nonce = random_bytes::<24>()?;
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plain)
            .map_err(|_| SecretError::Open)?;
        let mut out = Vec::with_capacity(24 + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`seal`](Self::seal) made.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < 24 {
            return Err(SecretError::Open);
        }
        let (nonce, data) = sealed.split_at(24);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), data)
            .map_err(|_| SecretError::Open)
    }
}

/// Writes `text` to a file only its owner can read.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_the_same_key_only() {
        let key = MasterKey::parse(&STANDARD.encode([7u8; 32])).unwrap();
        let sealed = key.seal(b"hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(key.open(&sealed).unwrap(), b"hunter2");
        let other = MasterKey::parse(&"ab".repeat(32)).unwrap();
        assert!(matches!(other.open(&sealed), Err(SecretError::Open)));
        assert!(MasterKey::parse("short").is_err());
    }

    #[test]
    fn secrets_are_hashed_and_identified_by_prefix() {
        let secret = new_secret("slk_").unwrap();
        assert!(secret.starts_with("slk_"));
        assert_eq!(hash_secret(&secret).len(), 64);
        assert_ne!(hash_secret(&secret), hash_secret("slk_other"));
        assert_eq!(secret_id(&secret).len(), 12);
    }
}
