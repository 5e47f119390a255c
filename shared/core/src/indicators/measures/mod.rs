//! What the queries measure: one DataFusion query per dataset (and breakdown) aggregates the
//! period's rows with GROUPING SETS over the code prefixes of each level, so distinct counts
//! are exact at every level (a dataset about people by street only, the levels above counted
//! as unions of the streets' sets: [`upward`]); `report_rate` is tallied from the submission
//! log. A process holds each dataset's measures per table version and shares them with every
//! refresh that reads them, uncopied; when a table moves, only what moved is measured again
//! ([`held`]).

mod held;
mod upward;

pub use held::measured_by_county;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;

use super::{CATALOGUE, Indicator, Source, people};
use crate::compliance;
use crate::datasets::{self, Dataset, Openness, columns};
use crate::lake::{Lake, LakeError, Session, read};
use crate::periods::Period;
use crate::regions::{Level, RegionTree};

/// What the queries measured for one indicator in one region (and breakdown value).
#[derive(Debug, Clone, Default)]
pub(super) struct Measured {
    pub numerator: f64,
    pub denominator: f64,
    /// Distinct people behind the value, for disclosure control.
    pub population: f64,
    pub submissions: Vec<String>,
}

/// By indicator, breakdown value (`""` without one) and region prefix: nested so that a
/// lookup borrows the region's prefix instead of building a key.
pub(super) type ByRegion = HashMap<String, Measured>;
type Measures = HashMap<&'static str, HashMap<String, ByRegion>>;

fn insert(out: &mut Measures, id: &'static str, breakdown: &str, prefix: &str, m: Measured) {
    out.entry(id)
        .or_default()
        .entry(breakdown.to_string())
        .or_default()
        .insert(prefix.to_string(), m);
}

/// Every measure of a period: each dataset's as the process holds it, and the report rate's.
pub(super) struct Measurements(Vec<Arc<Measures>>);

impl Measurements {
    /// What was measured for an indicator (and breakdown value, `""` without), by region.
    pub fn of(&self, id: &str, breakdown: &str) -> Option<&ByRegion> {
        self.0
            .iter()
            .find_map(|measures| measures.get(id)?.get(breakdown))
    }
}

/// Measures every dataset of `period` that the session reads, running only the queries of
/// what moved since the measures the process holds, and the report rate from `statuses`.
pub(super) async fn measure(
    lake: &Lake,
    session: &Session,
    period: Period,
    statuses: &[compliance::CountyStatus],
    tree: &RegionTree,
) -> Result<Measurements, LakeError> {
    // The datasets' queries run side by side: each is mostly waiting on small file reads.
    let held = datasets::ALL
        .iter()
        .map(|dataset| held::current(lake, session, dataset, period));
    let mut all: Vec<Arc<Measures>> = futures::future::try_join_all(held)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let mut reporting = Measures::new();
    measure_reporting(statuses, tree, &mut reporting);
    all.push(Arc::new(reporting));
    Ok(Measurements(all))
}

/// Runs the queries of the indicators that read `dataset`: over the whole period at every
/// level, or over some `counties` at theirs and their streets'. `rows` is what the log says
/// those files hold: room for as many people is made before they are numbered.
async fn measure_dataset(
    ctx: &SessionContext,
    dataset: &Dataset,
    period: Period,
    counties: Option<&BTreeSet<String>>,
    rows: usize,
) -> Result<Measures, LakeError> {
    let mut measures = Measures::new();
    for group in groups() {
        if group[0].dataset().is_some_and(|d| d.name == dataset.name) {
            let closed = dataset.openness == Openness::Closed;
            if closed {
                people::register(ctx, rows);
            }
            let mut lineage = Lineage::OnePerCounty;
            let mut group_measures = loop {
                let read = if closed {
                    upward::measure(ctx, dataset, &group, period, counties, lineage).await?
                } else {
                    let sql = group_sql(dataset, &group, period, counties, lineage);
                    let batches = ctx.sql(&sql).await?.collect().await?;
                    read_measures(&group, &batches, lineage)?
                };
                match read {
                    Some(measures) => break measures,
                    None => lineage = Lineage::Listed,
                }
            };
            for by_region in group_measures.values_mut().flat_map(HashMap::values_mut) {
                for (prefix, summed) in above_counties(by_region) {
                    if let Some(m) = by_region.get_mut(&prefix) {
                        m.submissions = summed.submissions;
                    }
                }
            }
            measures.extend(group_measures);
        }
    }
    Ok(measures)
}

/// How a query reads the lineage of each group (the submissions its rows came from); the
/// levels above a county always list their counties' submissions.
#[derive(Clone, Copy, PartialEq)]
enum Lineage {
    /// The first and the last submission of each county and street: the same one, since a
    /// county's rows of a dataset and period are those of its current file. Two plain
    /// aggregates, where a distinct list per group costs an accumulator object per group.
    OnePerCounty,
    /// Every distinct submission of each group: the query again when a county's rows were
    /// found to come from more than one file.
    Listed,
}

impl Lineage {
    /// The aggregate, as a list of submissions.
    fn sql(self) -> String {
        let submission = columns::SUBMISSION;
        match self {
            Lineage::OnePerCounty => format!("make_array(MIN({submission}), MAX({submission}))"),
            Lineage::Listed => format!("array_agg(DISTINCT {submission})"),
        }
    }
}

/// What the counties of a measure add up to in each region above them: numbers summed,
/// submissions listed once.
fn above_counties(by_region: &ByRegion) -> Vec<(String, Measured)> {
    let county = Level::County.digits();
    let mut above: HashMap<&str, (Measured, BTreeSet<&str>)> = HashMap::new();
    for (prefix, m) in by_region.iter().filter(|(p, _)| p.len() == county) {
        for level in [Level::Country, Level::Province, Level::City] {
            let Some(ancestor) = prefix.get(..level.digits()) else {
                continue;
            };
            let (total, submissions) = above.entry(ancestor).or_default();
            total.numerator += m.numerator;
            total.denominator += m.denominator;
            total.population += m.population;
            submissions.extend(m.submissions.iter().map(String::as_str));
        }
    }
    above
        .into_iter()
        .map(|(prefix, (mut total, submissions))| {
            total.submissions = submissions.into_iter().map(str::to_string).collect();
            (prefix.to_string(), total)
        })
        .collect()
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

/// The query of a group over a dataset that is not about people: GROUPING SETS over the levels'
/// prefixes, so that distinct counts are exact at each.
fn group_sql(
    dataset: &Dataset,
    indicators: &[&Indicator],
    period: Period,
    counties: Option<&BTreeSet<String>>,
    lineage: Lineage,
) -> String {
    let breakdown = indicators[0].breakdown;
    let street = indicators[0].finest_level() == Level::Street;
    let mut levels = vec![format!("{} AS l6", columns::COUNTY)];
    let mut keys = vec!["l6"];
    if counties.is_none() {
        levels.push(format!("substr({}, 1, 2) AS l2", columns::COUNTY));
        levels.push(format!("substr({}, 1, 4) AS l4", columns::COUNTY));
        keys = vec!["l2", "l4", "l6"];
    }
    if street {
        levels.push(format!("substr({}, 1, 9) AS l9", dataset.region_field));
        keys.push("l9");
    }
    let extra: Vec<&str> = breakdown.into_iter().collect();
    // The whole period is measured at every level (the empty set is the country); some
    // counties only at their own and their streets' levels.
    let whole = counties.is_none().then_some(None);
    let sets: Vec<String> = whole
        .into_iter()
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
    let measures: Vec<String> = indicators
        .iter()
        .enumerate()
        .map(|(k, i)| {
            let (numerator, denominator) = aggregates(i);
            format!("CAST({numerator} AS DOUBLE) AS n{k}, CAST({denominator} AS DOUBLE) AS d{k}")
        })
        .collect();
    format!(
        "SELECT {prefix} AS prefix, {breakdown} AS breakdown, \
         {lineage} AS submissions, CAST(0 AS DOUBLE) AS population, {measures} \
         FROM (SELECT *, {levels} FROM ({rows}) AS period_rows) AS base \
         GROUP BY GROUPING SETS ({sets})",
        breakdown = breakdown_sql(indicators),
        lineage = lineage.sql(),
        rows = period_rows(dataset, period, counties),
        measures = measures.join(", "),
        levels = levels.join(", "),
        sets = sets.join(", "),
    )
}

/// An indicator's numerator and denominator as its query computes them (`0` for none).
fn aggregates(indicator: &Indicator) -> (&'static str, &'static str) {
    match indicator.query_aggregates() {
        Some((numerator, denominator)) => (numerator, denominator.unwrap_or("0")),
        None => ("0", "0"),
    }
}

/// The breakdown column of a group's query (`''` without one).
fn breakdown_sql(indicators: &[&Indicator]) -> String {
    indicators[0]
        .breakdown
        .map_or("''".to_string(), |b| format!("CAST({b} AS VARCHAR)"))
}

/// The rows a query measures: the period's, or some counties' of it.
fn period_rows(dataset: &Dataset, period: Period, counties: Option<&BTreeSet<String>>) -> String {
    let mut within = format!("{} = '{period}'", columns::PERIOD);
    if let Some(counties) = counties {
        // Partition values from the log, quoted all the same.
        let quoted: Vec<String> = counties
            .iter()
            .map(|c| format!("'{}'", c.replace('\'', "''")))
            .collect();
        within.push_str(&format!(
            " AND {} IN ({})",
            columns::COUNTY,
            quoted.join(", ")
        ));
    }
    match dataset.openness {
        Openness::Closed => people_numbered(dataset, &within),
        _ => format!("SELECT * FROM {} WHERE {within}", dataset.name),
    }
}

/// The period's rows of a dataset about people, with each person's pseudonym
/// replaced by a number as the rows stream by ([`people`]): exactly as many distinct values (a
/// missing key stays missing), counted in compact sets instead of hash sets of strings.
fn people_numbered(dataset: &Dataset, within: &str) -> String {
    format!(
        "SELECT * EXCLUDE ({key}), {person}({key}) AS {key} FROM {table} WHERE {within}",
        key = dataset.key,
        person = people::PERSON,
        table = dataset.name,
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

/// The measures a group's query returned; `None` when it read the lineage as one submission
/// per county and found a county or street with two.
fn read_measures(
    group: &[&'static Indicator],
    batches: &[RecordBatch],
    lineage: Lineage,
) -> Result<Option<Measures>, LakeError> {
    let mut out = Measures::new();
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
            let mut submissions = strings_of(batch.column(2).as_ref(), row)?;
            submissions.dedup();
            let county_or_below = prefix.value(row).len() >= Level::County.digits();
            if lineage == Lineage::OnePerCounty && county_or_below && submissions.len() > 1 {
                return Ok(None);
            }
            for (k, indicator) in group.iter().enumerate() {
                insert(
                    &mut out,
                    indicator.id,
                    breakdown.value(row),
                    prefix.value(row),
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
    Ok(Some(out))
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
        insert(
            out,
            indicator.id,
            "",
            &region.prefix,
            Measured {
                numerator: f64::from(*complete),
                denominator: f64::from(*due),
                population: 0.0,
                submissions: submissions.iter().map(|s| s.to_string()).collect(),
            },
        );
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
            &[by_id("outlets_by_mode").unwrap()],
            "2023H2".parse().unwrap(),
            None,
            Lineage::OnePerCounty,
        );
        assert!(
            sql.contains("GROUPING SETS ((mode), (l2, mode), (l4, mode), (l6, mode), (l9, mode))"),
            "{sql}"
        );
        assert!(sql.contains("WHERE period = '2023H2'"));
        assert!(
            sql.contains("make_array(MIN(submission_id), MAX(submission_id)) AS submissions"),
            "{sql}"
        );
    }

    #[test]
    fn some_counties_are_measured_at_their_own_levels_only() {
        let counties: BTreeSet<String> = ["150102".to_string(), "15'01".to_string()].into();
        let sql = group_sql(
            &crate::datasets::OUTLETS,
            &[by_id("outlets").unwrap()],
            "2023H2".parse().unwrap(),
            Some(&counties),
            Lineage::Listed,
        );
        assert!(sql.contains("array_agg(DISTINCT submission_id) AS submissions"));
        assert!(sql.contains("GROUPING SETS ((l6), (l9))"), "{sql}");
        assert!(sql.contains("COALESCE(l9, l6, '')"), "{sql}");
        assert!(
            sql.contains("WHERE period = '2023H2' AND county IN ('15''01', '150102')"),
            "{sql}"
        );
    }

    /// A county whose rows came from two files makes the query be read again with its lineage
    /// listed; a region above a county may have any number.
    #[test]
    fn two_submissions_in_a_county_ask_for_the_listed_lineage() {
        use deltalake::arrow::array::{
            ArrayRef, Float64Array, ListBuilder, StringArray, StringBuilder,
        };
        let batch = |prefixes: [&str; 2], lists: [[&str; 2]; 2]| {
            let mut list = ListBuilder::new(StringBuilder::new());
            for items in lists {
                items.iter().for_each(|s| list.values().append_value(s));
                list.append(true);
            }
            let floats = || Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef;
            RecordBatch::try_from_iter([
                (
                    "prefix",
                    Arc::new(StringArray::from(prefixes.to_vec())) as ArrayRef,
                ),
                (
                    "breakdown",
                    Arc::new(StringArray::from(vec!["", ""])) as ArrayRef,
                ),
                ("submissions", Arc::new(list.finish()) as ArrayRef),
                ("population", floats()),
                ("n0", floats()),
                ("d0", floats()),
            ])
            .unwrap()
        };
        let group = [by_id("outlets").unwrap()];
        let above = batch(["15", "150102"], [["a", "b"], ["a", "a"]]);
        let read = read_measures(&group, &[above], Lineage::OnePerCounty).unwrap();
        assert_eq!(read.unwrap()["outlets"][""]["150102"].submissions, ["a"]);
        let county = batch(["15", "150102"], [["a", "b"], ["a", "b"]]);
        assert!(
            read_measures(&group, std::slice::from_ref(&county), Lineage::OnePerCounty)
                .unwrap()
                .is_none()
        );
        let listed = read_measures(&group, &[county], Lineage::Listed)
            .unwrap()
            .unwrap();
        assert_eq!(listed["outlets"][""]["150102"].submissions, ["a", "b"]);
    }
}
