//! The policy's indicators, declared once as data in [`CATALOGUE`]: names, unit, definition,
//! the policy clause, the DataFusion aggregates, targets and disclosure rules. The catalogue
//! endpoint, the computation, the snapshot and the pages all read these declarations.

mod catalogue;
mod compute;
mod coverage;
mod disclosure;
mod measures;
mod people;
mod refresh;
pub mod snapshot;
pub mod targets;

use serde::{Deserialize, Serialize};

pub use catalogue::CATALOGUE;
pub use compute::{Computed, compute_period};
pub use measures::measured_by_county;
pub use refresh::{Refreshed, is_fresh, refresh};
pub use targets::{Comparison, KEY_CITIES, Target, TargetScope};

use crate::datasets::{Dataset, Kind};
use crate::regions::Level;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A count of things: the value is the numerator.
    Count,
    /// numerator ÷ denominator × 100.
    Percent,
    /// numerator ÷ denominator × 100, read "per hundred".
    PerHundred,
}

impl Unit {
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Count => "",
            Unit::Percent => "%",
            Unit::PerHundred => "/100",
        }
    }
}

/// How much of a region a value speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportingState {
    /// Every county of the region that is due has a current accepted file of the data.
    Reported,
    /// Some have: the value is computed over those counties only, and says how many.
    Partial,
    /// None has: there is no value, and no zero either.
    NotReported,
}

impl ReportingState {
    pub const ALL: [ReportingState; 3] = [
        ReportingState::Reported,
        ReportingState::Partial,
        ReportingState::NotReported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportingState::Reported => "reported",
            ReportingState::Partial => "partial",
            ReportingState::NotReported => "not_reported",
        }
    }

    pub fn parse(s: &str) -> Option<ReportingState> {
        ReportingState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
    }

    pub fn zh(self) -> &'static str {
        match self {
            ReportingState::Reported => "已报送",
            ReportingState::Partial => "部分报送",
            ReportingState::NotReported => "未报送",
        }
    }

    pub fn en(self) -> &'static str {
        match self {
            ReportingState::Reported => "reported",
            ReportingState::Partial => "partly reported",
            ReportingState::NotReported => "not reported",
        }
    }

    /// The state of a region with `reported` of its `due` counties in.
    pub fn of(reported: u32, due: u32) -> ReportingState {
        if reported == 0 {
            ReportingState::NotReported
        } else if reported >= due {
            ReportingState::Reported
        } else {
            ReportingState::Partial
        }
    }
}

/// Whether a statistician can sign a value yet, as far as the plausibility checks go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Every file behind the value passed the plausibility checks, or its submitter confirmed
    /// each finding (已核实).
    Checked,
    /// A file behind the value has plausibility findings its submitter has not confirmed.
    Unconfirmed,
}

impl Quality {
    pub const ALL: [Quality; 2] = [Quality::Checked, Quality::Unconfirmed];

    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Checked => "checked",
            Quality::Unconfirmed => "unconfirmed",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            Quality::Checked => "已核实",
            Quality::Unconfirmed => "待核实",
        }
    }

    pub fn en(self) -> &'static str {
        match self {
            Quality::Checked => "checked",
            Quality::Unconfirmed => "unconfirmed",
        }
    }
}

/// What a rate is divided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "of", rename_all = "snake_case")]
pub enum Denominator {
    /// A plain count: the value is the numerator.
    None,
    /// All communities of the region by the NBS rule, whether or not they reported.
    Communities,
    /// An aggregate over the same rows as the numerator.
    Rows(&'static str),
    /// The numerator of another indicator in the same region (complaints per 100 outlets).
    Indicator(&'static str),
}

/// Where the numbers come from.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Aggregates over one dataset's rows in the region and period.
    Rows {
        #[serde(serialize_with = "crate::datasets::serialize_name")]
        dataset: &'static Dataset,
        /// A DataFusion aggregate expression.
        numerator: &'static str,
        denominator: Denominator,
    },
    /// Counties with an accepted file of every dataset ÷ counties (from the submission log).
    ReportRate,
}

/// One indicator.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Indicator {
    pub id: &'static str,
    pub zh: &'static str,
    pub en: &'static str,
    pub unit: Unit,
    pub definition_zh: &'static str,
    pub definition_en: &'static str,
    /// The clause of the policy documents it comes from.
    pub clause: &'static str,
    /// Free-form: the dataset and aggregate expressions it is computed from.
    #[schema(value_type = Object)]
    pub source: Source,
    /// A field whose values split the indicator (outlets by mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<&'static str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub targets: &'static [Target],
    /// Values about fewer people than this are withheld from public output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disclosure_min: Option<u32>,
}

impl Indicator {
    pub fn dataset(&self) -> Option<&'static Dataset> {
        match self.source {
            Source::Rows { dataset, .. } => Some(dataset),
            Source::ReportRate => None,
        }
    }

    /// The aggregates its dataset's query computes: the numerator, and the denominator where it
    /// is counted from the same rows. `None` for the report rate, tallied from the log.
    pub(crate) fn query_aggregates(&self) -> Option<(&'static str, Option<&'static str>)> {
        match self.source {
            Source::Rows {
                numerator,
                denominator: Denominator::Rows(sql),
                ..
            } => Some((numerator, Some(sql))),
            Source::Rows { numerator, .. } => Some((numerator, None)),
            Source::ReportRate => None,
        }
    }

    /// Every dataset the value is computed from: its own, and that of an indicator it is
    /// divided by. A county counts for the value only when it has reported all of them.
    pub fn datasets(&self) -> Vec<&'static Dataset> {
        let mut all: Vec<&'static Dataset> = self.dataset().into_iter().collect();
        if let Source::Rows {
            denominator: Denominator::Indicator(other),
            ..
        } = self.source
            && let Some(other) = by_id(other).and_then(Indicator::dataset)
            && !all.iter().any(|d| d.name == other.name)
        {
            all.push(other);
        }
        all
    }

    /// Whether the value is about people (workers) and so falls under disclosure control.
    pub fn about_people(&self) -> bool {
        self.disclosure_min.is_some()
    }

    /// The finest level the indicator is published at: streets for community-level rows,
    /// counties for enterprises (registered by county) and for reporting (done by counties).
    pub fn finest_level(&self) -> Level {
        let Some(dataset) = self.dataset() else {
            return Level::County;
        };
        match dataset.field(dataset.region_field).map(|f| f.kind) {
            Some(Kind::CountyCode) => Level::County,
            _ => Level::Street,
        }
    }

    pub fn levels(&self) -> Vec<Level> {
        Level::PUBLISHED
            .into_iter()
            .filter(|l| *l <= self.finest_level())
            .collect()
    }

    /// The Chinese label of one of its breakdown values (`embedded` → 嵌入).
    pub fn breakdown_zh(&self, code: &str) -> Option<&'static str> {
        let field = self.dataset()?.field(self.breakdown?)?;
        field
            .kind
            .choices()
            .iter()
            .find(|c| c.code == code)
            .map(|c| c.zh)
    }

    /// The values the breakdown field can take, in declaration order.
    pub fn breakdown_values(&self) -> Vec<&'static str> {
        match self.breakdown.and_then(|b| self.dataset()?.field(b)) {
            Some(field) => field.kind.choices().iter().map(|c| c.code).collect(),
            None => Vec::new(),
        }
    }
}

pub fn by_id(id: &str) -> Option<&'static Indicator> {
    CATALOGUE.iter().find(|i| i.id == id)
}

/// Indicators are one declaration each: the same id is the same indicator.
impl PartialEq for Indicator {
    fn eq(&self, other: &Indicator) -> bool {
        self.id == other.id
    }
}

/// Writes an indicator as its id, as rows, tables and answers name it.
pub fn serialize_id<S: serde::Serializer>(
    indicator: &&'static Indicator,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(indicator.id)
}

/// An indicator named by its id (a query string's `indicator=`, a stored row).
impl<'de> Deserialize<'de> for &'static Indicator {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = String::deserialize(d)?;
        by_id(&id).ok_or_else(|| serde::de::Error::custom(format!("no indicator {id:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_consistent() {
        let mut ids: Vec<_> = CATALOGUE.iter().map(|i| i.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CATALOGUE.len());
        for i in CATALOGUE {
            assert!(!i.clause.is_empty(), "{}", i.id);
            if let Some(b) = i.breakdown {
                assert!(i.dataset().and_then(|d| d.field(b)).is_some(), "{}", i.id);
                // Disclosure control protects sums up the hierarchy only.
                assert!(
                    !i.about_people(),
                    "{}: a breakdown of a value about people",
                    i.id
                );
            }
            if let Source::Rows {
                denominator: Denominator::Indicator(other),
                ..
            } = i.source
            {
                let other = by_id(other).expect("denominator indicator");
                assert_eq!(other.finest_level(), i.finest_level());
                assert!(other.breakdown.is_none());
            }
        }
        assert_eq!(
            by_id("outlet_coverage").unwrap().finest_level(),
            Level::Street
        );
        assert_eq!(
            by_id("key_contact_enterprises").unwrap().finest_level(),
            Level::County
        );
        assert_eq!(by_id("report_rate").unwrap().finest_level(), Level::County);
        assert_eq!(
            by_id("outlets_by_mode").unwrap().breakdown_values(),
            ["standalone", "embedded", "partnership", "online"]
        );
    }
}
