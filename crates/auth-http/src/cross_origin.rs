//! Refusing state-changing requests from other sites (CSRF), the way Go 1.25's
//! `CrossOriginProtection` does, and answering CORS for the origins allowed to call us.
//!
//! The session cookie is `SameSite=Lax`, and bodies must be declared JSON, which a plain
//! HTML form cannot do; this is the third wall, and the one that does not depend on the
//! browser's cookie rules: every request that is not GET, HEAD or OPTIONS is refused when
//! the browser says it comes from another site (`Sec-Fetch-Site`), or, from browsers that
//! do not send that, when its `Origin` is neither this service's nor an allowed one. A
//! request with neither header comes from no browser (curl, a server) and passes.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    extract::Request,
    response::{IntoResponse, Response},
};
use futures::future::{self, Either, Ready};
use http::{
    header::{
        ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE, HOST, ORIGIN,
    },
    HeaderName, HeaderValue, Method,
};
use tower::Service;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The origins (`scheme://host[:port]`) allowed to call the API from a browser
/// (`ALLOWED_ORIGINS`).
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowedOrigins(Arc<[HeaderValue]>);

impl AllowedOrigins {
    /// The origins as configured; one that cannot be a header value is dropped (the
    /// configuration checks them before they get here).
    pub(crate) fn new(origins: &[String]) -> Self {
        Self(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin.trim_end_matches('/')).ok())
                .collect(),
        )
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        self.0.iter().any(|allowed| allowed == origin)
    }

    /// CORS for the allowed origins, with credentials (the session cookie); `None` when
    /// no origin is allowed, so that no CORS header is ever sent.
    pub(crate) fn cors(&self) -> Option<CorsLayer> {
        if self.0.is_empty() {
            return None;
        }
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(self.0.iter().cloned()))
                .allow_credentials(true)
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([CONTENT_TYPE])
                .max_age(std::time::Duration::from_secs(600)),
        )
    }
}

/// The stage that refuses: a refused request is answered 403 at once and goes no
/// further. A service of its own rather than a `from_fn` middleware, which would clone
/// and box everything inside it on every request.
#[derive(Debug, Clone)]
pub(crate) struct RefuseCrossOrigin<S> {
    allowed: AllowedOrigins,
    inner: S,
}

impl<S> RefuseCrossOrigin<S> {
    /// `inner`, behind the refusal of what `allowed` does not allow.
    pub(crate) fn new(allowed: AllowedOrigins, inner: S) -> Self {
        Self { allowed, inner }
    }
}

impl<S> Service<Request> for RefuseCrossOrigin<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if is_cross_origin(&self.allowed, &request) {
            return Either::Left(future::ready(Ok(ApiError::CrossOrigin.into_response())));
        }
        Either::Right(self.inner.call(request))
    }
}

/// Around the CORS layer: `Access-Control-Allow-Credentials` only beside an
/// `Access-Control-Allow-Origin`, which the CORS layer sets for an allowed origin alone.
/// tower-http sends the credentials header on every response, even to a request with no
/// `Origin`; alone it grants nothing, but it tells everyone the API takes credentials
/// cross-origin, and scanners flag it.
pub(crate) fn credentials_only_for_an_allowed_origin(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
        headers.remove(ACCESS_CONTROL_ALLOW_CREDENTIALS);
    }
    response
}

fn is_cross_origin(allowed: &AllowedOrigins, request: &Request) -> bool {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return false;
    }
    let headers = request.headers();
    let origin = headers.get(ORIGIN);
    if origin.is_some_and(|origin| allowed.allows(origin)) {
        return false;
    }
    if let Some(site) = headers.get(SEC_FETCH_SITE) {
        return !(site == "same-origin" || site == "none");
    }
    match origin {
        None => false,
        Some(origin) => !same_host(origin, headers.get(HOST)),
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the host the request was sent to.
fn same_host(origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), host.map(HeaderValue::to_str)) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn request(method: Method, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder()
            .method(method)
            .uri("/v1/auth/login")
            .header(HOST, "auth.example.com");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    fn refused(headers: &[(&str, &str)]) -> bool {
        let allowed = AllowedOrigins::new(&["https://app.example.com".to_owned()]);
        is_cross_origin(&allowed, &request(Method::POST, headers))
    }

    #[test]
    fn the_browser_saying_cross_site_is_refused_unless_the_origin_is_allowed() {
        assert!(refused(&[("sec-fetch-site", "cross-site")]));
        assert!(refused(&[("sec-fetch-site", "same-site")]));
        assert!(!refused(&[("sec-fetch-site", "same-origin")]));
        assert!(!refused(&[("sec-fetch-site", "none")]));
        assert!(!refused(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://app.example.com"),
        ]));
    }

    #[test]
    fn without_sec_fetch_site_a_foreign_origin_is_refused_and_our_own_passes() {
        assert!(refused(&[("origin", "https://evil.example")]));
        assert!(refused(&[("origin", "null")]));
        assert!(!refused(&[("origin", "https://auth.example.com")]));
        assert!(!refused(&[("origin", "https://app.example.com")]));
    }

    #[test]
    fn no_header_at_all_passes_and_safe_methods_always_pass() {
        assert!(!refused(&[]));
        let allowed = AllowedOrigins::default();
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            let request = request(method, &[("sec-fetch-site", "cross-site")]);
            assert!(!is_cross_origin(&allowed, &request));
        }
        let delete = request(Method::DELETE, &[("sec-fetch-site", "cross-site")]);
        assert!(is_cross_origin(&allowed, &delete));
    }
}
