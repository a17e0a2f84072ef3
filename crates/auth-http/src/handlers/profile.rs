use axum::Json;

use super::user_body::UserBody;
use crate::login::CurrentUser;

/// `GET /profile`: the logged-in user.
pub(crate) async fn profile(user: CurrentUser) -> Json<UserBody> {
    Json(UserBody::from(&user.owner))
}
