//! Which counties a value speaks for. A county counts for an indicator in a period when it has
//! a current accepted file (its own, or its league's or province's) of every dataset the
//! indicator reads; a nil return counts. A region's value is computed over those counties
//! only — numerator and denominator alike — so a missing file never drags a figure down,
//! and the value says how many of the region's due counties it covers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Indicator, ReportingState};
use crate::compliance::CountyStatus;
use crate::datasets::Dataset;
use crate::regions::{Level, Region, RegionTree};

/// The counties with a current accepted file, per dataset.
#[derive(Debug, Default)]
pub struct Coverage {
    by_dataset: HashMap<&'static str, BTreeSet<String>>,
}

impl Coverage {
    /// From the reporting status of every county (`compliance::status` for the country).
    pub fn new(statuses: &[CountyStatus]) -> Coverage {
        let mut by_dataset: HashMap<&'static str, BTreeSet<String>> = HashMap::new();
        for county in statuses {
            let prefix = county.code.get(..6).unwrap_or_default().to_string();
            for dataset in county.datasets.iter().filter(|d| d.current.is_some()) {
                by_dataset
                    .entry(dataset.dataset)
                    .or_default()
                    .insert(prefix.clone());
            }
        }
        Coverage { by_dataset }
    }

    /// The counties that count for an indicator: those that reported every one of its
    /// datasets.
    pub fn reach(&self, tree: &RegionTree, indicator: &Indicator) -> Reach {
        let datasets: Vec<&Dataset> = indicator.datasets();
        let empty = BTreeSet::new();
        let mut sets = datasets
            .iter()
            .map(|d| self.by_dataset.get(d.name).unwrap_or(&empty));
        let mut counties: BTreeSet<String> = sets.next().cloned().unwrap_or_default();
        for other in sets {
            counties.retain(|c| other.contains(c));
        }
        Reach::new(tree, counties)
    }
}

/// How far the reporting counties of one indicator reach into each region.
#[derive(Debug, Default)]
pub struct Reach {
    counties: BTreeSet<String>,
    /// Reporting counties and their communities inside each region of county level or above.
    inside: BTreeMap<String, (u32, u32)>,
}

impl Reach {
    fn new(tree: &RegionTree, counties: BTreeSet<String>) -> Reach {
        let mut inside: BTreeMap<String, (u32, u32)> = BTreeMap::new();
        for county in &counties {
            let communities = tree.get(county).map_or(0, |c| c.communities);
            for digits in [0, 2, 4, 6] {
                let entry = inside.entry(county[..digits].to_string()).or_default();
                entry.0 += 1;
                entry.1 += communities;
            }
        }
        Reach { counties, inside }
    }

    /// Whether `county` (a 6-digit prefix) reported.
    pub fn has(&self, county: &str) -> bool {
        self.counties.contains(county)
    }

    /// The reporting counties inside `region`, in code order.
    pub fn counties_in<'a>(&'a self, region: &'a Region) -> impl Iterator<Item = &'a String> + 'a {
        self.counties
            .range::<str, _>((
                std::ops::Bound::Included(region.prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |c| region.contains(c))
    }

    /// The regions down to `finest` that at least one reporting county reaches, in code
    /// order: what [`Reach::state`] does not call not reported. Found from the reporting
    /// counties, so its cost grows with them, not with the 45,000 regions of the tree.
    pub fn regions<'t>(&self, tree: &'t RegionTree, finest: Level) -> Vec<&'t Region> {
        let mut out = Vec::new();
        for prefix in self.inside.keys() {
            let Some(region) = tree.get(prefix).filter(|r| r.level <= finest) else {
                continue;
            };
            out.push(region);
            if region.level == Level::County && finest >= Level::Street {
                out.extend(
                    tree.descendants(region)
                        .filter(|r| r.level > Level::County && r.level <= finest),
                );
            }
        }
        out
    }

    /// Reporting counties inside `region` (for a street: 1 if its county reported).
    pub fn reported(&self, region: &Region) -> u32 {
        match region.level {
            Level::Street | Level::Village => {
                u32::from(self.has(region.prefix.at(Level::County).unwrap_or_default()))
            }
            _ => self
                .inside
                .get(region.prefix.as_str())
                .map_or(0, |(n, _)| *n),
        }
    }

    /// Communities of the reporting counties inside `region`: the denominator of coverage.
    pub fn communities(&self, region: &Region) -> u32 {
        match region.level {
            Level::Street | Level::Village => {
                if self.reported(region) > 0 {
                    region.communities
                } else {
                    0
                }
            }
            _ => self
                .inside
                .get(region.prefix.as_str())
                .map_or(0, |(_, c)| *c),
        }
    }

    /// The region's state with its reporting and due counties.
    pub fn state(&self, tree: &RegionTree, region: &Region) -> (ReportingState, u32, u32) {
        let due = tree.counties_due(region);
        let reported = self.reported(region);
        (ReportingState::of(reported, due), reported, due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::{CountyStatus, DatasetStatus, SubmissionRef};
    use crate::indicators::by_id;

    fn tree() -> RegionTree {
        RegionTree::from_units(
            [
                ("15", "内蒙古"),
                ("1522", "兴安盟"),
                ("152201", "乌兰浩特市"),
                ("152202", "阿尔山市"),
                ("152201001", "街道甲"),
                ("152202001", "街道乙"),
                ("152201001001", "社区一"),
                ("152201001002", "社区二"),
                ("152202001003", "社区三"),
            ]
            .map(|(c, n)| (c.to_string(), n.to_string())),
        )
    }

    fn reported(code: &str, datasets: &[&'static str]) -> CountyStatus {
        CountyStatus {
            code: code.to_string(),
            name: String::new(),
            datasets: datasets
                .iter()
                .map(|d| DatasetStatus {
                    dataset: d,
                    current: Some(SubmissionRef {
                        submission_id: "s".into(),
                        region: code.into(),
                        status: crate::findings::Status::Accepted,
                        decided_at: String::new(),
                        rows: 1,
                        open_findings: 0,
                    }),
                    latest: None,
                })
                .collect(),
            complete: false,
            missing: Vec::new(),
            open_findings: 0,
        }
    }

    #[test]
    fn reach_counts_counties_and_their_communities() {
        let tree = tree();
        let coverage = Coverage::new(&[
            reported("152201", &["outlets", "complaints"]),
            reported("152202", &["outlets"]),
        ]);
        let league = tree.get("1522").unwrap();
        let outlets = coverage.reach(&tree, by_id("outlet_coverage").unwrap());
        assert_eq!(
            outlets.state(&tree, league),
            (ReportingState::Reported, 2, 2)
        );
        assert_eq!(outlets.communities(league), 3);
        // Complaints per 100 outlets needs both: only 乌兰浩特市 counts.
        let per_hundred = coverage.reach(&tree, by_id("complaints_per_100_outlets").unwrap());
        assert_eq!(
            per_hundred.state(&tree, league),
            (ReportingState::Partial, 1, 2)
        );
        assert_eq!(per_hundred.communities(league), 2);
        let street = tree.get("152202001").unwrap();
        assert_eq!(
            per_hundred.state(&tree, street),
            (ReportingState::NotReported, 0, 1)
        );
        let workers = coverage.reach(&tree, by_id("credential_rate").unwrap());
        assert_eq!(
            workers.state(&tree, tree.country().unwrap()),
            (ReportingState::NotReported, 0, 2)
        );
    }
}
