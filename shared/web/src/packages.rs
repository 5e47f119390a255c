//! `/v1/packages/{period}.zip`: a half-year's release as a Frictionless data package — every
//! open dataset and the indicator values as CSV (UTF-8 with BOM) and Parquet, the regions, and
//! a `datapackage.json` whose Table Schemas come from the declarations (types, enums, Chinese
//! titles, primary keys, foreign keys to the regions). The same encoder as every other
//! download writes the files, so a package says exactly what the API says.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use deltalake::arrow::array::{ArrayRef, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef};
use serde_json::{Value, json};
use zip::write::SimpleFileOptions;

use super::records::{RecordQuery, query_rows};
use super::tabular::Table;
use super::{ApiError, AppState, Conditional, Source, Stamp};
use jiazheng_core::datasets::{self, Dataset, Kind, Openness, columns};
use jiazheng_core::indicators::CATALOGUE;
use jiazheng_core::indicators::snapshot::Row;
use jiazheng_core::lake::names;
use jiazheng_core::periods::Period;
use jiazheng_core::regions::{Level, RegionTree};

/// One half-year's open data as a zip: `datapackage.json`, `data/*.csv` and `data/*.parquet`.
#[utoipa::path(get, path = "/v1/packages/{file}", tag = "datasets",
    params(("file" = String, Path, description = "`{period}.zip`", example = "2023H2.zip")),
    responses((status = 200, description = "The data package", content((Vec<u8> = "application/zip")))))]
pub async fn package(
    State(state): State<AppState>,
    Path(file): Path<String>,
    conditional: Conditional,
) -> Result<Response, ApiError> {
    let period = file
        .strip_suffix(".zip")
        .ok_or_else(|| ApiError::BadFormat(file.clone()))?;
    let period: Period = super::params::value("period", period)?;
    let (published, tree) = tokio::try_join!(state.published(), state.regions())?;
    if !published.periods().contains(&period) {
        return Err(ApiError::NothingPublished);
    }
    let open: Vec<&'static Dataset> = datasets::ALL
        .iter()
        .filter(|d| d.openness == Openness::Records)
        .copied()
        .collect();
    let tables: Vec<String> = open.iter().map(|d| names::dataset(d.name)).collect();
    let refs: Vec<&str> = tables.iter().map(String::as_str).collect();
    let versions = state.lake().versions(&refs).await?;
    let mut sources = vec![
        Source::Code,
        Source::Snapshot(published.version),
        Source::Regions(tree.version),
    ];
    for dataset in &open {
        let version = versions.get(&names::dataset(dataset.name)).copied();
        sources.push(Source::Table(dataset.name, version.unwrap_or(-1)));
    }
    let stamp = Stamp::all(sources);
    if let Some(unchanged) = conditional.unchanged(&stamp) {
        return Ok(unchanged);
    }

    let country = tree.country().ok_or(ApiError::NothingPublished)?.clone();
    // Written as it is read: one table at a time goes into the zip and out to the client, so a
    // package costs the largest table's encoding, not the whole release. The descriptor goes
    // last (a zip's members may come in any order) because it describes what was written.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(2);
    let publisher = state.publisher.clone();
    let version = published.version;
    tokio::spawn(async move {
        let mut package = Package::new(tx.clone());
        let written = async {
            for dataset in open {
                let query = RecordQuery::default();
                let (table, _) =
                    query_rows(&state, dataset, period, &query, &HashMap::new(), None, None)
                        .await?;
                package
                    .add(dataset.name, dataset_schema(dataset, &table), &table)
                    .await?;
            }
            let rows = published
                .query(
                    &tree,
                    &CATALOGUE.iter().collect::<Vec<_>>(),
                    period,
                    &country,
                    &Level::PUBLISHED,
                )
                .rows;
            let values = Table::from_rows(&Row::schema(), &rows)?;
            drop(rows);
            package
                .add("indicator_values", values_schema(&values), &values)
                .await?;
            drop(values);
            let regions = regions_table(&tree)?;
            package.add("regions", regions_schema(), &regions).await?;
            let descriptor = json!({
                "name": format!("jiazheng-{}", period.to_string().to_lowercase()),
                "title": format!("家政进社区开放数据 {period} · Home services in communities, {period}"),
                "description": "各旗县（市、区）本半年报送的开放数据集、全部指标和区划。Every open dataset the counties reported for the half-year, every indicator value, and the regions.",
                "licenses": [{"name": publisher.licence_name(), "path": publisher.licence}],
                "contributors": [{"title": publisher.name, "role": "publisher", "email": publisher.email}],
                "version": version.to_string(),
                "resources": package.resources,
            });
            package.finish(&descriptor).await
        };
        if let Err(e) = written.await {
            // The status is sent already: the client sees the zip cut short.
            tracing::error!(error = %e, %period, "writing a package failed");
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    // Fused: the compression layer polls once more after the end.
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let body = axum::body::Body::from_stream(futures::StreamExt::fuse(chunks));
    Ok((
        Extension(stamp),
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"jiazheng-{period}.zip\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Bytes the zip writer has produced and not yet sent.
#[derive(Clone, Default)]
struct Pending(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("a writer panicked"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type Chunks = tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>;

/// A package being written to the client: the zip, what it has produced, and the resources
/// described so far.
struct Package {
    zip: zip::ZipWriter<zip::write::StreamWriter<Pending>>,
    pending: Pending,
    out: Chunks,
    resources: Vec<Value>,
}

/// Bytes fed to the zip between two sends: what a package holds beyond the table at hand.
const SLICE: usize = 256 * 1024;

impl Package {
    fn new(out: Chunks) -> Package {
        let pending = Pending::default();
        Package {
            zip: zip::ZipWriter::new_stream(pending.clone()),
            pending,
            out,
            resources: Vec::new(),
        }
    }

    /// A table as a CSV resource (described by `schema`) and the same rows as Parquet.
    async fn add(&mut self, name: &str, schema: Value, table: &Table) -> Result<(), ApiError> {
        let csv = format!("data/{name}.csv");
        let parquet = format!("data/{name}.parquet");
        self.resources.push(json!({
            "name": name,
            "path": csv,
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8-sig",
            "schema": schema,
        }));
        self.resources.push(json!({
            "name": format!("{name}-parquet"),
            "path": parquet,
            "format": "parquet",
            "mediatype": "application/vnd.apache.parquet",
            "schema": schema,
        }));
        self.put(&csv, &table.to_csv()?).await?;
        self.put(&parquet, &table.to_parquet()?).await
    }

    /// One member, fed to the zip a slice at a time and sent on as it is compressed.
    async fn put(&mut self, path: &str, bytes: &[u8]) -> Result<(), ApiError> {
        let internal = |e: &dyn std::fmt::Display| ApiError::Internal(e.to_string());
        // Parquet is compressed already.
        let method = if path.ends_with(".parquet") {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .large_file(bytes.len() as u64 >= u64::from(u32::MAX));
        self.zip
            .start_file(path, options)
            .map_err(|e| internal(&e))?;
        for slice in bytes.chunks(SLICE) {
            self.zip.write_all(slice).map_err(|e| internal(&e))?;
            self.send().await?;
        }
        Ok(())
    }

    /// Sends what the zip has produced; waits while the client is slower than the package.
    async fn send(&self) -> Result<(), ApiError> {
        send(&self.pending, &self.out).await
    }

    async fn finish(mut self, descriptor: &Value) -> Result<(), ApiError> {
        let internal = |e: &dyn std::fmt::Display| ApiError::Internal(e.to_string());
        let json = serde_json::to_vec_pretty(descriptor).map_err(|e| internal(&e))?;
        self.put("datapackage.json", &json).await?;
        let Package {
            zip, pending, out, ..
        } = self;
        zip.finish().map_err(|e| internal(&e))?;
        send(&pending, &out).await
    }
}

async fn send(pending: &Pending, out: &Chunks) -> Result<(), ApiError> {
    let chunk = std::mem::take(
        &mut *pending
            .0
            .lock()
            .map_err(|_| ApiError::Internal("a writer panicked".into()))?,
    );
    if chunk.is_empty() {
        return Ok(());
    }
    out.send(Ok(bytes::Bytes::from(chunk)))
        .await
        .map_err(|_| ApiError::Internal("the client went away".into()))
}

/// The Table Schema type of a column as the encoder writes it (lists as `a;b` text).
fn field_type(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Boolean => "boolean",
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => "integer",
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => "integer",
        DataType::Float32 | DataType::Float64 | DataType::Decimal128(..) => "number",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Dictionary(_, inner) => field_type(inner),
        _ => "string",
    }
}

/// An open dataset's schema: each column's type from the table, its title, meaning,
/// requiredness and allowed values from the declarations.
fn dataset_schema(dataset: &Dataset, table: &Table) -> Value {
    let fields: Vec<Value> = table
        .schema()
        .fields()
        .iter()
        .map(|column| {
            let name = column.name().as_str();
            let mut field = json!({"name": name, "type": field_type(column.data_type())});
            match dataset.field(name) {
                Some(declared) => {
                    field["title"] = json!(declared.zh);
                    field["description"] =
                        json!(format!("{} / {}", declared.doc_zh, declared.doc_en));
                    let mut constraints = serde_json::Map::new();
                    if declared.required {
                        constraints.insert("required".into(), json!(true));
                    }
                    if let Kind::Enum { choices } = declared.kind {
                        let codes: Vec<&str> = choices.iter().map(|c| c.code).collect();
                        constraints.insert("enum".into(), json!(codes));
                    }
                    if let Kind::EnumList { .. } = declared.kind {
                        field["description"] = json!(format!(
                            "{}（以 ; 分隔） / {} (separated by ;)",
                            declared.doc_zh, declared.doc_en
                        ));
                    }
                    if !constraints.is_empty() {
                        field["constraints"] = Value::Object(constraints);
                    }
                }
                None => {
                    let (zh, en) = match name {
                        columns::COUNTY => ("旗县（市、区）代码", "The county the row belongs to"),
                        columns::PERIOD => ("报告期", "The half-year"),
                        columns::SUBMISSION => ("报送编号", "The submission the row came from"),
                        _ => ("", ""),
                    };
                    field["title"] = json!(zh);
                    field["description"] = json!(en);
                    field["constraints"] = json!({"required": true});
                }
            }
            field
        })
        .collect();
    json!({
        "fields": fields,
        "primaryKey": [columns::COUNTY, dataset.key],
        "foreignKeys": [{"fields": [columns::COUNTY], "reference": {"resource": "regions", "fields": ["code"]}}],
    })
}

fn values_schema(values: &Table) -> Value {
    let fields: Vec<Value> = values
        .schema()
        .fields()
        .iter()
        .map(|c| json!({"name": c.name(), "type": field_type(c.data_type())}))
        .collect();
    json!({
        "fields": fields,
        "missingValues": [""],
        "foreignKeys": [{"fields": ["region", "level"], "reference": {"resource": "regions", "fields": ["code", "level"]}}],
    })
}

fn regions_schema() -> Value {
    json!({
        "fields": [
            {"name": "code", "type": "string", "title": "区划代码", "constraints": {"required": true}},
            {"name": "name", "type": "string", "title": "名称", "constraints": {"required": true}},
            {"name": "level", "type": "string", "title": "级别",
             "constraints": {"required": true, "enum": Level::PUBLISHED.iter().map(|l| l.as_str()).collect::<Vec<_>>()}},
            {"name": "parent", "type": "string", "title": "上级区划代码"},
        ],
        "primaryKey": ["code", "level"],
    })
}

/// The published levels of the region tree (country to streets): what values and rows name.
fn regions_table(tree: &RegionTree) -> Result<Table, ApiError> {
    let published: Vec<_> = tree
        .iter()
        .filter(|r| Level::PUBLISHED.contains(&r.level))
        .collect();
    let parent = |r: &&jiazheng_core::regions::Region| {
        r.parent_prefix()
            .and_then(|p| tree.get(p))
            .map(|p| p.code())
    };
    let text = |name: &str, nullable| ArrowField::new(name, DataType::Utf8, nullable);
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        text("code", false),
        text("name", false),
        text("level", false),
        text("parent", true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            published.iter().map(|r| r.code()),
        )),
        Arc::new(StringArray::from_iter_values(
            published.iter().map(|r| r.name.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            published.iter().map(|r| r.level.as_str()),
        )),
        Arc::new(StringArray::from_iter(published.iter().map(parent))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Table::from_batches(schema, vec![batch]))
}
