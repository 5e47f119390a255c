//! The reader thread of an ingest: streams the raw file through the sheet reader and the
//! validator and sends good batches to the writer as they fill.

use std::collections::HashSet;
use std::io::Read;
use std::sync::Arc;

use deltalake::arrow::record_batch::RecordBatch;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::IngestError;
use crate::datasets::Dataset;
use crate::findings::{At, Findings, Problem};
use crate::periods::Period;
use crate::privacy::Pseudonymizer;
use crate::regions::{Region, RegionTree};
use crate::sheets;
use crate::validate::{Checked, Context, Lanes, ValidateError, Validator};

/// Everything the reader thread owns.
pub(crate) struct Job {
    pub(crate) dataset: &'static Dataset,
    pub(crate) period: Period,
    pub(crate) region: Region,
    pub(crate) tree: Arc<RegionTree>,
    pub(crate) submission_id: String,
    pub(crate) pseudonymizer: Option<Pseudonymizer>,
    pub(crate) enterprises: Option<HashSet<String>>,
    /// The raw object's size, checked against the dataset's limit before anything is parsed.
    pub(crate) size: u64,
}

pub(crate) struct Parsed {
    pub(crate) checked: Checked,
    pub(crate) sha256: String,
}

impl Job {
    /// Reads and checks the whole file, sending good batches to the writer as they fill.
    pub(crate) fn run(
        self,
        reader: impl Read,
        tx: mpsc::Sender<RecordBatch>,
    ) -> Result<Parsed, IngestError> {
        let ctx = Context {
            dataset: self.dataset,
            period: self.period,
            region: &self.region,
            regions: &self.tree,
            submission_id: &self.submission_id,
            pseudonymizer: self.pseudonymizer.as_ref(),
            enterprises: self.enterprises.as_ref(),
        };
        let mut hashing = HashingReader {
            inner: reader,
            hash: Sha256::new(),
        };
        let sheet_names = [self.dataset.name, self.dataset.zh];
        let limits = self.dataset.limits();
        if self.size > limits.max_file_bytes {
            // Not parsed at all; hashed so the log still names the bytes that were refused.
            std::io::copy(&mut hashing, &mut std::io::sink())
                .map_err(|e| IngestError::Worker(e.to_string()))?;
            let mut findings = Findings::default();
            findings.add(
                Problem::Limit(sheets::Exceeded::File {
                    max: limits.max_file_bytes,
                }),
                At::default(),
            );
            return Ok(Parsed {
                checked: Checked {
                    findings,
                    header_row: None,
                    batches: Vec::new(),
                },
                sha256: hex::encode(hashing.hash.finalize()),
            });
        }
        let mut checked = std::thread::scope(|scope| {
            // Rows are read and parsed here while the lanes' threads check them.
            let mut validator = Validator::with_lanes(ctx, Lanes::spawn(scope, Lanes::workers()))?;
            let mut failure: Option<ValidateError> = None;
            let read = sheets::read_rows(&mut hashing, &sheet_names, &limits, |number, cells| {
                if failure.is_some() {
                    return;
                }
                match validator.push(number, cells) {
                    Ok(Some(batch)) => {
                        // The writer only stops listening when it failed; its error is reported.
                        let _ = tx.blocking_send(batch);
                    }
                    Ok(None) => {}
                    Err(e) => failure = Some(e),
                }
            });
            if let Some(e) = failure {
                return Err(IngestError::from(e));
            }
            match read {
                Ok(_) => Ok(validator.finish()?),
                Err(e) => {
                    let mut findings = Findings::default();
                    findings.add(unreadable(e), At::default());
                    Ok(Checked {
                        findings,
                        header_row: None,
                        batches: Vec::new(),
                    })
                }
            }
        })?;
        // Read to the end so the hash covers the whole file even if the reader stopped early.
        std::io::copy(&mut hashing, &mut std::io::sink())
            .map_err(|e| IngestError::Worker(e.to_string()))?;
        for batch in std::mem::take(&mut checked.batches) {
            let _ = tx.blocking_send(batch);
        }
        Ok(Parsed {
            checked,
            sha256: hex::encode(hashing.hash.finalize()),
        })
    }
}

/// Why a file could not be read, as a problem of the report. A library's message may quote
/// the file (a sheet name, a cell): it passes the ID-number detector first.
fn unreadable(e: sheets::SheetError) -> Problem {
    match e {
        sheets::SheetError::LegacyXls => Problem::LegacyXls,
        sheets::SheetError::Limit(limit) => Problem::Limit(limit),
        other => Problem::UnreadableFile(
            crate::identifiers::mask_id_numbers(&other.to_string()).into_owned(),
        ),
    }
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}
