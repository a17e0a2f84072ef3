use axum::Json;

use super::user_body::UserBody;
use crate::{
    login::CurrentUser,
    openapi::{Gated, Unavailable},
};

/// `GET /profile`: the logged-in user.
#[utoipa::path(
    get,
    path = "/profile",
    tag = "account",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The logged-in user", body = UserBody),
        Gated,
        Unavailable,
    ),
)]
pub(crate) async fn profile(user: CurrentUser) -> Json<UserBody> {
    Json(UserBody::from(&user.owner))
}
