//! Rate limiting per client IP with governor: chat routes (model time) and search have their
//! own quotas. The client is the TCP peer, or, when the peer is a configured reverse proxy,
//! the last address in X-Forwarded-For that is not a proxy. Refusals are 429 with
//! Retry-After. `/v1/chat/completions` with a valid portal API token (scope `chat`) counts
//! against the token's own quota instead: Open WebUI or n8n ask for many people from one
//! address.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::AppState;
use crate::config::Limits;
use crate::error::ApiError;

/// The server's rate limiters (absent when switched off with 0).
pub struct RateLimits {
    chat: Option<DefaultKeyedRateLimiter<IpAddr>>,
    search: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// `/v1` by API token (the key: the first 16 bytes of the token's SHA-256).
    v1_token: Option<DefaultKeyedRateLimiter<[u8; 16]>>,
    /// What the store said of a `/v1` token lately (valid with scope `chat`, or not), so
    /// that a client cannot make every request a database round trip; a revoked token is
    /// refused within [`TOKEN_CHECK_TTL`].
    pub(crate) v1_tokens: moka::sync::Cache<[u8; 16], bool>,
}

/// How long a `/v1` token's check is trusted.
pub const TOKEN_CHECK_TTL: std::time::Duration = std::time::Duration::from_secs(30);

impl RateLimits {
    pub fn new(l: &Limits) -> RateLimits {
        let burst = |b: u32| NonZeroU32::new(b.max(1)).unwrap_or(NonZeroU32::MIN);
        RateLimits {
            chat: NonZeroU32::new(l.chat_per_minute)
                .map(|r| RateLimiter::keyed(Quota::per_minute(r).allow_burst(burst(l.chat_burst)))),
            search: NonZeroU32::new(l.search_per_second)
                .map(|r| RateLimiter::keyed(Quota::per_second(r).allow_burst(burst(l.search_burst)))),
            v1_token: NonZeroU32::new(l.v1_token_per_minute)
                .map(|r| RateLimiter::keyed(Quota::per_minute(r).allow_burst(burst(l.v1_token_burst)))),
            v1_tokens: moka::sync::Cache::builder().max_capacity(10_000).time_to_live(TOKEN_CHECK_TTL).build(),
        }
    }

    /// `Err(seconds to wait)` when the API token with digest `key` is over its quota.
    fn check_token(&self, key: [u8; 16]) -> Result<(), u64> {
        match &self.v1_token {
            Some(l) => l.check_key(&key).map_err(wait_secs),
            None => Ok(()),
        }
    }

    /// Drop state of clients that are back at full quota (bounded memory).
    pub fn forget_idle(&self) {
        for l in [&self.chat, &self.search].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.v1_token {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// `Err(seconds to wait)` when `ip` is over the quota for `path`.
    fn check(&self, path: &str, ip: IpAddr) -> Result<(), u64> {
        let limiter = if path == "/api/v1/chat" || path == "/v1/chat/completions" {
            &self.chat
        } else if path == "/api/v1/search" || path == "/api/v1/simplify" || path == "/api/v1/feedback" {
            &self.search
        } else {
            &None
        };
        match limiter {
            Some(l) => l.check_key(&ip).map_err(wait_secs),
            None => Ok(()),
        }
    }
}

fn wait_secs(not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>) -> u64 {
    not_until.wait_time_from(DefaultClock::default().now()).as_secs_f64().ceil() as u64
}

/// The client's address: the peer, or the X-Forwarded-For client behind trusted proxies.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .copied()
        .unwrap_or(peer)
}

/// Middleware: 429 with Retry-After when the client is over its quota.
pub async fn rate_limit(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let ip = client_ip(peer, req.headers(), &state.config.server.trusted_proxies);
    let path = req.uri().path();
    let checked = if path.starts_with("/v1/") {
        match crate::portal::v1_token(&state, req.headers()).await {
            Ok(Some(key)) if path == "/v1/chat/completions" => state.limits.check_token(key),
            Ok(Some(_)) => Ok(()),
            Ok(None) => state.limits.check(path, ip),
            // a refused token costs the address's quota: no free guessing
            Err(e) => match state.limits.check("/v1/chat/completions", ip) {
                Ok(()) => return e.into_response(),
                Err(wait) => Err(wait),
            },
        }
    } else {
        state.limits.check(req.uri().path(), ip)
    };
    if let Err(wait) = checked {
        state.metrics.count_rate_limited();
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Sie haben in kurzer Zeit sehr viele Anfragen gestellt. Bitte warten Sie einen Moment und versuchen Sie es dann noch einmal.",
        )
        .retry_after(wait)
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 198.51.100.7".parse().unwrap());
        // an untrusted peer cannot choose its address
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_ip(peer, &h, &[proxy]), peer);
        // behind the proxy, the last untrusted hop is the client
        assert_eq!(client_ip(proxy, &h, &[proxy]), "198.51.100.7".parse::<IpAddr>().unwrap());
        // garbage falls back to the peer
        let mut bad = HeaderMap::new();
        bad.insert("x-forwarded-for", "nonsense".parse().unwrap());
        assert_eq!(client_ip(proxy, &bad, &[proxy]), proxy);
    }

    #[test]
    fn quota_refuses_with_a_wait() {
        let limits = RateLimits::new(&Limits {
            chat_per_minute: 1,
            chat_burst: 2,
            ..Limits::default()
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limits.check("/api/v1/chat", ip).is_ok());
        assert!(limits.check("/api/v1/chat", ip).is_ok());
        let wait = limits.check("/api/v1/chat", ip).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        // another client and other routes are not affected
        assert!(limits.check("/api/v1/chat", "192.0.2.2".parse().unwrap()).is_ok());
        assert!(limits.check("/health", ip).is_ok());
    }
}
