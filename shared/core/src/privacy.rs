//! Personal data: ID numbers are replaced at ingest by a keyed hash, so the lake can count
//! distinct workers without ever holding who they are.

use std::hash::Hasher;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The environment variable holding the HMAC key (any string of 32+ bytes), for a lake run by
/// hand. On AWS the key stays out of the environment: see [`SECRET_ENV`].
pub const KEY_ENV: &str = "JIAZHENG_ID_HMAC_KEY";
/// The environment variable naming the Secrets Manager secret (ARN or name) that holds the
/// key; the functions read it with their own role, once per instance.
pub const SECRET_ENV: &str = "JIAZHENG_ID_HMAC_SECRET";
const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{KEY_ENV} is not set: ID numbers cannot be pseudonymised. Set it to a secret of at least {MIN_KEY_BYTES} bytes (on AWS it comes from SSM)"
    )]
    Missing,
    #[error("the ID-number key is too short: use at least {MIN_KEY_BYTES} bytes")]
    TooShort,
    #[error("cannot read the ID-number key from Secrets Manager ({secret}): {reason}")]
    Secret { secret: String, reason: String },
}

/// HMAC-SHA256 keyed hashing of ID numbers.
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(<key>)")
    }
}

impl Pseudonymizer {
    pub fn new(key: &[u8]) -> Result<Pseudonymizer, KeyError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort);
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| KeyError::TooShort)?;
        Ok(Pseudonymizer { mac })
    }

    /// Reads the key from [`KEY_ENV`].
    pub fn from_env() -> Result<Pseudonymizer, KeyError> {
        match std::env::var(KEY_ENV) {
            Ok(key) if !key.is_empty() => Pseudonymizer::new(key.as_bytes()),
            _ => Err(KeyError::Missing),
        }
    }

    /// The pseudonym of a checked, upper-cased ID number: 32 bytes, stored as they are.
    pub fn digest(&self, id_number: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(id_number.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Hashes a keyed hash (a pseudonym, a key's fingerprint) by its first eight bytes: its bytes are
/// already uniformly distributed and nobody without the key can choose colliding ones, so
/// hashing them again (SipHash, the default) only costs time, a million times per large file.
#[derive(Default)]
pub(crate) struct Leading(u64);

impl Hasher for Leading {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(word);
    }

    fn write_usize(&mut self, _length: usize) {}

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Where a local lake keeps its generated key.
const LOCAL_KEY: &str = "local/id-hmac-key";

/// The key for a lake: from the secret named by [`SECRET_ENV`] (AWS), else from [`KEY_ENV`];
/// otherwise, for a lake on this machine only, a random key generated once and kept in the
/// lake, so a newcomer's local run works without set-up while keeping pseudonyms stable
/// across runs. A lake elsewhere without either is an error: production keys come from the
/// secret store, never from the lake.
pub async fn for_lake(lake: &crate::lake::Lake) -> Result<Pseudonymizer, LocalKeyError> {
    if let Ok(secret) = std::env::var(SECRET_ENV)
        && !secret.is_empty()
    {
        return Ok(from_secret(&secret).await?);
    }
    match Pseudonymizer::from_env() {
        Err(KeyError::Missing) if lake.is_local() => {}
        other => return Ok(other?),
    }
    if let Some(key) = lake.get_object(LOCAL_KEY).await? {
        return Ok(Pseudonymizer::new(&key)?);
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| LocalKeyError::Random(e.to_string()))?;
    lake.put_object(LOCAL_KEY, bytes::Bytes::copy_from_slice(&key))
        .await?;
    tracing::warn!("{KEY_ENV} is not set: generated a key for this local lake");
    Ok(Pseudonymizer::new(&key)?)
}

/// Reads the key from Secrets Manager (endpoint, region and credentials from the standard AWS
/// environment). The secret's text is the key, as for [`KEY_ENV`].
async fn from_secret(secret: &str) -> Result<Pseudonymizer, KeyError> {
    let failed = |reason: String| KeyError::Secret {
        secret: secret.to_string(),
        reason,
    };
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let value = aws_sdk_secretsmanager::Client::new(&config)
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| failed(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string()))?;
    match (value.secret_string(), value.secret_binary()) {
        (Some(text), _) => Pseudonymizer::new(text.as_bytes()),
        (None, Some(bytes)) => Pseudonymizer::new(bytes.as_ref()),
        (None, None) => Err(failed("the secret has no value".into())),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocalKeyError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
    #[error("no randomness for a local key: {0}")]
    Random(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_and_stable() {
        let a = Pseudonymizer::new(&[1; 32]).unwrap();
        let b = Pseudonymizer::new(&[2; 32]).unwrap();
        let id = "11010519491231002X";
        assert_eq!(a.digest(id), a.digest(id));
        assert_ne!(a.digest(id), b.digest(id));
        assert!(!hex::encode(a.digest(id)).contains("110105"));
        assert!(matches!(
            Pseudonymizer::new(b"short"),
            Err(KeyError::TooShort)
        ));
    }
}
