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

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use auth_domain::session::Lifetimes;
use axum::{
    extract::Request,
    response::{IntoResponse as _, Response},
};
use cookie::{Cookie, SameSite};
use futures::future::BoxFuture;
use http::{header::SET_COOKIE, HeaderValue};
use time::OffsetDateTime;
use tower::{Layer, Service};
use tower_sessions::{
    session::{self, Id},
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
    /// Whether only a fallback key verified the cookie: the login manager then writes the
    /// session, so that a cookie signed with the current key goes out.
    pub(crate) signed_with_fallback: bool,
    /// The configured lifetimes.
    pub(crate) lifetimes: Lifetimes,
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
}

impl<S: SessionStore> SessionLayer<S> {
    /// Sessions in `store`, their cookie signed by `signer`.
    pub(crate) fn new(store: S, signer: Signer, secure: bool, lifetimes: Lifetimes) -> Self {
        Self {
            shared: Arc::new(Shared {
                store: Arc::new(store),
                signer,
                secure,
                lifetimes,
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
    S: SessionStore,
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
        let session = Session::new(
            presented.map(|(id, _)| id),
            Arc::clone(&shared.store),
            Some(Expiry::OnInactivity(shared.lifetimes.idle)),
        );
        request.extensions_mut().insert(RequestSession {
            session: session.clone(),
            signed_with_fallback: matches!(presented, Some((_, Verified::Fallback))),
            lifetimes: shared.lifetimes,
        });
        // The service that was polled ready serves this request; its clone waits for the
        // next one (see `tower::Service`'s notes on cloning).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(shared.finish(&session, presented.is_some(), response).await)
        })
    }
}

impl<S: SessionStore> Shared<S> {
    /// The session id of the request's first session cookie that a key verifies.
    fn presented(&self, request: &Request) -> Option<(Id, Verified)> {
        cookies::values(request.headers(), SESSION_COOKIE).find_map(|value| {
            let (id, verified) = self.signer.verify(SESSION_COOKIE, value)?;
            Some((id.parse().ok()?, verified))
        })
    }

    /// Saves what the handler changed and sets the cookie to match.
    async fn finish(&self, session: &Session, presented: bool, mut response: Response) -> Response {
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
        } else if presented && session.id().is_none() {
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
                    cookie.set_max_age((at - OffsetDateTime::now_utc()).max(time::Duration::ZERO));
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
