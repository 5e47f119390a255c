//! Direct uploads (`PUT /v1/submissions/{dataset}/{period}/{region}`) and submission status.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::params::Params;
use super::{ApiError, AppState, auth};
use jiazheng_core::datasets::Dataset;
use jiazheng_core::findings::{Report, Status};
use jiazheng_core::ingest::uploads::{self, Pending, Ticket};
use jiazheng_core::ingest::{Outcome, Upload};
use jiazheng_core::periods::Period;
use jiazheng_core::plausibility::{Confirmation, Confirmed};
use jiazheng_core::submissions::Submission;

#[derive(Serialize, utoipa::ToSchema)]
pub struct SubmissionView {
    #[serde(flatten)]
    submission: Submission,
    /// Whether this file's rows are the ones the indicators use now.
    current: bool,
    /// Plausibility findings nobody has confirmed yet (`POST …/confirmations`).
    open_findings: u64,
}

/// Where a submission stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// An upload URL was handed out; the file has not been decided on yet.
    Pending,
    Accepted,
    Rejected,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SubmissionResponse {
    status: Progress,
    /// The decision, once made.
    #[serde(skip_serializing_if = "Option::is_none")]
    submission: Option<SubmissionView>,
    /// The upload asked for, while it is pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pending: Option<Pending>,
    /// True when the same bytes had been submitted before and nothing was written again.
    duplicate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<Report>,
    /// Who confirmed which plausibility findings of the report, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    confirmations: Vec<Confirmation>,
}

impl SubmissionResponse {
    fn decided(
        submission: Submission,
        current: bool,
        duplicate: bool,
        report: Report,
        confirmed: &Confirmed,
    ) -> Self {
        let id = &submission.submission_id;
        let confirmations = confirmed.of(id).to_vec();
        let open_findings = confirmed.open(&submission);
        SubmissionResponse {
            confirmations,
            status: match submission.status {
                Status::Accepted => Progress::Accepted,
                Status::Rejected => Progress::Rejected,
            },
            submission: Some(SubmissionView {
                submission,
                current,
                open_findings,
            }),
            pending: None,
            duplicate,
            report: Some(report),
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The original file name (or send `X-File-Name` or `Content-Disposition`).
    file_name: Option<String>,
}

/// The file name from `?file_name=`, an `X-File-Name` header or `Content-Disposition`.
fn file_name(query: &UploadQuery, headers: &HeaderMap) -> Option<String> {
    if let Some(name) = &query.file_name {
        return Some(name.clone());
    }
    if let Some(name) = headers.get("x-file-name").and_then(|v| v.to_str().ok()) {
        return Some(name.to_string());
    }
    let disposition = headers.get("content-disposition")?.to_str().ok()?;
    let (_, name) = disposition.split_once("filename=")?;
    Some(name.trim_matches(['"', ' ', ';']).to_string())
}

/// Submits a file (CSV or XLSX) for a dataset, period and region: accepted or rejected whole,
/// with the validation report. Needs a submitter key whose region contains `region`.
#[utoipa::path(put, path = "/v1/submissions/{dataset}/{period}/{region}", tag = "submissions",
    params(("dataset" = String, Path), ("period" = String, Path), ("region" = String, Path, description = "The submitting banner, county or city"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file as it is"),
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Accepted: its rows are now current", body = SubmissionResponse),
        (status = 200, description = "The same bytes were accepted before; nothing written", body = SubmissionResponse),
        (status = 422, description = "Rejected: the report says why, row by row; or the region is a street or village, which do not submit files", content(
            (SubmissionResponse = "application/json"),
            (super::problem::Problem = "application/problem+json"))),
        (status = 401, description = "No valid key", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key may not submit for this region", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than the dataset's limit (see its `limits` in /v1/datasets)", body = super::problem::Problem, content_type = "application/problem+json")))]
pub async fn upload(
    State(state): State<AppState>,
    Path((dataset, period, region)): Path<(String, String, String)>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<SubmissionResponse>), ApiError> {
    // Key, role, region, dataset and declared size are all settled from the headers: a body
    // that may not be sent is refused before a byte of it is read.
    let key = auth::caller(&state, &headers).await?;
    let declared: &'static Dataset = super::params::value("dataset", &dataset)?;
    let period: Period = super::params::value("period", &period)?;
    let tree = state.regions().await?;
    let target = jiazheng_core::ingest::submitting_region(&tree, &region)?;
    auth::may_submit(&key, target)?;
    let max = declared
        .limits()
        .max_file_bytes
        .min(state.upload_limit as u64);
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if length.is_some_and(|n| n > max) {
        return Err(ApiError::TooLarge(max));
    }
    let upload = Upload {
        file_name: file_name(&query, &headers)
            .unwrap_or_else(|| format!("{dataset}-{period}-{region}")),
        dataset: declared,
        period,
        region,
    };
    let outcome = state
        .ingestor
        .submit_stream(&upload, body.into_data_stream(), max)
        .await?;
    let status = match (outcome.submission.status, outcome.duplicate) {
        (Status::Rejected, _) => StatusCode::UNPROCESSABLE_ENTITY,
        (Status::Accepted, true) => StatusCode::OK,
        (Status::Accepted, false) => StatusCode::CREATED,
    };
    Ok((status, Json(respond(&state, outcome).await?)))
}

async fn respond(state: &AppState, outcome: Outcome) -> Result<SubmissionResponse, ApiError> {
    let current = is_current(state, &outcome.submission.submission_id).await?;
    let (_, confirmed) = state.confirmed().await?;
    Ok(SubmissionResponse::decided(
        outcome.submission,
        current,
        outcome.duplicate,
        outcome.report,
        &confirmed,
    ))
}

async fn is_current(state: &AppState, id: &str) -> Result<bool, ApiError> {
    let (_, log) = state.log().await?;
    Ok(log.find(id).is_some_and(|(_, current)| *current))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(value_type = Option<String>)]
    period: Option<Period>,
    /// Submissions of regions inside this one.
    region: Option<String>,
    #[param(value_type = Option<String>)]
    dataset: Option<&'static Dataset>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SubmissionList {
    /// Newest first.
    submissions: Vec<SubmissionView>,
}

/// Every submission (accepted or rejected, current or replaced) of regions inside `region`.
#[utoipa::path(get, path = "/v1/submissions", tag = "submissions", params(ListQuery),
    responses((status = 200, description = "The submissions", body = SubmissionList)))]
pub async fn list(
    State(state): State<AppState>,
    Params(q): Params<ListQuery>,
) -> Result<Json<SubmissionList>, ApiError> {
    let tree = state.regions().await?;
    let within = match &q.region {
        Some(code) => Some(
            tree.resolve(code)
                .ok_or_else(|| ApiError::UnknownRegion(code.clone()))?
                .prefix
                .clone(),
        ),
        None => None,
    };
    let read = state.log_confirmed().await?;
    let mut views: Vec<SubmissionView> = read
        .log
        .latest
        .iter()
        .filter(|(s, _)| q.period.is_none_or(|p| s.period == p))
        .filter(|(s, _)| q.dataset.is_none_or(|d| s.dataset == d))
        .filter(|(s, _)| {
            within.as_ref().is_none_or(|prefix| {
                tree.resolve(&s.region)
                    .is_some_and(|r| prefix.contains(&r.prefix))
            })
        })
        .map(|(submission, current)| SubmissionView {
            open_findings: read.confirmed.open(submission),
            submission: submission.clone(),
            current: *current,
        })
        .collect();
    views.reverse();
    Ok(Json(SubmissionList { submissions: views }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangQuery {
    /// `en` for the English page (`report.html` only).
    #[serde(default)]
    #[param(value_type = Option<String>)]
    lang: crate::pages::Lang,
}

/// The report alone, for people and Excel: `report.json`, `report.csv` or `report.html`.
#[utoipa::path(get, path = "/v1/submissions/{id}/{file}", tag = "submissions",
    params(("id" = String, Path), ("file" = String, Path), LangQuery),
    responses((status = 200, description = "The report", content(
        (jiazheng_core::findings::Report = "application/json"),
        (String = "text/csv"),
        (String = "text/html")))))]
pub async fn report(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    Params(q): Params<LangQuery>,
) -> Result<Response, ApiError> {
    let report = state
        .ingestor
        .report(&id)
        .await?
        .ok_or_else(|| ApiError::UnknownSubmission(id.clone()))?;
    Ok(match file.as_str() {
        // The submitter's page, in Chinese unless `?lang=en`.
        "report.html" => crate::pages::findings::render(&state, &report, q.lang, false, None)
            .await
            .into_response(),
        "report.json" => Json(report).into_response(),
        "report.csv" => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"report-{id}.csv\""),
                ),
            ],
            report.to_csv(),
        )
            .into_response(),
        other => return Err(ApiError::BadFormat(other.to_string())),
    })
}

/// A submission: pending until its file is decided on, then whether it is current, and its
/// report.
#[utoipa::path(get, path = "/v1/submissions/{id}", tag = "submissions",
    params(("id" = String, Path)),
    responses((status = 200, description = "The submission", body = SubmissionResponse)))]
pub async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SubmissionResponse>, ApiError> {
    let (_, log) = state.log().await?;
    let Some((submission, current)) = log.find(&id).cloned() else {
        let pending = uploads::pending(state.lake(), &id)
            .await?
            .ok_or_else(|| ApiError::UnknownSubmission(id.clone()))?;
        return Ok(Json(SubmissionResponse {
            status: Progress::Pending,
            submission: None,
            pending: Some(pending),
            duplicate: false,
            report: None,
            confirmations: Vec::new(),
        }));
    };
    let report = state
        .ingestor
        .report(&id)
        .await?
        .ok_or_else(|| ApiError::UnknownSubmission(id.clone()))?;
    let (_, confirmed) = state.confirmed().await?;
    Ok(Json(SubmissionResponse::decided(
        submission, current, false, report, &confirmed,
    )))
}

/// What a submitter announces before uploading straight to storage.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct UploadRequest {
    #[schema(example = "outlets")]
    dataset: String,
    /// Half-year, e.g. `2023H2`.
    #[schema(example = "2023H2")]
    period: String,
    /// The submitting banner, county or city.
    #[schema(example = "152201")]
    region: String,
    #[schema(pattern = "^[^/]+[.](csv|txt|tsv|xlsx|xls)$", example = "outlets.xlsx")]
    file_name: String,
    /// The file's exact size: the upload URL is signed for it, and a size over the dataset's
    /// limit is refused here (413).
    #[schema(example = 20480)]
    size_bytes: u64,
}

/// Asks for a presigned URL to PUT a file straight to S3; the bucket's event then runs the
/// ingest function and `GET /v1/submissions/{id}` goes from `pending` to the decision. Only
/// for a lake on S3: on a local lake, PUT the file to the API instead (409).
#[utoipa::path(post, path = "/v1/submissions", tag = "submissions",
    request_body = UploadRequest,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Upload here", body = Ticket),
        (status = 401, description = "No valid key", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key may not submit for this region", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The lake is not on S3: PUT the file to the API", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The announced size is over the dataset's limit (see its `limits` in /v1/datasets)", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body lacks a field", body = super::problem::Problem, content_type = "application/problem+json")))]
pub async fn request_upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<Json<UploadRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    // Who is asking comes before what they ask: a caller without a key learns 401, not
    // which fields the body lacks.
    let key = auth::caller(&state, &headers).await?;
    let Json(request) = match request {
        Ok(request) => request,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let tree = state.regions().await?;
    let target = jiazheng_core::ingest::submitting_region(&tree, &request.region)?;
    auth::may_submit(&key, target)?;
    let ticket = uploads::request(
        state.lake(),
        &request.dataset,
        &request.period,
        &target.code(),
        &request.file_name,
        request.size_bytes,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(ticket)).into_response())
}
