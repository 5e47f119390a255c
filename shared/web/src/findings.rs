//! Plausibility findings after the decision: the submitter confirms them (已核实) with the key
//! of their region, and analysts list what is still open in a region and period.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::params::Params;
use super::{ApiError, AppState, auth};
use jiazheng_core::findings::{Issue, MAX_LISTED};
use jiazheng_core::keys::{Key, Role};
use jiazheng_core::periods::Period;
use jiazheng_core::plausibility::{self, Confirmation, confirmations};
use jiazheng_core::regions::Region;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Confirmed {
    submission_id: String,
    /// What this request recorded.
    confirmed: Vec<Confirmation>,
    /// Findings of the submission still not confirmed.
    open_findings: u64,
}

/// Confirms plausibility findings of a submission (已核实), with an optional comment: the
/// figures are right. Needs a submitter key covering the submitting region; the values
/// computed from the file lose their `unconfirmed` flag once none is open.
#[utoipa::path(post, path = "/v1/submissions/{id}/confirmations", tag = "submissions",
    params(("id" = String, Path)),
    request_body = confirmations::Request,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Recorded; the period's values are refreshed", body = Confirmed),
        (status = 401, description = "No valid key", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key does not cover the submitting region", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such submission", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a plausibility finding of the report, or nothing to confirm", body = super::problem::Problem, content_type = "application/problem+json")))]
pub async fn confirm(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: Result<Json<confirmations::Request>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let key = auth::caller(&state, &headers).await?;
    let Json(request) = match request {
        Ok(request) => request,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let open_findings = confirm_as(&state, &key, &id, request).await?;
    Ok((StatusCode::CREATED, Json(open_findings)).into_response())
}

/// Confirms as `key` (the API's bearer key or the page's session).
pub(crate) async fn confirm_as(
    state: &AppState,
    key: &Key,
    id: &str,
    request: confirmations::Request,
) -> Result<Confirmed, ApiError> {
    let (_, log) = state.log().await?;
    let (submission, _) = log
        .find(id)
        .cloned()
        .ok_or_else(|| ApiError::UnknownSubmission(id.to_string()))?;
    let tree = state.regions().await?;
    let region = tree
        .resolve(&submission.region)
        .ok_or_else(|| ApiError::UnknownRegion(submission.region.clone()))?;
    auth::may_submit(key, region)?;
    let report = state
        .ingestor
        .report(id)
        .await?
        .ok_or_else(|| ApiError::UnknownSubmission(id.to_string()))?;
    let confirmed =
        confirmations::confirm(state.lake(), &submission, &report, &key.region, request).await?;
    let (_, all) = state.confirmed().await?;
    Ok(Confirmed {
        submission_id: submission.submission_id.clone(),
        confirmed,
        open_findings: all.open(&submission),
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FindingsQuery {
    /// Half-year, e.g. `2023H2`.
    #[param(value_type = String)]
    period: Period,
    /// Findings of the current files of regions inside this one.
    region: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OpenFinding {
    /// The finding's place in the report's `issues`, which a confirmation names.
    finding: usize,
    #[serde(flatten)]
    issue: Issue,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FlaggedFile {
    submission_id: String,
    dataset: String,
    region: String,
    file_name: String,
    /// Open findings, listed or not (a report lists the first 1,000 problems).
    open_findings: u64,
    findings: Vec<OpenFinding>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OpenFindings {
    period: String,
    region: String,
    name: String,
    open_findings: u64,
    /// True when fewer findings are listed than are open: at most 1,000 are listed per
    /// answer (and per report); ask for a smaller region to see the rest.
    truncated: bool,
    /// Current files with findings nobody has confirmed, oldest decision first.
    files: Vec<FlaggedFile>,
}

/// Every plausibility finding not yet confirmed in the current files of a region and period.
/// Needs an analyst key, or a submitter key covering the region.
#[utoipa::path(get, path = "/v1/findings", tag = "submissions", params(FindingsQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The open findings", body = OpenFindings),
        (status = 401, description = "No valid key", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key does not cover the region", body = super::problem::Problem, content_type = "application/problem+json")))]
pub async fn open(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<FindingsQuery>,
) -> Result<Response, ApiError> {
    let key = auth::caller(&state, &headers).await?;
    let tree = state.regions().await?;
    let region = tree
        .resolve(&q.region)
        .ok_or_else(|| ApiError::UnknownRegion(q.region.clone()))?;
    may_read(&key, region)?;
    let read = state.log_confirmed().await?;
    let mut files = Vec::new();
    // Counted whole, listed up to one report's worth: a national listing neither reads
    // every report nor holds every finding.
    let mut room = MAX_LISTED;
    for (submission, current) in &read.log.latest {
        let inside = tree
            .resolve(&submission.region)
            .is_some_and(|r| region.prefix.contains(&r.prefix));
        let open = read.confirmed.open(submission);
        if !*current || submission.period != q.period || !inside || open == 0 {
            continue;
        }
        let id = &submission.submission_id;
        let report = match room {
            0 => None,
            _ => state.ingestor.report(id).await?,
        };
        let findings: Vec<OpenFinding> = report
            .map(|r| r.issues)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter(|(place, issue)| {
                plausibility::by_code(&issue.code).is_some()
                    && read.confirmed.covering(id, *place).is_none()
            })
            .take(room)
            .map(|(finding, issue)| OpenFinding { finding, issue })
            .collect();
        room -= findings.len();
        files.push(FlaggedFile {
            submission_id: id.clone(),
            dataset: submission.dataset.name.to_string(),
            region: submission.region.clone(),
            file_name: submission.file_name.clone(),
            open_findings: open,
            findings,
        });
    }
    let open_findings: u64 = files.iter().map(|f| f.open_findings).sum();
    let listed: usize = files.iter().map(|f| f.findings.len()).sum();
    Ok(Json(OpenFindings {
        period: q.period.to_string(),
        region: region.code(),
        name: region.name.clone(),
        open_findings,
        truncated: (listed as u64) < open_findings,
        files,
    })
    .into_response())
}

/// Findings name rows of files: analysts read any region's, submitters their own.
fn may_read(key: &Key, region: &Region) -> Result<(), ApiError> {
    match key.role {
        Role::Analyst => Ok(()),
        Role::Submitter if key.covers(region) => Ok(()),
        Role::Submitter => Err(ApiError::Forbidden(format!(
            "this key reads the findings of {}, not {}",
            key.region,
            region.code()
        ))),
    }
}
