//! The published snapshot: every indicator value of every period, a small Delta table
//! partitioned by period. Refreshes replace one period atomically; the API reads nothing else.
//! Each row carries its lineage (the submissions it was computed from, the table versions
//! read), its reporting state and, for withheld values, only the fact that they are withheld.
//!
//! Only values some reporting county reaches are stored; a read fills the other regions in
//! from the tree as `not_reported` with no numbers ([`not_reported`]), so the stored table
//! grows with what was reported, not with the 45,000 regions of the country.

use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::datafusion::prelude::{col, lit};
use serde::{Deserialize, Serialize};

use super::{Indicator, Quality, ReportingState, targets};
use crate::lake::{Lake, LakeError, Session, TableVersions, codec, names, read};
use crate::periods::{self, Period};
use crate::regions::{Level, Region, RegionTree};

mod memory;
mod publish;
pub use memory::Snapshot;
pub use publish::publish;

/// One published value: what the computation produces, the snapshot stores, the API returns
/// and the pages show. [`Row::schema`] is its one column declaration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Row {
    #[serde(serialize_with = "super::serialize_id")]
    #[schema(value_type = String, example = "outlet_coverage")]
    pub indicator: &'static Indicator,
    #[serde(deserialize_with = "periods::stored")]
    #[schema(value_type = String, example = "2023H2")]
    pub period: Period,
    pub region: String,
    pub name: String,
    pub level: Level,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<String>,
    /// `reported`, `partial` (computed over the counties that reported) or `not_reported`
    /// (no value at all).
    pub status: ReportingState,
    pub counties_reported: u32,
    pub counties_due: u32,
    #[serde(default, deserialize_with = "codec::exact")]
    pub value: Option<f64>,
    #[serde(default, deserialize_with = "codec::exact")]
    pub numerator: Option<f64>,
    #[serde(default, deserialize_with = "codec::exact")]
    pub denominator: Option<f64>,
    #[serde(default, deserialize_with = "codec::exact")]
    pub target: Option<f64>,
    #[serde(default, deserialize_with = "periods::stored_option")]
    #[schema(value_type = Option<String>, example = "2025H2")]
    pub target_deadline: Option<Period>,
    pub met: Option<bool>,
    #[serde(default, deserialize_with = "codec::exact")]
    pub gap: Option<f64>,
    /// Change against the previous half-year (percentage points for rates), where both
    /// half-years are fully reported. Computed when read, never stored.
    #[serde(default, deserialize_with = "codec::exact")]
    pub change: Option<f64>,
    /// Withheld: too few people behind the value (or a sibling) to publish it.
    pub suppressed: bool,
    /// `unconfirmed` while a file behind the value has plausibility findings its submitter
    /// has not confirmed, `checked` otherwise; null where nothing was reported.
    #[serde(default)]
    pub quality: Option<Quality>,
    /// The submissions whose rows the value was computed from.
    pub submissions: Vec<String>,
    /// Distinct people behind the value, for disclosure control; never stored or published.
    #[serde(skip)]
    pub people: f64,
}

/// Columns computed when read, not stored.
const READ_ONLY: [&str; 1] = ["change"];
/// Columns only the stored table has: the region's prefix (what reads filter on) and the
/// table versions the period was computed from.
const PREFIX: &str = "prefix";
const SOURCES: &str = "sources";

impl Row {
    /// The columns of a value, in the order downloads show them.
    pub fn schema() -> SchemaRef {
        let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
        let float = |name: &str| Field::new(name, DataType::Float64, true);
        let count = |name: &str| Field::new(name, DataType::Int64, false);
        let items = Arc::new(Field::new("item", DataType::Utf8, false));
        Arc::new(Schema::new(vec![
            text("indicator", false),
            text("period", false),
            text("region", false),
            text("name", false),
            text("level", false),
            text("breakdown", true),
            text("status", false),
            count("counties_reported"),
            count("counties_due"),
            float("value"),
            float("numerator"),
            float("denominator"),
            float("target"),
            text("target_deadline", true),
            Field::new("met", DataType::Boolean, true),
            float("gap"),
            float("change"),
            Field::new("suppressed", DataType::Boolean, false),
            text("quality", true),
            Field::new("submissions", DataType::List(items), false),
        ]))
    }

    /// The stored table's columns: a row's without those computed when read, then the
    /// lineage and the prefix.
    fn stored_schema() -> SchemaRef {
        let mut fields: Vec<Field> = Row::schema()
            .fields()
            .iter()
            .filter(|f| !READ_ONLY.contains(&f.name().as_str()))
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(PREFIX, DataType::Utf8, false));
        fields.push(Field::new(SOURCES, DataType::Utf8, false));
        Arc::new(Schema::new(fields))
    }

    /// The row with the target its region is held to in its period, also where nobody
    /// reported (the stored row of such a region has no numbers at all).
    pub fn with_target(mut self, region: &Region) -> Row {
        if self.target.is_none()
            && let Some((target, deadline)) = target_of(self.indicator, region, self.period)
        {
            self.target = Some(target);
            self.target_deadline = deadline;
        }
        self
    }

    /// The region's significant digits (`1522` for 兴安盟), which reads filter on.
    pub fn prefix(&self) -> &str {
        self.level.prefix_of(&self.region)
    }
}

const CHUNK: usize = 64 * 1024;

fn to_batch(sources: &str, values: &[&Row]) -> Result<RecordBatch, LakeError> {
    let schema = Row::stored_schema();
    let own = Arc::new(Schema::new(
        schema.fields()[..schema.fields().len() - 2].to_vec(),
    ));
    let batch = codec::encode(&own, values)?;
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from_iter_values(
        values.iter().map(|row| row.prefix()),
    )));
    columns.push(Arc::new(StringArray::from_iter_values(
        values.iter().map(|_| sources),
    )));
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// A read of the snapshot.
#[derive(Debug, Clone)]
pub struct Read {
    /// The table versions the period's values were computed from.
    pub sources: TableVersions,
    /// In the order the indicators were asked for, then by region and breakdown.
    pub rows: Vec<Row>,
}

/// The lineage of a read of the country's values: the `sources` of its first row.
fn sources_in(batches: &[RecordBatch]) -> Result<TableVersions, LakeError> {
    match batches.iter().find(|b| b.num_rows() > 0) {
        Some(batch) => {
            let column = batch.schema().index_of(SOURCES)?;
            Ok(serde_json::from_str(read::text(batch, column)?.value(0))?)
        }
        None => Ok(TableVersions::new()),
    }
}

/// The rows whose `sources` are the period's lineage: the country's, written at every
/// publication (a province's rows keep the lineage they were last written with).
fn lineage() -> deltalake::datafusion::prelude::Expr {
    col(PREFIX).eq(lit(""))
}

/// A value nobody reported: the region and how many counties are due, and no numbers.
pub fn not_reported(
    tree: &RegionTree,
    indicator: &'static Indicator,
    period: Period,
    region: &Region,
    breakdown: Option<&str>,
) -> Row {
    Row {
        indicator,
        period,
        region: region.code(),
        name: region.name.clone(),
        level: region.level,
        breakdown: breakdown.map(str::to_string),
        status: ReportingState::NotReported,
        counties_reported: 0,
        counties_due: tree.counties_due(region),
        value: None,
        numerator: None,
        denominator: None,
        target: None,
        target_deadline: None,
        met: None,
        gap: None,
        change: None,
        suppressed: false,
        quality: None,
        submissions: Vec::new(),
        people: 0.0,
    }
}

/// The target a region is held to in a period for an indicator, from the one rule the
/// snapshot applies (for pages that show the target of a region nobody reported for).
pub fn target_of(
    indicator: &Indicator,
    region: &Region,
    period: Period,
) -> Option<(f64, Option<Period>)> {
    targets::applicable(indicator.targets, region, period).map(|t| (t.target_value(), t.deadline))
}

/// The table versions a period's published values were computed from, or `None` when the
/// period has never been published.
pub async fn sources_of(lake: &Lake, period: Period) -> Result<Option<TableVersions>, LakeError> {
    let Session { ctx, versions, .. } = lake.session(&[names::INDICATOR_VALUES]).await?;
    if versions.is_empty() {
        return Ok(None);
    }
    let batches = ctx
        .table("indicator_values")
        .await?
        .filter(col("period").eq(lit(period.to_string())).and(lineage()))?
        .select_columns(&[SOURCES])?
        .limit(0, Some(1))?
        .collect()
        .await?;
    Ok(match batches.iter().any(|b| b.num_rows() > 0) {
        true => Some(sources_in(&batches)?),
        false => None,
    })
}

/// The periods that have published values, oldest first.
pub async fn periods(lake: &Lake) -> Result<Vec<Period>, LakeError> {
    let Session { ctx, versions, .. } = lake.session(&[names::INDICATOR_VALUES]).await?;
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
        // Only reporting periods: a partition for the future (written before periods were
        // bounded by the calendar) is never a default.
        periods.extend(
            read::text(batch, 0)?
                .iter()
                .flatten()
                .filter_map(|p| p.parse::<Period>().ok()),
        );
    }
    Ok(periods)
}
