//! Confirmations (已核实): a submitter's word that a plausibility finding of their file is
//! right. An append-only Delta table beside the submission log, one row per confirmed finding
//! (or one for every finding of a submission), so two confirmations at once never overwrite
//! each other and who confirmed what, when and why is kept. A submission's findings are open
//! until each is confirmed; values computed from a file with open findings are flagged
//! `unconfirmed` by the next refresh, which a confirmation starts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::datafusion::prelude::SessionContext;
use deltalake::protocol::SaveMode;
use serde::{Deserialize, Serialize};

use crate::findings::Report;
use crate::indicators;
use crate::lake::{Lake, LakeError, Session, codec, names};
use crate::submissions::Submission;

/// Longest comment kept with a confirmation, in characters.
pub const MAX_COMMENT_CHARS: usize = 500;

/// One confirmed finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Confirmation {
    pub submission_id: String,
    /// The finding's place in the report's `issues` (from 0); null confirms every finding of
    /// the submission, listed or not.
    pub finding: Option<i64>,
    /// Why the figure is right, as the submitter put it (ID numbers masked).
    pub comment: Option<String>,
    /// The region of the key that confirmed.
    pub confirmed_by: String,
    /// RFC 3339 time of the confirmation.
    pub confirmed_at: String,
}

impl Confirmation {
    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("submission_id", DataType::Utf8, false),
            Field::new("finding", DataType::Int64, true),
            Field::new("comment", DataType::Utf8, true),
            Field::new("confirmed_by", DataType::Utf8, false),
            Field::new("confirmed_at", DataType::Utf8, false),
        ]))
    }
}

/// Why a confirmation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("the submission has no plausibility finding to confirm")]
    NothingToConfirm,
    #[error("finding {0} is not a plausibility finding of this submission's report")]
    NotAFinding(usize),
    #[error("the comment is longer than {MAX_COMMENT_CHARS} characters")]
    CommentTooLong,
    #[error(transparent)]
    Lake(#[from] LakeError),
}

/// What a submitter confirms: some findings by their place in the report, or all of them.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct Request {
    /// Places of findings in the report's `issues` (from 0); leave out to confirm every
    /// finding of the submission, including those past the listed ones.
    #[serde(default)]
    pub findings: Option<Vec<usize>>,
    /// Why the figures are right (optional, at most 500 characters).
    #[serde(default)]
    pub comment: Option<String>,
}

/// Records a confirmation of `submission`'s findings by a key for `region` (the caller checked
/// that the key covers the submission), then refreshes the period so the values lose their
/// flag. Returns the rows recorded.
pub async fn confirm(
    lake: &Lake,
    submission: &Submission,
    report: &Report,
    region: &str,
    request: Request,
) -> Result<Vec<Confirmation>, ConfirmError> {
    if submission.flagged.unwrap_or(0) <= 0 {
        return Err(ConfirmError::NothingToConfirm);
    }
    let comment = match request.comment.as_deref().map(str::trim) {
        Some(c) if c.chars().count() > MAX_COMMENT_CHARS => {
            return Err(ConfirmError::CommentTooLong);
        }
        Some("") | None => None,
        Some(c) => Some(crate::identifiers::mask_id_numbers(c).into_owned()),
    };
    let findings: Vec<Option<i64>> = match request.findings {
        None => vec![None],
        Some(places) => {
            let mut seen = HashSet::new();
            let mut findings = Vec::new();
            for place in places {
                let is_finding = report
                    .issues
                    .get(place)
                    .is_some_and(|issue| super::by_code(&issue.code).is_some());
                if !is_finding {
                    return Err(ConfirmError::NotAFinding(place));
                }
                if seen.insert(place) {
                    findings.push(Some(place as i64));
                }
            }
            findings
        }
    };
    let confirmed_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let rows: Vec<Confirmation> = findings
        .into_iter()
        .map(|finding| Confirmation {
            submission_id: submission.submission_id.clone(),
            finding,
            comment: comment.clone(),
            confirmed_by: region.to_string(),
            confirmed_at: confirmed_at.clone(),
        })
        .collect();
    record(lake, &rows).await?;
    tracing::info!(
        submission = %submission.submission_id,
        findings = ?rows.iter().map(|c| c.finding).collect::<Vec<_>>(),
        confirmed_by = region,
        "plausibility findings confirmed"
    );
    indicators::refresh(lake, submission.period).await?;
    Ok(rows)
}

/// Appends confirmations in one commit.
async fn record(lake: &Lake, rows: &[Confirmation]) -> Result<(), LakeError> {
    let schema = Confirmation::schema();
    let batch = codec::encode(&schema, rows)?;
    let table = lake.ensure(names::CONFIRMATIONS, &schema, &[]).await?;
    let mut attempt = table
        .write(vec![batch.clone()])
        .with_save_mode(SaveMode::Append)
        .await;
    // Two first writers may race to create the table: the loser appends to the winner's.
    if attempt.is_err()
        && let Some(table) = lake.load(names::CONFIRMATIONS).await?
    {
        attempt = table
            .write(vec![batch])
            .with_save_mode(SaveMode::Append)
            .await;
    }
    let table = attempt?;
    if let Err(error) = lake
        .compact(names::CONFIRMATIONS, &table, &schema, MAX_FILES)
        .await
    {
        tracing::warn!(%error, "could not compact the confirmations");
    }
    Ok(())
}

/// Files the table may have before it is compacted (as the submission log).
const MAX_FILES: usize = 32;

/// Every confirmation, grouped by submission.
#[derive(Debug, Default)]
pub struct Confirmed {
    by_submission: HashMap<String, Vec<Confirmation>>,
}

impl Confirmed {
    /// Reads the table with the version read, or `None` before the first confirmation.
    pub async fn load(lake: &Lake) -> Result<Option<(Confirmed, i64)>, LakeError> {
        let Session { ctx, versions, .. } = lake.session(&[names::CONFIRMATIONS]).await?;
        let Some(version) = versions.get(names::CONFIRMATIONS).copied() else {
            return Ok(None);
        };
        Ok(Some((Confirmed::read_session(&ctx).await?, version)))
    }

    /// The table as registered in a session (empty when it was never written).
    pub async fn read_session(ctx: &SessionContext) -> Result<Confirmed, LakeError> {
        let mut confirmed = Confirmed::default();
        if !ctx.table_exist("confirmations")? {
            return Ok(confirmed);
        }
        let batches = ctx
            .sql("SELECT * FROM confirmations ORDER BY confirmed_at")
            .await?
            .collect()
            .await?;
        for row in codec::decode::<Confirmation>(&batches)? {
            confirmed
                .by_submission
                .entry(row.submission_id.clone())
                .or_default()
                .push(row);
        }
        Ok(confirmed)
    }

    /// The confirmations of a submission, oldest first.
    pub fn of(&self, submission_id: &str) -> &[Confirmation] {
        self.by_submission
            .get(submission_id)
            .map_or(&[], Vec::as_slice)
    }

    /// The confirmation covering a finding (by its place in the report), if any.
    pub fn covering(&self, submission_id: &str, place: usize) -> Option<&Confirmation> {
        self.of(submission_id)
            .iter()
            .find(|c| c.finding.is_none_or(|f| f == place as i64))
    }

    /// Findings of a decision nobody has confirmed yet.
    pub fn open(&self, submission: &Submission) -> u64 {
        let flagged = submission.flagged.unwrap_or(0).max(0) as u64;
        let rows = self.of(&submission.submission_id);
        if flagged == 0 || rows.iter().any(|c| c.finding.is_none()) {
            return 0;
        }
        let places: HashSet<i64> = rows.iter().filter_map(|c| c.finding).collect();
        flagged.saturating_sub(places.len() as u64)
    }
}
