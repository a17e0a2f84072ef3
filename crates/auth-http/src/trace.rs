//! Request tracing: one span per request with its method, matched route and request id;
//! one line per response with status and latency. Headers (cookies) are never recorded,
//! nor the query string.

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use tower_http::{
    classify::{ServerErrorsAsFailures, SharedClassifier},
    trace::{DefaultOnBodyChunk, DefaultOnEos, DefaultOnResponse, MakeSpan, TraceLayer},
    LatencyUnit,
};
use tracing::{Level, Span};

/// The header carrying the request id, set by us when the client sent none.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// The longest request id kept from a client.
const MAX_REQUEST_ID_CHARS: usize = 64;

/// Middleware, outermost: a client's `X-Request-Id` is kept only when it is 1 to 64
/// characters of `[A-Za-z0-9._-]`; anything else is dropped, and a fresh id is made for
/// the request, so that no client can put what it likes into our logs.
pub(crate) async fn drop_malformed_request_id(mut request: Request, next: Next) -> Response {
    let malformed = request
        .headers()
        .get_all(REQUEST_ID)
        .iter()
        .enumerate()
        .any(|(at, value)| at > 0 || !is_well_formed(value.as_bytes()));
    if malformed {
        request.headers_mut().remove(REQUEST_ID);
    }
    next.run(request).await
}

fn is_well_formed(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_CHARS).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Builds the span of a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let path = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let request_id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|value| value.to_str().ok());
        tracing::info_span!(
            "request",
            method = %request.method(),
            path,
            request_id,
        )
    }
}

/// The tracing layer, configured as above. No failure line: the cause of a 5xx is logged
/// where it happens (our errors, the panic handler, the session layers), the status with
/// every response.
pub(crate) fn layer() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    (),
    DefaultOnResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    (),
> {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Millis),
        )
        .on_failure(())
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Mutex, OnceLock},
    };

    use axum::{body::Body, routing::get, Router};
    use http::header::COOKIE;
    use tower::ServiceExt;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;
    use crate::router::app;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;

        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    /// Every log line of this test binary. A global subscriber, because a thread-local one
    /// races with tests on other threads over tracing's per-callsite interest cache.
    fn all_logs() -> String {
        static CAPTURED: OnceLock<Captured> = OnceLock::new();
        let captured = CAPTURED.get_or_init(|| {
            let captured = Captured::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(captured.clone())
                .with_ansi(false)
                .with_max_level(Level::TRACE)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
            captured
        });
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    /// The log lines of the request with this id.
    async fn logs_of(request_id: &str, request: http::request::Builder) -> Vec<String> {
        all_logs();
        let routes = Router::new()
            .route("/profile/{id}", get(|| async { "ok" }))
            .route("/boom", get(|| async { panic!("kaboom") as &str }));
        let request = request
            .header(REQUEST_ID, request_id)
            .body(Body::empty())
            .unwrap();
        app(routes).oneshot(request).await.unwrap();
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
        assert!(logs.contains(r#"path="/profile/{id}""#), "{logs}");
        assert!(logs.contains("status=200"), "{logs}");
        assert!(!logs.contains("/profile/42"), "{logs}");
        let everything = all_logs();
        assert!(!everything.contains("secret-in-query"), "{everything}");
        assert!(!everything.contains("secret-cookie-value"), "{everything}");
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
        let response = app(Router::new()).oneshot(request).await.unwrap();
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
        assert!(errors[0].contains(r#"path="/boom""#), "{logs:#?}");
        assert!(logs.iter().any(|l| l.contains("status=500")), "{logs:#?}");
    }
}
