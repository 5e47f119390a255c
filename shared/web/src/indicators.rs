//! The indicator catalogue and indicator values from the published snapshot: wide (one
//! indicator across regions) and long (one row per indicator × region × period).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::params::Params;
use super::sdmx;
use super::tabular::{Format, Table};
use super::{ApiError, AppState, Conditional, Published, Regions, Source, Stamp};
use jiazheng_core::indicators::snapshot::Row;
use jiazheng_core::indicators::{self, CATALOGUE, Indicator};
use jiazheng_core::periods::Period;
use jiazheng_core::regions::{COUNTRY_CODE, Level, Region};

/// What the indicator endpoints answer in: the tables' formats, and SDMX-CSV 2.0 for
/// statistical offices (its structure at `/v1/sdmx/structure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ValuesFormat {
    Json,
    Csv,
    Parquet,
    SdmxCsv,
}

impl ValuesFormat {
    /// `?format=` wins; then an `Accept` of SDMX-CSV; otherwise as every table negotiates.
    fn negotiate(format: Option<ValuesFormat>, headers: &HeaderMap) -> ValuesFormat {
        if let Some(f) = format {
            return f;
        }
        let accept = headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.contains("application/vnd.sdmx.data+csv") {
            return ValuesFormat::SdmxCsv;
        }
        match Format::negotiate(None, headers) {
            Format::Json => ValuesFormat::Json,
            Format::Csv => ValuesFormat::Csv,
            Format::Parquet => ValuesFormat::Parquet,
        }
    }

    fn respond<T: Serialize>(
        self,
        rows: Vec<Row>,
        json: impl FnOnce(Vec<Row>) -> T,
        name: &str,
    ) -> Result<Response, ApiError> {
        let table = match self {
            ValuesFormat::Json => Format::Json,
            ValuesFormat::Csv => Format::Csv,
            ValuesFormat::Parquet => Format::Parquet,
            ValuesFormat::SdmxCsv => {
                let disposition = format!("inline; filename=\"{name}.sdmx.csv\"");
                return Ok((
                    [
                        (axum::http::header::CONTENT_TYPE, sdmx::CSV_TYPE.to_string()),
                        (axum::http::header::CONTENT_DISPOSITION, disposition),
                    ],
                    sdmx::csv(&rows)?,
                )
                    .into_response());
            }
        };
        Table::respond_rows(table, &Row::schema(), rows, json, name)
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CatalogueEntry {
    #[serde(flatten)]
    #[schema(inline)]
    indicator: &'static Indicator,
    /// The levels it is published at.
    levels: Vec<Level>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    breakdown_values: Vec<&'static str>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Catalogue {
    indicators: Vec<CatalogueEntry>,
}

/// Every indicator: names, unit, definition, policy clause, targets and levels.
#[utoipa::path(get, path = "/v1/indicators", tag = "indicators",
    responses((status = 200, description = "The catalogue", body = Catalogue)))]
pub async fn catalogue() -> (Extension<Stamp>, Json<Catalogue>) {
    let entries: Vec<CatalogueEntry> = CATALOGUE
        .iter()
        .map(|i| CatalogueEntry {
            indicator: i,
            levels: i.levels(),
            breakdown_values: i.breakdown_values(),
        })
        .collect();
    (
        Extension(super::build_stamp()),
        Json(Catalogue {
            indicators: entries,
        }),
    )
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValuesQuery {
    /// Half-year, e.g. `2023H2` (default: the latest published).
    #[param(value_type = Option<String>)]
    period: Option<Period>,
    /// The region to look inside (default: the country).
    region: Option<String>,
    /// The level of the regions returned (default: the region's own).
    level: Option<Level>,
    format: Option<ValuesFormat>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Values {
    indicator: &'static str,
    name: &'static str,
    /// The same unit code as the catalogue's (`percent`, `count`, `per_hundred`).
    unit: jiazheng_core::indicators::Unit,
    period: String,
    region: String,
    level: Level,
    /// Lineage: the snapshot version read and the table versions it was computed from.
    snapshot_version: i64,
    #[schema(value_type = std::collections::BTreeMap<String, i64>)]
    sources: jiazheng_core::lake::TableVersions,
    data: Vec<Row>,
}

fn region_and_level(
    tree: &Regions,
    region: Option<String>,
    level: Option<Level>,
) -> Result<(&Region, Level), ApiError> {
    let code = region.unwrap_or_else(|| COUNTRY_CODE.to_string());
    let region = tree
        .resolve(&code)
        .ok_or_else(|| ApiError::UnknownRegion(code.clone()))?;
    let level = level.unwrap_or(region.level);
    if !Level::PUBLISHED.contains(&level) {
        return Err(ApiError::BadLevel(level.to_string()));
    }
    Ok((region, level))
}

/// An indicator by id, published down to `level`: 404 for an unknown one or a finer level.
pub(crate) fn indicator_at(id: &str, level: Level) -> Result<&'static Indicator, ApiError> {
    let indicator = indicators::by_id(id).ok_or_else(|| ApiError::UnknownIndicator(id.into()))?;
    if level > indicator.finest_level() {
        return Err(ApiError::LevelNotPublished {
            indicator: indicator.id.to_string(),
            finest: indicator.finest_level().to_string(),
            asked: level.to_string(),
        });
    }
    Ok(indicator)
}

/// What an indicator answer is computed from, known before any of the work.
fn stamp(published: &Published, tree: &Regions) -> Stamp {
    Stamp::of([
        Source::Snapshot(published.version),
        Source::Regions(tree.version),
    ])
}

/// One indicator for every region at `level` inside `region` (defaults: the latest period,
/// the whole country, the region's own level).
#[utoipa::path(get, path = "/v1/indicators/{id}", tag = "indicators",
    params(("id" = String, Path, description = "Indicator id from the catalogue"), ValuesQuery),
    responses((status = 200, description = "The values", content(
        (Values = "application/json"),
        (String = "text/csv"),
        (String = "application/vnd.sdmx.data+csv; version=2.0.0"),
        (Vec<u8> = "application/vnd.apache.parquet")))))]
pub async fn values(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(q): Params<ValuesQuery>,
    conditional: Conditional,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Two HEADs at once on S3: is either held table stale?
    let (published, tree) = tokio::try_join!(state.published(), state.regions())?;
    let stamp = stamp(&published, &tree);
    if let Some(unchanged) = conditional.unchanged(&stamp) {
        return Ok(unchanged);
    }
    if published.version < 0 {
        return Err(ApiError::NothingPublished);
    }
    let format = ValuesFormat::negotiate(q.format, &headers);
    let period = published.period_or_latest(q.period)?;
    let (region, level) = region_and_level(&tree, q.region, q.level)?;
    let indicator = indicator_at(&id, level)?;
    let read = published.query(&tree, &[indicator], period, region, &[level]);
    let name = format!("{}-{period}-{}-{level}", indicator.id, region.code());
    let body = |data| Values {
        indicator: indicator.id,
        name: indicator.zh,
        unit: indicator.unit,
        period: period.to_string(),
        region: region.code(),
        level,
        snapshot_version: published.version,
        sources: read.sources,
        data,
    };
    let answer = format.respond(read.rows, body, &name)?;
    Ok((Extension(stamp), answer).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LongQuery {
    /// One indicator (default: all).
    #[param(value_type = Option<String>)]
    indicator: Option<&'static Indicator>,
    #[param(value_type = Option<String>)]
    period: Option<Period>,
    region: Option<String>,
    level: Option<Level>,
    format: Option<ValuesFormat>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LongValues {
    period: String,
    region: String,
    level: Level,
    snapshot_version: i64,
    data: Vec<Row>,
}

/// The long form: one row per indicator × region (× breakdown) of a period; every filter
/// optional.
#[utoipa::path(get, path = "/v1/values", tag = "indicators", params(LongQuery),
    responses((status = 200, description = "The values", content(
        (LongValues = "application/json"),
        (String = "text/csv"),
        (String = "application/vnd.sdmx.data+csv; version=2.0.0"),
        (Vec<u8> = "application/vnd.apache.parquet")))))]
pub async fn long(
    State(state): State<AppState>,
    Params(q): Params<LongQuery>,
    conditional: Conditional,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Two HEADs at once on S3: is either held table stale?
    let (published, tree) = tokio::try_join!(state.published(), state.regions())?;
    let stamp = stamp(&published, &tree);
    if let Some(unchanged) = conditional.unchanged(&stamp) {
        return Ok(unchanged);
    }
    let format = ValuesFormat::negotiate(q.format, &headers);
    let chosen: Vec<&'static Indicator> = match q.indicator {
        Some(indicator) => vec![indicator],
        None => CATALOGUE.iter().collect(),
    };
    let period = published.period_or_latest(q.period)?;
    let (region, level) = region_and_level(&tree, q.region, q.level)?;
    let chosen: Vec<&'static Indicator> = chosen
        .into_iter()
        .filter(|i| level <= i.finest_level())
        .collect();
    let rows = published
        .query(&tree, &chosen, period, region, &[level])
        .rows;
    let name = format!("values-{period}-{}-{level}", region.code());
    let json = |data| LongValues {
        period: period.to_string(),
        region: region.code(),
        level,
        snapshot_version: published.version,
        data,
    };
    let answer = format.respond(rows, json, &name)?;
    Ok((Extension(stamp), answer).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// The region (default: the country).
    region: Option<String>,
    format: Option<ValuesFormat>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Series {
    indicator: &'static str,
    name: &'static str,
    unit: jiazheng_core::indicators::Unit,
    region: String,
    level: Level,
    snapshot_version: i64,
    /// One row per published period (and breakdown value), oldest first, each with the target
    /// and deadline the region is held to then; unreported periods are null, not zero.
    data: Vec<Row>,
}

/// One indicator of one region over every published period: the trend toward its target.
#[utoipa::path(get, path = "/v1/indicators/{id}/series", tag = "indicators",
    params(("id" = String, Path, description = "Indicator id from the catalogue"), SeriesQuery),
    responses((status = 200, description = "The values, oldest period first", content(
        (Series = "application/json"),
        (String = "text/csv"),
        (String = "application/vnd.sdmx.data+csv; version=2.0.0"),
        (Vec<u8> = "application/vnd.apache.parquet")))))]
pub async fn series(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(q): Params<SeriesQuery>,
    conditional: Conditional,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (published, tree) = tokio::try_join!(state.published(), state.regions())?;
    let stamp = stamp(&published, &tree);
    if let Some(unchanged) = conditional.unchanged(&stamp) {
        return Ok(unchanged);
    }
    let format = ValuesFormat::negotiate(q.format, &headers);
    let (region, level) = region_and_level(&tree, q.region, None)?;
    let indicator = indicator_at(&id, level)?;
    let rows = published.series(&tree, indicator, region).rows;
    let name = format!("{}-series-{}", indicator.id, region.code());
    let body = |data| Series {
        indicator: indicator.id,
        name: indicator.zh,
        unit: indicator.unit,
        region: region.code(),
        level,
        snapshot_version: published.version,
        data,
    };
    let answer = format.respond(rows, body, &name)?;
    Ok((Extension(stamp), answer).into_response())
}
