//! What the queries measure: one DataFusion query per dataset (and breakdown) aggregates the
//! period's rows with GROUPING SETS over the code prefixes of each level, so distinct counts
//! are exact at every level; `report_rate` is tallied from the submission log. A process holds
//! each dataset's measures per table version and shares them with every refresh that reads
//! them, uncopied.
//!
//! When a table moves, only what moved is measured again: the log says which counties' files
//! of the period changed, and a dataset whose measures all add up across counties has just
//! those counties queried, the levels above summed from the counties held. A dataset with a
//! distinct count that can span counties (enterprises, people) is queried whole, and only
//! when its files of the period changed at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;

use super::{CATALOGUE, Denominator, Indicator, Source, people};
use crate::compliance;
use crate::datasets::{self, Dataset, Openness, columns};
use crate::lake::{Lake, LakeError, Session, names, read};
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
    let mut all = Vec::new();
    for dataset in datasets::ALL {
        let table = names::dataset(dataset.name);
        let Some(version) = session.versions.get(&table).copied() else {
            continue;
        };
        let key = (lake.root().to_string(), dataset.name);
        // Taken out while it is brought up to date, so that it is not copied to be changed.
        let held = HELD_MEASURES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        let held = match held {
            Some(held) if held.period == period && held.version == version => held,
            held => {
                let files = files_by_county(session, &table, period)?;
                let held = held.filter(|h| h.period == period);
                renew(&session.ctx, dataset, period, held, files, version).await?
            }
        };
        all.push(held.measures.clone());
        HELD_MEASURES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, held);
    }
    let mut reporting = Measures::new();
    measure_reporting(statuses, tree, &mut reporting);
    all.push(Arc::new(reporting));
    Ok(Measurements(all))
}

/// What a process holds of one dataset per lake: its measures of the period last refreshed,
/// the table version they are exact for, and the files each county's rows were read from.
/// A query's result depends only on the files of the period it reads (Delta files are never
/// changed in place) and the declarations. One period per dataset, so what a process holds
/// stays the size of one refresh's measures.
struct Held {
    period: Period,
    version: i64,
    files: Files,
    measures: Arc<Measures>,
}

type HeldMeasures = HashMap<(String, &'static str), Held>;
static HELD_MEASURES: LazyLock<Mutex<HeldMeasures>> = LazyLock::new(Mutex::default);

/// A dataset's files of one period, by county (sorted paths).
type Files = BTreeMap<String, Vec<String>>;

fn files_by_county(session: &Session, table: &str, period: Period) -> Result<Files, LakeError> {
    let mut files = Files::new();
    for file in session.files(table, &[(columns::PERIOD, vec![period.to_string()])])? {
        let county = file.partition(columns::COUNTY).unwrap_or_default();
        files.entry(county).or_default().push(file.path());
    }
    files.values_mut().for_each(|paths| paths.sort());
    Ok(files)
}

/// Brings a dataset's measures of `period` to the table version whose files are `files`,
/// from what the process held of the same period, if anything: nothing to query when none of
/// the period's files changed; only the changed counties when the measures add up across
/// counties and those are at most half; otherwise the whole period.
async fn renew(
    ctx: &SessionContext,
    dataset: &'static Dataset,
    period: Period,
    held: Option<Held>,
    files: Files,
    version: i64,
) -> Result<Held, LakeError> {
    if let Some(mut held) = held {
        let changed: BTreeSet<String> = held
            .files
            .iter()
            .chain(&files)
            .filter(|(county, paths)| {
                held.files.get(*county) != Some(*paths) || files.get(*county) != Some(*paths)
            })
            .map(|(county, _)| county.clone())
            .collect();
        let by_county = changed.len() * 2 <= files.len() && adds_up(ctx, dataset);
        if changed.is_empty() || by_county {
            if !changed.is_empty() {
                MEASURED_BY_COUNTY.fetch_add(changed.len() as u64, Ordering::Relaxed);
                let fresh = measure_dataset(ctx, dataset, period, Some(&changed)).await?;
                replace_counties(Arc::make_mut(&mut held.measures), fresh, &changed);
            }
            return Ok(Held {
                period,
                version,
                files,
                measures: held.measures,
            });
        }
    }
    let measures = Arc::new(measure_dataset(ctx, dataset, period, None).await?);
    Ok(Held {
        period,
        version,
        files,
        measures,
    })
}

/// Counties this process measured alone, each time one was (one per dataset): what a refresh
/// after a county's file costs, for benchmarks and tests.
static MEASURED_BY_COUNTY: AtomicU64 = AtomicU64::new(0);

pub fn measured_by_county() -> u64 {
    MEASURED_BY_COUNTY.load(Ordering::Relaxed)
}

/// Whether every measure of `dataset` adds up across counties, so that a level above a county
/// is the sum of its counties: counts and sums do, and so does a distinct count of the region
/// field (a community lies in one county, and its rows in that county's partition). Any other
/// aggregate (a distinct enterprise or person, an average, a maximum) is assumed not to; the
/// session's own list of aggregate functions decides what is one.
fn adds_up(ctx: &SessionContext, dataset: &Dataset) -> bool {
    if dataset.openness == Openness::Closed {
        return false;
    }
    let state = ctx.state();
    let aggregates: Vec<String> = state
        .aggregate_functions()
        .keys()
        .map(|name| format!("{}(", name.to_lowercase()))
        .collect();
    let own_distinct = format!("count(distinct{})", dataset.region_field.to_lowercase());
    let reads = |i: &&Indicator| i.dataset().is_some_and(|d| d.name == dataset.name);
    CATALOGUE.iter().filter(reads).all(|indicator| {
        let (numerator, denominator) = match indicator.source {
            Source::Rows {
                numerator,
                denominator: Denominator::Rows(sql),
                ..
            } => (numerator, sql),
            Source::Rows { numerator, .. } => (numerator, ""),
            Source::ReportRate => return true,
        };
        [numerator, denominator].iter().all(|sql| {
            let sql: String = sql.to_lowercase().split_whitespace().collect();
            let rest = sql
                .replace("count(*)", "")
                .replace("sum(", "")
                .replace(&own_distinct, "");
            !rest.contains("distinct") && !aggregates.iter().any(|a| rest.contains(a.as_str()))
        })
    })
}

/// Replaces the measures of `changed` counties (and their streets) with `fresh` ones, and sums
/// the levels above the counties again from every county's.
fn replace_counties(held: &mut Measures, fresh: Measures, changed: &BTreeSet<String>) {
    let inside_changed = |prefix: &str| {
        prefix
            .get(..Level::County.digits())
            .is_some_and(|c| changed.contains(c))
    };
    for by_region in held.values_mut().flat_map(HashMap::values_mut) {
        by_region.retain(|prefix, _| !inside_changed(prefix));
    }
    for (id, by_breakdown) in fresh {
        for (breakdown, by_region) in by_breakdown {
            let held = held.entry(id).or_default().entry(breakdown).or_default();
            held.extend(by_region);
        }
    }
    for by_region in held.values_mut().flat_map(HashMap::values_mut) {
        sum_above_counties(by_region);
    }
}

/// The country, provinces and cities of a measure as the sums of their counties.
fn sum_above_counties(by_region: &mut ByRegion) {
    let county = Level::County.digits();
    by_region.retain(|prefix, _| prefix.len() >= county);
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
    let above: Vec<(String, Measured)> = above
        .into_iter()
        .map(|(prefix, (mut total, submissions))| {
            total.submissions = submissions.into_iter().map(str::to_string).collect();
            (prefix.to_string(), total)
        })
        .collect();
    by_region.extend(above);
}

/// Runs the queries of the indicators that read `dataset`: over the whole period at every
/// level, or over some `counties` at theirs and their streets'.
async fn measure_dataset(
    ctx: &SessionContext,
    dataset: &Dataset,
    period: Period,
    counties: Option<&BTreeSet<String>>,
) -> Result<Measures, LakeError> {
    let mut measures = Measures::new();
    for group in groups() {
        if group[0].dataset().is_some_and(|d| d.name == dataset.name) {
            if dataset.openness == Openness::Closed {
                people::register(ctx);
            }
            let sql = group_sql(dataset, group[0].breakdown, &group, period, counties);
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
    counties: Option<&BTreeSet<String>>,
) -> String {
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
    let breakdown_col = breakdown.map_or("''".to_string(), |b| format!("CAST({b} AS VARCHAR)"));
    // People are counted by the dataset's key (pseudonymised ID numbers) where it is closed.
    let population = match dataset.openness {
        Openness::Closed => format!("{}({})", people::COUNT_PEOPLE, dataset.key),
        _ => "0".to_string(),
    };
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
    let rows = match dataset.openness {
        Openness::Closed => people_numbered(dataset, &within),
        _ => format!("SELECT * FROM {} WHERE {within}", dataset.name),
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
                insert(
                    out,
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
            Some("mode"),
            &[by_id("outlets_by_mode").unwrap()],
            "2023H2".parse().unwrap(),
            None,
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
                None,
            );
            assert!(!sql.to_uppercase().contains("DISTINCT ID_NUMBER"), "{sql}");
            assert!(!sql.to_uppercase().contains("COUNT(DISTINCT"), "{sql}");
            assert!(sql.contains(people::COUNT_PEOPLE), "{sql}");
        }
    }

    /// Which datasets are measured county by county: every one whose measures add up across
    /// counties. Enterprises (a company may serve several counties) and people are not.
    #[test]
    fn datasets_whose_measures_add_up_across_counties() {
        let ctx = SessionContext::new();
        let by_county: Vec<&str> = datasets::ALL
            .iter()
            .filter(|d| adds_up(&ctx, d))
            .map(|d| d.name)
            .collect();
        assert_eq!(by_county, ["outlets", "trainings", "shops", "complaints"]);
    }

    #[test]
    fn some_counties_are_measured_at_their_own_levels_only() {
        let counties: BTreeSet<String> = ["150102".to_string(), "15'01".to_string()].into();
        let sql = group_sql(
            &crate::datasets::OUTLETS,
            None,
            &[by_id("outlets").unwrap()],
            "2023H2".parse().unwrap(),
            Some(&counties),
        );
        assert!(sql.contains("GROUPING SETS ((l6), (l9))"), "{sql}");
        assert!(sql.contains("COALESCE(l9, l6, '')"), "{sql}");
        assert!(
            sql.contains("WHERE period = '2023H2' AND county IN ('15''01', '150102')"),
            "{sql}"
        );
    }

    fn measured(numerator: f64, submission: &str) -> Measured {
        Measured {
            numerator,
            denominator: numerator * 2.0,
            population: 0.0,
            submissions: vec![submission.to_string()],
        }
    }

    /// A changed county's measures (and its streets') are replaced and the levels above are the
    /// sums of the counties, lineage included; a county that no longer has rows disappears.
    #[test]
    fn replacing_counties_sums_the_levels_above_again() {
        let mut held = Measures::new();
        for (prefix, n, s) in [
            ("", 6.0, "a"),
            ("15", 6.0, "a"),
            ("1501", 6.0, "a"),
            ("150102", 1.0, "a"),
            ("150102001", 1.0, "a"),
            ("150103", 2.0, "b"),
            ("150104", 3.0, "c"),
        ] {
            insert(&mut held, "outlets", "", prefix, measured(n, s));
        }
        let mut fresh = Measures::new();
        insert(&mut fresh, "outlets", "", "150102", measured(10.0, "d"));
        insert(&mut fresh, "outlets", "", "150102002", measured(10.0, "d"));
        let changed: BTreeSet<String> = ["150102".to_string(), "150104".to_string()].into();
        replace_counties(&mut held, fresh, &changed);
        let got = &held["outlets"][""];
        let mut prefixes: Vec<&str> = got.keys().map(String::as_str).collect();
        prefixes.sort();
        assert_eq!(
            prefixes,
            ["", "15", "1501", "150102", "150102002", "150103"]
        );
        for above in ["", "15", "1501"] {
            assert_eq!(got[above].numerator, 12.0, "{above}");
            assert_eq!(got[above].denominator, 24.0, "{above}");
            assert_eq!(got[above].submissions, ["b", "d"], "{above}");
        }
    }
}
