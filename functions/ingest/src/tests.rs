//! The handler fed a real S3 `ObjectCreated` event, as Lambda delivers it.

use jiazheng_core::ingest::Ingestor;
use jiazheng_core::lake::{Lake, names};
use jiazheng_core::privacy::Pseudonymizer;
use jiazheng_core::samples;
use lambda_runtime::{Context, LambdaEvent};

use super::*;

fn event() -> Value {
    serde_json::from_str(include_str!("../events/s3-object-created.json")).expect("S3 event")
}

async fn lake_with_uploads() -> (tempfile::TempDir, Ingestor) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    samples::import_regions(&lake, &samples::inner_mongolia())
        .await
        .unwrap();
    let submissions = samples::checkout_dir().join("submissions/2023H2/152201");
    for (file, key) in [
        (
            "enterprises.xlsx",
            "uploads/enterprises/2023H2/152201/e2023h2-152201.xlsx",
        ),
        (
            "outlets.csv",
            "uploads/outlets/2023H2/152201/o2023h2_152201.csv",
        ),
    ] {
        let bytes = std::fs::read(submissions.join(file)).unwrap();
        lake.put_object(key, bytes.into()).await.unwrap();
    }
    let key = Pseudonymizer::new(&[7; 32]).unwrap();
    (dir, Ingestor::new(lake, Some(key)))
}

#[tokio::test]
async fn an_s3_event_ingests_each_record_once() {
    let (_dir, ingestor) = lake_with_uploads().await;
    let result = dispatch(&ingestor, LambdaEvent::new(event(), Context::default()))
        .await
        .unwrap();
    let results = result["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        assert_eq!(r["status"], "accepted", "{r}");
        assert_eq!(r["duplicate"], false);
    }
    // The URL-encoded key was decoded to the submission id of the upload.
    assert_eq!(results[0]["submission_id"], "e2023h2-152201");

    let outlets = ingestor
        .lake()
        .load(&names::dataset("outlets"))
        .await
        .unwrap()
        .unwrap();
    let version = outlets.version();
    // Lambda retries an event after a timeout: nothing is written twice.
    let again = dispatch(&ingestor, LambdaEvent::new(event(), Context::default()))
        .await
        .unwrap();
    for r in again["results"].as_array().unwrap() {
        assert_eq!(r["duplicate"], true, "{r}");
    }
    let outlets = ingestor
        .lake()
        .load(&names::dataset("outlets"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outlets.version(), version);
    let report = ingestor.report("o2023h2_152201").await.unwrap().unwrap();
    assert_eq!(report.summary.rows, 59);
}

#[tokio::test]
async fn keys_outside_the_upload_layout_are_skipped_not_retried() {
    let (_dir, ingestor) = lake_with_uploads().await;
    let mut event = event();
    event["Records"].as_array_mut().unwrap().truncate(1);
    event["Records"][0]["s3"]["object"]["key"] = "reports/whatever.json".into();
    let result = dispatch(&ingestor, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert!(result["results"][0]["skipped"].is_string());
}

/// The notification as the template's queue delivers it: an SQS batch whose bodies are S3
/// events, captured from moto 5.2.5 (which, unlike AWS, also encodes `/` in keys), with S3's
/// test event in front.
#[tokio::test]
async fn an_sqs_batch_of_s3_notifications_ingests_and_reports_no_failures() {
    let (_dir, ingestor) = lake_with_uploads().await;
    let batch: Value =
        serde_json::from_str(include_str!("../events/sqs-s3-notification.json")).unwrap();
    let result = dispatch(
        &ingestor,
        LambdaEvent::new(batch.clone(), Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(result["batchItemFailures"], json!([]), "{result}");
    let decided: Vec<&Value> = result["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["results"].as_array().unwrap())
        .collect();
    assert_eq!(decided.len(), 1, "{result}");
    assert_eq!(decided[0]["submission_id"], "o2023h2_152201");
    assert_eq!(decided[0]["status"], "accepted");

    // A message whose upload is missing fails alone, for SQS to redeliver.
    let mut broken = batch;
    let body = broken["Records"][1]["body"]
        .as_str()
        .unwrap()
        .replace("o2023h2_152201", "gone");
    broken["Records"][1]["body"] = body.into();
    let result = dispatch(&ingestor, LambdaEvent::new(broken, Context::default()))
        .await
        .unwrap();
    let failed = result["batchItemFailures"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{result}");
    assert_ne!(
        failed[0]["itemIdentifier"],
        "00000000-0000-0000-0000-000000000000"
    );
}

/// The template's schedule invokes the function with `{"repair": true}`: uploads whose event
/// was lost (older than the grace period, never decided) are decided then.
#[tokio::test]
async fn the_scheduled_reconciliation_decides_uploads_nothing_announced() {
    let (dir, ingestor) = lake_with_uploads().await;
    let twenty_minutes_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(1200);
    for key in [
        "uploads/enterprises/2023H2/152201/e2023h2-152201.xlsx",
        "uploads/outlets/2023H2/152201/o2023h2_152201.csv",
    ] {
        std::fs::File::options()
            .write(true)
            .open(dir.path().join(key))
            .unwrap()
            .set_modified(twenty_minutes_ago)
            .unwrap();
    }
    let event: Value =
        serde_json::from_str(include_str!("../events/scheduled-repair.json")).unwrap();
    let result = dispatch(&ingestor, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    let decided = result["repaired"]["decided"].as_array().unwrap();
    assert_eq!(decided.len(), 2, "{result}");
    let report = ingestor.report("o2023h2_152201").await.unwrap().unwrap();
    assert_eq!(report.summary.rows, 59);
    assert!(report.table_version.is_some());
}
