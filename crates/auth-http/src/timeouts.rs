//! Deadlines on a request once its headers are in: its body must arrive within
//! `BODY_READ_TIMEOUT` (else 408 and the connection is closed), and its answer must be
//! ready within `REQUEST_TIMEOUT` (else 503 to retry). The transport bounds what comes
//! before (the headers) and between requests (keep-alive).
//!
//! A body is at most [`BODY_LIMIT_BYTES`](crate::BODY_LIMIT_BYTES), so one deadline for
//! the whole of it is a minimal rate: 16 KiB in 10 s is 1.6 KB/s, which any client that
//! is not deliberately dripping exceeds by orders of magnitude.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{ready, Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::Request,
    response::{IntoResponse, Response},
};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, Timeout};
use tower::Service;

use crate::error::ApiError;

/// How long a request may take once its headers are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTimeouts {
    /// The whole body must arrive within this (`BODY_READ_TIMEOUT`).
    pub body: Duration,
    /// The answer must be ready within this (`REQUEST_TIMEOUT`).
    pub request: Duration,
}

impl RequestTimeouts {
    /// The default `BODY_READ_TIMEOUT`: 10 s.
    pub const DEFAULT_BODY: Duration = Duration::from_secs(10);
    /// The default `REQUEST_TIMEOUT`: 30 s, what proxies commonly wait for an upstream.
    pub const DEFAULT_REQUEST: Duration = Duration::from_secs(30);
}

impl Default for RequestTimeouts {
    fn default() -> Self {
        Self {
            body: Self::DEFAULT_BODY,
            request: Self::DEFAULT_REQUEST,
        }
    }
}

/// The stage that puts a deadline on reading the body and on the whole answer. A service
/// of its own rather than a `from_fn` middleware, which would clone and box everything
/// inside it on every request.
#[derive(Debug, Clone)]
pub(crate) struct Deadlines<S> {
    timeouts: RequestTimeouts,
    inner: S,
}

impl<S> Deadlines<S> {
    /// `inner`, its requests bounded by `timeouts`.
    pub(crate) fn new(timeouts: RequestTimeouts, inner: S) -> Self {
        Self { timeouts, inner }
    }
}

impl<S> Service<Request> for Deadlines<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Bounded<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let expired = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + self.timeouts.body;
        let request = request.map(|body| {
            Body::new(DeadlineBody {
                inner: body,
                deadline,
                sleep: None,
                expired: Arc::clone(&expired),
            })
        });
        Bounded {
            answer: tokio::time::timeout(self.timeouts.request, self.inner.call(request)),
            expired,
            timeouts: self.timeouts,
        }
    }
}

pin_project! {
    /// The answer of a [`Deadlines`] stage.
    pub(crate) struct Bounded<F> {
        #[pin]
        answer: Timeout<F>,
        expired: Arc<AtomicBool>,
        timeouts: RequestTimeouts,
    }
}

impl<F> Future for Bounded<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answered = ready!(this.answer.poll(cx));
        // Whatever the handler made of a body cut short (a 400 `unreadable_body`, most
        // likely), the client's fault was slowness.
        if this.expired.load(Ordering::Acquire) {
            tracing::info!(
                timeout = ?this.timeouts.body,
                "request body did not arrive in time, answered 408"
            );
            return Poll::Ready(Ok(ApiError::BodyTimeout.into_response()));
        }
        Poll::Ready(Ok(match answered {
            Ok(Ok(response)) => response,
            Ok(Err(never)) => match never {},
            Err(_) => {
                tracing::warn!(timeout = ?this.timeouts.request, "request took too long, answered 503");
                ApiError::RequestTimeout.into_response()
            }
        }))
    }
}

/// The body did not arrive before its deadline.
#[derive(Debug, thiserror::Error)]
#[error("request body did not arrive in time")]
struct BodyTimedOut;

/// A request body that fails once its deadline passes. The timer is only set up when the
/// body is first read: a request whose body nobody reads costs nothing.
struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(sleep.as_mut().poll(cx));
        this.expired.store(true, Ordering::Release);
        Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::{routing::post, Router};
    use http::StatusCode;
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    fn app(timeouts: RequestTimeouts) -> Router {
        Router::new()
            .route("/echo", post(|body: Bytes| async move { body }))
            .route(
                "/slow",
                post(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "never"
                }),
            )
            .layer(tower::layer::layer_fn(move |inner| {
                Deadlines::new(timeouts, inner)
            }))
    }

    async fn json(response: Response) -> Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// A body that sends one chunk, then nothing more, ever.
    struct Stalled {
        sent: bool,
    }

    impl HttpBody for Stalled {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            if self.sent {
                return Poll::Pending;
            }
            self.sent = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{\"email_or_")))))
        }
    }

    fn stalled_body() -> Body {
        Body::new(Stalled { sent: false })
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_is_answered_408_and_the_connection_closed() {
        let timeouts = RequestTimeouts {
            body: Duration::from_secs(10),
            request: Duration::from_secs(30),
        };
        let request = Request::post("/echo").body(stalled_body()).unwrap();
        let response = app(timeouts).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(response.headers()[http::header::CONNECTION], "close");
        let body = json(response).await;
        assert_eq!(body["code"], "body_timeout");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_arrives_in_time_is_untouched() {
        let request = Request::post("/echo").body(Body::from("hello")).unwrap();
        let response = app(RequestTimeouts::default())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_past_the_request_timeout_is_a_503_to_retry() {
        let request = Request::post("/slow").body(Body::empty()).unwrap();
        let response = app(RequestTimeouts::default())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(http::header::RETRY_AFTER));
        let body = json(response).await;
        assert_eq!(body["code"], "request_timeout");
        assert!(body["message"].is_string());
    }
}
