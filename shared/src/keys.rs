//! API keys: a submitter key may send files for its region and the regions inside it; an
//! analyst key may run SQL. The token is shown once when issued; the lake keeps only its
//! SHA-256, under `keys/{key_id}.json`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::lake::{Lake, LakeError};
use crate::regions::Region;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Submitter,
    Analyst,
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "submitter" => Ok(Role::Submitter),
            "analyst" => Ok(Role::Analyst),
            other => Err(format!("{other:?} is not a role: submitter or analyst")),
        }
    }
}

/// What the lake stores about a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub key_id: String,
    pub role: Role,
    /// The region the key is scoped to, as its API code.
    pub region: String,
    /// Its prefix, which submissions' regions must start with.
    pub region_prefix: String,
    pub secret_sha256: String,
    pub created_at: String,
}

impl Key {
    /// Whether the key may act for `region` (its own region or one inside it).
    pub fn covers(&self, region: &Region) -> bool {
        region.prefix.starts_with(&self.region_prefix)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("no randomness for a key: {0}")]
    Random(String),
}

const PREFIX: &str = "jz";

fn object_key(key_id: &str) -> String {
    format!("keys/{key_id}.json")
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex(bytes: usize) -> Result<String, KeyError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(hex::encode(buf))
}

/// Issues a key and returns its token — the only time the token exists outside its holder.
pub async fn issue(lake: &Lake, region: &Region, role: Role) -> Result<(String, Key), KeyError> {
    let key_id = random_hex(6)?;
    let secret = random_hex(24)?;
    let key = Key {
        key_id: key_id.clone(),
        role,
        region: region.code(),
        region_prefix: region.prefix.clone(),
        secret_sha256: sha256_hex(&secret),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let json = serde_json::to_vec_pretty(&key).map_err(LakeError::from)?;
    lake.put_object(&object_key(&key_id), Bytes::from(json))
        .await?;
    Ok((format!("{PREFIX}_{key_id}_{secret}"), key))
}

/// The key a token belongs to, or `None` for a malformed, unknown or wrong token.
pub async fn verify(lake: &Lake, token: &str) -> Result<Option<Key>, KeyError> {
    let mut parts = token.trim().splitn(3, '_');
    let (Some(PREFIX), Some(key_id), Some(secret)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    if key_id.is_empty() || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let Some(bytes) = lake.get_object(&object_key(key_id)).await? else {
        return Ok(None);
    };
    let Ok(key) = serde_json::from_slice::<Key>(&bytes) else {
        return Ok(None);
    };
    // Compare digests in constant time: the attacker controls the secret, not its hash.
    let given = sha256_hex(secret);
    let same = given.len() == key.secret_sha256.len()
        && given
            .bytes()
            .zip(key.secret_sha256.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    Ok(same.then_some(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::Level;

    #[tokio::test]
    async fn issued_tokens_verify_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let league = Region {
            prefix: "1522".into(),
            name: "兴安盟".into(),
            level: Level::City,
            communities: 220,
        };
        let (token, key) = issue(&lake, &league, Role::Submitter).await.unwrap();
        assert_eq!(verify(&lake, &token).await.unwrap(), Some(key.clone()));
        assert_eq!(key.region, "152200");
        let stored = String::from_utf8(
            lake.get_object(&object_key(&key.key_id))
                .await
                .unwrap()
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        let secret = token.rsplit('_').next().unwrap();
        assert!(!stored.contains(secret), "only the hash is stored");
        let mut wrong = token.clone();
        wrong.pop();
        wrong.push('x');
        for bad in [
            wrong.as_str(),
            "jz_zz_abc",
            "",
            "Bearer",
            "jz__",
            "jz_000000000000_abc",
        ] {
            assert_eq!(verify(&lake, bad).await.unwrap(), None, "{bad}");
        }
        let county = Region {
            prefix: "152201".into(),
            name: String::new(),
            level: Level::County,
            communities: 0,
        };
        assert!(key.covers(&county));
        assert!(!key.covers(&Region {
            prefix: "15".into(),
            ..county
        }));
    }
}
