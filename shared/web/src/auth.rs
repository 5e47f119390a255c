//! Who is calling: a bearer token checked against the lake's keys. Reading is public; writing
//! needs a submitter key covering the region, SQL an analyst key.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use super::{ApiError, AppState};
use jiazheng_core::keys::{self, Key, Role};
use jiazheng_core::regions::Region;

/// The key presented with the request: 401 when there is none or it is not valid.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Key, ApiError> {
    let value = headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized("an API key is required: Authorization: Bearer jz_…".into())
    })?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::Unauthorized("use Authorization: Bearer jz_…".into()))?;
    keys::verify(state.lake(), token)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| ApiError::Unauthorized("this API key is not valid".into()))
}

/// A submitter key whose region contains `region`: 403 otherwise.
pub fn may_submit(key: &Key, region: &Region) -> Result<(), ApiError> {
    if key.role != Role::Submitter {
        return Err(ApiError::Forbidden("this key may not submit files".into()));
    }
    if !key.covers(region) {
        return Err(ApiError::Forbidden(format!(
            "this key submits for {}, not {}",
            key.region,
            region.code()
        )));
    }
    Ok(())
}

/// An analyst key: 403 for any other.
pub fn may_query(key: &Key) -> Result<(), ApiError> {
    match key.role {
        Role::Analyst => Ok(()),
        Role::Submitter => Err(ApiError::Forbidden("SQL needs an analyst key".into())),
    }
}
