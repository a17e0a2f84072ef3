//! The login manager: who is logged in on a request's session, and logging in and out.
//!
//! It sits on tower-sessions and owns no format of its own: what a session holds is
//! `auth_domain::session`'s. The session store loads a session together with its owner
//! (the user as stored now) in one round trip, so knowing who is logged in costs no
//! second read, and a changed password or a deleted user ends the session at the very next
//! request, on every instance.

use std::{fmt, sync::Arc};

use auth_domain::{
    account_mail::EmailVerification,
    clock::Clock,
    session::{self, Data, Device, Lifetimes, Login, Owner, SessionHandle},
    AuthService, User, UserRepository,
};
use axum::{extract::FromRequestParts, http::request::Parts};
use time::OffsetDateTime;
use tower_sessions::{Expiry, Session};

use crate::{
    error::ApiError,
    session_layer::{self, LoadedSession, RequestSession},
    state::{AppState, Stores},
};

/// A request's session, with what the login manager needs to log someone in or out on it.
#[derive(Clone)]
pub(crate) struct LoginSession {
    session: Session,
    /// The cookie's session as loaded, with its owner.
    loaded: Option<Arc<dyn LoadedSession>>,
    lifetimes: Lifetimes,
    /// Whether only a fallback key verified the cookie.
    signed_with_fallback: bool,
    /// What expiries and renewals are decided by.
    clock: Clock,
}

impl<S: Send + Sync> FromRequestParts<S> for LoginSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let RequestSession {
            session,
            loaded,
            signed_with_fallback,
            lifetimes,
            clock,
        } = parts
            .extensions
            .get::<RequestSession>()
            .cloned()
            .ok_or_else(|| {
                ApiError::internal("the router puts the session layer around this route")
            })?;
        Ok(Self {
            session,
            loaded,
            lifetimes,
            signed_with_fallback,
            clock,
        })
    }
}

impl LoginSession {
    /// Logs `user` in under a new session id: nothing of what the session held before
    /// (someone else's login, an id planted by an attacker) carries over.
    ///
    /// The session is stored at once, then the user is read again: a password change or an
    /// account deletion that ran while the password was being verified is seen here, and
    /// the session is deleted (401); one that runs after the read finds the session stored
    /// and ends it. So no session made with an old password survives a change, on any
    /// backend, whichever way the two interleave.
    pub(crate) async fn log_in<R: UserRepository>(
        &self,
        user: &User,
        persistent: bool,
        device: Device,
        users: &AuthService<R>,
    ) -> Result<(), ApiError> {
        self.start(user, persistent, device, false, users).await
    }

    /// Starts a half-authenticated session for `user`, whose password was right and whose
    /// second factor is owed: as [`Self::log_in`], but the session can only complete the
    /// second step or log out, and ends within `auth_domain::session::PENDING_LIFETIME`.
    pub(crate) async fn await_second_factor<R: UserRepository>(
        &self,
        user: &User,
        persistent: bool,
        device: Device,
        users: &AuthService<R>,
    ) -> Result<(), ApiError> {
        self.start(user, persistent, device, true, users).await
    }

    /// Proves the session again at the clock's now (a step-up): sensitive actions pass
    /// for the next `auth_domain::session::FRESH_PROOF`.
    pub(crate) async fn reauthenticated(&self, login: &Login) -> Result<(), ApiError> {
        let now = self.clock.now();
        self.write_login(&login.reauthenticated(now), now).await
    }

    async fn start<R: UserRepository>(
        &self,
        user: &User,
        persistent: bool,
        device: Device,
        awaiting_second_factor: bool,
        users: &AuthService<R>,
    ) -> Result<(), ApiError> {
        self.session
            .cycle_id()
            .await
            .map_err(session_layer::failed)?;
        self.session.clear().await;
        let now = self.clock.now();
        let login = Login {
            persistent,
            device,
            awaiting_second_factor,
            ..Login::new(user, now)
        };
        let mut data = Data::new();
        login.write(&mut data);
        // A store that keeps a snapshot of the owner in the session (MongoDB) takes it from
        // here; the others drop it and join the user at every load.
        session::put_owner(&mut data, &Owner::of(user));
        for (key, value) in data {
            self.session
                .insert_value(&key, value)
                .await
                .map_err(session_layer::failed)?;
        }
        self.expire_from(&login, now);
        self.session.save().await.map_err(session_layer::failed)?;
        let current = users.get_user(user.id).await.map_err(ApiError::internal)?;
        if current.is_none_or(|now| now.password_hash.as_str() != user.password_hash.as_str()) {
            self.log_out().await?;
            return Err(ApiError::InvalidCredentials);
        }
        Ok(())
    }

    /// Ends the session: deleted from the store, the cookie expired.
    pub(crate) async fn log_out(&self) -> Result<(), ApiError> {
        self.session.flush().await.map_err(session_layer::failed)
    }

    /// The handle of this session, as its owner's list of sessions names it; `None` once
    /// its id was cycled in this request.
    pub(crate) fn handle(&self) -> Option<SessionHandle> {
        self.session
            .id()
            .map(|id| SessionHandle::of_session_id(&id.to_string()))
    }

    /// Writes `login`, renewed at `now`, into the session, replacing whatever login it
    /// held.
    async fn write_login(&self, login: &Login, now: OffsetDateTime) -> Result<(), ApiError> {
        let before = read(&self.session).await?;
        let mut after = before.clone();
        login.write(&mut after);
        for key in session::KEYS {
            match after.get(key) {
                Some(value) if before.get(key) != Some(value) => {
                    self.session
                        .insert_value(key, value.clone())
                        .await
                        .map_err(session_layer::failed)?;
                }
                None if before.contains_key(key) => {
                    self.session
                        .remove_value(key)
                        .await
                        .map_err(session_layer::failed)?;
                }
                _ => {}
            }
        }
        self.expire_from(login, now);
        Ok(())
    }

    /// Sets the expiry of a write of `login` at `now`: the idle lifetime, unless the
    /// absolute deadline comes first. Always an instant on the service's clock, never a
    /// lifetime that tower-sessions would count from the system's.
    fn expire_from(&self, login: &Login, now: OffsetDateTime) {
        self.set_expiry(Expiry::AtDateTime(login.expiry_from(now, self.lifetimes)));
    }

    /// Sets when the stored session and its cookie end: every write goes through here with
    /// an expiry `Login` computed, so none can pass the absolute deadline. It marks the
    /// session written, which makes the session layer save it and send the cookie.
    fn set_expiry(&self, expiry: Expiry) {
        self.session.set_expiry(Some(expiry));
    }
}

/// The logged-in user of a request. A handler that takes it answers 401 to anyone else.
pub(crate) struct CurrentUser {
    /// The user, as stored when the session was loaded.
    pub(crate) owner: Owner,
    /// Who logged in on the session, when and how.
    pub(crate) login: Login,
    /// The session they are logged in on.
    pub(crate) session: LoginSession,
}

// The id only: an email address is personal data.
impl fmt::Debug for CurrentUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentUser")
            .field("id", &self.owner.id)
            .finish_non_exhaustive()
    }
}

/// The logged-in user of a request whether or not their address is verified: for the
/// routes an unverified account may use when `EMAIL_VERIFICATION=required` (asking for
/// the link again, logging out). Every other route takes [`CurrentUser`], which answers
/// such an account 403 `email_unverified`.
pub(crate) struct AnyCurrentUser(pub(crate) CurrentUser);

impl<S: Send + Sync> FromRequestParts<S> for AnyCurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        CurrentUser::logged_in(parts, state)
            .await
            .and_then(CurrentUser::whole)
            .map(Self)
    }
}

/// The user of a session whether or not its second factor is still owed: for logging
/// out, which a half-authenticated session may do.
pub(crate) struct SessionUser(pub(crate) CurrentUser);

impl<S: Send + Sync> FromRequestParts<S> for SessionUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        CurrentUser::logged_in(parts, state).await.map(Self)
    }
}

/// The user of a half-authenticated session, whose second factor is owed: for the
/// second step's routes. A whole session, or none, gets 401 `access_denied`: there is no
/// second step to take.
pub(crate) struct PendingUser(pub(crate) CurrentUser);

impl<S: Send + Sync> FromRequestParts<S> for PendingUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let user = CurrentUser::logged_in(parts, state).await?;
        if !user.login.awaiting_second_factor {
            return Err(ApiError::AccessDenied);
        }
        // The stored session expires then too; this holds even where a store's expiry
        // runs on another clock.
        let waited = user.session.clock.now() - user.login.logged_in_at();
        if waited > auth_domain::session::PENDING_LIFETIME {
            user.session.log_out().await?;
            return Err(ApiError::AccessDenied);
        }
        Ok(Self(user))
    }
}

/// The logged-in user of a sensitive route (changing the password or the address,
/// deleting the account, a second factor's enrolment or removal): they must have proven
/// themselves within `auth_domain::session::FRESH_PROOF`, by the login or a step-up;
/// otherwise 403 `reauthentication_required`.
pub(crate) struct FreshUser(pub(crate) CurrentUser);

impl<B: Stores> FromRequestParts<AppState<B>> for FreshUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<B>) -> Result<Self, ApiError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if user.login.has_fresh_proof(user.session.clock.now()) {
            Ok(Self(user))
        } else {
            Err(ApiError::ReauthenticationRequired)
        }
    }
}

impl<B: Stores> FromRequestParts<AppState<B>> for CurrentUser {
    type Rejection = ApiError;

    /// Only after the session proved who it is: so `email_unverified` tells nothing to
    /// anyone who does not hold the password.
    async fn from_request_parts(parts: &mut Parts, state: &AppState<B>) -> Result<Self, ApiError> {
        let user = Self::logged_in(parts, state).await?.whole()?;
        if !user.owner.email_verified
            && state.accounts.mail_settings().verification == EmailVerification::Required
        {
            return Err(ApiError::EmailUnverified);
        }
        Ok(user)
    }
}

impl CurrentUser {
    /// This user, if their session is whole: a half-authenticated one gets 401
    /// `mfa_required` on every route but the second step's and logging out.
    fn whole(self) -> Result<Self, ApiError> {
        if self.login.awaiting_second_factor {
            Err(ApiError::MfaRequired)
        } else {
            Ok(self)
        }
    }

    async fn logged_in<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let session = LoginSession::from_request_parts(parts, state).await?;
        // No verified cookie, or its session is gone: nobody is logged in.
        let Some(loaded) = session.loaded.clone() else {
            return Err(ApiError::AccessDenied);
        };
        let Some(owned) = loaded.fetch().await? else {
            return Err(ApiError::AccessDenied);
        };
        // The login alone, read from the stored text: a request that does not write the
        // session never builds its map.
        let login = owned.data.login().ok_or(ApiError::AccessDenied)?;
        match &owned.owner {
            Some(owner) if owner.owns(&login) => {
                let owner = owner.clone();
                crate::trace::note_user(owner.id);
                // A steady request writes nothing; past half the idle lifetime, one write
                // rolls the expiry of the stored session and of the cookie. A cookie signed
                // with a fallback key is written too, to go out under the current key.
                let now = session.clock.now();
                let login = match login.renewed(session.lifetimes, now) {
                    Some(renewed) => {
                        session.write_login(&renewed, now).await?;
                        renewed
                    }
                    None => {
                        if session.signed_with_fallback {
                            let expiry = login.expires_at(session.lifetimes);
                            session.set_expiry(Expiry::AtDateTime(expiry));
                        }
                        login
                    }
                };
                Ok(Self {
                    owner,
                    login,
                    session,
                })
            }
            // The password changed or the user is gone: the session is over.
            _ => {
                session.log_out().await?;
                Err(ApiError::AccessDenied)
            }
        }
    }
}

/// The part of the session's data that `auth_domain::session` reads.
async fn read(session: &Session) -> Result<Data, ApiError> {
    let mut data = Data::new();
    for key in session::KEYS {
        if let Some(value) = session
            .get_value(key)
            .await
            .map_err(session_layer::failed)?
        {
            data.insert(key.to_owned(), value);
        }
    }
    Ok(data)
}

/// Whether the session's cookie outlives the browser, as its login asked: for the session
/// layer, when it writes the cookie. A session without a login keeps the default.
pub(crate) async fn persistent(session: &Session) -> bool {
    let Ok(data) = read(session).await else {
        return true;
    };
    Login::read(&data).is_none_or(|login| login.persistent)
}
