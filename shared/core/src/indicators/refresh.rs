//! Refreshing a period: compute its values from the tables, publish them as the snapshot,
//! and say whether a published snapshot is still current. The only place that joins the
//! computation and the snapshot, so neither needs the other.

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

/// Recomputes a period and publishes it. Loops until the snapshot was computed from the
/// latest versions of its sources, so that of two submissions landing at once, the one
/// finishing last always publishes a snapshot that includes both.
pub async fn refresh(lake: &Lake, period: Period) -> Result<i64, LakeError> {
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
