//! Response headers that belong on every response, or on every authenticated one.

use axum::{response::Response, Router};
use http::{
    header::{
        ALLOW, CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, VARY,
        X_CONTENT_TYPE_OPTIONS,
    },
    HeaderValue, StatusCode,
};
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::router::Stage;

/// On every response: `X-Content-Type-Options: nosniff`; a Content-Security-Policy that
/// allows nothing, since the API serves no page (a JSON body opened in a browser can run
/// nothing and be framed nowhere); and `Referrer-Policy: no-referrer`.
pub(crate) fn security(inner: impl Stage) -> impl Stage {
    ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .service(inner)
}

/// For routes whose answer depends on who asks: `Cache-Control: no-store`, so that a
/// user's data stays in no shared or browser cache, and `Vary: Cookie`.
pub(crate) fn private(routes: Router) -> Router {
    routes.layer(
        ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::appending(
                VARY,
                HeaderValue::from_static("cookie"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            )),
    )
}

/// A wrong method is answered as an unknown path (the contract's 404), so the `Allow`
/// header axum adds to it must go too: it would tell the two apart.
pub(crate) fn no_allow_on_not_found(mut response: Response) -> Response {
    if response.status() == StatusCode::NOT_FOUND {
        response.headers_mut().remove(ALLOW);
    }
    response
}
