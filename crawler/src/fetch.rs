//! One HTTP request with the crawler's limits: no automatic redirects, conditional headers,
//! a hard cap on body size, and a classified outcome instead of an error for HTTP statuses.

use std::time::Duration;

use reqwest::header::{
    CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION,
    RETRY_AFTER,
};
use url::Url;

/// Validators remembered from the last fetch of a URL.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What came back.
#[derive(Debug)]
pub enum Outcome {
    /// 200 with a body within the size limit.
    Body {
        content_type: Option<String>,
        bytes: Vec<u8>,
        validators: Validators,
    },
    NotModified,
    Redirect {
        location: Option<Url>,
        status: u16,
    },
    /// Any other status. `retry_after` from 429/503.
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    TooLarge {
        limit: u64,
    },
    /// Network trouble: connect refused, DNS, timeout, broken body.
    Network {
        reason: &'static str,
        detail: String,
    },
}

pub async fn fetch(
    client: &reqwest::Client,
    url: &Url,
    validators: Option<&Validators>,
    max_bytes: u64,
) -> Outcome {
    let mut req = client.get(url.clone());
    if let Some(v) = validators {
        if let Some(etag) = &v.etag {
            req = req.header(IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &v.last_modified {
            req = req.header(IF_MODIFIED_SINCE, lm);
        }
    }
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return network(&e),
    };
    let status = resp.status().as_u16();
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    match status {
        304 => return Outcome::NotModified,
        300..=399 => {
            let location = header(LOCATION).and_then(|l| url.join(&l).ok());
            return Outcome::Redirect { location, status };
        }
        200 => {}
        _ => {
            let retry_after = header(RETRY_AFTER).and_then(|v| parse_retry_after(&v));
            return Outcome::Status {
                status,
                retry_after,
            };
        }
    }
    let content_type = header(CONTENT_TYPE);
    let validators = Validators {
        etag: header(ETAG),
        last_modified: header(LAST_MODIFIED),
    };
    if let Some(len) = header(CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok())
        && len > max_bytes
    {
        return Outcome::TooLarge { limit: max_bytes };
    }
    let mut bytes = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() as u64 + chunk.len() as u64 > max_bytes {
                    return Outcome::TooLarge { limit: max_bytes };
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return network(&e),
        }
    }
    Outcome::Body {
        content_type,
        bytes,
        validators,
    }
}

fn network(e: &reqwest::Error) -> Outcome {
    let reason = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "network"
    };
    // reqwest errors carry the URL and the source chain; keep the chain short for the summary
    let mut detail = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        detail = format!("{detail}: {s}");
        src = s.source();
    }
    Outcome::Network { reason, detail }
}

/// `Retry-After` is either seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
