//! `GET /v1/regions/{code}`: a region with its community count and children.

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::Serialize;

use super::tabular::{Format, Table};
use super::{ApiError, AppState, Stamp};
use crate::regions::{Level, Region};

#[derive(Serialize)]
pub struct RegionSummary {
    pub code: String,
    pub name: String,
    pub level: Level,
    pub communities: u32,
}

impl From<&Region> for RegionSummary {
    fn from(r: &Region) -> Self {
        RegionSummary {
            code: r.code(),
            name: r.name.clone(),
            level: r.level,
            communities: r.communities,
        }
    }
}

#[derive(Serialize)]
pub struct RegionDetail {
    #[serde(flatten)]
    pub region: RegionSummary,
    /// From the country down to the parent.
    pub ancestors: Vec<RegionSummary>,
    pub children: Vec<RegionSummary>,
}

pub async fn one(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<(Extension<Stamp>, Json<RegionDetail>), ApiError> {
    let tree = state.regions().await?;
    let region = tree
        .resolve(&code)
        .ok_or_else(|| ApiError::UnknownRegion(code.clone()))?;
    Ok((
        Extension(Stamp(format!("regions-{}", tree.version))),
        Json(RegionDetail {
            region: region.into(),
            ancestors: tree.ancestors(region).into_iter().map(Into::into).collect(),
            children: tree.children(region).into_iter().map(Into::into).collect(),
        }),
    ))
}

#[derive(serde::Deserialize)]
pub struct ListQuery {
    level: Option<String>,
    within: Option<String>,
    format: Option<String>,
}

/// `GET /v1/regions?level=&within=&format=`: the regions of a level inside a region
/// (default: the provinces of the country), with their community counts.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let format = Format::negotiate(q.format.as_deref(), &headers)?;
    let tree = state.regions().await?;
    let code = q
        .within
        .unwrap_or_else(|| crate::regions::COUNTRY_CODE.to_string());
    let within = tree
        .resolve(&code)
        .ok_or_else(|| ApiError::UnknownRegion(code.clone()))?;
    let level = match q.level {
        Some(l) => Level::parse(&l)
            .filter(|l| Level::PUBLISHED.contains(l))
            .ok_or(ApiError::BadLevel(l))?,
        None => within
            .level
            .child()
            .filter(|l| *l <= Level::Street)
            .unwrap_or(within.level),
    };
    let regions: Vec<RegionSummary> = tree
        .within(within, level)
        .into_iter()
        .map(Into::into)
        .collect();
    let table = Table::from_rows(&regions, &["code", "name", "level", "communities"]);
    let json = serde_json::json!({ "within": within.code(), "level": level, "regions": regions });
    let stamp = Stamp(format!("regions-{}", tree.version));
    let name = format!("regions-{}-{level}", within.code());
    Ok((Extension(stamp), table.respond(format, json, &name)?).into_response())
}

/// `GET /v1/periods`: the half-years with published indicators.
pub async fn periods(
    State(state): State<AppState>,
) -> Result<(Extension<Stamp>, Json<serde_json::Value>), ApiError> {
    let published = crate::indicators::snapshot::periods(state.lake()).await?;
    let version = state
        .lake()
        .versions(&[crate::lake::names::INDICATOR_VALUES])
        .await?
        .values()
        .next()
        .copied()
        .unwrap_or(-1);
    let periods: Vec<serde_json::Value> = published
        .iter()
        .filter_map(|p| p.parse::<crate::periods::Period>().ok())
        .map(|p| serde_json::json!({ "period": p.to_string(), "start": p.start(), "end": p.end() }))
        .collect();
    Ok((
        Extension(Stamp(format!("snapshot-{version}"))),
        Json(serde_json::json!({ "periods": periods })),
    ))
}
