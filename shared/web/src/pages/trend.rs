//! `/trend?indicator=&region=`: one indicator of one region over every published half-year,
//! as a line toward its target and deadline and as a table, with the same series to download.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::charts::Line;
use super::layout::{Frame, Section, crumbs, period_label};
use super::{Lang, PageError, Place, figures, link, public};
use crate::{ApiError, AppState, Source, Stamp};
use jiazheng_core::indicators::ReportingState;
use jiazheng_core::periods::Period;

#[derive(Deserialize)]
pub struct TrendQuery {
    indicator: String,
    region: Option<String>,
    #[serde(default)]
    lang: Lang,
}

pub async fn page(
    State(state): State<AppState>,
    Query(q): Query<TrendQuery>,
) -> Result<Response, PageError> {
    let lang = q.lang;
    let fail = lang.fail::<ApiError>();
    let place = Place::find(&state, lang, q.region.as_deref(), None).await?;
    let (tree, region) = (&place.tree, &place.region);
    let indicator = crate::indicators::indicator_at(&q.indicator, region.level).map_err(fail)?;
    let rows = place.published.series(tree, indicator, region).rows;
    let totals: Vec<_> = rows.iter().filter(|r| r.breakdown.is_none()).collect();
    // The axis runs through the deadline of the latest target, so the line is read against it.
    let latest = totals.last();
    let deadline = latest.and_then(|r| r.target_deadline);
    let mut axis: Vec<Period> = totals.iter().map(|r| r.period).collect();
    while let (Some(last), Some(by)) = (axis.last().copied(), deadline)
        && last < by
    {
        axis.push(last.next());
    }
    let value_of = |p: Period| {
        totals
            .iter()
            .find(|r| r.period == p)
            .filter(|r| r.status != ReportingState::NotReported && !r.suppressed)
            .and_then(|r| r.value)
    };
    let name = figures::name(lang, indicator);
    let chart = Line {
        id: "trend",
        title: format!("{name} · {}", figures::place(lang, &region.name)),
        description: lang
            .t("各半年的数值，虚线为目标及其期限；未报送的半年没有点。", "The value of each half-year; dashed: the target and its deadline. Half-years nobody reported have no point.")
            .to_string(),
        unit: indicator.unit,
        points: axis.iter().map(|p| (p.to_string(), value_of(*p))).collect(),
        target: latest.and_then(|r| r.target).map(|t| {
            (t, format!("{}{}", lang.t("目标 ", "target "), figures::value(indicator.unit, t)))
        }),
        deadline: deadline.and_then(|by| {
            let at = axis.iter().position(|p| *p == by)?;
            Some((at, format!("{}{by}", lang.t("期限 ", "deadline "))))
        }),
        notes: Vec::new(),
    };
    let code = region.code();
    let params = [("indicator", indicator.id), ("region", code.as_str())];
    let footer = state.footer(&place.published);
    let frame = Frame {
        lang,
        title: format!("{name} · {}", figures::place(lang, &region.name)),
        section: Section::Dashboard,
        path: "/trend",
        params: &params,
        footer: Some(&footer),
    };
    let latest_period = place.period;
    let body = html! {
        (crumbs(lang, tree, region, latest_period))
        h1 { (name) " · " (figures::place(lang, &region.name)) }
        p { (lang.t(indicator.definition_zh, indicator.definition_en)) }
        @if indicator.breakdown.is_none() { (chart.render()) }
        div.scroll {
            table #series {
                caption { (lang.t("各半年数值", "By half-year")) }
                thead {
                    tr {
                        th scope="col" { (lang.t("报告期", "Period")) }
                        @if indicator.breakdown.is_some() { th scope="col" { (lang.t("分类", "Breakdown")) } }
                        th.n scope="col" { (lang.t("数值", "Value")) }
                        th.n scope="col" { (lang.t("目标", "Target")) }
                        th scope="col" { (lang.t("是否达标", "Met")) }
                        th.n scope="col" { (lang.t("较上期", "Change")) }
                    }
                }
                tbody {
                    @for row in &rows {
                        tr {
                            th scope="row" { a href=(link(lang, "/", &[("period", &row.period.to_string()), ("region", &code)])) { (period_label(lang, row.period)) } }
                            @if indicator.breakdown.is_some() { td { (row.breakdown.clone().unwrap_or_default()) } }
                            td.n { (figures::cell(lang, indicator, Some(row))) }
                            td.n { (figures::target(lang, indicator.unit, row)) }
                            td { (figures::met(lang, row, row.period)) }
                            td.n { @if let Some(c) = row.change { (figures::change(lang, indicator.unit, c)) } @else { span.muted { "—" } } }
                        }
                    }
                }
            }
        }
        p {
            (lang.t("同样的数据：", "The same data: "))
            @for (format, label) in [("json", "JSON"), ("csv", "CSV"), ("parquet", "Parquet")] {
                a href=(link(Lang::Zh, &format!("/v1/indicators/{}/series", indicator.id), &[("region", &code), ("format", format)])) { (label) } " "
            }
        }
    };
    let stamp = Stamp::of([
        Source::Code,
        Source::Snapshot(place.published.version),
        Source::Regions(place.tree.version),
    ]);
    Ok(public(stamp, frame.render(body)))
}
