//! Checks a submitted sheet row by row against its dataset's declaration and turns the good
//! rows into Arrow batches. One pass, bounded memory: rows stream in, batches stream out, and
//! only the keys seen so far (as 128-bit fingerprints) are remembered for uniqueness.
//!
//! Any error rejects the whole file; from the first error on, no more batches are produced
//! but every row is still checked so the report is complete. A file with the template's
//! header and no data rows is a nil return (零报送): accepted, with a notice.

mod batch;
pub mod header;
mod lanes;
mod rows;
pub mod values;

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use deltalake::arrow::error::ArrowError;
use deltalake::arrow::record_batch::RecordBatch;

pub use batch::{BATCH_ROWS, days_since_epoch};
pub use lanes::Lanes;
use rows::{BlockChecked, Fingerprint, RowChecker};

use crate::datasets::{Dataset, Kind};
use crate::findings::{At, Findings, Problem};
use crate::periods::Period;
use crate::privacy::{Leading, Pseudonymizer};
use crate::regions::{Region, RegionTree};
use crate::sheets::{Cell, RowBlock};

/// What a file is checked against.
#[derive(Clone)]
pub struct Context<'a> {
    pub dataset: &'static Dataset,
    pub period: Period,
    /// The submitting region: every row must lie inside it.
    pub region: &'a Region,
    /// The region tree, with the village-level units inside `region`.
    pub regions: &'a RegionTree,
    pub submission_id: &'a str,
    /// Required for datasets with ID numbers.
    pub pseudonymizer: Option<&'a Pseudonymizer>,
    /// Credit codes of the enterprises reported for the period, for reference warnings.
    pub enterprises: Option<&'a HashSet<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("the {0} dataset holds ID numbers and needs the pseudonymisation key")]
    NoKey(&'static str),
    #[error("building a batch: {0}")]
    Arrow(#[from] ArrowError),
    #[error("a thread checking rows stopped")]
    Stopped,
}

/// The result of checking a whole file.
pub struct Checked {
    pub findings: Findings,
    pub header_row: Option<usize>,
    /// Batches of good rows not handed out by [`Validator::push`]; only when the file has no
    /// error.
    pub batches: Vec<RecordBatch>,
}

/// The most a block of rows holds before it is checked, however wide its rows: with at most
/// two blocks per lane in flight, their batches and the one being filled, a few tens of MiB,
/// within the working memory the limits allow for (`datasets::limits`). A block of workers
/// holds ~1.7 MiB at [`BATCH_ROWS`] rows.
const BLOCK_BYTES: usize = 2 << 20;

/// Where the validator is in the file.
enum Header<'a> {
    /// Still among the first rows, which are kept until the header is found.
    Searching(Vec<(usize, Vec<Cell<'static>>)>),
    /// No header: the file is rejected and its rows cannot be read.
    Missing,
    Found(Arc<RowChecker<'a>>),
}

/// Checks a file's rows as they are read. Rows below the header are gathered into blocks of
/// [`BATCH_ROWS`] and checked on the [`Lanes`]; keys are then compared across blocks in order.
pub struct Validator<'a> {
    ctx: Context<'a>,
    header: Header<'a>,
    block: RowBlock,
    lanes: Lanes<'a>,
    findings: Findings,
    /// Every key seen, as a fingerprint, with the row it was first seen on.
    keys: HashMap<Fingerprint, u32, BuildHasherDefault<Leading>>,
}

impl<'a> Validator<'a> {
    /// A validator that checks every block on the calling thread.
    pub fn new(ctx: Context<'a>) -> Result<Validator<'a>, ValidateError> {
        Validator::with_lanes(ctx, Lanes::inline())
    }

    pub fn with_lanes(ctx: Context<'a>, lanes: Lanes<'a>) -> Result<Validator<'a>, ValidateError> {
        let needs_key = ctx
            .dataset
            .fields
            .iter()
            .any(|f| matches!(f.kind, Kind::IdNumber));
        if needs_key && ctx.pseudonymizer.is_none() {
            return Err(ValidateError::NoKey(ctx.dataset.name));
        }
        Ok(Validator {
            ctx,
            header: Header::Searching(Vec::new()),
            block: RowBlock::default(),
            lanes,
            findings: Findings::default(),
            keys: HashMap::default(),
        })
    }

    /// Takes the next row of the sheet; returns a batch of good rows when one is ready.
    pub fn push(
        &mut self,
        number: usize,
        cells: &[Cell<'_>],
    ) -> Result<Option<RecordBatch>, ValidateError> {
        match &mut self.header {
            Header::Searching(pending) => {
                pending.push((
                    number,
                    cells.iter().cloned().map(Cell::into_owned).collect(),
                ));
                if pending.len() >= header::SEARCH_ROWS {
                    return self.settle_header();
                }
                Ok(None)
            }
            Header::Missing => Ok(None),
            Header::Found(_) => {
                if !cells.iter().all(Cell::is_blank) {
                    self.block.push(number, cells);
                }
                if self.block.len() >= BATCH_ROWS || self.block.bytes() >= BLOCK_BYTES {
                    return self.send_block();
                }
                Ok(None)
            }
        }
    }

    /// Chooses the header among the kept rows and takes the rows below it.
    fn settle_header(&mut self) -> Result<Option<RecordBatch>, ValidateError> {
        let Header::Searching(pending) = std::mem::replace(&mut self.header, Header::Missing)
        else {
            return Ok(None);
        };
        let Some(at) = header::find(self.ctx.dataset, &pending) else {
            self.findings.add(Problem::NoHeader, At::default());
            return Ok(None);
        };
        let (row, cells) = &pending[at];
        let columns = header::map(self.ctx.dataset, *row, cells, &mut self.findings);
        let store = !self.findings.has_errors();
        self.header = Header::Found(Arc::new(RowChecker::new(self.ctx.clone(), columns, store)));
        let mut ready = None;
        for (number, cells) in &pending[at + 1..] {
            if let Some(batch) = self.push(*number, cells)? {
                ready = Some(batch);
            }
        }
        Ok(ready)
    }

    /// Hands the full block to the lanes; takes in the oldest result first if they are full.
    fn send_block(&mut self) -> Result<Option<RecordBatch>, ValidateError> {
        let Header::Found(checker) = &self.header else {
            return Ok(None);
        };
        let checker = checker.clone();
        let full = std::mem::take(&mut self.block);
        let mut ready = None;
        if !self.lanes.has_room()
            && let Some(done) = self.lanes.receive()
        {
            ready = self.take_in(done?, &checker);
        }
        self.lanes.send(&checker, full);
        Ok(ready)
    }

    /// Settles a checked block: its keys against those of the blocks before it, its findings
    /// into the file's. Its batch is handed out while the file has no error.
    fn take_in(&mut self, checked: BlockChecked, checker: &RowChecker<'_>) -> Option<RecordBatch> {
        let mut found = checked.findings;
        let mut repeated = false;
        for (fingerprint, number, i) in checked.keys {
            let first = *self.keys.entry(fingerprint).or_insert(number);
            if first != number {
                let (_, cells) = checked.block.row(i);
                checker.duplicate(number as usize, first as usize, &cells, &mut found);
                repeated = true;
            }
        }
        if repeated {
            // Each row's findings stay together, in row order.
            found.issues.sort_by_key(|issue| issue.row);
        }
        self.findings.absorb(found);
        let batch = checked.batch.filter(|_| !self.findings.has_errors());
        if self.block.is_empty() {
            // Its buffers are reused for the next block.
            self.block = checked.block;
            self.block.clear();
        }
        batch
    }

    pub fn finish(mut self) -> Result<Checked, ValidateError> {
        if let Header::Searching(pending) = &self.header {
            if pending
                .iter()
                .all(|(_, cells)| cells.iter().all(Cell::is_blank))
            {
                self.findings.add(Problem::EmptyFile, At::default());
                return Ok(Checked {
                    findings: self.findings,
                    header_row: None,
                    batches: Vec::new(),
                });
            }
            self.settle_header()?;
        }
        let mut batches = Vec::new();
        let mut header_row = None;
        if let Header::Found(checker) = &self.header {
            let checker = checker.clone();
            header_row = Some(checker.columns().row);
            if !self.block.is_empty() {
                self.lanes.send(&checker, std::mem::take(&mut self.block));
            }
            while let Some(done) = self.lanes.receive() {
                batches.extend(self.take_in(done?, &checker));
            }
        }
        if header_row.is_some() && self.findings.summary.rows == 0 {
            // The template's header and no rows: "none this period" (零报送), a valid return.
            self.findings.add(Problem::NilReturn, At::default());
        }
        if self.findings.has_errors() {
            batches.clear();
        }
        Ok(Checked {
            findings: self.findings,
            header_row,
            batches,
        })
    }
}

#[cfg(test)]
mod tests;
