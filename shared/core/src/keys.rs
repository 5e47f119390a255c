//! API keys: a submitter key may send files for its region and the regions inside it; an
//! analyst key may run SQL. The token is shown once when issued; the lake keeps only its
//! SHA-256, under `keys/{key_id}.json`. A key may carry an expiry and can be revoked; either
//! way it stops working at once, and so do the browser sessions opened with it.
//!
//! A browser that signs in gets a session (`sessions/{id}.json`, again only a hash of its
//! secret) instead of keeping the key itself in a cookie: signing out ends the session, and a
//! stolen cookie is worth one working day at most.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use chrono::{DateTime, Utc};

use crate::lake::{Lake, LakeError};
use crate::regions::{Prefix, Region};

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
    pub region_prefix: Prefix,
    pub secret_sha256: String,
    pub created_at: String,
    /// RFC 3339; the key stops working then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// RFC 3339; set by `jiazheng keys revoke`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl Key {
    /// Whether the key may act for `region` (its own region or one inside it).
    pub fn covers(&self, region: &Region) -> bool {
        self.region_prefix.contains(&region.prefix)
    }

    /// Neither revoked nor past its expiry.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && !past(self.expires_at.as_deref(), now)
    }
}

/// Whether an RFC 3339 time is at or before `now`; an unreadable one counts as past.
fn past(at: Option<&str>, now: DateTime<Utc>) -> bool {
    at.is_some_and(|at| DateTime::parse_from_rfc3339(at).map_or(true, |at| at <= now))
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("no randomness for a key: {0}")]
    Random(String),
    #[error("no key {0}")]
    Unknown(String),
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
    issue_until(lake, region, role, None).await
}

/// The same, for a key that stops working at `expires`.
pub async fn issue_until(
    lake: &Lake,
    region: &Region,
    role: Role,
    expires: Option<DateTime<Utc>>,
) -> Result<(String, Key), KeyError> {
    let key_id = random_hex(6)?;
    let secret = random_hex(24)?;
    let key = Key {
        key_id: key_id.clone(),
        role,
        region: region.code(),
        region_prefix: region.prefix.clone(),
        secret_sha256: sha256_hex(&secret),
        created_at: rfc3339(Utc::now()),
        expires_at: expires.map(rfc3339),
        revoked_at: None,
    };
    let json = serde_json::to_vec_pretty(&key).map_err(LakeError::from)?;
    lake.put_object(&object_key(&key_id), Bytes::from(json))
        .await?;
    Ok((format!("{PREFIX}_{key_id}_{secret}"), key))
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `{prefix}_{id}_{secret}` split into id and secret, the id checked as hex so it can only
/// name an object of its own kind.
fn split<'t>(token: &'t str, prefix: &str) -> Option<(&'t str, &'t str)> {
    let mut parts = token.trim().splitn(3, '_');
    let (Some(p), Some(id), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    (p == prefix && !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some((id, secret))
}

/// Compares digests in constant time: the caller controls the secret, not its hash.
fn same_secret(secret: &str, stored_sha256: &str) -> bool {
    let given = sha256_hex(secret);
    given.len() == stored_sha256.len()
        && given
            .bytes()
            .zip(stored_sha256.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn load(lake: &Lake, key_id: &str) -> Result<Option<Key>, KeyError> {
    let Some(bytes) = lake.get_object(&object_key(key_id)).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<Key>(&bytes).ok())
}

/// The key a token belongs to, or `None` for a malformed, unknown, wrong, expired or revoked
/// token.
pub async fn verify(lake: &Lake, token: &str) -> Result<Option<Key>, KeyError> {
    let Some((key_id, secret)) = split(token, PREFIX) else {
        return Ok(None);
    };
    let Some(key) = load(lake, key_id).await? else {
        return Ok(None);
    };
    Ok((same_secret(secret, &key.secret_sha256) && key.is_live(Utc::now())).then_some(key))
}

/// Revokes a key: from now on it verifies as no key at all, and so do its sessions.
pub async fn revoke(lake: &Lake, key_id: &str) -> Result<Key, KeyError> {
    let mut key = load(lake, key_id)
        .await?
        .filter(|k| k.key_id == key_id)
        .ok_or_else(|| KeyError::Unknown(key_id.to_string()))?;
    if key.revoked_at.is_none() {
        key.revoked_at = Some(rfc3339(Utc::now()));
        let json = serde_json::to_vec_pretty(&key).map_err(LakeError::from)?;
        lake.put_object(&object_key(key_id), Bytes::from(json))
            .await?;
    }
    Ok(key)
}

const SESSION_PREFIX: &str = "js";

/// A signed-in browser: which key it signed in with, until when.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    key_id: String,
    secret_sha256: String,
    expires_at: String,
}

fn session_key(id: &str) -> String {
    format!("sessions/{id}.json")
}

/// Opens a session for a verified key; the returned reference is what the cookie holds.
pub async fn open_session(
    lake: &Lake,
    key: &Key,
    lifetime: std::time::Duration,
) -> Result<String, KeyError> {
    let id = random_hex(12)?;
    let secret = random_hex(24)?;
    let lifetime = chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(8));
    let session = Session {
        key_id: key.key_id.clone(),
        secret_sha256: sha256_hex(&secret),
        expires_at: rfc3339(Utc::now() + lifetime),
    };
    let json = serde_json::to_vec(&session).map_err(LakeError::from)?;
    lake.put_object(&session_key(&id), Bytes::from(json))
        .await?;
    Ok(format!("{SESSION_PREFIX}_{id}_{secret}"))
}

/// The live key behind a session reference, or `None` when the session is unknown, ended,
/// expired, or its key is no longer live.
pub async fn session_key_of(lake: &Lake, reference: &str) -> Result<Option<Key>, KeyError> {
    let Some((id, secret)) = split(reference, SESSION_PREFIX) else {
        return Ok(None);
    };
    let Some(bytes) = lake.get_object(&session_key(id)).await? else {
        return Ok(None);
    };
    let Ok(session) = serde_json::from_slice::<Session>(&bytes) else {
        return Ok(None);
    };
    if !same_secret(secret, &session.secret_sha256) || past(Some(&session.expires_at), Utc::now()) {
        return Ok(None);
    }
    Ok(load(lake, &session.key_id)
        .await?
        .filter(|k| k.is_live(Utc::now())))
}

/// Ends a session (signing out); unknown references are ignored.
pub async fn close_session(lake: &Lake, reference: &str) -> Result<(), KeyError> {
    if let Some((id, secret)) = split(reference, SESSION_PREFIX)
        && let Some(bytes) = lake.get_object(&session_key(id)).await?
        && let Ok(session) = serde_json::from_slice::<Session>(&bytes)
        && same_secret(secret, &session.secret_sha256)
    {
        lake.delete_object(&session_key(id)).await?;
    }
    Ok(())
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
            prefix: Prefix::parse("1522").unwrap(),
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
            prefix: Prefix::parse("152201").unwrap(),
            name: String::new(),
            level: Level::County,
            communities: 0,
        };
        assert!(key.covers(&county));
        assert!(!key.covers(&Region {
            prefix: Prefix::parse("15").unwrap(),
            ..county
        }));
    }

    #[tokio::test]
    async fn revoked_and_expired_keys_and_their_sessions_stop_working() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let county = Region {
            prefix: Prefix::parse("152201").unwrap(),
            name: "乌兰浩特市".into(),
            level: Level::County,
            communities: 40,
        };
        let (token, key) = issue(&lake, &county, Role::Submitter).await.unwrap();
        let hours = std::time::Duration::from_secs(3600);
        let session = open_session(&lake, &key, hours).await.unwrap();
        assert!(!session.contains(token.rsplit('_').next().unwrap()));
        assert_eq!(
            session_key_of(&lake, &session).await.unwrap(),
            Some(key.clone())
        );
        // A forged or altered reference opens nothing.
        let mut forged = session.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == '0' { '1' } else { '0' });
        assert_eq!(session_key_of(&lake, &forged).await.unwrap(), None);
        assert_eq!(session_key_of(&lake, &token).await.unwrap(), None);

        revoke(&lake, &key.key_id).await.unwrap();
        assert_eq!(verify(&lake, &token).await.unwrap(), None);
        assert_eq!(session_key_of(&lake, &session).await.unwrap(), None);
        assert!(matches!(
            revoke(&lake, "abcdef").await,
            Err(KeyError::Unknown(_))
        ));

        let (expired, _) = issue_until(
            &lake,
            &county,
            Role::Submitter,
            Some(Utc::now() - chrono::Duration::seconds(1)),
        )
        .await
        .unwrap();
        assert_eq!(verify(&lake, &expired).await.unwrap(), None);
        let (later, key) = issue_until(
            &lake,
            &county,
            Role::Submitter,
            Some(Utc::now() + chrono::Duration::days(1)),
        )
        .await
        .unwrap();
        assert!(verify(&lake, &later).await.unwrap().is_some());

        // Signing out ends the session.
        let session = open_session(&lake, &key, hours).await.unwrap();
        close_session(&lake, &session).await.unwrap();
        assert_eq!(session_key_of(&lake, &session).await.unwrap(), None);
    }
}
