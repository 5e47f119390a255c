//! The published snapshot: every indicator value of every period, a small Delta table
//! partitioned by period. Refreshes replace one period atomically; the API reads nothing else.
//! Each row carries its lineage (the submissions it was computed from, the table versions
//! read), its reporting state and, for withheld values, only the fact that they are withheld.
//!
//! Only values some reporting county reaches are stored; a read fills the other regions in
//! from the tree as `not_reported` with no numbers ([`not_reported`]), so the stored table
//! grows with what was reported, not with the 45,000 regions of the country.

use std::sync::Arc;

use deltalake::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListBuilder, RecordBatch,
    StringArray, StringBuilder,
};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::datafusion::prelude::{col, lit};
use serde::Serialize;

use super::compute::{Computed, Value};
use super::{CATALOGUE, Indicator, ReportingState, targets};
use crate::lake::{Lake, LakeError, TableVersions, names, read};
use crate::periods::Period;
use crate::regions::{Level, Region, RegionTree};

fn schema() -> SchemaRef {
    let float = |name: &str| Field::new(name, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        Field::new("indicator", DataType::Utf8, false),
        Field::new("breakdown", DataType::Utf8, true),
        Field::new("region", DataType::Utf8, false),
        Field::new("prefix", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("level", DataType::Utf8, false),
        float("value"),
        float("numerator"),
        float("denominator"),
        float("target"),
        Field::new("target_deadline", DataType::Utf8, true),
        Field::new("met", DataType::Boolean, true),
        float("gap"),
        Field::new("suppressed", DataType::Boolean, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("counties_reported", DataType::Int64, false),
        Field::new("counties_due", DataType::Int64, false),
        Field::new(
            "submissions",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
            false,
        ),
        Field::new("sources", DataType::Utf8, false),
        Field::new("period", DataType::Utf8, false),
    ]))
}

const CHUNK: usize = 64 * 1024;

fn to_batch(period: &str, sources: &str, values: &[Value]) -> Result<RecordBatch, LakeError> {
    fn text<'v>(values: &'v [Value], f: impl Fn(&'v Value) -> &'v str) -> ArrayRef {
        Arc::new(StringArray::from_iter_values(values.iter().map(f)))
    }
    fn float(values: &[Value], f: impl Fn(&Value) -> Option<f64>) -> ArrayRef {
        Arc::new(Float64Array::from_iter(values.iter().map(f)))
    }
    let mut submissions = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        false,
    )));
    for v in values {
        for s in &v.submissions {
            submissions.values().append_value(s);
        }
        submissions.append(true);
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
            float(values, |v| v.value),
            float(values, |v| v.numerator),
            float(values, |v| v.denominator),
            float(values, |v| v.target),
            Arc::new(StringArray::from_iter(
                values
                    .iter()
                    .map(|v| v.target_deadline.map(|d| d.to_string())),
            )),
            Arc::new(BooleanArray::from_iter(values.iter().map(|v| v.met))),
            float(values, |v| v.gap),
            Arc::new(BooleanArray::from_iter(
                values.iter().map(|v| Some(v.suppressed)),
            )),
            text(values, |v| v.status.as_str()),
            Arc::new(Int64Array::from_iter_values(
                values.iter().map(|v| i64::from(v.counties_reported)),
            )),
            Arc::new(Int64Array::from_iter_values(
                values.iter().map(|v| i64::from(v.counties_due)),
            )),
            Arc::new(submissions.finish()),
            Arc::new(StringArray::from_iter_values(
                values.iter().map(|_| sources),
            )),
            Arc::new(StringArray::from_iter_values(values.iter().map(|_| period))),
        ],
    )?)
}

/// Replaces the period's values in the snapshot; returns the snapshot's new version.
pub async fn publish(lake: &Lake, computed: &Computed) -> Result<i64, LakeError> {
    let period = computed.period.to_string();
    let sources = serde_json::to_string(&computed.sources)?;
    let partitions = vec!["period".to_string()];
    let mut staged = lake
        .stage(names::INDICATOR_VALUES, &schema(), &partitions)?
        .failing_at(crate::failpoints::SNAPSHOT_WRITING);
    for chunk in computed.values.chunks(CHUNK) {
        staged.write(to_batch(&period, &sources, chunk)?).await?;
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
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Row {
    pub region: String,
    pub name: String,
    pub level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<String>,
    pub value: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub target: Option<f64>,
    pub target_deadline: Option<String>,
    pub met: Option<bool>,
    pub gap: Option<f64>,
    /// Change against the previous half-year (percentage points for rates), where both
    /// half-years are fully reported.
    pub change: Option<f64>,
    pub suppressed: bool,
    /// `reported`, `partial` (computed over the counties that reported) or `not_reported`
    /// (no value at all).
    pub status: ReportingState,
    pub counties_reported: u32,
    pub counties_due: u32,
    pub submissions: Vec<String>,
}

/// A read of the snapshot and the version it came from (the API's ETag).
#[derive(Debug, Clone)]
pub struct Read {
    pub version: i64,
    /// The table versions the period's values were computed from.
    pub sources: TableVersions,
    pub rows: Vec<Row>,
}

const COLUMNS: [&str; 20] = [
    "region",
    "name",
    "level",
    "breakdown",
    "value",
    "numerator",
    "denominator",
    "target",
    "target_deadline",
    "met",
    "gap",
    "suppressed",
    "submissions",
    "sources",
    "prefix",
    "period",
    "indicator",
    "status",
    "counties_reported",
    "counties_due",
];

fn optional(array: &Float64Array, i: usize) -> Option<f64> {
    (!array.is_null(i)).then(|| array.value(i))
}

/// The rows of the batches with the indicator each belongs to.
fn rows_of(batches: &[RecordBatch]) -> Result<(Vec<(String, Row)>, TableVersions), LakeError> {
    let mut rows = Vec::new();
    let mut sources = TableVersions::new();
    for batch in batches {
        let t = |c: usize| read::text(batch, c);
        let f = |c: usize| read::float(batch, c);
        let (region, name, level, breakdown) = (t(0)?, t(1)?, t(2)?, t(3)?);
        let (value, numerator, denominator, target) = (f(4)?, f(5)?, f(6)?, f(7)?);
        let deadline = t(8)?;
        let met = cast(batch.column(9), &DataType::Boolean)?;
        let met = met.as_boolean();
        let gap = f(10)?;
        let suppressed = cast(batch.column(11), &DataType::Boolean)?;
        let suppressed = suppressed.as_boolean();
        let submissions = batch.column(12).as_list::<i32>();
        let source_text = t(13)?;
        let indicator = t(16)?;
        let status = t(17)?;
        let (reported, due) = (read::int(batch, 18)?, read::int(batch, 19)?);
        for i in 0..batch.num_rows() {
            if sources.is_empty() {
                sources = serde_json::from_str(source_text.value(i)).unwrap_or_default();
            }
            let subs = cast(&submissions.value(i), &DataType::Utf8)?;
            rows.push((
                indicator.value(i).to_string(),
                Row {
                    region: region.value(i).to_string(),
                    name: name.value(i).to_string(),
                    level: Level::parse(level.value(i)).unwrap_or(Level::Country),
                    breakdown: (!breakdown.is_null(i)).then(|| breakdown.value(i).to_string()),
                    value: optional(&value, i),
                    numerator: optional(&numerator, i),
                    denominator: optional(&denominator, i),
                    target: optional(&target, i),
                    target_deadline: (!deadline.is_null(i)).then(|| deadline.value(i).to_string()),
                    met: (!met.is_null(i)).then(|| met.value(i)),
                    gap: optional(&gap, i),
                    change: None,
                    suppressed: suppressed.value(i),
                    status: ReportingState::parse(status.value(i))
                        .unwrap_or(ReportingState::NotReported),
                    counties_reported: u32::try_from(reported.value(i)).unwrap_or(0),
                    counties_due: u32::try_from(due.value(i)).unwrap_or(0),
                    submissions: subs
                        .as_string::<i32>()
                        .iter()
                        .flatten()
                        .map(str::to_string)
                        .collect(),
                },
            ));
        }
    }
    Ok((rows, sources))
}

/// The values of one indicator in a period for every region at `level` inside `within`,
/// with the change since the previous half-year.
pub async fn query(
    lake: &Lake,
    tree: &RegionTree,
    indicator: &str,
    period: Period,
    within: &Region,
    level: Level,
) -> Result<Option<Read>, LakeError> {
    Ok(query_many(lake, tree, &[indicator], period, within, level)
        .await?
        .map(|many| Read {
            version: many.version,
            sources: many.sources,
            rows: many.rows.into_iter().map(|(_, row)| row).collect(),
        }))
}

/// A read of several indicators at once; rows carry their indicator.
#[derive(Debug, Clone)]
pub struct ReadMany {
    pub version: i64,
    pub sources: TableVersions,
    /// In the order the indicators were asked for, then by region and breakdown.
    pub rows: Vec<(String, Row)>,
}

/// The values of several indicators in one scan of the snapshot: filters run inside
/// DataFusion and the period is a partition, so only the two periods asked for are read.
pub async fn query_many(
    lake: &Lake,
    tree: &RegionTree,
    indicators: &[&str],
    period: Period,
    within: &Region,
    level: Level,
) -> Result<Option<ReadMany>, LakeError> {
    query_levels(lake, tree, indicators, period, within, &[level]).await
}

/// A value nobody reported: the region and how many counties are due, and no numbers.
pub fn not_reported(tree: &RegionTree, region: &Region, breakdown: Option<&str>) -> Row {
    Row {
        region: region.code(),
        name: region.name.clone(),
        level: region.level,
        breakdown: breakdown.map(str::to_string),
        value: None,
        numerator: None,
        denominator: None,
        target: None,
        target_deadline: None,
        met: None,
        gap: None,
        change: None,
        suppressed: false,
        status: ReportingState::NotReported,
        counties_reported: 0,
        counties_due: tree.counties_due(region),
        submissions: Vec::new(),
    }
}

/// The regions and breakdowns a read of `indicator` at `levels` inside `within` covers.
fn expected<'t>(
    tree: &'t RegionTree,
    indicator: &'static Indicator,
    within: &'t Region,
    levels: &[Level],
) -> Vec<(&'t Region, Option<&'static str>)> {
    let breakdowns: Vec<Option<&'static str>> = if indicator.breakdown.is_some() {
        indicator.breakdown_values().into_iter().map(Some).collect()
    } else {
        vec![None]
    };
    let mut out = Vec::new();
    for &level in levels.iter().filter(|l| **l <= indicator.finest_level()) {
        for region in tree.within(within, level) {
            for breakdown in &breakdowns {
                out.push((region, *breakdown));
            }
        }
    }
    out
}

/// [`query_many`] at several levels at once (a page shows a region, the areas within and the
/// counties): still one scan; rows carry their level. Regions without a stored value are
/// filled in as not reported.
pub async fn query_levels(
    lake: &Lake,
    tree: &RegionTree,
    indicators: &[&str],
    period: Period,
    within: &Region,
    levels: &[Level],
) -> Result<Option<ReadMany>, LakeError> {
    let (ctx, versions) = lake.session(&[names::INDICATOR_VALUES]).await?;
    let Some(version) = versions.get(names::INDICATOR_VALUES).copied() else {
        return Ok(None);
    };
    if indicators.is_empty() {
        return Ok(Some(ReadMany {
            version,
            sources: TableVersions::new(),
            rows: Vec::new(),
        }));
    }
    let previous = period.previous();
    let wanted = indicators.iter().map(|i| lit(*i)).collect();
    let batches = ctx
        .table("indicator_values")
        .await?
        .filter(
            col("period")
                .in_list(
                    vec![lit(period.to_string()), lit(previous.to_string())],
                    false,
                )
                .and(col("indicator").in_list(wanted, false))
                .and(col("level").in_list(levels.iter().map(|l| lit(l.as_str())).collect(), false))
                .and(col("prefix").like(lit(format!("{}%", within.prefix)))),
        )?
        .select_columns(&COLUMNS)?
        .collect()
        .await?;
    let (current, previous_batches): (Vec<RecordBatch>, Vec<RecordBatch>) = {
        let mut current = Vec::new();
        let mut earlier = Vec::new();
        for batch in batches {
            let periods = read::text(&batch, 15)?;
            let this = deltalake::arrow::compute::kernels::cmp::eq(
                &periods,
                &StringArray::new_scalar(period.to_string()),
            )?;
            current.push(deltalake::arrow::compute::filter_record_batch(
                &batch, &this,
            )?);
            let that = deltalake::arrow::compute::not(&this)?;
            earlier.push(deltalake::arrow::compute::filter_record_batch(
                &batch, &that,
            )?);
        }
        (current, earlier)
    };
    let (stored, sources) = rows_of(&current)?;
    let (before, _) = rows_of(&previous_batches)?;
    type Key = (String, String, Option<String>);
    let before: std::collections::HashMap<Key, Row> = before
        .into_iter()
        .map(|(indicator, b)| ((indicator, b.region.clone(), b.breakdown.clone()), b))
        .collect();
    let mut stored: std::collections::HashMap<Key, Row> = stored
        .into_iter()
        .map(|(indicator, row)| ((indicator, row.region.clone(), row.breakdown.clone()), row))
        .collect();
    let mut rows = Vec::new();
    for id in indicators {
        let Some(indicator) = CATALOGUE.iter().find(|i| i.id == *id) else {
            continue;
        };
        for (region, breakdown) in expected(tree, indicator, within, levels) {
            let key = (id.to_string(), region.code(), breakdown.map(str::to_string));
            let mut row = stored
                .remove(&key)
                .unwrap_or_else(|| not_reported(tree, region, breakdown));
            if let Some(then) = before.get(&key)
                && row.status == ReportingState::Reported
                && then.status == ReportingState::Reported
                && let (Some(now), Some(then)) = (row.value, then.value)
            {
                row.change = Some(now - then);
            }
            rows.push((id.to_string(), row));
        }
    }
    Ok(Some(ReadMany {
        version,
        sources,
        rows,
    }))
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
    let (ctx, versions) = lake.session(&[names::INDICATOR_VALUES]).await?;
    if versions.is_empty() {
        return Ok(None);
    }
    let batches = ctx
        .table("indicator_values")
        .await?
        .filter(col("period").eq(lit(period.to_string())))?
        .select_columns(&["sources"])?
        .limit(0, Some(1))?
        .collect()
        .await?;
    for batch in &batches {
        if batch.num_rows() > 0 {
            let text = read::text(batch, 0)?;
            return Ok(Some(serde_json::from_str(text.value(0))?));
        }
    }
    Ok(None)
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
        // Only reporting periods: a partition for the future (written before periods were
        // bounded by the calendar) is never a default.
        periods.extend(
            read::text(batch, 0)?
                .iter()
                .flatten()
                .filter(|p| p.parse::<crate::periods::Period>().is_ok())
                .map(str::to_string),
        );
    }
    Ok(periods)
}
