//! Compliance with the half-yearly report system (半年报): which counties have an accepted file of which
//! dataset for a period, and who is missing. Counties are held to account through this.

use std::collections::HashMap;

use serde::Serialize;

use crate::datasets;
use crate::findings::Status;
use crate::periods::Period;
use crate::plausibility::Confirmed;
use crate::regions::{Level, Region, RegionTree};
use crate::submissions::Submission;

/// One dataset of one county in a period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DatasetStatus {
    pub dataset: &'static str,
    /// The accepted submission whose rows are current for the county, if any.
    pub current: Option<SubmissionRef>,
    /// The newest decision about a file covering the county (it may be a rejection after the
    /// current file, or the only attempt).
    pub latest: Option<SubmissionRef>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SubmissionRef {
    pub submission_id: String,
    pub region: String,
    pub status: Status,
    pub decided_at: String,
    /// Data rows of the file: 0 for a nil return (零报送).
    pub rows: i64,
    /// Plausibility findings of the file its submitter has not confirmed yet.
    pub open_findings: u64,
}

impl SubmissionRef {
    fn of(s: &Submission, confirmed: &Confirmed) -> Self {
        SubmissionRef {
            submission_id: s.submission_id.clone(),
            region: s.region.clone(),
            status: s.status,
            decided_at: s.decided_at.clone(),
            rows: s.rows,
            open_findings: confirmed.open(s),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CountyStatus {
    pub code: String,
    pub name: String,
    pub datasets: Vec<DatasetStatus>,
    /// Every dataset has a current accepted file.
    pub complete: bool,
    pub missing: Vec<&'static str>,
    /// Plausibility findings of the county's current files not confirmed yet: the values
    /// computed from them are flagged `unconfirmed`.
    pub open_findings: u64,
}

/// Counties that report: county-level units with streets (NBS lists a few 市辖区 placeholders
/// without any, which have nobody to report).
pub fn reporting_counties<'t>(tree: &'t RegionTree, within: &'t Region) -> Vec<&'t Region> {
    let counties = if within.level <= Level::County {
        tree.within(within, Level::County)
    } else {
        Vec::new()
    };
    counties
        .into_iter()
        .filter(|c| tree.children(c).iter().any(|s| s.level == Level::Street))
        .collect()
}

/// The status of every reporting county inside `within` for a period, from the log.
pub fn status(
    log: &[Submission],
    confirmed: &Confirmed,
    tree: &RegionTree,
    period: Period,
    within: &Region,
) -> Vec<CountyStatus> {
    // Decisions by dataset and submitting region prefix, in log (decision) order.
    let mut by_region: HashMap<(&str, &str), Vec<&Submission>> = HashMap::new();
    for s in log.iter().filter(|s| s.period == period) {
        if let Some(region) = tree.resolve(&s.region) {
            by_region
                .entry((s.dataset.name, region.prefix.as_str()))
                .or_default()
                .push(s);
        }
    }
    reporting_counties(tree, within)
        .into_iter()
        .map(|county| {
            let datasets: Vec<DatasetStatus> = datasets::ALL
                .iter()
                .map(|d| {
                    // Files for the county itself or for a league, province or the country.
                    let covering: Vec<&Submission> =
                        [Level::Country, Level::Province, Level::City, Level::County]
                            .iter()
                            .filter_map(|&l| by_region.get(&(d.name, county.prefix.at(l)?)))
                            .flatten()
                            .copied()
                            .collect();
                    let current = covering
                        .iter()
                        .filter(|s| s.status == Status::Accepted)
                        .max_by_key(|s| s.table_version)
                        .map(|s| SubmissionRef::of(s, confirmed));
                    let latest = covering
                        .iter()
                        .max_by(|a, b| a.decided_at.cmp(&b.decided_at))
                        .map(|s| SubmissionRef::of(s, confirmed));
                    DatasetStatus {
                        dataset: d.name,
                        current,
                        latest,
                    }
                })
                .collect();
            let missing: Vec<&'static str> = datasets
                .iter()
                .filter(|d| d.current.is_none())
                .map(|d| d.dataset)
                .collect();
            let open_findings = datasets
                .iter()
                .filter_map(|d| d.current.as_ref())
                .map(|c| c.open_findings)
                .sum();
            CountyStatus {
                code: county.code(),
                open_findings,
                name: county.name.clone(),
                complete: missing.is_empty(),
                missing,
                datasets,
            }
        })
        .collect()
}
