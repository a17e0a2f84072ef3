//! The breached-password check (#21) through the real router over the in-memory stores:
//! registration, a password change and a reset refuse a listed password with 422
//! `password_breached` naming the field, and accept one that is not listed.

#[allow(dead_code, reason = "this binary uses a part of the shared support")]
mod support;

use auth_domain::{breached::BreachedPasswords, mail::MailKind, Password, PasswordPolicy};
use http::StatusCode;
use serde_json::json;
use support::{token, Options, TestApp, PASSWORD};

/// Passwords every other rule accepts, found in the filter.
const BREACHED: [&str; 2] = ["correct-horse-battery", "sunflower-mariner-77"];

/// A password no filter here holds.
const FRESH: &str = "quiet-lantern-meadow";

fn app() -> TestApp {
    let listed = BREACHED.map(Password::new);
    let policy = PasswordPolicy::default().with_breached(BreachedPasswords::of_passwords(&listed));
    TestApp::with_policy(Options::default(), policy)
}

/// Asserts a 422 `password_breached` naming `field` only.
fn assert_breached(reply: &support::Reply, field: &str) {
    let body = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "password_breached");
    let errors = body["errors"].as_object().expect("errors");
    assert_eq!(errors.keys().collect::<Vec<_>>(), [field], "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("breach")),
        "{body}"
    );
}

#[tokio::test]
async fn registering_with_a_breached_password_is_422_password_breached() {
    let app = app();
    for password in BREACHED {
        let reply = app.register("ada@example.com", password, None).await;
        assert_breached(&reply, "password");
        assert!(!reply.text.contains(password));
    }
    let reply = app.register("ada@example.com", FRESH, None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}

#[tokio::test]
async fn a_breached_password_among_other_refusals_is_told_with_them() {
    let app = app();
    app.register("not an address", BREACHED[0], None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "validation_failed");
    // The common list stays the floor and keeps its answer.
    app.register("ada@example.com", "password", None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "validation_failed");
}

#[tokio::test]
async fn a_password_change_to_a_breached_password_is_422_password_breached() {
    let app = app();
    app.register_user("ada@example.com").await;
    let cookie = app.log_in("ada@example.com").await;
    let change = |new: &str| json!({"current_password": PASSWORD, "new_password": new});
    let reply = app
        .post_json("/v1/auth/password", &change(BREACHED[1]), Some(&cookie))
        .await;
    assert_breached(&reply, "new_password");
    // A wrong current password is said first, whatever the new one.
    let wrong = json!({"current_password": "not-the-password", "new_password": BREACHED[1]});
    app.post_json("/v1/auth/password", &wrong, Some(&cookie))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "validation_failed");
    let reply = app
        .post_json("/v1/auth/password", &change(FRESH), Some(&cookie))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn a_reset_to_a_breached_password_is_422_and_leaves_the_token_usable() {
    let app = app();
    app.register_user("ada@example.com").await;
    app.post_json(
        "/v1/auth/password/forgot",
        &json!({"email": "ada@example.com"}),
        None,
    )
    .await;
    let token = token(&app, "ada@example.com", MailKind::PasswordReset).await;
    let reset = |new: &str| json!({"token": token, "new_password": new});
    let reply = app
        .post_json("/v1/auth/password/reset", &reset(BREACHED[0]), None)
        .await;
    assert_breached(&reply, "new_password");
    let reply = app
        .post_json("/v1/auth/password/reset", &reset(FRESH), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        app.login("ada@example.com", FRESH, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn readiness_reports_the_filter_and_its_count() {
    let reply = app().get("/readyz", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"status": "ok", "breached_passwords": {"loaded": true, "count": 2}})
    );
    let reply = TestApp::new().get("/readyz", None).await;
    assert_eq!(reply.body, json!({"status": "ok"}));
}
