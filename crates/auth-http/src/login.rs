//! The login manager: who is logged in on a request's session, and logging in and out.
//!
//! It sits on tower-sessions and owns no format of its own: what a session holds is
//! `auth_domain::session`'s. The session store loads a session together with its owner
//! (the user as stored now) in one round trip, so knowing who is logged in costs no
//! second read, and a changed password or a deleted user ends the session at the very next
//! request, on every instance.

use std::fmt;

use auth_domain::{
    session::{self, Data, Login, Owner},
    Password, User,
};
use axum::{extract::FromRequestParts, http::request::Parts};
use time::{Duration, OffsetDateTime};
use tower_sessions::Session;

use crate::error::ApiError;

/// What a login form submits.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    /// An email address or a username.
    pub(crate) login: String,
    /// The password as typed.
    pub(crate) password: Password,
}

/// The configured session lifetime, which the rolling renewal measures against; set as a
/// request extension by the router.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionLifetime(pub(crate) Duration);

/// The logged-in user of a request. A handler that takes it answers 401 to anyone else.
pub(crate) struct CurrentUser {
    /// The user, as stored when the session was loaded.
    pub(crate) owner: Owner,
    /// The session they are logged in on.
    pub(crate) session: Session,
}

// The id only: an email address is personal data.
impl fmt::Debug for CurrentUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentUser")
            .field("id", &self.owner.id)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, why)| ApiError::internal(why))?;
        let lifetime = parts
            .extensions
            .get::<SessionLifetime>()
            .ok_or_else(|| ApiError::internal("the router sets the session lifetime"))?
            .0;
        let data = read(&session).await?;
        let login = Login::read(&data).ok_or(ApiError::AccessDenied)?;
        match session::owner(&data) {
            Some(owner) if owner.owns(&login) => {
                let now = OffsetDateTime::now_utc();
                // A steady request writes nothing; past half the lifetime, one write rolls
                // the expiry of the stored session and of the cookie.
                if login.is_renewal_due(lifetime, now) {
                    let renewed = Login {
                        renewed_at: now.unix_timestamp(),
                        ..login
                    };
                    write_login(&session, &renewed).await?;
                }
                Ok(Self { owner, session })
            }
            // The password changed or the user is gone: the session is over.
            _ => {
                session.flush().await.map_err(ApiError::internal)?;
                Err(ApiError::AccessDenied)
            }
        }
    }
}

/// Logs `user` in on `session`, under a new session id: nothing of what the session held
/// before (someone else's login, an id planted by an attacker) carries over.
pub(crate) async fn log_in(session: &Session, user: &User) -> Result<(), ApiError> {
    session.cycle_id().await.map_err(ApiError::internal)?;
    session.clear().await;
    let mut data = Data::new();
    Login::new(user, OffsetDateTime::now_utc()).write(&mut data);
    // A store that keeps a snapshot of the owner in the session (MongoDB) takes it from
    // here; the others drop it and join the user at every load.
    session::put_owner(&mut data, &Owner::of(user));
    for (key, value) in data {
        session
            .insert_value(&key, value)
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(())
}

/// Ends the session: deleted from the store, the cookie expired.
pub(crate) async fn log_out(session: &Session) -> Result<(), ApiError> {
    session.flush().await.map_err(ApiError::internal)
}

/// The part of the session's data that `auth_domain::session` reads.
async fn read(session: &Session) -> Result<Data, ApiError> {
    let mut data = Data::new();
    for key in session::KEYS {
        if let Some(value) = session.get_value(key).await.map_err(ApiError::internal)? {
            data.insert(key.to_owned(), value);
        }
    }
    Ok(data)
}

/// Writes `login` into the session, replacing whatever login it held.
async fn write_login(session: &Session, login: &Login) -> Result<(), ApiError> {
    let before = read(session).await?;
    let mut after = before.clone();
    login.write(&mut after);
    for key in session::KEYS {
        match after.get(key) {
            Some(value) if before.get(key) != Some(value) => {
                session
                    .insert_value(key, value.clone())
                    .await
                    .map_err(ApiError::internal)?;
            }
            None if before.contains_key(key) => {
                session
                    .remove_value(key)
                    .await
                    .map_err(ApiError::internal)?;
            }
            _ => {}
        }
    }
    Ok(())
}
