//! The open-data HTTP API: one axum Router, served by the local server and, unchanged, by
//! the API Lambda through `lambda_http`.

mod indicators;
mod problem;
mod regions;
mod reports;
mod submissions;
mod templates;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, put};
use tokio::sync::RwLock;

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
}

impl AppState {
    pub fn new(ingestor: Ingestor) -> AppState {
        AppState {
            ingestor,
            regions: Arc::new(RwLock::new(None)),
        }
    }

    pub fn lake(&self) -> &Lake {
        self.ingestor.lake()
    }

    /// The published levels of the region tree, reloaded only when the table changed.
    async fn regions(&self) -> Result<Arc<RegionTree>, ApiError> {
        let latest = self
            .lake()
            .versions(&[names::REGIONS])
            .await?
            .get(names::REGIONS)
            .copied();
        if let Some((version, tree)) = self.regions.read().await.as_ref()
            && Some(*version) == latest
        {
            return Ok(tree.clone());
        }
        let (tree, version) = stored::load(self.lake(), Scope::Published)
            .await?
            .ok_or(ApiError::NothingPublished)?;
        let tree = Arc::new(tree);
        *self.regions.write().await = Some((version, tree.clone()));
        Ok(tree)
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/regions/{code}", get(regions::one))
        .route("/v1/indicators", get(indicators::catalogue))
        .route("/v1/indicators/{id}", get(indicators::values))
        .route(
            "/v1/submissions/{dataset}/{period}/{region}",
            put(submissions::upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        )
        .route("/v1/reports/status", get(reports::status))
        .route("/v1/submissions", get(submissions::list))
        .route("/v1/submissions/{id}", get(submissions::one))
        .route("/v1/submissions/{id}/{file}", get(submissions::report))
        .route("/v1/templates/{file}", get(templates::download))
        .with_state(state)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
