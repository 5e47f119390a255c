//! Checks a submitted sheet row by row against its dataset's declaration and turns the good
//! rows into Arrow batches. One pass, bounded memory: rows stream in, batches stream out, and
//! only the keys seen so far (as 128-bit fingerprints) are remembered for uniqueness.
//!
//! Any error rejects the whole file; from the first error on, no more batches are produced
//! but every row is still checked so the report is complete. A file with the template's
//! header and no data rows is a nil return (零报送): accepted, with a notice.

mod batch;
pub mod header;
pub mod values;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use chrono::NaiveDate;
use deltalake::arrow::error::ArrowError;
use deltalake::arrow::record_batch::RecordBatch;

use batch::BatchBuilder;
pub use batch::{BATCH_ROWS, days_since_epoch};
use header::Columns;
use values::{Scope, Value};

use crate::datasets::{Dataset, Kind};
use crate::findings::{At, Findings, Problem};
use crate::periods::Period;
use crate::privacy::Pseudonymizer;
use crate::regions::{Region, RegionTree};
use crate::sheets::Cell;

/// What a file is checked against.
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
}

/// The result of checking a whole file.
pub struct Checked {
    pub findings: Findings,
    pub header_row: Option<usize>,
    /// Rows that passed, in the last (partial) batch; only when the file has no error.
    pub last_batch: Option<RecordBatch>,
}

pub struct Validator<'a> {
    ctx: Context<'a>,
    period_end: NaiveDate,
    pending: Vec<(usize, Vec<Cell>)>,
    columns: Option<Columns>,
    findings: Findings,
    batch: BatchBuilder,
    keys: HashMap<u128, u32>,
    hashers: (RandomState, RandomState),
    values: Vec<Value>,
}

impl<'a> Validator<'a> {
    pub fn new(ctx: Context<'a>) -> Result<Validator<'a>, ValidateError> {
        let needs_key = ctx
            .dataset
            .fields
            .iter()
            .any(|f| matches!(f.kind, Kind::IdNumber));
        if needs_key && ctx.pseudonymizer.is_none() {
            return Err(ValidateError::NoKey(ctx.dataset.name));
        }
        Ok(Validator {
            period_end: ctx.period.end(),
            batch: BatchBuilder::new(ctx.dataset, ctx.submission_id, &ctx.period.to_string()),
            ctx,
            pending: Vec::new(),
            columns: None,
            findings: Findings::default(),
            keys: HashMap::new(),
            hashers: (RandomState::new(), RandomState::new()),
            values: Vec::new(),
        })
    }

    /// Takes the next row of the sheet; returns a full batch when one is ready.
    pub fn push(
        &mut self,
        number: usize,
        cells: &[Cell],
    ) -> Result<Option<RecordBatch>, ValidateError> {
        if self.columns.is_none() {
            self.pending.push((number, cells.to_vec()));
            if self.pending.len() >= header::SEARCH_ROWS {
                return self.settle_header();
            }
            return Ok(None);
        }
        self.check_row(number, cells);
        self.take_full_batch()
    }

    /// Chooses the header among the buffered rows and checks the rows below it.
    fn settle_header(&mut self) -> Result<Option<RecordBatch>, ValidateError> {
        let pending = std::mem::take(&mut self.pending);
        let Some(at) = header::find(self.ctx.dataset, &pending) else {
            self.findings.add(Problem::NoHeader, At::default());
            // Remember that the search is over, with every field unmapped.
            self.columns = Some(Columns {
                row: 0,
                index: vec![None; self.ctx.dataset.fields.len()],
                label: Vec::new(),
            });
            return Ok(None);
        };
        let (row, cells) = &pending[at];
        self.columns = Some(header::map(
            self.ctx.dataset,
            *row,
            cells,
            &mut self.findings,
        ));
        for (number, cells) in &pending[at + 1..] {
            self.check_row(*number, cells);
        }
        self.take_full_batch()
    }

    fn take_full_batch(&mut self) -> Result<Option<RecordBatch>, ValidateError> {
        if self.batch.len() >= BATCH_ROWS {
            return Ok(Some(self.batch.finish()?));
        }
        Ok(None)
    }

    pub fn finish(mut self) -> Result<Checked, ValidateError> {
        if self.columns.is_none() {
            if self
                .pending
                .iter()
                .all(|(_, cells)| cells.iter().all(Cell::is_blank))
            {
                self.findings.add(Problem::EmptyFile, At::default());
                return Ok(self.checked(None));
            }
            self.settle_header()?;
        }
        let header_row = self.columns.as_ref().map(|c| c.row).filter(|r| *r > 0);
        if header_row.is_some() && self.findings.summary.rows == 0 {
            // The template's header and no rows: "none this period" (零报送), a valid return.
            self.findings.add(Problem::NilReturn, At::default());
        }
        let last = if self.findings.has_errors() || self.batch.is_empty() {
            None
        } else {
            Some(self.batch.finish()?)
        };
        let mut checked = self.checked(last);
        checked.header_row = header_row;
        Ok(checked)
    }

    fn checked(self, last_batch: Option<RecordBatch>) -> Checked {
        Checked {
            findings: self.findings,
            header_row: None,
            last_batch,
        }
    }

    fn check_row(&mut self, number: usize, cells: &[Cell]) {
        if cells.iter().all(Cell::is_blank) {
            return;
        }
        let Some(columns) = self.columns.take() else {
            return;
        };
        // Without a header (row 0) the file is rejected already and rows cannot be read.
        if columns.row > 0 {
            self.check_cells(number, cells, &columns);
        }
        self.columns = Some(columns);
    }

    fn check_cells(&mut self, number: usize, cells: &[Cell], columns: &Columns) {
        self.findings.summary.rows += 1;
        let dataset = self.ctx.dataset;
        let scope = Scope {
            region: self.ctx.region,
            regions: self.ctx.regions,
            period_end: self.period_end,
        };
        let mut row_ok = true;
        self.values.clear();
        for (i, field) in dataset.fields.iter().enumerate() {
            let Some(col) = columns.index[i] else {
                self.values.push(Value::Null);
                continue;
            };
            let cell = cells.get(col).unwrap_or(&Cell::Empty);
            let at = At {
                row: Some(number),
                column: Some(&columns.label[i]),
                field: Some(field.name),
                value: None,
            };
            if !matches!(field.kind, Kind::IdNumber) && values::holds_id_number(cell) {
                // An ID number in any other column (swapped columns, a name field) must not
                // reach the lake; the report shows it masked.
                self.findings.add(
                    Problem::IdNumberOutOfPlace,
                    At {
                        value: Some(&cell.to_text()),
                        ..at
                    },
                );
                self.values.push(Value::Null);
                row_ok = false;
                continue;
            }
            if cell.is_blank() {
                if field.required {
                    self.findings.add(Problem::Required, at);
                    row_ok = false;
                }
                self.values.push(Value::Null);
                continue;
            }
            match values::read(&field.kind, cell, &scope) {
                Ok(Value::Text(id)) if matches!(field.kind, Kind::IdNumber) => {
                    let pseudonym = self
                        .ctx
                        .pseudonymizer
                        .map(|p| p.pseudonym(&id))
                        .unwrap_or_default();
                    self.values.push(Value::Text(pseudonym));
                }
                Ok(value) => self.values.push(value),
                Err(problem) => {
                    let shown = values::shown(&field.kind, cell);
                    self.findings.add(
                        problem,
                        At {
                            value: Some(&shown),
                            ..at
                        },
                    );
                    self.values.push(Value::Null);
                    row_ok = false;
                }
            }
        }
        row_ok &= self.check_key(number, columns);
        row_ok &= self.check_sums(number, columns);
        self.check_references(number, columns);
        if row_ok && !self.findings.has_errors() {
            let county = self.county_of_row();
            self.batch.push(number, &county, &self.values);
        }
    }

    /// The 6-digit county of the row, from its region field.
    fn county_of_row(&self) -> String {
        let dataset = self.ctx.dataset;
        dataset
            .fields
            .iter()
            .position(|f| f.name == dataset.region_field)
            .and_then(|i| match &self.values[i] {
                Value::Text(code) => code.get(..6).map(str::to_string),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn value_of(&self, name: &str) -> Option<&Value> {
        let i = self
            .ctx
            .dataset
            .fields
            .iter()
            .position(|f| f.name == name)?;
        self.values.get(i)
    }

    fn check_key(&mut self, number: usize, columns: &Columns) -> bool {
        let dataset = self.ctx.dataset;
        let fingerprint = match self.value_of(dataset.key) {
            Some(Value::Text(key)) => {
                (u128::from(self.hashers.0.hash_one(key)) << 64)
                    | u128::from(self.hashers.1.hash_one(key))
            }
            _ => return true,
        };
        let first = *self.keys.entry(fingerprint).or_insert(number as u32);
        if first as usize == number {
            return true;
        }
        let i = dataset.fields.iter().position(|f| f.name == dataset.key);
        let shown = match (
            i.map(|i| dataset.fields[i].kind),
            self.value_of(dataset.key),
        ) {
            (Some(Kind::IdNumber), _) => None,
            (_, Some(Value::Text(key))) => Some(key.clone()),
            _ => None,
        };
        self.findings.add(
            Problem::DuplicateKey {
                first_row: first as usize,
            },
            At {
                row: Some(number),
                column: i.map(|i| columns.label[i].as_str()),
                field: Some(dataset.key),
                value: shown.as_deref(),
            },
        );
        false
    }

    fn check_sums(&mut self, number: usize, columns: &Columns) -> bool {
        let dataset = self.ctx.dataset;
        let mut ok = true;
        for rule in dataset.at_most {
            let int = |name: &str| match self.value_of(name) {
                Some(Value::Int(n)) => Some(*n),
                _ => None,
            };
            let parts: Option<i64> = rule.parts.iter().map(|p| int(p)).sum();
            let total = int(rule.total);
            let (Some(parts), Some(total)) = (parts, total) else {
                continue;
            };
            if parts > total {
                let zh = |name: &'static str| dataset.field(name).map_or(name, |f| f.zh);
                let i = dataset.fields.iter().position(|f| f.name == rule.total);
                self.findings.add(
                    Problem::SumExceedsTotal {
                        parts: rule
                            .parts
                            .iter()
                            .map(|p| zh(p))
                            .collect::<Vec<_>>()
                            .join("+"),
                        total: zh(rule.total).to_string(),
                    },
                    At {
                        row: Some(number),
                        column: i.map(|i| columns.label[i].as_str()),
                        field: Some(rule.total),
                        value: Some(&format!("{parts} > {total}")),
                    },
                );
                ok = false;
            }
        }
        ok
    }

    /// A credit code in any dataset but `enterprises` names an enterprise that should be
    /// reported in the same period; a missing one is a warning, not an error.
    fn check_references(&mut self, number: usize, columns: &Columns) {
        let dataset = self.ctx.dataset;
        let Some(known) = self.ctx.enterprises else {
            return;
        };
        if dataset.name == crate::datasets::ENTERPRISES.name {
            return;
        }
        for (i, field) in dataset.fields.iter().enumerate() {
            if !matches!(field.kind, Kind::CreditCode) {
                continue;
            }
            if let Value::Text(code) = &self.values[i]
                && !known.contains(code)
            {
                self.findings.add(
                    Problem::UnknownEnterprise,
                    At {
                        row: Some(number),
                        column: Some(&columns.label[i]),
                        field: Some(field.name),
                        value: Some(code),
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
