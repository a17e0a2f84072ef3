//! The second factor through the real router over the in-memory stores: TOTP, recovery
//! codes, the half-authenticated session and the step-up, on the service's clock. The
//! same flows run against every database in the app's API suite.

#[allow(dead_code, reason = "this binary uses a part of the shared support")]
mod support;

use std::time::Duration;

use auth_domain::{factors::FactorStore as _, mail::MailKind, mfa::totp::TotpSecret, Stores as _};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Cookie, Options, TestApp, PASSWORD};

const STEP: Duration = Duration::from_secs(30);

/// Registers and logs in `email`, turns TOTP on, and returns the secret, the recovery
/// codes and the session.
async fn with_totp(app: &TestApp, email: &str) -> (TotpSecret, Vec<String>, Cookie) {
    app.register_user(email).await;
    let session = app.log_in(email).await;
    let enrolment = app
        .post_json("/v1/auth/mfa/totp", &json!({}), Some(&session))
        .await;
    assert_eq!(enrolment.status, StatusCode::OK, "{}", enrolment.text);
    let uri = enrolment.body["otpauth_uri"].as_str().expect("a URI");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let secret = TotpSecret::from_base32(enrolment.body["secret"].as_str().expect("a secret"))
        .expect("a 160-bit base32 secret");
    let code = secret.code_at(app.clock.now());
    let confirmed = app
        .post_json(
            "/v1/auth/mfa/totp/confirm",
            &json!({"code": code}),
            Some(&session),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    let codes: Vec<String> = confirmed.body["recovery_codes"]
        .as_array()
        .expect("the first factor comes with recovery codes")
        .iter()
        .map(|code| code.as_str().expect("a string").to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes, session)
}

/// Logs `email` in with the password: the second step is owed.
async fn half_login(app: &TestApp, email: &str) -> Cookie {
    let reply = app.login(email, PASSWORD, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["mfa_required"], true, "{}", reply.text);
    reply
        .session_cookie()
        .expect("a half-authenticated session")
}

async fn verify(app: &TestApp, session: &Cookie, method: &str, code: &str) -> support::Reply {
    app.post_json(
        "/v1/auth/mfa/verify",
        &json!({"method": method, "code": code}),
        Some(session),
    )
    .await
}

#[tokio::test]
async fn a_totp_login_is_half_authenticated_until_a_fresh_code_and_no_code_works_twice() {
    let app = TestApp::new();
    let (secret, _codes, _) = with_totp(&app, "ada@example.com").await;
    let setup_code = secret.code_at(app.clock.now());

    let reply = app.login("ada@example.com", PASSWORD, None).await;
    assert_eq!(reply.body["methods"], json!(["totp", "recovery_code"]));
    assert!(reply.body.get("email").is_none(), "nothing of the user yet");
    let half = reply.session_cookie().expect("a session");
    for path in ["/profile", "/v1/auth/sessions", "/v1/auth/mfa"] {
        app.get(path, Some(&half))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "mfa_required");
    }
    app.post_json("/v1/auth/mfa/totp", &json!({}), Some(&half))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "mfa_required");
    // The setup code's step is spent.
    verify(&app, &half, "totp", &setup_code)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");

    app.clock.advance(STEP);
    let code = secret.code_at(app.clock.now());
    let whole = verify(&app, &half, "totp", &code).await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.text);
    assert_eq!(whole.body["email"], "ada@example.com");
    let session = whole.session_cookie().expect("a new session id");
    assert_ne!(session, half, "the id rotates");
    assert_eq!(
        app.get("/profile", Some(&session)).await.status,
        StatusCode::OK
    );
    app.get("/profile", Some(&half))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "access_denied");

    // The same code at a second login, and a code two steps old: refused.
    let again = half_login(&app, "ada@example.com").await;
    verify(&app, &again, "totp", &code)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
    let old = secret.code_at(app.clock.now() - time::Duration::seconds(60));
    app.clock.advance(STEP);
    verify(&app, &again, "totp", &old)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
    let next = secret.code_at(app.clock.now());
    assert_eq!(
        verify(&app, &again, "totp", &next).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_sixth_wrong_code_is_refused_unchecked_with_retry_after() {
    let app = TestApp::new();
    let (secret, _, _) = with_totp(&app, "ada@example.com").await;
    app.clock.advance(STEP);
    let half = half_login(&app, "ada@example.com").await;
    let right = secret.code_at(app.clock.now());
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    for _ in 0..5 {
        verify(&app, &half, "totp", wrong)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
    }
    let refused = verify(&app, &half, "totp", &right).await;
    refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
}

#[tokio::test]
async fn a_burst_of_wrong_codes_gets_at_most_five_checked() {
    let app = TestApp::new();
    let (secret, _, _) = with_totp(&app, "ada@example.com").await;
    app.clock.advance(STEP);
    let half = half_login(&app, "ada@example.com").await;
    let right = secret.code_at(app.clock.now());
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    let replies =
        futures::future::join_all((0..20).map(|_| verify(&app, &half, "totp", wrong))).await;
    let checked = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::UNAUTHORIZED)
        .count();
    assert!(checked <= 5, "{checked} wrong codes were checked");
    assert!(replies.iter().all(|r| matches!(
        r.status,
        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
    )));
}

#[tokio::test]
async fn a_recovery_code_works_once_and_a_new_set_voids_the_old() {
    let app = TestApp::new();
    let (_, codes, session) = with_totp(&app, "ada@example.com").await;
    let half = half_login(&app, "ada@example.com").await;
    // Typed in capitals, with spaces for dashes: still the code.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let whole = verify(&app, &half, "recovery_code", &typed).await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.text);
    let again = half_login(&app, "ada@example.com").await;
    verify(&app, &again, "recovery_code", &codes[0])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
    let factors = app
        .get("/v1/auth/mfa", Some(&whole.session_cookie().unwrap()))
        .await;
    assert_eq!(
        factors.body,
        json!({"totp": true, "passkeys": 0, "recovery_codes": 9})
    );

    let fresh = app
        .post_json("/v1/auth/mfa/recovery-codes", &json!({}), Some(&session))
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
    let new_codes = fresh.body["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(new_codes.len(), 10);
    verify(&app, &again, "recovery_code", &codes[1])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
    let whole = verify(
        &app,
        &again,
        "recovery_code",
        new_codes[0].as_str().unwrap(),
    )
    .await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.text);
}

#[tokio::test]
async fn sensitive_routes_need_a_proof_from_the_last_five_minutes() {
    let app = TestApp::new();
    let (secret, _, session) = with_totp(&app, "ada@example.com").await;
    app.clock.advance(Duration::from_secs(5 * 60 + 1));
    let stale: [(Method, &str, Value); 5] = [
        (Method::POST, "/v1/auth/mfa/recovery-codes", json!({})),
        (Method::DELETE, "/v1/auth/mfa/totp", json!({})),
        (
            Method::POST,
            "/v1/auth/password",
            json!({"current_password": PASSWORD, "new_password": "quiet-lantern-meadow"}),
        ),
        (
            Method::POST,
            "/v1/auth/email",
            json!({"new_email": "ada2@example.com", "password": PASSWORD}),
        ),
        (
            Method::DELETE,
            "/v1/auth/account",
            json!({"password": PASSWORD}),
        ),
    ];
    for (method, path, body) in &stale {
        app.json(method.clone(), path, body, Some(&session))
            .await
            .assert_error(StatusCode::FORBIDDEN, "reauthentication_required");
    }
    app.post_json(
        "/v1/auth/reauthenticate",
        &json!({"password": "wrong-password-here"}),
        Some(&session),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    let code = secret.code_at(app.clock.now());
    let proven = app
        .post_json(
            "/v1/auth/reauthenticate",
            &json!({"method": "totp", "code": code}),
            Some(&session),
        )
        .await;
    assert_eq!(proven.status, StatusCode::OK, "{}", proven.text);
    let fresh = app
        .post_json("/v1/auth/mfa/recovery-codes", &json!({}), Some(&session))
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
    app.clock.advance(Duration::from_secs(5 * 60 + 1));
    app.post_json("/v1/auth/mfa/recovery-codes", &json!({}), Some(&session))
        .await
        .assert_error(StatusCode::FORBIDDEN, "reauthentication_required");
    let proven = app
        .post_json(
            "/v1/auth/reauthenticate",
            &json!({"password": PASSWORD}),
            Some(&session),
        )
        .await;
    assert_eq!(proven.status, StatusCode::OK, "{}", proven.text);
    let removed = app
        .json(
            Method::DELETE,
            "/v1/auth/mfa/totp",
            &json!({}),
            Some(&session),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    let login = app.login("ada@example.com", PASSWORD, None).await;
    assert_eq!(
        login.body["email"], "ada@example.com",
        "a password alone again"
    );
}

#[tokio::test]
async fn a_half_authenticated_session_ends_after_five_minutes_and_can_log_out() {
    let app = TestApp::new();
    let (secret, _, _) = with_totp(&app, "ada@example.com").await;
    let half = half_login(&app, "ada@example.com").await;
    app.clock.advance(Duration::from_secs(5 * 60 + 1));
    let code = secret.code_at(app.clock.now());
    verify(&app, &half, "totp", &code)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "access_denied");
    let half = half_login(&app, "ada@example.com").await;
    assert_eq!(app.logout(Some(&half)).await.status, StatusCode::OK);
    verify(&app, &half, "totp", &code)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "access_denied");
}

#[tokio::test]
async fn enrolment_errors_are_clear() {
    let app = TestApp::new();
    app.register_user("ada@example.com").await;
    let session = app.log_in("ada@example.com").await;
    app.post_json(
        "/v1/auth/mfa/totp/confirm",
        &json!({"code": "123456"}),
        Some(&session),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "totp_not_enrolling");
    app.post_json("/v1/auth/mfa/recovery-codes", &json!({}), Some(&session))
        .await
        .assert_error(StatusCode::CONFLICT, "factor_not_enabled");
    app.json(
        Method::DELETE,
        "/v1/auth/mfa/totp",
        &json!({}),
        Some(&session),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "factor_not_enabled");
    let enrolment = app
        .post_json("/v1/auth/mfa/totp", &json!({}), Some(&session))
        .await;
    let secret = TotpSecret::from_base32(enrolment.body["secret"].as_str().unwrap()).unwrap();
    let right = secret.code_at(app.clock.now());
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    app.post_json(
        "/v1/auth/mfa/totp/confirm",
        &json!({"code": wrong}),
        Some(&session),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
    app.post_json(
        "/v1/auth/mfa/totp/confirm",
        &json!({"code": 123456}),
        Some(&session),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_fields");
    let confirmed = app
        .post_json(
            "/v1/auth/mfa/totp/confirm",
            &json!({"code": right}),
            Some(&session),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    app.post_json("/v1/auth/mfa/totp", &json!({}), Some(&session))
        .await
        .assert_error(StatusCode::CONFLICT, "totp_already_enabled");
    let half = half_login(&app, "ada@example.com").await;
    app.post_json(
        "/v1/auth/mfa/verify",
        &json!({"method": "sms", "code": "1"}),
        Some(&half),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "validation_failed");
    app.post_json(
        "/v1/auth/mfa/verify",
        &json!({"method": "totp"}),
        Some(&half),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_fields");
    app.post_json(
        "/v1/auth/mfa/verify",
        &json!({"method": "totp", "code": "1"}),
        Some(&session),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "access_denied");
}

#[tokio::test]
async fn the_secret_is_stored_sealed_and_opens_under_a_fallback_key_only() {
    let app = TestApp::new();
    let (secret, _, session) = with_totp(&app, "ada@example.com").await;
    let id = app.get("/profile", Some(&session)).await.body["id"]
        .as_str()
        .expect("an id")
        .parse()
        .expect("a uuid");
    let stored = app
        .stores
        .factors()
        .totp(auth_domain::UserId::from_uuid(id))
        .await
        .expect("read")
        .expect("enrolled");
    assert!(stored.confirmed);
    assert!(!stored.sealed_secret.contains(&secret.to_base32()));

    // SECRET_KEY rotated, the old one kept as a fallback: the secret still opens.
    let old = Options::default().key;
    let rotated = TestApp::over(
        app.stores.clone(),
        Options {
            key: [0x77; 64],
            fallback_key: Some(old),
            ..Options::default()
        },
    );
    rotated.clock.advance(STEP);
    let half = half_login(&rotated, "ada@example.com").await;
    let code = secret.code_at(rotated.clock.now());
    assert_eq!(
        verify(&rotated, &half, "totp", &code).await.status,
        StatusCode::OK
    );

    // The old key dropped: no code passes any more (an operator resets the factors).
    let dropped = TestApp::over(
        app.stores.clone(),
        Options {
            key: [0x77; 64],
            ..Options::default()
        },
    );
    dropped.clock.advance(STEP * 2);
    let half = half_login(&dropped, "ada@example.com").await;
    let code = secret.code_at(dropped.clock.now());
    verify(&dropped, &half, "totp", &code)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
}

#[tokio::test]
async fn every_change_to_the_factors_is_mailed_and_every_step_recorded() {
    let app = TestApp::new();
    let (_, codes, session) = with_totp(&app, "ada@example.com").await;
    let mails = |kind| {
        app.stores
            .outbox()
            .entries()
            .iter()
            .filter(|entry| entry.mail.to.as_str() == "ada@example.com" && entry.mail.kind == kind)
            .count()
    };
    assert_eq!(mails(MailKind::SecurityNotice), 1, "TOTP turned on");
    let fresh = app
        .post_json("/v1/auth/mfa/recovery-codes", &json!({}), Some(&session))
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_eq!(mails(MailKind::SecurityNotice), 2, "new recovery codes");
    let new_code = fresh.body["recovery_codes"][0].as_str().unwrap().to_owned();

    let half = half_login(&app, "ada@example.com").await;
    verify(&app, &half, "recovery_code", &codes[0])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
    let whole = verify(&app, &half, "recovery_code", &new_code).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(mails(MailKind::RecoveryCodeUsed), 1);
    let removed = app
        .json(
            Method::DELETE,
            "/v1/auth/mfa/totp",
            &json!({}),
            Some(&session),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(mails(MailKind::SecurityNotice), 3, "TOTP turned off");

    let events = app.get("/v1/auth/events", Some(&session)).await;
    let kinds: Vec<&str> = events.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["kind"].as_str().expect("a kind"))
        .collect();
    for kind in [
        "totp_enabled",
        "recovery_codes_generated",
        "mfa_challenged",
        "mfa_failed",
        "recovery_code_used",
        "mfa_succeeded",
        "totp_removed",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}
