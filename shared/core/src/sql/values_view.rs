//! `indicator_values` as analysts query it: the stored values, and a `not_reported` row with
//! no numbers for every other region, indicator and published period — the same rows the API
//! fills in, so a region nobody reported for reads as null in SQL too, never as missing or 0.
//!
//! The rows are not materialised: the view is a plan over the stored table and two small
//! tables built from the region tree and the catalogue, so a query's filters (an indicator, a
//! level, a region) reach every part of it.

use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::datafusion::dataframe::DataFrame;
use deltalake::datafusion::error::Result;
use deltalake::datafusion::prelude::SessionContext;

use crate::indicators::CATALOGUE;
use crate::regions::{Level, RegionTree};

/// The view's plan; the helper tables are registered only while it is planned.
const VIEW: &str = "
SELECT indicator, breakdown, region, prefix, name, level, value, numerator, denominator,
       target, target_deadline, met, gap, suppressed, quality, status, counties_reported,
       counties_due, submissions, sources, CAST(period AS VARCHAR) AS period
FROM jz_stored
UNION ALL
SELECT c.indicator, c.breakdown, r.region, r.prefix, r.name, r.level,
       CAST(NULL AS DOUBLE) AS value, CAST(NULL AS DOUBLE) AS numerator,
       CAST(NULL AS DOUBLE) AS denominator, CAST(NULL AS DOUBLE) AS target,
       CAST(NULL AS VARCHAR) AS target_deadline, CAST(NULL AS BOOLEAN) AS met,
       CAST(NULL AS DOUBLE) AS gap, false AS suppressed, CAST(NULL AS VARCHAR) AS quality,
       'not_reported' AS status,
       CAST(0 AS BIGINT) AS counties_reported, r.counties_due, r.submissions,
       '{}' AS sources, p.period
FROM jz_regions r
JOIN jz_catalogue c ON r.rank <= c.finest_rank
CROSS JOIN (SELECT DISTINCT CAST(period AS VARCHAR) AS period FROM jz_stored) p
WHERE NOT EXISTS (
    SELECT 1 FROM jz_stored s
    WHERE s.indicator = c.indicator AND coalesce(s.breakdown, '') = coalesce(c.breakdown, '')
      AND s.prefix = r.prefix AND CAST(s.period AS VARCHAR) = p.period)";

fn strings(values: impl IntoIterator<Item = Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

/// The published regions with their rank (country 0 … street 4) and counties due.
fn regions(tree: &RegionTree) -> Result<RecordBatch> {
    let published: Vec<_> = tree
        .iter()
        .filter(|r| Level::PUBLISHED.contains(&r.level))
        .collect();
    let rank = |level: Level| {
        Level::PUBLISHED
            .iter()
            .position(|l| *l == level)
            .unwrap_or(0)
    };
    let mut submissions = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        false,
    )));
    for _ in &published {
        submissions.append(true);
    }
    Ok(RecordBatch::try_from_iter(vec![
        ("region", strings(published.iter().map(|r| Some(r.code())))),
        (
            "prefix",
            strings(published.iter().map(|r| Some(r.prefix.to_string()))),
        ),
        (
            "name",
            strings(published.iter().map(|r| Some(r.name.clone()))),
        ),
        (
            "level",
            strings(published.iter().map(|r| Some(r.level.as_str().to_string()))),
        ),
        (
            "rank",
            Arc::new(Int64Array::from_iter_values(
                published.iter().map(|r| rank(r.level) as i64),
            )) as ArrayRef,
        ),
        (
            "counties_due",
            Arc::new(Int64Array::from_iter_values(
                published.iter().map(|r| i64::from(tree.counties_due(r))),
            )) as ArrayRef,
        ),
        ("submissions", Arc::new(submissions.finish()) as ArrayRef),
    ])?)
}

/// Every indicator (and breakdown value) with the finest level it is published at.
fn catalogue() -> Result<RecordBatch> {
    let rank = |level: Level| {
        Level::PUBLISHED
            .iter()
            .position(|l| *l == level)
            .unwrap_or(0)
    };
    let mut rows: Vec<(&str, Option<&str>, i64)> = Vec::new();
    for indicator in CATALOGUE {
        let finest = rank(indicator.finest_level()) as i64;
        if indicator.breakdown.is_some() {
            for value in indicator.breakdown_values() {
                rows.push((indicator.id, Some(value), finest));
            }
        } else {
            rows.push((indicator.id, None, finest));
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("indicator", DataType::Utf8, false),
        Field::new("breakdown", DataType::Utf8, true),
        Field::new("finest_rank", DataType::Int64, false),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            strings(rows.iter().map(|r| Some(r.0.to_string()))),
            strings(rows.iter().map(|r| r.1.map(str::to_string))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )?)
}

/// The stored values together with a not-reported row for everything else.
pub async fn with_not_reported(
    ctx: &SessionContext,
    stored: DataFrame,
    tree: &RegionTree,
) -> Result<DataFrame> {
    ctx.register_table("jz_stored", stored.into_view())?;
    ctx.register_batch("jz_regions", regions(tree)?)?;
    ctx.register_batch("jz_catalogue", catalogue()?)?;
    let planned = ctx.sql(VIEW).await;
    for helper in ["jz_stored", "jz_regions", "jz_catalogue"] {
        ctx.deregister_table(helper)?;
    }
    planned
}
