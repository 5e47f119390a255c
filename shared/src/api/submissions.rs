//! Direct uploads (`PUT /v1/submissions/{dataset}/{period}/{region}`) and submission status.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, auth};
use crate::ingest::{Outcome, Upload};
use crate::report::{Report, Status};
use crate::submissions::{self, Submission};
use axum::extract::rejection::BytesRejection;

#[derive(Serialize)]
pub struct SubmissionView {
    #[serde(flatten)]
    submission: Submission,
    /// Whether this file's rows are the ones the indicators use now.
    current: bool,
}

#[derive(Serialize)]
pub struct SubmissionResponse {
    submission: SubmissionView,
    /// True when the same bytes had been submitted before and nothing was written again.
    duplicate: bool,
    report: Report,
}

#[derive(Deserialize)]
pub struct UploadQuery {
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

pub async fn upload(
    State(state): State<AppState>,
    Path((dataset, period, region)): Path<(String, String, String)>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SubmissionResponse>), ApiError> {
    let key = auth::caller(&state, &headers).await?;
    let tree = state.regions().await?;
    let target = tree
        .resolve(&region)
        .ok_or_else(|| ApiError::UnknownRegion(region.clone()))?;
    auth::may_submit(&key, target)?;
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => ApiError::TooLarge(state.upload_limit),
        other => ApiError::BadSubmission(other.body_text()),
    })?;
    let upload = Upload {
        file_name: file_name(&query, &headers)
            .unwrap_or_else(|| format!("{dataset}-{period}-{region}")),
        dataset,
        period,
        region,
    };
    let outcome = state.ingestor.submit_bytes(&upload, body).await?;
    let status = match (outcome.submission.status, outcome.duplicate) {
        (Status::Rejected, _) => StatusCode::UNPROCESSABLE_ENTITY,
        (Status::Accepted, true) => StatusCode::OK,
        (Status::Accepted, false) => StatusCode::CREATED,
    };
    Ok((status, Json(respond(&state, outcome).await?)))
}

async fn respond(state: &AppState, outcome: Outcome) -> Result<SubmissionResponse, ApiError> {
    let current = is_current(state, &outcome.submission.submission_id).await?;
    Ok(SubmissionResponse {
        submission: SubmissionView {
            submission: outcome.submission,
            current,
        },
        duplicate: outcome.duplicate,
        report: outcome.report,
    })
}

async fn is_current(state: &AppState, id: &str) -> Result<bool, ApiError> {
    let log = submissions::all(state.lake()).await?;
    Ok(submissions::latest(&log)
        .into_iter()
        .any(|(s, current)| s.submission_id == id && current))
}

#[derive(Deserialize)]
pub struct ListQuery {
    period: Option<String>,
    region: Option<String>,
    dataset: Option<String>,
}

/// `GET /v1/submissions?period=&region=&dataset=`: every submission (accepted or rejected,
/// current or replaced) of regions inside `region`, newest first.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if let Some(p) = &q.period {
        p.parse::<crate::periods::Period>()
            .map_err(|_| ApiError::BadPeriod(p.clone()))?;
    }
    if let Some(d) = &q.dataset {
        crate::datasets::by_name(d).ok_or_else(|| ApiError::UnknownDataset(d.clone()))?;
    }
    let within = match &q.region {
        Some(code) => Some(
            state
                .regions()
                .await?
                .resolve(code)
                .ok_or_else(|| ApiError::UnknownRegion(code.clone()))?
                .prefix
                .clone(),
        ),
        None => None,
    };
    let tree = state.regions().await?;
    let log = submissions::all(state.lake()).await?;
    let mut views: Vec<SubmissionView> = submissions::latest(&log)
        .into_iter()
        .filter(|(s, _)| q.period.as_ref().is_none_or(|p| &s.period == p))
        .filter(|(s, _)| q.dataset.as_ref().is_none_or(|d| &s.dataset == d))
        .filter(|(s, _)| {
            within.as_ref().is_none_or(|prefix| {
                tree.resolve(&s.region)
                    .is_some_and(|r| r.prefix.starts_with(prefix.as_str()))
            })
        })
        .map(|(submission, current)| SubmissionView {
            submission,
            current,
        })
        .collect();
    views.reverse();
    Ok(Json(serde_json::json!({ "submissions": views })))
}

/// `GET /v1/submissions/{id}/report.json|csv|html`: the report alone, for people and Excel.
pub async fn report(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let report = state
        .ingestor
        .report(&id)
        .await?
        .ok_or_else(|| ApiError::UnknownSubmission(id.clone()))?;
    Ok(match file.as_str() {
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
        "report.html" => Html(report.to_html()).into_response(),
        other => return Err(ApiError::BadFormat(other.to_string())),
    })
}

pub async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SubmissionResponse>, ApiError> {
    let log = submissions::all(state.lake()).await?;
    let (submission, current) = submissions::latest(&log)
        .into_iter()
        .find(|(s, _)| s.submission_id == id)
        .ok_or_else(|| ApiError::UnknownSubmission(id.clone()))?;
    let report = state
        .ingestor
        .report(&id)
        .await?
        .ok_or_else(|| ApiError::UnknownSubmission(id.clone()))?;
    Ok(Json(SubmissionResponse {
        submission: SubmissionView {
            submission,
            current,
        },
        duplicate: false,
        report,
    }))
}
