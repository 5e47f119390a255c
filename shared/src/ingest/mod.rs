//! From an uploaded file to Delta tables: keep the raw file, stream it through the sheet
//! reader and the validator on a blocking thread, stage the good rows as Parquet while
//! reading, then commit them in one atomic replace, or drop them if any row is wrong.
//!
//! Every path in goes through here: the HTTP upload, `jiazheng submit`, and the S3 event of
//! the ingest Lambda. A crash at any step leaves the lake consistent: staged files are
//! invisible until the commit, the commit is atomic, and a retry of the same upload replaces
//! the rows of its own earlier attempt.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::logstore::object_store::ObjectStoreExt;
use futures::TryStreamExt;
use tokio::sync::mpsc;

use crate::datasets::{self, Dataset, Kind, columns};
use crate::indicators;
use crate::lake::{Lake, LakeError, names, read};
use crate::periods::{BadPeriod, Period};
use crate::privacy::Pseudonymizer;
use crate::regions::stored::{self, Scope};
use crate::regions::{Level, Region, RegionTree};
use crate::report::{At, Problem, Report, Status};
use crate::submissions::{self, Submission};
use crate::validate::ValidateError;

mod job;
mod receive;

use job::{Job, Parsed};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(
        "unknown dataset {0:?}; the datasets are enterprises, outlets, trainings, workers, shops, complaints"
    )]
    UnknownDataset(String),
    #[error(transparent)]
    Period(#[from] BadPeriod),
    #[error("unknown region code {0:?}")]
    UnknownRegion(String),
    #[error(
        "region {0} is a street or village; files are submitted by counties, leagues/cities and provinces"
    )]
    RegionLevel(String),
    #[error("the lake has no region tree yet; run `jiazheng regions import DIR` first")]
    NoRegions,
    #[error("upload key {0:?} is not uploads/{{dataset}}/{{period}}/{{region}}/{{id}}.{{ext}}")]
    Key(String),
    #[error("reading {0}: {1}")]
    File(String, String),
    #[error("no uploaded file at {0}")]
    MissingUpload(String),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Validate(#[from] ValidateError),
    #[error("the reader thread failed: {0}")]
    Worker(String),
    #[error("the file is larger than the {max} bytes a {dataset} file may have")]
    TooLarge { dataset: &'static str, max: u64 },
    #[error("the upload was cut off: {0}")]
    Body(String),
}

/// Where a raw upload lives: `uploads/{dataset}/{period}/{region}/{id}.{ext}`.
#[derive(Debug, Clone)]
pub struct UploadKey {
    pub dataset: &'static Dataset,
    pub period: Period,
    pub region: String,
    pub id: String,
    pub extension: String,
}

impl UploadKey {
    pub fn parse(key: &str) -> Result<UploadKey, IngestError> {
        let bad = || IngestError::Key(key.to_string());
        let parts: Vec<&str> = key.split('/').collect();
        let ["uploads", dataset, period, region, file] = parts[..] else {
            return Err(bad());
        };
        let (id, extension) = file.rsplit_once('.').ok_or_else(bad)?;
        let safe = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !safe(id) || !safe(extension) || !region.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(UploadKey {
            dataset: datasets::by_name(dataset)
                .ok_or_else(|| IngestError::UnknownDataset(dataset.to_string()))?,
            period: period.parse()?,
            region: region.to_string(),
            id: id.to_string(),
            extension: extension.to_ascii_lowercase(),
        })
    }

    pub fn report_key(&self) -> String {
        format!("reports/{}.json", self.id)
    }
}

impl std::fmt::Display for UploadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "uploads/{}/{}/{}/{}.{}",
            self.dataset.name, self.period, self.region, self.id, self.extension
        )
    }
}

/// A file arriving with its dataset, period and submitting region.
#[derive(Debug, Clone)]
pub struct Upload {
    pub dataset: String,
    pub period: String,
    pub region: String,
    pub file_name: String,
}

/// What became of a submission.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub submission: Submission,
    pub report: Report,
    /// The same bytes had been submitted before; nothing was written again.
    pub duplicate: bool,
}

impl Outcome {
    pub fn accepted(&self) -> bool {
        self.submission.status == Status::Accepted
    }
}

/// The ingest pipeline over one lake.
#[derive(Debug, Clone)]
pub struct Ingestor {
    lake: Lake,
    pseudonymizer: Option<Pseudonymizer>,
    /// Whether each accepted file refreshes its period's indicators at once (the default);
    /// bulk loads turn it off and refresh each period once at the end.
    refresh_each: bool,
}

impl Ingestor {
    /// `pseudonymizer` may be left out only where no dataset with ID numbers is ingested.
    pub fn new(lake: Lake, pseudonymizer: Option<Pseudonymizer>) -> Ingestor {
        Ingestor {
            lake,
            pseudonymizer,
            refresh_each: true,
        }
    }

    /// The same pipeline without the per-file refresh, for loading many files at once;
    /// call [`Ingestor::refresh`] for each period afterwards.
    pub fn for_bulk_load(&self) -> Ingestor {
        Ingestor {
            refresh_each: false,
            ..self.clone()
        }
    }

    /// Recomputes and publishes a period's indicators.
    pub async fn refresh(&self, period: Period) -> Result<i64, IngestError> {
        Ok(indicators::refresh(&self.lake, period).await?)
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// The outcome already decided for this upload, if it still stands: a rejected file, or
    /// an accepted one that is still current (re-sending an older file makes it current again).
    pub(crate) async fn settled(&self, key: &UploadKey) -> Result<Option<Outcome>, IngestError> {
        let log = submissions::all(&self.lake).await?;
        let Some((submission, current)) = submissions::latest(&log)
            .into_iter()
            .find(|(s, _)| s.submission_id == key.id)
        else {
            return Ok(None);
        };
        if submission.status == Status::Accepted && !current {
            return Ok(None);
        }
        let Some(report) = self.report(&key.id).await? else {
            return Ok(None);
        };
        Ok(Some(Outcome {
            submission,
            report,
            duplicate: true,
        }))
    }

    pub async fn report(&self, id: &str) -> Result<Option<Report>, IngestError> {
        let key = format!("reports/{id}.json");
        match self.lake.get_object(&key).await? {
            Some(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).map_err(LakeError::from)?,
            )),
            None => Ok(None),
        }
    }

    /// Checks the raw upload at `key` and, when it has no error, makes its rows the current
    /// ones for its dataset, period and region. Idempotent: an upload already decided is not
    /// processed again.
    pub async fn process(&self, key: &UploadKey, file_name: &str) -> Result<Outcome, IngestError> {
        // A file's name is the submitter's text: it may hold an ID number too.
        let file_name = &*crate::identifiers::mask_id_numbers(file_name);
        if let Some(outcome) = self.settled(key).await? {
            return Ok(outcome);
        }
        let dataset = key.dataset;
        let (published, _) = stored::load(&self.lake, Scope::Published)
            .await?
            .ok_or(IngestError::NoRegions)?;
        let region = submitting_region(&published, &key.region)?.clone();
        let (tree, _) = stored::load(&self.lake, Scope::WithVillagesIn(&region.prefix))
            .await?
            .ok_or(IngestError::NoRegions)?;
        let mut enterprises = self.enterprise_codes(dataset, key.period).await?;
        // With no enterprise reported yet, one warning for the file says more than one per row.
        let no_enterprises = enterprises.as_ref().is_some_and(HashSet::is_empty);
        if no_enterprises {
            enterprises = None;
        }
        let mut staged = self.lake.stage(
            &names::dataset(dataset.name),
            &dataset.schema(),
            &datasets::Dataset::partition_columns(),
        )?;

        let raw_key = key.to_string();
        let object = match self
            .lake
            .store()
            .get(&crate::lake::Lake::object_path(&raw_key))
            .await
        {
            Ok(object) => object,
            Err(deltalake::ObjectStoreError::NotFound { .. }) => {
                return Err(IngestError::MissingUpload(raw_key));
            }
            Err(e) => return Err(LakeError::from(e).into()),
        };
        let size = object.meta.size as i64;
        let stream = object.into_stream().map_err(std::io::Error::other);
        let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));

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
        let parsed = worker
            .await
            .map_err(|e| IngestError::Worker(e.to_string()))??;
        if let Some(e) = write_error {
            staged.abort();
            return Err(e.into());
        }

        let Parsed {
            mut checked,
            sha256,
        } = parsed;
        if no_enterprises {
            checked
                .findings
                .add(Problem::NoEnterprisesYet, At::default());
        }
        let accepted = !checked.findings.has_errors();
        let mut table_version = None;
        if accepted {
            let counties: Vec<String> = if region.level == Level::County {
                vec![region.prefix.clone()]
            } else {
                published
                    .within(&region, Level::County)
                    .iter()
                    .map(|r| r.prefix.clone())
                    .collect()
            };
            let mut metadata = serde_json::Map::new();
            metadata.insert("jiazheng.submission".into(), key.id.clone().into());
            let version = staged
                .commit_replacing(
                    &[
                        (columns::PERIOD, vec![key.period.to_string()]),
                        (columns::COUNTY, counties),
                    ],
                    metadata,
                )
                .await?;
            table_version = Some(version);
        } else {
            staged.abort();
        }

        let status = if accepted {
            Status::Accepted
        } else {
            Status::Rejected
        };
        let summary = checked.findings.summary;
        let report = Report {
            submission_id: key.id.clone(),
            dataset: dataset.name.to_string(),
            period: key.period.to_string(),
            region: region.code(),
            file_name: file_name.to_string(),
            status,
            header_row: checked.header_row,
            summary: summary.clone(),
            issues: checked.findings.issues,
        };
        self.lake
            .put_object(
                &key.report_key(),
                Bytes::from(serde_json::to_vec_pretty(&report).map_err(LakeError::from)?),
            )
            .await?;
        let submission = Submission {
            submission_id: key.id.clone(),
            dataset: dataset.name.to_string(),
            period: key.period.to_string(),
            region: region.code(),
            file_name: file_name.to_string(),
            content_sha256: sha256,
            size_bytes: size,
            status,
            rows: summary.rows as i64,
            errors: summary.errors as i64,
            warnings: summary.warnings as i64,
            decided_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            raw_key,
            report_key: key.report_key(),
            table_version,
        };
        submissions::record(&self.lake, &submission).await?;
        tracing::info!(
            submission = %submission.submission_id,
            dataset = dataset.name,
            period = %key.period,
            region = %submission.region,
            status = ?status,
            rows = summary.rows,
            errors = summary.errors,
            "submission decided"
        );
        if accepted && self.refresh_each {
            indicators::refresh(&self.lake, key.period).await?;
        }
        Ok(Outcome {
            submission,
            report,
            duplicate: false,
        })
    }

    /// Credit codes of the enterprises reported for the period, when the dataset refers to
    /// enterprises.
    async fn enterprise_codes(
        &self,
        dataset: &Dataset,
        period: Period,
    ) -> Result<Option<HashSet<String>>, IngestError> {
        let refers = dataset.name != datasets::ENTERPRISES.name
            && dataset
                .fields
                .iter()
                .any(|f| matches!(f.kind, Kind::CreditCode));
        if !refers {
            return Ok(None);
        }
        let table = names::dataset(datasets::ENTERPRISES.name);
        let (ctx, versions) = self.lake.session(&[&table]).await?;
        if versions.is_empty() {
            return Ok(Some(HashSet::new()));
        }
        let batches = ctx
            .sql(&format!(
                "SELECT DISTINCT credit_code FROM enterprises WHERE period = '{period}'"
            ))
            .await
            .map_err(LakeError::from)?
            .collect()
            .await
            .map_err(LakeError::from)?;
        let mut codes = HashSet::new();
        for batch in &batches {
            codes.extend(read::text(batch, 0)?.iter().flatten().map(str::to_string));
        }
        Ok(Some(codes))
    }
}

/// An object key as S3 event notifications carry it — URL-encoded with spaces as `+`; some
/// S3 implementations encode `/` too — back to the key itself.
pub fn decode_event_key(key: &str) -> String {
    let plus_decoded = key.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_decoded)
        .decode_utf8_lossy()
        .into_owned()
}

/// The region a file is submitted for: a county or anything above it.
pub fn submitting_region<'t>(tree: &'t RegionTree, code: &str) -> Result<&'t Region, IngestError> {
    let region = tree
        .resolve(code)
        .ok_or_else(|| IngestError::UnknownRegion(code.to_string()))?;
    if region.level > Level::County {
        return Err(IngestError::RegionLevel(code.to_string()));
    }
    Ok(region)
}
