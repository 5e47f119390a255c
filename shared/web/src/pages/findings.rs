//! `/submit/{id}`: one submission's validation report as a page — whether the file was
//! accepted and is current, and every problem by row, column and cell value, so a submitter
//! finds the offending cells in the file at once.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{period_label, submit_frame};
use super::{Lang, PageError, link, private};
use crate::{ApiError, AppState};
use jiazheng_core::findings::{Report, Severity, Status};
use jiazheng_core::regions::RegionTree;
use jiazheng_core::submissions;

#[derive(Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    lang: Lang,
    duplicate: Option<String>,
}

/// One submission's report: what was wrong, row by row and cell by cell.
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, PageError> {
    let lang = q.lang;
    let fail = lang.fail::<ApiError>();
    let report = state
        .ingestor
        .report(&id)
        .await
        .map_err(lang.fail())?
        .ok_or_else(|| fail(ApiError::UnknownSubmission(id.clone())))?;
    render(&state, &report, lang, q.duplicate.is_some()).await
}

/// The page of a submission's report (also served as `/v1/submissions/{id}/report.html`).
pub(crate) async fn render(
    state: &AppState,
    report: &Report,
    lang: Lang,
    duplicate: bool,
) -> Result<Response, PageError> {
    let id = &report.submission_id;
    let (_, log) = state.log().await.map_err(lang.fail())?;
    let decided = log.find(id).cloned();
    let tree = state.regions().await.map_err(lang.fail())?;
    let page = report_page(lang, report, decided.as_ref(), &tree, duplicate);
    Ok(private(StatusCode::OK, page))
}

fn report_page(
    lang: Lang,
    report: &Report,
    decided: Option<&(submissions::Submission, bool)>,
    tree: &RegionTree,
    duplicate: bool,
) -> Markup {
    let region = tree.resolve(&report.region);
    let region_name = region.map_or(report.region.clone(), |r| r.name.clone());
    let dataset = report.dataset;
    let current = decided.is_some_and(|(_, c)| *c);
    let summary = &report.summary;
    let mut issues: Vec<_> = report.issues.iter().collect();
    // Whole-file problems first, then by row and column: the order the file is read in.
    issues.sort_by(|a, b| (a.row, &a.column).cmp(&(b.row, &b.column)));
    // Plausibility findings say what a value was compared with; other reports need no column.
    let has_comparison = issues.iter().any(|i| i.comparison.is_some());
    let mut by_column: Vec<(String, usize)> = Vec::new();
    for issue in &issues {
        let column = issue.column.clone().unwrap_or_default();
        match by_column.iter_mut().find(|(c, _)| *c == column) {
            Some((_, n)) => *n += 1,
            None => by_column.push((column, 1)),
        }
    }
    let path = format!("/submit/{}", report.submission_id);
    let mut frame = submit_frame(
        lang,
        format!("{} {}", lang.t("校验报告", "Report"), report.file_name),
        "/submit",
    );
    frame.path = &path;
    frame.render(html! {
        h1 { (lang.t("校验报告", "Validation report")) " · " (report.file_name) }
        @match report.status {
            Status::Accepted => p #outcome.notice.good role="status" {
                strong { (lang.t("已接收。", "Accepted. ")) }
                (summary.rows) (lang.t(" 行数据已入库", " rows are in the lake"))
                @if current { (lang.t("，现为指标使用的当前数据。", " and are the ones the indicators use now.")) }
                @else { (lang.t("；之后已有新的文件替换。", "; a later file has replaced them.")) }
                @if summary.warnings > 0 { " " (summary.warnings) (lang.t(" 个警告值得核对。", " warnings are worth a look.")) }
            },
            Status::Rejected => p #outcome.notice.bad role="alert" {
                strong { (lang.t("未通过，文件未入库。", "Rejected: nothing from this file was stored. ")) }
                (summary.errors) (lang.t(" 个错误、", " errors and ")) (summary.warnings) (lang.t(" 个警告。请按下表修改后重新上传。", " warnings. Correct them as listed below and upload again."))
            },
        }
        @if duplicate { p.notice { (lang.t("这份文件与之前报送的完全相同，没有重复写入。", "This file is identical to one submitted before; nothing was written again.")) } }
        dl {
            dt { (lang.t("数据集", "Dataset")) } dd { (lang.t(dataset.zh, dataset.en)) }
            dt { (lang.t("报告期", "Period")) } dd { (period_label(lang, report.period)) }
            dt { (lang.t("报送地区", "Region")) } dd { (region_name) " (" (report.region) ")" }
            @if let Some((s, _)) = decided { dt { (lang.t("处理时间", "Decided")) } dd { (s.decided_at) } }
            dt { (lang.t("编号", "Submission")) } dd { code { (report.submission_id) } }
        }
        p {
            @if report.status == Status::Accepted {
                a href=(link(lang, "/", &[("period", &report.period.to_string()), ("region", &report.region)])) { (lang.t("查看本地区指标", "See the region's indicators")) }
                " · "
            }
            a href=(link(lang, "/submit", &[])) { (lang.t("继续报送", "Submit another file")) }
            " · "
            a href=(format!("/v1/submissions/{}/report.csv", report.submission_id)) { (lang.t("下载报告（CSV，可与原文件对照）", "Download the report (CSV, to read beside the file)")) }
        }
        @if !issues.is_empty() {
            h2 { (lang.t("问题所在", "Where the problems are")) }
            @if summary.truncated {
                p { (lang.t("只列出前 ", "Only the first ")) (issues.len()) (lang.t(" 个问题。", " problems are listed.")) }
            }
            ul {
                @for (column, n) in &by_column {
                    li {
                        @if column.is_empty() { (lang.t("整个文件", "The whole file")) } @else { (lang.t("列 ", "Column ")) "「" (column) "」" }
                        "：" (n)
                    }
                }
            }
            div.scroll {
                table #problems {
                    caption { (lang.t("每个问题所在的行、列和单元格的值", "Each problem's row, column and cell value")) }
                    thead {
                        tr {
                            th.n scope="col" { (lang.t("行", "Row")) }
                            th scope="col" { (lang.t("列", "Column")) }
                            th scope="col" { (lang.t("值", "Value")) }
                            th scope="col" { (lang.t("问题", "Problem")) }
                            @if has_comparison { th scope="col" { (lang.t("对照", "Compared with")) } }
                        }
                    }
                    tbody {
                        @for issue in &issues {
                            @let error = issue.severity == Severity::Error;
                            tr class=(if error { "error" } else { "warning" }) {
                                td.n { (issue.row.map(|r| r.to_string()).unwrap_or_else(|| "—".into())) }
                                td { (issue.column.clone().unwrap_or_default()) }
                                td { @if let Some(v) = &issue.value { mark { (v) } } }
                                td {
                                    @if error { strong { (lang.t("错误：", "Error: ")) } } @else { (lang.t("警告：", "Warning: ")) }
                                    (lang.t(&issue.message_zh, &issue.message_en))
                                }
                                @if has_comparison { td { (issue.comparison.clone().unwrap_or_default()) } }
                            }
                        }
                    }
                }
            }
        }
    })
}
