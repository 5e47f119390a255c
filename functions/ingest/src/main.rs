//! The ingest Lambda: runs on S3 `ObjectCreated` events for `uploads/`, one submission per
//! record, through the same pipeline as every other way in. Outside Lambda it processes the
//! upload keys given as arguments against `JIAZHENG_LAKE`.

use aws_lambda_events::s3::S3Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use shared::ingest::{IngestError, Ingestor, UploadKey};
use shared::runtime;

#[tokio::main]
async fn main() -> Result<(), Error> {
    runtime::init_tracing();
    let ingestor = runtime::ingestor_from_env(None).await?;
    if runtime::under_lambda() {
        let ingestor = &ingestor;
        return lambda_runtime::run(service_fn(move |event| handle(ingestor, event))).await;
    }
    for key in std::env::args().skip(1) {
        let outcome = ingestor.process(&UploadKey::parse(&key)?, &key).await?;
        println!("{}", serde_json::to_string_pretty(&outcome.report)?);
    }
    Ok(())
}

/// Processes every record of the event. A key that is not an upload is logged and skipped
/// (retrying cannot fix it); any other failure fails the invocation so Lambda retries it,
/// which is safe because processing an upload twice decides it once.
async fn handle(ingestor: &Ingestor, event: LambdaEvent<S3Event>) -> Result<Value, Error> {
    let mut results = Vec::new();
    for record in event.payload.records {
        let (Some(bucket), Some(raw_key)) = (record.s3.bucket.name, record.s3.object.key) else {
            continue;
        };
        let Some(key) = ingestor.lake().relative_key(&bucket, &raw_key) else {
            tracing::warn!(%bucket, key = %raw_key, "object outside the lake, skipped");
            continue;
        };
        let upload = match UploadKey::from_event(&key) {
            Ok(upload) => upload,
            Err(
                e @ (IngestError::Key(_) | IngestError::UnknownDataset(_) | IngestError::Period(_)),
            ) => {
                tracing::warn!(key = %raw_key, error = %e, "not an upload key, skipped");
                results.push(json!({ "key": raw_key, "skipped": e.to_string() }));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let file_name = upload.to_string();
        let outcome = ingestor.process(&upload, &file_name).await?;
        results.push(json!({
            "key": raw_key,
            "submission_id": outcome.submission.submission_id,
            "status": outcome.submission.status,
            "errors": outcome.submission.errors,
            "duplicate": outcome.duplicate,
        }));
    }
    Ok(json!({ "results": results }))
}

#[cfg(test)]
mod tests;
