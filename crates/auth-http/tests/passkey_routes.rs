//! Passkeys through the real router over the in-memory stores, answered by a software
//! authenticator: registration, a sign-in with no username, the second step of a login,
//! and every way an answer is refused. The same flows run against every database in the
//! app's API suite.

#[allow(dead_code, reason = "this binary uses a part of the shared support")]
mod support;

use auth_testkit::authenticator::SoftAuthenticator;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Cookie, Options, Reply, TestApp, PASSWORD, PUBLIC_URL};
use url::Url;

fn origin() -> Url {
    Url::parse(PUBLIC_URL).unwrap()
}

/// Registers `email`, logs in, and registers a passkey on `authenticator`.
async fn with_passkey(
    app: &TestApp,
    email: &str,
    authenticator: &mut SoftAuthenticator,
) -> (Cookie, Reply) {
    app.register_user(email).await;
    let session = app.log_in(email).await;
    let options = app
        .post_json(
            "/v1/auth/passkeys/register/options",
            &json!({}),
            Some(&session),
        )
        .await;
    assert_eq!(options.status, StatusCode::OK, "{}", options.text);
    let selection = &options.body["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["userVerification"], "required");
    assert_eq!(options.body["publicKey"]["attestation"], "none");
    let credential = authenticator.register(&options.body, &origin());
    let registered = app
        .post_json(
            "/v1/auth/passkeys/register",
            &json!({"credential": credential, "name": "Laptop"}),
            Some(&session),
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );
    (session, registered)
}

async fn sign_in_options(app: &TestApp) -> Value {
    let options = app
        .post_json("/v1/auth/passkeys/login/options", &json!({}), None)
        .await;
    assert_eq!(options.status, StatusCode::OK, "{}", options.text);
    options.body
}

async fn sign_in(app: &TestApp, credential: &Value) -> Reply {
    app.post_json(
        "/v1/auth/passkeys/login",
        &json!({"credential": credential}),
        None,
    )
    .await
}

#[tokio::test]
async fn a_registered_passkey_signs_in_with_no_username_once_per_ceremony() {
    let app = TestApp::new();
    let mut authenticator = SoftAuthenticator::new();
    let (session, registered) = with_passkey(&app, "ada@example.com", &mut authenticator).await;
    assert_eq!(registered.body["passkey"]["name"], "Laptop");
    assert_eq!(
        registered.body["recovery_codes"].as_array().map(Vec::len),
        Some(10),
        "the first factor comes with recovery codes"
    );
    let listed = app.get("/v1/auth/passkeys", Some(&session)).await;
    assert_eq!(listed.body["passkeys"].as_array().unwrap().len(), 1);
    assert!(
        !listed.text.contains("key\""),
        "never the key: {}",
        listed.text
    );

    let options = sign_in_options(&app).await;
    assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
    assert_eq!(options["publicKey"]["userVerification"], "required");
    let credential = authenticator.sign_in(&options, &origin());
    let signed_in = sign_in(&app, &credential).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text);
    assert_eq!(signed_in.body["email"], "ada@example.com");
    let cookie = signed_in.session_cookie().expect("a session");
    assert_eq!(
        app.get("/profile", Some(&cookie)).await.status,
        StatusCode::OK
    );
    // The same answer again: its ceremony is spent.
    sign_in(&app, &credential)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_passkey");
    // A ceremony lives five minutes.
    let options = sign_in_options(&app).await;
    assert_eq!(options["publicKey"]["timeout"], 300_000);
    let late = authenticator.sign_in(&options, &origin());
    app.clock
        .advance(std::time::Duration::from_secs(5 * 60 + 1));
    sign_in(&app, &late)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_passkey");
    let listed = app.get("/v1/auth/passkeys", Some(&cookie)).await;
    assert!(
        listed.body["passkeys"][0]["last_used_at"].is_string(),
        "{}",
        listed.text
    );
}

#[tokio::test]
async fn a_sign_in_without_user_verification_or_with_a_deleted_passkey_is_refused() {
    let app = TestApp::new();
    let mut authenticator = SoftAuthenticator::new();
    let (session, registered) = with_passkey(&app, "ada@example.com", &mut authenticator).await;
    authenticator.set_user_verification(false);
    let options = sign_in_options(&app).await;
    let unverified = authenticator.sign_in(&options, &origin());
    sign_in(&app, &unverified)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_passkey");
    authenticator.set_user_verification(true);

    let id = registered.body["passkey"]["id"].as_str().unwrap();
    let deleted = app
        .request(
            Method::DELETE,
            &format!("/v1/auth/passkeys/{id}"),
            Some(&session),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let options = sign_in_options(&app).await;
    let credential = authenticator.sign_in(&options, &origin());
    sign_in(&app, &credential)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_passkey");
    app.request(
        Method::DELETE,
        &format!("/v1/auth/passkeys/{id}"),
        Some(&session),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_passkey_is_the_second_step_after_a_password() {
    let app = TestApp::new();
    let mut authenticator = SoftAuthenticator::new();
    with_passkey(&app, "ada@example.com", &mut authenticator).await;
    let login = app.login("ada@example.com", PASSWORD, None).await;
    assert_eq!(login.body["mfa_required"], true);
    assert_eq!(login.body["methods"], json!(["webauthn", "recovery_code"]));
    let half = login.session_cookie().unwrap();
    let options = app
        .post_json("/v1/auth/mfa/webauthn/options", &json!({}), Some(&half))
        .await;
    assert_eq!(options.status, StatusCode::OK, "{}", options.text);
    assert_eq!(
        options.body["publicKey"]["allowCredentials"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let credential = authenticator.sign_in(&options.body, &origin());
    let whole = app
        .post_json(
            "/v1/auth/mfa/verify",
            &json!({"method": "webauthn", "credential": credential}),
            Some(&half),
        )
        .await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.text);
    let session = whole.session_cookie().unwrap();
    assert_eq!(
        app.get("/profile", Some(&session)).await.status,
        StatusCode::OK
    );
    // Answering a second-factor ceremony is no sign-in.
    sign_in(&app, &credential)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_passkey");
}

#[tokio::test]
async fn passkeys_are_renamed_and_refused_to_strangers() {
    let app = TestApp::new();
    let mut authenticator = SoftAuthenticator::new();
    let (session, registered) = with_passkey(&app, "ada@example.com", &mut authenticator).await;
    let id = registered.body["passkey"]["id"].as_str().unwrap();
    let path = format!("/v1/auth/passkeys/{id}");
    let renamed = app
        .json(
            Method::PATCH,
            &path,
            &json!({"name": "  Phone  "}),
            Some(&session),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(renamed.body["name"], "Phone");
    app.json(Method::PATCH, &path, &json!({"name": " "}), Some(&session))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "validation_failed");
    app.json(
        Method::PATCH,
        &path,
        &json!({"name": "x".repeat(65)}),
        Some(&session),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "validation_failed");
    app.json(
        Method::PATCH,
        "/v1/auth/passkeys/nope",
        &json!({"name": "a"}),
        Some(&session),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");

    app.register_user("bob@example.com").await;
    let bob = app.log_in("bob@example.com").await;
    app.json(Method::PATCH, &path, &json!({"name": "mine"}), Some(&bob))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.request(Method::DELETE, &path, Some(&bob))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    // Bob cannot finish Ada's ceremony, nor post garbage.
    let options = app
        .post_json(
            "/v1/auth/passkeys/register/options",
            &json!({}),
            Some(&session),
        )
        .await;
    let credential = SoftAuthenticator::new().register(&options.body, &origin());
    app.post_json(
        "/v1/auth/passkeys/register",
        &json!({"credential": credential}),
        Some(&bob),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_passkey");
    for garbage in [
        json!({}),
        json!({"response": {"clientDataJSON": "!!"}}),
        json!({"id": 1}),
    ] {
        sign_in(&app, &garbage)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_passkey");
    }
    app.post_json("/v1/auth/passkeys/login", &json!({"credential": "x"}), None)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_fields");
}

#[tokio::test]
async fn an_ip_address_as_public_url_turns_passkeys_off_and_nothing_else() {
    let app = TestApp::with(Options {
        public_url: "http://127.0.0.1:5000",
        ..Options::default()
    });
    app.post_json("/v1/auth/passkeys/login/options", &json!({}), None)
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "passkeys_unavailable");
    app.register_user("ada@example.com").await;
    let session = app.log_in("ada@example.com").await;
    app.post_json(
        "/v1/auth/passkeys/register/options",
        &json!({}),
        Some(&session),
    )
    .await
    .assert_error(StatusCode::SERVICE_UNAVAILABLE, "passkeys_unavailable");
    assert_eq!(
        app.get("/profile", Some(&session)).await.status,
        StatusCode::OK
    );
    let totp = app
        .post_json("/v1/auth/mfa/totp", &json!({}), Some(&session))
        .await;
    assert_eq!(totp.status, StatusCode::OK, "{}", totp.text);
}

#[tokio::test]
async fn an_account_with_a_passkey_can_drop_its_password_and_sign_in_without_one() {
    let app = TestApp::new();
    app.register_user("bob@example.com").await;
    let bob = app.log_in("bob@example.com").await;
    app.request(Method::DELETE, "/v1/auth/password", Some(&bob))
        .await
        .assert_error(StatusCode::CONFLICT, "passkey_required");

    let mut authenticator = SoftAuthenticator::new();
    let (session, _) = with_passkey(&app, "ada@example.com", &mut authenticator).await;
    let removed = app
        .request(Method::DELETE, "/v1/auth/password", Some(&session))
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    let session = removed
        .session_cookie()
        .expect("the session goes on under a new id");
    assert_eq!(
        app.get("/profile", Some(&session)).await.status,
        StatusCode::OK
    );
    app.login("ada@example.com", PASSWORD, None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    app.login("ada@example.com", "", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");

    let options = sign_in_options(&app).await;
    let credential = authenticator.sign_in(&options, &origin());
    let signed_in = sign_in(&app, &credential).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text);
    let fresh = signed_in.session_cookie().unwrap();
    // No password to type: the passkey just used is the proof.
    let deleted = app
        .json(
            Method::DELETE,
            "/v1/auth/account",
            &json!({"password": ""}),
            Some(&fresh),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let options = sign_in_options(&app).await;
    let credential = authenticator.sign_in(&options, &origin());
    sign_in(&app, &credential)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_passkey");
}
