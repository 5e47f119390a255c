//! The submitter pages: sign in with a key, download templates, upload a file (its report is
//! `report.rs`), see the region's past submissions. Signing in opens a session
//! ([`keys::open_session`]) whose reference — never the key — lives in an HttpOnly,
//! SameSite=Strict cookie scoped to `/submit`, so script never sees it, other sites cannot post
//! with it, and signing out or revoking the key ends it.

use axum::extract::multipart::MultipartError;
use axum::extract::{Form, Multipart, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::layout::{Footer, period_label, submit_frame};
use super::{Lang, PageError, link, private};
use crate::{ApiError, AppState, auth};
use jiazheng_core::compliance::reporting_counties;
use jiazheng_core::datasets;
use jiazheng_core::findings::Status;
use jiazheng_core::ingest::Upload;
use jiazheng_core::keys::{self, Key, Role};
use jiazheng_core::periods::Period;
use jiazheng_core::regions::{Level, RegionTree};
use jiazheng_core::submissions;

const COOKIE: &str = "jz_session";
/// A signed-in browser stays signed in for a working day.
const SESSION_SECONDS: u32 = 8 * 3600;
/// Past submissions listed on the page (the API lists them all).
const LISTED: usize = 100;
const SCRIPT: &str = include_str!("upload.js");

#[derive(Deserialize)]
pub struct LangQuery {
    #[serde(default)]
    pub(super) lang: Lang,
}

/// The session reference in the request's cookie.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// The live key behind the request's session, if any.
pub(super) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Key>, ApiError> {
    match session_cookie(headers) {
        Some(reference) => keys::session_key_of(state.lake(), reference)
            .await
            .map_err(|e| ApiError::Internal(e.to_string())),
        None => Ok(None),
    }
}

/// Posts must come from these pages: browsers send `Origin` with every POST, and a
/// different host means another site is trying to use the cookie.
pub(super) fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    // The host the browser used: a proxy in front (CloudFront) says it in X-Forwarded-Host.
    let mut ours = ["x-forwarded-host", "host"]
        .into_iter()
        .filter_map(|h| headers.get(h)?.to_str().ok());
    if let Some(origin_host) = origin_host
        && ours.any(|h| h == origin_host)
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "this form was sent from another site".into(),
        ))
    }
}

fn cookie(headers: &HeaderMap, token: &str, max_age: u32) -> HeaderValue {
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes() == b"https");
    let value = format!(
        "{COOKIE}={token}; Path=/submit; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub async fn home(
    State(state): State<AppState>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let lang = q.lang;
    let published = state.published().await.map_err(lang.fail())?;
    let footer = state.footer(&published);
    let Some(key) = signed_in(&state, &headers).await.map_err(lang.fail())? else {
        return Ok(private(StatusCode::OK, sign_in_page(lang, None, &footer)));
    };
    let tree = state.regions().await.map_err(lang.fail())?;
    let (_, log) = state.log().await.map_err(lang.fail())?;
    let periods = published.periods();
    Ok(private(
        StatusCode::OK,
        submitter_page(lang, &key, &tree, &log, &periods, &footer),
    ))
}

fn sign_in_page(lang: Lang, error: Option<&str>, footer: &Footer) -> Markup {
    let title = lang.t("登录报送", "Sign in to submit").into();
    submit_frame(lang, title, "/submit", footer).render(html! {
        h1 { (lang.t("登录报送", "Sign in to submit")) }
        p { (lang.t("报送单位使用上级统计部门发放的密钥（以 jz_ 开头）登录。查看指标无需登录。",
                    "Reporting offices sign in with the key their statistics office issued (it starts with jz_). Reading the indicators needs no key.")) }
        @if let Some(error) = error { p #error.notice.bad role="alert" { (error) } }
        form.stack method="post" action=(link(lang, "/submit/sign-in", &[])) {
            label for="key" { (lang.t("密钥", "Key")) }
            input #key type="password" name="key" required autocomplete="current-password" spellcheck="false";
            button type="submit" { (lang.t("登录", "Sign in")) }
        }
    })
}

#[derive(Deserialize)]
pub struct SignIn {
    key: String,
}

pub async fn sign_in(
    State(state): State<AppState>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Result<Response, PageError> {
    let lang = q.lang;
    let fail = lang.fail::<ApiError>();
    same_origin(&headers).map_err(lang.fail())?;
    let token = form.key.trim();
    let valid = keys::verify(state.lake(), token)
        .await
        .map_err(|e| fail(ApiError::Internal(e.to_string())))?;
    let Some(key) = valid else {
        let error = lang.t("密钥无效，请检查后重试。", "This key is not valid.");
        let published = state.published().await.map_err(lang.fail())?;
        return Ok(private(
            StatusCode::UNAUTHORIZED,
            sign_in_page(lang, Some(error), &state.footer(&published)),
        ));
    };
    let session = keys::open_session(
        state.lake(),
        &key,
        std::time::Duration::from_secs(SESSION_SECONDS.into()),
    )
    .await
    .map_err(|e| fail(ApiError::Internal(e.to_string())))?;
    let mut response = Redirect::to(&link(lang, "/submit", &[])).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&headers, &session, SESSION_SECONDS),
    );
    Ok(response)
}

pub async fn sign_out(
    State(state): State<AppState>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let lang = q.lang;
    same_origin(&headers).map_err(lang.fail())?;
    if let Some(reference) = session_cookie(&headers) {
        keys::close_session(state.lake(), reference)
            .await
            .map_err(|e| lang.fail()(ApiError::Internal(e.to_string())))?;
    }
    let mut response = Redirect::to(&link(lang, "/submit", &[])).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&headers, "", 0));
    Ok(response)
}

/// The periods a file can be for: every half-year since reporting began up to the current
/// one, newest first; the last one that has ended is preselected.
fn periods(published: &[Period]) -> (Vec<Period>, Period) {
    let current = Period::current();
    let ended = current.previous();
    let mut periods: Vec<Period> = published.to_vec();
    let mut p = Period::FIRST;
    while p <= current {
        periods.push(p);
        p = p.next();
    }
    periods.sort();
    periods.dedup();
    periods.reverse();
    (periods, ended)
}

fn submitter_page(
    lang: Lang,
    key: &Key,
    tree: &RegionTree,
    log: &submissions::Log,
    published: &[Period],
    footer: &Footer,
) -> Markup {
    let region = tree.resolve(&key.region);
    let name = region.map_or(key.region.clone(), |r| r.name.clone());
    // A key may submit for its region or any region inside it down to the counties; the
    // list stays short: a national key lists the provinces, a province its leagues and
    // counties, a league its counties.
    let submitting: Vec<(String, String)> = region
        .map(|r| {
            let mut all = vec![r];
            match r.level {
                Level::Country => all.extend(tree.children(r)),
                Level::Province => {
                    for city in tree.children(r) {
                        all.push(city);
                        all.extend(reporting_counties(tree, city));
                    }
                }
                Level::City => all.extend(reporting_counties(tree, r)),
                _ => {}
            }
            all.into_iter()
                .map(|r| (r.code(), r.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    let (periods, ended) = periods(published);
    let mine: Vec<&(submissions::Submission, bool)> = log
        .latest
        .iter()
        .rev()
        .filter(|(s, _)| {
            tree.resolve(&s.region)
                .is_some_and(|r| key.region_prefix.contains(&r.prefix))
        })
        .take(LISTED)
        .collect();
    let sending = lang.t("正在上传并校验…", "Uploading and checking…");
    let failed = lang.t("上传失败，请重试。", "The upload failed; please try again.");
    let title = lang.t("报送数据", "Submit data").into();
    submit_frame(lang, title, "/submit", footer).render(html! {
        h1 { (lang.t("报送数据", "Submit data")) " · " (name) }
        form.pick method="post" action=(link(lang, "/submit/sign-out", &[])) {
            span { (lang.t("已登录：", "Signed in for ")) (name) " (" (key.region) ")" }
            button.plain type="submit" { (lang.t("退出", "Sign out")) }
        }
        p { a #half-year href=(link(lang, "/submit/half-year", &[])) { (lang.t("本地区半年报（打印、Excel）", "This office's half-year report (print, Excel)")) } }
        @if key.role != Role::Submitter {
            p.notice.bad { (lang.t("此密钥用于查询，不能报送文件。", "This key is for queries; it cannot submit files.")) }
        } @else {
            h2 id="upload-heading" { (lang.t("上传文件", "Upload a file")) }
            p { (lang.t("整份文件要么全部接收，要么全部退回并附校验报告；同一地区同一报告期再次上传会替换上一次接收的数据。",
                        "A file is accepted or rejected whole, with a report; a new accepted file replaces the region's earlier one for the period.")) }
            form #upload.stack method="post" enctype="multipart/form-data" action=(link(lang, "/submit/upload", &[]))
                aria-labelledby="upload-heading" data-sending=(sending) data-failed=(failed) {
                label { (lang.t("数据集", "Dataset"))
                    select name="dataset" required {
                        @for d in datasets::ALL { option value=(d.name) { (lang.t(d.zh, d.en)) } }
                    }
                }
                label { (lang.t("报告期", "Period"))
                    select name="period" required {
                        @for p in &periods { option value=(p.to_string()) selected[*p == ended] { (period_label(lang, *p)) } }
                    }
                }
                label { (lang.t("报送地区", "Submitting for"))
                    select name="region" required {
                        @for (code, name) in &submitting { option value=(code) { (name) " (" (code) ")" } }
                    }
                }
                label #drop.drop for="file" {
                    (lang.t("把文件拖到这里，或点击选择文件（CSV 或 Excel）", "Drop the file here, or select it (CSV or Excel)"))
                    br;
                    input #file type="file" name="file" required accept=".csv,.txt,.tsv,.xlsx,.xls";
                }
                progress #progress max="1" value="0" hidden aria-label=(lang.t("上传进度", "Upload progress")) {}
                p #upload-status role="status" aria-live="polite" {}
                button type="submit" { (lang.t("上传并校验", "Upload and check")) }
            }
            script { (PreEscaped(SCRIPT)) }
        }
        h2 { (lang.t("模板", "Templates")) }
        p { (lang.t("模板的表头和填写说明由数据集定义生成，与校验规则一致。", "Templates are generated from the dataset declarations the checks use.")) }
        table {
            thead { tr { th scope="col" { (lang.t("数据集", "Dataset")) } th scope="col" { (lang.t("下载", "Download")) } } }
            tbody {
                @for d in datasets::ALL {
                    tr {
                        th scope="row" { (lang.t(d.zh, d.en)) }
                        td.fmt {
                            a href=(format!("/v1/templates/{}.xlsx", d.name)) download { "Excel" span.muted { " (" (d.name) ".xlsx)" } }
                            a href=(format!("/v1/templates/{}.csv", d.name)) download { "CSV" span.muted { " (" (d.name) ".csv)" } }
                        }
                    }
                }
            }
        }
        h2 id="history" { (lang.t("报送记录", "Past submissions")) }
        @if mine.is_empty() {
            p { (lang.t("还没有报送记录。", "Nothing submitted yet.")) }
        } @else {
            div.scroll {
                table {
                    caption { (name) (lang.t("及下级地区的报送，最新在前；“当前”是指标正在使用的文件。", " and the areas within, newest first; ‘current’ is the file the indicators use.")) }
                    thead {
                        tr {
                            th scope="col" { (lang.t("时间", "Decided")) }
                            th scope="col" { (lang.t("数据集", "Dataset")) }
                            th scope="col" { (lang.t("报告期", "Period")) }
                            th scope="col" { (lang.t("地区", "Region")) }
                            th scope="col" { (lang.t("文件", "File")) }
                            th scope="col" { (lang.t("结果", "Result")) }
                            th scope="col" { (lang.t("当前", "Current")) }
                        }
                    }
                    tbody {
                        @for (s, current) in &mine {
                            tr {
                                td { (s.decided_at.get(..16).unwrap_or(&s.decided_at).replace('T', " ")) }
                                td { (lang.t(s.dataset.zh, s.dataset.en)) }
                                td { (s.period) }
                                td { (tree.resolve(&s.region).map_or(s.region.clone(), |r| r.name.clone())) }
                                td { a href=(link(lang, &format!("/submit/{}", s.submission_id), &[])) { (s.file_name) } }
                                td { (outcome(lang, s.status, s.rows, s.errors)) }
                                td { @if *current { span.met { "✓ " (lang.t("当前", "current")) } } }
                            }
                        }
                    }
                }
            }
        }
    })
}

fn outcome(lang: Lang, status: Status, rows: i64, errors: i64) -> Markup {
    match status {
        Status::Accepted => {
            html! { span.met { (lang.t("已接收", "accepted")) } " " (rows) (lang.t(" 行", " rows")) }
        }
        Status::Rejected => {
            html! { span.unmet { (lang.t("未通过", "rejected")) } " " (errors) (lang.t(" 个错误", " errors")) }
        }
    }
}

/// A short text field of the upload form, read up to `max` bytes.
async fn small_text(
    mut field: axum::extract::multipart::Field<'_>,
    max: usize,
) -> Result<String, ApiError> {
    let mut text = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, 0))? {
        text.extend_from_slice(&chunk);
        if text.len() > max {
            return Err(ApiError::BadSubmission(format!(
                "the form field {:?} is too long",
                field.name().unwrap_or_default()
            )));
        }
    }
    String::from_utf8(text).map_err(|_| ApiError::BadSubmission("a form field is not UTF-8".into()))
}

/// A malformed form, or one whose body passed the upload limit (`limit` bytes).
fn multipart_error(e: MultipartError, limit: u64) -> ApiError {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(limit),
        _ => ApiError::BadSubmission(e.body_text()),
    }
}

/// Takes the form's file through the same pipeline as the API's PUT, then shows its report.
/// The form sends dataset, period and region before the file (their order in the page), so
/// the key is checked for that region before a byte of the file is read, and the file streams
/// to the raw store under the dataset's size limit.
pub async fn upload(
    State(state): State<AppState>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Response, PageError> {
    let lang = q.lang;
    let fail = lang.fail::<ApiError>();
    same_origin(&headers).map_err(lang.fail())?;
    // The key is checked before the body is read.
    let key = signed_in(&state, &headers)
        .await
        .map_err(lang.fail())?
        .ok_or_else(|| fail(ApiError::Unauthorized("sign in first".into())))?;
    let (mut dataset, mut period, mut region) = (String::new(), String::new(), String::new());
    let mut outcome = None;
    let limit = state.upload_limit as u64;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| fail(multipart_error(e, limit)))?
    {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "dataset" => dataset = small_text(field, 64).await.map_err(fail)?,
            "period" => period = small_text(field, 64).await.map_err(fail)?,
            "region" => region = small_text(field, 64).await.map_err(fail)?,
            "file" => {
                // A form sent without a chosen file has a file part with an empty name. Some
                // browsers send the whole path the file was picked from.
                let Some(file_name) = field
                    .file_name()
                    .and_then(|n| n.rsplit(['/', '\\']).next())
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                else {
                    break;
                };
                if dataset.is_empty() || period.is_empty() || region.is_empty() {
                    return Err(fail(ApiError::BadSubmission(
                        "dataset, period and region must come before the file".into(),
                    )));
                }
                let declared: &'static datasets::Dataset =
                    crate::params::value("dataset", &dataset).map_err(fail)?;
                let period: Period = crate::params::value("period", &period).map_err(fail)?;
                let tree = state.regions().await.map_err(lang.fail())?;
                let target = jiazheng_core::ingest::submitting_region(&tree, &region)
                    .map_err(lang.fail())?;
                auth::may_submit(&key, target).map_err(lang.fail())?;
                let max = declared
                    .limits()
                    .max_file_bytes
                    .min(state.upload_limit as u64);
                let upload = Upload {
                    dataset: declared,
                    period,
                    region: region.clone(),
                    file_name,
                };
                let submitted = state
                    .ingestor
                    .submit_stream(&upload, field, max)
                    .await
                    .map_err(lang.fail())?;
                outcome = Some(submitted);
                break;
            }
            _ => {}
        }
    }
    let outcome =
        outcome.ok_or_else(|| fail(ApiError::BadSubmission("no file was chosen".into())))?;
    let mut params = vec![];
    if outcome.duplicate {
        params.push(("duplicate", "1"));
    }
    let to = link(
        lang,
        &format!("/submit/{}", outcome.submission.submission_id),
        &params,
    );
    Ok(Redirect::to(&to).into_response())
}
