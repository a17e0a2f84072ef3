//! Login and registration throttling (#9): guessing gets slow everywhere, yet the owner
//! of an account under attack still gets in from the browser they always use.

use std::time::{Duration, Instant};

use auth_testkit::Backend;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, assert_field_error, assert_throttled, cookie_attribute, header_text, Browser,
    Options, TestApp, PASSWORD,
};

const ADA: &str = "ada@example.com";
const WRONG: &str = "not-the-password-at-all";
/// Every test request comes from 127.0.0.1: trusting it makes `X-Forwarded-For` the
/// client's address, so that one test can play many addresses.
const TRUST_LOCALHOST: (&str, &str) = ("TRUSTED_PROXIES", "127.0.0.1");
/// The window, in seconds.
const WINDOW_SECS: u64 = 900;
/// No `Retry-After` may be longer than the window and the second it starts in: an attempt
/// leaves the window once it is more than the window old, and the wait is rounded up.
const MAX_RETRY_AFTER: u64 = WINDOW_SECS + 1;

/// Tries `login` with a wrong password `n` times from `browser`, expecting a 401 each.
async fn fail_logins(browser: &Browser, login: &str, n: usize) {
    for _ in 0..n {
        assert_error(
            browser.login(login, WRONG).await,
            StatusCode::UNAUTHORIZED,
            Some("Invalid credentials!"),
        )
        .await;
    }
}

async fn assert_logs_in_with(browser: &Browser, login: &str, password: &str) {
    assert_eq!(
        browser.login(login, password).await.status(),
        StatusCode::OK,
        "{login} logs in"
    );
}

async fn assert_logs_in(browser: &Browser, login: &str) {
    assert_eq!(
        browser.login(login, PASSWORD).await.status(),
        StatusCode::OK,
        "{login} logs in with the right password"
    );
}

/// Asserts a throttled login, with a `Retry-After` within the window.
async fn assert_login_throttled(response: Response) {
    let retry_after = assert_throttled(response).await;
    assert!(retry_after <= MAX_RETRY_AFTER, "Retry-After: {retry_after}");
}

pub(crate) async fn the_sixth_wrong_password_is_429_and_so_is_the_right_one_then(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_user(ADA).await;
    // One account, however its email is spelt.
    fail_logins(&app, ADA, 3).await;
    fail_logins(&app, "ADA@example.COM", 2).await;

    assert_login_throttled(app.login(ADA, WRONG).await).await;
    let right = app.login(ADA, PASSWORD).await;
    assert!(header_text(&right, "set-cookie").is_none(), "no cookie");
    assert_login_throttled(right).await;
    assert_login_throttled(app.login("Ada@Example.com", PASSWORD).await).await;
    assert_eq!(app.get("/profile").await.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// How long `request` takes to answer, and its status.
async fn timed(request: impl std::future::Future<Output = Response>) -> (StatusCode, Duration) {
    let start = Instant::now();
    let status = request.await.status();
    (status, start.elapsed())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// With a hash that costs tens of milliseconds, a refused attempt answers in a fraction
/// of the time a wrong password takes: it computed no hash.
pub(crate) async fn a_throttled_attempt_skips_the_hash(backend: Backend) {
    let costly_hash = [("ARGON2_MEMORY_KIB", "65536"), ("ARGON2_ITERATIONS", "2")];
    let app = TestApp::spawn_with(backend, Options::with(&costly_hash)).await;
    app.register_user(ADA).await;

    let mut hashed = Vec::new();
    for _ in 0..5 {
        let (status, took) = timed(app.login(ADA, WRONG)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        hashed.push(took);
    }
    let mut refused = Vec::new();
    for password in [WRONG, PASSWORD, WRONG, PASSWORD, WRONG] {
        let (status, took) = timed(app.login(ADA, password)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        refused.push(took);
    }
    let (hashed, refused) = (median(hashed), median(refused));
    assert!(
        refused * 2 < hashed,
        "a throttled attempt took {refused:?} (median), a checked one {hashed:?}"
    );
    app.stop().await;
}

pub(crate) async fn a_second_address_is_unaffected(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options::with(&[TRUST_LOCALHOST])).await;
    app.register_user(ADA).await;
    let first = app.browser_behind_proxy("198.51.100.1");
    fail_logins(&first, ADA, 5).await;
    assert_login_throttled(first.login(ADA, PASSWORD).await).await;
    // An entry the client wrote itself, left of the one our proxy appended, changes
    // nothing: the address is the rightmost untrusted entry.
    let spoofing = app.browser_behind_proxy("203.0.113.66, 198.51.100.1");
    assert_login_throttled(spoofing.login(ADA, PASSWORD).await).await;

    let second = app.browser_behind_proxy("198.51.100.2");
    fail_logins(&second, ADA, 1).await;
    assert_logs_in(&second, ADA).await;
    // The proxy's own address (a request without the header) is a third one.
    assert_logs_in(&app, ADA).await;
    app.stop().await;
}

/// Without `TRUSTED_PROXIES`, a client cannot pick its address by sending the header.
pub(crate) async fn x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.register_user(ADA).await;
    fail_logins(&app.browser_behind_proxy("198.51.100.1"), ADA, 5).await;
    let elsewhere = app.browser_behind_proxy("198.51.100.2");
    assert_login_throttled(elsewhere.login(ADA, PASSWORD).await).await;
    app.stop().await;
}

/// Asserts the device cookie that a successful login sets: signed (not the bare account),
/// HttpOnly, sent to the login route only, kept for months.
fn assert_device_cookie(login: &Response) {
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("device="))
        .unwrap_or_else(|| panic!("a successful login sets the device cookie"))
        .to_owned();
    assert_eq!(cookie_attribute(&cookie, "httponly").as_deref(), Some(""));
    assert_eq!(
        cookie_attribute(&cookie, "path").as_deref(),
        Some("/v1/auth/login"),
        "{cookie}"
    );
    let max_age = cookie_attribute(&cookie, "max-age")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("a long-lived cookie: {cookie}"));
    assert!(max_age >= 30 * 24 * 3600, "{cookie}");
}

/// Three failures for the account from three addresses throttle it for every client
/// that never logged in to it, including a fresh browser at the owner's own address;
/// the owner's browser, holding the device cookie, still gets in.
pub(crate) async fn the_per_account_limit_spares_a_browser_holding_the_device_cookie(
    backend: Backend,
) {
    let options = Options::with(&[
        TRUST_LOCALHOST,
        ("LOGIN_FAILURES_PER_ACCOUNT", "3"),
        ("LOGIN_FAILURES_PER_CLIENT", "5"),
    ]);
    let app = TestApp::spawn_with(backend, options).await;
    let home = "203.0.113.10";
    let owner = app.browser_behind_proxy(home);
    owner.register_user(ADA).await;
    let login = owner.login(ADA, PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    assert_device_cookie(&login);
    assert_eq!(owner.logout().await.status(), StatusCode::OK);
    assert!(
        owner.cookie_sent_to("/v1/auth/login", "device").is_some(),
        "the device cookie outlives the session"
    );
    assert!(owner.cookie_sent_to("/profile", "device").is_none());

    for i in 1..=3 {
        fail_logins(
            &app.browser_behind_proxy(&format!("198.51.100.{i}")),
            ADA,
            1,
        )
        .await;
    }
    let newcomer = app.browser_behind_proxy("198.51.100.99");
    assert_login_throttled(newcomer.login(ADA, PASSWORD).await).await;
    let same_address_no_cookie = app.browser_behind_proxy(home);
    assert_login_throttled(same_address_no_cookie.login(ADA, PASSWORD).await).await;

    assert_logs_in(&owner, ADA).await;
    // Still under the per-client limit, like anyone.
    fail_logins(&owner, ADA, 5).await;
    assert_login_throttled(owner.login(ADA, PASSWORD).await).await;
    app.stop().await;
}

pub(crate) async fn two_instances_share_the_counts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let beside = app.spawn_beside(Options::default()).await;
    app.register_user(ADA).await;
    fail_logins(&app, ADA, 3).await;
    fail_logins(&beside, ADA, 2).await;
    assert_login_throttled(beside.login(ADA, PASSWORD).await).await;
    assert_login_throttled(app.login(ADA, PASSWORD).await).await;
    beside.stop().await;
    app.stop().await;
}

/// Seven wrong passwords for `login` from a new browser: each answer's status, body, and
/// whether it said when to retry.
async fn seven_wrong_passwords(app: &TestApp, login: &str) -> Vec<(StatusCode, bool, Value)> {
    let browser = app.browser(None);
    let mut answers = Vec::new();
    for _ in 0..7 {
        let response = browser.login(login, WRONG).await;
        let status = response.status();
        let retry_after = header_text(&response, "retry-after").is_some();
        let body = response.json().await.expect("a JSON body");
        answers.push((status, retry_after, body));
    }
    answers
}

pub(crate) async fn an_unknown_email_is_throttled_exactly_like_a_known_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_user(ADA).await;
    let known = seven_wrong_passwords(&app, ADA).await;
    let unknown = seven_wrong_passwords(&app, "nobody@example.com").await;
    let statuses: Vec<StatusCode> = known.iter().map(|(status, ..)| *status).collect();
    assert_eq!(
        statuses,
        [
            [StatusCode::UNAUTHORIZED; 5].as_slice(),
            &[StatusCode::TOO_MANY_REQUESTS; 2]
        ]
        .concat()
    );
    assert_eq!(known, unknown);
    app.stop().await;
}

pub(crate) async fn a_success_resets_the_count_of_its_client(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_user(ADA).await;
    fail_logins(&app, ADA, 4).await;
    assert_logs_in(&app, ADA).await;
    fail_logins(&app, ADA, 5).await;
    assert_login_throttled(app.login(ADA, PASSWORD).await).await;
    app.stop().await;
}

/// A wrong current password when changing the password or deleting the account counts
/// as a failed login: a stolen session cannot be used to guess the password.
pub(crate) async fn a_wrong_current_password_counts_as_a_failed_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_and_login(ADA).await;
    let change = json!({"current_password": WRONG, "new_password": "copper-lantern-meadow"});
    for _ in 0..3 {
        let refused = app.post_json("/v1/auth/password", &change).await;
        assert_field_error(refused, "current_password").await;
    }
    let deletion = json!({"password": WRONG});
    for _ in 0..2 {
        let refused = app
            .send(Method::DELETE, "/v1/auth/account", Some(&deletion))
            .await;
        assert_field_error(refused, "password").await;
    }
    assert_login_throttled(app.browser(None).login(ADA, PASSWORD).await).await;
    let right = json!({"current_password": PASSWORD, "new_password": "copper-lantern-meadow"});
    assert_login_throttled(app.post_json("/v1/auth/password", &right).await).await;
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK);
    app.stop().await;
}

/// A stolen cookie does not give unlimited guesses at the current password: the checks of
/// a password change and an account deletion are limited per account, with no device
/// exemption, however many addresses they come from (#19). With the per-client and
/// per-address limits off, the sixth wrong guess is 429, and so is the right one then.
pub(crate) async fn guesses_inside_a_session_are_limited_per_account(backend: Backend) {
    let options = Options::with(&[
        TRUST_LOCALHOST,
        ("LOGIN_FAILURES_PER_CLIENT", "0"),
        ("LOGIN_FAILURES_PER_ADDRESS", "0"),
        ("LOGIN_FAILURES_PER_ACCOUNT", "5"),
    ]);
    let app = TestApp::spawn_with(backend, options).await;
    app.register_and_login(ADA).await;
    let change = json!({"current_password": WRONG, "new_password": "copper-lantern-meadow"});
    let deletion = json!({"password": WRONG});
    for i in 0..5 {
        let address = format!("198.51.100.{}", i + 1);
        let forwarded = [("x-forwarded-for", address.as_str())];
        let refused = if i % 2 == 0 {
            app.send_with_headers(Method::POST, "/v1/auth/password", &forwarded, Some(&change))
                .await
        } else {
            app.send_with_headers(
                Method::DELETE,
                "/v1/auth/account",
                &forwarded,
                Some(&deletion),
            )
            .await
        };
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "guess {i}");
    }
    let forwarded = [("x-forwarded-for", "203.0.113.9")];
    let sixth = app
        .send_with_headers(Method::POST, "/v1/auth/password", &forwarded, Some(&change))
        .await;
    let retry_after = assert_throttled(sixth).await;
    assert!(retry_after <= MAX_RETRY_AFTER, "Retry-After: {retry_after}");
    let right = json!({"current_password": PASSWORD, "new_password": "copper-lantern-meadow"});
    assert_throttled(app.post_json("/v1/auth/password", &right).await).await;
    let deleted = app
        .send(
            Method::DELETE,
            "/v1/auth/account",
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_throttled(deleted).await;
    // The session itself goes on: the limit guards the password, not the cookie.
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK);
    app.stop().await;
}

/// Addresses of one IPv6 /64 are one client: they share the per-client and registration
/// budgets, however many of its 2^64 addresses they come from; another /64 has its own
/// (#19).
pub(crate) async fn one_ipv6_64_shares_a_budget_and_two_do_not(backend: Backend) {
    let options = Options::with(&[TRUST_LOCALHOST, ("REGISTRATIONS_PER_ADDRESS", "2")]);
    let app = TestApp::spawn_with(backend, options).await;
    let block = |host: u32| app.browser_behind_proxy(&format!("2001:db8:1:1::{host:x}"));
    block(1).register_user(ADA).await;
    block(2).register_user("grace@example.com").await;
    let third = block(0xffff)
        .register("hedy@example.com", PASSWORD, None)
        .await;
    assert_throttled(third).await;
    let elsewhere = app.browser_behind_proxy("2001:db8:1:2::1");
    elsewhere.register_user("hedy@example.com").await;

    for host in 1..=5 {
        fail_logins(&block(0x100 + host), ADA, 1).await;
    }
    assert_login_throttled(block(0x200).login(ADA, PASSWORD).await).await;
    // Another /64 is another client: its first wrong password is an ordinary 401.
    fail_logins(&elsewhere, ADA, 1).await;
    assert_logs_in(&app.browser_behind_proxy("2001:db8:1:3::1"), ADA).await;
    app.stop().await;
}

pub(crate) async fn registrations_per_address_are_limited(backend: Backend) {
    let options = Options::with(&[TRUST_LOCALHOST, ("REGISTRATIONS_PER_ADDRESS", "2")]);
    let app = TestApp::spawn_with(backend, options).await;
    let first = app.browser_behind_proxy("198.51.100.1");
    first.register_user("one@example.com").await;
    first.register_user("two@example.com").await;
    let third = first.register("three@example.com", PASSWORD, None).await;
    let retry_after = assert_throttled(third).await;
    assert!(retry_after <= 3601, "Retry-After: {retry_after}");

    let second = app.browser_behind_proxy("198.51.100.2");
    second.register_user("three@example.com").await;
    app.stop().await;
}

/// How many of `answers` have each status; every one must be `ok` or 429.
fn tally(answers: &[StatusCode], ok: StatusCode) -> usize {
    for status in answers {
        assert!(
            *status == ok || *status == StatusCode::TOO_MANY_REQUESTS,
            "every answer is {ok} or 429: {answers:?}"
        );
    }
    answers.iter().filter(|status| **status == ok).count()
}

/// Sixty wrong passwords for one account from one address, all at once and half on each
/// of two instances, check at most five passwords (#19): the attempt is counted before its
/// hash, not after. Then `Retry-After` is exactly when the next attempt goes through.
pub(crate) async fn concurrent_wrong_passwords_on_two_instances_stay_within_the_limit(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let beside = app.spawn_beside(Options::default()).await;
    app.register_user(ADA).await;
    let guesses = (0..60).map(|i| {
        let instance = if i % 2 == 0 { &app } else { &beside };
        async move { instance.login(ADA, WRONG).await.status() }
    });
    let answers = futures::future::join_all(guesses).await;
    let checked = tally(&answers, StatusCode::UNAUTHORIZED);
    assert!(checked <= 5, "{checked} passwords checked: {answers:?}");

    // Concurrent attempts may refuse each other; one at a time, the budget left is used
    // up, and then the wait is exact (the clock stands still while it is not advanced).
    for _ in checked..5 {
        assert_eq!(
            app.login(ADA, WRONG).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let retry_after = assert_throttled(beside.login(ADA, PASSWORD).await).await;
    assert!(retry_after <= MAX_RETRY_AFTER, "Retry-After: {retry_after}");
    app.advance(Duration::from_secs(retry_after - 1));
    assert_throttled(app.login(ADA, PASSWORD).await).await;
    app.advance(Duration::from_secs(1));
    assert_logs_in(&beside, ADA).await;
    beside.stop().await;
    app.stop().await;
}

/// Registrations from one address, all at once on two instances, stay within their limit
/// (#19).
pub(crate) async fn concurrent_registrations_on_two_instances_stay_within_the_limit(
    backend: Backend,
) {
    let options = Options::with(&[TRUST_LOCALHOST, ("REGISTRATIONS_PER_ADDRESS", "3")]);
    let app = TestApp::spawn_with(backend, options.clone()).await;
    let beside = app.spawn_beside(options).await;
    let registrations = (0..30).map(|i| {
        let instance = if i % 2 == 0 { &app } else { &beside };
        async move {
            let browser = instance.browser_behind_proxy("198.51.100.9");
            browser
                .register(&format!("user{i}@example.com"), PASSWORD, None)
                .await
                .status()
        }
    });
    let answers = futures::future::join_all(registrations).await;
    let created = tally(&answers, StatusCode::CREATED);
    assert!(created <= 3, "{created} registered: {answers:?}");
    beside.stop().await;
    app.stop().await;
}

/// Wrong current passwords sent at once from one session check at most the per-client
/// limit of them (#19): the rest are 429, and the owner's password is unchanged.
pub(crate) async fn concurrent_guesses_inside_a_session_stay_within_the_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_and_login(ADA).await;
    let change = json!({"current_password": WRONG, "new_password": "copper-lantern-meadow"});
    let guesses =
        (0..30).map(|_| async { app.post_json("/v1/auth/password", &change).await.status() });
    let answers = futures::future::join_all(guesses).await;
    let checked = tally(&answers, StatusCode::BAD_REQUEST);
    assert!(checked <= 5, "{checked} passwords checked: {answers:?}");
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK);
    app.stop().await;
}

/// Fails the login of `login` from three addresses, which throttles it for clients
/// without its device cookie when `LOGIN_FAILURES_PER_ACCOUNT` is 3.
async fn lock_the_account(app: &TestApp, login: &str) {
    for i in 1..=3 {
        fail_logins(
            &app.browser_behind_proxy(&format!("198.51.100.{i}")),
            login,
            1,
        )
        .await;
    }
}

/// The device cookie names the user and their password, not the name typed (#19): once
/// the account is deleted and someone registers the same email and username, the old
/// cookie exempts its holder from nothing; and after a password change, the owner's old
/// cookie is spent too, until their next login issues a new one.
pub(crate) async fn a_device_cookie_dies_with_its_account_and_its_password(backend: Backend) {
    let options = Options::with(&[
        TRUST_LOCALHOST,
        ("LOGIN_FAILURES_PER_ACCOUNT", "3"),
        ("LOGIN_FAILURES_PER_CLIENT", "5"),
    ]);
    let app = TestApp::spawn_with(backend, options).await;
    let holder = app.browser_behind_proxy("203.0.113.10");
    let registered = holder.register(ADA, PASSWORD, Some("bob")).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    assert_logs_in(&holder, "bob").await;
    let deleted = holder
        .send(
            Method::DELETE,
            "/v1/auth/account",
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(holder.cookie_sent_to("/v1/auth/login", "device").is_some());

    let newcomer = app.browser_behind_proxy("203.0.113.20");
    let taken_again = newcomer.register(ADA, PASSWORD, Some("bob")).await;
    assert_eq!(taken_again.status(), StatusCode::CREATED);
    let laptop = app.browser_behind_proxy("203.0.113.21");
    assert_logs_in(&laptop, "bob").await;
    // A password change spends every cookie issued under the old password (the laptop's);
    // the next login issues one under the new password.
    let new_password = "copper-lantern-meadow";
    assert_logs_in(&newcomer, "bob").await;
    let change = json!({"current_password": PASSWORD, "new_password": new_password});
    let changed = newcomer.post_json("/v1/auth/password", &change).await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(newcomer.logout().await.status(), StatusCode::OK);
    assert_logs_in_with(&newcomer, "bob", new_password).await;

    // Counted per name typed: both names of the account.
    lock_the_account(&app, "bob").await;
    lock_the_account(&app, ADA).await;
    assert_login_throttled(holder.login("bob", new_password).await).await;
    assert_login_throttled(holder.login(ADA, new_password).await).await;
    assert_login_throttled(laptop.login("bob", new_password).await).await;
    assert_logs_in_with(&newcomer, "bob", new_password).await;
    app.stop().await;
}

/// An attempt that cannot be counted is not waved through (#19): with the failures' table
/// gone from under the service, a wrong and a right password both get 503 with
/// `Retry-After`, never 401 (a guess checked uncounted) or 200; once the table is back,
/// logins work again. SQL only: a MongoDB collection comes back at the first insert.
pub(crate) async fn an_attempt_that_cannot_be_counted_is_503(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_user(ADA).await;
    let db = sea_orm::Database::connect(app.database_url())
        .await
        .expect("the test's database");
    let rename = |from: &str, to: &str| format!("ALTER TABLE {from} RENAME TO {to}");
    sea_orm::ConnectionTrait::execute_unprepared(&db, &rename("login_failures", "failures_away"))
        .await
        .expect("renamed");
    for password in [WRONG, PASSWORD] {
        let refused = app.login(ADA, password).await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(header_text(&refused, "retry-after").is_some());
        assert!(header_text(&refused, "set-cookie").is_none());
    }
    sea_orm::ConnectionTrait::execute_unprepared(&db, &rename("failures_away", "login_failures"))
        .await
        .expect("renamed back");
    assert_logs_in(&app, ADA).await;
    db.close().await.expect("closed");
    app.stop().await;
}
