//! The policy's indicators, declared once as data: the catalogue the API lists, the SQL
//! DataFusion runs, and the definitions the pages print all come from [`CATALOGUE`].

mod compute;
pub mod snapshot;

use serde::Serialize;

pub use compute::{compute_period, refresh};

use crate::datasets::{self, Dataset, Kind};
use crate::regions::Level;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A count of things.
    Count,
    /// numerator ÷ denominator × 100.
    Percent,
}

impl Unit {
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Count => "",
            Unit::Percent => "%",
        }
    }
}

/// What a rate is divided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "sql", rename_all = "snake_case")]
pub enum Denominator {
    /// A plain count: the value is the numerator.
    None,
    /// All communities of the region by the NBS rule, whether or not they reported.
    Communities,
    /// An aggregate over the same rows as the numerator.
    Rows(&'static str),
}

/// One indicator.
#[derive(Debug, Serialize)]
pub struct Indicator {
    pub id: &'static str,
    pub zh: &'static str,
    pub en: &'static str,
    pub unit: Unit,
    pub definition_zh: &'static str,
    pub definition_en: &'static str,
    /// The dataset whose rows are counted.
    #[serde(serialize_with = "dataset_name")]
    pub dataset: &'static Dataset,
    /// A DataFusion aggregate over the dataset's rows in the region and period.
    pub numerator: &'static str,
    pub denominator: Denominator,
    /// A field whose values split the indicator (outlets by mode).
    pub breakdown: Option<&'static str>,
}

fn dataset_name<S: serde::Serializer>(d: &&'static Dataset, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.name)
}

impl Indicator {
    /// The finest level the indicator is published at: streets for community-level rows,
    /// counties for enterprises, which are registered by county.
    pub fn finest_level(&self) -> Level {
        let region_field = self.dataset.field(self.dataset.region_field);
        match region_field.map(|f| f.kind) {
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

    /// The values the breakdown field can take, in declaration order.
    pub fn breakdown_values(&self) -> Vec<&'static str> {
        match self.breakdown.and_then(|b| self.dataset.field(b)) {
            Some(field) => field.kind.choices().iter().map(|c| c.code).collect(),
            None => Vec::new(),
        }
    }
}

pub fn by_id(id: &str) -> Option<&'static Indicator> {
    CATALOGUE.iter().find(|i| i.id == id)
}

pub static CATALOGUE: &[Indicator] = &[
    Indicator {
        id: "outlet_coverage",
        zh: "社区家政服务网点覆盖率",
        en: "Community coverage of home-service outlets",
        unit: Unit::Percent,
        definition_zh: "有至少一个家政服务网点的社区数 ÷ 地区内全部社区数（统计用区划代码末三位 001–199）",
        definition_en: "Communities with at least one outlet ÷ all communities of the region (NBS codes ending 001–199)",
        dataset: &datasets::OUTLETS,
        numerator: "COUNT(DISTINCT community_code)",
        denominator: Denominator::Communities,
        breakdown: None,
    },
    Indicator {
        id: "outlets",
        zh: "社区家政服务网点数",
        en: "Community home-service outlets",
        unit: Unit::Count,
        definition_zh: "报送的社区家政服务网点数",
        definition_en: "Outlets reported",
        dataset: &datasets::OUTLETS,
        numerator: "COUNT(*)",
        denominator: Denominator::None,
        breakdown: None,
    },
    Indicator {
        id: "outlets_by_mode",
        zh: "按进驻方式分的网点数",
        en: "Outlets by way of entering the community",
        unit: Unit::Count,
        definition_zh: "按独营、嵌入、合作、线上分列的网点数",
        definition_en: "Outlets by mode: standalone, embedded, partnership, online",
        dataset: &datasets::OUTLETS,
        numerator: "COUNT(*)",
        denominator: Denominator::None,
        breakdown: Some("mode"),
    },
    Indicator {
        id: "industry_education_enterprises",
        zh: "产教融合型家政企业数",
        en: "Industry-education integration enterprises",
        unit: Unit::Count,
        definition_zh: "入库培育或已认证的产教融合型家政企业数（按统一社会信用代码去重）",
        definition_en: "Distinct enterprises in cultivation or certified as industry-education enterprises",
        dataset: &datasets::ENTERPRISES,
        numerator: "COUNT(DISTINCT CASE WHEN industry_education IN ('cultivation', 'certified') THEN credit_code END)",
        denominator: Denominator::None,
        breakdown: None,
    },
    Indicator {
        id: "key_contact_enterprises",
        zh: "重点联系家政企业数",
        en: "Key contact enterprises",
        unit: Unit::Count,
        definition_zh: "列入重点联系的家政企业数（按统一社会信用代码去重）",
        definition_en: "Distinct enterprises on the key contact list",
        dataset: &datasets::ENTERPRISES,
        numerator: "COUNT(DISTINCT CASE WHEN key_contact THEN credit_code END)",
        denominator: Denominator::None,
        breakdown: None,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_consistent() {
        let mut ids: Vec<_> = CATALOGUE.iter().map(|i| i.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CATALOGUE.len());
        assert_eq!(
            by_id("outlet_coverage").unwrap().finest_level(),
            Level::Street
        );
        assert_eq!(
            by_id("key_contact_enterprises").unwrap().finest_level(),
            Level::County
        );
        assert_eq!(
            by_id("outlets_by_mode").unwrap().breakdown_values(),
            ["standalone", "embedded", "partnership", "online"]
        );
        for i in CATALOGUE {
            if let Some(b) = i.breakdown {
                assert!(i.dataset.field(b).is_some());
            }
        }
    }
}
