//! HTTP caching: every public read names the lake state it was computed from (a [`Stamp`]);
//! this layer turns it into a strong ETag, answers `If-None-Match` with 304 and sets a
//! `Cache-Control` a CDN can act on. Responses without a stamp are not cached at all.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The versions of what a response was computed from, e.g. `snapshot-12.regions-0`.
#[derive(Debug, Clone)]
pub struct Stamp(pub String);

/// How long shared caches may serve a response before asking again; they may keep serving a
/// stale one while they revalidate, since a new snapshot changes the ETag anyway.
const PUBLIC: &str = "public, max-age=60, stale-while-revalidate=600";

pub async fn conditional(request: Request, next: Next) -> Response {
    let cacheable_method = matches!(*request.method(), Method::GET | Method::HEAD);
    let if_none_match = request.headers().get(header::IF_NONE_MATCH).cloned();
    let resource = request.uri().to_string();
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut response = next.run(request).await;
    let stamp = response.extensions().get::<Stamp>().cloned();
    let (true, StatusCode::OK, Some(Stamp(stamp))) = (cacheable_method, response.status(), stamp)
    else {
        if !response.headers().contains_key(header::CACHE_CONTROL) {
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        return response;
    };
    // One ETag per representation: the lake state, the URL and the negotiated type.
    let digest = Sha256::digest(format!("{stamp}\n{resource}\n{accept}"));
    let etag = format!("\"{}\"", hex::encode(&digest[..12]));
    let Ok(value) = HeaderValue::from_str(&etag) else {
        return response;
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, value.clone());
    // A handler may ask for its own policy (pages revalidate every time).
    let policy = headers
        .get(header::CACHE_CONTROL)
        .cloned()
        .unwrap_or(HeaderValue::from_static(PUBLIC));
    headers.insert(header::CACHE_CONTROL, policy.clone());
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    let matches = if_none_match
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        let h = not_modified.headers_mut();
        h.insert(header::ETAG, value);
        h.insert(header::CACHE_CONTROL, policy);
        h.insert(
            header::VARY,
            HeaderValue::from_static("Accept, Accept-Encoding"),
        );
        return not_modified;
    }
    response
}
