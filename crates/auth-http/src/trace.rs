//! Following a request: its id, its span and its access line.
//!
//! Every request gets an id (the `X-Request-Id` a trusted proxy sent, when well formed),
//! returned in
//! the `X-Request-Id` response header, and one span carrying the method, the matched route
//! template, the id and, once known, the user id: every log line of the request is written
//! inside it. When the response is ready, one access line (status and latency) is logged
//! in that span, at info (at debug for the probes, which are called every few seconds),
//! and the request is counted in the metrics. Headers (cookies) are never recorded, nor
//! the raw path or the query string.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{ready, Context, Poll},
    time::Instant,
};

use auth_domain::UserId;
use axum::{
    extract::{ConnectInfo, MatchedPath, Request},
    response::Response,
};
use http::Method;
use pin_project_lite::pin_project;
use tower::{Service, ServiceBuilder};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::{field, instrument::Instrumented, Instrument as _, Span};

use crate::{client::TrustedProxies, handlers::probes, metrics, router::Stage};

/// The header carrying the request id, set by us when the client sent none.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// The longest request id kept from a client.
const MAX_REQUEST_ID_CHARS: usize = 64;

/// Wraps everything, outermost, so that every request (a cross-origin refusal, a CORS
/// preflight, a 404) gets an id, a span, an access line and a count. A request id sent
/// along is kept only from one of the `proxies`.
pub(crate) fn observed(inner: impl Stage, proxies: TrustedProxies) -> impl Stage {
    ServiceBuilder::new()
        .map_request(move |request| drop_untrusted_request_id(request, &proxies))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer_fn(|inner| Observe { inner })
        .layer(PropagateRequestIdLayer::x_request_id())
        .service(inner)
}

/// Outermost, on the request: an `X-Request-Id` is kept only when a trusted proxy sent it
/// (a client could otherwise claim another request's id, and have its own lines read as
/// that request's) and it is 1 to 64 characters of `[A-Za-z0-9._-]`. Anything else is
/// dropped, and a fresh id is made for the request, so that no client can put what it
/// likes into our logs or the audit trail. A plain function (tower's `map_request`), not a
/// `from_fn` middleware: nothing to box per request.
fn drop_untrusted_request_id(mut request: Request, proxies: &TrustedProxies) -> Request {
    let Some(first) = request.headers().get(REQUEST_ID) else {
        return request;
    };
    let from_proxy = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| proxies.trusts(peer.ip().to_canonical()));
    let kept = from_proxy
        && is_well_formed(first.as_bytes())
        && request
            .headers()
            .get_all(REQUEST_ID)
            .iter()
            .nth(1)
            .is_none();
    if !kept {
        request.headers_mut().remove(REQUEST_ID);
    }
    request
}

fn is_well_formed(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_CHARS).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Where the router writes the route template a request matched: the observing
/// middleware runs before routing, and reads it back when the response is ready.
#[derive(Debug, Clone, Default)]
struct RouteSlot(Arc<OnceLock<MatchedPath>>);

/// The stage around everything: the request's span, its access line and its metrics. A
/// service of its own rather than a `from_fn` middleware, which would clone and box
/// everything inside it on every request.
#[derive(Debug, Clone)]
struct Observe<S> {
    inner: S,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Observed<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let method = request.method().clone();
        let slot = RouteSlot::default();
        request.extensions_mut().insert(slot.clone());
        let request_id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|value| value.to_str().ok());
        let span = tracing::info_span!(
            "request",
            method = %method,
            request_id,
            route = field::Empty,
            user_id = field::Empty,
        );
        // What the inner stages do when called belongs to the request too.
        let answer = span.in_scope(|| self.inner.call(request));
        Observed {
            answer: answer.instrument(span.clone()),
            finish: Some(Finish {
                started,
                method,
                slot,
                span,
            }),
        }
    }
}

pin_project! {
    /// The answer of an [`Observe`] stage.
    struct Observed<F> {
        #[pin]
        answer: Instrumented<F>,
        finish: Option<Finish>,
    }
}

/// What the access line and the metrics need once the answer is ready.
struct Finish {
    started: Instant,
    method: Method,
    slot: RouteSlot,
    span: Span,
}

impl Finish {
    fn log(self, response: &Response) {
        let latency = self.started.elapsed();
        let route = self.slot.0.get().map(MatchedPath::as_str);
        let status = response.status();
        metrics::request_finished(&self.method, route, status, latency);
        let latency_ms = latency.as_secs_f64() * 1000.0;
        self.span.in_scope(|| {
            if route.is_some_and(|route| probes::PATHS.contains(&route)) {
                tracing::debug!(status = status.as_u16(), latency_ms, "request finished");
            } else {
                tracing::info!(status = status.as_u16(), latency_ms, "request finished");
            }
        });
    }
}

impl<F> Future for Observed<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = ready!(this.answer.poll(cx));
        if let Some(finish) = this.finish.take() {
            finish.log(&response);
        }
        Poll::Ready(Ok(response))
    }
}

/// On every route, after routing: notes the matched route template in the request's span
/// and for its metrics (a plain function, tower's `map_request`).
pub(crate) fn note_route(request: Request) -> Request {
    if let Some(route) = request.extensions().get::<MatchedPath>() {
        Span::current().record("route", route.as_str());
        if let Some(slot) = request.extensions().get::<RouteSlot>() {
            let _ = slot.0.set(route.clone());
        }
    }
    request
}

/// Notes in the current request's span who the request is from, once that is known.
pub(crate) fn note_user(id: UserId) {
    Span::current().record("user_id", field::display(id));
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use axum::{body::Body, routing::get, Router};
    use http::header::COOKIE;
    use tower::ServiceExt;
    use tracing::Level;

    use auth_testkit::{logs::CapturedLogs, memory::MemorySessionStore};

    use super::*;
    use crate::router::app;

    /// Every log line of this test binary. A global subscriber, because a thread-local one
    /// races with tests on other threads over tracing's per-callsite interest cache.
    fn all_logs() -> String {
        static CAPTURED: OnceLock<CapturedLogs> = OnceLock::new();
        let captured = CAPTURED.get_or_init(|| {
            let captured = CapturedLogs::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(captured.clone())
                .with_ansi(false)
                .with_max_level(Level::TRACE)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
            captured
        });
        captured.text()
    }

    /// Trusts the loopback address, the peer of the requests sent with a request id.
    fn loopback() -> TrustedProxies {
        TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()])
    }

    /// The log lines of the request with this id, sent by a trusted proxy.
    async fn logs_of(request_id: &str, request: http::request::Builder) -> Vec<String> {
        all_logs();
        let routes = Router::new()
            .route("/profile/{id}", get(|| async { "ok" }))
            .route("/boom", get(|| async { panic!("kaboom") as &str }))
            .route(
                "/whoami",
                get(|| async {
                    note_user(UserId::generate());
                    tracing::warn!("inside the handler");
                    "you"
                }),
            )
            .merge(
                probes::routes(MemorySessionStore::new(), None)
                    .split_for_parts()
                    .0,
            );
        let request = request
            .header(REQUEST_ID, request_id)
            .extension(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))))
            .body(Body::empty())
            .unwrap();
        observed(app(routes, utoipa::openapi::OpenApi::default()), loopback())
            .oneshot(request)
            .await
            .unwrap();
        let tag = format!("request_id=\"{request_id}\"");
        all_logs()
            .lines()
            .filter(|line| line.contains(&tag))
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn a_request_is_logged_with_its_route_status_and_id_but_no_cookie_or_query() {
        let request = Request::get("/profile/42?token=secret-in-query")
            .header(COOKIE, "session=secret-cookie-value");
        let logs = logs_of("trace-test-1", request).await.join("\n");
        assert!(logs.contains("method=GET"), "{logs}");
        assert!(logs.contains(r#"route="/profile/{id}""#), "{logs}");
        assert!(logs.contains("status=200"), "{logs}");
        assert!(!logs.contains("/profile/42"), "{logs}");
        let everything = all_logs();
        assert!(!everything.contains("secret-in-query"), "{everything}");
        assert!(!everything.contains("secret-cookie-value"), "{everything}");
    }

    #[tokio::test]
    async fn every_line_of_a_request_and_its_access_line_name_the_user_once_known() {
        let logs = logs_of("trace-test-3", Request::get("/whoami")).await;
        let handler = logs.iter().find(|l| l.contains("inside the handler"));
        assert!(
            handler.is_some_and(|l| l.contains(r#"route="/whoami""#)),
            "{logs:#?}"
        );
        let access: Vec<_> = logs
            .iter()
            .filter(|l| l.contains("request finished"))
            .collect();
        assert_eq!(access.len(), 1, "{logs:#?}");
        assert!(access[0].contains(" INFO "), "{logs:#?}");
        assert!(access[0].contains("user_id="), "{logs:#?}");
        assert!(access[0].contains("status=200"), "{logs:#?}");
        assert!(access[0].contains("latency_ms="), "{logs:#?}");
    }

    #[tokio::test]
    async fn a_probe_writes_no_line_at_info() {
        for (id, path) in [("trace-test-4", "/healthz"), ("trace-test-5", "/readyz")] {
            let logs = logs_of(id, Request::get(path)).await;
            assert!(
                logs.iter()
                    .any(|l| l.contains("DEBUG") && l.contains("status=200")),
                "{logs:#?}"
            );
            assert!(!logs.iter().any(|l| l.contains(" INFO ")), "{logs:#?}");
        }
    }

    #[test]
    fn only_short_ids_of_safe_characters_are_kept() {
        for good in ["a", "trace-me-42", "A.b_c-9", &"x".repeat(64)] {
            assert!(is_well_formed(good.as_bytes()), "{good}");
        }
        for bad in [
            "",
            "has space",
            "new\nline",
            "quote\"",
            "é",
            &"x".repeat(65),
        ] {
            assert!(!is_well_formed(bad.as_bytes()), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_malformed_request_id_is_replaced_by_a_fresh_one() {
        let request = Request::get("/")
            .header(REQUEST_ID, "x".repeat(65))
            .body(Body::empty())
            .unwrap();
        let response = observed(
            app(Router::new(), utoipa::openapi::OpenApi::default()),
            loopback(),
        )
        .oneshot(request)
        .await
        .unwrap();
        let id = response.headers()[REQUEST_ID].to_str().unwrap();
        assert_ne!(id, "x".repeat(65));
        assert!(is_well_formed(id.as_bytes()), "{id}");
    }

    #[tokio::test]
    async fn a_panic_is_logged_once_inside_the_request_span() {
        let logs = logs_of("trace-test-2", Request::get("/boom")).await;
        let errors: Vec<_> = logs.iter().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 1, "{logs:#?}");
        assert!(errors[0].contains("kaboom"), "{logs:#?}");
        assert!(errors[0].contains(r#"route="/boom""#), "{logs:#?}");
        assert!(logs.iter().any(|l| l.contains("status=500")), "{logs:#?}");
    }
}
