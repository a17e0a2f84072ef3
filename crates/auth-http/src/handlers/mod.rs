//! Request handlers, one module per concern.

mod account;
mod auth;
mod events;
pub(crate) mod my_sessions;
mod profile;
mod user_body;

use axum::Json;
use serde_json::{json, Value};

pub(crate) use self::{
    account::{change_password, delete_account},
    auth::{login, logout, register},
    events::recent as events,
    profile::profile,
};
use crate::error::ApiError;

/// `GET /`: public, proves the service is up.
pub(crate) async fn index() -> Json<Value> {
    Json(json!({"message": "Welcome to the authentication service."}))
}

/// Every unknown path, and every known path with a method it does not serve.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound
}
