//! Computing every indicator of a period with DataFusion, for every region at once.
//!
//! One query per dataset (and breakdown) aggregates the period's rows with GROUPING SETS
//! over the code prefixes of each level; the region tree then supplies the names, the
//! community denominators and the zeros of regions without rows.

use std::collections::HashMap;

use deltalake::arrow::array::Array;

use super::{CATALOGUE, Denominator, Indicator, Unit, snapshot};
use crate::datasets::{Dataset, columns};
use crate::lake::{Lake, LakeError, TableVersions, names, read};
use crate::periods::Period;
use crate::regions::stored::{self, Scope};
use crate::regions::{Level, RegionTree};

/// One published value.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub indicator: &'static str,
    pub breakdown: Option<&'static str>,
    pub prefix: String,
    pub code: String,
    pub name: String,
    pub level: Level,
    pub value: Option<f64>,
    pub numerator: f64,
    pub denominator: Option<f64>,
}

/// Every value of a period, with the table versions they were computed from.
#[derive(Debug, Clone)]
pub struct Computed {
    pub period: Period,
    pub values: Vec<Value>,
    pub sources: TableVersions,
}

/// Aggregates keyed by (region prefix, breakdown value): numerator and denominator per
/// indicator of the group.
type Aggregates = HashMap<(String, String), Vec<(f64, f64)>>;

/// The tables indicators read.
fn source_tables() -> Vec<String> {
    let mut tables: Vec<String> = CATALOGUE
        .iter()
        .map(|i| names::dataset(i.dataset.name))
        .collect();
    tables.sort();
    tables.dedup();
    tables
}

pub async fn compute_period(lake: &Lake, period: Period) -> Result<Computed, LakeError> {
    let Some((tree, regions_version)) = stored::load(lake, Scope::Published).await? else {
        return Ok(Computed {
            period,
            values: Vec::new(),
            sources: TableVersions::new(),
        });
    };
    let tables = source_tables();
    let table_refs: Vec<&str> = tables.iter().map(String::as_str).collect();
    let (ctx, mut sources) = lake.session(&table_refs).await?;
    sources.insert(names::REGIONS.to_string(), regions_version);

    let mut values = Vec::new();
    for group in groups() {
        let dataset = group[0].dataset;
        let aggregates = if ctx.table_exist(dataset.name)? {
            let sql = group_sql(dataset, group[0].breakdown, &group, period);
            let batches = ctx.sql(&sql).await?.collect().await?;
            read_aggregates(&batches)?
        } else {
            Aggregates::new()
        };
        for (k, indicator) in group.iter().enumerate() {
            assemble(indicator, k, &aggregates, &tree, &mut values);
        }
    }
    Ok(Computed {
        period,
        values,
        sources,
    })
}

/// Indicators that share a dataset and a breakdown are computed by one query.
fn groups() -> Vec<Vec<&'static Indicator>> {
    let mut groups: Vec<Vec<&'static Indicator>> = Vec::new();
    for indicator in CATALOGUE {
        match groups.iter_mut().find(|g| {
            g[0].dataset.name == indicator.dataset.name && g[0].breakdown == indicator.breakdown
        }) {
            Some(group) => group.push(indicator),
            None => groups.push(vec![indicator]),
        }
    }
    groups
}

fn group_sql(
    dataset: &Dataset,
    breakdown: Option<&str>,
    indicators: &[&Indicator],
    period: Period,
) -> String {
    let street = indicators[0].finest_level() == Level::Street;
    let mut levels = vec![
        format!("substr({}, 1, 2) AS l2", columns::COUNTY),
        format!("substr({}, 1, 4) AS l4", columns::COUNTY),
        format!("{} AS l6", columns::COUNTY),
    ];
    let mut keys = vec!["l2", "l4", "l6"];
    if street {
        levels.push(format!("substr({}, 1, 9) AS l9", dataset.region_field));
        keys.push("l9");
    }
    let extra: Vec<&str> = breakdown.into_iter().collect();
    let sets: Vec<String> = std::iter::once(None)
        .chain(keys.iter().map(Some))
        .map(|key| {
            let cols: Vec<&str> = key
                .into_iter()
                .copied()
                .chain(extra.iter().copied())
                .collect();
            format!("({})", cols.join(", "))
        })
        .collect();
    let prefix = {
        let mut reversed: Vec<&str> = keys.iter().rev().copied().collect();
        reversed.push("''");
        format!("COALESCE({})", reversed.join(", "))
    };
    let breakdown_col = breakdown.map_or("''".to_string(), |b| format!("CAST({b} AS VARCHAR)"));
    let measures: Vec<String> = indicators
        .iter()
        .enumerate()
        .map(|(k, i)| {
            let den = match i.denominator {
                Denominator::Rows(sql) => sql,
                Denominator::None | Denominator::Communities => "0",
            };
            format!(
                "CAST({} AS DOUBLE) AS n{k}, CAST({den} AS DOUBLE) AS d{k}",
                i.numerator
            )
        })
        .collect();
    format!(
        "SELECT {prefix} AS prefix, {breakdown_col} AS breakdown, {measures} \
         FROM (SELECT *, {levels} FROM {table} WHERE {period_col} = '{period}') AS base \
         GROUP BY GROUPING SETS ({sets})",
        measures = measures.join(", "),
        levels = levels.join(", "),
        table = dataset.name,
        period_col = columns::PERIOD,
        sets = sets.join(", "),
    )
}

fn read_aggregates(
    batches: &[deltalake::arrow::record_batch::RecordBatch],
) -> Result<Aggregates, LakeError> {
    let mut out = Aggregates::new();
    for batch in batches {
        let prefix = read::text(batch, 0)?;
        let breakdown = read::text(batch, 1)?;
        let measures = (2..batch.num_columns())
            .map(|c| read::float(batch, c))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let value = |c: usize| {
                let m = &measures[c];
                if m.is_null(row) { 0.0 } else { m.value(row) }
            };
            let pairs = (0..measures.len() / 2)
                .map(|k| (value(2 * k), value(2 * k + 1)))
                .collect();
            out.insert(
                (
                    prefix.value(row).to_string(),
                    breakdown.value(row).to_string(),
                ),
                pairs,
            );
        }
    }
    Ok(out)
}

/// One value per region at each published level (and per breakdown value), zeros where the
/// region has no rows.
fn assemble(
    indicator: &'static Indicator,
    k: usize,
    aggregates: &Aggregates,
    tree: &RegionTree,
    out: &mut Vec<Value>,
) {
    let breakdowns: Vec<Option<&'static str>> = if indicator.breakdown.is_some() {
        indicator.breakdown_values().into_iter().map(Some).collect()
    } else {
        vec![None]
    };
    let finest = indicator.finest_level();
    for region in tree.iter().filter(|r| r.level <= finest) {
        for breakdown in &breakdowns {
            let key = (
                region.prefix.clone(),
                breakdown.unwrap_or_default().to_string(),
            );
            let (numerator, rows_denominator) =
                aggregates.get(&key).map_or((0.0, 0.0), |pairs| pairs[k]);
            let denominator = match indicator.denominator {
                Denominator::None => None,
                Denominator::Communities => Some(f64::from(region.communities)),
                Denominator::Rows(_) => Some(rows_denominator),
            };
            let value = match denominator {
                None => Some(numerator),
                Some(d) if d > 0.0 => Some(match indicator.unit {
                    Unit::Percent => numerator / d * 100.0,
                    Unit::Count => numerator / d,
                }),
                Some(_) => None,
            };
            out.push(Value {
                indicator: indicator.id,
                breakdown: *breakdown,
                prefix: region.prefix.clone(),
                code: region.code(),
                name: region.name.clone(),
                level: region.level,
                value,
                numerator,
                denominator,
            });
        }
    }
}

/// Recomputes a period and publishes it. Loops until the snapshot was computed from the
/// latest versions of its sources, so that of two submissions landing at once, the one
/// finishing last always publishes a snapshot that includes both.
pub async fn refresh(lake: &Lake, period: Period) -> Result<i64, LakeError> {
    let mut tables = source_tables();
    tables.push(names::REGIONS.to_string());
    let table_refs: Vec<&str> = tables.iter().map(String::as_str).collect();
    let mut version = 0;
    for _ in 0..REFRESH_ROUNDS {
        let computed = compute_period(lake, period).await?;
        version = snapshot::publish(lake, &computed).await?;
        if lake.versions(&table_refs).await? == computed.sources {
            return Ok(version);
        }
        tracing::info!(%period, "sources changed while publishing; recomputing");
    }
    Ok(version)
}

/// Upper bound on recomputations when writers keep landing during a refresh; the last
/// writer's own refresh catches up in any case.
const REFRESH_ROUNDS: usize = 5;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::by_id;

    #[test]
    fn one_query_per_dataset_and_breakdown() {
        let g = groups();
        let shapes: Vec<(&str, Option<&str>, usize)> = g
            .iter()
            .map(|g| (g[0].dataset.name, g[0].breakdown, g.len()))
            .collect();
        assert_eq!(
            shapes,
            [
                ("outlets", None, 2),
                ("outlets", Some("mode"), 1),
                ("enterprises", None, 2)
            ]
        );
        let sql = group_sql(
            &crate::datasets::OUTLETS,
            Some("mode"),
            &[by_id("outlets_by_mode").unwrap()],
            "2023H2".parse().unwrap(),
        );
        assert!(
            sql.contains("GROUPING SETS ((mode), (l2, mode), (l4, mode), (l6, mode), (l9, mode))"),
            "{sql}"
        );
        assert!(sql.contains("WHERE period = '2023H2'"));
    }
}
