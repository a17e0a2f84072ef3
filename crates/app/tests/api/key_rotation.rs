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

/// The `device=...` pair a login answered with.
fn device_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("device="))
        .and_then(|value| value.split(';').next())
        .expect("a device cookie")
        .to_owned()
}

/// A login of `ada@example.com` from the owner's address, presenting `device`.
async fn login_presenting(app: &TestApp, device: &str) -> reqwest::Response {
    let body = serde_json::json!({"email_or_username": "ada@example.com", "password": PASSWORD});
    app.send_with_headers(
        reqwest::Method::POST,
        "/v1/auth/login",
        &[("cookie", device), ("x-forwarded-for", "203.0.113.10")],
        Some(&body),
    )
    .await
}

/// A device cookie made under the old key still spares its browser the per-account limit
/// while the old key is a fallback, and the login re-issues it under the new key, which
/// alone keeps working once the old key is gone (#19).
pub(crate) async fn a_device_cookie_carries_over_a_rotation_and_is_reissued(backend: Backend) {
    let throttle = [
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("LOGIN_FAILURES_PER_ACCOUNT", "3"),
    ];
    let old = TestApp::spawn_with(backend, Options::with(&throttle)).await;
    old.register_user("ada@example.com").await;
    let first = login_presenting(&old, "").await;
    assert_eq!(first.status(), StatusCode::OK);
    let made_under_old = device_cookie(&first);

    let rotated = old
        .spawn_beside(Options {
            secret_key: NEW_SECRET_KEY,
            secret_key_fallbacks: vec![SECRET_KEY],
            ..Options::with(&throttle)
        })
        .await;
    for i in 1..=3 {
        let guess = serde_json::json!({"email_or_username": "ada@example.com", "password": "wrong-wrong-wrong"});
        let address = format!("198.51.100.{i}");
        let failed = rotated
            .send_with_headers(
                reqwest::Method::POST,
                "/v1/auth/login",
                &[("x-forwarded-for", address.as_str())],
                Some(&guess),
            )
            .await;
        assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login_presenting(&rotated, "").await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the account is locked for browsers without its cookie"
    );
    let spared = login_presenting(&rotated, &made_under_old).await;
    assert_eq!(spared.status(), StatusCode::OK, "the fallback key verifies");
    let made_under_new = device_cookie(&spared);
    assert_ne!(made_under_new, made_under_old);

    let new_only = old
        .spawn_beside(Options {
            secret_key: NEW_SECRET_KEY,
            ..Options::with(&throttle)
        })
        .await;
    assert_eq!(
        login_presenting(&new_only, &made_under_old).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the old key is gone"
    );
    let login = login_presenting(&new_only, &made_under_new).await;
    assert_eq!(
        login.status(),
        StatusCode::OK,
        "re-issued under the new key"
    );
    new_only.stop().await;
    rotated.stop().await;
    old.stop().await;
}
