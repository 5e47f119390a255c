//! `/submit/{id}`: one submission's validation report as a page — whether the file was
//! accepted and is current, and every problem by row, column and cell value, so a submitter
//! finds the offending cells in the file at once. Plausibility findings are confirmed here
//! (已核实) by a submitter signed in for the region.

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Footer, period_label, submit_frame};
use super::submit::{LangQuery, same_origin, signed_in};
use super::{Lang, PageError, link, private, status};
use crate::{ApiError, AppState};
use jiazheng_core::findings::{Issue, Report, Severity, Status};
use jiazheng_core::keys::{Key, Role};
use jiazheng_core::plausibility::{self, Confirmed, confirmations};
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
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let lang = q.lang;
    let fail = lang.fail::<ApiError>();
    let report = state
        .ingestor
        .report(&id)
        .await
        .map_err(lang.fail())?
        .ok_or_else(|| fail(ApiError::UnknownSubmission(id.clone())))?;
    let key = signed_in(&state, &headers).await.map_err(lang.fail())?;
    render(&state, &report, lang, q.duplicate.is_some(), key.as_ref()).await
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    /// The finding's place in the report; none confirms them all.
    finding: Option<usize>,
    comment: Option<String>,
}

/// `POST /submit/{id}/confirm`: the page's 已核实 button, as the signed-in submitter.
pub async fn confirm(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    let lang = q.lang;
    same_origin(&headers).map_err(lang.fail())?;
    let Some(key) = signed_in(&state, &headers).await.map_err(lang.fail())? else {
        return Ok(Redirect::to(&link(lang, "/submit", &[])).into_response());
    };
    let request = confirmations::Request {
        findings: form.finding.map(|f| vec![f]),
        comment: form.comment,
    };
    crate::findings::confirm_as(&state, &key, &id, request)
        .await
        .map_err(lang.fail())?;
    Ok(Redirect::to(&link(lang, &format!("/submit/{id}"), &[])).into_response())
}

/// The page of a submission's report (also served as `/v1/submissions/{id}/report.html`).
pub(crate) async fn render(
    state: &AppState,
    report: &Report,
    lang: Lang,
    duplicate: bool,
    key: Option<&Key>,
) -> Result<Response, PageError> {
    let id = &report.submission_id;
    let read = state.log_confirmed().await.map_err(lang.fail())?;
    let decided = read.log.find(id).cloned();
    let tree = state.regions().await.map_err(lang.fail())?;
    // Only a submitter of the region may confirm; everyone else sees what is open.
    let may_confirm = key.is_some_and(|k| {
        k.role == Role::Submitter && tree.resolve(&report.region).is_some_and(|r| k.covers(r))
    });
    let checks = Checks {
        confirmed: &read.confirmed,
        open: decided.as_ref().map_or(0, |(s, _)| read.confirmed.open(s)),
        may_confirm,
    };
    let published = state.published().await.map_err(lang.fail())?;
    let footer = state.footer(&published);
    let page = report_page(
        lang,
        report,
        decided.as_ref(),
        &tree,
        duplicate,
        &checks,
        &footer,
    );
    Ok(private(StatusCode::OK, page))
}

/// Where a report's plausibility findings stand, and whether the reader may confirm them.
struct Checks<'a> {
    confirmed: &'a Confirmed,
    open: u64,
    may_confirm: bool,
}

fn report_page(
    lang: Lang,
    report: &Report,
    decided: Option<&(submissions::Submission, bool)>,
    tree: &RegionTree,
    duplicate: bool,
    checks: &Checks<'_>,
    footer: &Footer,
) -> Markup {
    let region = tree.resolve(&report.region);
    let region_name = region.map_or(report.region.clone(), |r| r.name.clone());
    let dataset = report.dataset;
    let current = decided.is_some_and(|(_, c)| *c);
    let summary = &report.summary;
    // Each with its place in the report, which a confirmation names.
    let mut issues: Vec<(usize, &Issue)> = report.issues.iter().enumerate().collect();
    // Whole-file problems first, then by row and column: the order the file is read in.
    issues.sort_by(|(_, a), (_, b)| (a.row, &a.column).cmp(&(b.row, &b.column)));
    // Plausibility findings say what a value was compared with; other reports need no column.
    let has_comparison = issues.iter().any(|(_, i)| i.comparison.is_some());
    let mut by_column: Vec<(String, usize)> = Vec::new();
    for (_, issue) in &issues {
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
        footer,
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
        @if checks.open > 0 {
            (confirm_all(lang, report, checks))
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
                            @if has_comparison {
                                th scope="col" { (lang.t("对照", "Compared with")) }
                                th scope="col" { (lang.t("核实", "Confirmed")) }
                            }
                        }
                    }
                    tbody {
                        @for (place, issue) in &issues {
                            @let error = issue.severity == Severity::Error;
                            tr class=(if error { "error" } else { "warning" }) {
                                td.n { (issue.row.map(|r| r.to_string()).unwrap_or_else(|| "—".into())) }
                                td { (issue.column.clone().unwrap_or_default()) }
                                td { @if let Some(v) = &issue.value { mark { (v) } } }
                                td {
                                    @if error { strong { (lang.t("错误：", "Error: ")) } } @else { (lang.t("警告：", "Warning: ")) }
                                    (lang.t(&issue.message_zh, &issue.message_en))
                                }
                                @if has_comparison {
                                    td { (issue.comparison.clone().unwrap_or_default()) }
                                    td { (confirmation(lang, report, *place, issue, checks)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// The state of one finding: confirmed (with the comment), a 已核实 form for the submitter,
/// or the open mark; nothing for problems that are not plausibility findings.
fn confirmation(
    lang: Lang,
    report: &Report,
    place: usize,
    issue: &Issue,
    checks: &Checks<'_>,
) -> Markup {
    if plausibility::by_code(&issue.code).is_none() {
        return html! {};
    }
    let id = &report.submission_id;
    let action = link(lang, &format!("/submit/{id}/confirm"), &[]);
    html! {
        @if let Some(c) = checks.confirmed.covering(id, place) {
            span.met title=(format!("{} · {}", c.confirmed_by, c.confirmed_at)) { "✓ " (lang.t("已核实", "confirmed")) }
            @if let Some(comment) = &c.comment { br; span.muted { (comment) } }
        } @else if checks.may_confirm {
            form.confirm method="post" action=(action) {
                input type="hidden" name="finding" value=(place);
                label { span.muted { (lang.t("说明（可选）", "Comment (optional)")) } input type="text" name="comment" maxlength="500"; }
                button type="submit" { (lang.t("已核实", "Confirm")) }
            }
        } @else {
            span.flag { "⚑ " (lang.t("待核实", "to confirm")) }
        }
    }
}

/// What an open finding means, and (for the submitter) one form confirming every finding.
fn confirm_all(lang: Lang, report: &Report, checks: &Checks<'_>) -> Markup {
    let action = link(
        lang,
        &format!("/submit/{}/confirm", report.submission_id),
        &[],
    );
    html! {
        div #checks.notice {
            p {
                strong { (status::unconfirmed(lang, checks.open)) }
                " "
                (lang.t(
                    "这些数据通过了校验，但与上期或同盟市其他旗县相比有不合理之处。请逐条核对：数据无误的点“已核实”；有误的请修改文件后重新上传。核实之前，据此计算的指标标为“待核实”。",
                    "The file passed validation, but some figures look implausible against the last period or the other counties of the league. Check each: confirm the ones that are right; correct the file and upload it again for the others. Until then the values computed from it are marked as unconfirmed."))
            }
            @if checks.may_confirm {
                form #confirm-all.pick method="post" action=(action) {
                    label { (lang.t("说明（可选）", "Comment (optional)")) " " input type="text" name="comment" maxlength="500"; }
                    button type="submit" { (lang.t("全部已核实", "Confirm all")) }
                }
            }
        }
    }
}
