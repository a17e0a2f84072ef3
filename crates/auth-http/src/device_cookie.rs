//! The device cookie: proof that this browser logged in to an account before.
//!
//! OWASP's answer to lockout as a denial of service: after a successful login the browser
//! gets a long-lived, HttpOnly cookie holding the user's device token (a keyed digest of
//! the user id and their password, see `auth_domain::accounts::Accounts::device_token`).
//! A client presenting it is exempt from the per-account limit, so an attacker spraying
//! guesses from many addresses cannot lock the owner out of the browser they always use.
//! It names the user, not the email address or username typed, and dies with the password:
//! after a password change or the account's deletion (and a new account under the same
//! name), it exempts nothing. It is sent only to the login route.

use cookie::{time::Duration, Cookie, SameSite};
use http::{HeaderMap, HeaderValue};

use crate::cookies;

const DEVICE_COOKIE: &str = "device";
/// How long a browser stays known: a year, like the device cookies OWASP describes.
const LIFETIME: Duration = Duration::days(365);
/// The only route that reads it.
const PATH: &str = "/v1/auth/login";
/// At most this many device cookies are looked at (a browser sends one).
const MOST_PRESENTED: usize = 4;
/// A token is 64 hexadecimal digits.
const TOKEN_CHARS: usize = 64;

/// The device tokens the request presents, unchecked: the domain checks them against the
/// account the login names.
pub(crate) fn presented(headers: &HeaderMap) -> Vec<String> {
    cookies::values(headers, DEVICE_COOKIE)
        .filter(|value| value.len() == TOKEN_CHARS && value.iter().all(u8::is_ascii_hexdigit))
        .take(MOST_PRESENTED)
        .filter_map(|value| std::str::from_utf8(value).ok().map(str::to_owned))
        .collect()
}

/// The `Set-Cookie` value of the device cookie holding `token`.
pub(crate) fn issue(token: &str, secure: bool) -> Option<HeaderValue> {
    let cookie = Cookie::build((DEVICE_COOKIE, token))
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .path(PATH)
        .max_age(LIFETIME)
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use http::header::COOKIE;

    use super::*;

    fn presenting(set_cookie: &HeaderValue) -> HeaderMap {
        let cookie = Cookie::parse(set_cookie.to_str().unwrap().to_owned()).unwrap();
        let mut headers = HeaderMap::new();
        let pair = format!("other=1; {}={}", cookie.name(), cookie.value());
        headers.insert(COOKIE, HeaderValue::from_str(&pair).unwrap());
        headers
    }

    #[test]
    fn the_cookie_carries_the_token_to_the_login_route_only() {
        let token = "ab".repeat(32);
        let issued = issue(&token, true).unwrap();
        let text = issued.to_str().unwrap();
        assert!(
            text.contains("HttpOnly") && text.contains("Secure"),
            "{text}"
        );
        assert!(text.contains("Path=/v1/auth/login"), "{text}");
        assert_eq!(presented(&presenting(&issued)), [token]);
    }

    #[test]
    fn what_cannot_be_a_token_is_not_presented() {
        let mut headers = HeaderMap::new();
        let value = format!(
            "device=short; device={}; device={}",
            "zz".repeat(32),
            "0".repeat(65)
        );
        headers.insert(COOKIE, HeaderValue::from_str(&value).unwrap());
        assert!(presented(&headers).is_empty());
    }
}
