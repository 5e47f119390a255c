//! The policy's targets and how a value is held against them.

use serde::Serialize;

use crate::periods::Period;
use crate::regions::{Level, Region};

/// Key cities of the 家政“领跑者” action, to which the 2023 coverage target applies
/// (内发改社字〔2023〕113号 names Inner Mongolia's: 呼和浩特市 and 乌海市). A reference table:
/// other provinces' key cities are added here as their lists are published.
pub const KEY_CITIES: &[(&str, &str)] = &[("1501", "呼和浩特市"), ("1503", "乌海市")];

#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Comparison {
    /// The value must reach `value`.
    AtLeast { value: f64 },
    /// The value should be about `value` (原则上…左右): met within ± `tolerance`.
    About { value: f64, tolerance: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetScope {
    /// Every region at every level.
    Everywhere,
    /// Key cities of the 领跑者 action and the regions inside them.
    KeyCities,
    /// Regions of one level only (a per-province target).
    Level(Level),
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Target {
    pub comparison: Comparison,
    pub scope: TargetScope,
    /// The period by whose end the target must be met; none for a standing target.
    #[schema(value_type = Option<String>, example = "2025H2")]
    pub deadline: Option<Period>,
    pub zh: &'static str,
    pub en: &'static str,
}

/// How a value stands against its target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    pub target: f64,
    pub deadline: Option<Period>,
    /// `None` when there is no value to judge.
    pub met: Option<bool>,
    /// How far the value is from the target (0 when met); `None` without a value.
    pub gap: Option<f64>,
}

impl Target {
    fn applies_to(&self, region: &Region) -> bool {
        match self.scope {
            TargetScope::Everywhere => true,
            TargetScope::Level(level) => region.level == level,
            TargetScope::KeyCities => {
                region.level >= Level::City
                    && KEY_CITIES
                        .iter()
                        .any(|(prefix, _)| region.prefix.starts_with(prefix))
            }
        }
    }

    pub fn target_value(&self) -> f64 {
        match self.comparison {
            Comparison::AtLeast { value } | Comparison::About { value, .. } => value,
        }
    }

    pub fn assess(&self, value: Option<f64>) -> Assessment {
        let target = self.target_value();
        let (met, gap) = match (value, self.comparison) {
            (None, _) => (None, None),
            (Some(v), Comparison::AtLeast { value }) => {
                (Some(v >= value), Some((value - v).max(0.0)))
            }
            (Some(v), Comparison::About { value, tolerance }) => {
                let met = (v - value).abs() <= tolerance;
                (Some(met), Some(if met { 0.0 } else { value - v }))
            }
        };
        Assessment {
            target,
            deadline: self.deadline,
            met,
            gap,
        }
    }
}

/// The target a region is held to in a period: among those that apply to it, the one with
/// the nearest deadline not yet past; once every deadline is past, the latest one.
pub fn applicable<'t>(
    targets: &'t [Target],
    region: &Region,
    period: Period,
) -> Option<&'t Target> {
    let applying: Vec<&Target> = targets.iter().filter(|t| t.applies_to(region)).collect();
    let upcoming = applying
        .iter()
        .filter(|t| t.deadline.is_none_or(|d| d >= period))
        .min_by_key(|t| t.deadline.map_or((i32::MAX, 0), |d| (d.year, d.half)));
    upcoming
        .or_else(|| applying.iter().max_by_key(|t| t.deadline))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::by_id;
    use crate::regions::Prefix;

    fn region(prefix: &str, level: Level) -> Region {
        Region {
            prefix: Prefix::parse(prefix).unwrap(),
            name: String::new(),
            level,
            communities: 0,
        }
    }

    #[test]
    fn coverage_targets_follow_key_cities_and_deadlines() {
        let coverage = by_id("outlet_coverage").unwrap().targets;
        let hohhot_county = region("150102", Level::County);
        let xingan = region("152201", Level::County);
        let p = |s: &str| {
            let (year, half) = s.split_once('H').unwrap();
            Period::new(year.parse().unwrap(), half.parse().unwrap()).unwrap()
        };
        assert_eq!(
            applicable(coverage, &hohhot_county, p("2023H2"))
                .unwrap()
                .target_value(),
            90.0
        );
        assert_eq!(
            applicable(coverage, &hohhot_county, p("2024H1"))
                .unwrap()
                .target_value(),
            100.0
        );
        assert_eq!(
            applicable(coverage, &xingan, p("2023H2"))
                .unwrap()
                .target_value(),
            100.0
        );
        assert_eq!(
            applicable(coverage, &xingan, p("2027H1")).unwrap().deadline,
            Some(p("2025H2"))
        );
        // The province as a whole is not a key city.
        assert_eq!(
            applicable(coverage, &region("15", Level::Province), p("2023H2"))
                .unwrap()
                .target_value(),
            100.0
        );
    }

    #[test]
    fn per_province_targets_apply_to_provinces_only() {
        let key = by_id("key_contact_enterprises").unwrap().targets;
        assert!(applicable(key, &region("1522", Level::City), "2023H2".parse().unwrap()).is_none());
        let t = applicable(
            key,
            &region("15", Level::Province),
            "2023H2".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(t.assess(Some(28.0)).met, Some(true));
        assert_eq!(t.assess(Some(12.0)).gap, Some(18.0));
        assert_eq!(t.assess(Some(40.0)).met, Some(false));
        assert_eq!(t.assess(None).met, None);
    }
}
