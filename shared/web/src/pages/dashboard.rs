//! `/`: the public dashboard of one region and period — every indicator against its target,
//! the child regions side by side (sortable), three charts, the data behind them and what
//! each indicator means.

use std::cmp::Ordering;
use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::charts::{Bar, Chart};
use super::layout::{Frame, Section, crumbs, period_label, picker};
use super::{Lang, PageError, Place, figures, link, public};
use crate::{AppState, Source, Stamp};
use jiazheng_core::indicators::snapshot::{self, Read, Row};
use jiazheng_core::indicators::{CATALOGUE, Indicator, ReportingState, by_id};
use jiazheng_core::periods::Period;
use jiazheng_core::regions::{Level, Region, RegionTree};

#[derive(Deserialize)]
pub struct DashboardQuery {
    period: Option<String>,
    region: Option<String>,
    /// An indicator id (or `name`) to order the child regions by.
    sort: Option<String>,
    /// `asc` or `desc`.
    order: Option<String>,
    #[serde(default)]
    lang: Lang,
}

/// The indicators of the charts, each over the counties (or streets) of the region.
const COVERAGE: &str = "outlet_coverage";
const BY_MODE: &str = "outlets_by_mode";
const CREDENTIALS: &str = "credential_rate";

/// The values of one read, by indicator and region code (with any breakdown rows).
struct Values(HashMap<(&'static str, String), Vec<Row>>);

impl Values {
    fn of(read: Read) -> Values {
        let mut by_key: HashMap<(&'static str, String), Vec<Row>> = HashMap::new();
        for row in read.rows {
            by_key
                .entry((row.indicator.id, row.region.clone()))
                .or_default()
                .push(row);
        }
        Values(by_key)
    }

    fn get(&self, indicator: &'static str, region: &str) -> &[Row] {
        self.0
            .get(&(indicator, region.to_string()))
            .map_or(&[], Vec::as_slice)
    }

    fn one(&self, indicator: &'static str, region: &str) -> Option<&Row> {
        self.get(indicator, region)
            .iter()
            .find(|r| r.breakdown.is_none())
    }
}

/// The level the county charts are drawn at: the counties of a province or league, the streets
/// of a county, the provinces of the country.
fn chart_level(region: &Region) -> Option<Level> {
    match region.level {
        Level::Province | Level::City => Some(Level::County),
        other => other.child().filter(|l| Level::PUBLISHED.contains(l)),
    }
}

pub async fn page(
    State(state): State<AppState>,
    Query(q): Query<DashboardQuery>,
) -> Result<Response, PageError> {
    let lang = q.lang;
    let place = Place::find(&state, lang, q.region.as_deref(), q.period.as_deref()).await?;
    let (tree, region) = (&place.tree, &place.region);
    let period = place.period;
    let periods = &place.periods;
    let child_level = region
        .level
        .child()
        .filter(|l| Level::PUBLISHED.contains(l));
    // The region, the areas within and (for a province or league) the counties the coverage
    // chart is drawn by: one scan of the snapshot. Codes differ across levels, so one lookup
    // by indicator and code serves them all.
    let mut levels: Vec<Level> = [Some(region.level), child_level, chart_level(region)]
        .into_iter()
        .flatten()
        .collect();
    levels.dedup();
    let all: Vec<&'static _> = CATALOGUE.iter().collect();
    let version = place.published.version;
    let values = Values::of(place.published.query(tree, &all, period, region, &levels));
    let charted = charts(
        lang,
        tree,
        region,
        period,
        &values,
        chart_level(region),
        child_level,
    );

    let period_text = period.to_string();
    let code = region.code();
    let sort = q.sort.as_deref().unwrap_or("name");
    let descending = q.order.as_deref() == Some("desc");
    let params: Vec<(&str, &str)> = [("period", period_text.as_str()), ("region", code.as_str())]
        .into_iter()
        .chain(q.sort.as_deref().map(|s| ("sort", s)))
        .chain(q.order.as_deref().map(|o| ("order", o)))
        .collect();
    let footer = state.footer(&place.published);
    let frame = Frame {
        lang,
        title: format!(
            "{} · {}",
            figures::place(lang, &region.name),
            period_label(lang, period)
        ),
        section: Section::Dashboard,
        path: "/",
        params: &params,
        footer: Some(&footer),
    };
    let body = html! {
        (crumbs(lang, tree, region, period))
        h1 { (figures::place(lang, &region.name)) " " span.muted { (period_label(lang, period)) } }
        (picker(lang, "/", tree, region, period, periods))
        (super::browse::search_form(lang, ""))
        (indicator_table(lang, region, period, &values))
        (charted)
        @if let Some(level) = child_level {
            (child_table(lang, tree, region, period, level, &values, sort, descending))
        }
        (downloads(lang, region, &period_text, child_level))
        (definitions(lang))
    };
    let stamp = Stamp::of([
        Source::Code,
        Source::Snapshot(version),
        Source::Regions(place.tree.version),
    ]);
    Ok(public(stamp, frame.render(body)))
}

/// Links to the JSON, CSV and Parquet of the same numbers.
fn formats(path: &str, params: &[(&str, &str)]) -> Markup {
    let with = |format: &'static str| {
        let mut all = params.to_vec();
        all.push(("format", format));
        link(Lang::Zh, path, &all)
    };
    html! {
        span.fmt {
            @for (format, label) in [("json", "JSON"), ("csv", "CSV"), ("parquet", "Parquet")] {
                a href=(with(format)) { (label) }
            }
        }
    }
}

fn indicator_table(lang: Lang, region: &Region, period: Period, own: &Values) -> Markup {
    let code = region.code();
    let text = period.to_string();
    html! {
        h2 id="indicators" { (lang.t("指标", "Indicators")) }
        div.scroll {
            table {
                caption { (figures::place(lang, &region.name)) " · " (period_label(lang, period)) }
                thead {
                    tr {
                        th scope="col" { (lang.t("指标", "Indicator")) }
                        th.n scope="col" { (lang.t("数值", "Value")) }
                        th.n scope="col" { (lang.t("目标", "Target")) }
                        th scope="col" { (lang.t("是否达标", "Met")) }
                        th.n scope="col" { (lang.t("较上期", "Change")) }
                        th scope="col" { (lang.t("数据", "Data")) }
                    }
                }
                tbody {
                    @for indicator in CATALOGUE {
                        @let row = own.one(indicator.id, &code).map(|r| r.clone().with_target(region));
                        @let row = row.as_ref();
                        tr id=(format!("value-{}", indicator.id)) {
                            th scope="row" { a href=(format!("#def-{}", indicator.id)) { (figures::name(lang, indicator)) } }
                            @if indicator.breakdown.is_some() {
                                td colspan="4" {}
                            } @else if region.level > indicator.finest_level() {
                                td colspan="4" { span.muted { (lang.t("只发布到", "Published down to ")) (figures::level(lang, indicator.finest_level())) } }
                            } @else {
                                td.n { (figures::cell(lang, indicator, row)) }
                                @if let Some(row) = row {
                                    td.n { (figures::target(lang, indicator.unit, row)) }
                                    td { (figures::met(lang, row, period)) }
                                } @else {
                                    td.n { span.muted { "—" } } td { span.muted { "—" } }
                                }
                                td.n { @if let Some(c) = row.and_then(|r| r.change) { (figures::change(lang, indicator.unit, c)) } @else { span.muted { "—" } } }
                            }
                            td {
                                @if region.level <= indicator.finest_level() {
                                    a.trend href=(link(lang, "/trend", &[("indicator", indicator.id), ("region", &code)])) { (lang.t("趋势", "Trend")) } " "
                                }
                                (formats(&format!("/v1/indicators/{}", indicator.id), &[("period", &text), ("region", &code)]))
                            }
                        }
                        @for part in own.get(indicator.id, &code).iter().filter(|r| r.breakdown.is_some()) {
                            tr.sub {
                                th scope="row" { (figures::breakdown_label(lang, indicator, part.breakdown.as_deref().unwrap_or(""))) }
                                td.n { (figures::cell(lang, indicator, Some(part))) }
                                td {} td {}
                                td.n { @if let Some(c) = part.change { (figures::change(lang, indicator.unit, c)) } }
                                td {}
                            }
                        }
                    }
                }
            }
        }
    }
}

fn charts(
    lang: Lang,
    tree: &RegionTree,
    region: &Region,
    period: Period,
    values: &Values,
    by_county: Option<Level>,
    by_child: Option<Level>,
) -> Markup {
    let bars_of = |id: &'static str, level: Option<Level>| -> Option<Chart<'static>> {
        let level = level?;
        let indicator = by_id(id)?;
        if level > indicator.finest_level() {
            return None;
        }
        let areas = tree.within(region, level);
        // Areas nobody reported for are left out and named under the chart; areas only partly
        // reported are marked.
        let mut missing = Vec::new();
        let mut partly = false;
        let mut bars: Vec<Bar> = Vec::new();
        for area in &areas {
            let row = values.one(id, &area.code());
            match row.map(|r| r.status) {
                Some(ReportingState::NotReported) | None => {
                    missing.push(figures::place(lang, &area.name))
                }
                Some(state) => {
                    let mark = state == ReportingState::Partial;
                    partly |= mark;
                    bars.push(Bar {
                        label: format!(
                            "{}{}",
                            figures::place(lang, &area.name),
                            if mark { "*" } else { "" }
                        ),
                        value: row.filter(|r| !r.suppressed).and_then(|r| r.value),
                    });
                }
            }
        }
        bars.sort_by(|a, b| descending(a.value, b.value));
        // The target that applies to the areas (the same rule as the table); a line only when
        // they share one.
        let mut applying: Vec<f64> = areas
            .iter()
            .filter_map(|a| snapshot::target_of(indicator, a, period).map(|(t, _)| t))
            .collect();
        applying.dedup();
        let reference = match applying[..] {
            [t] => Some((t, target_label(lang, indicator, t))),
            _ => None,
        };
        let mut notes = Vec::new();
        if partly {
            notes.push(
                lang.t(
                    "* 部分报送：仅按已报送的旗县（市、区）计算。",
                    "* Partly reported: computed over the counties that reported.",
                )
                .to_string(),
            );
        }
        if !missing.is_empty() {
            notes.push(format!(
                "{}{}",
                lang.t("未报送（未画出）：", "Not reported (not drawn): "),
                missing.join(lang.t("、", ", "))
            ));
        }
        // Titled from the catalogue, so the chart says what the table says.
        let name = figures::name(lang, indicator);
        let of_level = figures::level(lang, level);
        Some(Chart {
            id,
            title: format!("{name} · {of_level}"),
            description: format!(
                "{of_level}: {name}{}",
                lang.t("，虚线为目标。", "; the dashed line is the target.")
            ),
            unit: indicator.unit,
            bars,
            reference,
            notes,
        })
    };
    let coverage = bars_of(COVERAGE, by_county);
    let credentials = bars_of(CREDENTIALS, by_child);
    let modes = by_id(BY_MODE).map(|indicator| Chart {
        id: BY_MODE,
        title: figures::name(lang, indicator).to_string(),
        description: format!("{}: {}", region.name, figures::name(lang, indicator)),
        unit: indicator.unit,
        bars: indicator
            .breakdown_values()
            .into_iter()
            .map(|mode| Bar {
                label: figures::breakdown_label(lang, indicator, mode),
                value: values
                    .get(BY_MODE, &region.code())
                    .iter()
                    .find(|r| r.breakdown.as_deref() == Some(mode))
                    .and_then(|r| r.value),
            })
            .collect(),
        reference: None,
        notes: Vec::new(),
    });
    html! {
        h2 id="charts" { (lang.t("图表", "Charts")) }
        div.charts {
            @for chart in [coverage, modes, credentials].into_iter().flatten() {
                @if chart.bars.iter().any(|b| b.value.is_some()) {
                    (chart.render())
                } @else {
                    figure {
                        figcaption { (chart.title) }
                        p.muted { (lang.t("暂无可公开的数据。", "No figures to publish yet.")) }
                    }
                }
            }
        }
    }
}

fn target_label(lang: Lang, indicator: &Indicator, target: f64) -> String {
    format!(
        "{} {}",
        lang.t("目标", "target"),
        figures::value(indicator.unit, target)
    )
}

/// Larger first; missing values last.
fn descending(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => b.total_cmp(&a),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

#[allow(clippy::too_many_arguments)]
fn child_table(
    lang: Lang,
    tree: &RegionTree,
    region: &Region,
    period: Period,
    level: Level,
    values: &Values,
    sort: &str,
    descending_order: bool,
) -> Markup {
    let period_text = period.to_string();
    let period_text = period_text.as_str();
    let columns: Vec<&Indicator> = CATALOGUE
        .iter()
        .filter(|i| level <= i.finest_level() && i.breakdown.is_none())
        .collect();
    let mut children: Vec<(&Region, String)> = tree
        .children(region)
        .into_iter()
        .map(|c| (c, c.code()))
        .collect();
    if let Some(indicator) = columns.iter().find(|i| i.id == sort) {
        let value = |code: &str| values.one(indicator.id, code).and_then(|r| r.value);
        children.sort_by(|(_, a), (_, b)| match (value(a), value(b)) {
            (Some(x), Some(y)) if descending_order => y.total_cmp(&x),
            (Some(x), Some(y)) => x.total_cmp(&y),
            // Areas without a value go last either way.
            (x, y) => y.is_some().cmp(&x.is_some()),
        });
    } else if descending_order {
        children.reverse();
    }
    let code = region.code();
    let sort_link = |key: &str, first_desc: bool| {
        let order = if sort == key {
            if descending_order { "asc" } else { "desc" }
        } else if first_desc {
            "desc"
        } else {
            "asc"
        };
        link(
            lang,
            "/",
            &[
                ("period", period_text),
                ("region", &code),
                ("sort", key),
                ("order", order),
            ],
        ) + "#children"
    };
    let aria_sort = |key: &str| {
        (sort == key).then_some(if descending_order {
            "descending"
        } else {
            "ascending"
        })
    };
    html! {
        h2 id="children" { (lang.t("下级地区", "Areas within")) " · " (figures::level(lang, level)) }
        p.muted { (lang.t("点击列名排序，点击地区名查看该地区。", "Select a column heading to sort; select an area to open it.")) }
        div.scroll {
            table {
                caption { (figures::place(lang, &region.name)) " · " (figures::level(lang, level)) " · " (period_label(lang, period)) }
                thead {
                    tr {
                        th scope="col" aria-sort=[aria_sort("name")] { a href=(sort_link("name", false)) { (lang.t("地区", "Area")) } }
                        @for indicator in &columns {
                            th.n scope="col" aria-sort=[aria_sort(indicator.id)] {
                                a href=(sort_link(indicator.id, true)) { (figures::name(lang, indicator)) }
                            }
                        }
                    }
                }
                tbody {
                    @for (child, child_code) in &children {
                        tr {
                            th scope="row" { a href=(link(lang, "/", &[("period", period_text), ("region", child_code)])) { (figures::place(lang, &child.name)) } }
                            @for indicator in &columns {
                                td.n { (figures::cell(lang, indicator, values.one(indicator.id, child_code))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn downloads(lang: Lang, region: &Region, period: &str, child: Option<Level>) -> Markup {
    let code = region.code();
    html! {
        h2 id="data" { (lang.t("下载数据", "Download the data")) }
        ul {
            li {
                (region.name) (lang.t("的全部指标：", ": every indicator — "))
                (formats("/v1/values", &[("period", period), ("region", &code), ("level", region.level.as_str())]))
            }
            @if let Some(level) = child {
                li {
                    (figures::level(lang, level)) (lang.t("的全部指标：", ": every indicator — "))
                    (formats("/v1/values", &[("period", period), ("region", &code), ("level", level.as_str())]))
                }
            }
            li { a href="/v1/docs" { (lang.t("开放数据接口说明", "The open-data API")) } }
        }
    }
}

fn definitions(lang: Lang) -> Markup {
    html! {
        h2 id="definitions" { (lang.t("指标说明", "What the indicators mean")) }
        dl.defs {
            @for indicator in CATALOGUE {
                dt id=(format!("def-{}", indicator.id)) { (figures::name(lang, indicator)) }
                dd { (lang.t(indicator.definition_zh, indicator.definition_en)) }
                dd { (lang.t("政策依据：", "Policy clause: ")) (indicator.clause) }
                @for target in indicator.targets {
                    dd { (lang.t("目标：", "Target: ")) (lang.t(target.zh, target.en)) }
                }
            }
        }
    }
}
