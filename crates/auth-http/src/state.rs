//! What the handlers share: the account use cases over whichever backend the application
//! opened.

use std::{ops::Deref, sync::Arc};

use auth_domain::{accounts::Accounts, OwnedSessions, UserSessions};
use tower_sessions::SessionStore;

/// A backend's [`auth_domain::Stores`] whose sessions are also a tower-sessions store:
/// what the router runs on. Every bundle of stores whose sessions are one has it.
pub trait Stores: auth_domain::Stores<Sessions = Self::SessionStore> {
    /// The sessions, as the session layer loads and saves them.
    type SessionStore: SessionStore
        + OwnedSessions
        + UserSessions
        + auth_domain::readiness::Readiness
        + Clone;
}

impl<B> Stores for B
where
    B: auth_domain::Stores,
    B::Sessions: SessionStore,
{
    type SessionStore = B::Sessions;
}

/// The router's state. axum clones it for every request to every route, whether the
/// handler takes it or not: so it is one `Arc`, and a clone is one increment.
pub(crate) struct AppState<B: Stores>(Arc<Shared<B>>);

impl<B: Stores> AppState<B> {
    pub(crate) fn new(shared: Shared<B>) -> Self {
        Self(Arc::new(shared))
    }
}

impl<B: Stores> Deref for AppState<B> {
    type Target = Shared<B>;

    fn deref(&self) -> &Shared<B> {
        &self.0
    }
}

/// What [`AppState`] shares.
pub(crate) struct Shared<B: Stores> {
    /// The account use cases, and through them the stores and the clock.
    pub(crate) accounts: Accounts<B>,
    /// Whether cookies are only sent over HTTPS.
    pub(crate) secure_cookie: bool,
}

// By hand: a derive would ask `B: Clone` of the state's clone, which is only an `Arc`'s.
impl<B: Stores> Clone for AppState<B> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}
