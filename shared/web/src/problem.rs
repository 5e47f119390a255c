//! Errors as RFC 9457 `application/problem+json`, each with a stable type.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use jiazheng_core::ingest::IngestError;
use jiazheng_core::lake::LakeError;
use jiazheng_core::plausibility::confirmations::ConfirmError;

/// Every way a request can fail, with the HTTP status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no region with code {0:?}")]
    UnknownRegion(String),
    #[error("no indicator {0:?}; GET /v1/indicators lists them")]
    UnknownIndicator(String),
    #[error("no dataset {0:?}")]
    UnknownDataset(String),
    #[error("{}", jiazheng_core::periods::BadPeriod(.0.clone()))]
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
    #[error("{0}")]
    NotSubmitting(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the upload is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("too many requests: at most {0} per second from one client")]
    TooManyRequests(u32),
    #[error("{0}")]
    BadQuery(String),
    #[error("the query ran out of {0}")]
    QueryLimit(String),
    #[error("{0}")]
    RefusedQuery(String),
    #[error("{0}")]
    QueryTooLarge(String),
    #[error("{0}")]
    Busy(String),
    #[error(
        "cursor {0:?} points at a table version that does not exist; start from the first page"
    )]
    StaleCursor(String),
    #[error("{0}")]
    DirectUploadOnly(String),
    #[error("{0}")]
    NotConfirmable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownRegion(_)
            | ApiError::UnknownIndicator(_)
            | ApiError::UnknownDataset(_)
            | ApiError::UnknownSubmission(_)
            | ApiError::LevelNotPublished { .. }
            | ApiError::StaleCursor(_)
            | ApiError::NothingPublished => StatusCode::NOT_FOUND,
            ApiError::BadPeriod(_)
            | ApiError::BadLevel(_)
            | ApiError::BadFormat(_)
            | ApiError::BadSubmission(_) => StatusCode::BAD_REQUEST,
            ApiError::NotSubmitting(_) | ApiError::NotConfirmable(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::QueryLimit(_) | ApiError::RefusedQuery(_) | ApiError::QueryTooLarge(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::DirectUploadOnly(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What happened, as a client may read it: every detail quotes what the client sent,
    /// so ID numbers in it are masked.
    pub(super) fn detail(&self) -> String {
        jiazheng_core::identifiers::mask_id_numbers(&self.to_string()).into_owned()
    }

    /// The stable part of the problem type URI.
    pub(super) fn kind(&self) -> &'static str {
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
            ApiError::NotSubmitting(_) => "not-a-submitting-region",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::TooLarge(_) => "too-large",
            ApiError::TooManyRequests(_) => "too-many-requests",
            ApiError::BadQuery(_) => "bad-query",
            ApiError::QueryLimit(_) => "query-limit",
            ApiError::RefusedQuery(_) => "refused-query",
            ApiError::QueryTooLarge(_) => "query-too-large",
            ApiError::Busy(_) => "busy",
            ApiError::StaleCursor(_) => "stale-cursor",
            ApiError::DirectUploadOnly(_) => "direct-upload-only",
            ApiError::NotConfirmable(_) => "not-confirmable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<LakeError> for ApiError {
    fn from(e: LakeError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<ConfirmError> for ApiError {
    fn from(e: ConfirmError) -> Self {
        match e {
            ConfirmError::Lake(e) => e.into(),
            other => ApiError::NotConfirmable(other.to_string()),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::UnknownDataset(d) => ApiError::UnknownDataset(d),
            IngestError::UnknownRegion(r) => ApiError::UnknownRegion(r),
            IngestError::Period(p) => ApiError::BadPeriod(p.0),
            IngestError::TooLarge { max, .. } => ApiError::TooLarge(max),
            IngestError::RegionLevel(_) => ApiError::NotSubmitting(e.to_string()),
            IngestError::NoRegions | IngestError::Key(_) | IngestError::Body(_) => {
                ApiError::BadSubmission(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<jiazheng_core::ingest::uploads::UploadError> for ApiError {
    fn from(e: jiazheng_core::ingest::uploads::UploadError) -> Self {
        use jiazheng_core::ingest::uploads::UploadError;
        match e {
            UploadError::NotOnS3 => ApiError::DirectUploadOnly(e.to_string()),
            UploadError::FileType(_) => ApiError::BadSubmission(e.to_string()),
            UploadError::TooLarge { max, .. } => ApiError::TooLarge(max),
            UploadError::Ingest(e) => e.into(),
            UploadError::Lake(e) => e.into(),
        }
    }
}

/// An RFC 9457 problem: `type` is stable per kind of failure, `detail` says what happened.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// `https://jiazheng.example/problems/{kind}`, e.g. `…/unknown-region`.
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
}

impl Problem<'_> {
    /// The problem as a response: its status, `application/problem+json`, never cached.
    fn response(status: StatusCode, kind: &str, detail: String) -> Response {
        let body = Problem {
            kind: format!("https://jiazheng.example/problems/{kind}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
        };
        (
            status,
            [
                (header::CONTENT_TYPE, "application/problem+json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            serde_json::to_vec(&body).unwrap_or_default(),
        )
            .into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(detail) = &self {
            // The detail may name storage paths: log it, do not send it.
            tracing::error!(%detail, "request failed");
        }
        let mut response = Problem::response(status, self.kind(), self.detail());
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            ApiError::TooManyRequests(_) | ApiError::Busy(_) => {
                headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

/// Turns every error response that is not a problem yet — axum's rejections of a malformed
/// query string or body, an unknown route, a wrong method — into `application/problem+json`,
/// so clients meet one error format everywhere.
pub async fn as_problem(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    // Only bare errors (plain text or empty bodies); our own JSON answers, such as a
    // rejected file's report, are left alone.
    let bare = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !bare {
        return response;
    }
    let (parts, body) = response.into_parts();
    let detail = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let kind = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        _ if status.is_server_error() => "internal",
        _ => "bad-request",
    };
    let detail = if detail.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_string()
    } else {
        jiazheng_core::identifiers::mask_id_numbers(&detail).into_owned()
    };
    let mut response = Problem::response(status, kind, detail);
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}
