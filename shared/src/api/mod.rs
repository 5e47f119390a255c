//! The open-data HTTP API: one axum Router, served by the local server and, unchanged, by
//! the API Lambda through `lambda_http`.

mod auth;
mod caching;
mod indicators;
mod limits;
mod problem;
mod records;
mod regions;
mod reports;
mod sql;
mod submissions;
mod tabular;
mod templates;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, header};
use axum::routing::{get, put};
use tokio::sync::RwLock;

pub use caching::Stamp;
pub use limits::RateLimit;
pub use problem::ApiError;

use crate::ingest::Ingestor;
use crate::lake::{Lake, names};
use crate::regions::RegionTree;
use crate::regions::stored::{self, Scope};

/// Largest upload accepted in one request body (the Excel row limit times a wide row).
pub const MAX_UPLOAD_BYTES: usize = 256 * 1024 * 1024;

/// The published levels of the region tree and the regions table version they came from.
type CachedRegions = Arc<RwLock<Option<(i64, Arc<RegionTree>)>>>;

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    ingestor: Ingestor,
    regions: CachedRegions,
    rate_limit: Option<RateLimit>,
    upload_limit: usize,
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

impl AppState {
    pub fn new(ingestor: Ingestor) -> AppState {
        AppState {
            ingestor,
            regions: Arc::new(RwLock::new(None)),
            rate_limit: None,
            upload_limit: MAX_UPLOAD_BYTES,
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

    /// The published levels of the region tree, reloaded only when the table changed.
    async fn regions(&self) -> Result<Regions, ApiError> {
        let latest = self
            .lake()
            .versions(&[names::REGIONS])
            .await?
            .get(names::REGIONS)
            .copied();
        if let Some((version, tree)) = self.regions.read().await.as_ref()
            && Some(*version) == latest
        {
            return Ok(Regions {
                tree: tree.clone(),
                version: *version,
            });
        }
        let (tree, version) = stored::load(self.lake(), Scope::Published)
            .await?
            .ok_or(ApiError::NothingPublished)?;
        let tree = Arc::new(tree);
        *self.regions.write().await = Some((version, tree.clone()));
        Ok(Regions { tree, version })
    }
}

/// The build, for responses that change only with the code (catalogue, templates).
fn build_stamp() -> Stamp {
    Stamp(format!("build-{}", env!("CARGO_PKG_VERSION")))
}

pub fn router(state: AppState) -> Router {
    let rate_limit = state.rate_limit.clone();
    let upload_limit = state.upload_limit;
    let mut routes = Router::new()
        .route("/v1/health", get(health))
        .route("/v1/regions/{code}", get(regions::one))
        .route("/v1/indicators", get(indicators::catalogue))
        .route("/v1/indicators/{id}", get(indicators::values))
        .route("/v1/values", get(indicators::long))
        .route(
            "/v1/submissions/{dataset}/{period}/{region}",
            put(submissions::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/v1/periods", get(regions::periods))
        .route("/v1/regions", get(regions::list))
        .route("/v1/datasets", get(records::list))
        .route("/v1/datasets/{dataset}", get(records::records))
        .route("/v1/datasets/{dataset}/{file}", get(records::bulk))
        .route("/v1/reports/status", get(reports::status))
        .route("/v1/sql", axum::routing::post(sql::run))
        .route("/v1/submissions", get(submissions::list))
        .route("/v1/submissions/{id}", get(submissions::one))
        .route("/v1/submissions/{id}/{file}", get(submissions::report))
        .route("/v1/templates/{file}", get(templates::download))
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

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
