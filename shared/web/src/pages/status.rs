//! `/status`: which counties of a region have reported which datasets for a period, when, and
//! whether the file was accepted — the page a league's statistician checks before a deadline.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Frame, Section, crumbs, period_label, picker};
use super::{Lang, PageError, Place, figures, link, public};
use crate::{AppState, Source, Stamp};
use jiazheng_core::compliance::{self, CountyStatus, DatasetStatus, SubmissionRef};
use jiazheng_core::datasets;
use jiazheng_core::findings::Status;
use jiazheng_core::regions::{Level, Region, RegionTree};

#[derive(Deserialize)]
pub struct StatusQuery {
    period: Option<String>,
    region: Option<String>,
    #[serde(default)]
    lang: Lang,
}

pub async fn page(
    State(state): State<AppState>,
    Query(q): Query<StatusQuery>,
) -> Result<Response, PageError> {
    let lang = q.lang;
    let place = Place::find(&state, lang, q.region.as_deref(), q.period.as_deref()).await?;
    let (tree, region) = (&place.tree, &place.region);
    let period = place.period.to_string();
    let periods = &place.periods;
    // The log says who reported; the snapshot which periods can be picked.
    let read = state.log_confirmed().await.map_err(lang.fail())?;
    let counties = compliance::status(
        &read.log.decisions,
        &read.confirmed,
        tree,
        place.period,
        region,
    );
    let complete = counties.iter().filter(|c| c.complete).count();

    let code = region.code();
    let params = [("period", period.as_str()), ("region", code.as_str())];
    let footer = state.footer(&place.published);
    let frame = Frame {
        lang,
        title: format!(
            "{} · {}",
            lang.t("报送情况", "Reporting"),
            figures::place(lang, &region.name)
        ),
        section: Section::Status,
        path: "/status",
        params: &params,
        footer: Some(&footer),
    };
    let body = html! {
        (crumbs(lang, tree, region, place.period))
        h1 { (lang.t("报送情况", "Who has reported")) " · " (figures::place(lang, &region.name)) " " span.muted { (period_label(lang, place.period)) } }
        (picker(lang, "/status", tree, region, place.period, periods))
        @if counties.is_empty() {
            p { (lang.t("数据按旗县（市、区）报送；请选择县级或以上地区。", "Data are reported by banners and counties: choose a county or a larger area.")) }
        } @else {
            p.notice {
                (lang.t("已完成全部数据集报送的旗县（市、区）：", "Counties with every dataset reported: "))
                strong { (complete) " / " (counties.len()) }
                " (" (format!("{:.1}%", complete as f64 / counties.len() as f64 * 100.0)) ")"
            }
            @if region.level < Level::City {
                (by_area(lang, tree, region, &period, &counties))
            } @else {
                (by_county(lang, &period, &counties))
            }
        }
        p { (lang.t("同样的数据：", "The same data: ")) a href=(link(Lang::Zh, "/v1/reports/status", &params)) { "JSON" } }
    };
    let [submissions, confirmations] = read.sources;
    let stamp = Stamp::of([
        Source::Code,
        submissions,
        confirmations,
        Source::Snapshot(place.published.version),
        Source::Regions(place.tree.version),
    ]);
    Ok(public(stamp, frame.render(body)))
}

/// A province or the country: hundreds of counties, so one row per area within, counting the
/// counties that have reported each dataset; each area opens its own page.
fn by_area(
    lang: Lang,
    tree: &RegionTree,
    region: &Region,
    period: &str,
    counties: &[CountyStatus],
) -> Markup {
    html! {
        div.scroll {
            table {
                caption { (lang.t("各地已报送的旗县（市、区）数", "Counties that have reported, by area")) }
                thead {
                    tr {
                        th scope="col" { (lang.t("地区", "Area")) }
                        th.n scope="col" { (lang.t("旗县（市、区）数", "Counties")) }
                        @for d in datasets::ALL { th.n scope="col" { (lang.t(d.zh, d.en)) } }
                        th.n scope="col" { (lang.t("全部齐全", "Complete")) }
                        th.n scope="col" { (lang.t("有待核实提示", "With findings to confirm")) }
                    }
                }
                tbody {
                    @for area in tree.children(region) {
                        @let within: Vec<&CountyStatus> = counties.iter().filter(|c| area.contains(&c.code)).collect();
                        @if !within.is_empty() {
                            tr {
                                th scope="row" { a href=(link(lang, "/status", &[("period", period), ("region", &area.code())])) { (figures::place(lang, &area.name)) } }
                                td.n { (within.len()) }
                                @for d in datasets::ALL {
                                    td.n { (within.iter().filter(|c| c.datasets.iter().any(|x| x.dataset == d.name && x.current.is_some())).count()) }
                                }
                                td.n { (within.iter().filter(|c| c.complete).count()) }
                                td.n { (within.iter().filter(|c| c.open_findings > 0).count()) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A league or a county: every county with the latest file of each dataset.
fn by_county(lang: Lang, period: &str, counties: &[CountyStatus]) -> Markup {
    html! {
        div.scroll {
            table {
                caption { (lang.t("各旗县（市、区）各数据集的最新报送", "The latest file of each dataset from each county")) }
                thead {
                    tr {
                        th scope="col" { (lang.t("旗县（市、区）", "County")) }
                        @for d in datasets::ALL { th scope="col" { (lang.t(d.zh, d.en)) } }
                        th scope="col" { (lang.t("是否齐全", "Complete")) }
                    }
                }
                tbody {
                    @for county in counties {
                        tr {
                            th scope="row" { a href=(link(lang, "/", &[("period", period), ("region", &county.code)])) { (figures::place(lang, &county.name)) } }
                            @for d in &county.datasets { td { (cell(lang, d)) } }
                            td {
                                @if county.complete { span.met { "✓ " (lang.t("齐全", "complete")) } }
                                @else { span.unmet { (lang.t("缺 ", "missing ")) (county.missing.len()) } }
                                @if county.open_findings > 0 {
                                    br; (unconfirmed(lang, county.open_findings))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One county's one dataset: the current file and, if a later one was rejected, that too.
fn cell(lang: Lang, d: &DatasetStatus) -> Markup {
    let date = |s: &SubmissionRef| s.decided_at.get(..10).unwrap_or(&s.decided_at).to_string();
    let report = |s: &SubmissionRef| link(lang, &format!("/submit/{}", s.submission_id), &[]);
    html! {
        @match (&d.current, &d.latest) {
            (Some(current), latest) => {
                @if current.rows == 0 {
                    a.met href=(report(current)) { "✓ " (lang.t("零报送", "nil return")) } " " span.muted { (date(current)) }
                } @else {
                    a.met href=(report(current)) { "✓ " (lang.t("已接收", "accepted")) } " " span.muted { (date(current)) }
                }
                @if current.open_findings > 0 {
                    br; a.flag href=(report(current)) { (unconfirmed(lang, current.open_findings)) }
                }
                @if let Some(later) = latest.as_ref().filter(|l| l.status == Status::Rejected && l.submission_id != current.submission_id) {
                    br; a.unmet href=(report(later)) { (lang.t("之后一次未通过", "a later file was rejected")) } " " span.muted { (date(later)) }
                }
            }
            (None, Some(latest)) => {
                a.unmet href=(report(latest)) { "✗ " (lang.t("未通过", "rejected")) } " " span.muted { (date(latest)) }
            }
            (None, None) => { span.muted { (lang.t("未报送", "not reported")) } }
        }
    }
}

/// The mark of plausibility findings nobody has confirmed yet (values computed from the file
/// carry the same mark).
pub(crate) fn unconfirmed(lang: Lang, open: u64) -> Markup {
    html! {
        span.flag title=(lang.t("文件通过校验，但有合理性提示尚未核实；据此计算的指标标为“待核实”", "The file passed validation but has plausibility findings not yet confirmed; values computed from it are marked")) {
            "⚑ " (lang.t("待核实 ", "to confirm: ")) (open)
        }
    }
}
