//! `/problems/{kind}`: what a problem type means, where the `type` of every problem answer
//! resolves (RFC 9457), in either language.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::layout::{Frame, Section};
use super::{Lang, PageError, private};
use crate::problem::{PROBLEM_TYPES, problem_type};
use crate::{ApiError, AppState};

#[derive(serde::Deserialize)]
pub struct LangOnly {
    #[serde(default)]
    lang: Lang,
}

pub async fn page(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Query(q): Query<LangOnly>,
) -> Result<Response, PageError> {
    let lang = q.lang;
    let fail = lang.fail::<ApiError>();
    let Some(problem) = problem_type(&kind) else {
        return Err(fail(ApiError::BadQuery(format!(
            "{kind:?} is not a problem type"
        ))));
    };
    let published = state.published().await.map_err(lang.fail())?;
    let footer = state.footer(&published);
    let path = format!("/problems/{kind}");
    let reason = StatusCode::from_u16(problem.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let frame = Frame {
        lang,
        title: problem.kind.to_string(),
        section: Section::Dashboard,
        path: &path,
        params: &[],
        footer: Some(&footer),
    };
    let body = frame.render(html! {
        h1 { code { (problem.kind) } }
        p { "HTTP " (problem.status) " " (reason) }
        p #meaning { (lang.t(problem.zh, problem.en)) }
        h2 { (lang.t("全部问题类型", "Every problem type")) }
        ul {
            @for other in PROBLEM_TYPES {
                li { a href=(format!("/problems/{}", other.kind)) { code { (other.kind) } } " · " (other.status) }
            }
        }
        p { a href="/v1/docs" { (lang.t("接口文档", "API reference")) } }
    });
    Ok(private(StatusCode::OK, body))
}
