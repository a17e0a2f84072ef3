use auth_domain::UserRepository;
use axum::Json;

use super::user_body::UserBody;
use crate::{error::ApiError, login::AuthSession};

/// `GET /profile`: the logged-in user.
pub(crate) async fn profile<R: UserRepository>(
    auth: AuthSession<R>,
) -> Result<Json<UserBody>, ApiError> {
    let user = auth.user.as_ref().ok_or(ApiError::AccessDenied)?;
    Ok(Json(UserBody::from(user.user())))
}
