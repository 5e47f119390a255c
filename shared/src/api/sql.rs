//! `POST /v1/sql`: one read-only query over the published views, for analyst keys.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::tabular::{Format, Table};
use super::{ApiError, AppState, auth};
use crate::lake::LakeError;
use crate::sql::{self, Limits, SqlError};

#[derive(Deserialize)]
pub struct SqlRequest {
    sql: String,
}

#[derive(Deserialize)]
pub struct SqlQuery {
    format: Option<String>,
}

impl From<SqlError> for ApiError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::NotAQuery(_) | SqlError::Invalid(_) => ApiError::BadQuery(e.to_string()),
            SqlError::Timeout(_) | SqlError::Memory(_) => ApiError::QueryLimit(e.to_string()),
            SqlError::Lake(e) => ApiError::from(e),
        }
    }
}

pub async fn run(
    State(state): State<AppState>,
    Query(q): Query<SqlQuery>,
    headers: HeaderMap,
    Json(request): Json<SqlRequest>,
) -> Result<Response, ApiError> {
    let key = auth::caller(&state, &headers).await?;
    auth::may_query(&key)?;
    let format = Format::negotiate(q.format.as_deref(), &headers)?;
    let limits = Limits::default();
    let answer = sql::run(state.lake(), &request.sql, limits).await?;
    let mut writer = deltalake::arrow::json::ArrayWriter::new(Vec::new());
    for batch in &answer.batches {
        writer.write(batch).map_err(LakeError::from)?;
    }
    writer.finish().map_err(LakeError::from)?;
    let json = writer.into_inner();
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = if json.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&json).map_err(LakeError::from)?
    };
    let columns: Vec<String> = answer
        .batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    let table = Table::from_maps(rows.clone(), columns.clone());
    let body = serde_json::json!({
        "columns": columns,
        "rows": rows,
        "truncated": answer.truncated,
        "row_cap": limits.max_rows,
    });
    table.respond(format, body, "query")
}
