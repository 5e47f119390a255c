//! `GET /v1/regions/{code}`: a region with its community count and children.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use super::{ApiError, AppState};
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
) -> Result<Json<RegionDetail>, ApiError> {
    let tree = state.regions().await?;
    let region = tree
        .resolve(&code)
        .ok_or_else(|| ApiError::UnknownRegion(code.clone()))?;
    Ok(Json(RegionDetail {
        region: region.into(),
        ancestors: tree.ancestors(region).into_iter().map(Into::into).collect(),
        children: tree.children(region).into_iter().map(Into::into).collect(),
    }))
}
