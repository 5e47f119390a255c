//! The submission log: one row per decision about an uploaded file, appended to a Delta
//! table so that history is kept and Athena can read it like any other table.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use serde::{Deserialize, Serialize};

use crate::datasets::{self, Dataset};
use crate::findings::Status;
use crate::lake::{Lake, LakeError, Session, codec, names};
use crate::periods::Period;
use crate::regions::prefixes_of;

/// What the log records about one submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Submission {
    pub submission_id: String,
    #[serde(serialize_with = "crate::datasets::serialize_name")]
    #[schema(value_type = String, example = "outlets")]
    pub dataset: &'static Dataset,
    #[serde(deserialize_with = "crate::periods::stored")]
    #[schema(value_type = String, example = "2023H2")]
    pub period: Period,
    /// The submitting region, as its API code.
    pub region: String,
    pub file_name: String,
    pub content_sha256: String,
    pub size_bytes: i64,
    pub status: Status,
    pub rows: i64,
    pub errors: i64,
    pub warnings: i64,
    /// RFC 3339 time the decision was made.
    pub decided_at: String,
    /// Key of the raw file under the lake root.
    pub raw_key: String,
    pub report_key: String,
    /// The dataset table version that made an accepted file current.
    pub table_version: Option<i64>,
    /// The exact version of the raw object the decision was made on (S3 version id), so a
    /// later write to the same key cannot change what the rows came from; locally the
    /// content hash pins it.
    #[serde(default)]
    pub raw_version: Option<String>,
    /// Plausibility findings of the decision, which its submitter confirms one by one (null
    /// in rows logged before the checks existed).
    #[serde(default)]
    pub flagged: Option<i64>,
}

impl Submission {
    fn schema() -> SchemaRef {
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        let int = |name: &str| Field::new(name, DataType::Int64, false);
        Arc::new(Schema::new(vec![
            text("submission_id"),
            text("dataset"),
            text("period"),
            text("region"),
            text("file_name"),
            text("content_sha256"),
            int("size_bytes"),
            text("status"),
            int("rows"),
            int("errors"),
            int("warnings"),
            text("decided_at"),
            text("raw_key"),
            text("report_key"),
            Field::new("table_version", DataType::Int64, true),
            Field::new("raw_version", DataType::Utf8, true),
            Field::new("flagged", DataType::Int64, true),
        ]))
    }

    fn to_batch(&self) -> Result<RecordBatch, LakeError> {
        codec::encode(&Submission::schema(), std::slice::from_ref(self))
    }
}

/// Appends a decision to the log.
pub async fn record(lake: &Lake, submission: &Submission) -> Result<(), LakeError> {
    let batch = submission.to_batch()?;
    let table = lake
        .ensure(names::SUBMISSIONS, &Submission::schema(), &[])
        .await?;
    // Merge: a log written before a column existed gains it (the old rows read as null).
    let mut attempt = table
        .write(vec![batch.clone()])
        .with_save_mode(SaveMode::Append)
        .with_schema_mode(SchemaMode::Merge)
        .await;
    // Two first writers may race to create the table: the loser appends to the winner's.
    if attempt.is_err()
        && let Some(table) = lake.load(names::SUBMISSIONS).await?
    {
        attempt = table
            .write(vec![batch])
            .with_save_mode(SaveMode::Append)
            .with_schema_mode(SchemaMode::Merge)
            .await;
    }
    compact(lake, &attempt?).await;
    Ok(())
}

/// Files the log may have before it is compacted. Every decision appends a one-row file, and
/// every ingest reads the whole log: without compaction a deadline day of a thousand files
/// makes each read open a thousand Parquet files.
const MAX_LOG_FILES: usize = 32;

/// Rewrites the log's small files into one once there are too many. Best effort: the log is
/// correct either way (see [`Lake::compact`] for why concurrent compactions are safe).
async fn compact(lake: &Lake, table: &deltalake::DeltaTable) {
    if let Err(error) = lake
        .compact(
            names::SUBMISSIONS,
            table,
            &Submission::schema(),
            MAX_LOG_FILES,
        )
        .await
    {
        tracing::warn!(%error, "could not compact the submission log");
    }
}

/// Every decision ever logged, oldest first.
pub async fn all(lake: &Lake) -> Result<Vec<Submission>, LakeError> {
    let ctx = lake.session(&[names::SUBMISSIONS]).await?.ctx;
    read_session(&ctx).await
}

/// The log as registered in a session (empty when it was never written).
pub async fn read_session(ctx: &SessionContext) -> Result<Vec<Submission>, LakeError> {
    if !ctx.table_exist("submissions")? {
        return Ok(Vec::new());
    }
    // A decision about a dataset no longer declared is not read: every decision read names
    // a declared one, and a retired dataset cannot make the log unreadable.
    let declared: Vec<String> = datasets::ALL
        .iter()
        .map(|d| format!("'{}'", d.name))
        .collect();
    let batches = ctx
        .sql(&format!(
            "SELECT * FROM submissions WHERE dataset IN ({}) ORDER BY decided_at, submission_id",
            declared.join(", ")
        ))
        .await?
        .collect()
        .await?;
    codec::decode(&batches)
}

/// The log as readers use it, held per table version: every decision, and the latest one
/// about each submission with whether it is current.
#[derive(Debug, Default)]
pub struct Log {
    pub decisions: Vec<Submission>,
    pub latest: Vec<(Submission, bool)>,
    /// Where each submission id sits in `latest`.
    by_id: HashMap<String, usize>,
}

impl Log {
    /// Reads the log with the version read, or `None` before the first decision.
    pub async fn load(lake: &Lake) -> Result<Option<(Log, i64)>, LakeError> {
        let Session { ctx, versions, .. } = lake.session(&[names::SUBMISSIONS]).await?;
        let Some(version) = versions.get(names::SUBMISSIONS).copied() else {
            return Ok(None);
        };
        let decisions = read_session(&ctx).await?;
        let latest = latest(&decisions);
        let by_id = latest
            .iter()
            .enumerate()
            .map(|(i, (s, _))| (s.submission_id.clone(), i))
            .collect();
        Ok(Some((
            Log {
                decisions,
                latest,
                by_id,
            },
            version,
        )))
    }

    /// The latest decision about a submission and whether it is current.
    pub fn find(&self, id: &str) -> Option<&(Submission, bool)> {
        self.latest.get(*self.by_id.get(id)?)
    }
}

/// The latest decision about each submission id, in the order they were made, with a flag
/// telling whether the submission is the current one for its dataset, period and region:
/// accepted, and no file committed later for the same dataset and period covers its region.
/// Linear in the log (a national deadline day logs thousands of files).
pub fn latest(log: &[Submission]) -> Vec<(Submission, bool)> {
    let last: HashMap<&str, usize> = log
        .iter()
        .enumerate()
        .map(|(i, s)| (s.submission_id.as_str(), i))
        .collect();
    let decided: Vec<&Submission> = log
        .iter()
        .enumerate()
        .filter(|(i, s)| last.get(s.submission_id.as_str()) == Some(i))
        .map(|(_, s)| s)
        .collect();
    let mut accepted: Vec<&Submission> = decided
        .iter()
        .copied()
        .filter(|s| s.status == Status::Accepted)
        .collect();
    accepted.sort_by_key(|s| std::cmp::Reverse(s.table_version));
    // Newest first: a file is current unless a strictly newer one covers its region.
    let mut covered: HashSet<(&str, Period, &str)> = HashSet::new();
    let mut current: HashSet<&str> = HashSet::new();
    for same_version in accepted.chunk_by(|a, b| a.table_version == b.table_version) {
        for s in same_version {
            let region = highest(&s.region);
            let shadowed = (0..=region.len()).any(|n| {
                region
                    .get(..n)
                    .is_some_and(|outer| covered.contains(&(s.dataset.name, s.period, outer)))
            });
            if !shadowed {
                current.insert(&s.submission_id);
            }
        }
        for s in same_version {
            covered.insert((s.dataset.name, s.period, highest(&s.region)));
        }
    }
    decided
        .into_iter()
        .map(|s| (s.clone(), current.contains(s.submission_id.as_str())))
        .collect()
}

/// The highest reading of a code: a league's file (152200) covers its counties' codes.
fn highest(code: &str) -> &str {
    prefixes_of(code).next().unwrap_or(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, region: &str, status: Status, version: Option<i64>) -> Submission {
        Submission {
            submission_id: id.into(),
            dataset: &crate::datasets::OUTLETS,
            period: "2023H2".parse().unwrap(),
            region: region.into(),
            file_name: "f.csv".into(),
            content_sha256: "00".into(),
            size_bytes: 1,
            status,
            rows: 1,
            errors: 0,
            warnings: 0,
            decided_at: "2023-07-01T00:00:00Z".into(),
            raw_key: String::new(),
            raw_version: None,
            flagged: None,
            report_key: String::new(),
            table_version: version,
        }
    }

    #[test]
    fn later_accepted_files_supersede_earlier_ones_of_overlapping_regions() {
        let log = vec![
            sub("a", "152201", Status::Accepted, Some(1)),
            sub("b", "152202", Status::Accepted, Some(2)),
            sub("c", "152201", Status::Rejected, None),
            sub("d", "152200", Status::Accepted, Some(3)),
            sub("e", "152202", Status::Accepted, Some(4)),
        ];
        let current: Vec<_> = latest(&log)
            .into_iter()
            .map(|(s, c)| (s.submission_id, c))
            .collect();
        assert_eq!(
            current,
            [
                ("a".to_string(), false),
                ("b".to_string(), false),
                ("c".to_string(), false),
                ("d".to_string(), true),
                ("e".to_string(), true),
            ]
        );
    }

    /// Whether a newer file for `outer` leaves an older one for `inner` current.
    fn survives(inner: &str, outer: &str) -> bool {
        let log = vec![
            sub("old", inner, Status::Accepted, Some(1)),
            sub("new", outer, Status::Accepted, Some(2)),
        ];
        latest(&log)[0].1
    }

    #[test]
    fn a_newer_file_replaces_what_its_region_covers_read_as_prefixes() {
        assert!(
            !survives("152201", "152200"),
            "a league covers its counties"
        );
        assert!(!survives("152201", "150000"), "a province covers them too");
        assert!(!survives("152201", "152201"), "a county replaces itself");
        assert!(
            survives("152200", "152201"),
            "a county replaces part of a league file"
        );
        assert!(survives("152202", "152201"));
        assert!(survives("150100", "152200"));
    }

    #[test]
    fn the_latest_decision_about_a_submission_counts_in_the_order_it_was_made() {
        let log = vec![
            sub("a", "152201", Status::Rejected, None),
            sub("b", "152202", Status::Accepted, Some(1)),
            sub("a", "152201", Status::Accepted, Some(2)),
        ];
        let latest: Vec<_> = latest(&log)
            .into_iter()
            .map(|(s, c)| (s.submission_id, s.status, c))
            .collect();
        assert_eq!(
            latest,
            [
                ("b".to_string(), Status::Accepted, true),
                ("a".to_string(), Status::Accepted, true),
            ]
        );
    }

    /// Raw rows of the log table, duplicates included.
    async fn stored_rows(lake: &Lake) -> usize {
        let ctx = lake.session(&[names::SUBMISSIONS]).await.unwrap().ctx;
        let batches = ctx
            .sql("SELECT COUNT(*) FROM submissions")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        crate::lake::read::int(&batches[0], 0).unwrap().value(0) as usize
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_compactions_of_the_log_never_duplicate_a_decision() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        for i in 0..MAX_LOG_FILES {
            record(
                &lake,
                &sub(&format!("s{i}"), "152201", Status::Accepted, None),
            )
            .await
            .unwrap();
        }
        // Every one of these finds the log over its limit and compacts it at the same time,
        // as the ingest processes of a deadline day do.
        let writers: Vec<_> = (0..6)
            .map(|i| {
                let lake = lake.clone();
                tokio::spawn(async move {
                    record(
                        &lake,
                        &sub(&format!("t{i}"), "152202", Status::Accepted, None),
                    )
                    .await
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        assert_eq!(stored_rows(&lake).await, MAX_LOG_FILES + 6);
        assert_eq!(all(&lake).await.unwrap().len(), MAX_LOG_FILES + 6);
        let files = lake
            .load(names::SUBMISSIONS)
            .await
            .unwrap()
            .unwrap()
            .snapshot()
            .unwrap()
            .log_data()
            .num_files();
        assert!(files < MAX_LOG_FILES, "compacted: {files} files");
    }

    #[tokio::test]
    async fn decisions_about_datasets_no_longer_declared_are_not_read() {
        use deltalake::arrow::array::{ArrayRef, StringArray};

        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        record(&lake, &sub("a", "152201", Status::Accepted, Some(1)))
            .await
            .unwrap();
        // A decision logged by a release that declared a dataset this one does not.
        let batch = sub("b", "152202", Status::Accepted, Some(2))
            .to_batch()
            .unwrap();
        let schema = batch.schema();
        let mut columns = batch.columns().to_vec();
        columns[schema.index_of("dataset").unwrap()] =
            Arc::new(StringArray::from(vec!["retired_dataset"])) as ArrayRef;
        let retired = RecordBatch::try_new(schema, columns).unwrap();
        lake.load(names::SUBMISSIONS)
            .await
            .unwrap()
            .unwrap()
            .write(vec![retired])
            .with_save_mode(SaveMode::Append)
            .await
            .unwrap();

        let ids: Vec<String> = all(&lake)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.submission_id)
            .collect();
        assert_eq!(ids, ["a"]);
    }
}
