//! HTTP caching: every public read names the lake state it was computed from (a [`Stamp`]);
//! this layer turns it into a strong ETag, answers `If-None-Match` with 304 and sets a
//! `Cache-Control` a CDN can act on. Responses without a stamp are not cached at all.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// What a response was computed from, each at its version: `snapshot-12.regions-0`.
#[derive(Debug, Clone)]
pub struct Stamp(Vec<Source>);

/// One thing a response is computed from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// The code that renders it: pages, templates, the catalogue change with a release.
    Code,
    /// The current half-year: what defaults to it (the OpenAPI period pattern) changes with it.
    HalfYear(jiazheng_core::periods::Period),
    /// The region tree's table version.
    Regions(i64),
    /// The published snapshot's table version.
    Snapshot(i64),
    /// The submission log's table version.
    Submissions(i64),
    /// A dataset table's version.
    Table(&'static str, i64),
}

impl Stamp {
    pub fn of<const N: usize>(sources: [Source; N]) -> Stamp {
        Stamp(sources.to_vec())
    }

    /// A stamp of as many sources as a response read (one per table of a package).
    pub fn all(sources: Vec<Source>) -> Stamp {
        Stamp(sources)
    }
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, source) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            match source {
                Source::Code => write!(f, "code-{}", env!("CARGO_PKG_VERSION"))?,
                Source::HalfYear(period) => write!(f, "half-{period}")?,
                Source::Regions(v) => write!(f, "regions-{v}")?,
                Source::Snapshot(v) => write!(f, "snapshot-{v}")?,
                Source::Submissions(v) => write!(f, "submissions-{v}")?,
                Source::Table(name, v) => write!(f, "{name}-{v}")?,
            }
        }
        Ok(())
    }
}

/// How long shared caches may serve a response before asking again; they may keep serving a
/// stale one while they revalidate, since a new snapshot changes the ETag anyway.
const PUBLIC: &str = "public, max-age=60, stale-while-revalidate=600";

/// The strong ETag of one representation: the lake state, the URL and the negotiated type.
fn etag(stamp: &Stamp, resource: &str, accept: &str) -> String {
    let digest = Sha256::digest(format!("{stamp}\n{resource}\n{accept}"));
    format!("\"{}\"", hex::encode(&digest[..12]))
}

/// Whether an `If-None-Match` names `etag`.
fn matches(if_none_match: Option<&HeaderValue>, etag: &str) -> bool {
    if_none_match
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// The headers every cacheable answer carries, 200 or 304.
fn cache_headers(headers: &mut HeaderMap, etag: HeaderValue, policy: HeaderValue) {
    headers.insert(header::ETAG, etag);
    headers.insert(header::CACHE_CONTROL, policy);
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
}

/// A GET's conditional headers, for handlers that can name their [`Stamp`] before doing the
/// work: [`Conditional::unchanged`] answers 304 without computing the body it would match.
pub struct Conditional {
    resource: String,
    accept: String,
    if_none_match: Option<HeaderValue>,
}

impl<S: Send + Sync> FromRequestParts<S> for Conditional {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let cacheable = matches!(parts.method, Method::GET | Method::HEAD);
        Ok(Conditional {
            resource: parts.uri.to_string(),
            accept: accept(&parts.headers),
            if_none_match: parts
                .headers
                .get(header::IF_NONE_MATCH)
                .filter(|_| cacheable)
                .cloned(),
        })
    }
}

impl Conditional {
    /// `304 Not Modified` when the client holds the representation `stamp` would produce.
    pub fn unchanged(&self, stamp: &Stamp) -> Option<Response> {
        let etag = etag(stamp, &self.resource, &self.accept);
        if !matches(self.if_none_match.as_ref(), &etag) {
            return None;
        }
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        cache_headers(
            not_modified.headers_mut(),
            HeaderValue::from_str(&etag).ok()?,
            HeaderValue::from_static(PUBLIC),
        );
        Some(not_modified)
    }
}

fn accept(headers: &HeaderMap) -> String {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Stamped 200 answers get their ETag and caching headers here, and a 304 when the client
/// already holds them.
pub async fn conditional(request: Request, next: Next) -> Response {
    let cacheable_method = matches!(*request.method(), Method::GET | Method::HEAD);
    let if_none_match = request.headers().get(header::IF_NONE_MATCH).cloned();
    let resource = request.uri().to_string();
    let accept = accept(request.headers());
    let mut response = next.run(request).await;
    let stamp = response.extensions().get::<Stamp>().cloned();
    let (true, StatusCode::OK, Some(stamp)) = (cacheable_method, response.status(), stamp) else {
        if !response.headers().contains_key(header::CACHE_CONTROL) {
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        return response;
    };
    let etag = etag(&stamp, &resource, &accept);
    let Ok(value) = HeaderValue::from_str(&etag) else {
        return response;
    };
    // A handler may ask for its own policy (pages revalidate every time).
    let policy = response
        .headers()
        .get(header::CACHE_CONTROL)
        .cloned()
        .unwrap_or(HeaderValue::from_static(PUBLIC));
    if matches(if_none_match.as_ref(), &etag) {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        cache_headers(not_modified.headers_mut(), value, policy);
        return not_modified;
    }
    cache_headers(response.headers_mut(), value, policy);
    response
}
