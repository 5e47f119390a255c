//! Deciding on one raw upload, in named steps: check and stage the rows, commit them, write
//! the report, log the decision, refresh the indicators. Each step leaves the lake valid, and
//! each names its submission (the commit's metadata, the report's and the log row's table
//! version), so that [`repair`](super::repair) can find a submission that stopped between two
//! steps and finish it. Doing the steps again is harmless: a decision whose rows are already
//! committed reuses that commit instead of writing them twice.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::logstore::object_store::{GetOptions, GetResult, GetResultPayload};
use futures::TryStreamExt;
use tokio::sync::mpsc;

use super::repair;
use crate::datasets::{self, columns};
use crate::failpoints;
use crate::findings::{At, Problem, Report, Status};
use crate::indicators;
use crate::ingest::{IngestError, Ingestor, Job, Outcome, Parsed, UploadKey, submitting_region};
use crate::lake::{Lake, LakeError, StagedWrite, commit_keys, names};
use crate::plausibility;
use crate::regions::stored::{self, Scope};
use crate::regions::{Level, Prefix, Region, RegionTree};
use crate::submissions::{self, Submission};

/// An upload whose file has been read and checked: everything the later steps record.
struct Decision {
    key: UploadKey,
    file_name: String,
    region: Region,
    /// The counties whose rows an accepted file replaces.
    counties: Vec<Prefix>,
    /// The other counties of their leagues, which plausibility compares with.
    league: Vec<Prefix>,
    parsed: Parsed,
    size: i64,
    raw_version: Option<String>,
    /// How long reading, checking and staging the file took (logged with the decision: on
    /// deadline day it is what an operator watches).
    checked_in: std::time::Duration,
}

impl Decision {
    fn accepted(&self) -> bool {
        !self.parsed.checked.findings.has_errors()
    }

    fn status(&self) -> Status {
        if self.accepted() {
            Status::Accepted
        } else {
            Status::Rejected
        }
    }
}

/// What an earlier attempt at the same submission left behind.
#[derive(Default)]
struct Earlier {
    /// A data commit made for it.
    commit: Option<i64>,
    /// The raw object version it read.
    raw_version: Option<String>,
}

impl Ingestor {
    /// Checks the raw upload at `key` and, when it has no error, makes its rows the current
    /// ones for its dataset, period and region. First reconciles the dataset's table, so a
    /// submission that an earlier crash left halfway is finished; an upload already decided is
    /// not processed again.
    pub async fn process(&self, key: &UploadKey, file_name: &str) -> Result<Outcome, IngestError> {
        self.process_version(key, file_name, None).await
    }

    /// The same for one version of the raw object (the one an S3 event announced): a later
    /// PUT to the same key cannot change what the decision reads.
    pub async fn process_version(
        &self,
        key: &UploadKey,
        file_name: &str,
        version: Option<&str>,
    ) -> Result<Outcome, IngestError> {
        // The log is read once for the reconciliation and the decision (again only if the
        // reconciliation changed it): on deadline day it is the biggest read of an ingest.
        let log = submissions::all(&self.lake).await?;
        let log = repair::table(self, key.dataset, repair::GRACE, log).await?;
        self.decide_in(key, file_name, version, &log).await
    }

    /// The steps of a decision, without reconciling first.
    pub(crate) async fn decide(
        &self,
        key: &UploadKey,
        file_name: &str,
        version: Option<&str>,
    ) -> Result<Outcome, IngestError> {
        let log = submissions::all(&self.lake).await?;
        self.decide_in(key, file_name, version, &log).await
    }

    /// The same, given the log as it stands.
    async fn decide_in(
        &self,
        key: &UploadKey,
        file_name: &str,
        version: Option<&str>,
        log: &[Submission],
    ) -> Result<Outcome, IngestError> {
        // A file's name is the submitter's text: it may hold an ID number too.
        let file_name = crate::identifiers::mask_id_numbers(file_name).into_owned();
        if let Some(outcome) = self.already_decided_in(key, log).await? {
            return Ok(outcome);
        }
        let mut earlier = self.earlier(key, log).await?;
        if earlier.raw_version.is_none() {
            earlier.raw_version = version.map(str::to_string);
        }
        let (mut decision, staged) = self.check(key, file_name, &earlier).await?;
        let table_version = self.commit(&decision, staged, &earlier).await?;
        self.check_plausibility(&mut decision, table_version)
            .await?;
        let report = self.write_report(&decision, table_version).await?;
        let submission = self.log(&decision, &report, table_version).await?;
        if decision.accepted() && self.refresh_each {
            indicators::refresh(&self.lake, key.period).await?;
        }
        Ok(Outcome {
            submission,
            report,
            duplicate: false,
        })
    }

    /// The outcome of an upload decided before. A crash after its decision may have kept its
    /// indicators from being refreshed: sending it again refreshes them.
    pub(crate) async fn already_decided(
        &self,
        key: &UploadKey,
    ) -> Result<Option<Outcome>, IngestError> {
        let log = submissions::all(&self.lake).await?;
        self.already_decided_in(key, &log).await
    }

    async fn already_decided_in(
        &self,
        key: &UploadKey,
        log: &[Submission],
    ) -> Result<Option<Outcome>, IngestError> {
        let outcome = self.settled_in(key, log).await?;
        if let Some(outcome) = &outcome
            && outcome.accepted()
            && self.refresh_each
        {
            repair::refresh_if_stale(&self.lake, key.period).await?;
        }
        Ok(outcome)
    }

    /// A data commit made for this submission by an attempt that did not finish, and the raw
    /// version it (or an earlier decision) pinned.
    async fn earlier(&self, key: &UploadKey, log: &[Submission]) -> Result<Earlier, IngestError> {
        let table = names::dataset(key.dataset.name);
        let mark = repair::watermark(&self.lake, &table).await?;
        let mut earlier = Earlier::default();
        for commit in self.lake.commits_after(&table, mark).await? {
            if commit.meta(commit_keys::SUBMISSION) == Some(key.id.as_str()) {
                earlier.commit = Some(commit.version);
                earlier.raw_version = commit.meta(commit_keys::RAW_VERSION).map(str::to_string);
            }
        }
        if earlier.raw_version.is_none() {
            earlier.raw_version = log
                .iter()
                .rev()
                .find(|s| s.submission_id == key.id)
                .and_then(|s| s.raw_version.clone());
        }
        Ok(earlier)
    }

    /// Step 1: reads the raw file (the version pinned before, if any) through the sheet reader
    /// and the validator on a blocking thread, staging good rows as Parquet while reading.
    async fn check(
        &self,
        key: &UploadKey,
        file_name: String,
        earlier: &Earlier,
    ) -> Result<(Decision, StagedWrite), IngestError> {
        let started = std::time::Instant::now();
        let dataset = key.dataset;
        let (published, _) = stored::published(&self.lake)
            .await?
            .ok_or(IngestError::NoRegions)?;
        let region = submitting_region(&published, &key.region)?.clone();
        let counties: Vec<Prefix> = if region.level == Level::County {
            vec![region.prefix.clone()]
        } else {
            published
                .within(&region, Level::County)
                .iter()
                .map(|r| r.prefix.clone())
                .collect()
        };
        let league = league_of(&published, &counties);
        let (table, declared) = (names::dataset(dataset.name), dataset.schema());
        let (tree, schema) = tokio::join!(
            stored::load(&self.lake, Scope::WithVillagesIn(&region.prefix)),
            self.lake.schema_to_write(&table, &declared),
        );
        let (tree, _) = tree?.ok_or(IngestError::NoRegions)?;
        let mut enterprises = self.enterprise_codes(dataset, key.period).await?;
        // With no enterprise reported yet, one warning for the file says more than one per row.
        let no_enterprises = enterprises.as_ref().is_some_and(|e| e.is_empty());
        if no_enterprises {
            enterprises = None;
        }
        let mut staged = self
            .lake
            .stage(&table, &schema?, &datasets::Dataset::partition_columns())?
            .with_random_columns(&dataset.random_columns())
            .failing_at(failpoints::ROWS_STAGED);

        let raw_key = key.to_string();
        let options = GetOptions {
            version: earlier.raw_version.clone(),
            ..GetOptions::default()
        };
        let object = match self
            .lake
            .store()
            .get_opts(&Lake::object_path(&raw_key), options)
            .await
        {
            Ok(object) => object,
            Err(deltalake::ObjectStoreError::NotFound { .. }) => {
                return Err(IngestError::MissingUpload(raw_key));
            }
            Err(e) => return Err(LakeError::from(e).into()),
        };
        let size = object.meta.size as i64;
        let raw_version = object.meta.version.clone();
        let reader: Box<dyn Read + Send> = match object.payload {
            // A local lake hands over the open file: read it on the reader thread in large
            // reads, not as a stream of 8 KiB chunks each fetched on another thread. Only the
            // bytes the store named, as the stream would give.
            GetResultPayload::File(file, _) if object.range.start == 0 => {
                Box::new(file.take(object.range.end))
            }
            payload => {
                let stream = GetResult { payload, ..object }
                    .into_stream()
                    .map_err(std::io::Error::other);
                Box::new(tokio_util::io::SyncIoBridge::new(
                    tokio_util::io::StreamReader::new(stream),
                ))
            }
        };

        let (tx, mut rx) = mpsc::channel::<RecordBatch>(2);
        let job = Job {
            dataset,
            period: key.period,
            region: region.clone(),
            tree: Arc::new(tree),
            submission_id: key.id.clone(),
            pseudonymizer: self.pseudonymizer.clone(),
            enterprises,
            size: size as u64,
        };
        let worker = tokio::task::spawn_blocking(move || job.run(reader, tx));
        let mut write_error = None;
        while let Some(batch) = rx.recv().await {
            if write_error.is_none()
                && let Err(e) = staged.write(batch).await
            {
                write_error = Some(e);
            }
        }
        let mut parsed = worker
            .await
            .map_err(|e| IngestError::Worker(e.to_string()))??;
        if let Some(e) = write_error {
            staged.abort();
            return Err(e.into());
        }
        if no_enterprises {
            parsed
                .checked
                .findings
                .add(Problem::NoEnterprisesYet, At::default());
        }
        let decision = Decision {
            key: key.clone(),
            file_name,
            region,
            counties,
            league,
            parsed,
            size,
            raw_version,
            checked_in: started.elapsed(),
        };
        Ok((decision, staged))
    }

    /// Step 2: commits an accepted file's rows in one atomic replace of its counties'
    /// partitions, the commit naming the submission and its raw file. An earlier attempt's
    /// commit is reused (or, if the file is now found wanting, undone).
    async fn commit(
        &self,
        decision: &Decision,
        staged: StagedWrite,
        earlier: &Earlier,
    ) -> Result<Option<i64>, IngestError> {
        let table = names::dataset(decision.key.dataset.name);
        if let Some(version) = earlier.commit {
            staged.abort();
            if decision.accepted() {
                return Ok(Some(version));
            }
            if let Some(commit) = self
                .lake
                .commits_after(&table, Some(version - 1))
                .await?
                .into_iter()
                .find(|c| c.version == version)
            {
                self.lake.revert(&table, &commit).await?;
            }
            return Ok(None);
        }
        if !decision.accepted() {
            staged.abort();
            return Ok(None);
        }
        let key = &decision.key;
        let mut metadata = serde_json::Map::new();
        metadata.insert(commit_keys::SUBMISSION.into(), key.id.clone().into());
        metadata.insert(commit_keys::RAW_KEY.into(), key.to_string().into());
        metadata.insert(
            commit_keys::FILE_NAME.into(),
            decision.file_name.clone().into(),
        );
        if let Some(version) = &decision.raw_version {
            metadata.insert(commit_keys::RAW_VERSION.into(), version.clone().into());
        }
        let version = staged
            .commit_replacing(
                &[
                    (columns::PERIOD, vec![key.period.to_string()]),
                    (
                        columns::COUNTY,
                        decision.counties.iter().map(Prefix::to_string).collect(),
                    ),
                ],
                metadata,
            )
            .await?;
        failpoints::hit(failpoints::DATA_COMMITTED);
        Ok(Some(version))
    }

    /// Step 2½: an accepted file's rows compared with the county's previous period and the
    /// league's current one, on the version they were committed at; findings are warnings.
    async fn check_plausibility(
        &self,
        decision: &mut Decision,
        table_version: Option<i64>,
    ) -> Result<(), IngestError> {
        let Some(version) = table_version.filter(|_| self.plausibility) else {
            return Ok(());
        };
        let subject = plausibility::Subject {
            dataset: decision.key.dataset,
            period: decision.key.period,
            counties: &decision.counties,
            league: &decision.league,
        };
        let findings = &mut decision.parsed.checked.findings;
        plausibility::check(&self.lake, &subject, version, findings).await?;
        Ok(())
    }

    /// Step 3: the report, naming the table version the rows were committed at.
    async fn write_report(
        &self,
        decision: &Decision,
        table_version: Option<i64>,
    ) -> Result<Report, IngestError> {
        let key = &decision.key;
        let checked = &decision.parsed.checked;
        let report = Report {
            submission_id: key.id.clone(),
            dataset: key.dataset,
            period: key.period,
            region: decision.region.code(),
            file_name: decision.file_name.clone(),
            status: decision.status(),
            header_row: checked.header_row,
            table_version,
            summary: checked.findings.summary.clone(),
            issues: checked.findings.issues.clone(),
        };
        self.lake
            .put_object(
                &key.report_key(),
                Bytes::from(serde_json::to_vec_pretty(&report).map_err(LakeError::from)?),
            )
            .await?;
        failpoints::hit(failpoints::REPORT_WRITTEN);
        Ok(report)
    }

    /// Step 4: the decision in the log, which makes an accepted file current.
    async fn log(
        &self,
        decision: &Decision,
        report: &Report,
        table_version: Option<i64>,
    ) -> Result<Submission, IngestError> {
        let key = &decision.key;
        let summary = &report.summary;
        let submission = Submission {
            submission_id: key.id.clone(),
            dataset: key.dataset,
            period: key.period,
            region: decision.region.code(),
            file_name: decision.file_name.clone(),
            content_sha256: decision.parsed.sha256.clone(),
            size_bytes: decision.size,
            status: decision.status(),
            rows: summary.rows as i64,
            errors: summary.errors as i64,
            warnings: summary.warnings as i64,
            decided_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            raw_key: key.to_string(),
            report_key: key.report_key(),
            table_version,
            raw_version: decision.raw_version.clone(),
            flagged: Some(plausibility::flagged(summary) as i64),
        };
        submissions::record(&self.lake, &submission).await?;
        tracing::info!(
            submission = %submission.submission_id,
            dataset = key.dataset.name,
            period = %key.period,
            region = %submission.region,
            status = ?submission.status,
            rows = summary.rows,
            errors = summary.errors,
            checked_ms = decision.checked_in.as_millis() as u64,
            "submission decided"
        );
        failpoints::hit(failpoints::LOG_WRITTEN);
        Ok(submission)
    }
}

/// The counties of the leagues (盟/市) `counties` lie in, other than themselves.
fn league_of(tree: &RegionTree, counties: &[Prefix]) -> Vec<Prefix> {
    let mut league: Vec<Prefix> = Vec::new();
    for county in counties {
        let Some(city) = county.at(Level::City).and_then(|c| tree.get(c)) else {
            continue;
        };
        for other in tree.within(city, Level::County) {
            if !counties.contains(&other.prefix) && !league.contains(&other.prefix) {
                league.push(other.prefix.clone());
            }
        }
    }
    league
}
