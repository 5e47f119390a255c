//! What every page shares: the frame (head, navigation, language switch, footer), the
//! breadcrumb, the period and region picker, and how a period is said.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use std::sync::Arc;

use super::{Lang, link};
use crate::catalog::Publisher;
use jiazheng_core::periods::Period;
use jiazheng_core::regions::{Level, Region, RegionTree};

/// The sections of the site, for the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Dashboard,
    Status,
    Datasets,
    Submit,
}

/// What the frame around a page's content needs.
pub(super) struct Frame<'a> {
    pub(super) lang: Lang,
    pub(super) title: String,
    pub(super) section: Section,
    pub(super) path: &'a str,
    /// The page's own query without `lang`, for the language switch.
    pub(super) params: &'a [(&'a str, &'a str)],
    /// Who publishes the data and when it last changed (error pages go without).
    pub(super) footer: Option<&'a Footer>,
}

/// What every page says about the data: publisher, licence, when the published values last
/// changed, and where the catalogue is.
pub(crate) struct Footer {
    pub publisher: Arc<Publisher>,
    pub updated: Option<chrono::DateTime<chrono::Utc>>,
}

impl Footer {
    fn render(&self, lang: Lang) -> Markup {
        let publisher = &self.publisher;
        html! {
            p #about-data {
                (lang.t("发布者：", "Published by ")) (publisher.name)
                " · " (lang.t("许可：", "Licence: "))
                a href=(publisher.licence) rel="license" { (publisher.licence_name()) }
                " · " (lang.t("数据更新于 ", "Last updated "))
                @match self.updated {
                    Some(t) => time datetime=(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) { (t.format("%Y-%m-%d %H:%M UTC")) },
                    None => (lang.t("尚未发布", "not yet published")),
                }
                " · " a href="/v1/catalog" { (lang.t("数据目录（DCAT）", "Data catalogue (DCAT)")) }
                " · " a href=(format!("mailto:{}", publisher.email)) { (lang.t("联系我们", "Contact")) }
            }
        }
    }
}

const STYLE: &str = include_str!("style.css");

impl Frame<'_> {
    pub(super) fn render(&self, content: Markup) -> Markup {
        let lang = self.lang;
        let nav = [
            (Section::Dashboard, "/", "指标", "Indicators"),
            (Section::Status, "/status", "报送情况", "Reporting"),
            (Section::Datasets, "/datasets", "开放数据", "Open data"),
            (Section::Submit, "/submit", "报送数据", "Submit data"),
        ];
        html! {
            (DOCTYPE)
            html lang=(lang.html_lang()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · " (lang.t("家政进社区数据", "Home services in communities")) }
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    a.skip href="#main" { (lang.t("跳到正文", "Skip to content")) }
                    header {
                        nav aria-label=(lang.t("网站导航", "Site")) {
                            a.brand href=(link(lang, "/", &[])) { (lang.t("家政进社区", "Home services in communities")) }
                            ul {
                                @for (section, path, zh, en) in nav {
                                    li {
                                        @if section == self.section {
                                            a href=(link(lang, path, &[])) aria-current="page" { (lang.t(zh, en)) }
                                        } @else {
                                            a href=(link(lang, path, &[])) { (lang.t(zh, en)) }
                                        }
                                    }
                                }
                                li { a href="/v1/docs" { "API" } }
                                li {
                                    a href=(link(lang.other(), self.path, self.params)) lang=(lang.other().html_lang()) hreflang=(lang.other().html_lang()) {
                                        (lang.t("English", "中文"))
                                    }
                                }
                            }
                        }
                    }
                    main id="main" { (content) }
                    footer {
                        p {
                            (lang.t("数据由各旗县（市、区）依据《关于推动家政进社区的指导意见》（发改社会〔2022〕1786号）每半年报送，开放数据可自由使用。",
                                "Reported every half-year by each county under the guideline on home services in communities (发改社会〔2022〕1786号); open data, free to reuse."))
                            " "
                            a href="/v1/docs" { (lang.t("接口文档", "API reference")) }
                        }
                        @if let Some(footer) = self.footer { (footer.render(lang)) }
                    }
                }
            }
        }
    }
}

/// The frame of the submitter's pages.
pub(super) fn submit_frame<'a>(
    lang: Lang,
    title: String,
    path: &'a str,
    footer: &'a Footer,
) -> Frame<'a> {
    Frame {
        lang,
        title,
        section: Section::Submit,
        path,
        params: &[],
        footer: Some(footer),
    }
}

/// `2023H2` as people say it.
pub(super) fn period_label(lang: Lang, period: Period) -> String {
    let half = match period.half {
        1 => lang.t("年上半年", " first half"),
        _ => lang.t("年下半年", " second half"),
    };
    format!("{}{half}", period.year)
}

/// Where the region sits: the country down to it, each a link.
pub(super) fn crumbs(lang: Lang, tree: &RegionTree, region: &Region, period: Period) -> Markup {
    html! {
        nav.crumbs aria-label=(lang.t("所在位置", "Breadcrumb")) {
            ol {
                @for up in tree.ancestors(region) {
                    li { a href=(link(lang, "/", &[("period", &period.to_string()), ("region", &up.code())])) { (super::figures::place(lang, &up.name)) } }
                }
                li { span aria-current="location" { (super::figures::place(lang, &region.name)) } }
            }
        }
    }
}

/// A form (plain GET, so it works without script) to choose the period and the region: the
/// region's ancestors, itself and its children.
pub(super) fn picker(
    lang: Lang,
    action: &str,
    tree: &RegionTree,
    region: &Region,
    period: Period,
    periods: &[Period],
) -> Markup {
    let ancestors = tree.ancestors(region);
    let children: Vec<&Region> = tree
        .children(region)
        .into_iter()
        .filter(|r| Level::PUBLISHED.contains(&r.level))
        .collect();
    html! {
        form.pick method="get" action=(action) {
            label {
                (lang.t("报告期", "Period"))
                select name="period" {
                    // A period asked for that has nothing published yet is still the one shown.
                    @if !periods.contains(&period) {
                        option value=(period) selected { (period_label(lang, period)) }
                    }
                    @for p in periods.iter().rev() {
                        option value=(p) selected[*p == period] { (period_label(lang, *p)) }
                    }
                }
            }
            label {
                (lang.t("地区", "Region"))
                select name="region" {
                    @for r in &ancestors { option value=(r.code()) { (indent(r)) (super::figures::place(lang, &r.name)) } }
                    option value=(region.code()) selected { (indent(region)) (super::figures::place(lang, &region.name)) }
                    @for r in &children { option value=(r.code()) { (indent(r)) (super::figures::place(lang, &r.name)) } }
                }
            }
            @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
            button type="submit" { (lang.t("查看", "Show")) }
        }
    }
}

fn indent(region: &Region) -> String {
    let depth = Level::PUBLISHED
        .iter()
        .position(|l| *l == region.level)
        .unwrap_or(0);
    "\u{3000}".repeat(depth)
}
