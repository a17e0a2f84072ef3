//! Who the client is behind a proxy (#19): a proxy configuration that tells you when it is
//! wrong, and an `X-Forwarded-For` read on bytes.

use auth_testkit::Backend;
use reqwest::{header::HeaderValue, StatusCode};
use serde_json::json;

use crate::{
    helpers::{Options, TestApp, PASSWORD},
    telemetry::{free_address, sample, scrape},
};

const ADA: &str = "ada@example.com";

/// A byte outside visible ASCII in what the client wrote into `X-Forwarded-For` spoils
/// nothing: the address the trusted proxy appended is still the client's, never the
/// proxy's own.
pub(crate) async fn a_stray_byte_in_x_forwarded_for_never_makes_the_proxy_the_client(
    backend: Backend,
) {
    let app =
        TestApp::spawn_with(backend, Options::with(&[("TRUSTED_PROXIES", "127.0.0.1")])).await;
    app.register_user(ADA).await;
    let forwarded =
        HeaderValue::from_bytes("r\u{e9}seau \u{202E}, 198.51.100.7".as_bytes()).expect("obs-text");
    let login = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({"email_or_username": ADA, "password": PASSWORD}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(login.status(), StatusCode::OK);
    let sessions = app.sessions().await;
    assert_eq!(sessions[0]["ip"], "198.51.100.7", "{sessions:?}");
    app.stop().await;
}

/// Behind a proxy on the same host with `TRUSTED_PROXIES` unset, every client is the
/// proxy: the service says so, and counts each such request.
pub(crate) async fn forwarding_from_loopback_without_trusted_proxies_is_reported(backend: Backend) {
    let metrics = free_address();
    let app = TestApp::spawn_with(backend, Options::with(&[("METRICS_ADDR", &metrics)])).await;
    app.register_user(ADA).await;
    let name = "auth_forwarded_for_ignored_total";
    let before = sample(&scrape(&metrics).await, name, &[]);
    // Any route that learns who the client is: here, logins with a wrong password.
    let wrong = json!({"email_or_username": ADA, "password": "not the password"});
    for _ in 0..3 {
        let answer = app
            .send_with_headers(
                reqwest::Method::POST,
                "/v1/auth/login",
                &[("x-forwarded-for", "198.51.100.7")],
                Some(&wrong),
            )
            .await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    }
    let after = sample(&scrape(&metrics).await, name, &[]);
    assert!(after >= before + 3.0, "{name}: {before} then {after}");
    // The address recorded is the peer's, as configured.
    let forwarded = [("x-forwarded-for", "198.51.100.7")];
    let body = json!({"email_or_username": ADA, "password": PASSWORD});
    let login = app
        .send_with_headers(
            reqwest::Method::POST,
            "/v1/auth/login",
            &forwarded,
            Some(&body),
        )
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(app.sessions().await[0]["ip"], "127.0.0.1");
    app.stop().await;
}
