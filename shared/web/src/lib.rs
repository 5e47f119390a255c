//! The open-data HTTP API: one axum Router, served by the local server and, unchanged, by
//! the API Lambda through `lambda_http`.

mod auth;
mod caching;
pub mod catalog;
mod compliance;
mod findings;
mod indicators;
mod limits;
pub mod openapi;
mod packages;
mod pages;
mod params;
mod problem;
mod records;
mod regions;
mod sdmx;
mod sql;
mod submissions;
mod tabular;
mod templates;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, header};
use axum::response::{Html, IntoResponse};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use caching::{Conditional, Source, Stamp};
pub use limits::RateLimit;
pub use problem::ApiError;

use jiazheng_core::indicators::snapshot::Snapshot;
use jiazheng_core::ingest::Ingestor;
use jiazheng_core::lake::{Held, Lake, names};
use jiazheng_core::periods::Period;
use jiazheng_core::plausibility::Confirmed;
use jiazheng_core::regions::RegionTree;
use jiazheng_core::regions::stored;
use jiazheng_core::submissions::Log;

/// Largest upload accepted in one request body (the Excel row limit times a wide row).
pub const MAX_UPLOAD_BYTES: usize = 256 * 1024 * 1024;

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    ingestor: Ingestor,
    /// The published values (the region tree is held per lake by `stored::published`).
    snapshot: Arc<Held<Snapshot>>,
    log: Arc<Held<Log>>,
    confirmed: Arc<Held<Confirmed>>,
    rate_limit: Option<RateLimit>,
    upload_limit: usize,
    /// Who publishes the data under which licence (catalogue and page footers).
    publisher: Arc<catalog::Publisher>,
}

/// The published region tree and the regions table version it was read at.
#[derive(Clone)]
pub struct Regions {
    pub tree: Arc<RegionTree>,
    pub version: i64,
}

impl std::ops::Deref for Regions {
    type Target = RegionTree;

    fn deref(&self) -> &RegionTree {
        &self.tree
    }
}

/// The published snapshot in memory and the table version it was read at (`-1` before the
/// first publication, when it is empty).
#[derive(Clone)]
pub struct Published {
    pub snapshot: Arc<Snapshot>,
    pub version: i64,
}

impl std::ops::Deref for Published {
    type Target = Snapshot;

    fn deref(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl Published {
    /// The period asked for, or else the latest one with published indicators.
    fn period_or_latest(&self, period: Option<Period>) -> Result<Period, ApiError> {
        match period {
            Some(p) => Ok(p),
            None => self
                .periods()
                .last()
                .copied()
                .ok_or(ApiError::NothingPublished),
        }
    }
}

impl AppState {
    pub fn new(ingestor: Ingestor) -> AppState {
        AppState {
            ingestor,
            snapshot: Arc::new(Held::new(names::INDICATOR_VALUES)),
            log: Arc::new(Held::new(names::SUBMISSIONS)),
            confirmed: Arc::new(Held::new(names::CONFIRMATIONS)),
            rate_limit: None,
            upload_limit: MAX_UPLOAD_BYTES,
            publisher: Arc::new(catalog::Publisher::from_env()),
        }
    }

    /// Largest upload body accepted (default [`MAX_UPLOAD_BYTES`]).
    pub fn with_upload_limit(mut self, bytes: usize) -> AppState {
        self.upload_limit = bytes;
        self
    }

    /// Limits public reads per client address (for the server on its own).
    pub fn with_rate_limit(mut self, limit: RateLimit) -> AppState {
        self.rate_limit = Some(limit);
        self
    }

    pub fn lake(&self) -> &Lake {
        self.ingestor.lake()
    }

    /// The published levels of the region tree, read again only when the table changed.
    async fn regions(&self) -> Result<Regions, ApiError> {
        let lake = self.lake();
        let (tree, version) = stored::published(lake)
            .await?
            .ok_or(ApiError::NothingPublished)?;
        Ok(Regions { tree, version })
    }

    /// The submission log and its table version (`-1` before the first decision), read again
    /// only when a decision was logged.
    async fn log(&self) -> Result<(i64, Arc<Log>), ApiError> {
        let lake = self.lake();
        Ok(self
            .log
            .get(lake, || Log::load(lake))
            .await?
            .unwrap_or_else(|| (-1, Arc::default())))
    }

    /// The confirmed plausibility findings and their table version (`-1` before the first),
    /// read again only when one was confirmed.
    async fn confirmed(&self) -> Result<(i64, Arc<Confirmed>), ApiError> {
        let lake = self.lake();
        Ok(self
            .confirmed
            .get(lake, || Confirmed::load(lake))
            .await?
            .unwrap_or_else(|| (-1, Arc::default())))
    }

    /// The log with the confirmations, for what counts open findings.
    async fn log_confirmed(&self) -> Result<LogConfirmed, ApiError> {
        let ((log_version, log), (confirmed_version, confirmed)) =
            tokio::try_join!(self.log(), self.confirmed())?;
        Ok(LogConfirmed {
            log,
            confirmed,
            sources: [
                Source::Submissions(log_version),
                Source::Table("confirmations", confirmed_version),
            ],
        })
    }

    /// What the pages' footer says, for the snapshot as published.
    pub(crate) fn footer(&self, published: &Published) -> pages::Footer {
        pages::Footer {
            publisher: self.publisher.clone(),
            updated: published.updated(),
        }
    }

    /// The published snapshot, read again only when a refresh committed a new version.
    async fn published(&self) -> Result<Published, ApiError> {
        let lake = self.lake();
        Ok(
            match self.snapshot.get(lake, || Snapshot::load(lake)).await? {
                Some((version, snapshot)) => Published { snapshot, version },
                None => Published {
                    snapshot: Arc::default(),
                    version: -1,
                },
            },
        )
    }
}

/// The submission log and the confirmations of its findings, as one read.
pub(crate) struct LogConfirmed {
    pub log: Arc<Log>,
    pub confirmed: Arc<Confirmed>,
    /// What a response computed from them depends on.
    pub sources: [Source; 2],
}

/// The build, for responses that change only with the code (catalogue, templates).
fn build_stamp() -> Stamp {
    Stamp::of([
        Source::Code,
        Source::HalfYear(jiazheng_core::periods::Period::current()),
    ])
}

/// Every route with its OpenAPI operation: the document cannot miss or invent a route.
fn routes(upload_limit: usize) -> OpenApiRouter<AppState> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(submissions::upload))
        .layer(DefaultBodyLimit::max(upload_limit));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(catalog::catalog))
        .routes(routes!(regions::one))
        .routes(routes!(regions::list))
        .routes(routes!(regions::search))
        .routes(routes!(regions::periods))
        .routes(routes!(indicators::catalogue))
        .routes(routes!(indicators::values))
        .routes(routes!(indicators::series))
        .routes(routes!(indicators::long))
        .routes(routes!(sdmx::structure))
        .routes(routes!(records::list))
        .routes(routes!(records::records))
        .routes(routes!(records::bulk))
        .routes(routes!(packages::package))
        .routes(routes!(compliance::status))
        .routes(routes!(compliance::half_year))
        .routes(routes!(sql::run))
        .routes(routes!(submissions::list, submissions::request_upload))
        .routes(routes!(submissions::one))
        .routes(routes!(submissions::report))
        .routes(routes!(findings::confirm))
        .routes(routes!(findings::open))
        .routes(routes!(templates::download))
        .merge(uploads)
}

/// The OpenAPI document of the API, exact for this build.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = routes(MAX_UPLOAD_BYTES).split_for_parts();
    openapi::refine(&mut doc);
    doc
}

pub fn router(state: AppState) -> Router {
    let rate_limit = state.rate_limit.clone();
    let (routes, mut doc) = routes(state.upload_limit).split_for_parts();
    openapi::refine(&mut doc);
    let json = Arc::new(doc.to_json().unwrap_or_default());
    let page = Arc::new(openapi::page(&doc));
    let index = Arc::new(openapi::index(&doc).to_string());
    let start = move || {
        let index = index.clone();
        async move {
            (
                axum::Extension(build_stamp()),
                [(header::CONTENT_TYPE, "application/json")],
                index.as_str().to_owned(),
            )
                .into_response()
        }
    };
    let mut routes = routes
        .merge(pages::routes(state.upload_limit))
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || {
                let json = json.clone();
                async move {
                    (
                        axum::Extension(build_stamp()),
                        [(header::CONTENT_TYPE, "application/json")],
                        json.as_str().to_owned(),
                    )
                        .into_response()
                }
            }),
        )
        .route("/v1/", axum::routing::get(start.clone()))
        .route("/v1", axum::routing::get(start))
        .route(
            "/v1/docs",
            axum::routing::get(move || {
                let page = page.clone();
                async move {
                    (
                        axum::Extension(build_stamp()),
                        Html(page.as_str().to_owned()),
                    )
                }
            }),
        )
        .with_state(state);
    if let Some(limit) = rate_limit {
        routes = routes.layer(axum::middleware::from_fn_with_state(limit, limits::limit));
    }
    routes
        .layer(axum::middleware::from_fn(problem::as_problem))
        .layer(axum::middleware::from_fn(caching::conditional))
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(tower_http::cors::Any)
                .allow_methods([Method::GET, Method::HEAD, Method::PUT, Method::POST, Method::OPTIONS])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_NONE_MATCH, header::ACCEPT])
                .expose_headers([header::ETAG, header::HeaderName::from_static("x-request-id")]),
        )
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
        }))
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(
            tower_http::request_id::MakeRequestUuid,
        ))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
    version: &'static str,
}

/// Whether the service answers, and its version.
#[utoipa::path(get, path = "/v1/health", tag = "service",
    responses((status = 200, description = "It answers", body = Health)))]
async fn health() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}
