//! Query parameters that never change what a page shows: analytics and session tracking.
//! The crawler drops them when it normalises a URL, and the rewrite route drops them when it
//! looks a page up, so both key a page the same way.

/// Tracking parameters by full name (lowercase); `utm_*`, `pk_*` and `mtm_*` go by prefix.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "msclkid",
    "yclid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "igshid",
    "phpsessid",
    "jsessionid",
    "sid",
    "sessionid",
    "cid_ref",
    "ref_src",
];

/// Whether a query parameter (any case) is one of the tracking parameters.
pub fn is_tracking_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("utm_")
        || n.starts_with("pk_")
        || n.starts_with("mtm_")
        || TRACKING_PARAMS.contains(&n.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_params_by_name_and_prefix() {
        for p in ["utm_source", "UTM_Medium", "pk_campaign", "mtm_kwd", "fbclid", "_ga", "sid", "PHPSESSID"] {
            assert!(is_tracking_param(p), "{p}");
        }
        for p in ["page", "id", "q", "lang", "utm", "side"] {
            assert!(!is_tracking_param(p), "{p}");
        }
    }
}
