//! What the handlers share: the auth service and the session store's user-facing side.

use auth_domain::AuthService;
use axum::extract::FromRef;

/// The router's state.
pub(crate) struct AppState<R, S> {
    /// Registers users and checks their passwords.
    pub(crate) service: AuthService<R>,
    /// Lists and ends a user's sessions.
    pub(crate) sessions: S,
}

impl<R, S: Clone> Clone for AppState<R, S>
where
    AuthService<R>: Clone,
{
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            sessions: self.sessions.clone(),
        }
    }
}

impl<R, S> FromRef<AppState<R, S>> for AuthService<R>
where
    AuthService<R>: Clone,
{
    fn from_ref(state: &AppState<R, S>) -> Self {
        state.service.clone()
    }
}
