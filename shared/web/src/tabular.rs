//! Tables in the formats data people use: JSON (default), CSV (UTF-8 with BOM so Excel shows
//! Chinese, formula-like text neutralised) and Parquet, chosen by `?format=` or `Accept`.

use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use deltalake::arrow::array::{Array, ArrayRef, AsArray, GenericListArray, RecordBatch};
use deltalake::arrow::datatypes::{DataType, Float64Type, SchemaRef};
use deltalake::arrow::util::display::{ArrayFormatter, FormatOptions};
use deltalake::parquet::arrow::ArrowWriter;
use jiazheng_core::lake::codec;
use jiazheng_core::sheets;
use serde::Serialize;
use serde_json::{Map, Number, Value};

use super::ApiError;

/// A representation of a table, as `?format=` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
    Parquet,
}

impl Format {
    pub const PARQUET_TYPE: &'static str = "application/vnd.apache.parquet";

    /// A file extension (`2023H2.csv`) as a format.
    pub fn of_extension(extension: &str) -> Result<Format, ApiError> {
        super::params::value("format", extension)
    }

    /// `?format=` wins; otherwise the first of the `Accept` types we serve; JSON by default.
    pub fn negotiate(format: Option<Format>, headers: &HeaderMap) -> Format {
        if let Some(f) = format {
            return f;
        }
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        for item in accept.split(',') {
            match item.split(';').next().unwrap_or("").trim() {
                "text/csv" => return Format::Csv,
                "application/vnd.apache.parquet" | "application/x-parquet" => {
                    return Format::Parquet;
                }
                "application/json" | "application/*" | "*/*" => return Format::Json,
                _ => {}
            }
        }
        Format::Json
    }
}

/// Rows as Arrow batches of one schema: the one encoder every endpoint and download uses, so
/// JSON, CSV and Parquet show the same columns in the same order, and Parquet keeps the
/// declared types (dates as dates, counts as integers).
#[derive(Debug, Clone)]
pub struct Table {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl Table {
    /// Query results as they came from DataFusion.
    pub fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Table {
        Table { schema, batches }
    }

    /// Rows of a type that declares `schema` (through the one struct⇄Arrow codec).
    pub fn from_rows<T: Serialize>(schema: &SchemaRef, rows: &[T]) -> Result<Table, ApiError> {
        let batch = codec::encode(schema, rows)?;
        Ok(Table::from_batches(schema.clone(), vec![batch]))
    }

    /// The first `n` rows.
    pub fn head(self, n: usize) -> Table {
        let mut left = n;
        let batches = self
            .batches
            .into_iter()
            .filter_map(|b| {
                let take = b.num_rows().min(left);
                left -= take;
                (take > 0).then(|| b.slice(0, take))
            })
            .collect();
        Table {
            schema: self.schema,
            batches,
        }
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The rows as JSON objects (for the endpoints' own envelopes).
    pub fn to_json_rows(&self) -> Result<Vec<Map<String, Value>>, ApiError> {
        let mut rows: Vec<Map<String, Value>> = codec::decode(&self.batches)?;
        // Doubles are set from the arrays: read back from JSON (serde_json's default parser)
        // a 17-digit one can come back one unit in the last place off (see `codec::exact`).
        let mut offset = 0;
        for batch in &self.batches {
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                if let Some(doubles) = column.as_primitive_opt::<Float64Type>() {
                    for (i, double) in doubles.iter().enumerate() {
                        if let (Some(row), Some(number)) =
                            (rows.get_mut(offset + i), double.and_then(Number::from_f64))
                        {
                            row.insert(field.name().clone(), Value::Number(number));
                        }
                    }
                }
            }
            offset += batch.num_rows();
        }
        Ok(rows)
    }

    /// Excel opens UTF-8 with a BOM as UTF-8; text starting with = + - @ (or a tab or CR) is
    /// neutralised by [`sheets::inert`] so that no cell is ever read as a formula. Numbers
    /// stay numbers; a list is its items joined by `;`.
    pub fn to_csv(&self) -> Result<Vec<u8>, ApiError> {
        let mut out = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
        out.write_record(self.schema.fields().iter().map(|f| f.name()))
            .map_err(internal)?;
        let options = FormatOptions::default().with_null("");
        for batch in &self.batches {
            let cells: Vec<Cells<'_>> = batch
                .columns()
                .iter()
                .map(|array| Cells::new(array, &options))
                .collect::<Result<_, _>>()?;
            for row in 0..batch.num_rows() {
                out.write_record(cells.iter().map(|c| c.at(row)))
                    .map_err(internal)?;
            }
        }
        out.into_inner().map_err(internal)
    }

    pub fn to_parquet(&self) -> Result<Vec<u8>, ApiError> {
        let mut buffer = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut buffer, self.schema.clone(), None).map_err(internal)?;
        for batch in &self.batches {
            writer.write(batch).map_err(internal)?;
        }
        writer.close().map_err(internal)?;
        Ok(buffer)
    }

    /// The table as the negotiated format; JSON as the endpoint's own envelope, built by
    /// `json` only when JSON was asked for.
    pub fn respond<T: Serialize>(
        self,
        format: Format,
        json: impl FnOnce(&Table) -> Result<T, ApiError>,
        name: &str,
    ) -> Result<Response, ApiError> {
        let attachment = |ext: &str| format!("inline; filename=\"{name}.{ext}\"");
        Ok(match format {
            Format::Json => axum::Json(json(&self)?).into_response(),
            Format::Csv => (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, attachment("csv")),
                ],
                self.to_csv()?,
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

    /// Rows of a type that declares `schema`, as the negotiated format: JSON straight from
    /// the rows (the envelope `json` builds), CSV and Parquet through Arrow, which only they
    /// need.
    pub fn respond_rows<R: Serialize, T: Serialize>(
        format: Format,
        schema: &SchemaRef,
        rows: Vec<R>,
        json: impl FnOnce(Vec<R>) -> T,
        name: &str,
    ) -> Result<Response, ApiError> {
        match format {
            Format::Json => Ok(axum::Json(json(rows)).into_response()),
            Format::Csv | Format::Parquet => {
                Table::from_rows(schema, &rows)?.respond(format, |_| Ok(()), name)
            }
        }
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// One column's cells as CSV text.
enum Cells<'a> {
    /// Numbers, booleans, dates: as Arrow writes them.
    Plain(ArrayFormatter<'a>),
    /// Text: guarded against formulas.
    Text(ArrayFormatter<'a>),
    /// A list of text: items joined by `;`, guarded.
    List(&'a GenericListArray<i32>, FormatOptions<'a>),
}

impl<'a> Cells<'a> {
    fn new(array: &'a ArrayRef, options: &FormatOptions<'a>) -> Result<Cells<'a>, ApiError> {
        let text = |t: &DataType| {
            matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
                || matches!(t, DataType::Dictionary(_, v) if matches!(**v, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View))
        };
        Ok(match array.data_type() {
            DataType::List(_) => Cells::List(array.as_list::<i32>(), options.clone()),
            t => {
                let formatter =
                    ArrayFormatter::try_new(array.as_ref(), options).map_err(internal)?;
                if text(t) {
                    Cells::Text(formatter)
                } else {
                    Cells::Plain(formatter)
                }
            }
        })
    }

    fn at(&self, row: usize) -> String {
        match self {
            Cells::Plain(f) => f.value(row).to_string(),
            Cells::Text(f) => sheets::inert(&f.value(row).to_string()).into_owned(),
            Cells::List(list, options) => {
                if list.is_null(row) {
                    return String::new();
                }
                let items = list.value(row);
                let joined = match ArrayFormatter::try_new(items.as_ref(), options) {
                    Ok(f) => (0..items.len())
                        .map(|i| f.value(i).to_string())
                        .collect::<Vec<_>>()
                        .join(";"),
                    Err(_) => String::new(),
                };
                sheets::inert(&joined).into_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use deltalake::arrow::datatypes::{Field, Schema};

    use super::*;

    #[derive(Serialize)]
    struct Row {
        name: &'static str,
        value: f64,
        list: Vec<&'static str>,
        none: Option<String>,
        opened: Option<&'static str>,
    }

    fn table() -> Table {
        let items = Arc::new(Field::new("item", DataType::Utf8, false));
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("value", DataType::Float64, false),
            Field::new("list", DataType::List(items), false),
            Field::new("none", DataType::Utf8, true),
            Field::new("opened", DataType::Date32, true),
        ]));
        let rows = [
            Row {
                name: "=HYPERLINK(\"http://x\")",
                value: -3.5,
                list: vec!["a", "+b"],
                none: None,
                opened: Some("2023-07-01"),
            },
            Row {
                name: "乌兰浩特市",
                value: 61.0,
                list: vec![],
                none: None,
                opened: None,
            },
            Row {
                name: "\tcmd",
                value: 1.0,
                list: vec![],
                none: None,
                opened: None,
            },
        ];
        Table::from_rows(&schema, &rows).unwrap()
    }

    #[test]
    fn json_rows_keep_every_bit_of_a_double() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, true)]));
        #[derive(Serialize)]
        struct X {
            x: Option<f64>,
        }
        let doubles: Vec<Option<f64>> = (1..500)
            .map(|i| Some(100.0 - f64::from(i) / 7.0))
            .chain([None, Some(100.0 - 10.0 / 11.0 * 100.0)])
            .collect();
        let rows: Vec<X> = doubles.iter().map(|&x| X { x }).collect();
        let table = Table::from_rows(&schema, &rows).unwrap().head(1000);
        let back: Vec<Option<f64>> = table
            .to_json_rows()
            .unwrap()
            .iter()
            .map(|row| row.get("x").and_then(Value::as_f64))
            .collect();
        assert_eq!(back, doubles);
    }

    #[test]
    fn csv_has_bom_and_no_formulas() {
        let csv = String::from_utf8(table().to_csv().unwrap()).unwrap();
        assert!(csv.starts_with('\u{feff}'));
        assert!(csv.contains("'=HYPERLINK"));
        assert!(csv.contains(",-3.5,"), "numbers are not neutralised: {csv}");
        assert!(csv.contains("a;+b,,2023-07-01"), "{csv}");
        assert!(csv.contains("乌兰浩特市,61.0,,,"), "{csv}");
        assert!(
            csv.contains("'\tcmd"),
            "a leading tab is guarded too: {csv}"
        );
    }

    #[test]
    fn parquet_keeps_the_declared_types() {
        let bytes = table().to_parquet().unwrap();
        let reader =
            deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes::Bytes::from(bytes),
            )
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(batches[0].num_rows(), 3);
        let schema = batches[0].schema();
        let types: Vec<(&str, &DataType)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(types[0], ("name", &DataType::Utf8));
        assert_eq!(types[1], ("value", &DataType::Float64));
        assert_eq!(types[4], ("opened", &DataType::Date32));
    }

    #[test]
    fn negotiation() {
        let mut headers = HeaderMap::new();
        assert_eq!(Format::negotiate(None, &headers), Format::Json);
        headers.insert(header::ACCEPT, "text/html, text/csv;q=0.9".parse().unwrap());
        assert_eq!(Format::negotiate(None, &headers), Format::Csv);
        assert_eq!(
            Format::negotiate(Some(Format::Parquet), &headers),
            Format::Parquet
        );
        assert_eq!(Format::of_extension("csv").unwrap(), Format::Csv);
        assert_eq!(
            Format::of_extension("xls").unwrap_err().kind(),
            "bad-format"
        );
    }
}
