//! `GET /v1/templates/{dataset}.xlsx|.csv`: blank templates from the declarations.

use axum::Extension;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use jiazheng_core::datasets;
use jiazheng_core::templates;

/// A blank template of a dataset with Chinese headers and the rules: `{dataset}.xlsx` or
/// `{dataset}.csv`.
#[utoipa::path(get, path = "/v1/templates/{file}", tag = "datasets",
    params(("file" = String, Path, example = "outlets.xlsx")),
    responses((status = 200, description = "The template", content(
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (String = "text/csv")))))]
pub async fn download(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (name, extension) = file
        .rsplit_once('.')
        .ok_or_else(|| ApiError::UnknownDataset(file.clone()))?;
    let dataset =
        datasets::by_name(name).ok_or_else(|| ApiError::UnknownDataset(name.to_string()))?;
    let (content_type, bytes) = match extension {
        "xlsx" => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            templates::xlsx(dataset).map_err(|e| ApiError::Internal(e.to_string()))?,
        ),
        "csv" => ("text/csv; charset=utf-8", templates::csv(dataset)),
        other => return Err(ApiError::BadFormat(other.to_string())),
    };
    let disposition = format!("attachment; filename=\"{name}.{extension}\"");
    Ok((
        Extension(super::build_stamp()),
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}
