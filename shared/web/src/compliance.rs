//! `GET /v1/reports/status?period=&region=`: who has reported what, and who is missing.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::params::Params;
use super::{ApiError, AppState, Conditional, Source, Stamp};
use jiazheng_core::compliance::{self, CountyStatus};
use jiazheng_core::periods::Period;
use jiazheng_core::regions::COUNTRY_CODE;

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
