//! Loading the shipped sample data into an empty lake, so that a newcomer's first
//! `jiazheng serve` shows real figures.
//!
//! Layout: `regions/` holds the NBS 2023 division of the whole country (so 全国 and every
//! province have their real denominators); `regions-inner-mongolia/` the subset the tests use;
//! `submissions/{period}/{region}/{dataset}.{ext}` the files as county offices would send them.

mod styles;
pub mod synth;

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::datasets;
use crate::ingest::{IngestError, Ingestor, Outcome, Upload};
use crate::lake::Lake;
use crate::regions::{self, RegionError, RegionTree};

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error(transparent)]
    Regions(#[from] RegionError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("sample file {0} was rejected; see its report")]
    Rejected(String),
}

/// One sample submission found on disk.
#[derive(Debug, Clone)]
pub struct SampleFile {
    pub path: PathBuf,
    pub upload: Upload,
}

/// The sample submissions under `root` (`{period}/{region}/{dataset}.{ext}`), in the order
/// they must be sent: by period, then region, then enterprises before the datasets that refer
/// to them.
pub fn files(root: &Path) -> Result<Vec<SampleFile>, SampleError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| SampleError::Io { path, source }
    };
    let root = root.to_path_buf();
    let mut out = Vec::new();
    for period in sorted_dir(&root).map_err(io(&root))? {
        for region in sorted_dir(&period).map_err(io(&period))? {
            for file in sorted_dir(&region).map_err(io(&region))? {
                let Some(dataset) = file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(datasets::by_name)
                else {
                    continue;
                };
                let Ok(period) = name_of(&period).parse() else {
                    continue;
                };
                out.push(SampleFile {
                    upload: Upload {
                        dataset,
                        period,
                        region: name_of(&region),
                        file_name: name_of(&file),
                    },
                    path: file,
                });
            }
        }
    }
    let rank = |f: &SampleFile| {
        datasets::ALL
            .iter()
            .position(|d| d.name == f.upload.dataset.name)
            .unwrap_or(usize::MAX)
    };
    out.sort_by(|a, b| {
        (a.upload.period, &a.upload.region, rank(a)).cmp(&(
            b.upload.period,
            &b.upload.region,
            rank(b),
        ))
    });
    Ok(out)
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn sorted_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    Ok(entries)
}

/// The `sample-data` directory of this source tree (for tests and the local run).
pub fn checkout_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-data")
}

/// The Inner Mongolia subset of the division shipped with the samples: small enough for
/// tests that import regions again and again.
pub fn inner_mongolia() -> PathBuf {
    checkout_dir().join("regions-inner-mongolia")
}

/// Imports the NBS division files of a directory into the lake.
pub async fn import_regions(lake: &Lake, regions: &Path) -> Result<RegionTree, SampleError> {
    let tree = regions::read_nbs_dir(regions)?;
    regions::stored::save(lake, &tree).await?;
    Ok(tree)
}

/// Loads a sample directory: its `regions/` when the lake has none yet, then every file under
/// its `submissions/`; all must be accepted.
pub async fn load(ingestor: &Ingestor, dir: &Path) -> Result<Vec<Outcome>, SampleError> {
    if regions::stored::load(ingestor.lake(), regions::stored::Scope::Published)
        .await?
        .is_none()
    {
        import_regions(ingestor.lake(), &dir.join("regions")).await?;
    }
    submit_all(ingestor, &dir.join("submissions")).await
}

/// Submits every sample file under `root`, refreshing each period once at the end.
pub async fn submit_all(ingestor: &Ingestor, root: &Path) -> Result<Vec<Outcome>, SampleError> {
    let bulk = ingestor.for_bulk_load();
    let mut outcomes = Vec::new();
    let mut periods = std::collections::BTreeSet::new();
    for sample in files(root)? {
        let bytes = std::fs::read(&sample.path).map_err(|source| SampleError::Io {
            path: sample.path.display().to_string(),
            source,
        })?;
        let outcome = bulk
            .submit_bytes(&sample.upload, Bytes::from(bytes))
            .await?;
        if !outcome.accepted() {
            return Err(SampleError::Rejected(sample.path.display().to_string()));
        }
        periods.insert(outcome.submission.period);
        outcomes.push(outcome);
    }
    for period in periods {
        bulk.refresh(period).await?;
    }
    Ok(outcomes)
}
