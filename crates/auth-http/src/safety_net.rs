//! The last line of defence: whatever fails below, the client gets a JSON error.

use std::any::Any;

use axum::{
    body::{Body, Bytes},
    response::{IntoResponse, Response},
};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};

use crate::error::{bare_status_response, ApiError};

/// On every response: gives a JSON body to any error response that has none (the 413 of
/// the body limit, axum's own rejections), keeping its status and other headers.
pub(crate) fn json_error_bodies<B>(response: http::Response<B>) -> Response
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let response = response.map(Body::new);
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let replacement = bare_status_response(status);
    parts.headers.remove(CONTENT_LENGTH);
    for (name, value) in replacement.headers() {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, replacement.into_body())
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .get(..16)
                .is_some_and(|start| start.eq_ignore_ascii_case("application/json"))
        })
}

/// For `CatchPanicLayer`: a panic in a handler becomes an opaque 500 and one log line.
#[allow(
    clippy::needless_pass_by_value,
    reason = "the signature CatchPanicLayer calls"
)]
pub(crate) fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    ApiError::internal(format!("handler panicked: {message}")).into_response()
}
