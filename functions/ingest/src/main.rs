//! The ingest Lambda: runs on S3 `ObjectCreated` events for `uploads/` — delivered through
//! the SQS queue of the SAM template, or straight from S3 — one submission per record,
//! through the same pipeline as every other way in; and, on a schedule, reconciles whatever a
//! timed-out or throttled invocation left halfway. Outside Lambda it processes the upload
//! keys given as arguments against `JIAZHENG_LAKE`.

use aws_lambda_events::sqs::SqsEvent;
use jiazheng_core::ingest::{IngestError, Ingestor, UploadKey};
use jiazheng_core::runtime;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    runtime::init_tracing();
    let ingestor = runtime::ingestor_from_env(None).await?;
    if runtime::under_lambda() {
        let ingestor = &ingestor;
        return lambda_runtime::run(service_fn(move |event| dispatch(ingestor, event))).await;
    }
    for key in std::env::args().skip(1) {
        let outcome = ingestor.process(&UploadKey::parse(&key)?, &key).await?;
        println!("{}", serde_json::to_string_pretty(&outcome.report)?);
    }
    Ok(())
}

/// An SQS batch (the template's path), a bare S3 event, or the scheduled reconciliation
/// (`{"repair": true}`).
async fn dispatch(ingestor: &Ingestor, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let payload = event.payload;
    if payload["repair"] == true {
        let repaired =
            jiazheng_core::pipeline::repair::all(ingestor, jiazheng_core::pipeline::repair::GRACE)
                .await?;
        return Ok(json!({ "repaired": repaired }));
    }
    if payload["Records"][0]["eventSource"] == "aws:sqs" {
        let batch: SqsEvent = serde_json::from_value(payload)?;
        Ok(handle_queue(ingestor, batch).await)
    } else {
        ingest_objects(ingestor, objects(&payload)).await
    }
}

/// An object an S3 notification announces: bucket, key and (in a versioned bucket) the
/// version that was written, which is the one decided on.
type Object = (String, String, Option<String>);

/// The objects of every record of an S3 notification. Read by hand rather than as an
/// `S3Event`: S3-compatible servers (moto among them) leave out fields AWS sends, such as
/// `userIdentity`, and only these matter here.
fn objects(notification: &Value) -> Vec<Object> {
    notification["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let s3 = &r["s3"];
            Some((
                s3["bucket"]["name"].as_str()?.to_string(),
                s3["object"]["key"].as_str()?.to_string(),
                s3["object"]["versionId"].as_str().map(str::to_string),
            ))
        })
        .collect()
}

/// Each message carries one S3 notification. A message that fails is reported back as a
/// batch item failure, so SQS redelivers it alone (and, after the queue's limit, parks it in
/// the dead-letter queue) while the others are done.
async fn handle_queue(ingestor: &Ingestor, batch: SqsEvent) -> Value {
    let mut failures = Vec::new();
    let mut results = Vec::new();
    for message in batch.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.unwrap_or_default();
        // S3 sends one s3:TestEvent when the notification is set up; it has no records.
        let notification: Value = serde_json::from_str(&body).unwrap_or_default();
        match ingest_objects(ingestor, objects(&notification)).await {
            Ok(done) => results.push(done),
            Err(error) => {
                tracing::error!(message = %id, %error, "ingest failed, will be retried");
                failures.push(json!({ "itemIdentifier": id }));
            }
        }
    }
    json!({ "batchItemFailures": failures, "results": results })
}

/// Processes every object of the notification. A key that is not an upload is logged and
/// skipped (retrying cannot fix it); any other failure fails the invocation (or the SQS
/// message) so it is retried, which is safe because processing an upload twice decides it once.
async fn ingest_objects(ingestor: &Ingestor, objects: Vec<Object>) -> Result<Value, Error> {
    let mut results = Vec::new();
    for (bucket, raw_key, version) in objects {
        let decoded = jiazheng_core::ingest::decode_event_key(&raw_key);
        let Some(key) = ingestor.lake().relative_key(&bucket, &decoded) else {
            tracing::warn!(%bucket, key = %raw_key, "object outside the lake, skipped");
            continue;
        };
        let upload = match UploadKey::parse(&key) {
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
        // The name the submitter gave when asking for the upload URL, if they did.
        let file_name = jiazheng_core::ingest::uploads::pending(ingestor.lake(), &upload.id)
            .await?
            .map_or_else(|| upload.to_string(), |p| p.file_name);
        let outcome = ingestor
            .process_version(&upload, &file_name, version.as_deref())
            .await?;
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
