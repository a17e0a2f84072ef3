//! Saying why a `Secure` session cookie will be dropped. A browser keeps a `Secure` cookie
//! only from an https page, so a release build (whose cookie is `Secure` by default) served
//! over plain http answers every login 200 and keeps nobody logged in, and nothing would
//! say why. A login that sets a `Secure` cookie on a request that visibly came over plain
//! http is counted ([`SECURE_COOKIE_OVER_HTTP`](crate::metrics::SECURE_COOKIE_OVER_HTTP)),
//! and the first one in a process logs a warning that names the fix.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::atomic::{AtomicBool, Ordering},
};

use axum::extract::{ConnectInfo, FromRequestParts};
use http::{
    header::{ORIGIN, REFERER},
    request::Parts,
    HeaderMap, HeaderName, HeaderValue,
};
use url::{Host, Url};

use crate::{client::TrustedProxies, metrics};

const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Whether a request visibly came over plain http: its `Origin` or `Referer` is an
/// `http://` URL of a host that is not loopback (a browser on `http://localhost` keeps
/// `Secure` cookies), or a trusted proxy says `X-Forwarded-Proto: http`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlainHttp(pub(crate) bool);

impl<S: Send + Sync> FromRequestParts<S> for PlainHttp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let from_trusted_proxy = match (
            parts.extensions.get::<ConnectInfo<SocketAddr>>(),
            parts.extensions.get::<TrustedProxies>(),
        ) {
            (Some(ConnectInfo(peer)), Some(proxies)) => proxies.trusts(peer.ip().to_canonical()),
            _ => false,
        };
        Ok(Self(visibly_plain_http(&parts.headers, from_trusted_proxy)))
    }
}

/// See [`PlainHttp`]; `from_trusted_proxy` says whether the socket peer is a trusted proxy,
/// whose `X-Forwarded-Proto` is then believed.
pub(crate) fn visibly_plain_http(headers: &HeaderMap, from_trusted_proxy: bool) -> bool {
    let page_over_http = [ORIGIN, REFERER]
        .iter()
        .filter_map(|name| headers.get(name))
        .any(is_plain_http_page);
    let proxy_says_http = from_trusted_proxy
        && headers
            .get(X_FORWARDED_PROTO)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("http"));
    page_over_http || proxy_says_http
}

fn is_plain_http_page(value: &HeaderValue) -> bool {
    let Some(url) = value.to_str().ok().and_then(|text| Url::parse(text).ok()) else {
        return false;
    };
    url.scheme() == "http" && !is_loopback(url.host().as_ref())
}

fn is_loopback(host: Option<&Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Called when a login set a `Secure` cookie on a request that visibly came over plain
/// http: counted every time, logged the first time in the process.
pub(crate) fn secure_cookie_over_plain_http() {
    ::metrics::counter!(metrics::SECURE_COOKIE_OVER_HTTP).increment(1);
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "a login set a Secure session cookie on a request that came over plain http \
             (an http:// Origin or Referer that is not loopback, or X-Forwarded-Proto: http \
             from a trusted proxy): browsers drop that cookie, so the user is not kept \
             logged in. Serve the API over https (TLS at a proxy listed in TRUSTED_PROXIES \
             that sends X-Forwarded-Proto: https), or, for plain-http testing only, set \
             SESSION_COOKIE_SECURE=false. Logged once per process; counted in {}",
            metrics::SECURE_COOKIE_OVER_HTTP
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn an_http_page_of_another_host_is_plain_http() {
        for (name, value) in [
            ("origin", "http://app.example.test"),
            ("origin", "http://192.0.2.7:8080"),
            ("referer", "http://app.example.test/login?next=/"),
        ] {
            assert!(
                visibly_plain_http(&headers(&[(name, value)]), false),
                "{name}: {value}"
            );
        }
    }

    #[test]
    fn https_loopback_or_nothing_visible_is_not() {
        for pairs in [
            &[][..],
            &[("origin", "https://app.example.test")],
            &[("origin", "http://localhost:3000")],
            &[("origin", "http://api.localhost")],
            &[("origin", "http://127.0.0.1:8000")],
            &[("origin", "http://[::1]:8000")],
            &[("origin", "null")],
            &[("referer", "https://app.example.test/")],
        ] {
            assert!(!visibly_plain_http(&headers(pairs), false), "{pairs:?}");
        }
    }

    #[test]
    fn x_forwarded_proto_counts_only_from_a_trusted_proxy() {
        let forwarded = headers(&[("x-forwarded-proto", "http")]);
        assert!(visibly_plain_http(&forwarded, true));
        assert!(!visibly_plain_http(&forwarded, false));
        let https = headers(&[("x-forwarded-proto", "https")]);
        assert!(!visibly_plain_http(&https, true));
    }
}
