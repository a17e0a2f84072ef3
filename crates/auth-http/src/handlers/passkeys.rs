//! Passkeys (WebAuthn): registering them, listing, renaming and deleting them, and
//! signing in with one.

use auth_domain::accounts::Context;
use auth_domain::UserId;
use serde_json::Value;

use crate::{
    error::ApiError,
    state::{AppState, Stores},
};

/// Verifies `credential` as `user`'s passkey answering a second-factor ceremony.
pub(crate) async fn prove<B: Stores>(
    _state: &AppState<B>,
    _user: UserId,
    _credential: &Value,
    _context: &Context,
) -> Result<(), ApiError> {
    Err(ApiError::PasskeysUnavailable)
}
