//! Accumulates checked rows into Arrow record batches of the dataset's table schema.

use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Int64Builder,
    ListBuilder, StringBuilder,
};
use deltalake::arrow::datatypes::{DataType, Field as ArrowField, SchemaRef};
use deltalake::arrow::error::ArrowError;
use deltalake::arrow::record_batch::RecordBatch;

use super::values::Value;
use crate::datasets::{AMOUNT_PRECISION, AMOUNT_SCALE, Dataset, Kind};

/// Rows per batch handed to the writer: large enough for Parquet, small enough for Lambda.
pub const BATCH_ROWS: usize = 8192;

enum Column {
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Int(Int64Builder),
    Cents(Decimal128Builder),
    List(ListBuilder<StringBuilder>),
}

impl Column {
    fn new(kind: &Kind) -> Column {
        match kind {
            Kind::Bool => Column::Bool(BooleanBuilder::new()),
            Kind::IdNumber => Column::Bytes(BinaryBuilder::new()),
            Kind::Date => Column::Date(Date32Builder::new()),
            Kind::Count { .. } => Column::Int(Int64Builder::new()),
            Kind::Amount => Column::Cents(
                Decimal128Builder::new()
                    .with_data_type(DataType::Decimal128(AMOUNT_PRECISION, AMOUNT_SCALE)),
            ),
            Kind::EnumList { .. } => Column::List(
                ListBuilder::new(StringBuilder::new()).with_field(Arc::new(ArrowField::new(
                    "item",
                    DataType::Utf8,
                    false,
                ))),
            ),
            _ => Column::Text(StringBuilder::new()),
        }
    }

    fn push(&mut self, value: &Value<'_>) {
        match (self, value) {
            (Column::Text(b), Value::Text(s)) => b.append_value(s),
            (Column::Bytes(b), Value::Pseudonym(digest)) => b.append_value(digest),
            (Column::Bool(b), Value::Bool(v)) => b.append_value(*v),
            (Column::Date(b), Value::Date(d)) => b.append_value(days_since_epoch(*d)),
            (Column::Int(b), Value::Int(n)) => b.append_value(*n),
            (Column::Cents(b), Value::Cents(n)) => b.append_value(*n),
            (Column::List(b), Value::List(items)) => {
                for item in items {
                    b.values().append_value(item);
                }
                b.append(true);
            }
            (Column::Text(b), _) => b.append_null(),
            (Column::Bytes(b), _) => b.append_null(),
            (Column::Bool(b), _) => b.append_null(),
            (Column::Date(b), _) => b.append_null(),
            (Column::Int(b), _) => b.append_null(),
            (Column::Cents(b), _) => b.append_null(),
            (Column::List(b), _) => b.append(false),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Text(b) => Arc::new(b.finish()),
            Column::Bytes(b) => Arc::new(b.finish()),
            Column::Bool(b) => Arc::new(b.finish()),
            Column::Date(b) => Arc::new(b.finish()),
            Column::Int(b) => Arc::new(b.finish()),
            Column::Cents(b) => Arc::new(b.finish()),
            Column::List(b) => Arc::new(b.finish()),
        }
    }
}

pub fn days_since_epoch(d: chrono::NaiveDate) -> i32 {
    (d - chrono::NaiveDate::default()).num_days() as i32
}

pub struct BatchBuilder {
    schema: SchemaRef,
    columns: Vec<Column>,
    submission: StringBuilder,
    source_row: Int64Builder,
    period: StringBuilder,
    county: StringBuilder,
    submission_id: String,
    period_label: String,
    rows: usize,
}

impl BatchBuilder {
    pub fn new(dataset: &Dataset, submission_id: &str, period: &str) -> BatchBuilder {
        BatchBuilder {
            schema: dataset.schema(),
            columns: dataset
                .fields
                .iter()
                .map(|f| Column::new(&f.kind))
                .collect(),
            submission: StringBuilder::new(),
            source_row: Int64Builder::new(),
            period: StringBuilder::new(),
            county: StringBuilder::new(),
            submission_id: submission_id.to_string(),
            period_label: period.to_string(),
            rows: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds a row whose values follow the dataset's field order.
    pub fn push(&mut self, source_row: usize, county: &str, values: &[Value<'_>]) {
        for (column, value) in self.columns.iter_mut().zip(values) {
            column.push(value);
        }
        self.submission.append_value(&self.submission_id);
        self.source_row.append_value(source_row as i64);
        self.period.append_value(&self.period_label);
        self.county.append_value(county);
        self.rows += 1;
    }

    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut arrays: Vec<ArrayRef> = self.columns.iter_mut().map(Column::finish).collect();
        arrays.push(Arc::new(self.submission.finish()));
        arrays.push(Arc::new(self.source_row.finish()));
        arrays.push(Arc::new(self.period.finish()));
        arrays.push(Arc::new(self.county.finish()));
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
    }
}
