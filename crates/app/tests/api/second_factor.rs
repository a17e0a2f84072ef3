//! The second factor (#21) end to end through the real service on every backend: TOTP,
//! recovery codes, passkeys answered by a software authenticator, the step-up on the
//! service's clock, and the replay state shared by two instances.

use std::time::Duration;

use auth_domain::mfa::totp::TotpSecret;
use auth_testkit::{authenticator::SoftAuthenticator, Backend};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use url::Url;

use crate::helpers::{assert_throttled, json_body, Browser, Options, TestApp, PASSWORD};

const STEP: Duration = Duration::from_secs(30);
const PUBLIC_URL: &str = "http://localhost:5000";

fn origin() -> Url {
    Url::parse(PUBLIC_URL).expect("a URL")
}

/// Asserts an error answer of `status` with this `code`; returns the body.
async fn assert_code(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let body = json_body(response).await;
    assert_eq!(body["code"], code, "{body}");
    body
}

async fn ok(response: Response) -> Value {
    let status = response.status();
    let body = json_body(response).await;
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// The code `secret` shows at the service's now.
fn code(app: &TestApp, secret: &TotpSecret) -> String {
    secret.code_at(app.now())
}

/// A wrong code at the service's now.
fn wrong(app: &TestApp, secret: &TotpSecret) -> &'static str {
    if code(app, secret) == "000000" {
        "000001"
    } else {
        "000000"
    }
}

/// Registers `email`, logs in on `browser` and turns TOTP on: the secret and the
/// recovery codes.
async fn enrol_totp(app: &TestApp, browser: &Browser, email: &str) -> (TotpSecret, Vec<String>) {
    browser.register_and_login(email).await;
    let enrolment = ok(browser.post_json("/v1/auth/mfa/totp", &json!({})).await).await;
    assert!(enrolment["otpauth_uri"]
        .as_str()
        .is_some_and(|uri| uri.starts_with("otpauth://totp/")));
    let secret = TotpSecret::from_base32(enrolment["secret"].as_str().expect("a secret"))
        .expect("160 bits of base32");
    let confirmed = ok(browser
        .post_json(
            "/v1/auth/mfa/totp/confirm",
            &json!({"code": code(app, &secret)}),
        )
        .await)
    .await;
    let codes: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .expect("the first factor comes with recovery codes")
        .iter()
        .map(|code| code.as_str().expect("text").to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

/// Logs `email` in with the password on `browser`: the second step is owed.
async fn half_login(browser: &Browser, email: &str) -> Value {
    let body = ok(browser.login(email, PASSWORD).await).await;
    assert_eq!(body["mfa_required"], true, "{body}");
    body
}

async fn verify(browser: &Browser, method: &str, code: &str) -> Response {
    browser
        .post_json(
            "/v1/auth/mfa/verify",
            &json!({"method": method, "code": code}),
        )
        .await
}

pub(crate) async fn totp_enrol_confirm_login_and_no_code_twice(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (secret, _) = enrol_totp(&app, &app, "ada@example.com").await;
    let setup_code = code(&app, &secret);

    let browser = app.browser(None);
    let login = half_login(&browser, "ada@example.com").await;
    assert_eq!(login["methods"], json!(["totp", "recovery_code"]));
    assert_code(
        browser.get("/profile").await,
        StatusCode::UNAUTHORIZED,
        "mfa_required",
    )
    .await;
    // The setup code cannot sign in.
    assert_code(
        verify(&browser, "totp", &setup_code).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    app.advance(STEP);
    let fresh = code(&app, &secret);
    let user = ok(verify(&browser, "totp", &fresh).await).await;
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(browser.get("/profile").await.status(), StatusCode::OK);

    // The same code at a second login, then a code two steps old: refused.
    let other = app.browser(None);
    half_login(&other, "ada@example.com").await;
    assert_code(
        verify(&other, "totp", &fresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    let two_old = secret.code_at(app.now() - time::Duration::seconds(60));
    assert_code(
        verify(&other, "totp", &two_old).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    // Three wrong codes so far (the setup code, the replay, the old one); two more make
    // five, and the sixth attempt is refused unchecked, even with the right code.
    app.advance(STEP);
    for _ in 0..2 {
        assert_code(
            verify(&other, "totp", wrong(&app, &secret)).await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        )
        .await;
    }
    assert_throttled(verify(&other, "totp", &code(&app, &secret)).await).await;
    app.stop().await;
}

pub(crate) async fn a_recovery_code_works_once_and_a_new_set_voids_the_old(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, codes) = enrol_totp(&app, &app, "ada@example.com").await;
    let browser = app.browser(None);
    half_login(&browser, "ada@example.com").await;
    ok(verify(&browser, "recovery_code", &codes[0]).await).await;
    let factors = ok(browser.get("/v1/auth/mfa").await).await;
    assert_eq!(
        factors,
        json!({"totp": true, "passkeys": 0, "recovery_codes": 9})
    );

    let again = app.browser(None);
    half_login(&again, "ada@example.com").await;
    assert_code(
        verify(&again, "recovery_code", &codes[0]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    let fresh = ok(app
        .post_json("/v1/auth/mfa/recovery-codes", &json!({}))
        .await)
    .await;
    let new_codes = fresh["recovery_codes"].as_array().expect("codes").clone();
    assert_eq!(new_codes.len(), 10);
    assert_code(
        verify(&again, "recovery_code", &codes[1]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    ok(verify(&again, "recovery_code", new_codes[0].as_str().unwrap()).await).await;
    app.stop().await;
}

/// Registers a passkey of the user logged in on `browser`, on `authenticator`.
async fn register_passkey(browser: &Browser, authenticator: &mut SoftAuthenticator) -> Value {
    let options = ok(browser
        .post_json("/v1/auth/passkeys/register/options", &json!({}))
        .await)
    .await;
    let credential = authenticator.register(&options, &origin());
    let registered = browser
        .post_json(
            "/v1/auth/passkeys/register",
            &json!({"credential": credential, "name": "Laptop"}),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    json_body(registered).await
}

async fn sign_in_with(
    app: &TestApp,
    browser: &Browser,
    authenticator: &mut SoftAuthenticator,
) -> (Value, Response) {
    let options = ok(app
        .post_json("/v1/auth/passkeys/login/options", &json!({}))
        .await)
    .await;
    assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
    let credential = authenticator.sign_in(&options, &origin());
    let response = browser
        .post_json(
            "/v1/auth/passkeys/login",
            &json!({"credential": credential}),
        )
        .await;
    (credential, response)
}

pub(crate) async fn a_passkey_signs_in_with_no_username_and_every_bad_answer_is_refused(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.register_and_login("ada@example.com").await;
    let mut authenticator = SoftAuthenticator::new();
    let registered = register_passkey(&app, &mut authenticator).await;
    assert_eq!(
        registered["recovery_codes"].as_array().map(Vec::len),
        Some(10)
    );

    let browser = app.browser(None);
    let (credential, signed_in) = sign_in_with(&app, &browser, &mut authenticator).await;
    let user = ok(signed_in).await;
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(browser.get("/profile").await.status(), StatusCode::OK);
    // The same assertion again: its ceremony is spent.
    let replay = app
        .browser(None)
        .post_json(
            "/v1/auth/passkeys/login",
            &json!({"credential": credential}),
        )
        .await;
    assert_code(replay, StatusCode::UNAUTHORIZED, "invalid_passkey").await;
    // No user verification on the passwordless path.
    authenticator.set_user_verification(false);
    let (_, unverified) = sign_in_with(&app, &app.browser(None), &mut authenticator).await;
    assert_code(unverified, StatusCode::UNAUTHORIZED, "invalid_passkey").await;
    authenticator.set_user_verification(true);
    // A password login now asks for the passkey.
    let half = app.browser(None);
    let login = half_login(&half, "ada@example.com").await;
    assert_eq!(login["methods"], json!(["webauthn", "recovery_code"]));
    let options = ok(half
        .post_json("/v1/auth/mfa/webauthn/options", &json!({}))
        .await)
    .await;
    let assertion = authenticator.sign_in(&options, &origin());
    ok(half
        .post_json(
            "/v1/auth/mfa/verify",
            &json!({"method": "webauthn", "credential": assertion}),
        )
        .await)
    .await;
    // Renamed, then deleted: it signs no one in any more.
    let id = registered["passkey"]["id"].as_str().expect("an id");
    let renamed = ok(browser
        .send(
            Method::PATCH,
            &format!("/v1/auth/passkeys/{id}"),
            Some(&json!({"name": "Phone"})),
        )
        .await)
    .await;
    assert_eq!(renamed["name"], "Phone");
    assert_eq!(
        browser
            .delete(&format!("/v1/auth/passkeys/{id}"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let (_, deleted) = sign_in_with(&app, &app.browser(None), &mut authenticator).await;
    assert_code(deleted, StatusCode::UNAUTHORIZED, "invalid_passkey").await;
    app.stop().await;
}

pub(crate) async fn sensitive_actions_need_a_proof_from_the_last_five_minutes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (secret, _) = enrol_totp(&app, &app, "ada@example.com").await;
    app.advance(Duration::from_secs(5 * 60 + 1));
    for (method, path, body) in [
        (Method::POST, "/v1/auth/mfa/recovery-codes", json!({})),
        (Method::DELETE, "/v1/auth/mfa/totp", json!({})),
        (
            Method::POST,
            "/v1/auth/passkeys/register/options",
            json!({}),
        ),
        (
            Method::POST,
            "/v1/auth/password",
            json!({"current_password": PASSWORD, "new_password": "copper-lantern-meadow"}),
        ),
        (
            Method::DELETE,
            "/v1/auth/account",
            json!({"password": PASSWORD}),
        ),
    ] {
        assert_code(
            app.send(method, path, Some(&body)).await,
            StatusCode::FORBIDDEN,
            "reauthentication_required",
        )
        .await;
    }
    assert_code(
        app.post_json(
            "/v1/auth/reauthenticate",
            &json!({"method": "totp", "code": wrong(&app, &secret)}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    ok(app
        .post_json(
            "/v1/auth/reauthenticate",
            &json!({"method": "totp", "code": code(&app, &secret)}),
        )
        .await)
    .await;
    ok(app
        .post_json("/v1/auth/mfa/recovery-codes", &json!({}))
        .await)
    .await;
    app.advance(Duration::from_secs(5 * 60 + 1));
    assert_code(
        app.post_json("/v1/auth/mfa/recovery-codes", &json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "reauthentication_required",
    )
    .await;
    ok(app
        .post_json("/v1/auth/reauthenticate", &json!({"password": PASSWORD}))
        .await)
    .await;
    assert_eq!(
        app.send(Method::DELETE, "/v1/auth/mfa/totp", None)
            .await
            .status(),
        StatusCode::OK
    );
    let login = ok(app.browser(None).login("ada@example.com", PASSWORD).await).await;
    assert_eq!(
        login["email"], "ada@example.com",
        "the password alone again"
    );
    app.stop().await;
}

pub(crate) async fn two_instances_accept_each_totp_step_once(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = first.spawn_beside(Options::default()).await;
    let (secret, _) = enrol_totp(&first, &first, "ada@example.com").await;
    first.advance(STEP);
    // Four half-authenticated browsers, two on each instance, race one code (four: the
    // losers count as wrong codes, and five would start the 429s).
    let mut browsers = Vec::new();
    for i in 0_u32..4 {
        let browser = if i.is_multiple_of(2) {
            first.browser(None)
        } else {
            second.browser(None)
        };
        half_login(&browser, "ada@example.com").await;
        browsers.push(browser);
    }
    let code = code(&first, &secret);
    let answers = futures::future::join_all(
        browsers
            .iter()
            .map(|browser| verify(browser, "totp", &code)),
    )
    .await;
    let accepted = answers
        .iter()
        .filter(|response| response.status() == StatusCode::OK)
        .count();
    assert_eq!(accepted, 1, "one code, one login, whichever instance");
    assert!(answers
        .iter()
        .all(|r| matches!(r.status(), StatusCode::OK | StatusCode::UNAUTHORIZED)));
    second.stop().await;
    first.stop().await;
}

pub(crate) async fn passkey_routes_answer_503_on_an_ip_public_url(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options::with(&[("PUBLIC_URL", "http://127.0.0.1:5000")]),
    )
    .await;
    assert_code(
        app.post_json("/v1/auth/passkeys/login/options", &json!({}))
            .await,
        StatusCode::SERVICE_UNAVAILABLE,
        "passkeys_unavailable",
    )
    .await;
    app.register_and_login("ada@example.com").await;
    assert_code(
        app.post_json("/v1/auth/passkeys/register/options", &json!({}))
            .await,
        StatusCode::SERVICE_UNAVAILABLE,
        "passkeys_unavailable",
    )
    .await;
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK);
    app.stop().await;
}

pub(crate) async fn an_account_can_drop_its_password_and_sign_in_with_a_passkey_alone(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.register_and_login("ada@example.com").await;
    assert_code(
        app.delete("/v1/auth/password").await,
        StatusCode::CONFLICT,
        "passkey_required",
    )
    .await;
    let mut authenticator = SoftAuthenticator::new();
    register_passkey(&app, &mut authenticator).await;
    ok(app.delete("/v1/auth/password").await).await;
    assert_eq!(
        app.get("/profile").await.status(),
        StatusCode::OK,
        "this session goes on"
    );
    assert_code(
        app.browser(None).login("ada@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let browser = app.browser(None);
    let (_, signed_in) = sign_in_with(&app, &browser, &mut authenticator).await;
    assert_eq!(ok(signed_in).await["email"], "ada@example.com");
    assert_eq!(browser.get("/profile").await.status(), StatusCode::OK);
    app.stop().await;
}

/// A recovery code and a passkey's answer are each good once, and wrong codes stay
/// within the limit, when bursts of them hit two instances at once.
pub(crate) async fn recovery_codes_answers_and_wrong_codes_hold_across_two_instances(
    backend: Backend,
) {
    let first = TestApp::spawn(backend).await;
    let second = first.spawn_beside(Options::default()).await;
    let (_, codes) = enrol_totp(&first, &first, "ada@example.com").await;
    let on = |i: usize| if i.is_multiple_of(2) { &first } else { &second };

    // One recovery code, four half-authenticated browsers on two instances.
    let mut browsers = Vec::new();
    for i in 0..4 {
        let browser = on(i).browser(None);
        half_login(&browser, "ada@example.com").await;
        browsers.push(browser);
    }
    let answers = futures::future::join_all(
        browsers
            .iter()
            .map(|browser| verify(browser, "recovery_code", &codes[0])),
    )
    .await;
    let accepted = answers
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    assert_eq!(accepted, 1, "one recovery code, one login");

    // One passkey assertion, posted to both instances at once.
    let mut authenticator = SoftAuthenticator::new();
    register_passkey(&first, &mut authenticator).await;
    let options = ok(second
        .post_json("/v1/auth/passkeys/login/options", &json!({}))
        .await)
    .await;
    let body = json!({"credential": authenticator.sign_in(&options, &origin())});
    let signers: Vec<Browser> = (0..4).map(|i| on(i).browser(None)).collect();
    let answers = futures::future::join_all(
        signers
            .iter()
            .map(|browser| browser.post_json("/v1/auth/passkeys/login", &body)),
    )
    .await;
    let accepted = answers
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    assert_eq!(accepted, 1, "one ceremony, one sign-in");

    // Twelve wrong codes at once on two instances: at most five are checked.
    let bob = "bob@example.com";
    let bob_app = first.browser(None);
    let (bob_secret, _) = enrol_totp(&first, &bob_app, bob).await;
    let guessers: Vec<Browser> = (0..12).map(|i| on(i).browser(None)).collect();
    for browser in &guessers {
        half_login(browser, bob).await;
    }
    let bad = wrong(&first, &bob_secret);
    let answers =
        futures::future::join_all(guessers.iter().map(|browser| verify(browser, "totp", bad)))
            .await;
    let checked = answers
        .iter()
        .filter(|r| r.status() == StatusCode::UNAUTHORIZED)
        .count();
    assert!(checked <= 5, "{checked} wrong codes were checked");
    assert!(answers.iter().all(|r| matches!(
        r.status(),
        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
    )));
    second.stop().await;
    first.stop().await;
}

/// Anyone may start a passkey sign-in, and each start keeps a challenge: one address gets
/// `PASSKEY_SIGN_INS_PER_ADDRESS` of them per window, however they are spread over
/// instances and however many ask at once.
pub(crate) async fn passkey_sign_ins_per_address_are_limited_across_two_instances(
    backend: Backend,
) {
    let options = Options::with(&[("PASSKEY_SIGN_INS_PER_ADDRESS", "3")]);
    let first = TestApp::spawn_with(backend, options.clone()).await;
    let second = first.spawn_beside(options).await;
    let starts = (0..20_u32).map(|i| {
        let instance = if i.is_multiple_of(2) { &first } else { &second };
        async move {
            instance
                .browser(None)
                .post_json("/v1/auth/passkeys/login/options", &json!({}))
                .await
        }
    });
    let answers = futures::future::join_all(starts).await;
    let started = answers
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    assert!(started <= 3, "{started} sign-ins started");
    assert!(answers
        .iter()
        .all(|r| matches!(r.status(), StatusCode::OK | StatusCode::TOO_MANY_REQUESTS)));
    // Starts refused in the burst do not count (they may even have refused each other):
    // one after the other, the rest of the three go through, and then no more.
    let mut total = started;
    loop {
        let response = first
            .post_json("/v1/auth/passkeys/login/options", &json!({}))
            .await;
        if response.status() != StatusCode::OK {
            assert_throttled(response).await;
            break;
        }
        total += 1;
        assert!(total <= 3, "{total} sign-ins started");
    }
    assert_eq!(total, 3);
    first.advance(Duration::from_secs(15 * 60 + 1));
    ok(second
        .post_json("/v1/auth/passkeys/login/options", &json!({}))
        .await)
    .await;
    second.stop().await;
    first.stop().await;
}

/// New recovery codes asked for at once from two sessions on two instances: one set stays,
/// never the union of both.
pub(crate) async fn concurrent_regenerations_leave_one_set_of_recovery_codes(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = first.spawn_beside(Options::default()).await;
    enrol_totp(&first, &first, "ada@example.com").await;
    // Fresh logins (the login is the step-up's proof), but whole: the second step first.
    let mut sessions = Vec::new();
    for i in 0..6_u32 {
        let browser = if i.is_multiple_of(2) { &first } else { &second }.browser(None);
        half_login(&browser, "ada@example.com").await;
        sessions.push(browser);
    }
    let codes = ok(first
        .post_json("/v1/auth/mfa/recovery-codes", &json!({}))
        .await)
    .await;
    let codes: Vec<String> = codes["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|code| code.as_str().expect("text").to_owned())
        .collect();
    for (browser, code) in sessions.iter().zip(&codes) {
        ok(verify(browser, "recovery_code", code).await).await;
    }
    let empty = json!({});
    let answers = futures::future::join_all(
        sessions
            .iter()
            .map(|browser| browser.post_json("/v1/auth/mfa/recovery-codes", &empty)),
    )
    .await;
    for answer in answers {
        ok(answer).await;
    }
    let factors = ok(first.get("/v1/auth/mfa").await).await;
    assert_eq!(factors["recovery_codes"], 10, "one set of ten: {factors}");
    second.stop().await;
    first.stop().await;
}
