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

/// What a problem type means: its page at `/problems/{kind}`, where every problem's `type`
/// resolves.
pub(crate) struct ProblemType {
    pub kind: &'static str,
    pub status: u16,
    pub zh: &'static str,
    pub en: &'static str,
}

const fn t(kind: &'static str, status: u16, zh: &'static str, en: &'static str) -> ProblemType {
    ProblemType {
        kind,
        status,
        zh,
        en,
    }
}

/// Every kind the API answers with (a test ties it to [`ApiError::kind`] and the rejections).
pub(crate) const PROBLEM_TYPES: &[ProblemType] = &[
    t(
        "unknown-region",
        404,
        "没有这个区划代码。/v1/regions 列出全部地区。",
        "No region has this code; /v1/regions lists them.",
    ),
    t(
        "unknown-indicator",
        404,
        "没有这个指标。/v1/indicators 列出全部指标。",
        "No such indicator; /v1/indicators lists them.",
    ),
    t(
        "unknown-dataset",
        404,
        "没有这个数据集，或它不逐条公开。/v1/datasets 列出全部数据集。",
        "No such dataset, or it is not published record by record; /v1/datasets lists them.",
    ),
    t(
        "bad-period",
        400,
        "报告期应写成 2023H2 这样的半年，且在政策开始之后、不晚于本半年。",
        "A period is a half-year such as 2023H2, from the policy's start to the current one.",
    ),
    t(
        "bad-level",
        400,
        "级别应为 country、province、city、county 或 street。",
        "A level is country, province, city, county or street.",
    ),
    t(
        "level-not-published",
        404,
        "该指标不发布到所请求的级别。",
        "The indicator is not published down to the level asked for.",
    ),
    t(
        "unknown-submission",
        404,
        "没有这个报送编号。",
        "No submission has this id.",
    ),
    t(
        "bad-format",
        400,
        "不支持的格式：可用 json、csv 或 parquet（或相应的文件名）。",
        "Not an available format: json, csv or parquet (or the matching file name).",
    ),
    t(
        "nothing-published",
        404,
        "这一期还没有发布任何指标。",
        "Nothing is published for this yet.",
    ),
    t(
        "bad-submission",
        400,
        "上传请求不完整或有误，见 detail。",
        "The upload request is incomplete or wrong; see detail.",
    ),
    t(
        "not-a-submitting-region",
        422,
        "该地区不报送数据：按旗县（市、区）或其上级报送。",
        "This region does not submit: files come from counties or the regions above them.",
    ),
    t(
        "unauthorized",
        401,
        "需要有效的密钥：Authorization: Bearer jz_…",
        "A valid key is needed: Authorization: Bearer jz_…",
    ),
    t(
        "forbidden",
        403,
        "该密钥无权进行此操作（例如为其他地区报送）。",
        "The key may not do this (for example, submit for another region).",
    ),
    t(
        "too-large",
        413,
        "请求或文件超过了数据集声明的上限（见 /v1/datasets 的 limits）。",
        "The request or file is over the dataset's declared limit (its limits in /v1/datasets).",
    ),
    t(
        "too-many-requests",
        429,
        "请求过于频繁，请稍后重试（Retry-After）。",
        "Too many requests; retry after the time in Retry-After.",
    ),
    t(
        "bad-query",
        400,
        "查询参数有误，见 detail。",
        "A query parameter is wrong; see detail.",
    ),
    t(
        "query-limit",
        422,
        "SQL 查询用尽了时间、内存或行数上限。",
        "The SQL query ran out of its time, memory or row limit.",
    ),
    t(
        "refused-query",
        422,
        "只接受一条只读的 SELECT，且只能读公开的视图。",
        "Only one read-only SELECT over the published views is accepted.",
    ),
    t(
        "query-too-large",
        422,
        "SQL 查询文本过长。",
        "The SQL text is too long.",
    ),
    t(
        "busy",
        429,
        "服务正忙（查询并发已满），请稍后重试。",
        "Busy: every query slot is taken; retry shortly.",
    ),
    t(
        "stale-cursor",
        404,
        "游标指向的表版本已不存在，请从第一页重新开始。",
        "The cursor points at a table version that no longer exists; start from the first page.",
    ),
    t(
        "direct-upload-only",
        409,
        "本地数据湖请直接 PUT 文件到 API。",
        "The lake is not on S3: PUT the file to the API instead.",
    ),
    t(
        "not-confirmable",
        422,
        "没有可核实的合理性提示，或所指的不是本报告中的合理性提示。",
        "Nothing to confirm, or the finding named is not a plausibility finding of the report.",
    ),
    t(
        "internal",
        500,
        "服务内部出错，已记录；请稍后重试。",
        "Something went wrong on the server; it is logged. Try again later.",
    ),
    t(
        "not-found",
        404,
        "没有这个地址。/v1/ 列出全部接口。",
        "No such address; /v1/ lists the endpoints.",
    ),
    t(
        "method-not-allowed",
        405,
        "该地址不接受这种请求方法（见 Allow）。",
        "The address does not take this method (see Allow).",
    ),
    t(
        "unsupported-media-type",
        415,
        "请求体的类型不对，例如应为 application/json。",
        "The body is not of the expected type, e.g. application/json.",
    ),
    t(
        "bad-request",
        400,
        "请求有误，见 detail。",
        "The request is not valid; see detail.",
    ),
];

pub(crate) fn problem_type(kind: &str) -> Option<&'static ProblemType> {
    PROBLEM_TYPES.iter().find(|t| t.kind == kind)
}

/// An RFC 9457 problem: `type` is stable per kind of failure, `detail` says what happened.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// `/problems/{kind}` on this server (a page saying what it means), e.g.
    /// `/problems/unknown-region`.
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
            kind: format!("/problems/{kind}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_page_with_its_status() {
        let every = [
            ApiError::UnknownRegion(String::new()),
            ApiError::UnknownIndicator(String::new()),
            ApiError::UnknownDataset(String::new()),
            ApiError::BadPeriod(String::new()),
            ApiError::BadLevel(String::new()),
            ApiError::LevelNotPublished {
                indicator: String::new(),
                finest: String::new(),
                asked: String::new(),
            },
            ApiError::UnknownSubmission(String::new()),
            ApiError::BadFormat(String::new()),
            ApiError::NothingPublished,
            ApiError::BadSubmission(String::new()),
            ApiError::NotSubmitting(String::new()),
            ApiError::Unauthorized(String::new()),
            ApiError::Forbidden(String::new()),
            ApiError::TooLarge(1),
            ApiError::TooManyRequests(1),
            ApiError::BadQuery(String::new()),
            ApiError::QueryLimit(String::new()),
            ApiError::RefusedQuery(String::new()),
            ApiError::QueryTooLarge(String::new()),
            ApiError::Busy(String::new()),
            ApiError::StaleCursor(String::new()),
            ApiError::DirectUploadOnly(String::new()),
            ApiError::NotConfirmable(String::new()),
            ApiError::Internal(String::new()),
        ];
        for error in every {
            let page = problem_type(error.kind()).unwrap_or_else(|| panic!("{}", error.kind()));
            assert_eq!(page.status, error.status().as_u16(), "{}", error.kind());
        }
        let mut kinds: Vec<&str> = PROBLEM_TYPES.iter().map(|t| t.kind).collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), PROBLEM_TYPES.len(), "a kind listed twice");
    }
}
