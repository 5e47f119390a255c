//! The indicator catalogue and indicator values from the published snapshot.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::indicators::snapshot::{self, Row};
use crate::indicators::{self, CATALOGUE, Indicator};
use crate::periods::Period;
use crate::regions::{COUNTRY_CODE, Level};

#[derive(Serialize)]
pub struct CatalogueEntry {
    #[serde(flatten)]
    indicator: &'static Indicator,
    levels: Vec<Level>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    breakdown_values: Vec<&'static str>,
}

pub async fn catalogue() -> Json<serde_json::Value> {
    let entries: Vec<CatalogueEntry> = CATALOGUE
        .iter()
        .map(|i| CatalogueEntry {
            indicator: i,
            levels: i.levels(),
            breakdown_values: i.breakdown_values(),
        })
        .collect();
    Json(serde_json::json!({ "indicators": entries }))
}

#[derive(Deserialize)]
pub struct ValuesQuery {
    period: Option<String>,
    region: Option<String>,
    level: Option<String>,
}

#[derive(Serialize)]
pub struct Values {
    indicator: &'static str,
    name: &'static str,
    unit: &'static str,
    period: String,
    region: String,
    level: Level,
    /// Lineage: the snapshot version read and the table versions it was computed from.
    snapshot_version: i64,
    sources: crate::lake::TableVersions,
    data: Vec<Row>,
}

/// `GET /v1/indicators/{id}?period=&region=&level=`: the indicator for every region at
/// `level` inside `region` (defaults: the latest period, the whole country, the region's
/// own level).
pub async fn values(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ValuesQuery>,
) -> Result<Json<Values>, ApiError> {
    let indicator = indicators::by_id(&id).ok_or_else(|| ApiError::UnknownIndicator(id.clone()))?;
    let period: Period = match q.period {
        Some(p) => p.parse().map_err(|_| ApiError::BadPeriod(p))?,
        None => snapshot::periods(state.lake())
            .await?
            .last()
            .and_then(|p| p.parse().ok())
            .ok_or(ApiError::NothingPublished)?,
    };
    let tree = state.regions().await?;
    let code = q.region.unwrap_or_else(|| COUNTRY_CODE.to_string());
    let region = tree
        .resolve(&code)
        .ok_or_else(|| ApiError::UnknownRegion(code.clone()))?;
    let level = match q.level {
        Some(l) => Level::parse(&l)
            .filter(|l| Level::PUBLISHED.contains(l))
            .ok_or(ApiError::BadLevel(l))?,
        None => region.level,
    };
    if level > indicator.finest_level() {
        return Err(ApiError::LevelNotPublished {
            indicator: indicator.id.to_string(),
            finest: indicator.finest_level().to_string(),
            asked: level.to_string(),
        });
    }
    let read = snapshot::query(state.lake(), indicator.id, period, region, level)
        .await?
        .ok_or(ApiError::NothingPublished)?;
    Ok(Json(Values {
        indicator: indicator.id,
        name: indicator.zh,
        unit: indicator.unit.symbol(),
        period: period.to_string(),
        region: region.code(),
        level,
        snapshot_version: read.version,
        sources: read.sources,
        data: read.rows,
    }))
}
