//! `SESSION_ABSOLUTE_LIFETIME` (#8): however often it is used, a session ends at its
//! login time plus the absolute lifetime, in the store and in the cookie.

use std::time::Duration;

use auth_testkit::Backend;
use reqwest::StatusCode;

use crate::helpers::{
    cookie_attribute, json_body, session_cookie, set_cookie, timestamp, Options, TestApp, PASSWORD,
};

const IDLE_SECS: u64 = 4;
const ABSOLUTE_SECS: u64 = 8;
/// Clock and rounding slack for what the client can see.
const SLACK: Duration = Duration::from_secs(1);

/// Asserts that a Set-Cookie issued no earlier than `sent` after the login was sent does
/// not keep the cookie past the absolute lifetime. Max-Age=0 removes the cookie: fine.
fn assert_cookie_within_absolute_lifetime(set_cookie: &str, sent: Duration) {
    if let Some(max_age) = cookie_attribute(set_cookie, "max-age") {
        let max_age = Duration::from_secs(max_age.parse().expect("a numeric Max-Age"));
        assert!(
            max_age.is_zero() || sent + max_age <= Duration::from_secs(ABSOLUTE_SECS) + SLACK,
            "a cookie issued {sent:?} after login lives {max_age:?} more: {set_cookie}"
        );
    }
}

/// With a 4 s idle and an 8 s absolute lifetime, a session used every second works at
/// 6 s and is refused by the server at 9 s, whatever the client keeps.
pub(crate) async fn a_session_used_every_second_dies_at_its_absolute_lifetime(backend: Backend) {
    let options = Options {
        session_lifetime_secs: IDLE_SECS,
        absolute_lifetime_secs: Some(ABSOLUTE_SECS),
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    app.register_user("ada@example.com").await;
    let login = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    assert_cookie_within_absolute_lifetime(&set_cookie(&login).expect("a cookie"), Duration::ZERO);
    let mut cookie = session_cookie(&login).expect("a cookie");

    for second in 1..=9 {
        app.advance(Duration::from_secs(1));
        // The service's clock has moved this much, and a little more, since the login.
        let sent = Duration::from_secs(second);
        let path = if second == 5 {
            "/v1/auth/sessions"
        } else {
            "/profile"
        };
        let response = app.get_with_cookie(path, &cookie).await;
        let status = response.status();
        if let Some(renewed) = set_cookie(&response) {
            assert_cookie_within_absolute_lifetime(&renewed, sent);
            cookie = session_cookie(&response).expect("a cookie");
        }
        match second {
            1..=6 => assert_eq!(status, StatusCode::OK, "{second} s after login"),
            9 => assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "9 s after login, past the absolute lifetime"
            ),
            _ => {}
        }
        if second == 5 {
            let body = json_body(response).await;
            let session = &body["sessions"][0];
            let lifetime = timestamp(session, "expires_at") - timestamp(session, "created_at");
            assert!(
                lifetime <= Duration::from_secs(ABSOLUTE_SECS) + SLACK,
                "the stored expiry is past the absolute lifetime: {session}"
            );
        }
    }
    app.stop().await;
}
