//! What the handlers share: the auth service, the session store's user-facing side, login
//! throttling and the audit trail, over whichever stores the application chose.

use std::{marker::PhantomData, ops::Deref, sync::Arc};

use auth_domain::{
    audit::AuditLog,
    readiness::Readiness,
    throttle::{FailureCounter, Throttle},
    AuthService, OwnedSessions, UserRepository, UserSessions,
};
use axum::extract::FromRef;
use tower_sessions::SessionStore;

use crate::{audit_trail::AuditTrail, signing::Signer};

/// The stores the router runs on, all of one backend, built by the application.
#[derive(Debug, Clone)]
pub struct Backend<R, S, F, A> {
    /// Registers users and checks their passwords, over the user repository.
    pub service: AuthService<R>,
    /// Sessions: loaded with their owner in one round trip (see `auth_domain::session`),
    /// listed and ended by user. Their database answering is what `/readyz` reports.
    pub sessions: S,
    /// Where failed logins are counted.
    pub failures: F,
    /// Where auth events are kept.
    pub audit: A,
}

/// The types of one backend's stores, named once so that handlers take one parameter.
pub(crate) trait Stores: Send + Sync + 'static {
    type Users: UserRepository;
    type Sessions: SessionStore + OwnedSessions + UserSessions + Readiness;
    type Failures: FailureCounter;
    type Audit: AuditLog;
}

/// The [`Stores`] of a [`Backend`]: a marker that owns none of them (hence `fn() -> _`,
/// which keeps it `Send` and `Sync` whatever the stores are).
pub(crate) struct StoresOf<R, S, F, A>(PhantomData<Produces<(R, S, F, A)>>);

type Produces<T> = fn() -> T;

impl<R, S, F, A> Stores for StoresOf<R, S, F, A>
where
    R: UserRepository,
    S: SessionStore + OwnedSessions + UserSessions + Readiness,
    F: FailureCounter,
    A: AuditLog,
{
    type Users = R;
    type Sessions = S;
    type Failures = F;
    type Audit = A;
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
    /// Registers users and checks their passwords.
    pub(crate) service: AuthService<B::Users>,
    /// Lists and ends a user's sessions.
    pub(crate) sessions: B::Sessions,
    /// Counts failures and refuses logins past the limits.
    pub(crate) throttle: Throttle<B::Failures>,
    /// Records what happens to accounts.
    pub(crate) audit: AuditTrail<B::Audit>,
    /// Signs and verifies the device cookie (the session cookie has its layer).
    pub(crate) device_signer: Signer,
    /// Whether cookies are only sent over HTTPS.
    pub(crate) secure_cookie: bool,
}

// By hand: a derive would ask `B: Clone`, which a marker type need not be.
impl<B: Stores> Clone for AppState<B> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<B: Stores> FromRef<AppState<B>> for AuthService<B::Users> {
    fn from_ref(state: &AppState<B>) -> Self {
        state.service.clone()
    }
}
