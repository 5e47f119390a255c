//! Browsing open data as in Datasette: `/datasets` lists the open datasets, `/datasets/{name}`
//! shows one with the API's own filters, sorting, cursor pages and facets (read by the same
//! function as `/v1/datasets/{name}`) and links to every format; `/regions?q=` finds a region
//! by its name in Chinese or Pinyin.

use std::collections::HashMap;

use axum::extract::{Path, Query, RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{Frame, Section, period_label};
use super::submit::LangQuery;
use super::{Lang, PageError, figures, link, public};
use crate::records::{PARAMS, RecordQuery, facet_names, facetable, open_dataset, read_page};
use crate::{ApiError, AppState, Source, Stamp};
use jiazheng_core::datasets::{self, Dataset, Kind, Openness, columns};
use jiazheng_core::regions::{RegionTree, pinyin};

/// Rows on a page (the API's default is larger; a page stays small to read and to load).
const PAGE_ROWS: u32 = 50;

fn open() -> impl Iterator<Item = &'static Dataset> {
    datasets::ALL
        .iter()
        .copied()
        .filter(|d| d.openness == Openness::Records)
}

/// `/datasets`: the open datasets, and the region search.
pub async fn index(
    State(state): State<AppState>,
    Query(q): Query<LangQuery>,
) -> Result<Response, PageError> {
    let lang = q.lang;
    let published = state.published().await.map_err(lang.fail())?;
    let footer = state.footer(&published);
    let title = lang.t("开放数据", "Open data").to_string();
    let frame = Frame {
        lang,
        title: title.clone(),
        section: Section::Datasets,
        path: "/datasets",
        params: &[],
        footer: Some(&footer),
    };
    let body = html! {
        h1 { (title) }
        p { (lang.t("各旗县（市、区）报送的逐条记录（不含个人信息），可筛选、排序、分面统计，并下载为 JSON、CSV 或 Parquet。",
            "Every record the counties report (no personal data), to filter, sort and count by facet, and to download as JSON, CSV or Parquet.")) }
        ul {
            @for d in open() {
                li { a href=(link(lang, &format!("/datasets/{}", d.name), &[])) { (lang.t(d.zh, d.en)) } " · " code { (d.name) } }
            }
        }
        (search_form(lang, ""))
    };
    let stamp = Stamp::of([Source::Code, Source::Snapshot(published.version)]);
    Ok(public(stamp, frame.render(body)))
}

/// A search box over region names, in Chinese or Pinyin.
pub(super) fn search_form(lang: Lang, value: &str) -> Markup {
    html! {
        form.pick role="search" method="get" action="/regions" {
            @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
            label {
                (lang.t("查找地区（中文或拼音）", "Find a region (Chinese or Pinyin)"))
                input type="search" name="q" value=(value) maxlength="40" placeholder=(lang.t("如：兴安、xingan", "e.g. 兴安, xingan"));
            }
            button type="submit" { (lang.t("查找", "Search")) }
        }
    }
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    lang: Lang,
}

/// `/regions?q=`: regions whose name matches, each with where it lies and links to its figures.
pub async fn regions(
    State(state): State<AppState>,
    Query(q): Query<SearchQuery>,
) -> Result<Response, PageError> {
    let lang = q.lang;
    let fail = lang.fail::<ApiError>();
    if q.q.chars().count() > 40 {
        return Err(fail(ApiError::BadQuery(
            "a search is at most 40 characters".into(),
        )));
    }
    let (tree, published) = tokio::try_join!(state.regions(), state.published()).map_err(fail)?;
    let found = pinyin::search(&tree, &q.q, 50);
    let footer = state.footer(&published);
    let title = lang.t("查找地区", "Find a region").to_string();
    let params = [("q", q.q.as_str())];
    let frame = Frame {
        lang,
        title: title.clone(),
        section: Section::Datasets,
        path: "/regions",
        params: &params,
        footer: Some(&footer),
    };
    let body = html! {
        h1 { (title) }
        (search_form(lang, &q.q))
        @if !q.q.trim().is_empty() {
            p #found role="status" { (lang.t("找到 ", "Found ")) (found.len()) (lang.t(" 个地区", " regions")) }
            @if !found.is_empty() {
                table #regions {
                    thead { tr {
                        th scope="col" { (lang.t("地区", "Region")) }
                        th scope="col" { (lang.t("级别", "Level")) }
                        th scope="col" { (lang.t("所属", "Within")) }
                        th scope="col" { (lang.t("查看", "See")) }
                    } }
                    tbody {
                        @for r in &found {
                            @let code = r.code();
                            tr {
                                th scope="row" { (figures::place(lang, &r.name)) " " span.muted { (code) } }
                                td { (figures::level(lang, r.level)) }
                                td { (tree.ancestors(r).iter().skip(1).map(|a| figures::place(lang, &a.name)).collect::<Vec<_>>().join(" › ")) }
                                td {
                                    a href=(link(lang, "/", &[("region", &code)])) { (lang.t("指标", "Indicators")) } " · "
                                    a href=(link(lang, "/status", &[("region", &code)])) { (lang.t("报送情况", "Reporting")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let stamp = Stamp::of([
        Source::Code,
        Source::Regions(tree.version),
        Source::Snapshot(published.version),
    ]);
    Ok(public(stamp, frame.render(body)))
}

/// `/datasets/{name}`: a page of records with the filters, sort, facets and pager.
pub async fn dataset(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    Query(l): Query<LangQuery>,
    Query(mut params): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let lang = l.lang;
    let fail = lang.fail::<ApiError>();
    // Parsed as the API parses it, so a bad period or limit is its problem, as a page.
    let mut q: RecordQuery = crate::params::parse(raw.as_deref().unwrap_or("")).map_err(fail)?;
    let dataset = open_dataset(&name).map_err(fail)?;
    params.remove("lang");
    params.remove("format");
    params.retain(|_, v| !v.is_empty());
    q.region = q.region.filter(|r| !r.is_empty());
    q.sort = q.sort.filter(|s| !s.is_empty());
    q.limit.get_or_insert(PAGE_ROWS);
    let facets = facetable(dataset);
    let asked = facet_names(dataset, Some(&facets.join(","))).map_err(fail)?;
    let (tree, published) = tokio::try_join!(state.regions(), state.published()).map_err(fail)?;
    let page = read_page(&state, dataset, &q, &params, &asked)
        .await
        .map_err(fail)?;
    let footer = state.footer(&published);
    let title = lang.t(dataset.zh, dataset.en).to_string();
    let path = format!("/datasets/{}", dataset.name);
    let mut own: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    own.sort();
    let frame = Frame {
        lang,
        title: title.clone(),
        section: Section::Datasets,
        path: &path,
        params: &own,
        footer: Some(&footer),
    };
    // A link to this page with one parameter set (or removed), back at the first page.
    let with = |name: &str, value: Option<&str>| {
        let mut all: Vec<(&str, &str)> = own
            .iter()
            .copied()
            .filter(|(k, _)| *k != name && *k != "cursor")
            .collect();
        if let Some(value) = value {
            all.push((name, value));
        }
        link(lang, &path, &all)
    };
    let rows = page.table.to_json_rows().map_err(fail)?;
    let columns = page.table.column_names();
    let filters: Vec<(&str, &str)> = own
        .iter()
        .copied()
        .filter(|(k, _)| !PARAMS.contains(k) && *k != "lang")
        .collect();
    let shown_from = page_offset(q.cursor.as_deref()) + 1;
    // The same page from the API, in each format.
    let api_links: Vec<(&str, String)> = [("JSON", "json"), ("CSV", "csv"), ("Parquet", "parquet")]
        .into_iter()
        .map(|(label, format)| {
            let mut api = own.clone();
            api.push(("format", format));
            (
                label,
                link(Lang::Zh, &format!("/v1/datasets/{}", dataset.name), &api),
            )
        })
        .collect();
    let body = html! {
        h1 { (title) " " span.muted { (period_label(lang, page.period)) } }
        (filter_form(lang, dataset, &path, &q, &params, &published.periods(), page.period))
        @if !filters.is_empty() || q.region.is_some() {
            p #active {
                (lang.t("筛选（点击取消）：", "Filtered by (click to remove): "))
                @if let Some(region) = &q.region {
                    a.chip href=(with("region", None)) title=(lang.t("取消此筛选", "Remove this filter")) { (region_label(lang, &tree, region)) " ×" }
                    " "
                }
                @for (field, value) in &filters {
                    a.chip href=(with(field, None)) title=(lang.t("取消此筛选", "Remove this filter")) { (field_label(lang, dataset, field)) "：" (value_label(lang, dataset, field, value, &tree)) " ×" }
                    " "
                }
            }
        }
        p #matched role="status" {
            (lang.t("共 ", "")) (page.matched) (lang.t(" 条记录", " records"))
            @if !rows.is_empty() {
                (lang.t("，本页第 ", "; this page: ")) (shown_from) "–" (shown_from + rows.len() - 1) (lang.t(" 条", ""))
            }
        }
        div.browse {
            section.facets aria-labelledby="facets-title" {
                h2 #facets-title { (lang.t("分面", "Facets")) }
                // In the order the dataset declares its fields, the county last.
                @for (field, values) in asked.iter().filter_map(|f| Some((*f, page.facets.get(*f)?))) {
                    h3 { (field_label(lang, dataset, field)) }
                    ul {
                        @for v in values {
                            li { a href=(with(filter_of(field), Some(&v.value))) { (value_label(lang, dataset, field, &v.value, &tree)) } " " span.muted { (v.count) } }
                        }
                    }
                }
            }
            div.scroll {
                table #records {
                    caption { (title) " · " (period_label(lang, page.period)) }
                    thead { tr {
                        @for c in &columns {
                            th scope="col" { a href=(with("sort", Some(&sort_toggle(q.sort.as_deref(), c)))) { (field_label(lang, dataset, c)) } }
                        }
                    } }
                    tbody {
                        @for row in &rows {
                            tr {
                                @for (i, c) in columns.iter().enumerate() {
                                    @let text = cell_text(lang, dataset, c, row.get(c.as_str()), &tree);
                                    @if i == 0 { th scope="row" { (text) } } @else { td { (text) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        nav.pager aria-label=(lang.t("翻页", "Pages")) {
            @if q.cursor.is_some() { a href=(with("cursor", None)) { (lang.t("« 第一页", "« First page")) } " " }
            @if let Some(next) = &page.next_cursor { a #next rel="next" href=(with("cursor", Some(next))) { (lang.t("下一页 »", "Next page »")) } }
        }
        h2 { (lang.t("下载", "Download")) }
        p.fmt {
            (lang.t("本页（同样的筛选）：", "This page (same filters): "))
            @for (label, url) in &api_links {
                a href=(url) { (label) }
            }
            " · " (lang.t("整期：", "Whole period: "))
            @for ext in ["csv", "parquet"] {
                a href=(format!("/v1/datasets/{}/{}.{ext}", dataset.name, page.period)) { (ext.to_uppercase()) }
            }
        }
    };
    let stamp = Stamp::of([
        Source::Code,
        Source::Table(dataset.name, page.version),
        Source::Regions(tree.version),
        Source::Snapshot(published.version),
    ]);
    Ok(public(stamp, frame.render(body)))
}

/// The parameter a facet's value filters by: a county is a region.
fn filter_of(facet: &str) -> &str {
    if facet == columns::COUNTY {
        "region"
    } else {
        facet
    }
}

/// Where a cursor starts (`version.offset`).
fn page_offset(cursor: Option<&str>) -> usize {
    cursor
        .and_then(|c| c.split_once('.'))
        .and_then(|(_, o)| o.parse().ok())
        .unwrap_or(0)
}

/// Sorting by a column: ascending first, descending when it already is.
fn sort_toggle(current: Option<&str>, column: &str) -> String {
    match current {
        Some(c) if c == column => format!("-{column}"),
        _ => column.to_string(),
    }
}

fn field_label(lang: Lang, dataset: &Dataset, name: &str) -> String {
    match (lang, dataset.field(name)) {
        (Lang::Zh, Some(f)) => f.zh.to_string(),
        (Lang::Zh, None) => match name {
            columns::COUNTY => "旗县（市、区）".into(),
            columns::PERIOD => "时期".into(),
            columns::SUBMISSION => "报送编号".into(),
            other => other.into(),
        },
        (Lang::En, _) => name.replace('_', " "),
    }
}

fn region_label(lang: Lang, tree: &RegionTree, code: &str) -> String {
    tree.resolve(code)
        .map_or_else(|| code.to_string(), |r| figures::place(lang, &r.name))
}

/// A value as a reader reads it: a choice by its Chinese label, yes/no, a county by name.
fn value_label(
    lang: Lang,
    dataset: &Dataset,
    field: &str,
    value: &str,
    tree: &RegionTree,
) -> String {
    if field == columns::COUNTY {
        return region_label(lang, tree, value);
    }
    match dataset.field(field).map(|f| &f.kind) {
        Some(Kind::Bool) => match value {
            "true" => lang.t("是", "yes").into(),
            "false" => lang.t("否", "no").into(),
            other => other.into(),
        },
        Some(kind @ (Kind::Enum { .. } | Kind::EnumList { .. })) if lang == Lang::Zh => kind
            .choices()
            .iter()
            .find(|c| c.code == value)
            .map_or_else(|| value.to_string(), |c| c.zh.to_string()),
        _ => value.replace('_', " "),
    }
}

fn cell_text(
    lang: Lang,
    dataset: &Dataset,
    field: &str,
    value: Option<&Value>,
    tree: &RegionTree,
) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => value_label(lang, dataset, field, s, tree),
        Some(Value::Bool(b)) => value_label(lang, dataset, field, &b.to_string(), tree),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => value_label(lang, dataset, field, s, tree),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(lang.t("、", ", ")),
        Some(other) => other.to_string(),
    }
}

/// The filters as a form: the period, the region, each choice and yes/no field, the sort.
fn filter_form(
    lang: Lang,
    dataset: &Dataset,
    path: &str,
    q: &RecordQuery,
    params: &HashMap<String, String>,
    periods: &[jiazheng_core::periods::Period],
    period: jiazheng_core::periods::Period,
) -> Markup {
    let choice_fields: Vec<_> = dataset
        .fields
        .iter()
        .filter(|f| f.kind.is_categorical())
        .collect();
    let sortable: Vec<_> = dataset
        .fields
        .iter()
        .filter(|f| !matches!(f.kind, Kind::EnumList { .. }))
        .collect();
    let sort = q.sort.as_deref().unwrap_or("");
    html! {
        form.pick #filters method="get" action=(path) {
            @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
            label { (lang.t("时期", "Period"))
                select name="period" {
                    @for p in periods.iter().rev() {
                        option value=(p.to_string()) selected[*p == period] { (period_label(lang, *p)) }
                    }
                }
            }
            label { (lang.t("地区代码", "Region code"))
                input type="text" name="region" value=(q.region.as_deref().unwrap_or("")) size="12" inputmode="numeric";
            }
            @for f in &choice_fields {
                @let current = params.get(f.name).map(String::as_str).unwrap_or("");
                label { (field_label(lang, dataset, f.name))
                    select name=(f.name) {
                        option value="" { (lang.t("全部", "All")) }
                        @if matches!(f.kind, Kind::Bool) {
                            option value="true" selected[current == "true"] { (lang.t("是", "yes")) }
                            option value="false" selected[current == "false"] { (lang.t("否", "no")) }
                        } @else {
                            @for c in f.kind.choices() {
                                option value=(c.code) selected[current == c.code] { (lang.t(c.zh, c.code)) }
                            }
                        }
                    }
                }
            }
            label { (lang.t("排序", "Sort by"))
                select name="sort" {
                    option value="" { (lang.t("默认", "Default")) }
                    @for f in &sortable {
                        @let down = format!("-{}", f.name);
                        option value=(f.name) selected[sort == f.name] { (field_label(lang, dataset, f.name)) " ↑" }
                        option value=(down) selected[sort == down] { (field_label(lang, dataset, f.name)) " ↓" }
                    }
                }
            }
            button type="submit" { (lang.t("筛选", "Filter")) }
        }
    }
}
