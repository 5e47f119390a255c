//! Refreshing a period: compute its values from the tables, publish them as the snapshot,
//! and say whether a published snapshot is still current. The only place that joins the
//! computation and the snapshot, so neither needs the other.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use tokio::sync::Notify;

use super::compute::{compute_period, source_tables};
use super::snapshot;
use crate::lake::{Lake, LakeError, names};
use crate::periods::Period;

/// The tables (with the regions) a period's values are computed from.
fn read_tables() -> Vec<String> {
    let mut tables = source_tables();
    tables.push(names::REGIONS.to_string());
    tables
}

/// Whether a period's published values were computed from the tables as they are now: not
/// when a decision or a commit landed after its last refresh (a crash in between, or a
/// refresh still to come).
pub async fn is_fresh(lake: &Lake, period: Period) -> Result<bool, LakeError> {
    let tables = read_tables();
    let refs: Vec<&str> = tables.iter().map(String::as_str).collect();
    let current = lake.versions(&refs).await?;
    Ok(snapshot::sources_of(lake, period).await?.as_ref() == Some(&current))
}

/// Recomputes a period and publishes it, so that the snapshot includes every commit made
/// before the call; returns the snapshot version that does. Requests of one process are
/// coalesced per lake and period ([`Refreshes`]).
pub async fn refresh(lake: &Lake, period: Period) -> Result<i64, LakeError> {
    static REFRESHES: LazyLock<Refreshes> = LazyLock::new(Refreshes::default);
    REFRESHES.refresh(lake, period).await
}

/// One computation and publication. Loops until the snapshot was computed from the latest
/// versions of its sources, so that of two processes publishing at once, the one finishing
/// last always publishes a snapshot that includes both.
async fn refresh_now(lake: &Lake, period: Period) -> Result<i64, LakeError> {
    let tables = read_tables();
    let table_refs: Vec<&str> = tables.iter().map(String::as_str).collect();
    let mut version = 0;
    for _ in 0..REFRESH_ROUNDS {
        let computed = compute_period(lake, period).await?;
        version = snapshot::publish(lake, &computed).await?;
        if lake.versions(&table_refs).await? == computed.sources {
            return Ok(version);
        }
        tracing::info!(%period, "sources changed while publishing; recomputing");
    }
    Ok(version)
}

/// Upper bound on recomputations when writers keep landing during a refresh; the last
/// writer's own refresh catches up in any case.
const REFRESH_ROUNDS: usize = 5;

/// The refreshes of one process, coalesced per lake and period: at most one runs at a time,
/// and a request that arrives while one runs waits for the next round, which starts after its
/// commit and so covers it, instead of computing the same period again. On a deadline day a
/// server taking many uploads of one period computes it about twice, not once per file.
#[derive(Debug, Default)]
struct Refreshes {
    rounds: Mutex<HashMap<(String, Period), Round>>,
    finished: Notify,
}

/// One period's requests: how many were asked, how many a finished round covers.
#[derive(Debug, Default)]
struct Round {
    running: bool,
    asked: u64,
    covered: u64,
    version: i64,
}

impl Refreshes {
    async fn refresh(&self, lake: &Lake, period: Period) -> Result<i64, LakeError> {
        let key = (lake.root().to_string(), period);
        let mine = self.with(&key, |r| {
            r.asked += 1;
            r.asked
        });
        loop {
            // Registered before looking, so a round finishing in between still wakes us.
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let claimed = self.with(&key, |r| {
                if r.covered >= mine {
                    Err(r.version)
                } else if r.running {
                    Ok(None)
                } else {
                    r.running = true;
                    Ok(Some(r.asked))
                }
            });
            let target = match claimed {
                Err(version) => return Ok(version),
                Ok(None) => {
                    finished.await;
                    continue;
                }
                Ok(Some(target)) => target,
            };
            let result = refresh_now(lake, period).await;
            self.with(&key, |r| {
                r.running = false;
                if let Ok(version) = result {
                    r.covered = target;
                    r.version = version;
                }
            });
            // On failure a waiter takes over; the error goes to the one that ran.
            self.finished.notify_waiters();
            result?;
        }
    }

    fn with<T>(&self, key: &(String, Period), f: impl FnOnce(&mut Round) -> T) -> T {
        let mut rounds = self.rounds.lock().unwrap_or_else(PoisonError::into_inner);
        f(rounds.entry(key.clone()).or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_requests_for_a_period_share_rounds() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let period: Period = "2023H2".parse().unwrap();
        let versions = futures::future::join_all((0..8).map(|_| refresh(&lake, period)))
            .await
            .into_iter()
            .collect::<Result<Vec<i64>, _>>()
            .unwrap();
        let latest = lake.versions(&[names::INDICATOR_VALUES]).await.unwrap();
        let latest = latest[names::INDICATOR_VALUES];
        // The first publication also creates the table; then one commit per round.
        let first = versions[0];
        assert_eq!(
            latest,
            first + 1,
            "one round for the first, one for the seven waiting"
        );
        assert!(versions[1..].iter().all(|v| *v == latest), "{versions:?}");
        // A later request runs its own round.
        assert_eq!(refresh(&lake, period).await.unwrap(), latest + 1);
    }
}
