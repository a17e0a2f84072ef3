//! The session cookie on the wire: signed, with key rotation, and persistent or not.
//!
//! tower-sessions signs with one key. Rotating keys needs more: a cookie signed with an
//! older key (`SECRET_KEY_FALLBACKS`) must still be accepted, and re-issued under the
//! current one. So the signature is ours, in this middleware around the session layer:
//! it verifies the incoming cookie with the current key and then each fallback, and hands
//! the session layer the bare session id (or no cookie at all when nothing verifies); it
//! signs every session cookie going out with the current key only. The format is the
//! `cookie` crate's signed cookie, the one tower-sessions wrote before, so cookies issued
//! before this middleware existed verify unchanged.
//!
//! The login manager inside tells this middleware, through [`CookieDirectives`], whether
//! the cookie must be re-issued (it then writes the session, which makes the session
//! layer send a cookie) and whether it is a browser-session cookie ("remember me" off),
//! which leaves out `Max-Age` and `Expires`.

use std::{
    borrow::Cow,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse as _, Response},
};
use http::{
    header::{CONTENT_TYPE, COOKIE, SET_COOKIE},
    HeaderMap, HeaderValue, StatusCode,
};
use tower_sessions::cookie::{Cookie, CookieJar, Key};

use crate::error::ApiError;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "session";

/// The keys that verify and sign session cookies.
#[derive(Clone)]
pub(crate) struct CookieKeys {
    /// Signs, and verifies first.
    current: Key,
    /// Verify only, in order.
    fallbacks: Arc<[Key]>,
}

impl CookieKeys {
    pub(crate) fn new(current: Key, fallbacks: Vec<Key>) -> Self {
        Self {
            current,
            fallbacks: fallbacks.into(),
        }
    }

    /// The value that `cookie` carries, and whether a fallback key signed it; `None`
    /// when no key verifies it.
    pub(crate) fn verify(&self, cookie: Cookie<'static>) -> Option<(String, bool)> {
        // An empty jar only lends its `SignedJar`: verifying needs no jar contents.
        let jar = CookieJar::new();
        let verified_by = |key: &Key, cookie: Cookie<'static>| {
            jar.signed(key)
                .verify(cookie)
                .map(|verified| verified.value().to_owned())
        };
        if self.fallbacks.is_empty() {
            return verified_by(&self.current, cookie).map(|id| (id, false));
        }
        if let Some(id) = verified_by(&self.current, cookie.clone()) {
            return Some((id, false));
        }
        self.fallbacks
            .iter()
            .find_map(|key| verified_by(key, cookie.clone()))
            .map(|id| (id, true))
    }

    /// `cookie` with its value signed by the current key.
    pub(crate) fn sign(&self, cookie: Cookie<'static>) -> Cookie<'static> {
        let name = cookie.name().to_owned();
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.current).add(cookie.clone());
        jar.get(&name).cloned().unwrap_or(cookie)
    }
}

/// What the login manager asks of the session cookie of this response. Shared between this
/// middleware (outside the session layer) and the handlers (inside it) as a request
/// extension.
#[derive(Debug, Clone, Default)]
pub(crate) struct CookieDirectives(Arc<Flags>);

#[derive(Debug, Default)]
struct Flags {
    signed_with_fallback: AtomicBool,
    browser_session: AtomicBool,
}

impl CookieDirectives {
    /// Whether the request's cookie verified only with a fallback key: the login manager
    /// then writes the session so that a cookie signed with the current key goes out.
    pub(crate) fn signed_with_fallback(&self) -> bool {
        self.0.signed_with_fallback.load(Ordering::Relaxed)
    }

    /// Sets whether the cookie going out ends with the browser (no `Max-Age`, no
    /// `Expires`) rather than with the session's expiry.
    pub(crate) fn set_browser_session(&self, browser_session: bool) {
        self.0
            .browser_session
            .store(browser_session, Ordering::Relaxed);
    }
}

/// The middleware: see the module's documentation.
pub(crate) async fn sign_and_verify(
    State(keys): State<CookieKeys>,
    mut request: Request,
    next: Next,
) -> Response {
    let directives = CookieDirectives::default();
    let fallback = unsign_request_cookies(&keys, request.headers_mut());
    directives
        .0
        .signed_with_fallback
        .store(fallback, Ordering::Relaxed);
    request.extensions_mut().insert(directives.clone());
    let mut response = next.run(request).await;
    if is_failed_session_save(&response) {
        // Our handlers answer every error in JSON; a bare 500 is the session layer's, whose
        // only failure after a handler succeeded is the store refusing the write: the
        // database went away mid-request (tower-sessions logged the cause). The response
        // carries no cookie, so the client keeps no session that was never stored.
        response = ApiError::Unavailable("the session could not be saved".into()).into_response();
    }
    let browser_session = directives.0.browser_session.load(Ordering::Relaxed);
    sign_response_cookies(&keys, response.headers_mut(), browser_session);
    response
}

/// Whether `response` is tower-sessions' answer to a failed save: a 500 without a body.
fn is_failed_session_save(response: &Response) -> bool {
    response.status() == StatusCode::INTERNAL_SERVER_ERROR
        && response.headers().get(CONTENT_TYPE).is_none()
}

/// Replaces the session cookie of every `Cookie` header with the bare id it carries, or
/// removes it when no key verifies it; returns whether a fallback key verified it. A header
/// without a session cookie is not touched at all, which is every request of a client that
/// is not logged in.
fn unsign_request_cookies(keys: &CookieKeys, headers: &mut HeaderMap) -> bool {
    let mut fallback = false;
    let mut rewritten: Vec<HeaderValue> = Vec::new();
    let mut touched = false;
    for header in headers.get_all(COOKIE) {
        let unsigned = header
            .to_str()
            .ok()
            .and_then(|text| unsign_header(keys, text, &mut fallback));
        match unsigned {
            Some(kept) => {
                touched = true;
                if !kept.is_empty() {
                    rewritten.push(HeaderValue::from_str(&kept).unwrap_or_else(|_| header.clone()));
                }
            }
            None => rewritten.push(header.clone()),
        }
    }
    if touched {
        headers.remove(COOKIE);
        for value in rewritten {
            headers.append(COOKIE, value);
        }
    }
    fallback
}

/// The cookies of one `Cookie` header (trimmed), its session cookie replaced by the bare id
/// it carries or left out when no key verifies it; `None` when it holds no session cookie.
/// Sets `fallback` when a fallback key verified it.
fn unsign_header(keys: &CookieKeys, text: &str, fallback: &mut bool) -> Option<String> {
    let mut kept = String::with_capacity(text.len());
    let mut found = false;
    for pair in text
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let session = Cookie::parse_encoded(pair)
            .ok()
            .filter(|cookie| cookie.name() == SESSION_COOKIE);
        let pair = match session {
            None => Cow::Borrowed(pair),
            Some(cookie) => {
                found = true;
                let Some((id, by_fallback)) = keys.verify(cookie.into_owned()) else {
                    continue;
                };
                *fallback |= by_fallback;
                Cow::Owned(format!("{SESSION_COOKIE}={id}"))
            }
        };
        if !kept.is_empty() {
            kept.push_str("; ");
        }
        kept.push_str(&pair);
    }
    found.then_some(kept)
}

/// Signs every session cookie the session layer set, and makes it a browser-session
/// cookie when asked. A removal (an empty value) goes out as it is.
fn sign_response_cookies(keys: &CookieKeys, headers: &mut HeaderMap, browser_session: bool) {
    let mut set_cookies: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
    if set_cookies.is_empty() {
        return;
    }
    // The session cookie first: a client that reads one `Set-Cookie` (many do) gets the
    // one that matters, not the device cookie a login also sets.
    set_cookies.sort_by_key(|header| !header.as_bytes().starts_with(b"session="));
    headers.remove(SET_COOKIE);
    for header in set_cookies {
        let signed = header
            .to_str()
            .ok()
            .and_then(|text| Cookie::parse(text.to_owned()).ok())
            .filter(|cookie| cookie.name() == SESSION_COOKIE && !cookie.value().is_empty())
            .and_then(|mut cookie| {
                if browser_session {
                    cookie.set_max_age(None);
                    cookie.unset_expires();
                }
                HeaderValue::from_str(&keys.sign(cookie).to_string()).ok()
            });
        headers.append(SET_COOKIE, signed.unwrap_or(header));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Key {
        Key::from(&[byte; 64])
    }

    fn signed_with(key: &Key, id: &str) -> String {
        let mut jar = CookieJar::new();
        jar.signed_mut(key)
            .add(Cookie::new(SESSION_COOKIE, id.to_owned()));
        jar.get(SESSION_COOKIE).unwrap().value().to_owned()
    }

    fn request_with(cookie_header: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(cookie_header).unwrap());
        headers
    }

    #[test]
    fn a_cookie_signed_with_the_current_key_is_handed_on_as_the_bare_id() {
        let keys = CookieKeys::new(key(1), vec![key(2)]);
        let header = format!(
            "theme=dark; session={}; lang=en",
            signed_with(&key(1), "abc")
        );
        let mut headers = request_with(&header);
        assert!(!unsign_request_cookies(&keys, &mut headers));
        assert_eq!(headers[COOKIE], "theme=dark; session=abc; lang=en");
    }

    #[test]
    fn a_cookie_signed_with_a_fallback_key_is_accepted_and_flagged() {
        let keys = CookieKeys::new(key(1), vec![key(3), key(2)]);
        let mut headers = request_with(&format!("session={}", signed_with(&key(2), "abc")));
        assert!(unsign_request_cookies(&keys, &mut headers));
        assert_eq!(headers[COOKIE], "session=abc");
    }

    #[test]
    fn a_cookie_no_key_verifies_is_dropped_and_the_others_kept() {
        let keys = CookieKeys::new(key(1), vec![key(2)]);
        for forged in [signed_with(&key(9), "abc"), "abc".to_owned(), String::new()] {
            let mut headers = request_with(&format!("a=1; session={forged}"));
            assert!(!unsign_request_cookies(&keys, &mut headers));
            assert_eq!(headers[COOKIE], "a=1", "{forged:?}");
        }
        let mut only = request_with(&format!("session={}", signed_with(&key(9), "abc")));
        unsign_request_cookies(&keys, &mut only);
        assert!(only.get(COOKIE).is_none());
    }

    #[test]
    fn a_header_without_a_session_cookie_is_left_as_it_came() {
        let keys = CookieKeys::new(key(1), vec![key(2)]);
        let mut headers = request_with("theme=dark;lang=en ;  x=1");
        assert!(!unsign_request_cookies(&keys, &mut headers));
        assert_eq!(headers[COOKIE], "theme=dark;lang=en ;  x=1");
    }

    #[test]
    fn each_cookie_header_is_rewritten_on_its_own() {
        let keys = CookieKeys::new(key(1), Vec::new());
        let mut headers = request_with("a=1");
        let signed = format!("session={}; b=2", signed_with(&key(1), "abc"));
        headers.append(COOKIE, HeaderValue::from_str(&signed).unwrap());
        headers.append(COOKIE, HeaderValue::from_static("session=forged"));
        assert!(!unsign_request_cookies(&keys, &mut headers));
        let values: Vec<_> = headers.get_all(COOKIE).iter().collect();
        assert_eq!(values, ["a=1", "session=abc; b=2"]);
    }

    fn response_with(set_cookie: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.append(SET_COOKIE, HeaderValue::from_str(set_cookie).unwrap());
        headers.append(SET_COOKIE, HeaderValue::from_static("other=1; Path=/"));
        headers
    }

    #[test]
    fn an_outgoing_session_cookie_is_signed_with_the_current_key_only() {
        let keys = CookieKeys::new(key(1), vec![key(2)]);
        let mut headers = response_with("session=abc; HttpOnly; Path=/; Max-Age=60");
        sign_response_cookies(&keys, &mut headers, false);
        let values: Vec<_> = headers.get_all(SET_COOKIE).iter().collect();
        assert_eq!(values.len(), 2);
        let cookie = Cookie::parse(values[0].to_str().unwrap().to_owned()).unwrap();
        assert_eq!(cookie.value(), signed_with(&key(1), "abc"));
        assert_eq!(cookie.max_age(), Some(time::Duration::seconds(60)));
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(values[1], "other=1; Path=/");
    }

    #[test]
    fn the_session_cookie_goes_out_first() {
        let keys = CookieKeys::new(key(1), Vec::new());
        let mut headers = HeaderMap::new();
        headers.append(
            SET_COOKIE,
            HeaderValue::from_static("device=x; Path=/v1/auth/login"),
        );
        headers.append(SET_COOKIE, HeaderValue::from_static("session=abc; Path=/"));
        sign_response_cookies(&keys, &mut headers, false);
        let first = headers.get(SET_COOKIE).unwrap().to_str().unwrap();
        assert!(first.starts_with("session="), "{first}");
        assert_eq!(headers.get_all(SET_COOKIE).iter().count(), 2);
    }

    #[test]
    fn a_browser_session_cookie_has_neither_max_age_nor_expires() {
        let keys = CookieKeys::new(key(1), Vec::new());
        let mut headers =
            response_with("session=abc; Path=/; Max-Age=60; Expires=Wed, 21 Oct 2037 07:28:00 GMT");
        sign_response_cookies(&keys, &mut headers, true);
        let text = headers[SET_COOKIE].to_str().unwrap().to_ascii_lowercase();
        assert!(
            !text.contains("max-age") && !text.contains("expires"),
            "{text}"
        );
    }

    #[test]
    fn a_removal_cookie_goes_out_untouched() {
        let keys = CookieKeys::new(key(1), Vec::new());
        let removal = "session=; Path=/; Max-Age=0; Expires=Tue, 03 Dec 2024 00:00:00 GMT";
        let mut headers = response_with(removal);
        sign_response_cookies(&keys, &mut headers, true);
        assert_eq!(headers[SET_COOKIE], removal);
    }
}
