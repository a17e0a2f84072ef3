//! The session layer: the one place that reads and writes the session cookie.
//!
//! It takes the role of tower-sessions' own `SessionManagerLayer`, with our signing in it
//! (key rotation needs more than its one key): it finds the session cookie in the `Cookie`
//! headers once, on bytes ([`crate::cookies`]), verifies its signature with the current
//! key and then each fallback ([`Signer`]), and hands the handlers a tower-sessions
//! [`Session`] on that id, or on none. After the handler it saves the session if the login
//! manager changed it, and emits exactly one `Set-Cookie` for it, signed with the current
//! key: persistent or a browser-session cookie, as the login asked.
//!
//! A header it cannot read, or a session cookie that no key verifies, grants nothing: the
//! request goes on without a session, and nothing else about it changes. When the client
//! sends several session cookies (one per path or domain, say), the first that verifies
//! is the session.
//!
//! The session of a verified cookie is loaded once, when a handler first asks for it,
//! through the store's [`OwnedSessions::load_owned`] ([`LoadedSession`]): its owner comes
//! back typed in the same round trip, and the login manager reads the login alone from
//! the stored text. tower-sessions' [`Session`] reads the same load, parsed into its map,
//! only when the request writes the session (a login, a renewal, a logout).

use std::{
    convert::Infallible,
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use async_trait::async_trait;
use auth_domain::{
    clock::Clock,
    session::{Lifetimes, OwnedSession},
    OwnedSessions, RepositoryError,
};
use axum::{
    extract::Request,
    response::{IntoResponse as _, Response},
};
use cookie::{Cookie, SameSite};
use futures::future::BoxFuture;
use http::{header::SET_COOKIE, HeaderValue};
use tokio::sync::OnceCell;
use tower::{Layer, Service};
use tower_sessions::{
    session::{self, Id, Record},
    session_store, Expiry, Session, SessionStore,
};

use crate::{
    cookies,
    error::ApiError,
    login,
    signing::{Signer, Verified},
};

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "session";

/// What the session layer hands the login manager, as a request extension.
#[derive(Debug, Clone)]
pub(crate) struct RequestSession {
    /// The session of the cookie, or a new, empty one.
    pub(crate) session: Session,
    /// The cookie's session as loaded for this request, with its owner; `None` without a
    /// verified cookie.
    pub(crate) loaded: Option<Arc<dyn LoadedSession>>,
    /// Whether only a fallback key verified the cookie: the login manager then writes the
    /// session, so that a cookie signed with the current key goes out.
    pub(crate) signed_with_fallback: bool,
    /// The configured lifetimes.
    pub(crate) lifetimes: Lifetimes,
    /// What expiries and renewals are decided by.
    pub(crate) clock: Clock,
}

/// The layer: see the module's documentation.
pub(crate) struct SessionLayer<S> {
    shared: Arc<Shared<S>>,
}

// By hand: a derive would ask `S: Clone`.
impl<S> Clone for SessionLayer<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<S> {
    store: Arc<S>,
    signer: Signer,
    secure: bool,
    lifetimes: Lifetimes,
    /// What a cookie's `Max-Age` counts from.
    clock: Clock,
}

impl<S: SessionStore + OwnedSessions> SessionLayer<S> {
    /// Sessions in `store`, their cookie signed by `signer`, its `Max-Age` counted on
    /// `clock`.
    pub(crate) fn new(
        store: S,
        signer: Signer,
        secure: bool,
        lifetimes: Lifetimes,
        clock: Clock,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                store: Arc::new(store),
                signer,
                secure,
                lifetimes,
                clock,
            }),
        }
    }
}

impl<S, I> Layer<I> for SessionLayer<S> {
    type Service = SessionService<S, I>;

    fn layer(&self, inner: I) -> Self::Service {
        SessionService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service of [`SessionLayer`].
pub(crate) struct SessionService<S, I> {
    inner: I,
    shared: Arc<Shared<S>>,
}

impl<S, I: Clone> Clone for SessionService<S, I> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, I> Service<Request> for SessionService<S, I>
where
    S: SessionStore + OwnedSessions,
    I: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    I::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        let presented = shared.presented(&request);
        let expiry = Some(Expiry::OnInactivity(shared.lifetimes.idle));
        let (session, loaded) = match presented {
            Some((id, _)) => {
                let store = Arc::new(RequestStore {
                    store: Arc::clone(&shared.store),
                    id,
                    loaded: OnceCell::new(),
                });
                let session = Session::new(Some(id), Arc::clone(&store), expiry);
                (session, Some(store as Arc<dyn LoadedSession>))
            }
            // Nothing to load: the shared store takes what a login creates.
            None => (Session::new(None, Arc::clone(&shared.store), expiry), None),
        };
        request.extensions_mut().insert(RequestSession {
            session: session.clone(),
            loaded: loaded.clone(),
            signed_with_fallback: matches!(presented, Some((_, Verified::Fallback))),
            lifetimes: shared.lifetimes,
            clock: shared.clock.clone(),
        });
        // The service that was polled ready serves this request; its clone waits for the
        // next one (see `tower::Service`'s notes on cloning).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            let gone = loaded.is_some_and(|loaded| loaded.is_gone());
            Ok(shared
                .finish(&session, presented.is_some(), gone, response)
                .await)
        })
    }
}

impl<S: SessionStore + OwnedSessions> Shared<S> {
    /// The session id of the request's first session cookie that a key verifies.
    fn presented(&self, request: &Request) -> Option<(Id, Verified)> {
        cookies::values(request.headers(), SESSION_COOKIE).find_map(|value| {
            let (id, verified) = self.signer.verify(SESSION_COOKIE, value)?;
            Some((id.parse().ok()?, verified))
        })
    }

    /// Saves what the handler changed and sets the cookie to match.
    async fn finish(
        &self,
        session: &Session,
        presented: bool,
        gone: bool,
        mut response: Response,
    ) -> Response {
        if session.is_modified() && !response.status().is_server_error() {
            if session.is_empty().await {
                // Logged out: the stored session is gone, the cookie goes too.
                if presented {
                    self.set_cookie(&mut response, &self.removal());
                }
                return response;
            }
            if let Err(error) = session.save().await {
                // Nothing is stored, so no cookie goes out.
                return failed(error).into_response();
            }
            let Some(id) = session.id() else {
                return ApiError::internal("a saved session has no id").into_response();
            };
            let persistent = login::persistent(session).await;
            let cookie = self.cookie(id, session.expiry(), persistent);
            self.set_cookie(&mut response, &cookie);
        } else if presented && (gone || session.id().is_none()) {
            // The cookie verified but its session is gone (expired, logged out elsewhere,
            // revoked): the browser may forget it.
            self.set_cookie(&mut response, &self.removal());
        }
        response
    }

    /// The cookie of session `id`: without `Max-Age` when it ends with the browser.
    fn cookie(&self, id: Id, expiry: Option<Expiry>, persistent: bool) -> Cookie<'static> {
        let mut cookie = self.base(self.signer.sign(SESSION_COOKIE, &id.to_string()));
        if persistent {
            match expiry {
                Some(Expiry::OnInactivity(lifetime)) => cookie.set_max_age(lifetime),
                Some(Expiry::AtDateTime(at)) => {
                    // To the nearest second: an expiry set a lifetime from now, a few
                    // microseconds ago, still says the whole lifetime.
                    let left = (at - self.clock.now()).max(time::Duration::ZERO);
                    let seconds = (left.as_seconds_f64().round()) as i64;
                    cookie.set_max_age(time::Duration::seconds(seconds));
                }
                Some(Expiry::OnSessionEnd) | None => {}
            }
        }
        cookie
    }

    /// The cookie that makes a browser forget the session cookie.
    fn removal(&self) -> Cookie<'static> {
        let mut cookie = self.base(String::new());
        cookie.make_removal();
        cookie
    }

    fn base(&self, value: String) -> Cookie<'static> {
        Cookie::build((SESSION_COOKIE, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.secure)
            .build()
    }

    /// Adds `cookie` as the response's first `Set-Cookie`: a client that reads only one
    /// (many do) gets the one that matters, not the device cookie a login also sets.
    fn set_cookie(&self, response: &mut Response, cookie: &Cookie<'static>) {
        let Ok(value) = HeaderValue::try_from(cookie.to_string()) else {
            return;
        };
        let headers = response.headers_mut();
        let others: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
        headers.insert(SET_COOKIE, value);
        for other in others {
            headers.append(SET_COOKIE, other);
        }
    }
}

/// A request's session as its store loaded it, with its owner: what the login manager
/// reads.
#[async_trait]
pub(crate) trait LoadedSession: Send + Sync + fmt::Debug {
    /// The session and its owner, loaded at the first call (one round trip per request,
    /// shared with tower-sessions' `Session`); `None` when it is gone.
    async fn fetch(&self) -> Result<Option<&OwnedSession>, ApiError>;

    /// Whether the session was looked for and is gone (expired, logged out, revoked).
    fn is_gone(&self) -> bool;
}

/// The store one request's session is loaded from: the shared store, read through
/// [`OwnedSessions::load_owned`] once, for the login manager ([`LoadedSession`]) and for
/// tower-sessions alike. Writes go to the shared store unchanged.
struct RequestStore<S> {
    store: Arc<S>,
    /// The id of the cookie's session.
    id: Id,
    loaded: OnceCell<Option<OwnedSession>>,
}

// By hand: the loaded session holds personal data, and the shared store says enough.
impl<S: fmt::Debug> fmt::Debug for RequestStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestStore")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<S: OwnedSessions> RequestStore<S> {
    async fn loaded(&self) -> Result<Option<&OwnedSession>, RepositoryError> {
        self.loaded
            .get_or_try_init(|| async { self.store.load_owned(&self.id.to_string()).await })
            .await
            .map(Option::as_ref)
    }
}

#[async_trait]
impl<S: OwnedSessions + fmt::Debug> LoadedSession for RequestStore<S> {
    async fn fetch(&self) -> Result<Option<&OwnedSession>, ApiError> {
        self.loaded()
            .await
            .map_err(|error| failed(session::Error::Store(load_failed(&error))))
    }

    fn is_gone(&self) -> bool {
        matches!(self.loaded.get(), Some(None))
    }
}

#[async_trait]
impl<S: SessionStore + OwnedSessions> SessionStore for RequestStore<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.store.create(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.store.save(record).await
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        if *session_id != self.id {
            // Not the cookie's session: nothing of this request's load applies.
            return self.store.load(session_id).await;
        }
        let Some(owned) = self.loaded().await.map_err(|error| load_failed(&error))? else {
            return Ok(None);
        };
        let data = owned
            .data
            .parse()
            .map_err(|error| session_store::Error::Decode(error.to_string()))?;
        Ok(Some(Record {
            id: *session_id,
            data,
            expiry_date: owned.expires_at,
        }))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        self.store.delete(session_id).await
    }
}

/// A failed load as tower-sessions carries it: a store out of reach is a backend error
/// ([`failed`] makes it a 503), anything else a session that cannot be read (a 500).
fn load_failed(error: &RepositoryError) -> session_store::Error {
    if error.is_unavailable() {
        session_store::Error::Backend(error.to_string())
    } else {
        session_store::Error::Decode(error.to_string())
    }
}

/// The answer to a session the store would not take: a store that failed (the database
/// went away mid-request) is a 503 to retry; data it could not encode is a bug.
pub(crate) fn failed(error: session::Error) -> ApiError {
    match error {
        session::Error::Store(session_store::Error::Backend(_)) => {
            ApiError::Unavailable(error.into())
        }
        session::Error::Store(_) | session::Error::SerdeJson(_) => ApiError::Internal(error.into()),
    }
}
