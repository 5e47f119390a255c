//! What a process holds of each dataset's measures, and how it brings them to a new table
//! version: when a table moves, only what moved is measured again. The log says which
//! counties' files of the period changed; a dataset whose measures all add up across counties
//! has just those counties queried and the levels above summed from the counties held. A
//! dataset with a distinct count that can span counties (enterprises, people) is queried
//! whole, and only when its files of the period changed at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use deltalake::datafusion::prelude::SessionContext;

use super::{ByRegion, Measures, above_counties, measure_dataset};
use crate::datasets::{Dataset, Openness, columns};
use crate::indicators::{CATALOGUE, Indicator};
use crate::lake::{Lake, LakeError, Session, names};
use crate::periods::Period;
use crate::regions::Level;

/// A dataset's measures of `period` at the version the session reads: as held, brought up to
/// date, or measured afresh.
pub(super) async fn current(
    lake: &Lake,
    session: &Session,
    dataset: &'static Dataset,
    period: Period,
) -> Result<Option<Arc<Measures>>, LakeError> {
    let table = names::dataset(dataset.name);
    let Some(version) = session.versions.get(&table).copied() else {
        return Ok(None);
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
    let measures = held.measures.clone();
    HELD_MEASURES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, held);
    Ok(Some(measures))
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

/// A dataset's files of one period, by county.
type Files = BTreeMap<String, CountyFiles>;

/// A county's files of one period (sorted paths) and the rows the log says they hold.
#[derive(Default, PartialEq)]
struct CountyFiles {
    paths: Vec<String>,
    rows: usize,
}

fn files_by_county(session: &Session, table: &str, period: Period) -> Result<Files, LakeError> {
    let mut files = Files::new();
    for file in session.files(table, &[(columns::PERIOD, vec![period.to_string()])])? {
        let county = file.partition(columns::COUNTY).unwrap_or_default();
        let entry = files.entry(county).or_default();
        entry.paths.push(file.path());
        entry.rows += file.rows().unwrap_or(0);
    }
    files.values_mut().for_each(|county| county.paths.sort());
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
            .filter(|(county, both)| {
                held.files.get(*county) != Some(*both) || files.get(*county) != Some(*both)
            })
            .map(|(county, _)| county.clone())
            .collect();
        // A county is a six-digit partition value; anything else is measured with the rest.
        let counties = changed.iter().all(|c| c.len() == Level::County.digits());
        let by_county = counties && changed.len() * 2 <= files.len() && adds_up(ctx, dataset);
        if changed.is_empty() || by_county {
            if !changed.is_empty() {
                MEASURED_BY_COUNTY.fetch_add(changed.len() as u64, Ordering::Relaxed);
                let rows = changed.iter().filter_map(|c| files.get(c)).map(|c| c.rows);
                let fresh =
                    measure_dataset(ctx, dataset, period, Some(&changed), rows.sum()).await?;
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
    let rows = files.values().map(|c| c.rows).sum();
    let measures = Arc::new(measure_dataset(ctx, dataset, period, None, rows).await?);
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
/// session's own list of aggregate functions decides what is one. (The catalogue's sums are of
/// whole numbers, exact in any order; a sum of fractional amounts could differ from the whole
/// query's in its last bit, as the whole query's own partial sums do from run to run.)
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
        let Some((numerator, denominator)) = indicator.query_aggregates() else {
            return true;
        };
        std::iter::once(numerator).chain(denominator).all(|sql| {
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
    by_region.retain(|prefix, _| prefix.len() >= Level::County.digits());
    let above = above_counties(by_region);
    by_region.extend(above);
}

#[cfg(test)]
mod tests {
    use super::super::{Measured, insert};
    use super::*;
    use crate::datasets;

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
