//! `/submit/half-year`: the signed-in office's 半年报 as a page made for printing (A4, the
//! office's header, the indicators against their targets, the areas below with a chart, the
//! counties that have not reported), and `/submit/half-year.xlsx`, the same as a workbook.
//! Under `/submit` because the session cookie is scoped there: the report is the office's.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::charts::{Bar, Chart};
use super::layout::{period_label, submit_frame};
use super::submit::signed_in;
use super::{Lang, PageError, figures, link, private};
use crate::compliance::{half_year_report, half_year_xlsx};
use crate::{ApiError, AppState};
use jiazheng_core::half_year::{HalfYearReport, missing_names};
use jiazheng_core::indicators::ReportingState;
use jiazheng_core::keys::Key;

#[derive(Deserialize)]
pub struct HalfYearQuery {
    period: Option<String>,
    region: Option<String>,
    #[serde(default)]
    lang: Lang,
}

/// The signed-in key and the report it asks for; `None` when nobody is signed in.
async fn report_of(
    state: &AppState,
    headers: &HeaderMap,
    q: &HalfYearQuery,
) -> Result<Option<(Key, HalfYearReport)>, PageError> {
    let fail = q.lang.fail::<ApiError>();
    let Some(key) = signed_in(state, headers).await.map_err(fail)? else {
        return Ok(None);
    };
    let period = match q.period.as_deref() {
        Some(p) => Some(crate::params::value("period", p).map_err(fail)?),
        None => None,
    };
    let report = half_year_report(state, &key, q.region.as_deref(), period)
        .await
        .map_err(fail)?;
    Ok(Some((key, report)))
}

pub async fn xlsx(
    State(state): State<AppState>,
    Query(q): Query<HalfYearQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    match report_of(&state, &headers, &q).await? {
        Some((_, report)) => half_year_xlsx(&report).map_err(q.lang.fail()),
        None => Ok(Redirect::to(&link(q.lang, "/submit", &[])).into_response()),
    }
}

pub async fn page(
    State(state): State<AppState>,
    Query(q): Query<HalfYearQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let lang = q.lang;
    let Some((_, report)) = report_of(&state, &headers, &q).await? else {
        return Ok(Redirect::to(&link(lang, "/submit", &[])).into_response());
    };
    let published = state.published().await.map_err(lang.fail())?;
    let footer = state.footer(&published);
    let region = &report.region;
    let period = report.period;
    let title = match lang {
        Lang::Zh => report.heading(),
        Lang::En => format!(
            "{}: half-year report on home services in communities, {}",
            figures::place(lang, &region.name),
            period_label(lang, period)
        ),
    };
    let code = region.code();
    let period_text = period.to_string();
    let params = [("period", period_text.as_str()), ("region", code.as_str())];
    let counties = report.counties.len();
    let complete = report.counties.iter().filter(|c| c.complete).count();
    let unreported: Vec<_> = report.unreported().collect();
    let prepared = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let body = html! {
        div.report-head {
            p.office { (figures::place(lang, &region.name)) " · " (lang.t("家政进社区工作", "Home services in communities")) }
            h1 { (title) }
            p.meta {
                (lang.t("报告期：", "Period: ")) (period_label(lang, period))
                " · " (lang.t("数据截至 ", "Data as of "))
                @match report.data_as_of {
                    Some(t) => (t.format("%Y-%m-%d %H:%M UTC")),
                    None => (lang.t("尚未发布", "not yet published")),
                }
                " · " (lang.t("编制于 ", "Prepared ")) (prepared)
                " · " (lang.t("旗县（市、区）报齐 ", "Counties complete ")) (complete) " / " (counties)
            }
            p.no-print {
                a #xlsx href=(link(lang, "/submit/half-year.xlsx", &params)) { (lang.t("下载 Excel", "Download as Excel")) }
                " · " (lang.t("打印或另存为 PDF：使用浏览器的“打印”，纸张 A4。", "To print or save as PDF, use the browser's Print; the layout is A4."))
            }
        }
        h2 #own { (lang.t("一、主要指标完成情况", "1. Indicators against their targets")) }
        table {
            caption { (figures::place(lang, &region.name)) " · " (period_label(lang, period)) }
            thead { tr {
                th scope="col" { (lang.t("指标", "Indicator")) }
                th.n scope="col" { (lang.t("数值", "Value")) }
                th.n scope="col" { (lang.t("目标", "Target")) }
                th scope="col" { (lang.t("是否达标", "Met")) }
                th.n scope="col" { (lang.t("较上期", "Change")) }
            } }
            tbody {
                @for (i, row) in report.own.iter().enumerate() {
                    @let indicator = row.indicator;
                    // A breakdown's rows under a heading of their own indicator.
                    @if row.breakdown.is_some() && (i == 0 || report.own[i - 1].indicator != indicator) {
                        tr { th scope="row" colspan="5" { (figures::name(lang, indicator)) } }
                    }
                    tr.sub[row.breakdown.is_some()] {
                        th scope="row" {
                            @match &row.breakdown {
                                Some(b) => (figures::breakdown_label(lang, indicator, b)),
                                None => (figures::name(lang, indicator)),
                            }
                        }
                        td.n { (figures::cell(lang, indicator, Some(row))) }
                        td.n { @if row.breakdown.is_none() { (figures::target(lang, indicator.unit, row)) } }
                        td { @if row.breakdown.is_none() { (figures::met(lang, row, period)) } }
                        td.n { @if let Some(c) = row.change { (figures::change(lang, indicator.unit, c)) } @else { span.muted { "—" } } }
                    }
                }
            }
        }
        @if let Some(level) = report.area_level {
            h2 #areas { (lang.t("二、", "2. ")) (figures::level(lang, level)) }
            (area_chart(lang, &report))
            div.scroll {
                table {
                    caption { (figures::level(lang, level)) " · " (lang.t("有目标的指标", "indicators with targets")) }
                    thead { tr {
                        th scope="col" { (lang.t("地区", "Area")) }
                        @for indicator in HalfYearReport::area_indicators(level) {
                            th.n scope="col" { (figures::name(lang, indicator)) }
                        }
                    } }
                    tbody {
                        @for (area, values) in report.areas.iter().zip(&report.area_values) {
                            tr {
                                th scope="row" { (figures::place(lang, &area.name)) }
                                @for row in values { td.n { (figures::cell(lang, row.indicator, Some(row))) } }
                            }
                        }
                    }
                }
            }
        }
        h2 #unreported { (lang.t("三、未报齐的旗县（市、区）", "3. Counties that have not reported everything")) }
        @if unreported.is_empty() {
            p { (lang.t("所有旗县（市、区）均已报齐。", "Every county has reported every dataset.")) }
        } @else {
            table {
                thead { tr {
                    th scope="col" { (lang.t("旗县（市、区）", "County")) }
                    th scope="col" { (lang.t("未报送的数据", "Not reported")) }
                } }
                tbody {
                    @for county in &unreported {
                        tr {
                            th scope="row" { (figures::place(lang, &county.name)) }
                            td { @match lang {
                                Lang::Zh => (missing_names(county).join("、")),
                                Lang::En => (county.missing.join(", ")),
                            } }
                        }
                    }
                }
            }
        }
        h2 #notes { (lang.t("说明", "Notes")) }
        ul.note {
            li { (lang.t("“未报送”表示没有旗县报送该项数据，不是零；“部分报送”的数值只按已报送的旗县计算。", "“Not reported” means no county sent the data — not zero; partly reported values are computed over the counties that reported.")) }
            li { (lang.t("“待核实”表示数值所依据的文件有尚未核实的合理性提示。", "“To be confirmed”: a file behind the value has plausibility findings not yet confirmed.")) }
            li { (lang.t("百分比指标的“较上期”为百分点，只在两期均已报齐时给出。", "Changes of percentages are in points, given only where both half-years are fully reported.")) }
        }
    };
    let frame = submit_frame(lang, title, "/submit/half-year", &footer);
    Ok(private(StatusCode::OK, frame.render(body)))
}

/// The first indicator with a target across the areas, as bars; areas nobody reported for are
/// named under it, not drawn as zero.
fn area_chart(lang: Lang, report: &HalfYearReport) -> maud::Markup {
    let Some(level) = report.area_level else {
        return html! {};
    };
    let Some(&indicator) = HalfYearReport::area_indicators(level).first() else {
        return html! {};
    };
    let mut bars = Vec::new();
    let mut missing = Vec::new();
    for (area, values) in report.areas.iter().zip(&report.area_values) {
        match values.iter().find(|r| r.indicator == indicator) {
            Some(row) if row.status != ReportingState::NotReported => bars.push(Bar {
                label: figures::place(lang, &area.name),
                value: row.value.filter(|_| !row.suppressed),
            }),
            _ => missing.push(figures::place(lang, &area.name)),
        }
    }
    let notes = match missing.is_empty() {
        true => Vec::new(),
        false => vec![format!(
            "{}{}",
            lang.t("未报送（未画出）：", "Not reported (not drawn): "),
            missing.join(lang.t("、", ", "))
        )],
    };
    // The target line where every area is held to the same one.
    let mut targets: Vec<f64> = report
        .area_values
        .iter()
        .flatten()
        .filter(|r| r.indicator == indicator)
        .filter_map(|r| r.target)
        .collect();
    targets.dedup();
    let reference = match targets[..] {
        [t] => Some((
            t,
            format!(
                "{}{}",
                lang.t("目标 ", "target "),
                figures::value(indicator.unit, t)
            ),
        )),
        _ => None,
    };
    let name = figures::name(lang, indicator);
    let chart = Chart {
        id: "half-year-chart",
        title: format!("{name} · {}", figures::level(lang, level)),
        description: format!("{}: {name}", figures::level(lang, level)),
        unit: indicator.unit,
        bars,
        reference,
        notes,
    };
    chart.render()
}
