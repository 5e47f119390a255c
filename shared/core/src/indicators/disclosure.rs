//! Disclosure control for values about people (the workers indicators), over all the values of
//! a period before they are published, so the snapshot never holds a withheld number.
//!
//! - **Primary**: a value is withheld when the people it is about, or those without the
//!   attribute, number fewer than the indicator's minimum (5): a street of 6 workers cannot
//!   publish `rural_workers = 1`, nor a 100% card rate that speaks for every one of them.
//! - **Secondary**: numbers add up the hierarchy (a county's workers are its streets'), so a
//!   withheld child could be recovered by subtracting its published siblings from the
//!   published parent. In every group of a published parent and its reported children,
//!   either nothing is withheld, or at least two children are and what can be derived about
//!   them together — the parent minus the published siblings — again has at least the minimum
//!   on both sides. Otherwise the sibling with the fewest people is withheld too (or, when none
//!   is left, the parent, whose own group is then checked in turn), until nothing changes.
//!
//! No indicator about people has a breakdown (`catalogue_is_consistent` holds that), so the
//! hierarchy is the only way to add them up.

use std::collections::HashMap;

use super::snapshot::Row;
use super::{CATALOGUE, ReportingState};
use crate::regions::Level;

/// The prefix of the published level above `level` that holds `prefix`.
fn parent_of(prefix: &str, level: Level) -> Option<&str> {
    prefix.get(..level.parent()?.digits())
}

/// The people a value is about and the people it counts among.
fn people(v: &Row) -> (f64, f64) {
    (v.numerator.unwrap_or(0.0), v.people)
}

/// Withholds what must be withheld; see the module documentation.
pub fn apply(values: &mut [Row]) {
    for indicator in CATALOGUE.iter().filter(|i| i.about_people()) {
        let min = f64::from(indicator.disclosure_min.unwrap_or(0));
        let cells: Vec<usize> = (0..values.len())
            .filter(|&i| {
                values[i].indicator == indicator && values[i].status != ReportingState::NotReported
            })
            .collect();
        let mut withheld: HashMap<usize, bool> = cells
            .iter()
            .map(|&i| {
                let (about, among) = people(&values[i]);
                (i, about < min || among - about < min)
            })
            .collect();
        let by_prefix: HashMap<&str, usize> =
            cells.iter().map(|&i| (values[i].prefix(), i)).collect();
        let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
        for &i in &cells {
            if let Some(parent) =
                parent_of(values[i].prefix(), values[i].level).and_then(|p| by_prefix.get(p))
            {
                children.entry(*parent).or_default().push(i);
            }
        }
        // Finest groups first, so a parent withheld there is seen by its own group.
        let mut parents: Vec<usize> = children.keys().copied().collect();
        parents.sort_by_key(|&i| std::cmp::Reverse(values[i].level));
        loop {
            let mut changed = false;
            for &parent in &parents {
                if withheld[&parent] {
                    continue;
                }
                let group = &children[&parent];
                let hidden: Vec<usize> = group.iter().copied().filter(|c| withheld[c]).collect();
                if hidden.is_empty() {
                    continue;
                }
                let shown: Vec<usize> = group.iter().copied().filter(|c| !withheld[c]).collect();
                let (mut about, mut among) = people(&values[parent]);
                for &c in &shown {
                    let (a, n) = people(&values[c]);
                    about -= a;
                    among -= n;
                }
                if hidden.len() >= 2 && about >= min && among - about >= min {
                    continue;
                }
                let next = shown
                    .iter()
                    .copied()
                    .min_by(|&a, &b| {
                        people(&values[a])
                            .1
                            .total_cmp(&people(&values[b]).1)
                            .then_with(|| values[a].prefix().cmp(values[b].prefix()))
                    })
                    .unwrap_or(parent);
                withheld.insert(next, true);
                changed = true;
            }
            if !changed {
                break;
            }
        }
        for (i, hide) in withheld {
            if hide {
                let v = &mut values[i];
                v.suppressed = true;
                v.value = None;
                v.numerator = None;
                v.denominator = None;
                v.met = None;
                v.gap = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(prefix: &str, level: Level, about: f64, among: f64) -> Row {
        Row {
            indicator: crate::indicators::by_id("credential_rate").unwrap(),
            period: "2023H2".parse().unwrap(),
            region: prefix.into(),
            name: String::new(),
            level,
            breakdown: None,
            status: ReportingState::Reported,
            counties_reported: 1,
            counties_due: 1,
            value: Some(about / among * 100.0),
            numerator: Some(about),
            denominator: Some(among),
            target: None,
            target_deadline: None,
            met: None,
            gap: None,
            change: None,
            suppressed: false,
            quality: None,
            submissions: Vec::new(),
            people: among,
        }
    }

    fn withheld(values: &[Row]) -> Vec<&str> {
        values
            .iter()
            .filter(|v| v.suppressed)
            .map(Row::prefix)
            .collect()
    }

    #[test]
    fn a_small_cell_and_a_complete_rate_are_withheld_with_a_sibling() {
        let mut values = vec![
            cell("152201", Level::County, 40.0, 60.0),
            // 6 workers, all with a card: the complement is 0.
            cell("152201001", Level::Street, 6.0, 6.0),
            cell("152201002", Level::Street, 20.0, 30.0),
            cell("152201003", Level::Street, 14.0, 24.0),
        ];
        apply(&mut values);
        // The complete street, and the smallest sibling so it cannot be subtracted out.
        assert_eq!(withheld(&values), ["152201001", "152201003"]);
        assert!(values[1].value.is_none() && values[1].numerator.is_none());
        assert!(values[0].value.is_some());
    }

    #[test]
    fn withholding_reaches_up_and_down_the_hierarchy() {
        let mut values = vec![
            cell("15", Level::Province, 90.0, 150.0),
            cell("1522", Level::City, 30.0, 53.0),
            cell("1501", Level::City, 60.0, 97.0),
            cell("152201", Level::County, 27.0, 50.0),
            // 3 workers, all with a card.
            cell("152202", Level::County, 3.0, 3.0),
            // A city whose one reporting county is too small: both go, and then a sibling
            // city so that the province cannot give the city away.
            cell("1505", Level::City, 2.0, 9.0),
            cell("150502", Level::County, 2.0, 9.0),
        ];
        values[0] = cell("15", Level::Province, 92.0, 159.0);
        apply(&mut values);
        assert_eq!(
            withheld(&values),
            ["1522", "152201", "152202", "1505", "150502"]
        );
        assert!(
            values[0].value.is_some(),
            "two cities withheld together: the province is safe"
        );
    }
}
