//! How numbers, changes and target checks read on a page, in either language.

use maud::{Markup, html};

use super::Lang;
use jiazheng_core::indicators::snapshot::Row;
use jiazheng_core::indicators::{Indicator, Quality, ReportingState, Unit};
use jiazheng_core::periods::Period;
use jiazheng_core::regions::Level;

/// A value in its unit: `1,234`, `92.3%`, `4.5/100`.
pub fn value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Count => grouped(v),
        Unit::Percent => format!("{v:.1}%"),
        Unit::PerHundred => format!("{v:.1}/100"),
    }
}

/// A whole number with thousands separators; fractions keep one decimal.
fn grouped(v: f64) -> String {
    if v.fract() != 0.0 {
        return format!("{v:.1}");
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}

/// The change since the previous half-year, signed; percentage points for rates.
pub fn change(lang: Lang, unit: Unit, delta: f64) -> String {
    let sign = if delta > 0.0 { "+" } else { "" };
    match unit {
        Unit::Count => format!("{sign}{}", grouped(delta)),
        Unit::Percent => format!("{sign}{delta:.1} {}", lang.t("个百分点", "pp")),
        Unit::PerHundred => format!("{sign}{delta:.1}"),
    }
}

/// The value cell of a row: the figure (with how much of the area it covers when only part
/// of it reported), "not reported", "withheld" or a dash. Never a zero for a missing report.
pub fn cell(lang: Lang, indicator: &Indicator, row: Option<&Row>) -> Markup {
    match row {
        Some(r) if r.status == ReportingState::NotReported => html! {
            span.state.missing title=(lang.t("本地区尚无旗县（市、区）报送该数据", "No county of the area has reported these data")) {
                (lang.t("未报送", "not reported"))
            }
        },
        Some(r) if r.suppressed => {
            html! { span.muted title=(lang.t("涉及人数过少，不予公开", "Too few people to publish")) { (lang.t("不公开", "withheld")) } }
        }
        Some(r @ Row { value: Some(v), .. }) => html! {
            (value(indicator.unit, *v))
            @if r.status == ReportingState::Partial { br; (partial(lang, r)) }
            @if r.quality == Some(Quality::Unconfirmed) { br; (unconfirmed(lang)) }
        },
        _ => html! { "—" },
    }
}

/// "To confirm": computed from a file whose plausibility findings its submitter has not
/// confirmed yet (the `quality` of the value in every format).
pub fn unconfirmed(lang: Lang) -> Markup {
    html! {
        span.flag.quality title=(lang.t("据以计算的文件有合理性提示尚未核实", "Computed from a file with plausibility findings not yet confirmed")) {
            "⚑ " (lang.t("待核实", "unconfirmed"))
        }
    }
}

/// "Partly reported (n/m)": the counties the value covers of those due.
pub fn partial(lang: Lang, row: &Row) -> Markup {
    html! {
        span.state.partial title=(lang.t("仅按已报送的旗县（市、区）计算", "Computed over the counties that reported")) {
            (lang.t("部分报送", "partly reported")) " (" (row.counties_reported) "/" (row.counties_due) ")"
        }
    }
}

/// A target with its deadline: `100.0%（2025年底前）`.
pub fn target(lang: Lang, unit: Unit, row: &Row) -> Markup {
    let Some(target) = row.target else {
        return html! { span.muted { "—" } };
    };
    let by = row.target_deadline;
    html! {
        (value(unit, target))
        @if let Some(by) = by {
            br;
            span.muted {
                @match (lang, by.half) {
                    (Lang::Zh, 1) => { (by.year) "年6月底前" }
                    (Lang::Zh, _) => { (by.year) "年底前" }
                    (Lang::En, 1) => { "by mid-" (by.year) }
                    (Lang::En, _) => { "by end-" (by.year) }
                }
            }
        }
    }
}

/// Met or not, in words and colour (never colour alone); a target whose deadline is still
/// ahead is "not yet" met rather than missed.
pub fn met(lang: Lang, row: &Row, period: Period) -> Markup {
    let ahead = row.target_deadline.is_some_and(|by| by > period);
    match row.met {
        Some(true) => html! { span.met { "✓ " (lang.t("达标", "met")) } },
        Some(false) if ahead => html! { span.muted { "… " (lang.t("尚未达标", "not yet met")) } },
        Some(false) => html! { span.unmet { "✗ " (lang.t("未达标", "not met")) } },
        None => html! { span.muted { "—" } },
    }
}

pub fn level(lang: Lang, level: Level) -> &'static str {
    match level {
        Level::Country => lang.t("全国", "country"),
        Level::Province => lang.t("省级", "provinces"),
        Level::City => lang.t("地市级（盟、市）", "leagues and cities"),
        Level::County => lang.t("县级（旗、县、市、区）", "banners, counties and districts"),
        Level::Street => lang.t("乡镇级（苏木、乡镇、街道）", "towns and streets"),
        Level::Village => lang.t("村级", "villages"),
    }
}

/// An indicator's name in the page's language.
pub fn name(lang: Lang, indicator: &Indicator) -> &'static str {
    lang.t(indicator.zh, indicator.en)
}

/// The label of a breakdown value: the Chinese choice, or its English code.
pub fn breakdown_label(lang: Lang, indicator: &Indicator, code: &str) -> String {
    match (lang, indicator.breakdown_zh(code)) {
        (Lang::Zh, Some(zh)) => zh.to_string(),
        _ => code.replace('_', " "),
    }
}

/// A region's name as a page in this language says it: Chinese, or Pinyin beside the Chinese
/// (`Wulanhaote Shi 乌兰浩特市`).
pub fn place(lang: Lang, name: &str) -> String {
    match lang {
        Lang::Zh => name.to_string(),
        Lang::En => format!("{} {name}", jiazheng_core::regions::pinyin::romanize(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(value(Unit::Count, 1234567.0), "1,234,567");
        assert_eq!(value(Unit::Count, 999.0), "999");
        assert_eq!(value(Unit::Count, -1000.0), "-1,000");
        assert_eq!(value(Unit::Percent, 92.345), "92.3%");
        assert_eq!(change(Lang::Zh, Unit::Percent, 2.04), "+2.0 个百分点");
        assert_eq!(change(Lang::En, Unit::Count, -1200.0), "-1,200");
        assert_eq!(change(Lang::En, Unit::Count, 0.0), "0");
    }

    #[test]
    fn a_target_due_later_is_not_yet_met_rather_than_missed() {
        let row = Row {
            indicator: jiazheng_core::indicators::by_id("outlet_coverage").unwrap(),
            period: "2023H2".parse().unwrap(),
            region: "152201".into(),
            name: "乌兰浩特市".into(),
            level: Level::County,
            breakdown: None,
            value: Some(80.3),
            numerator: None,
            denominator: None,
            target: Some(100.0),
            target_deadline: "2025H2".parse().ok(),
            met: Some(false),
            gap: Some(19.7),
            change: None,
            suppressed: false,
            quality: None,
            status: jiazheng_core::indicators::ReportingState::Reported,
            counties_reported: 1,
            counties_due: 1,
            submissions: Vec::new(),
            people: 0.0,
        };
        let at = |p: &str| met(Lang::Zh, &row, p.parse().unwrap()).into_string();
        assert!(at("2023H2").contains("尚未达标"));
        assert!(at("2026H1").contains("未达标") && !at("2026H1").contains("尚未"));
        let zh = target(Lang::Zh, Unit::Percent, &row).into_string();
        assert!(
            zh.starts_with("100.0%") && zh.contains("2025年底前"),
            "{zh}"
        );
        let en = target(Lang::En, Unit::Percent, &row).into_string();
        assert!(en.contains("by end-2025"), "{en}");
    }
}
