//! Tables in the formats data people use: JSON (default), CSV (UTF-8 with BOM so Excel shows
//! Chinese, formula-like text neutralised) and Parquet, chosen by `?format=` or `Accept`.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use deltalake::arrow::array::{ArrayRef, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::arrow::json::ReaderBuilder;
use deltalake::arrow::json::reader::infer_json_schema_from_iterator;
use deltalake::parquet::arrow::ArrowWriter;
use serde::Serialize;
use serde_json::{Map, Value};

use super::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Parquet,
}

impl Format {
    pub const PARQUET_TYPE: &'static str = "application/vnd.apache.parquet";

    /// `?format=` wins; otherwise the first of the `Accept` types we serve; JSON by default.
    pub fn negotiate(format: Option<&str>, headers: &HeaderMap) -> Result<Format, ApiError> {
        if let Some(f) = format {
            return match f {
                "json" => Ok(Format::Json),
                "csv" => Ok(Format::Csv),
                "parquet" => Ok(Format::Parquet),
                other => Err(ApiError::BadFormat(other.to_string())),
            };
        }
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        for item in accept.split(',') {
            match item.split(';').next().unwrap_or("").trim() {
                "text/csv" => return Ok(Format::Csv),
                "application/vnd.apache.parquet" | "application/x-parquet" => {
                    return Ok(Format::Parquet);
                }
                "application/json" | "application/*" | "*/*" => return Ok(Format::Json),
                _ => {}
            }
        }
        Ok(Format::Json)
    }
}

/// Rows with a fixed column order.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Map<String, Value>>,
}

impl Table {
    /// Serialises `rows` and keeps `columns`, in that order.
    pub fn from_rows<T: Serialize>(rows: &[T], columns: &[&'static str]) -> Table {
        let rows = rows
            .iter()
            .map(|r| match serde_json::to_value(r) {
                Ok(Value::Object(map)) => columns
                    .iter()
                    .map(|c| (c.to_string(), map.get(*c).cloned().unwrap_or(Value::Null)))
                    .collect(),
                _ => Map::new(),
            })
            .collect();
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        }
    }

    /// A table of rows already shaped as objects (query results).
    pub fn from_maps(rows: Vec<Map<String, Value>>, columns: Vec<String>) -> Table {
        Table { columns, rows }
    }

    /// Excel opens UTF-8 with a BOM as UTF-8; text starting with = + - @ (or a tab or CR) is
    /// prefixed with `'` so that no cell is ever read as a formula. Numbers stay numbers.
    pub fn to_csv(&self) -> Vec<u8> {
        let mut out = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
        let mut write = || -> Result<(), csv::Error> {
            out.write_record(&self.columns)?;
            for row in &self.rows {
                out.write_record(self.columns.iter().map(|c| csv_cell(row.get(c))))?;
            }
            out.flush()?;
            Ok(())
        };
        // Writing into memory cannot fail.
        let _ = write();
        out.into_inner().unwrap_or_default()
    }

    pub fn to_parquet(&self) -> Result<Vec<u8>, ApiError> {
        let internal = |e: &dyn std::fmt::Display| ApiError::Internal(e.to_string());
        let values: Vec<Value> = self.rows.iter().cloned().map(Value::Object).collect();
        let inferred = infer_json_schema_from_iterator(values.iter().map(|v| Ok(v.clone())))
            .map_err(|e| internal(&e))?;
        // Columns in the declared order; all-null columns as text, which Parquet readers like.
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| match inferred.field_with_name(c) {
                Ok(f) if f.data_type() != &DataType::Null => f.as_ref().clone().with_nullable(true),
                _ => Field::new(c.as_str(), DataType::Utf8, true),
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let batch = if values.is_empty() {
            RecordBatch::new_empty(schema.clone())
        } else {
            let mut decoder = ReaderBuilder::new(schema.clone())
                .build_decoder()
                .map_err(|e| internal(&e))?;
            decoder.serialize(&values).map_err(|e| internal(&e))?;
            decoder
                .flush()
                .map_err(|e| internal(&e))?
                .unwrap_or_else(|| RecordBatch::new_empty(schema.clone()))
        };
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(a, f)| cast(a, f.data_type()))
            .collect::<Result<_, _>>()
            .map_err(|e| internal(&e))?;
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| internal(&e))?;
        let mut buffer = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut buffer, schema, None).map_err(|e| internal(&e))?;
        writer.write(&batch).map_err(|e| internal(&e))?;
        writer.close().map_err(|e| internal(&e))?;
        Ok(buffer)
    }

    /// The table as the negotiated format; JSON as `json` (the endpoint's own envelope).
    pub fn respond<T: Serialize>(
        self,
        format: Format,
        json: T,
        name: &str,
    ) -> Result<Response, ApiError> {
        let attachment = |ext: &str| format!("inline; filename=\"{name}.{ext}\"");
        Ok(match format {
            Format::Json => axum::Json(json).into_response(),
            Format::Csv => (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, attachment("csv")),
                ],
                self.to_csv(),
            )
                .into_response(),
            Format::Parquet => (
                [
                    (header::CONTENT_TYPE, Format::PARQUET_TYPE.to_string()),
                    (header::CONTENT_DISPOSITION, attachment("parquet")),
                ],
                self.to_parquet()?,
            )
                .into_response(),
        })
    }
}

fn csv_cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => jiazheng_core::sheets::inert(s).into_owned(),
        Some(Value::Array(items)) => jiazheng_core::sheets::inert(
            &items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(";"),
        )
        .into_owned(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> Table {
        let rows = vec![
            json!({"name": "=HYPERLINK(\"http://x\")", "value": -3.5, "list": ["a", "b"], "none": null}),
            json!({"name": "乌兰浩特市", "value": 61, "list": [], "none": null}),
        ];
        Table::from_rows(&rows, &["name", "value", "list", "none"])
    }

    #[test]
    fn csv_has_bom_and_no_formulas() {
        let csv = String::from_utf8(table().to_csv()).unwrap();
        assert!(csv.starts_with('\u{feff}'));
        assert!(csv.contains("'=HYPERLINK"));
        assert!(csv.contains(",-3.5,"), "numbers are not neutralised: {csv}");
        assert!(csv.contains("乌兰浩特市,61,,"));
        assert!(csv.contains("a;b"));
    }

    #[test]
    fn parquet_round_trips() {
        let bytes = table().to_parquet().unwrap();
        let reader =
            deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes::Bytes::from(bytes),
            )
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(batches[0].num_rows(), 2);
        let names: Vec<String> = batches[0]
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["name", "value", "list", "none"]);
    }

    #[test]
    fn negotiation() {
        let mut headers = HeaderMap::new();
        assert_eq!(Format::negotiate(None, &headers).unwrap(), Format::Json);
        headers.insert(header::ACCEPT, "text/html, text/csv;q=0.9".parse().unwrap());
        assert_eq!(Format::negotiate(None, &headers).unwrap(), Format::Csv);
        assert_eq!(
            Format::negotiate(Some("parquet"), &headers).unwrap(),
            Format::Parquet
        );
        assert!(Format::negotiate(Some("xls"), &headers).is_err());
    }
}
