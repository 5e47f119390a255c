//! `GET /v1/regions/{code}`: a region with its community count and children; the regions of a
//! level; and a search over their names in Chinese or Pinyin.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Serialize;

use super::params::Params;
use super::tabular::{Format, Table};
use super::{ApiError, AppState, Source, Stamp};
use jiazheng_core::regions::{Level, Region, pinyin};

#[derive(Serialize, utoipa::ToSchema)]
pub struct RegionSummary {
    /// The API code: the NBS code without its trailing zeros (`15`, `1522`, `152201`).
    pub code: String,
    pub name: String,
    /// The name in Hanyu Pinyin (`Wulanhaote Shi`), from the common reading of each character.
    pub name_pinyin: String,
    pub level: Level,
    /// Residents' committees inside (NBS urban-rural codes 111–121).
    pub communities: u32,
}

impl RegionSummary {
    /// Its columns in CSV and Parquet.
    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("code", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("name_pinyin", DataType::Utf8, false),
            Field::new("level", DataType::Utf8, false),
            Field::new("communities", DataType::Int64, false),
        ]))
    }
}

impl From<&Region> for RegionSummary {
    fn from(r: &Region) -> Self {
        RegionSummary {
            code: r.code(),
            name: r.name.clone(),
            name_pinyin: pinyin::romanize(&r.name),
            level: r.level,
            communities: r.communities,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RegionDetail {
    #[serde(flatten)]
    pub region: RegionSummary,
    /// From the country down to the parent.
    pub ancestors: Vec<RegionSummary>,
    pub children: Vec<RegionSummary>,
}

/// A region with its ancestors and children.
#[utoipa::path(get, path = "/v1/regions/{code}", tag = "regions",
    params(("code" = String, Path, description = "NBS code, trailing zeros optional", example = "1522")),
    responses((status = 200, description = "The region", body = RegionDetail)))]
pub async fn one(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<(Extension<Stamp>, Json<RegionDetail>), ApiError> {
    let tree = state.regions().await?;
    let region = tree
        .resolve(&code)
        .ok_or_else(|| ApiError::UnknownRegion(code.clone()))?;
    Ok((
        Extension(Stamp::of([Source::Regions(tree.version)])),
        Json(RegionDetail {
            region: region.into(),
            ancestors: tree.ancestors(region).into_iter().map(Into::into).collect(),
            children: tree.children(region).into_iter().map(Into::into).collect(),
        }),
    ))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The level to list (default: the level below `within`).
    level: Option<Level>,
    /// The region to list inside (default: the country).
    within: Option<String>,
    format: Option<Format>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RegionList {
    within: String,
    level: Level,
    regions: Vec<RegionSummary>,
}

/// The regions of a level inside a region (default: the provinces of the country), with
/// their community counts.
#[utoipa::path(get, path = "/v1/regions", tag = "regions", params(ListQuery),
    responses((status = 200, description = "The regions", content(
        (RegionList = "application/json"),
        (String = "text/csv"),
        (Vec<u8> = "application/vnd.apache.parquet")))))]
pub async fn list(
    State(state): State<AppState>,
    Params(q): Params<ListQuery>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let format = Format::negotiate(q.format, &headers);
    let tree = state.regions().await?;
    let code = q
        .within
        .unwrap_or_else(|| jiazheng_core::regions::COUNTRY_CODE.to_string());
    let within = tree
        .resolve(&code)
        .ok_or_else(|| ApiError::UnknownRegion(code.clone()))?;
    let level = match q.level {
        Some(l) if !Level::PUBLISHED.contains(&l) => return Err(ApiError::BadLevel(l.to_string())),
        Some(l) => l,
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
    let json = |regions| RegionList {
        within: within.code(),
        level,
        regions,
    };
    let stamp = Stamp::of([Source::Regions(tree.version)]);
    let name = format!("regions-{}-{level}", within.code());
    let answer = Table::respond_rows(format, &RegionSummary::schema(), regions, json, &name)?;
    Ok((Extension(stamp), answer).into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PeriodInfo {
    /// `2023H2`.
    period: String,
    #[schema(value_type = String, format = Date)]
    start: chrono::NaiveDate,
    #[schema(value_type = String, format = Date)]
    end: chrono::NaiveDate,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Periods {
    /// Oldest first.
    periods: Vec<PeriodInfo>,
}

/// The half-years with published indicators.
#[utoipa::path(get, path = "/v1/periods", tag = "indicators",
    responses((status = 200, description = "Published periods", body = Periods)))]
pub async fn periods(
    State(state): State<AppState>,
) -> Result<(Extension<Stamp>, Json<Periods>), ApiError> {
    let published = state.published().await?;
    let periods = published
        .periods()
        .iter()
        .map(|p| PeriodInfo {
            period: p.to_string(),
            start: p.start(),
            end: p.end(),
        })
        .collect();
    Ok((
        Extension(Stamp::of([Source::Snapshot(published.version)])),
        Json(Periods { periods }),
    ))
}

/// At most this many regions answer a search.
const SEARCH_LIMIT: usize = 50;
/// A longer query names no region.
const QUERY_CHARS: usize = 40;

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Part of a name in Chinese (`兴安`), its Pinyin (`xingan`) or its initials (`wlht`).
    q: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    #[serde(flatten)]
    region: RegionSummary,
    /// From the country down to the parent: which of several 和平街道 it is.
    ancestors: Vec<RegionSummary>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchResults {
    query: String,
    /// Whole-name matches first, then coarser levels first; at most 50.
    regions: Vec<SearchHit>,
}

/// Regions down to the streets by name, in Chinese or Pinyin, each with where it lies.
#[utoipa::path(get, path = "/v1/regions/search", tag = "regions", params(SearchQuery),
    responses((status = 200, description = "Matching regions", body = SearchResults)))]
pub async fn search(
    State(state): State<AppState>,
    Params(q): Params<SearchQuery>,
) -> Result<(Extension<Stamp>, Json<SearchResults>), ApiError> {
    if q.q.chars().count() > QUERY_CHARS {
        return Err(ApiError::BadQuery(format!(
            "a search is at most {QUERY_CHARS} characters"
        )));
    }
    let tree = state.regions().await?;
    let regions = pinyin::search(&tree, &q.q, SEARCH_LIMIT)
        .into_iter()
        .map(|r| SearchHit {
            region: r.into(),
            ancestors: tree.ancestors(r).into_iter().map(Into::into).collect(),
        })
        .collect();
    Ok((
        Extension(Stamp::of([Source::Regions(tree.version)])),
        Json(SearchResults {
            query: q.q,
            regions,
        }),
    ))
}
