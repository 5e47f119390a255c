//! Reconciliation: finds every submission whose steps stopped halfway — a crash, a killed or
//! timed-out Lambda — and finishes it, so that tables, log, reports and indicators agree.
//!
//! The steps of an ingest are raw file kept → rows staged → data committed → report → log →
//! indicators refreshed; each names what came before it (the commit names its submission and
//! raw file, the report and the log row the table version, the snapshot the table versions it
//! was computed from). So:
//! - a **commit without a decision** is finished by deciding again on its raw file (the rows
//!   are not written twice: the decision reuses the commit), or undone when the raw file is
//!   gone;
//! - a **raw upload without a decision** is decided;
//! - a **decision without a report** is decided again, which writes the report;
//! - a **period whose indicators are older than its tables** is refreshed.
//!
//! A commit or upload younger than the grace period may belong to an ingest still running
//! elsewhere and is left for later. Commits already found settled are not read again: a
//! watermark per table (`repair/{table}.json`) records how far they are.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::datasets::{self, Dataset};
use crate::findings::{At, Findings, Problem, Report, Status};
use crate::indicators;
use crate::ingest::{IngestError, Ingestor, UploadKey, uploads};
use crate::lake::{Commit, Lake, LakeError, commit_keys, names};
use crate::periods::Period;
use crate::submissions::{self, Submission};

/// How old an unfinished step must be before it is taken for a crash rather than an ingest
/// still running: a Lambda invocation lasts at most 15 minutes.
pub const GRACE: Duration = Duration::from_secs(15 * 60);

/// What a reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Repaired {
    /// Submissions whose commit had no decision, now decided.
    pub completed: Vec<String>,
    /// Submissions whose commit was undone: their raw file is gone.
    pub reverted: Vec<String>,
    /// Raw uploads that had no decision, now decided.
    pub decided: Vec<String>,
    /// Decisions whose report was missing, now written.
    pub reported: Vec<String>,
    /// Periods whose indicators were behind their tables, now refreshed.
    pub refreshed: Vec<String>,
}

impl Repaired {
    pub fn is_empty(&self) -> bool {
        *self == Repaired::default()
    }
}

#[derive(Serialize, Deserialize)]
struct Watermark {
    through: i64,
}

fn watermark_key(table: &str) -> String {
    format!("repair/{}.json", table.replace('/', "_"))
}

/// The version up to which a table's commits are all settled.
pub async fn watermark(lake: &Lake, table: &str) -> Result<Option<i64>, LakeError> {
    Ok(match lake.get_object(&watermark_key(table)).await? {
        Some(bytes) => serde_json::from_slice::<Watermark>(&bytes)
            .ok()
            .map(|w| w.through),
        None => None,
    })
}

async fn set_watermark(lake: &Lake, table: &str, through: i64) -> Result<(), LakeError> {
    let json = serde_json::to_vec(&Watermark { through })?;
    lake.put_object(&watermark_key(table), json.into()).await
}

fn older_than(millis: i64, grace: Duration) -> bool {
    let age = chrono::Utc::now().timestamp_millis() - millis;
    age >= i64::try_from(grace.as_millis()).unwrap_or(i64::MAX)
}

/// Everything: every dataset table, undecided uploads, missing reports, stale periods.
pub async fn all(ingestor: &Ingestor, grace: Duration) -> Result<Repaired, IngestError> {
    let mut repaired = Repaired::default();
    for dataset in datasets::ALL {
        let log = submissions::all(ingestor.lake()).await?;
        table_into(ingestor, dataset, grace, &log, &mut repaired).await?;
    }
    undecided_uploads(ingestor, grace, &mut repaired).await?;
    missing_reports(ingestor, &mut repaired).await?;
    let log = submissions::all(ingestor.lake()).await?;
    let mut periods: BTreeSet<Period> = log.iter().map(|s| s.period).collect();
    periods.extend(indicators::snapshot::periods(ingestor.lake()).await?);
    for period in periods {
        if refresh_if_stale(ingestor.lake(), period).await? {
            repaired.refreshed.push(period.to_string());
        }
    }
    if !repaired.is_empty() {
        tracing::warn!(
            ?repaired,
            "reconciled submissions an interruption had left halfway"
        );
    }
    Ok(repaired)
}

/// One dataset table's unfinished commits (run before each ingest of the dataset), given the
/// log as it stands; returns the log, read again if the reconciliation changed it.
pub async fn table(
    ingestor: &Ingestor,
    dataset: &'static Dataset,
    grace: Duration,
    log: Vec<Submission>,
) -> Result<Vec<Submission>, IngestError> {
    let mut repaired = Repaired::default();
    table_into(ingestor, dataset, grace, &log, &mut repaired).await?;
    if repaired.is_empty() {
        return Ok(log);
    }
    Ok(submissions::all(ingestor.lake()).await?)
}

async fn table_into(
    ingestor: &Ingestor,
    dataset: &'static Dataset,
    grace: Duration,
    log: &[Submission],
    out: &mut Repaired,
) -> Result<(), IngestError> {
    let lake = ingestor.lake();
    let table = names::dataset(dataset.name);
    let mark = watermark(lake, &table).await?;
    let commits = lake.commits_after(&table, mark).await?;
    if commits.is_empty() {
        return Ok(());
    }
    let owned: HashMap<&str, Vec<i64>> = log.iter().fold(HashMap::new(), |mut owned, s| {
        if let Some(v) = s.table_version {
            owned.entry(s.submission_id.as_str()).or_default().push(v);
        }
        owned
    });
    let mut through = mark;
    let mut settled = true;
    for commit in &commits {
        if let Some(id) = commit.meta(commit_keys::SUBMISSION)
            && !owned.get(id).is_some_and(|v| v.contains(&commit.version))
        {
            if older_than(commit.timestamp, grace) {
                finish(ingestor, &table, commit, id, out).await?;
            } else {
                // Perhaps an ingest still on its way to its decision: look again next time.
                settled = false;
            }
        }
        if settled {
            through = Some(commit.version);
        }
    }
    if through != mark
        && let Some(through) = through
    {
        set_watermark(lake, &table, through).await?;
    }
    Ok(())
}

/// Finishes a commit no decision owns: decides again on its raw file, or undoes it.
async fn finish(
    ingestor: &Ingestor,
    table: &str,
    commit: &Commit,
    id: &str,
    out: &mut Repaired,
) -> Result<(), IngestError> {
    let lake = ingestor.lake();
    let raw_key = commit.meta(commit_keys::RAW_KEY).unwrap_or_default();
    let key = UploadKey::parse(raw_key).ok();
    match key {
        Some(key) if lake.has_object(raw_key).await? => {
            let file_name = commit.meta(commit_keys::FILE_NAME).unwrap_or(raw_key);
            ingestor.decide(&key, file_name, None).await?;
            out.completed.push(id.to_string());
        }
        _ => {
            lake.revert(table, commit).await?;
            if let Some(key) = key {
                withdraw(ingestor, &key, commit).await?;
            }
            out.reverted.push(id.to_string());
        }
    }
    Ok(())
}

/// Records that a submission whose raw file is gone was withdrawn, so its rows are nobody's.
async fn withdraw(
    ingestor: &Ingestor,
    key: &UploadKey,
    commit: &Commit,
) -> Result<(), IngestError> {
    let lake = ingestor.lake();
    let mut findings = Findings::default();
    findings.add(
        Problem::UnreadableFile(format!(
            "the raw file is gone; the rows committed at version {} were withdrawn",
            commit.version
        )),
        At::default(),
    );
    let report = Report {
        submission_id: key.id.clone(),
        dataset: key.dataset,
        period: key.period,
        region: key.region.clone(),
        file_name: commit
            .meta(commit_keys::FILE_NAME)
            .unwrap_or_default()
            .to_string(),
        status: Status::Rejected,
        header_row: None,
        table_version: None,
        summary: findings.summary.clone(),
        issues: findings.issues,
    };
    let json = serde_json::to_vec_pretty(&report).map_err(LakeError::from)?;
    lake.put_object(&key.report_key(), json.into()).await?;
    submissions::record(
        lake,
        &Submission {
            submission_id: key.id.clone(),
            dataset: report.dataset,
            period: report.period,
            region: report.region.clone(),
            file_name: report.file_name.clone(),
            content_sha256: String::new(),
            size_bytes: 0,
            status: Status::Rejected,
            rows: 0,
            errors: 1,
            warnings: 0,
            decided_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            raw_key: key.to_string(),
            report_key: key.report_key(),
            table_version: None,
            raw_version: None,
            flagged: None,
        },
    )
    .await?;
    Ok(())
}

/// Raw uploads older than the grace period that nothing has decided on.
async fn undecided_uploads(
    ingestor: &Ingestor,
    grace: Duration,
    out: &mut Repaired,
) -> Result<(), IngestError> {
    let lake = ingestor.lake();
    let decided: BTreeSet<String> = submissions::all(lake)
        .await?
        .into_iter()
        .map(|s| s.submission_id)
        .collect();
    let listing: Vec<_> = lake
        .store()
        .list(Some(&Lake::object_path("uploads")))
        .try_collect()
        .await
        .map_err(LakeError::from)?;
    for meta in listing {
        let key = meta.location.to_string();
        let Ok(upload) = UploadKey::parse(&key) else {
            continue;
        };
        if decided.contains(&upload.id) || !older_than(meta.last_modified.timestamp_millis(), grace)
        {
            continue;
        }
        let file_name = match uploads::pending(lake, &upload.id).await? {
            Some(pending) => pending.file_name,
            None => key.clone(),
        };
        ingestor.decide(&upload, &file_name, None).await?;
        out.decided.push(upload.id);
    }
    Ok(())
}

/// Decisions whose report is missing: deciding again writes it (and reuses the rows' commit).
async fn missing_reports(ingestor: &Ingestor, out: &mut Repaired) -> Result<(), IngestError> {
    let lake = ingestor.lake();
    let log = submissions::all(lake).await?;
    for (submission, _) in submissions::latest(&log) {
        if lake.has_object(&submission.report_key).await? {
            continue;
        }
        let Ok(key) = UploadKey::parse(&submission.raw_key) else {
            continue;
        };
        if !lake.has_object(&submission.raw_key).await? {
            continue;
        }
        ingestor.decide(&key, &submission.file_name, None).await?;
        out.reported.push(submission.submission_id);
    }
    Ok(())
}

/// Refreshes a period whose published values are older than its tables; says whether it did.
pub async fn refresh_if_stale(lake: &Lake, period: Period) -> Result<bool, IngestError> {
    if indicators::is_fresh(lake, period).await? {
        return Ok(false);
    }
    indicators::refresh(lake, period).await?;
    Ok(true)
}
