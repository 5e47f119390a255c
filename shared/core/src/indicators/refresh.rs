//! Refreshing a period: compute its values from the tables, publish them as the snapshot,
//! and say whether a published snapshot is still current. The only place that joins the
//! computation and the snapshot, so neither needs the other.

use std::sync::LazyLock;
use std::time::Duration;

use super::compute::{compute_period, source_tables};
use super::snapshot;
use crate::lake::{Lake, LakeError, TableVersions, names};
use crate::periods::Period;
use crate::rounds::Rounds;

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

/// What a call to [`refresh`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// This snapshot version includes every commit made before the call.
    Published(i64),
    /// Another process is refreshing the period; it will publish this call's commits too.
    Deferred,
}

/// Recomputes a period and publishes it, so that the snapshot includes every commit made
/// before the call.
///
/// On deadline day many files of one period land at once; each refresh reads the whole
/// period, so they coalesce at two levels. In one process, refreshes run in [`Rounds`] per
/// lake and period: a request arriving while one runs waits for the next round, which starts
/// after its commit and so covers it. Across processes (ingest functions, the server, the
/// command line), a round runs only under the period's lease; a process that finds it held
/// returns [`Refreshed::Deferred`], because the holder, after giving the lease up, looks
/// again for commits it has not covered and refreshes once more if it finds any. Either the
/// holder's look sees a deferred commit (which came before it) or it took the lease after
/// the deferring process found it held — so no commit is left out, and a period is
/// recomputed about once per refresh time, not once per file.
pub async fn refresh(lake: &Lake, period: Period) -> Result<Refreshed, LakeError> {
    static REFRESHES: LazyLock<Rounds<(String, Period), Refreshed>> =
        LazyLock::new(Rounds::default);
    let key = (lake.root().to_string(), period);
    REFRESHES.run(&key, || refresh_leased(lake, period)).await
}

/// How long a refresh lease lasts if its holder dies: longer than any refresh takes, short
/// enough that a crashed holder delays the next one by minutes at most (and the scheduled
/// repair refreshes any period left stale).
const LEASE_TTL: Duration = Duration::from_secs(300);

async fn refresh_leased(lake: &Lake, period: Period) -> Result<Refreshed, LakeError> {
    let tables = read_tables();
    let table_refs: Vec<&str> = tables.iter().map(String::as_str).collect();
    let mut published = Refreshed::Deferred;
    loop {
        let Some(lease) = lake
            .acquire(&format!("refresh-{period}"), LEASE_TTL)
            .await?
        else {
            return Ok(published);
        };
        let done = refresh_now(lake, period, &table_refs).await;
        lease.release().await?;
        let (version, sources) = done?;
        published = Refreshed::Published(version);
        // Commits that came while the lease was held were left to this process.
        if lake.unchanged(&table_refs, &sources).await? {
            return Ok(published);
        }
    }
}

/// One computation and publication. Loops until the snapshot was computed from the latest
/// versions of its sources, so that of two processes publishing at once, the one finishing
/// last always publishes a snapshot that includes both. Returns the snapshot version and the
/// table versions it was computed from.
async fn refresh_now(
    lake: &Lake,
    period: Period,
    tables: &[&str],
) -> Result<(i64, TableVersions), LakeError> {
    let mut round = 0;
    loop {
        let started = std::time::Instant::now();
        let computed = compute_period(lake, period).await?;
        let computed_in = started.elapsed();
        let version = snapshot::publish(lake, &computed).await?;
        tracing::info!(
            %period,
            version,
            computed_ms = computed_in.as_millis() as u64,
            published_ms = (started.elapsed() - computed_in).as_millis() as u64,
            "indicators published"
        );
        round += 1;
        if round == REFRESH_ROUNDS || lake.unchanged(tables, &computed.sources).await? {
            return Ok((version, computed.sources));
        }
        tracing::info!(%period, "sources changed while publishing; recomputing");
    }
}

/// Upper bound on recomputations under one lease when writers keep landing; the caller looks
/// again once the lease is released.
const REFRESH_ROUNDS: usize = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_requests_for_a_period_share_rounds() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let period: Period = "2023H2".parse().unwrap();
        let published = |r: Refreshed| match r {
            Refreshed::Published(v) => v,
            Refreshed::Deferred => panic!("nobody else refreshes this lake"),
        };
        let versions: Vec<i64> = futures::future::join_all((0..8).map(|_| refresh(&lake, period)))
            .await
            .into_iter()
            .map(|r| published(r.unwrap()))
            .collect();
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
        assert_eq!(published(refresh(&lake, period).await.unwrap()), latest + 1);
    }

    #[tokio::test]
    async fn a_period_another_process_is_refreshing_is_left_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let period: Period = "2024H1".parse().unwrap();
        // Another process holds the period's lease: this one defers and publishes nothing.
        let key = format!("leases/refresh-{period}.json");
        let holder = serde_json::json!({
            "holder": "another-process",
            "expires_ms": chrono::Utc::now().timestamp_millis() + 60_000,
        });
        lake.put_object(&key, serde_json::to_vec(&holder).unwrap().into())
            .await
            .unwrap();
        assert_eq!(refresh(&lake, period).await.unwrap(), Refreshed::Deferred);
        assert!(snapshot::sources_of(&lake, period).await.unwrap().is_none());
        // Once it is released, the next refresh runs and releases it in turn.
        lake.delete_object(&key).await.unwrap();
        assert!(matches!(
            refresh(&lake, period).await.unwrap(),
            Refreshed::Published(_)
        ));
        assert!(!lake.has_object(&key).await.unwrap());
    }
}
