//! Rolling session expiry without a write per request.
//!
//! tower-sessions writes a session (store and `Set-Cookie`, both with expiry now +
//! lifetime) only when its data changed. So the time of the last write is kept in the
//! session itself, and an authenticated request changes it, and thereby prolongs the
//! session, only once more than half of the lifetime has passed since: a busy session
//! costs a couple of writes per lifetime, an idle one expires on time.

use auth_domain::UserRepository;
use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use time::{Duration, OffsetDateTime};
use tower_sessions::{session, Session};

use crate::{error::ApiError, login::AuthSession};

/// The session key holding when the session was last written (unix seconds).
pub(crate) const RENEWED_AT_KEY: &str = "auth.renewed_at";

/// Records that the session is being written now (at login, and at each renewal).
pub(crate) async fn stamp(session: &Session, now: OffsetDateTime) -> Result<(), session::Error> {
    session.insert(RENEWED_AT_KEY, now.unix_timestamp()).await
}

/// Middleware, inside the login manager: prolongs a logged-in user's session when due.
pub(crate) async fn renew_when_due<R: UserRepository>(
    State(lifetime): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let session = request
        .extensions()
        .get::<AuthSession<R>>()
        .filter(|auth| auth.user.is_some())
        .map(|auth| auth.session.clone());
    // Before the handler, so that a logout's flush discards the new stamp with the rest.
    if let Some(session) = session {
        if let Err(error) = renew(&session, lifetime, OffsetDateTime::now_utc()).await {
            return ApiError::internal(error).into_response();
        }
    }
    next.run(request).await
}

async fn renew(
    session: &Session,
    lifetime: Duration,
    now: OffsetDateTime,
) -> Result<(), session::Error> {
    let renewed_at = match session.get::<i64>(RENEWED_AT_KEY).await {
        Ok(renewed_at) => renewed_at,
        // Not a number: written by something else; renewing rewrites it.
        Err(session::Error::SerdeJson(_)) => None,
        Err(error) => return Err(error),
    };
    if is_due(renewed_at, lifetime, now) {
        stamp(session, now).await?;
    }
    Ok(())
}

/// Whether more than half of the lifetime has passed since the last write.
fn is_due(renewed_at: Option<i64>, lifetime: Duration, now: OffsetDateTime) -> bool {
    let Some(renewed_at) = renewed_at.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
    else {
        return true;
    };
    now - renewed_at > lifetime / 2
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const LIFETIME: Duration = Duration::hours(2);
    const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

    fn seconds_ago(seconds: i64) -> Option<i64> {
        Some((NOW - Duration::seconds(seconds)).unix_timestamp())
    }

    #[test]
    fn a_session_written_recently_is_left_alone() {
        assert!(!is_due(seconds_ago(0), LIFETIME, NOW));
        assert!(!is_due(seconds_ago(3_600), LIFETIME, NOW));
    }

    #[test]
    fn a_session_past_half_its_lifetime_is_renewed() {
        assert!(is_due(seconds_ago(3_601), LIFETIME, NOW));
        assert!(is_due(seconds_ago(7_000), LIFETIME, NOW));
    }

    #[test]
    fn a_session_without_a_readable_stamp_is_renewed() {
        assert!(is_due(None, LIFETIME, NOW));
        assert!(is_due(Some(i64::MAX), LIFETIME, NOW));
    }

    #[test]
    fn a_stamp_from_the_future_does_not_cause_a_write() {
        assert!(!is_due(seconds_ago(-60), LIFETIME, NOW));
    }
}
