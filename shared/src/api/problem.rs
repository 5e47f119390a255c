//! Errors as RFC 9457 `application/problem+json`, each with a stable type.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::ingest::IngestError;
use crate::lake::LakeError;

/// Every way a request can fail, with the HTTP status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no region with code {0:?}")]
    UnknownRegion(String),
    #[error("no indicator {0:?}; GET /v1/indicators lists them")]
    UnknownIndicator(String),
    #[error("no dataset {0:?}")]
    UnknownDataset(String),
    #[error("{0:?} is not a half-year period such as 2023H2")]
    BadPeriod(String),
    #[error("{0:?} is not a level: country, province, city, county or street")]
    BadLevel(String),
    #[error("{indicator} is published down to {finest} level, not {asked}")]
    LevelNotPublished {
        indicator: String,
        finest: String,
        asked: String,
    },
    #[error("no submission {0:?}")]
    UnknownSubmission(String),
    #[error("{0:?} is not an available format")]
    BadFormat(String),
    #[error("nothing is published yet")]
    NothingPublished,
    #[error("{0}")]
    BadSubmission(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownRegion(_)
            | ApiError::UnknownIndicator(_)
            | ApiError::UnknownDataset(_)
            | ApiError::UnknownSubmission(_)
            | ApiError::NothingPublished => StatusCode::NOT_FOUND,
            ApiError::BadPeriod(_)
            | ApiError::BadLevel(_)
            | ApiError::LevelNotPublished { .. }
            | ApiError::BadFormat(_)
            | ApiError::BadSubmission(_) => StatusCode::BAD_REQUEST,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable part of the problem type URI.
    fn kind(&self) -> &'static str {
        match self {
            ApiError::UnknownRegion(_) => "unknown-region",
            ApiError::UnknownIndicator(_) => "unknown-indicator",
            ApiError::UnknownDataset(_) => "unknown-dataset",
            ApiError::BadPeriod(_) => "bad-period",
            ApiError::BadLevel(_) => "bad-level",
            ApiError::LevelNotPublished { .. } => "level-not-published",
            ApiError::UnknownSubmission(_) => "unknown-submission",
            ApiError::BadFormat(_) => "bad-format",
            ApiError::NothingPublished => "nothing-published",
            ApiError::BadSubmission(_) => "bad-submission",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<LakeError> for ApiError {
    fn from(e: LakeError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::UnknownDataset(d) => ApiError::UnknownDataset(d),
            IngestError::UnknownRegion(r) => ApiError::UnknownRegion(r),
            IngestError::Period(p) => ApiError::BadPeriod(p.0),
            IngestError::RegionLevel(_) | IngestError::NoRegions | IngestError::Key(_) => {
                ApiError::BadSubmission(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(detail) = &self {
            // The detail may name storage paths: log it, do not send it.
            tracing::error!(%detail, "request failed");
        }
        let body = Problem {
            kind: format!("https://jiazheng.example/problems/{}", self.kind()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.to_string(),
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            json,
        )
            .into_response()
    }
}
