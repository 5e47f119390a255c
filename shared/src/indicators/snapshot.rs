//! The published snapshot: every indicator value of every period, a small Delta table
//! partitioned by period. Refreshes replace one period atomically; the API reads nothing else.

use std::sync::Arc;

use deltalake::arrow::array::{Array, Float64Array, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::datafusion::prelude::{col, lit};
use serde::Serialize;

use super::compute::{Computed, Value};
use crate::lake::{Lake, LakeError, names, read};
use crate::periods::Period;
use crate::regions::{Level, Region};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("indicator", DataType::Utf8, false),
        Field::new("breakdown", DataType::Utf8, true),
        Field::new("region", DataType::Utf8, false),
        Field::new("prefix", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("level", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
        Field::new("numerator", DataType::Float64, false),
        Field::new("denominator", DataType::Float64, true),
        Field::new("period", DataType::Utf8, false),
    ]))
}

const CHUNK: usize = 64 * 1024;

fn to_batch(period: &str, values: &[Value]) -> Result<RecordBatch, LakeError> {
    fn text<'v>(values: &'v [Value], f: impl Fn(&'v Value) -> &'v str) -> Arc<dyn Array> {
        Arc::new(StringArray::from_iter_values(values.iter().map(f)))
    }
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            text(values, |v| v.indicator),
            Arc::new(StringArray::from_iter(values.iter().map(|v| v.breakdown))),
            text(values, |v| &v.code),
            text(values, |v| &v.prefix),
            text(values, |v| &v.name),
            text(values, |v| v.level.as_str()),
            Arc::new(Float64Array::from_iter(values.iter().map(|v| v.value))),
            Arc::new(Float64Array::from_iter_values(
                values.iter().map(|v| v.numerator),
            )),
            Arc::new(Float64Array::from_iter(
                values.iter().map(|v| v.denominator),
            )),
            Arc::new(StringArray::from_iter_values(values.iter().map(|_| period))),
        ],
    )?)
}

/// Replaces the period's values in the snapshot; returns the snapshot's new version.
pub async fn publish(lake: &Lake, computed: &Computed) -> Result<i64, LakeError> {
    let period = computed.period.to_string();
    let partitions = vec!["period".to_string()];
    let mut staged = lake.stage(names::INDICATOR_VALUES, &schema(), &partitions)?;
    for chunk in computed.values.chunks(CHUNK) {
        staged.write(to_batch(&period, chunk)?).await?;
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert("jiazheng.period".into(), period.clone().into());
    metadata.insert(
        "jiazheng.sources".into(),
        serde_json::to_value(&computed.sources)?,
    );
    staged
        .commit_replacing(&[("period", vec![period])], metadata)
        .await
}

/// One value as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub region: String,
    pub name: String,
    pub level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<String>,
    pub value: Option<f64>,
    pub numerator: f64,
    pub denominator: Option<f64>,
}

/// A read of the snapshot and the version it came from (the API's ETag).
#[derive(Debug, Clone)]
pub struct Read {
    pub version: i64,
    pub rows: Vec<Row>,
}

/// The values of one indicator in a period for every region at `level` inside `within`,
/// filtered inside DataFusion (the period is a partition, so other periods are not read).
pub async fn query(
    lake: &Lake,
    indicator: &str,
    period: Period,
    within: &Region,
    level: Level,
) -> Result<Option<Read>, LakeError> {
    let (ctx, versions) = lake.session(&[names::INDICATOR_VALUES]).await?;
    let Some(version) = versions.get(names::INDICATOR_VALUES).copied() else {
        return Ok(None);
    };
    let batches = ctx
        .table("indicator_values")
        .await?
        .filter(
            col("period")
                .eq(lit(period.to_string()))
                .and(col("indicator").eq(lit(indicator)))
                .and(col("level").eq(lit(level.as_str())))
                .and(col("prefix").like(lit(format!("{}%", within.prefix)))),
        )?
        .select_columns(&[
            "region",
            "name",
            "level",
            "breakdown",
            "value",
            "numerator",
            "denominator",
            "prefix",
        ])?
        .sort(vec![
            col("prefix").sort(true, false),
            col("breakdown").sort(true, true),
        ])?
        .collect()
        .await?;
    let mut rows = Vec::new();
    for batch in &batches {
        let (region, name) = (read::text(batch, 0)?, read::text(batch, 1)?);
        let (level, breakdown) = (read::text(batch, 2)?, read::text(batch, 3)?);
        let value = read::float(batch, 4)?;
        let numerator = read::float(batch, 5)?;
        let denominator = read::float(batch, 6)?;
        for i in 0..batch.num_rows() {
            rows.push(Row {
                region: region.value(i).to_string(),
                name: name.value(i).to_string(),
                level: Level::parse(level.value(i)).unwrap_or(Level::Country),
                breakdown: (!breakdown.is_null(i)).then(|| breakdown.value(i).to_string()),
                value: (!value.is_null(i)).then(|| value.value(i)),
                numerator: numerator.value(i),
                denominator: (!denominator.is_null(i)).then(|| denominator.value(i)),
            });
        }
    }
    Ok(Some(Read { version, rows }))
}

/// The periods that have published values, oldest first.
pub async fn periods(lake: &Lake) -> Result<Vec<String>, LakeError> {
    let (ctx, versions) = lake.session(&[names::INDICATOR_VALUES]).await?;
    if versions.is_empty() {
        return Ok(Vec::new());
    }
    let batches = ctx
        .sql("SELECT DISTINCT period FROM indicator_values ORDER BY period")
        .await?
        .collect()
        .await?;
    let mut periods = Vec::new();
    for batch in &batches {
        periods.extend(read::text(batch, 0)?.iter().flatten().map(str::to_string));
    }
    Ok(periods)
}
