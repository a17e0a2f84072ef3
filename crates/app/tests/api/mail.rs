//! Mail that arrives (#20): password reset, email verification and email change, end to
//! end through the real service, its outbox and a real SMTP server (the sink `cargo xtask
//! test` starts; see `auth_testkit::mailbox`). Every address a test uses is its own
//! (the sink is shared), and every expiry is reached by moving the service's clock.

use std::time::Duration;

use auth_testkit::{
    mailbox::{self, Mailbox, Received},
    smtp_relay::SmtpRelay,
    Backend,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{json_body, Browser, Options, TestApp, PASSWORD};

const NEW_PASSWORD: &str = "copper-lantern-meadow";
/// How long a mail may take to arrive: the worker wakes at once; this is a bound for a
/// loaded CI machine, not an expectation.
const ARRIVES_WITHIN: Duration = Duration::from_secs(20);

/// Asserts an error answer of `status` with this `code`.
async fn assert_code(response: reqwest::Response, status: StatusCode, code: &str) {
    assert_eq!(response.status(), status);
    let body = json_body(response).await;
    assert_eq!(body["code"], code, "{body}");
}

/// An address no other test uses.
fn address(name: &str) -> String {
    format!("{name}.{:016x}@example.com", rand::random::<u64>())
}

/// The service sending to `smtp_url`, with these settings besides.
fn mailing(smtp_url: &str, settings: &[(&'static str, &str)]) -> Options {
    let mut options = Options::with(settings);
    options.extra.insert(0, ("SMTP_URL", smtp_url.to_owned()));
    options
}

async fn spawn(backend: Backend, settings: &[(&'static str, &str)]) -> TestApp {
    TestApp::spawn_with(backend, mailing(&mailbox::smtp_url(), settings)).await
}

/// The `count` mails to `to`, once they arrived.
async fn mails(to: &str, count: usize) -> Vec<Received> {
    let received = Mailbox::from_env()
        .wait_for(to, count, ARRIVES_WITHIN)
        .await;
    assert_eq!(received.len(), count, "mails to {to}: {received:#?}");
    received
}

/// The token of the one mail to `to` whose subject has `subject` in it.
async fn token(to: &str, subject: &str) -> String {
    let mail = Mailbox::from_env()
        .wait_until(to, ARRIVES_WITHIN, |mails| {
            mails.iter().any(|m| m.subject.contains(subject))
        })
        .await
        .into_iter()
        .rev()
        .find(|m| m.subject.contains(subject))
        .unwrap_or_else(|| panic!("no mail \"{subject}\" to {to}"));
    mail.token().expect("a link with a token").to_owned()
}

async fn forgot(browser: &Browser, email: &str) -> (StatusCode, String) {
    let response = browser
        .post_json("/v1/auth/password/forgot", &json!({"email": email}))
        .await;
    let status = response.status();
    (status, response.text().await.expect("a body"))
}

async fn reset(browser: &Browser, token: &str, password: &str) -> reqwest::Response {
    browser
        .post_json(
            "/v1/auth/password/reset",
            &json!({"token": token, "new_password": password}),
        )
        .await
}

pub(crate) async fn forgot_answers_a_known_and_an_unknown_address_alike_and_mails_one(
    backend: Backend,
) {
    let app = spawn(backend, &[("EMAIL_VERIFICATION", "off")]).await;
    let (ada, nobody) = (address("ada"), address("nobody"));
    app.register_user(&ada).await;
    let known = forgot(&app, &ada).await;
    let unknown = forgot(&app, &nobody).await;
    assert_eq!(known.0, StatusCode::ACCEPTED);
    assert_eq!(known, unknown, "the same status and body");
    let mail = &mails(&ada, 1).await[0];
    assert!(mail.subject.contains("Reset"), "{mail:?}");
    assert!(
        mail.body
            .contains("http://localhost:5000/reset-password#token="),
        "the link is built from PUBLIC_URL: {}",
        mail.body
    );
    // Given as long again, the unknown address still has nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(Mailbox::from_env().messages_to(&nobody).is_empty());
    app.stop().await;
}

pub(crate) async fn a_reset_token_works_once_and_ends_every_session(backend: Backend) {
    let app = spawn(backend, &[("EMAIL_VERIFICATION", "off")]).await;
    let ada = address("ada");
    let [phone, laptop] = &app.user_with_browsers(&ada).await;
    forgot(&app, &ada).await;
    let token = token(&ada, "Reset").await;
    // Following the link's page is a GET: it spends nothing.
    let page = app
        .get(&format!("/v1/auth/password/reset?token={token}"))
        .await;
    assert_ne!(page.status(), StatusCode::OK);

    let stranger = app.browser(None);
    let done = reset(&stranger, &token, NEW_PASSWORD).await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(
        crate::helpers::session_cookie(&done).is_none(),
        "nobody is logged in"
    );
    for browser in [phone, laptop] {
        assert_eq!(
            browser.get("/profile").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let again = reset(&stranger, &token, "another-fine-password").await;
    assert_code(again, StatusCode::BAD_REQUEST, "invalid_token").await;
    assert_eq!(
        app.browser(None).login(&ada, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.browser(None).login(&ada, NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    let notice = token_free_mail(&ada, "password was changed").await;
    assert!(notice.token().is_none(), "a notice carries no token");
    app.stop().await;
}

/// ASVS 6.4.3: a reset sets the password, and nothing else; the second factor stays.
pub(crate) async fn a_reset_leaves_the_second_factor_in_place(backend: Backend) {
    let app = spawn(backend, &[("EMAIL_VERIFICATION", "off")]).await;
    let ada = address("ada");
    app.register_and_login(&ada).await;
    let enrolment = json_body(app.post_json("/v1/auth/mfa/totp", &json!({})).await).await;
    let secret = auth_domain::mfa::totp::TotpSecret::from_base32(
        enrolment["secret"].as_str().expect("a secret"),
    )
    .expect("a secret");
    let confirmed = app
        .post_json(
            "/v1/auth/mfa/totp/confirm",
            &json!({"code": secret.code_at(app.now())}),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    forgot(&app, &ada).await;
    let token = token(&ada, "Reset").await;
    assert_eq!(
        reset(&app.browser(None), &token, NEW_PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    let browser = app.browser(None);
    let login = json_body(browser.login(&ada, NEW_PASSWORD).await).await;
    assert_eq!(login["mfa_required"], true, "{login}");
    assert_code(
        browser.get("/profile").await,
        StatusCode::UNAUTHORIZED,
        "mfa_required",
    )
    .await;
    app.advance(Duration::from_secs(30));
    let whole = browser
        .post_json(
            "/v1/auth/mfa/verify",
            &json!({"method": "totp", "code": secret.code_at(app.now())}),
        )
        .await;
    assert_eq!(whole.status(), StatusCode::OK);
    // The enrolment was mailed about too.
    token_free_mail(&ada, "security settings").await;
    app.stop().await;
}

pub(crate) async fn an_expired_or_superseded_reset_token_fails(backend: Backend) {
    let app = spawn(
        backend,
        &[
            ("EMAIL_VERIFICATION", "off"),
            ("PASSWORD_RESET_LIFETIME", "600"),
        ],
    )
    .await;
    let ada = address("ada");
    app.register_user(&ada).await;
    forgot(&app, &ada).await;
    let first = token(&ada, "Reset").await;
    forgot(&app, &ada).await;
    let received = mails(&ada, 2).await;
    let second = received[1].token().expect("a token").to_owned();
    assert_ne!(first, second);
    let old = reset(&app, &first, NEW_PASSWORD).await;
    assert_code(old, StatusCode::BAD_REQUEST, "invalid_token").await;
    app.advance(Duration::from_secs(601));
    let late = reset(&app, &second, NEW_PASSWORD).await;
    assert_code(late, StatusCode::BAD_REQUEST, "invalid_token").await;
    assert_eq!(
        app.browser(None).login(&ada, PASSWORD).await.status(),
        StatusCode::OK,
        "the password is unchanged"
    );
    app.stop().await;
}

pub(crate) async fn verification_resend_cooldown_and_required_mode(backend: Backend) {
    let app = spawn(backend, &[("EMAIL_VERIFICATION", "required")]).await;
    let ada = address("ada");
    app.register_user(&ada).await;
    let first = token(&ada, "Verify").await;
    let login = app.login(&ada, PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(json_body(login).await["email_verified"], false);
    assert_code(
        app.get("/profile").await,
        StatusCode::FORBIDDEN,
        "email_unverified",
    )
    .await;

    let resend = || app.send(Method::POST, "/v1/auth/email/verify/resend", None);
    assert_eq!(resend().await.status(), StatusCode::ACCEPTED);
    let too_soon = resend().await;
    assert_eq!(too_soon.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(too_soon.headers().contains_key("retry-after"));
    let received = mails(&ada, 2).await;
    let second = received[1].token().expect("a token").to_owned();
    assert_ne!(first, second);
    app.advance(Duration::from_secs(61));
    assert_eq!(
        resend().await.status(),
        StatusCode::ACCEPTED,
        "after the cooldown"
    );
    let third = mails(&ada, 3).await[2].token().expect("a token").to_owned();

    let stale = app
        .post_json("/v1/auth/email/verify", &json!({"token": second}))
        .await;
    assert_code(stale, StatusCode::BAD_REQUEST, "invalid_token").await;
    let verified = app
        .post_json("/v1/auth/email/verify", &json!({"token": third}))
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    let profile = app.get("/profile").await;
    assert_eq!(profile.status(), StatusCode::OK);
    assert_eq!(json_body(profile).await["email_verified"], true);
    app.stop().await;
}

pub(crate) async fn an_email_change_mails_both_addresses_and_waits_for_the_link(backend: Backend) {
    let app = spawn(backend, &[("EMAIL_VERIFICATION", "off")]).await;
    let (old, new, bob) = (address("ada"), address("ada-new"), address("bob"));
    app.register_user(&bob).await;
    app.register_and_login(&old).await;
    let change = |to: &str, password: &str| {
        let body = json!({"new_email": to, "password": password});
        let app = &app;
        async move { app.post_json("/v1/auth/email", &body).await }
    };
    let wrong = change(&new, "not-the-password-at-all").await;
    assert_code(wrong, StatusCode::BAD_REQUEST, "validation_failed").await;

    let started = change(&new, PASSWORD).await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let started_body = started.text().await.expect("a body");
    token_free_mail(&old, "being changed").await;
    assert_eq!(profile_email(&app).await, old, "pending until confirmed");
    let token = token(&new, "Confirm").await;
    let confirmed = app
        .browser(None)
        .post_json("/v1/auth/email/verify", &json!({"token": token}))
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert_eq!(profile_email(&app).await, new);
    assert_eq!(
        app.browser(None).login(&new, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.browser(None).login(&old, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Bob's address is taken: answered alike, Bob hears of it, no link goes anywhere.
    let taken = change(&bob, PASSWORD).await;
    assert_eq!(taken.status(), StatusCode::ACCEPTED);
    assert_eq!(taken.text().await.expect("a body"), started_body);
    let warning = token_free_mail(&bob, "tried to use").await;
    assert!(warning.token().is_none());
    app.stop().await;
}

pub(crate) async fn a_mail_written_while_smtp_is_down_arrives_once_it_is_up(backend: Backend) {
    let relay = SmtpRelay::to_url(&mailbox::smtp_url()).await;
    relay.down();
    let app = TestApp::spawn_with(
        backend,
        mailing(&relay.url(), &[("EMAIL_VERIFICATION", "off")]),
    )
    .await;
    let ada = address("ada");
    app.register_user(&ada).await;
    forgot(&app, &ada).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        Mailbox::from_env().messages_to(&ada).is_empty(),
        "SMTP is down"
    );
    relay.up();
    // Retries back off: move the clock past any backoff rather than wait for it.
    for _ in 0..40 {
        app.advance(Duration::from_secs(60));
        if !Mailbox::from_env().messages_to(&ada).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mail = &mails(&ada, 1).await[0];
    assert!(mail.token().is_some());
    app.stop().await;
}

pub(crate) async fn two_instances_send_every_mail_exactly_once(backend: Backend) {
    let first = spawn(backend, &[("EMAIL_VERIFICATION", "optional")]).await;
    let second = first
        .spawn_beside(mailing(
            &mailbox::smtp_url(),
            &[("EMAIL_VERIFICATION", "optional")],
        ))
        .await;
    let addresses: Vec<String> = (0..12).map(|i| address(&format!("user{i}"))).collect();
    let registrations = addresses.iter().enumerate().map(|(i, email)| {
        let instance = if i % 2 == 0 { &first } else { &second };
        async move { instance.register(email, PASSWORD, None).await.status() }
    });
    for status in futures::future::join_all(registrations).await {
        assert_eq!(status, StatusCode::CREATED);
    }
    for email in &addresses {
        mails(email, 1).await;
    }
    // Every worker had its chance at every mail; none went twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for email in &addresses {
        assert_eq!(Mailbox::from_env().messages_to(email).len(), 1, "{email}");
    }
    second.stop().await;
    first.stop().await;
}

async fn profile_email(app: &TestApp) -> String {
    let profile = app.get("/profile").await;
    assert_eq!(profile.status(), StatusCode::OK);
    let body: Value = json_body(profile).await;
    body["email"].as_str().expect("an email").to_owned()
}

/// The mail to `to` whose subject has `subject` in it.
async fn token_free_mail(to: &str, subject: &str) -> Received {
    Mailbox::from_env()
        .wait_until(to, ARRIVES_WITHIN, |mails| {
            mails.iter().any(|m| m.subject.contains(subject))
        })
        .await
        .into_iter()
        .find(|m| m.subject.contains(subject))
        .unwrap_or_else(|| panic!("no mail \"{subject}\" to {to}"))
}
