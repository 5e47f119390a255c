//! A per-client rate limit when the server runs on its own; on AWS, AWS WAF on CloudFront
//! limits each client address instead (infra/template.yaml). A token bucket per IP address.

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
    capacity: usize,
    buckets: Arc<Mutex<HashMap<IpAddr, (f64, Instant)>>>,
}

/// Clients remembered at most. Past it the table forgets by age (see [`RateLimit::evict`]),
/// so a flood of new addresses cannot wipe the state of a client being limited.
const MAX_CLIENTS: usize = 100_000;

impl RateLimit {
    pub fn new(per_second: u32, burst: u32) -> RateLimit {
        RateLimit::with_capacity(per_second, burst, MAX_CLIENTS)
    }

    fn with_capacity(per_second: u32, burst: u32, capacity: usize) -> RateLimit {
        RateLimit {
            per_second,
            burst,
            capacity,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        if buckets.len() >= self.capacity && !buckets.contains_key(&ip) {
            self.evict(&mut buckets, now);
        }
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

    /// Makes room by forgetting the clients whose buckets are fullest now, counting what they
    /// have refilled since their last request: first those idle long enough to be full again
    /// (forgetting them changes nothing), then, if the table is still full, the fuller half.
    /// A client being limited has an empty bucket, so it is the last to be forgotten.
    fn evict(&self, buckets: &mut HashMap<IpAddr, (f64, Instant)>, now: Instant) {
        let burst = f64::from(self.burst);
        let rate = f64::from(self.per_second);
        let tokens_now = |(tokens, last): &(f64, Instant)| {
            (tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst)
        };
        buckets.retain(|_, bucket| tokens_now(bucket) < burst);
        if buckets.len() < self.capacity {
            return;
        }
        let mut fullest: Vec<(f64, IpAddr)> = buckets
            .iter()
            .map(|(ip, bucket)| (tokens_now(bucket), *ip))
            .collect();
        fullest.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        for (_, ip) in &fullest[..fullest.len() / 2 + 1] {
            buckets.remove(ip);
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

    fn client(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn a_flood_of_new_addresses_does_not_free_a_limited_client() {
        let limit = RateLimit::with_capacity(1, 3, 100);
        let start = Instant::now();
        let at = |ms: u64| start + std::time::Duration::from_millis(ms);
        // Idle clients from long ago, whose buckets are full again.
        for n in 0..50 {
            assert!(limit.allow_at(client(1000 + n), at(0)));
        }
        let hammer = client(1);
        assert!((0..3).all(|_| limit.allow_at(hammer, at(10_000))));
        assert!(!limit.allow_at(hammer, at(10_000)));
        // Two hundred new addresses, each once, a millisecond apart.
        for n in 0..200 {
            assert!(limit.allow_at(client(2000 + n), at(10_001 + u64::from(n))));
            assert!(limit.buckets.lock().unwrap().len() <= 100);
        }
        // The idle ones went first; the limited client is still limited, not forgotten.
        assert!(!limit.allow_at(hammer, at(10_201)));
        let kept = limit.buckets.lock().unwrap();
        assert!((0..50).all(|n| !kept.contains_key(&client(1000 + n))));
        assert!(kept.contains_key(&client(2199)));
    }
}
