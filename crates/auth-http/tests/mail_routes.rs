//! The routes of the mail use cases through the real router over the in-memory stores:
//! what they answer, and what a mailed token then allows. The mails are read from the
//! outbox; their delivery over SMTP is the app's API suite's.

#[allow(dead_code, reason = "this binary uses a part of the shared support")]
mod support;

use auth_domain::{account_mail::EmailVerification, mail::MailKind, Stores as _};
use http::StatusCode;
use serde_json::json;
use support::{token, Options, TestApp, PASSWORD};

const NEW_PASSWORD: &str = "quiet-lantern-meadow";

#[tokio::test]
async fn forgot_answers_a_known_and_an_unknown_address_byte_for_byte_alike() {
    let app = TestApp::new();
    app.register_user("ada@example.com").await;
    let known = app
        .post_json(
            "/v1/auth/password/forgot",
            &json!({"email": "ada@example.com"}),
            None,
        )
        .await;
    let unknown = app
        .post_json(
            "/v1/auth/password/forgot",
            &json!({"email": "eve@example.com"}),
            None,
        )
        .await;
    assert_eq!(known.status, StatusCode::ACCEPTED);
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.text, unknown.text);
    assert_eq!(
        known.headers.get("content-length"),
        unknown.headers.get("content-length")
    );
    token(&app, "ada@example.com", MailKind::PasswordReset).await;
    app.post_json(
        "/v1/auth/password/forgot",
        &json!({"email": "not an address"}),
        None,
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "validation_failed");
}

#[tokio::test]
async fn a_reset_ends_every_session_logs_nobody_in_and_works_once() {
    let app = TestApp::new();
    app.register_user("ada@example.com").await;
    let session = app.log_in("ada@example.com").await;
    app.post_json(
        "/v1/auth/password/forgot",
        &json!({"email": "ada@example.com"}),
        None,
    )
    .await;
    let token = token(&app, "ada@example.com", MailKind::PasswordReset).await;
    let body = json!({"token": token, "new_password": NEW_PASSWORD});
    let reset = app.post_json("/v1/auth/password/reset", &body, None).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text);
    assert!(reset.set_session_cookie().is_none(), "nobody is logged in");
    assert_eq!(
        app.get("/profile", Some(&session)).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.post_json("/v1/auth/password/reset", &body, None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    assert_eq!(
        app.login("ada@example.com", PASSWORD, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("ada@example.com", NEW_PASSWORD, None)
            .await
            .status,
        StatusCode::OK
    );
    app.post_json(
        "/v1/auth/password/reset",
        &json!({"token": "not-a-token", "new_password": NEW_PASSWORD}),
        None,
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
}

#[tokio::test]
async fn required_verification_lets_an_unverified_account_only_verify_resend_or_log_out() {
    let app = TestApp::with(Options {
        verification: EmailVerification::Required,
        ..Options::default()
    });
    // A guesser learns nothing: a wrong password is the usual 401.
    app.register_user("ada@example.com").await;
    assert_eq!(
        app.login("ada@example.com", "wrong-password-here", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let login = app.login("ada@example.com", PASSWORD, None).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.body["email_verified"], false);
    let session = login.session_cookie().expect("logged in");
    app.get("/profile", Some(&session))
        .await
        .assert_error(StatusCode::FORBIDDEN, "email_unverified");
    app.get("/v1/auth/sessions", Some(&session))
        .await
        .assert_error(StatusCode::FORBIDDEN, "email_unverified");
    let first = token(&app, "ada@example.com", MailKind::EmailVerification).await;
    let resent = app
        .request(
            http::Method::POST,
            "/v1/auth/email/verify/resend",
            Some(&session),
        )
        .await;
    assert_eq!(resent.status, StatusCode::ACCEPTED, "{}", resent.text);
    app.request(
        http::Method::POST,
        "/v1/auth/email/verify/resend",
        Some(&session),
    )
    .await
    .assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    let second = token(&app, "ada@example.com", MailKind::EmailVerification).await;
    assert_ne!(first, second);
    app.post_json("/v1/auth/email/verify", &json!({"token": first}), None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    let verified = app
        .post_json("/v1/auth/email/verify", &json!({"token": second}), None)
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.text);
    let profile = app.get("/profile", Some(&session)).await;
    assert_eq!(profile.status, StatusCode::OK);
    assert_eq!(profile.body["email_verified"], true);
    app.request(
        http::Method::POST,
        "/v1/auth/email/verify/resend",
        Some(&session),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "already_verified");
}

#[tokio::test]
async fn with_verification_off_nothing_is_mailed_or_resent() {
    let app = TestApp::with(Options {
        verification: EmailVerification::Off,
        ..Options::default()
    });
    app.register_user("ada@example.com").await;
    let session = app.log_in("ada@example.com").await;
    assert!(app.stores.outbox().is_empty());
    app.request(
        http::Method::POST,
        "/v1/auth/email/verify/resend",
        Some(&session),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "verification_off");
}

#[tokio::test]
async fn an_email_change_waits_for_the_new_address_link() {
    let app = TestApp::new();
    app.register_user("ada@example.com").await;
    let session = app.log_in("ada@example.com").await;
    app.post_json(
        "/v1/auth/email",
        &json!({"new_email": "ada@new.example", "password": "not-the-password"}),
        Some(&session),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "validation_failed");
    let started = app
        .post_json(
            "/v1/auth/email",
            &json!({"new_email": "ada@new.example", "password": PASSWORD}),
            Some(&session),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text);
    assert_eq!(
        app.get("/profile", Some(&session)).await.body["email"],
        "ada@example.com"
    );
    token_kind_present(&app, "ada@example.com", MailKind::EmailChangeNotice).await;
    let token = token(&app, "ada@new.example", MailKind::EmailChange).await;
    let confirmed = app
        .post_json("/v1/auth/email/verify", &json!({"token": token}), None)
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    let profile = app.get("/profile", Some(&session)).await;
    assert_eq!(profile.body["email"], "ada@new.example");
    assert_eq!(profile.body["email_verified"], true);
    // A taken address is answered alike.
    app.register_user("bob@example.com").await;
    let taken = app
        .post_json(
            "/v1/auth/email",
            &json!({"new_email": "bob@example.com", "password": PASSWORD}),
            Some(&session),
        )
        .await;
    assert_eq!(taken.status, started.status);
    assert_eq!(taken.text, started.text);
    token_free(&app, "bob@example.com").await;
}

/// Bob got the "someone tried your address" mail and no link.
async fn token_free(app: &TestApp, to: &str) {
    token_kind_present(app, to, MailKind::EmailInUse).await;
    assert!(!app
        .stores
        .outbox()
        .entries()
        .iter()
        .any(|e| e.mail.to.as_str() == to && e.mail.kind == MailKind::EmailChange));
}

async fn token_kind_present(app: &TestApp, to: &str, kind: MailKind) {
    for _ in 0..200 {
        if app
            .stores
            .outbox()
            .entries()
            .iter()
            .any(|e| e.mail.to.as_str() == to && e.mail.kind == kind)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no {kind} mail to {to}");
}
