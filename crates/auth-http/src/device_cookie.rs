//! The device cookie: proof that this browser logged in to an account before.
//!
//! OWASP's answer to lockout as a denial of service: after a successful login the browser
//! gets a long-lived, signed, HttpOnly cookie naming the account (by a digest, see
//! `auth_domain::throttle::device_token`). A client presenting it is exempt from the
//! per-account limit, so an attacker spraying guesses from many addresses cannot lock the
//! owner out of the browser they always use. It is sent only to the login route, and
//! holds the tokens of both names of the account (email address and username), since
//! either may be typed at the next login.

use auth_domain::throttle::device_token;
use cookie::{time::Duration, Cookie, SameSite};
use http::{HeaderMap, HeaderValue};

use crate::{cookies, signing::Signer};

const DEVICE_COOKIE: &str = "device";
/// How long a browser stays known: a year, like the device cookies OWASP describes.
const LIFETIME: Duration = Duration::days(365);
/// The only route that reads it.
const PATH: &str = "/v1/auth/login";

/// Whether the request holds a valid device cookie of the account named `login`.
pub(crate) fn proves(headers: &HeaderMap, signer: &Signer, login: &str) -> bool {
    let expected = device_token(login);
    cookies::values(headers, DEVICE_COOKIE)
        .filter_map(|value| signer.verify(DEVICE_COOKIE, value))
        .any(|(tokens, _)| tokens.split('.').any(|token| token == expected))
}

/// The `Set-Cookie` value of the device cookie for the account of these names.
pub(crate) fn issue(signer: &Signer, names: &[&str], secure: bool) -> Option<HeaderValue> {
    let tokens: Vec<String> = names.iter().map(|name| device_token(name)).collect();
    let cookie = Cookie::build((DEVICE_COOKIE, signer.sign(DEVICE_COOKIE, &tokens.join("."))))
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
    use crate::{signing::Purpose, SessionKey};

    fn signer_of(byte: u8) -> Signer {
        let secret = SessionKey::from_bytes(&[byte; 64]).expect("64 bytes");
        Signer::new(Purpose::DeviceCookie, &secret, &[])
    }

    fn keys() -> Signer {
        signer_of(4)
    }

    fn presenting(set_cookie: &HeaderValue) -> HeaderMap {
        let cookie = Cookie::parse(set_cookie.to_str().unwrap().to_owned()).unwrap();
        let mut headers = HeaderMap::new();
        let pair = format!("other=1; {}={}", cookie.name(), cookie.value());
        headers.insert(COOKIE, HeaderValue::from_str(&pair).unwrap());
        headers
    }

    #[test]
    fn the_cookie_proves_its_own_account_only_and_in_any_spelling() {
        let issued = issue(&keys(), &["Ada@Example.com", "ada_l"], true).unwrap();
        let text = issued.to_str().unwrap();
        assert!(
            text.contains("HttpOnly") && text.contains("Secure"),
            "{text}"
        );
        assert!(text.contains("Path=/v1/auth/login"), "{text}");
        assert!(
            !text.to_lowercase().contains("ada"),
            "the cookie names no email: {text}"
        );
        let headers = presenting(&issued);
        assert!(proves(&headers, &keys(), "ada@example.com"));
        assert!(proves(&headers, &keys(), "ADA_L"));
        assert!(!proves(&headers, &keys(), "grace@example.com"));
    }

    #[test]
    fn an_unsigned_or_foreign_cookie_proves_nothing() {
        let mut headers = HeaderMap::new();
        let forged = format!("device={}", device_token("ada@example.com"));
        headers.insert(COOKIE, HeaderValue::from_str(&forged).unwrap());
        assert!(!proves(&headers, &keys(), "ada@example.com"));
        let other = signer_of(5);
        let issued = issue(&other, &["ada@example.com"], false).unwrap();
        assert!(!proves(&presenting(&issued), &keys(), "ada@example.com"));
    }
}
