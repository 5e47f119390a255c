//! The plausibility rules, declared once as data: the checks run them, the report names them
//! by `code`, and the docs list them with their thresholds.

use serde::Serialize;

use crate::datasets::{COMPLAINTS, Dataset, ENTERPRISES, OUTLETS, SHOPS, TRAININGS, WORKERS};

/// What one rule compares a county's accepted file with.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// The county's rows against its previous accepted period: flagged when they fall by more
    /// than `fall` or rise by more than `rise` (fractions of the previous count), once the
    /// previous period had at least `min_rows`.
    RowCount { fall: f64, rise: f64, min_rows: u64 },
    /// A nil return where the previous period had at least `min_rows` rows.
    NilAfter { min_rows: u64 },
    /// Values of `field` that the previous period had and this file has none of (a community
    /// whose outlets all went, an enterprise no longer listed).
    Vanished { field: &'static str },
    /// Rows whose `fields` differ from the row with the same key last period: attributes that
    /// do not change (an outlet's opening date and community).
    Changed { fields: &'static [&'static str] },
    /// The row's key also submitted this period by another county of the same league (盟/市).
    Elsewhere,
    /// A `field` outside the league's median ± `k`·MAD (scaled to a standard deviation), the
    /// league being the other counties' rows this period; only with `min_peers` values.
    Outlier {
        field: &'static str,
        k: f64,
        min_peers: u64,
    },
}

/// One plausibility rule: a stable code, the dataset it reads and its check with thresholds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rule {
    /// The code a finding carries; stable, like the validation codes.
    pub code: &'static str,
    #[serde(serialize_with = "crate::datasets::serialize_name")]
    #[schema(value_type = String, example = "outlets")]
    pub dataset: &'static Dataset,
    pub check: Check,
}

/// Rules are one declaration each: the same code is the same rule.
impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.code == other.code
    }
}

const fn rule(code: &'static str, dataset: &'static Dataset, check: Check) -> Rule {
    Rule {
        code,
        dataset,
        check,
    }
}

/// Rows of a period that may grow a lot while a county is new to the policy, but not shrink
/// by a third unnoticed.
const COUNT_CHANGE: Check = Check::RowCount {
    fall: 0.30,
    rise: 2.00,
    min_rows: 10,
};
const NIL_AFTER: Check = Check::NilAfter { min_rows: 10 };
/// Nine scaled MADs: about nine standard deviations of a normal league, so a finding is a
/// figure an order of magnitude off, not the tail of an honest distribution.
const OUTLIER_K: f64 = 9.0;
const MIN_PEERS: u64 = 20;

pub const RULES: &[Rule] = &[
    rule("outlets_count_change", &OUTLETS, COUNT_CHANGE),
    rule("enterprises_count_change", &ENTERPRISES, COUNT_CHANGE),
    rule("workers_count_change", &WORKERS, COUNT_CHANGE),
    rule("trainings_count_change", &TRAININGS, COUNT_CHANGE),
    rule("outlets_nil_after_rows", &OUTLETS, NIL_AFTER),
    rule("enterprises_nil_after_rows", &ENTERPRISES, NIL_AFTER),
    rule("workers_nil_after_rows", &WORKERS, NIL_AFTER),
    rule("shops_nil_after_rows", &SHOPS, NIL_AFTER),
    rule("complaints_nil_after_rows", &COMPLAINTS, NIL_AFTER),
    rule(
        "community_lost_outlets",
        &OUTLETS,
        Check::Vanished {
            field: "community_code",
        },
    ),
    rule(
        "enterprise_missing",
        &ENTERPRISES,
        Check::Vanished {
            field: "credit_code",
        },
    ),
    rule(
        "outlet_fixed_changed",
        &OUTLETS,
        Check::Changed {
            fields: &["opened_on", "community_code"],
        },
    ),
    rule(
        "shop_fixed_changed",
        &SHOPS,
        Check::Changed {
            fields: &["opened_on", "community_code"],
        },
    ),
    rule(
        "training_fixed_changed",
        &TRAININGS,
        Check::Changed {
            fields: &["start_date", "community_code"],
        },
    ),
    rule("worker_in_two_counties", &WORKERS, Check::Elsewhere),
    rule("outlet_in_two_counties", &OUTLETS, Check::Elsewhere),
    rule(
        "outlet_subsidy_outlier",
        &OUTLETS,
        Check::Outlier {
            field: "subsidy_yuan",
            k: OUTLIER_K,
            min_peers: MIN_PEERS,
        },
    ),
    rule(
        "outlet_area_outlier",
        &OUTLETS,
        Check::Outlier {
            field: "area_m2",
            k: OUTLIER_K,
            min_peers: MIN_PEERS,
        },
    ),
    rule(
        "training_hours_outlier",
        &TRAININGS,
        Check::Outlier {
            field: "hours",
            k: OUTLIER_K,
            min_peers: MIN_PEERS,
        },
    ),
    rule(
        "training_subsidy_outlier",
        &TRAININGS,
        Check::Outlier {
            field: "subsidy_yuan",
            k: OUTLIER_K,
            min_peers: MIN_PEERS,
        },
    ),
];

/// The rules that read `dataset`.
pub fn of(dataset: &Dataset) -> impl Iterator<Item = &'static Rule> + '_ {
    RULES.iter().filter(move |r| r.dataset == dataset)
}

pub fn by_code(code: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.code == code)
}

impl Rule {
    /// The field a rule is about: its Chinese header and English name.
    fn field_words(&self, name: &str) -> (&'static str, &'static str) {
        self.dataset
            .field(name)
            .map_or(("", ""), |f| (f.zh, f.name))
    }

    /// What the rule found, in Chinese; the numbers are in the finding's value and comparison.
    pub fn message_zh(&self) -> String {
        let data = self.dataset.zh;
        match self.check {
            Check::RowCount { fall, rise, .. } => format!(
                "{data}行数与上期相比减少超过 {}% 或增加超过 {}%，请核实",
                percent(fall),
                percent(rise)
            ),
            Check::NilAfter { min_rows } => {
                format!("本期零报送，而上期报送了 {min_rows} 行以上，请核实")
            }
            Check::Vanished { field } => {
                format!("上期有、本期没有的{}，请核实", self.field_words(field).0)
            }
            Check::Changed { .. } => "与上期同一编号的记录相比，不应变化的内容变了，请核实".into(),
            Check::Elsewhere => {
                let key = self.field_words(self.dataset.key).0;
                format!("同一{key}本期也由本盟市另一个旗县报送，请核实")
            }
            Check::Outlier { k, .. } => {
                format!("数值远离本盟市其他旗县的水平（中位数 ± {k} 倍标准化绝对中位差），请核实")
            }
        }
    }

    pub fn message_en(&self) -> String {
        let data = self.dataset.en;
        match self.check {
            Check::RowCount { fall, rise, .. } => format!(
                "{data}: the number of rows fell by more than {}% or rose by more than {}% since the previous period; please verify",
                percent(fall),
                percent(rise)
            ),
            Check::NilAfter { min_rows } => format!(
                "A nil return, where the previous period had {min_rows} rows or more; please verify"
            ),
            Check::Vanished { field } => format!(
                "In the previous period, not in this file ({}); please verify",
                self.field_words(field).1
            ),
            Check::Changed { .. } => "Differs from the row with the same number last period in what should not change; please verify".into(),
            Check::Elsewhere => "Also submitted this period by another county of the same league; please verify".into(),
            Check::Outlier { k, .. } => format!(
                "Far from the other counties of the league (median ± {k} scaled MADs); please verify"
            ),
        }
    }
}

fn percent(fraction: f64) -> String {
    format!("{}", (fraction * 100.0).round())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::Kind;

    #[test]
    fn every_rule_names_fields_its_dataset_has() {
        let mut codes: Vec<_> = RULES.iter().map(|r| r.code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), RULES.len(), "codes are unique");
        for rule in RULES {
            let fields: Vec<&str> = match rule.check {
                Check::Vanished { field } => vec![field],
                Check::Changed { fields } => fields.to_vec(),
                Check::Outlier { field, .. } => {
                    let kind = rule.dataset.field(field).map(|f| f.kind);
                    assert!(
                        matches!(kind, Some(Kind::Amount | Kind::Count { .. })),
                        "{}: an outlier is measured on a number",
                        rule.code
                    );
                    vec![field]
                }
                _ => Vec::new(),
            };
            for field in fields {
                assert!(
                    rule.dataset.field(field).is_some(),
                    "{}: {field}",
                    rule.code
                );
            }
            assert!(!rule.message_zh().is_empty() && !rule.message_en().is_empty());
        }
    }
}
