//! Checking the rows below the header, a block at a time: everything about a row that does not
//! depend on the rows before it. Blocks are independent, so several threads check them at once;
//! what does depend on earlier rows (a key seen before) is settled afterwards, in order, from
//! the fingerprints each block hands back.

use std::borrow::Cow;
use std::hash::{BuildHasher, RandomState};

use chrono::NaiveDate;
use deltalake::arrow::record_batch::RecordBatch;

use super::batch::BatchBuilder;
use super::header::Columns;
use super::values::{self, Inside, Scope, Value, inside};
use super::{Context, ValidateError};
use crate::datasets::Kind;
use crate::findings::{At, Findings, Problem};
use crate::sheets::{Cell, RowBlock};

/// A key as remembered for uniqueness: 128 bits, from the key's keyed hash. An ID number's
/// pseudonym is a keyed hash already and gives its own first 16 bytes.
pub(super) type Fingerprint = u128;

/// What checking a block found.
pub(super) struct BlockChecked {
    pub(super) findings: Findings,
    /// Each row's key fingerprint, row number and position in the block, in row order.
    pub(super) keys: Vec<(Fingerprint, u32, usize)>,
    /// The block's rows as a batch, when none of them has an error.
    pub(super) batch: Option<RecordBatch>,
    /// The rows themselves, to show a duplicate key and to be filled again.
    pub(super) block: RowBlock,
}

/// Everything needed to check a row once the header is known; shared by the checking threads.
pub(super) struct RowChecker<'a> {
    ctx: Context<'a>,
    columns: Columns,
    period_end: NaiveDate,
    hashers: (RandomState, RandomState),
    inside: Inside<'a>,
    /// Positions of the key and region fields among the dataset's fields.
    key: Option<usize>,
    region: Option<usize>,
    /// Whether rows can be stored at all: not when the header has an error (a missing
    /// column), which rejects the file before any row does.
    store: bool,
}

impl<'a> RowChecker<'a> {
    pub(super) fn new(ctx: Context<'a>, columns: Columns, store: bool) -> RowChecker<'a> {
        let position = |name: &str| ctx.dataset.fields.iter().position(|f| f.name == name);
        RowChecker {
            period_end: ctx.period.end(),
            key: position(ctx.dataset.key),
            region: position(ctx.dataset.region_field),
            hashers: (RandomState::new(), RandomState::new()),
            inside: inside(ctx.regions, ctx.region),
            ctx,
            columns,
            store,
        }
    }

    pub(super) fn columns(&self) -> &Columns {
        &self.columns
    }

    pub(super) fn check(&self, block: RowBlock) -> Result<BlockChecked, ValidateError> {
        let dataset = self.ctx.dataset;
        let mut findings = Findings::default();
        let mut keys = Vec::with_capacity(block.len());
        let mut batch = BatchBuilder::new(
            dataset,
            self.ctx.submission_id,
            &self.ctx.period.to_string(),
        );
        block.each(|i, number, cells| {
            let mut values = Vec::with_capacity(dataset.fields.len());
            let mut ok = self.read_cells(number, cells, &mut values, &mut findings);
            if let Some(fingerprint) = self.fingerprint(&values) {
                keys.push((fingerprint, number as u32, i));
            }
            ok &= self.check_sums(number, &values, &mut findings);
            self.check_references(number, &values, &mut findings);
            if ok && self.store && !findings.has_errors() {
                batch.push(number, self.county(&values), &values);
            }
        });
        let batch = if !self.store || findings.has_errors() || batch.is_empty() {
            None
        } else {
            Some(batch.finish()?)
        };
        Ok(BlockChecked {
            findings,
            keys,
            batch,
            block,
        })
    }

    /// Reads each field's cell into `values`; false when one of them has an error.
    fn read_cells<'c>(
        &self,
        number: usize,
        cells: &'c [Cell<'_>],
        values: &mut Vec<Value<'c>>,
        findings: &mut Findings,
    ) -> bool {
        findings.summary.rows += 1;
        let scope = self.scope();
        let mut row_ok = true;
        for (i, field) in self.ctx.dataset.fields.iter().enumerate() {
            let Some(col) = self.columns.index[i] else {
                values.push(Value::Null);
                continue;
            };
            let cell = cells.get(col).unwrap_or(&Cell::Empty);
            let at = At {
                row: Some(number),
                column: Some(&self.columns.label[i]),
                field: Some(field.name),
                value: None,
            };
            if !matches!(field.kind, Kind::IdNumber) && values::holds_id_number(cell) {
                // An ID number in any other column (swapped columns, a name field) must not
                // reach the lake; the report shows it masked.
                findings.add(
                    Problem::IdNumberOutOfPlace,
                    At {
                        value: Some(cell.text().as_ref()),
                        ..at
                    },
                );
                values.push(Value::Null);
                row_ok = false;
                continue;
            }
            if cell.is_blank() {
                if field.required {
                    findings.add(Problem::Required, at);
                    row_ok = false;
                }
                values.push(Value::Null);
                continue;
            }
            match values::read(&field.kind, cell, &scope) {
                Ok(value) => values.push(value),
                Err(problem) => {
                    let shown = values::shown(&field.kind, cell);
                    findings.add(
                        problem,
                        At {
                            value: Some(&shown),
                            ..at
                        },
                    );
                    values.push(Value::Null);
                    row_ok = false;
                }
            }
        }
        row_ok
    }

    /// The 6-digit county of the row, from its region field.
    fn county<'v>(&self, values: &'v [Value<'_>]) -> &'v str {
        match self.region.map(|i| &values[i]) {
            Some(Value::Text(code)) => code.get(..6).unwrap_or_default(),
            _ => "",
        }
    }

    /// The whole number read for field `name`, if any.
    fn int_of(&self, values: &[Value<'_>], name: &str) -> Option<i64> {
        let i = self
            .ctx
            .dataset
            .fields
            .iter()
            .position(|f| f.name == name)?;
        match values.get(i) {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        }
    }

    fn fingerprint(&self, values: &[Value<'_>]) -> Option<Fingerprint> {
        match self.key.map(|i| &values[i])? {
            Value::Pseudonym(digest) => {
                let mut first = [0u8; 16];
                first.copy_from_slice(&digest[..16]);
                Some(u128::from_le_bytes(first))
            }
            Value::Text(key) => Some(
                (u128::from(self.hashers.0.hash_one(key)) << 64)
                    | u128::from(self.hashers.1.hash_one(key)),
            ),
            _ => None,
        }
    }

    /// Reports row `number` as repeating the key of row `first`; `cells` are its cells.
    pub(super) fn duplicate(
        &self,
        number: usize,
        first: usize,
        cells: &[Cell<'_>],
        findings: &mut Findings,
    ) {
        let dataset = self.ctx.dataset;
        let shown: Option<Cow<'_, str>> = self.key.and_then(|i| {
            let field = &dataset.fields[i];
            let cell = cells.get(self.columns.index[i]?)?;
            match field.kind {
                // Never an ID number, not even masked: the first row shows where to look.
                Kind::IdNumber => None,
                _ => match values::read(&field.kind, cell, &self.scope()) {
                    Ok(Value::Text(key)) => Some(key),
                    _ => None,
                },
            }
        });
        findings.add(
            Problem::DuplicateKey { first_row: first },
            At {
                row: Some(number),
                column: self.key.map(|i| self.columns.label[i].as_str()),
                field: Some(dataset.key),
                value: shown.as_deref(),
            },
        );
    }

    fn scope(&self) -> Scope<'_> {
        Scope {
            region: self.ctx.region,
            inside: &self.inside,
            period_end: self.period_end,
            pseudonymizer: self.ctx.pseudonymizer,
        }
    }

    fn check_sums(&self, number: usize, values: &[Value<'_>], findings: &mut Findings) -> bool {
        let dataset = self.ctx.dataset;
        let mut ok = true;
        for rule in dataset.at_most {
            let int = |name: &str| self.int_of(values, name);
            let parts: Option<i64> = rule.parts.iter().map(|p| int(p)).sum();
            let total = int(rule.total);
            let (Some(parts), Some(total)) = (parts, total) else {
                continue;
            };
            if parts > total {
                let zh = |name: &'static str| dataset.field(name).map_or(name, |f| f.zh);
                let i = dataset.fields.iter().position(|f| f.name == rule.total);
                findings.add(
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
                        column: i.map(|i| self.columns.label[i].as_str()),
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
    fn check_references(&self, number: usize, values: &[Value<'_>], findings: &mut Findings) {
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
            if let Value::Text(code) = &values[i]
                && !known.contains(code.as_ref())
            {
                findings.add(
                    Problem::UnknownEnterprise,
                    At {
                        row: Some(number),
                        column: Some(&self.columns.label[i]),
                        field: Some(field.name),
                        value: Some(code),
                    },
                );
            }
        }
    }
}
