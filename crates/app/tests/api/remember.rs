//! "Remember me" at login (#8): a persistent cookie by default, a browser-session one on
//! request; the server-side session expires the same either way.

use std::time::Duration;

use auth_testkit::Backend;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    assert_access_denied, assert_error, cookie_attribute, session_cookie, set_cookie, Browser,
    Options, TestApp, PASSWORD,
};

const EMAIL: &str = "ada@example.com";

async fn login_remembering(browser: &Browser, remember: Value) -> Response {
    browser
        .post_json(
            "/v1/auth/login",
            &json!({"email_or_username": EMAIL, "password": PASSWORD, "remember": remember}),
        )
        .await
}

/// Whether the response's session cookie outlives the browser (it has `Max-Age` or
/// `Expires`); panics when there is no session cookie.
fn is_persistent(response: &Response) -> bool {
    let cookie = set_cookie(response).expect("a session cookie");
    cookie_attribute(&cookie, "max-age").is_some() || cookie_attribute(&cookie, "expires").is_some()
}

/// With a 2 s idle lifetime: the cookie of a `remember: false` login, and of its
/// renewal, has no lifetime of its own, yet the session works, is listed, and still ends
/// on the server when left idle.
pub(crate) async fn remember_false_gives_a_cookie_that_ends_with_the_browser(backend: Backend) {
    let options = Options {
        session_lifetime_secs: 2,
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    app.register_user(EMAIL).await;
    let login = login_remembering(&app, json!(false)).await;
    assert_eq!(login.status(), StatusCode::OK);
    assert!(!is_persistent(&login), "{:?}", set_cookie(&login));
    let mut cookie = session_cookie(&login).expect("a session cookie");

    assert_eq!(app.get("/profile").await.status(), StatusCode::OK);
    let sessions = app.sessions().await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["current"], true);

    app.advance(Duration::from_millis(1200));
    let used = app.get_with_cookie("/profile", &cookie).await;
    assert_eq!(used.status(), StatusCode::OK);
    if let Some(renewed) = session_cookie(&used) {
        assert!(!is_persistent(&used), "{:?}", set_cookie(&used));
        cookie = renewed;
    }

    app.advance(Duration::from_millis(3500));
    assert_access_denied(app.get_with_cookie("/profile", &cookie).await).await;
    app.stop().await;
}

pub(crate) async fn remember_true_and_the_default_give_a_persistent_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_user(EMAIL).await;
    let by_default = app.login(EMAIL, PASSWORD).await;
    let remembered = login_remembering(&app.browser(None), json!(true)).await;
    for login in [by_default, remembered] {
        assert_eq!(login.status(), StatusCode::OK);
        let cookie = set_cookie(&login).expect("a session cookie");
        let max_age = cookie_attribute(&cookie, "max-age").and_then(|v| v.parse::<u64>().ok());
        assert!(
            max_age.is_some_and(|secs| (3590..=3600).contains(&secs)),
            "the cookie lives as long as the session: {cookie}"
        );
    }
    app.stop().await;
}

pub(crate) async fn a_non_boolean_remember_is_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_user(EMAIL).await;
    for remember in [json!("yes"), json!("true"), json!(1), json!(0), json!({})] {
        let response = login_remembering(&app, remember.clone()).await;
        assert!(session_cookie(&response).is_none(), "{remember}: no login");
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, None).await;
    }
    assert_eq!(app.get("/profile").await.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}
