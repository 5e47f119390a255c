//! Leases: a small object under `leases/` created only if absent (on S3 a PUT with
//! `If-None-Match: *`, the same conditional write Delta commits rely on), naming its holder
//! and when it lapses. Processes sharing a lake use one to leave a job to whichever of them is
//! already doing it — on deadline day, the refresh of a period.
//!
//! A lease saves work; it never guards correctness. Two processes may both believe they hold
//! one (an expired lease taken over twice at once), so whatever a lease covers must be safe to
//! run twice, as a refresh is.

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use deltalake::ObjectStoreError;
use deltalake::logstore::object_store::{PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use super::{Lake, LakeError};

/// Names this process as a holder: a lease it finds under its own name was left by one of
/// its own runs that was cancelled, never by a run still going (see [`Lake::acquire`]).
static PROCESS: LazyLock<String> = LazyLock::new(|| {
    let mut nonce = [0u8; 8];
    // Without randomness the pid alone still tells processes on one machine apart.
    let _ = getrandom::fill(&mut nonce);
    format!("{}-{}", std::process::id(), hex::encode(nonce))
});

/// This machine's boot (Linux; a Lambda micro-VM has its own): processes sharing it share a
/// process table, so a lease one of them left can be seen to be dead at once.
static BOOT: LazyLock<Option<String>> = LazyLock::new(|| {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_string())
});

/// What a lease object holds.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    holder: String,
    /// Unix milliseconds after which the lease counts as abandoned.
    expires_ms: i64,
    #[serde(default)]
    boot: Option<String>,
    #[serde(default)]
    pid: Option<u32>,
}

impl Holder {
    fn this_process(ttl_ms: i64) -> Holder {
        Holder {
            holder: PROCESS.clone(),
            expires_ms: Utc::now().timestamp_millis().saturating_add(ttl_ms),
            boot: BOOT.clone(),
            pid: Some(std::process::id()),
        }
    }

    /// Whether nobody can still be working under this lease: it lapsed, it was left by this
    /// process, or its holder ran on this machine and has died (a crash, a killed command).
    fn abandoned(&self) -> bool {
        let dead_here = match (&self.boot, self.pid, BOOT.as_ref()) {
            (Some(boot), Some(pid), Some(here)) if boot == here => {
                !std::path::Path::new(&format!("/proc/{pid}")).exists()
            }
            _ => false,
        };
        self.holder == *PROCESS || self.expires_ms < Utc::now().timestamp_millis() || dead_here
    }
}

/// A lease this process holds until [`Lease::release`] (or until it lapses).
#[derive(Debug)]
pub struct Lease {
    lake: Lake,
    key: String,
}

impl Lake {
    /// Takes the lease `name` for `ttl`, or returns `None` while another process holds it.
    /// An abandoned lease is taken over: one that lapsed (its holder crashed or timed out
    /// elsewhere), one whose holder ran on this machine and is gone, and one under this
    /// process's own name — the caller must run at most one job per lease name at a time (as
    /// [`Rounds`](crate::rounds::Rounds) do), so such a lease was left by a cancelled one.
    pub async fn acquire(&self, name: &str, ttl: Duration) -> Result<Option<Lease>, LakeError> {
        let key = format!("leases/{name}.json");
        let path = Lake::object_path(&key);
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        // Create; if it exists and is abandoned, delete it and create again (once: if another
        // process took it over meanwhile, it is that process's now).
        for _ in 0..2 {
            let holder = Holder::this_process(ttl_ms);
            let body = PutPayload::from(Bytes::from(serde_json::to_vec(&holder)?));
            let create = PutOptions::from(PutMode::Create);
            match self.store.put_opts(&path, body, create).await {
                Ok(_) => {
                    return Ok(Some(Lease {
                        lake: self.clone(),
                        key,
                    }));
                }
                Err(
                    ObjectStoreError::AlreadyExists { .. } | ObjectStoreError::Precondition { .. },
                ) => {}
                Err(e) => return Err(e.into()),
            }
            let Some(found) = self.get_object(&key).await? else {
                continue; // released meanwhile
            };
            let abandoned =
                serde_json::from_slice::<Holder>(&found).map_or(true, |found| found.abandoned());
            if !abandoned {
                return Ok(None);
            }
            tracing::info!(lease = name, "taking over an abandoned lease");
            self.delete_object(&key).await?;
        }
        Ok(None)
    }
}

impl Lease {
    /// Gives the lease up, so the next process to ask gets it at once.
    pub async fn release(self) -> Result<(), LakeError> {
        self.lake.delete_object(&self.key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_abandoned_leases_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let minute = Duration::from_secs(60);
        let lease = lake.acquire("job", minute).await.unwrap().unwrap();

        // Another process's live lease is respected…
        let other = Holder {
            holder: "another-process".into(),
            expires_ms: Utc::now().timestamp_millis() + 60_000,
            boot: None,
            pid: None,
        };
        let key = "leases/job.json";
        lake.delete_object(key).await.unwrap();
        let put = |h: &Holder| Bytes::from(serde_json::to_vec(h).unwrap());
        lake.put_object(key, put(&other)).await.unwrap();
        assert!(lake.acquire("job", minute).await.unwrap().is_none());
        // …until it lapses.
        let lapsed = Holder {
            expires_ms: Utc::now().timestamp_millis() - 1,
            ..other
        };
        lake.put_object(key, put(&lapsed)).await.unwrap();
        let taken = lake.acquire("job", minute).await.unwrap().unwrap();
        taken.release().await.unwrap();
        assert!(!lake.has_object(key).await.unwrap());

        // A process of this machine that died (this test's child) leaves its lease behind.
        if BOOT.is_some() {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let pid = child.id();
            child.wait().unwrap();
            let dead = Holder {
                holder: "a-crashed-command".into(),
                expires_ms: Utc::now().timestamp_millis() + 60_000,
                boot: BOOT.clone(),
                pid: Some(pid),
            };
            lake.put_object(key, put(&dead)).await.unwrap();
            let taken = lake.acquire("job", minute).await.unwrap().unwrap();
            taken.release().await.unwrap();
            // One that is still running keeps it.
            let alive = Holder {
                pid: Some(std::process::id()),
                holder: "a-running-command".into(),
                ..dead
            };
            lake.put_object(key, put(&alive)).await.unwrap();
            assert!(lake.acquire("job", minute).await.unwrap().is_none());
            lake.delete_object(key).await.unwrap();
        }

        // A lease under this process's own name was left by a cancelled run of its own.
        drop(lease);
        let _left = lake.acquire("job", minute).await.unwrap().unwrap();
        assert!(lake.acquire("job", minute).await.unwrap().is_some());
        // Other names are independent.
        assert!(lake.acquire("other", minute).await.unwrap().is_some());
    }
}
