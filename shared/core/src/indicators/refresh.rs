//! Refreshing a period: compute its values from the tables, publish them as the snapshot,
//! and say whether a published snapshot is still current. The only place that joins the
//! computation and the snapshot, so neither needs the other.

use std::sync::LazyLock;

use super::compute::{compute_period, source_tables};
use super::snapshot;
use crate::lake::{Lake, LakeError, names};
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

/// Recomputes a period and publishes it, so that the snapshot includes every commit made
/// before the call; returns the snapshot version that does. The refreshes of one process run
/// in [`Rounds`] per lake and period: a request arriving while one runs waits for the next
/// round, which starts after its commit and so covers it. On a deadline day a server taking
/// many uploads of one period computes it about twice, not once per file.
pub async fn refresh(lake: &Lake, period: Period) -> Result<i64, LakeError> {
    static REFRESHES: LazyLock<Rounds<(String, Period), i64>> = LazyLock::new(Rounds::default);
    let key = (lake.root().to_string(), period);
    REFRESHES.run(&key, || refresh_now(lake, period)).await
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
