//! The intake: what an upload is ([`Upload`], [`UploadKey`]), the [`Ingestor`] over one lake,
//! the job that streams a file through the sheet reader and the validator on a blocking thread
//! and stages the good rows as Parquet while reading ([`job`]), and upload tickets
//! ([`uploads`]). The steps that use them in order — keep the raw file, decide, refresh the
//! indicators, repair — are the `pipeline` module, so the write path here never
//! depends on the read model.

use std::collections::HashSet;

use crate::datasets::{self, Dataset, Kind};
use crate::findings::{Report, Status};
use crate::lake::{Lake, LakeError, Session, names, read};
use crate::periods::{BadPeriod, Period};
use crate::privacy::Pseudonymizer;
use crate::regions::{Level, Region, RegionTree};
use crate::submissions::{self, Submission};
use crate::validate::ValidateError;

mod job;
pub mod uploads;

pub(crate) use job::{Job, Parsed};

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
    pub dataset: &'static Dataset,
    pub period: Period,
    /// The submitting region as its sender wrote it; resolved against the tree on receipt.
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
    pub(crate) lake: Lake,
    pub(crate) pseudonymizer: Option<Pseudonymizer>,
    /// Whether each accepted file refreshes its period's indicators at once (the default);
    /// bulk loads turn it off and refresh each period once at the end.
    pub(crate) refresh_each: bool,
    /// Whether accepted files are checked for plausibility (the default); the ingest
    /// benchmark turns it off to measure what the checks cost.
    pub(crate) plausibility: bool,
}

impl Ingestor {
    /// `pseudonymizer` may be left out only where no dataset with ID numbers is ingested.
    pub fn new(lake: Lake, pseudonymizer: Option<Pseudonymizer>) -> Ingestor {
        Ingestor {
            lake,
            pseudonymizer,
            refresh_each: true,
            plausibility: true,
        }
    }

    /// The same pipeline without plausibility checks: what they cost, measured.
    pub fn without_plausibility(&self) -> Ingestor {
        Ingestor {
            plausibility: false,
            ..self.clone()
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

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// The outcome already decided for this upload, if it still stands: a rejected file, or
    /// an accepted one that is still current (re-sending an older file makes it current again).
    pub(crate) async fn settled_in(
        &self,
        key: &UploadKey,
        log: &[Submission],
    ) -> Result<Option<Outcome>, IngestError> {
        let Some((submission, current)) = submissions::latest(log)
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

    /// Credit codes of the enterprises reported for the period, when the dataset refers to
    /// enterprises.
    pub(super) async fn enterprise_codes(
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
        let Session { ctx, versions, .. } = self.lake.session(&[&table]).await?;
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
