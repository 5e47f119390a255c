//! `POST /v1/sql`: one read-only query over the published views, for analyst keys.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::params::Params;
use super::tabular::{Format, Table};
use super::{ApiError, AppState, auth};
use jiazheng_core::sql::{self, Limits, SqlError};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SqlRequest {
    /// One SELECT over the published views (`indicator_values`, `regions`, `enterprises`,
    /// `outlets`, `trainings`, `shops`).
    #[schema(
        example = "SELECT region, value FROM indicator_values WHERE indicator = 'outlet_coverage' LIMIT 10"
    )]
    sql: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SqlQuery {
    format: Option<Format>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SqlAnswer {
    columns: Vec<String>,
    rows: Vec<serde_json::Map<String, serde_json::Value>>,
    /// True when the answer had more rows than `row_cap` and was cut.
    truncated: bool,
    row_cap: usize,
}

impl From<SqlError> for ApiError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::NotAQuery(_) | SqlError::Invalid(_) => ApiError::RefusedQuery(e.to_string()),
            SqlError::TooBig(_) => ApiError::QueryTooLarge(e.to_string()),
            SqlError::Timeout(_) | SqlError::Memory(_) => ApiError::QueryLimit(e.to_string()),
            SqlError::Busy => ApiError::Busy(e.to_string()),
            SqlError::Lake(e) => ApiError::from(e),
        }
    }
}

/// Runs one read-only query with a time limit, a memory limit and a row cap (analyst key).
#[utoipa::path(post, path = "/v1/sql", tag = "sql", params(SqlQuery), request_body = SqlRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The answer", content(
            (SqlAnswer = "application/json"),
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.apache.parquet"))),
        (status = 401, description = "No valid key", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an analyst key", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a single SELECT over the published views, or it ran out of time or memory", body = super::problem::Problem, content_type = "application/problem+json")))]
pub async fn run(
    State(state): State<AppState>,
    Params(q): Params<SqlQuery>,
    headers: HeaderMap,
    Json(request): Json<SqlRequest>,
) -> Result<Response, ApiError> {
    let key = auth::caller(&state, &headers).await?;
    auth::may_query(&key)?;
    let format = Format::negotiate(q.format, &headers);
    let limits = Limits::default();
    let tree = state.regions().await?;
    let answer = sql::run(state.lake(), tree.tree.clone(), &request.sql, limits).await?;
    let table = Table::from_batches(answer.schema, answer.batches);
    let body = |table: &Table| {
        Ok(SqlAnswer {
            columns: table.column_names(),
            rows: table.to_json_rows()?,
            truncated: answer.truncated,
            row_cap: limits.max_rows,
        })
    };
    table.respond(format, body, "query")
}
