//! A per-client rate limit for public reads when the server runs on its own; on AWS the API
//! Gateway throttles instead. A token bucket per IP address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

#[derive(Clone)]
pub struct RateLimit {
    per_second: u32,
    burst: u32,
    buckets: Arc<Mutex<HashMap<IpAddr, (f64, Instant)>>>,
}

/// Clients remembered at most; the table is cleared past this (a burst of new addresses).
const MAX_CLIENTS: usize = 100_000;

impl RateLimit {
    pub fn new(per_second: u32, burst: u32) -> RateLimit {
        RateLimit {
            per_second,
            burst,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn allow(&self, ip: IpAddr) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        if buckets.len() > MAX_CLIENTS {
            buckets.clear();
        }
        let now = Instant::now();
        let (tokens, last) = buckets.entry(ip).or_insert((f64::from(self.burst), now));
        let refill = now.duration_since(*last).as_secs_f64() * f64::from(self.per_second);
        *tokens = (*tokens + refill).min(f64::from(self.burst));
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Limits requests carrying the peer address (the local server); others pass.
pub async fn limit(State(limit): State<RateLimit>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = peer
        && !limit.allow(ip)
    {
        return ApiError::TooManyRequests(limit.per_second).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_per_client() {
        let limit = RateLimit::new(1, 3);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        assert!((0..3).all(|_| limit.allow(a)));
        assert!(!limit.allow(a));
        assert!(limit.allow(b));
    }
}
