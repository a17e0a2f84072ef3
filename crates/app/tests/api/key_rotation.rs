//! `SECRET_KEY_FALLBACKS` (#8): rotating the signing key without logging everyone out,
//! over restarts simulated by instances started on one database.

use auth_testkit::Backend;
use reqwest::StatusCode;

use crate::helpers::{
    cookie_attribute, json_body, session_cookie, set_cookie, Options, TestApp, PASSWORD, SECRET_KEY,
};

/// Another 64-byte key.
const NEW_SECRET_KEY: &str = "rotated-key-rotated-key-rotated-key-rotated-key-rotated-key-0123";

async fn assert_profile(app: &TestApp, cookie: &str, status: StatusCode, why: &str) {
    assert_eq!(
        app.get_with_cookie("/profile", cookie).await.status(),
        status,
        "{why}"
    );
}

pub(crate) async fn a_restart_with_the_old_key_as_a_fallback_keeps_sessions_and_reissues_cookies(
    backend: Backend,
) {
    let old = TestApp::spawn(backend).await;
    let ada = old.register_and_login("ada@example.com").await;
    // Grace does not come back while the old key is a fallback.
    let grace = old
        .browser(None)
        .register_and_login("grace@example.com")
        .await;

    let rotated = old
        .spawn_beside(Options {
            secret_key: NEW_SECRET_KEY,
            secret_key_fallbacks: vec![SECRET_KEY],
            ..Options::default()
        })
        .await;
    let profile = rotated.get_with_cookie("/profile", &ada).await;
    assert_eq!(profile.status(), StatusCode::OK, "the old key verifies");
    let reissued = session_cookie(&profile).expect("the cookie is re-issued");
    assert_ne!(reissued, ada);
    let header = set_cookie(&profile).expect("a cookie");
    assert!(
        cookie_attribute(&header, "max-age").is_some(),
        "a persistent cookie stays persistent: {header}"
    );
    assert_eq!(json_body(profile).await["email"], "ada@example.com");
    let fresh_login = rotated
        .browser(None)
        .login("grace@example.com", PASSWORD)
        .await;
    let fresh = session_cookie(&fresh_login).expect("a login cookie");

    let new_only = old
        .spawn_beside(Options {
            secret_key: NEW_SECRET_KEY,
            ..Options::default()
        })
        .await;
    for cookie in [&reissued, &fresh] {
        assert_profile(&new_only, cookie, StatusCode::OK, "signed with the new key").await;
        assert_profile(&old, cookie, StatusCode::UNAUTHORIZED, "never the old key").await;
    }
    let sessions = new_only
        .get_with_cookie("/v1/auth/sessions", &reissued)
        .await;
    assert_eq!(
        json_body(sessions).await["sessions"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "the re-issued cookie keeps Ada's one session"
    );
    for cookie in [&ada, &grace] {
        assert_profile(
            &new_only,
            cookie,
            StatusCode::UNAUTHORIZED,
            "the old key is gone",
        )
        .await;
    }

    new_only.stop().await;
    rotated.stop().await;
    old.stop().await;
}

/// Every byte of `SECRET_KEY` signs: a key that differs in its last byte only, with no
/// fallback, ends every session, and no way of presenting the id brings it back.
pub(crate) async fn a_restart_with_any_byte_of_the_key_changed_ends_every_session(
    backend: Backend,
) {
    let old = TestApp::spawn(backend).await;
    let ada = old.register_and_login("ada@example.com").await;
    let mut changed = SECRET_KEY.to_owned();
    let last = changed.pop().expect("a key");
    changed.push(if last == 'x' { 'y' } else { 'x' });
    let changed: &'static str = Box::leak(changed.into_boxed_str());
    let restarted = old
        .spawn_beside(Options {
            secret_key: changed,
            ..Options::default()
        })
        .await;
    let id = ada
        .strip_prefix("session=")
        .and_then(|value| value.rsplit_once('.'))
        .map(|(id, _)| id)
        .expect("session=<id>.<tag>");
    for cookie in [
        ada.clone(),
        format!("{ada}; x=\u{e9}"),
        format!("session={id}"),
        format!("session={id}; x=\u{e9}"),
    ] {
        let response = restarted
            .get_with_cookie_bytes("/profile", &[cookie.as_bytes()])
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{cookie}");
    }
    assert_profile(
        &old,
        &ada,
        StatusCode::OK,
        "the old instance still verifies it",
    )
    .await;
    restarted.stop().await;
    old.stop().await;
}
