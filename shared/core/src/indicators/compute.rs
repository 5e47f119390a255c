//! Computing every indicator of a period with DataFusion, for every region at once.
//!
//! The queries ([`measures`](super::measures)) aggregate the period's rows at every level at
//! once, so distinct counts are exact at every level. Rows exist
//! only for counties with a current accepted file, so each aggregate already covers exactly
//! the counties that reported; [`coverage`](super::coverage) says which those are, supplies
//! the denominators over them and each value's reporting state. Regions no county of which
//! reported are not stored at all: readers fill them in as `not_reported`, never as zeros.
//! Targets are judged on fully reported values only; disclosure control runs over the whole
//! period at the end ([`disclosure`](super::disclosure)).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::coverage::{Coverage, Reach};
use super::measures::{self, ByRegion, Measured, Measurements};
use super::snapshot::Row;
use super::targets;
use super::{CATALOGUE, Denominator, Indicator, Quality, ReportingState, Source, Unit, disclosure};
use crate::compliance;
use crate::lake::{Lake, LakeError, TableVersions, names};
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
    let session = lake.session(&table_refs).await?;
    let ctx = &session.ctx;
    let mut sources = session.versions.clone();
    sources.insert(names::REGIONS.to_string(), regions_version);

    let log = submissions::read_session(ctx).await?;
    let confirmed = Confirmed::read_session(ctx).await?;
    let statuses = match tree.country() {
        Some(country) => compliance::status(&log, &confirmed, &tree, period, country),
        None => Vec::new(),
    };
    let measures = measures::measure(lake, &session, period, &statuses, &tree).await?;
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

/// One value per region at each published level (and per breakdown value) that at least
/// one reporting county reaches; `report_rate` for every region, since reporting is what it
/// measures.
fn assemble(
    indicator: &'static Indicator,
    period: Period,
    measures: &Measurements,
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
    let report_rate = matches!(indicator.source, Source::ReportRate);
    let regions: Vec<&Region> = if report_rate {
        tree.iter().filter(|r| r.level <= finest).collect()
    } else {
        reach.regions(tree, finest)
    };
    // What was measured by region, per breakdown value: looked up once, borrowed per region.
    let by_region = |id: &str, breakdown: Option<&str>| measures.of(id, breakdown.unwrap_or(""));
    let own: Vec<_> = breakdowns
        .iter()
        .map(|b| by_region(indicator.id, *b))
        .collect();
    for region in regions {
        let (status, reported, due) = if report_rate {
            let m = at(own[0], region);
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
        for (breakdown, own) in breakdowns.iter().zip(&own) {
            let (measured, denominator) = match indicator.source {
                Source::Rows {
                    denominator: Denominator::Indicator(other),
                    ..
                } => {
                    // Over the counties that reported both datasets; both are plain counts.
                    let of = summed(by_region(other, *breakdown), reach, tree, region);
                    let own = summed(*own, reach, tree, region);
                    (Cow::Owned(own), Some(of.numerator))
                }
                Source::Rows { denominator, .. } => {
                    let measured = at(*own, region);
                    let denominator = match denominator {
                        Denominator::None => None,
                        Denominator::Communities => Some(f64::from(reach.communities(region))),
                        Denominator::Rows(_) | Denominator::Indicator(_) => {
                            Some(measured.denominator)
                        }
                    };
                    (Cow::Borrowed(measured), denominator)
                }
                Source::ReportRate => {
                    let measured = at(*own, region);
                    (Cow::Borrowed(measured), Some(measured.denominator))
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

/// What was measured in a region; nothing where nothing was.
fn at<'m>(measured: Option<&'m ByRegion>, region: &Region) -> &'m Measured {
    static NOTHING: Measured = Measured {
        numerator: 0.0,
        denominator: 0.0,
        population: 0.0,
        submissions: Vec::new(),
    };
    measured
        .and_then(|m| m.get(region.prefix.as_str()))
        .unwrap_or(&NOTHING)
}

/// A measure summed over the reporting counties inside `region` (for a street: the street's
/// own, when its county reported).
fn summed(
    measured: Option<&ByRegion>,
    reach: &Reach,
    tree: &RegionTree,
    region: &Region,
) -> Measured {
    let of = |prefix: &str| measured.and_then(|m| m.get(prefix));
    if region.level >= Level::Street {
        return match reach.reported(region) > 0 {
            true => of(&region.prefix).cloned().unwrap_or_default(),
            false => Measured::default(),
        };
    }
    let mut total = Measured::default();
    let mut submissions = BTreeSet::new();
    for county in reach.counties_in(region) {
        if tree.get(county).is_none() {
            continue;
        }
        let Some(m) = of(county) else {
            continue;
        };
        total.numerator += m.numerator;
        total.denominator += m.denominator;
        total.population += m.population;
        submissions.extend(&m.submissions);
    }
    total.submissions = submissions.into_iter().cloned().collect();
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
