//! What a user does to their own account (#8): change the password, delete the account.

use auth_testkit::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    assert_cookie_expired, assert_error, assert_field_error, json_body, session_cookie, Browser,
    TestApp, PASSWORD,
};

const NEW_PASSWORD: &str = "copper-lantern-meadow";
const EMAIL: &str = "ada@example.com";

fn password_change(current: &str, new: &str) -> Value {
    json!({"current_password": current, "new_password": new})
}

async fn change_password(browser: &Browser, body: &Value) -> reqwest::Response {
    browser.post_json("/v1/auth/password", body).await
}

async fn delete_account(browser: &Browser, body: &Value) -> reqwest::Response {
    browser
        .send(Method::DELETE, "/v1/auth/account", Some(body))
        .await
}

async fn assert_profile(browser: &Browser, status: StatusCode) {
    assert_eq!(browser.get("/profile").await.status(), status);
}

/// Whether `password` logs `EMAIL` in, from a browser of its own.
async fn logs_in(app: &TestApp, password: &str) -> bool {
    let status = app.browser(None).login(EMAIL, password).await.status();
    assert!(
        [StatusCode::OK, StatusCode::UNAUTHORIZED].contains(&status),
        "{status}"
    );
    status == StatusCode::OK
}

pub(crate) async fn a_password_change_ends_the_other_sessions_and_keeps_this_one_under_a_new_cookie(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let [this, other] = &app.user_with_browsers(EMAIL).await;
    let before = this.session_cookie().expect("logged in");

    let changed = change_password(this, &password_change(PASSWORD, NEW_PASSWORD)).await;
    assert_eq!(changed.status(), StatusCode::OK);
    let after = session_cookie(&changed).expect("a new session cookie");
    assert_ne!(before, after, "a new session id");
    json_body(changed).await;

    assert_profile(this, StatusCode::OK).await;
    assert_eq!(
        app.get_with_cookie("/profile", &after).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_with_cookie("/profile", &before).await.status(),
        StatusCode::UNAUTHORIZED,
        "the old session id is gone"
    );
    assert_profile(other, StatusCode::UNAUTHORIZED).await;
    let sessions = this.sessions().await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["current"], true);

    assert!(!logs_in(&app, PASSWORD).await, "the old password");
    assert!(logs_in(&app, NEW_PASSWORD).await, "the new password");
    app.stop().await;
}

pub(crate) async fn a_new_password_must_follow_the_policy_and_the_current_one_must_match(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let [this, other] = &app.user_with_browsers(EMAIL).await;
    let cases = [
        (password_change(PASSWORD, "short"), "new_password"),
        (password_change(PASSWORD, "password1"), "new_password"),
        (password_change(PASSWORD, &"x".repeat(129)), "new_password"),
        (password_change(PASSWORD, EMAIL), "new_password"),
        (
            password_change("not-the-password", NEW_PASSWORD),
            "current_password",
        ),
    ];
    for (body, field) in cases {
        assert_field_error(change_password(this, &body).await, field).await;
    }

    assert_profile(this, StatusCode::OK).await;
    assert_profile(other, StatusCode::OK).await;
    assert_eq!(this.sessions().await.len(), 2);
    assert!(logs_in(&app, PASSWORD).await, "the password is unchanged");
    app.stop().await;
}

pub(crate) async fn a_password_change_needs_both_fields_as_strings(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.register_and_login(EMAIL).await;
    for body in [
        json!({}),
        json!({"current_password": PASSWORD}),
        json!({"new_password": NEW_PASSWORD}),
        json!({"current_password": PASSWORD, "new_password": 12_345_678}),
        json!({"current_password": null, "new_password": NEW_PASSWORD}),
        json!({"current_password": [PASSWORD], "new_password": NEW_PASSWORD}),
        json!([PASSWORD, NEW_PASSWORD]),
    ] {
        assert_error(
            change_password(&app, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        )
        .await;
    }
    assert_eq!(
        app.get_with_cookie("/profile", &cookie).await.status(),
        StatusCode::OK,
        "the session is unchanged"
    );
    assert!(logs_in(&app, PASSWORD).await, "the password is unchanged");
    app.stop().await;
}

pub(crate) async fn deleting_the_account_ends_every_session_and_frees_the_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [this, other] = &app.user_with_browsers(EMAIL).await;
    let cookie = this.session_cookie().expect("logged in");

    let deleted = delete_account(this, &json!({"password": PASSWORD})).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_cookie_expired(&deleted);
    assert_profile(this, StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        app.get_with_cookie("/profile", &cookie).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_profile(other, StatusCode::UNAUTHORIZED).await;
    assert!(!logs_in(&app, PASSWORD).await, "the user is gone");

    let again = app.register(EMAIL, NEW_PASSWORD, None).await;
    assert_eq!(again.status(), StatusCode::CREATED, "the email is free");
    assert!(logs_in(&app, NEW_PASSWORD).await);
    app.stop().await;
}

pub(crate) async fn deleting_the_account_needs_the_right_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let [this, other] = &app.user_with_browsers(EMAIL).await;

    assert_field_error(
        delete_account(this, &json!({"password": "not-the-password"})).await,
        "password",
    )
    .await;
    for body in [
        json!({}),
        json!({"password": 12_345_678}),
        json!([PASSWORD]),
    ] {
        assert_error(
            delete_account(this, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        )
        .await;
    }

    assert_profile(this, StatusCode::OK).await;
    assert_profile(other, StatusCode::OK).await;
    assert!(logs_in(&app, PASSWORD).await, "the account is still there");
    app.stop().await;
}
