//! `GET /v1/reports/status?period=&region=`: who has reported what, and who is missing; and
//! `GET /v1/reports/half-year`: an office's 半年报 as a workbook.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::params::Params;
use super::{ApiError, AppState, Conditional, Source, Stamp, auth};
use jiazheng_core::compliance::{self, CountyStatus};
use jiazheng_core::half_year::HalfYearReport;
use jiazheng_core::keys::Key;
use jiazheng_core::periods::Period;
use jiazheng_core::regions::{COUNTRY_CODE, Level};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// Half-year, e.g. `2023H2`.
    #[param(value_type = String)]
    period: Period,
    /// The region whose counties are listed (default: the country).
    region: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusResponse {
    period: String,
    region: String,
    name: String,
    counties: usize,
    complete: usize,
    /// complete ÷ counties × 100.
    report_rate: Option<f64>,
    missing: Vec<CountyStatus>,
    reported: Vec<CountyStatus>,
}

/// Which counties of a region have a current accepted file of every dataset for a period,
/// and which are missing what.
#[utoipa::path(get, path = "/v1/reports/status", tag = "submissions", params(StatusQuery),
    responses((status = 200, description = "Reporting status", body = StatusResponse)))]
pub async fn status(
    State(state): State<AppState>,
    Params(q): Params<StatusQuery>,
    conditional: Conditional,
) -> Result<Response, ApiError> {
    let period = q.period;
    let (tree, read) = tokio::try_join!(state.regions(), state.log_confirmed())?;
    let [submissions, confirmations] = read.sources;
    let stamp = Stamp::of([submissions, confirmations, Source::Regions(tree.version)]);
    if let Some(unchanged) = conditional.unchanged(&stamp) {
        return Ok(unchanged);
    }
    let code = q.region.unwrap_or_else(|| COUNTRY_CODE.to_string());
    let region = tree
        .resolve(&code)
        .ok_or_else(|| ApiError::UnknownRegion(code.clone()))?;
    let statuses = compliance::status(&read.log.decisions, &read.confirmed, &tree, period, region);
    let counties = statuses.len();
    let (reported, missing): (Vec<CountyStatus>, Vec<CountyStatus>) =
        statuses.into_iter().partition(|c| c.complete);
    Ok((
        Extension(stamp),
        Json(StatusResponse {
            period: period.to_string(),
            region: region.code(),
            name: region.name.clone(),
            counties,
            complete: reported.len(),
            report_rate: (counties > 0).then(|| reported.len() as f64 / counties as f64 * 100.0),
            missing,
            reported,
        }),
    )
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HalfYearQuery {
    /// Half-year, e.g. `2023H2` (default: the latest published).
    #[param(value_type = Option<String>)]
    period: Option<Period>,
    /// The office's region (default: the key's).
    region: Option<String>,
}

pub(crate) const XLSX_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// An office's 半年报 for a region its key covers: the indicators against their targets, the
/// areas below, the counties that have not reported.
pub(crate) async fn half_year_report(
    state: &AppState,
    key: &Key,
    region: Option<&str>,
    period: Option<Period>,
) -> Result<HalfYearReport, ApiError> {
    let (tree, published, read) =
        tokio::try_join!(state.regions(), state.published(), state.log_confirmed())?;
    let code = region.unwrap_or(&key.region);
    let region = tree
        .resolve(code)
        .filter(|r| Level::PUBLISHED.contains(&r.level))
        .ok_or_else(|| ApiError::UnknownRegion(code.to_string()))?;
    if !key.covers(region) {
        return Err(ApiError::Forbidden(format!(
            "this key is {}'s, not {}'s",
            key.region,
            region.code()
        )));
    }
    let period = published.period_or_latest(period)?;
    Ok(HalfYearReport::build(
        &published,
        &tree,
        &read.log.decisions,
        &read.confirmed,
        region,
        period,
    ))
}

/// The 半年报 as a file name and XLSX bytes.
pub(crate) fn half_year_xlsx(report: &HalfYearReport) -> Result<Response, ApiError> {
    let bytes = report
        .to_xlsx()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let name = format!("half-year-{}-{}.xlsx", report.region.code(), report.period);
    Ok((
        [
            (header::CONTENT_TYPE, XLSX_TYPE.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}

/// An office's 半年报 as an XLSX workbook (one sheet per section, Chinese headers), for the
/// key's region or a region inside it.
#[utoipa::path(get, path = "/v1/reports/half-year", tag = "submissions", params(HalfYearQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The report",
            content((Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 401, description = "No valid key", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key does not cover the region", body = super::problem::Problem, content_type = "application/problem+json")))]
pub async fn half_year(
    State(state): State<AppState>,
    Params(q): Params<HalfYearQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = auth::caller(&state, &headers).await?;
    let report = half_year_report(&state, &key, q.region.as_deref(), q.period).await?;
    half_year_xlsx(&report)
}
