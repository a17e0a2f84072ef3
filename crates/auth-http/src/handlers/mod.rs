//! Request handlers, one module per concern.

// Visible to the crate so that the router can name each handler with its documentation.
pub(crate) mod account;
pub(crate) mod auth;
pub(crate) mod events;
pub(crate) mod mail;
pub(crate) mod mfa;
pub(crate) mod my_sessions;
pub(crate) mod passkeys;
pub(crate) mod probes;
pub(crate) mod profile;
mod user_body;

use axum::Json;
use serde::Serialize;

use crate::error::ApiError;

/// A body that only says what happened.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Message)]
pub(crate) struct MessageBody {
    #[schema(value_type = String)]
    message: &'static str,
}

impl MessageBody {
    pub(crate) fn new(message: &'static str) -> Json<Self> {
        Json(Self { message })
    }
}

/// `GET /`: public, proves the service is up.
#[utoipa::path(
    get,
    path = "/",
    tag = "service",
    responses((status = 200, description = "The service is up", body = MessageBody)),
)]
pub(crate) async fn index() -> Json<MessageBody> {
    MessageBody::new("Welcome to the authentication service.")
}

/// Every unknown path, and every known path with a method it does not serve.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound
}
