//! The web pages: the public dashboard, the report status page and the submitter pages.
//! Server-rendered HTML (maud) from the same state as the JSON API, so every page reads
//! without JavaScript; a few lines of script only improve the upload. Chinese first, English
//! with `?lang=en`. No fonts, scripts or styles from elsewhere: the network may be closed.

mod browse;
mod charts;
mod dashboard;
mod figures;
pub(crate) mod findings;
mod half_year;
mod layout;
pub(crate) use layout::Footer;
mod problems;
mod status;
mod submit;
mod trend;

use layout::{Frame, Section};

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{Markup, html};

use super::{ApiError, AppState, Published, Regions, Stamp};
use jiazheng_core::periods::Period;
use jiazheng_core::regions::{COUNTRY_CODE, Level, Region};

/// Room in an upload form's body for its other fields and part headers, beyond the file.
const FORM_LIMIT_SLACK: usize = 64 * 1024;

/// The page routes; uploads take the same body limit as the API's.
pub(super) fn routes(upload_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/status", get(status::page))
        .route("/trend", get(trend::page))
        .route("/datasets", get(browse::index))
        .route("/datasets/{name}", get(browse::dataset))
        .route("/regions", get(browse::regions))
        .route("/problems/{kind}", get(problems::page))
        .route("/submit", get(submit::home))
        .route("/submit/sign-in", post(submit::sign_in))
        .route("/submit/sign-out", post(submit::sign_out))
        .route("/submit/half-year", get(half_year::page))
        .route("/submit/half-year.xlsx", get(half_year::xlsx))
        .route(
            "/submit/upload",
            post(submit::upload).layer(DefaultBodyLimit::max(upload_limit + FORM_LIMIT_SLACK)),
        )
        .route("/submit/{id}", get(findings::page))
        .route("/submit/{id}/confirm", post(findings::confirm))
        .layer(axum::middleware::from_fn(server_timing))
}

/// `Server-Timing: app;dur=…` on every page, so the time spent rendering can be read in the
/// browser's developer tools (and by the browser test) apart from the network.
async fn server_timing(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={ms:.1}")) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

/// The language of a page: Chinese unless `?lang=en`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

/// `?lang=en` is English; any other value (or none) is Chinese, never an error page.
impl<'de> serde::Deserialize<'de> for Lang {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match String::deserialize(d)?.as_str() {
            "en" => Lang::En,
            _ => Lang::Zh,
        })
    }
}

impl Lang {
    /// The text in this language.
    fn t<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    fn html_lang(self) -> &'static str {
        self.t("zh-CN", "en")
    }

    /// Turns any error the API knows into an error page in this language.
    fn fail<E: Into<ApiError>>(self) -> impl Fn(E) -> PageError + Copy {
        move |error| PageError {
            error: error.into(),
            lang: self,
        }
    }

    fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }
}

/// A link to a page with its query; English pages keep `lang=en` in every link.
fn link(lang: Lang, path: &str, params: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    if lang == Lang::En {
        query.append_pair("lang", "en");
    }
    let query = query.finish();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// An error as a page, in the status the API would answer with.
pub(crate) struct PageError {
    error: ApiError,
    lang: Lang,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.error.status();
        let lang = self.lang;
        let heading = match status {
            StatusCode::NOT_FOUND => lang.t("没有找到", "Not found"),
            StatusCode::UNAUTHORIZED => lang.t("请先登录", "Please sign in"),
            StatusCode::FORBIDDEN => lang.t("无权进行此操作", "Not allowed"),
            StatusCode::PAYLOAD_TOO_LARGE => lang.t("文件过大", "The file is too large"),
            s if s.is_server_error() => lang.t("服务出错", "Something went wrong"),
            _ => lang.t("请求有误", "The request is not valid"),
        };
        let detail = match &self.error {
            // Storage details stay in the log.
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "page failed");
                String::new()
            }
            other => other.detail(),
        };
        let frame = Frame {
            lang,
            title: heading.to_string(),
            section: Section::Dashboard,
            path: "/",
            params: &[],
            footer: None,
        };
        let body = frame.render(html! {
            h1 { (heading) }
            @if !detail.is_empty() { p #error role="alert" data-problem=(self.error.kind()) { (detail) } }
            p { a href=(link(lang, "/", &[])) { (lang.t("返回首页", "Back to the dashboard")) } }
        });
        (status, Html(body.into_string())).into_response()
    }
}

/// What a public page is about: a region of the published tree (the country unless asked)
/// and a period (the latest published unless asked).
struct Place {
    tree: Regions,
    region: Region,
    period: Period,
    /// The periods with published values, oldest first, for the period picker.
    periods: Vec<Period>,
    published: Published,
}

impl Place {
    async fn find(
        state: &AppState,
        lang: Lang,
        region: Option<&str>,
        period: Option<&str>,
    ) -> Result<Place, PageError> {
        let fail = lang.fail::<ApiError>();
        let tree = state.regions().await.map_err(fail)?;
        let code = region.unwrap_or(COUNTRY_CODE);
        let region = tree
            .resolve(code)
            .filter(|r| Level::PUBLISHED.contains(&r.level))
            .cloned()
            .ok_or_else(|| fail(ApiError::UnknownRegion(code.to_string())))?;
        let published = state.published().await.map_err(fail)?;
        let periods = published.periods();
        let period = match period {
            Some(p) => crate::params::value("period", p).map_err(fail)?,
            None => periods
                .last()
                .copied()
                .ok_or_else(|| fail(ApiError::NothingPublished))?,
        };
        Ok(Place {
            tree,
            region,
            period,
            periods,
            published,
        })
    }
}

/// A public page: stamped with what it was computed from (the ETag), and revalidated on every
/// view — a cheap 304 — so a statistician who has just uploaded sees the new figure at once
/// instead of a minute-old copy.
fn public(stamp: Stamp, page: Markup) -> Response {
    (
        Extension(stamp),
        [(header::CACHE_CONTROL, "public, no-cache")],
        Html(page.into_string()),
    )
        .into_response()
}

/// A page for the signed-in reader only: never stored by a cache.
fn private(status: StatusCode, page: Markup) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "private, no-store")],
        Html(page.into_string()),
    )
        .into_response()
}
