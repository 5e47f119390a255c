//! Uploads straight to S3. A submitter asks for a place to put a file; we note the expected
//! upload (`pending/{id}.json`) and hand back a presigned PUT URL for
//! `uploads/{dataset}/{period}/{region}/{id}.{ext}`. The bucket's `ObjectCreated` event then
//! runs ingest on it, which writes the report and the decision: the file never passes through
//! the API, so its size is bounded by S3, not by a Lambda payload.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::datasets;
use crate::ingest::{IngestError, UploadKey};
use crate::lake::{Lake, LakeError};
use crate::periods::Period;

/// File types a submitter may announce; the reader sniffs the bytes anyway, the extension
/// only names the raw object.
const EXTENSIONS: [&str; 5] = ["csv", "txt", "tsv", "xlsx", "xls"];

/// How long an upload URL stays valid.
pub const URL_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// An upload that was asked for and may not have arrived yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pending {
    pub submission_id: String,
    pub dataset: String,
    #[serde(deserialize_with = "crate::periods::stored")]
    #[schema(value_type = String, example = "2023H2")]
    pub period: Period,
    /// The submitting region, as its API code.
    pub region: String,
    pub file_name: String,
    /// Where the file goes, relative to the lake root.
    pub key: String,
    /// RFC 3339.
    pub requested_at: String,
}

/// What the submitter needs to send the file.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Ticket {
    pub submission_id: String,
    /// PUT the file's bytes here, as they are, with `headers`.
    pub upload_url: String,
    pub method: &'static str,
    /// Headers the PUT must carry exactly: they are signed. `Content-Length` binds the URL to
    /// the size announced, `If-None-Match: *` makes it single-use (a second PUT gets 412).
    #[schema(example = json!({"Content-Length": "20480", "If-None-Match": "*"}))]
    pub headers: std::collections::BTreeMap<&'static str, String>,
    pub expires_in_seconds: u64,
    /// Poll this until the status is no longer `pending`.
    pub status_url: String,
    pub pending: Pending,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(
        "this lake is not on S3: PUT the file to /v1/submissions/{{dataset}}/{{period}}/{{region}}"
    )]
    NotOnS3,
    #[error("{0:?} is not a file type we read: send .csv, .txt, .tsv, .xlsx or .xls")]
    FileType(String),
    #[error("a {dataset} file may have at most {max} bytes; {size} were announced")]
    TooLarge {
        dataset: &'static str,
        size: u64,
        max: u64,
    },
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Lake(#[from] LakeError),
}

fn pending_key(id: &str) -> String {
    format!("pending/{id}.json")
}

/// Notes the upload and signs a URL for exactly `size` bytes. `region` must already be
/// checked as one the caller may submit for.
pub async fn request(
    lake: &Lake,
    dataset: &str,
    period: &str,
    region: &str,
    file_name: &str,
    size: u64,
) -> Result<Ticket, UploadError> {
    let dataset = datasets::by_name(dataset)
        .ok_or_else(|| IngestError::UnknownDataset(dataset.to_string()))?;
    let max = dataset.limits().max_file_bytes;
    if size > max {
        return Err(UploadError::TooLarge {
            dataset: dataset.name,
            size,
            max,
        });
    }
    let period: Period = period.parse().map_err(IngestError::from)?;
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| EXTENSIONS.contains(&e.as_str()))
        .ok_or_else(|| UploadError::FileType(file_name.to_string()))?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let key = UploadKey {
        dataset,
        period,
        region: region.to_string(),
        id: id.clone(),
        extension,
    };
    let Some(put) = lake
        .presigned_put(&key.to_string(), size, URL_LIFETIME)
        .await?
    else {
        return Err(UploadError::NotOnS3);
    };
    let pending = Pending {
        submission_id: id.clone(),
        dataset: dataset.name.to_string(),
        period,
        region: region.to_string(),
        file_name: file_name.to_string(),
        key: key.to_string(),
        requested_at: chrono::Utc::now().to_rfc3339(),
    };
    let json = serde_json::to_vec(&pending).map_err(LakeError::from)?;
    lake.put_object(&pending_key(&id), json.into()).await?;
    Ok(Ticket {
        status_url: format!("/v1/submissions/{id}"),
        submission_id: id,
        upload_url: put.url.to_string(),
        method: "PUT",
        headers: put.headers.into_iter().collect(),
        expires_in_seconds: URL_LIFETIME.as_secs(),
        pending,
    })
}

/// The upload noted under `id`, if one was asked for.
pub async fn pending(lake: &Lake, id: &str) -> Result<Option<Pending>, LakeError> {
    let safe = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !safe {
        return Ok(None);
    }
    match lake.get_object(&pending_key(id)).await? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}
