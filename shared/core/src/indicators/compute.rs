//! Computing every indicator of a period with DataFusion, for every region at once.
//!
//! One query per dataset (and breakdown) aggregates the period's rows with GROUPING SETS over
//! the code prefixes of each level, so distinct counts are exact at every level. Rows exist
//! only for counties with a current accepted file, so each aggregate already covers exactly
//! the counties that reported; [`coverage`](super::coverage) says which those are, supplies
//! the denominators over them and each value's reporting state. Regions no county of which
//! reported are not stored at all: readers fill them in as `not_reported`, never as zeros.
//! Targets are judged on fully reported values only; disclosure control runs over the whole
//! period at the end ([`disclosure`](super::disclosure)).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;

use super::coverage::{Coverage, Reach};
use super::snapshot::Row;
use super::targets;
use super::{
    CATALOGUE, Denominator, Indicator, Quality, ReportingState, Source, Unit, disclosure, people,
};
use crate::compliance;
use crate::datasets::{self, Dataset, Openness, columns};
use crate::lake::{Lake, LakeError, TableVersions, names, read};
use crate::periods::Period;
use crate::plausibility::Confirmed;
use crate::regions::stored;
use crate::regions::{Level, Region, RegionTree};
use crate::submissions::{self, Submission};

/// Every value of a period, with the table versions they were computed from.
#[derive(Debug, Clone)]
pub struct Computed {
    pub period: Period,
    pub values: Vec<Row>,
    pub sources: TableVersions,
}

/// What the queries measured for one indicator in one region (and breakdown value).
#[derive(Debug, Clone, Default)]
struct Measured {
    numerator: f64,
    denominator: f64,
    /// Distinct people behind the value, for disclosure control.
    population: f64,
    submissions: Vec<String>,
}

type Measures = HashMap<(&'static str, String, String), Measured>;

/// The tables indicators read.
pub(super) fn source_tables() -> Vec<String> {
    let mut tables: Vec<String> = CATALOGUE
        .iter()
        .filter_map(|i| i.dataset())
        .map(|d| names::dataset(d.name))
        .collect();
    tables.push(names::SUBMISSIONS.to_string());
    tables.push(names::CONFIRMATIONS.to_string());
    tables.sort();
    tables.dedup();
    tables
}

pub async fn compute_period(lake: &Lake, period: Period) -> Result<Computed, LakeError> {
    let tables = source_tables();
    let table_refs: Vec<&str> = tables.iter().map(String::as_str).collect();
    let Some((tree, regions_version)) = stored::published(lake).await? else {
        // Nothing to compute over; the tables as they are give nothing either.
        return Ok(Computed {
            period,
            values: Vec::new(),
            sources: lake.versions(&table_refs).await?,
        });
    };
    let (ctx, mut sources) = lake.session(&table_refs).await?;
    sources.insert(names::REGIONS.to_string(), regions_version);

    let mut measures = Measures::new();
    for dataset in datasets::ALL {
        let table = names::dataset(dataset.name);
        let Some(version) = sources.get(&table).copied() else {
            continue;
        };
        let key = (lake.root().to_string(), dataset.name);
        let held = HELD_MEASURES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .filter(|(of, at, _)| *of == period && *at == version)
            .map(|(_, _, held)| held.clone());
        let measured = match held {
            Some(held) => held,
            None => {
                let measured = Arc::new(measure_dataset(&ctx, dataset, period).await?);
                HELD_MEASURES
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, (period, version, measured.clone()));
                measured
            }
        };
        measures.extend(measured.iter().map(|(k, m)| (k.clone(), m.clone())));
    }
    let log = submissions::read_session(&ctx).await?;
    let confirmed = Confirmed::read_session(&ctx).await?;
    let statuses = match tree.country() {
        Some(country) => compliance::status(&log, &confirmed, &tree, period, country),
        None => Vec::new(),
    };
    measure_reporting(&statuses, &tree, &mut measures);
    let coverage = Coverage::new(&statuses);

    let mut values = Vec::new();
    for indicator in CATALOGUE {
        let reach = coverage.reach(&tree, indicator);
        assemble(indicator, period, &measures, &tree, &reach, &mut values);
    }
    disclosure::apply(&mut values);
    mark_quality(&log, &confirmed, &mut values);
    Ok(Computed {
        period,
        values,
        sources,
    })
}

/// Flags each value computed from a file whose plausibility findings are not all confirmed.
fn mark_quality(log: &[Submission], confirmed: &Confirmed, values: &mut [Row]) {
    // The latest decision about a submission says how many findings it has.
    let latest: HashMap<&str, &Submission> =
        log.iter().map(|s| (s.submission_id.as_str(), s)).collect();
    let open: HashSet<&str> = latest
        .into_iter()
        .filter(|(_, s)| confirmed.open(s) > 0)
        .map(|(id, _)| id)
        .collect();
    for value in values.iter_mut().filter(|v| !v.submissions.is_empty()) {
        let unconfirmed = value.submissions.iter().any(|s| open.contains(s.as_str()));
        value.quality = Some(match unconfirmed {
            true => Quality::Unconfirmed,
            false => Quality::Checked,
        });
    }
}

/// What the queries of each dataset measured for the period last refreshed, per lake, with
/// the table version they read: a refresh runs again only the queries of tables that moved
/// (after an outlets file, the two outlets queries of seven). Exact, since a query's result
/// depends only on the table version, the period and the declarations. One period per
/// dataset, so what a process holds stays the size of one refresh's measures.
type HeldMeasures = HashMap<(String, &'static str), (Period, i64, Arc<Measures>)>;
static HELD_MEASURES: LazyLock<Mutex<HeldMeasures>> = LazyLock::new(Mutex::default);

/// Runs the queries of the indicators that read `dataset`.
async fn measure_dataset(
    ctx: &SessionContext,
    dataset: &Dataset,
    period: Period,
) -> Result<Measures, LakeError> {
    let mut measures = Measures::new();
    for group in groups() {
        if group[0].dataset().is_some_and(|d| d.name == dataset.name) {
            if dataset.openness == Openness::Closed {
                people::register(ctx);
            }
            let sql = group_sql(dataset, group[0].breakdown, &group, period);
            let batches = ctx.sql(&sql).await?.collect().await?;
            read_measures(&group, &batches, &mut measures)?;
        }
    }
    Ok(measures)
}

/// Row-based indicators sharing a dataset and a breakdown are computed by one query.
fn groups() -> Vec<Vec<&'static Indicator>> {
    let mut groups: Vec<Vec<&'static Indicator>> = Vec::new();
    for indicator in CATALOGUE.iter().filter(|i| i.dataset().is_some()) {
        let same = |g: &&mut Vec<&'static Indicator>| {
            g[0].dataset().map(|d| d.name) == indicator.dataset().map(|d| d.name)
                && g[0].breakdown == indicator.breakdown
        };
        match groups.iter_mut().find(|g| same(g)) {
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
    let mut reversed: Vec<&str> = keys.iter().rev().copied().collect();
    reversed.push("''");
    let prefix = format!("COALESCE({})", reversed.join(", "));
    let breakdown_col = breakdown.map_or("''".to_string(), |b| format!("CAST({b} AS VARCHAR)"));
    // People are counted by the dataset's key (pseudonymised ID numbers) where it is closed.
    let population = match dataset.openness {
        Openness::Closed => format!("{}({})", people::COUNT_PEOPLE, dataset.key),
        _ => "0".to_string(),
    };
    let rows = match dataset.openness {
        Openness::Closed => people_numbered(dataset, period),
        _ => format!(
            "SELECT * FROM {table} WHERE {period_col} = '{period}'",
            table = dataset.name,
            period_col = columns::PERIOD,
        ),
    };
    let measures: Vec<String> = indicators
        .iter()
        .enumerate()
        .map(|(k, i)| {
            let (numerator, denominator) = match i.source {
                Source::Rows {
                    numerator,
                    denominator: Denominator::Rows(sql),
                    ..
                } => (numerator, sql),
                Source::Rows { numerator, .. } => (numerator, "0"),
                Source::ReportRate => ("0", "0"),
            };
            let measure = format!(
                "CAST({numerator} AS DOUBLE) AS n{k}, CAST({denominator} AS DOUBLE) AS d{k}"
            );
            match dataset.openness {
                Openness::Closed => people::counted(&measure),
                _ => measure,
            }
        })
        .collect();
    format!(
        "SELECT {prefix} AS prefix, {breakdown_col} AS breakdown, \
         array_agg(DISTINCT {submission}) AS submissions, CAST({population} AS DOUBLE) AS population, {measures} \
         FROM (SELECT *, {levels} FROM ({rows}) AS period_rows) AS base \
         GROUP BY GROUPING SETS ({sets})",
        submission = columns::SUBMISSION,
        measures = measures.join(", "),
        levels = levels.join(", "),
        sets = sets.join(", "),
    )
}

/// The period's rows of a dataset about people, with each person's 64-character pseudonym
/// replaced by a number as the rows stream by ([`people`]): exactly as many distinct values (a
/// missing key stays missing), counted in compact sets instead of hash sets of strings.
fn people_numbered(dataset: &Dataset, period: Period) -> String {
    format!(
        "SELECT * EXCLUDE ({key}), {person}({key}) AS {key} \
         FROM {table} WHERE {period_col} = '{period}'",
        key = dataset.key,
        person = people::PERSON,
        table = dataset.name,
        period_col = columns::PERIOD,
    )
}

fn strings_of(list: &dyn Array, row: usize) -> Result<Vec<String>, LakeError> {
    let list = list.as_list::<i32>();
    if list.is_null(row) {
        return Ok(Vec::new());
    }
    let items = cast(&list.value(row), &DataType::Utf8)?;
    let mut out: Vec<String> = items
        .as_string::<i32>()
        .iter()
        .flatten()
        .map(str::to_string)
        .collect();
    out.sort();
    Ok(out)
}

fn read_measures(
    group: &[&'static Indicator],
    batches: &[RecordBatch],
    out: &mut Measures,
) -> Result<(), LakeError> {
    for batch in batches {
        let prefix = read::text(batch, 0)?;
        let breakdown = read::text(batch, 1)?;
        let population = read::float(batch, 3)?;
        let numbers = (4..batch.num_columns())
            .map(|c| read::float(batch, c))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let number = |c: usize| {
                let m = &numbers[c];
                if m.is_null(row) { 0.0 } else { m.value(row) }
            };
            let submissions = strings_of(batch.column(2).as_ref(), row)?;
            for (k, indicator) in group.iter().enumerate() {
                out.insert(
                    (
                        indicator.id,
                        prefix.value(row).to_string(),
                        breakdown.value(row).to_string(),
                    ),
                    Measured {
                        numerator: number(2 * k),
                        denominator: number(2 * k + 1),
                        population: if population.is_null(row) {
                            0.0
                        } else {
                            population.value(row)
                        },
                        submissions: submissions.clone(),
                    },
                );
            }
        }
    }
    Ok(())
}

/// `report_rate`: counties with a current accepted file of every dataset, from the log. Each
/// county is added to its own and its ancestors' tallies (one pass over the counties, not one
/// per region).
fn measure_reporting(statuses: &[compliance::CountyStatus], tree: &RegionTree, out: &mut Measures) {
    let Some(indicator) = CATALOGUE
        .iter()
        .find(|i| matches!(i.source, Source::ReportRate))
    else {
        return;
    };
    let mut inside: HashMap<&str, (u32, u32, BTreeSet<&str>)> = HashMap::new();
    for county in statuses {
        let current = county
            .datasets
            .iter()
            .filter_map(|d| d.current.as_ref())
            .map(|s| s.submission_id.as_str());
        let current: Vec<&str> = current.collect();
        for level in [Level::Country, Level::Province, Level::City, Level::County] {
            let Some(prefix) = county.code.get(..level.digits()) else {
                continue;
            };
            let tally = inside.entry(prefix).or_default();
            tally.0 += u32::from(county.complete);
            tally.1 += 1;
            tally.2.extend(&current);
        }
    }
    let none = (0, 0, BTreeSet::new());
    for region in tree.iter().filter(|r| r.level <= Level::County) {
        let (complete, due, submissions) = inside.get(region.prefix.as_str()).unwrap_or(&none);
        out.insert(
            (indicator.id, region.prefix.to_string(), String::new()),
            Measured {
                numerator: f64::from(*complete),
                denominator: f64::from(*due),
                population: 0.0,
                submissions: submissions.iter().map(|s| s.to_string()).collect(),
            },
        );
    }
}

/// One value per region at each published level (and per breakdown value) that at least
/// one reporting county reaches; `report_rate` for every region, since reporting is what it
/// measures.
fn assemble(
    indicator: &'static Indicator,
    period: Period,
    measures: &Measures,
    tree: &RegionTree,
    reach: &Reach,
    out: &mut Vec<Row>,
) {
    let breakdowns: Vec<Option<&'static str>> = if indicator.breakdown.is_some() {
        indicator.breakdown_values().into_iter().map(Some).collect()
    } else {
        vec![None]
    };
    let finest = indicator.finest_level();
    let empty = Measured::default();
    let report_rate = matches!(indicator.source, Source::ReportRate);
    let regions: Vec<&Region> = if report_rate {
        tree.iter().filter(|r| r.level <= finest).collect()
    } else {
        reach.regions(tree, finest)
    };
    for region in regions {
        let (status, reported, due) = if report_rate {
            let m = measures
                .get(&(indicator.id, region.prefix.to_string(), String::new()))
                .unwrap_or(&empty);
            (
                ReportingState::Reported,
                m.numerator as u32,
                m.denominator as u32,
            )
        } else {
            reach.state(tree, region)
        };
        if status == ReportingState::NotReported {
            continue;
        }
        for breakdown in &breakdowns {
            let key = |id: &'static str, prefix: &str| {
                (
                    id,
                    prefix.to_string(),
                    breakdown.unwrap_or_default().to_string(),
                )
            };
            let (measured, denominator) = match indicator.source {
                Source::Rows {
                    denominator: Denominator::Indicator(other),
                    ..
                } => {
                    // Over the counties that reported both datasets; both are plain counts.
                    let own = summed(measures, reach, tree, region, |p| key(indicator.id, p));
                    let of = summed(measures, reach, tree, region, |p| key(other, p));
                    let denominator = of.numerator;
                    (own, Some(denominator))
                }
                Source::Rows { denominator, .. } => {
                    let measured = measures
                        .get(&key(indicator.id, &region.prefix))
                        .cloned()
                        .unwrap_or_default();
                    let denominator = match denominator {
                        Denominator::None => None,
                        Denominator::Communities => Some(f64::from(reach.communities(region))),
                        Denominator::Rows(_) | Denominator::Indicator(_) => {
                            Some(measured.denominator)
                        }
                    };
                    (measured, denominator)
                }
                Source::ReportRate => {
                    let measured = measures
                        .get(&key(indicator.id, &region.prefix))
                        .cloned()
                        .unwrap_or_default();
                    let denominator = Some(measured.denominator);
                    (measured, denominator)
                }
            };
            out.push(value(
                indicator,
                period,
                region,
                *breakdown,
                &measured,
                denominator,
                (status, reported, due),
            ));
        }
    }
}

/// A measure summed over the reporting counties inside `region` (for a street: the street's
/// own, when its county reported).
fn summed(
    measures: &Measures,
    reach: &Reach,
    tree: &RegionTree,
    region: &Region,
    key: impl Fn(&str) -> (&'static str, String, String),
) -> Measured {
    let of = |prefix: &str| measures.get(&key(prefix)).cloned().unwrap_or_default();
    if region.level >= Level::Street {
        return if reach.reported(region) > 0 {
            of(&region.prefix)
        } else {
            Measured::default()
        };
    }
    let mut total = Measured::default();
    let mut submissions = BTreeSet::new();
    for county in reach.counties_in(region) {
        if tree.get(county).is_none() {
            continue;
        }
        let m = of(county);
        total.numerator += m.numerator;
        total.denominator += m.denominator;
        total.population += m.population;
        submissions.extend(m.submissions);
    }
    total.submissions = submissions.into_iter().collect();
    total
}

fn value(
    indicator: &'static Indicator,
    period: Period,
    region: &Region,
    breakdown: Option<&'static str>,
    measured: &Measured,
    denominator: Option<f64>,
    (status, counties_reported, counties_due): (ReportingState, u32, u32),
) -> Row {
    let numerator = measured.numerator;
    let value = match denominator {
        None => Some(numerator),
        Some(d) if d > 0.0 => Some(match indicator.unit {
            Unit::Percent | Unit::PerHundred => numerator / d * 100.0,
            Unit::Count => numerator / d,
        }),
        Some(_) => None,
    };
    let target = targets::applicable(indicator.targets, region, period);
    // Only a value that speaks for the whole region is held against the target.
    let judged = (status == ReportingState::Reported)
        .then_some(value)
        .flatten();
    let assessment = target.map(|t| t.assess(judged));
    Row {
        indicator,
        period,
        region: region.code(),
        name: region.name.clone(),
        level: region.level,
        breakdown: breakdown.map(str::to_string),
        status,
        counties_reported,
        counties_due,
        value,
        numerator: Some(numerator),
        denominator,
        target: assessment.map(|a| a.target),
        target_deadline: assessment.and_then(|a| a.deadline),
        met: assessment.and_then(|a| a.met),
        gap: assessment.and_then(|a| a.gap),
        change: None,
        suppressed: false,
        quality: None,
        submissions: measured.submissions.clone(),
        people: measured.population,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::by_id;

    #[test]
    fn one_query_per_dataset_and_breakdown() {
        let shapes: Vec<(&str, Option<&str>)> = groups()
            .iter()
            .map(|g| (g[0].dataset().unwrap().name, g[0].breakdown))
            .collect();
        assert_eq!(
            shapes,
            [
                ("outlets", None),
                ("outlets", Some("mode")),
                ("enterprises", None),
                ("workers", None),
                ("trainings", None),
                ("shops", None),
                ("complaints", None)
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

    /// Every distinct count in a query about people goes to the compact counter: a
    /// `COUNT(DISTINCT …)` left over (say, spelt in lower case in the catalogue) would still be
    /// exact but would bring back a hash set per group and aggregate.
    #[test]
    fn people_queries_count_distinct_people_compactly() {
        for group in groups() {
            let dataset = group[0].dataset().unwrap();
            if dataset.openness != Openness::Closed {
                continue;
            }
            let sql = group_sql(
                dataset,
                group[0].breakdown,
                &group,
                "2023H2".parse().unwrap(),
            );
            assert!(!sql.to_uppercase().contains("DISTINCT ID_NUMBER"), "{sql}");
            assert!(!sql.to_uppercase().contains("COUNT(DISTINCT"), "{sql}");
            assert!(sql.contains(people::COUNT_PEOPLE), "{sql}");
        }
    }
}
