//! Metrics and request ids (#10): Prometheus text on the `METRICS_ADDR` listener only,
//! labelled by route template; an `X-Request-Id` kept when well formed, made up
//! otherwise, and returned on every answer.

use auth_testkit::Backend;
use reqwest::{Method, StatusCode};

use crate::helpers::{header_text, Options, TestApp, PASSWORD};

/// An address with a port free now, for `METRICS_ADDR`.
pub(crate) fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound").to_string()
}

/// The metrics page, as text.
pub(crate) async fn scrape(address: &str) -> String {
    let response = reqwest::get(format!("http://{address}/metrics"))
        .await
        .expect("the metrics listener answers");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = header_text(&response, "content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.expect("text")
}

/// The sum of the samples of `name` whose labels include every one of `labels`
/// (`key="value"`); 0 when there is none.
pub(crate) fn sample(page: &str, name: &str, labels: &[&str]) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name && labels.iter().all(|label| rest.contains(label))
        })
        .map(|(_, value)| value.parse::<f64>().expect("a number"))
        .sum()
}

pub(crate) async fn metrics_are_served_apart_and_a_login_moves_the_login_counter(backend: Backend) {
    let metrics = free_address();
    let app = TestApp::spawn_with(backend, Options::with(&[("METRICS_ADDR", &metrics)])).await;
    // Not on the API's own listener.
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);

    let before = scrape(&metrics).await;
    let succeeded = &[r#"outcome="succeeded""#][..];
    app.register_and_login("ada@example.com").await;
    let wrong = app.login("ada@example.com", "not-the-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/no/such/path/4f1c2e").await.status(),
        StatusCode::NOT_FOUND
    );
    let after = scrape(&metrics).await;

    for (name, labels) in [
        ("auth_logins_total", succeeded),
        ("auth_logins_total", &[r#"outcome="failed""#][..]),
        ("auth_registrations_total", succeeded),
        (
            "http_requests_total",
            &[
                r#"method="POST""#,
                r#"route="/v1/auth/login""#,
                r#"status="200""#,
            ][..],
        ),
        (
            "http_request_duration_seconds_count",
            &[r#"method="POST""#, r#"route="/v1/auth/login""#][..],
        ),
        (
            "http_requests_total",
            &[r#"route="unmatched""#, r#"status="404""#][..],
        ),
    ] {
        let (was, is) = (sample(&before, name, labels), sample(&after, name, labels));
        assert!(
            is >= was + 1.0,
            "{name}{labels:?}: {was} then {is}\n{after}"
        );
    }
    // Routes by template only: a raw path never becomes a label.
    assert!(!after.contains("4f1c2e"), "{after}");
    assert!(
        after.contains("http_request_duration_seconds_bucket{"),
        "a histogram with buckets\n{after}"
    );
    // The hasher's queue, recorded by the domain.
    for name in ["password_hash_wait_seconds", "password_hash_in_flight"] {
        assert!(
            after.lines().any(|line| line.starts_with(name)),
            "{name}\n{after}"
        );
    }
    app.stop().await;
}

pub(crate) async fn a_request_id_is_kept_when_well_formed_and_made_up_otherwise(backend: Backend) {
    // Kept only from a trusted proxy (#19): every test request comes from 127.0.0.1.
    let untrusted = TestApp::spawn(backend).await;
    let response = untrusted
        .send_with_headers(Method::GET, "/", &[("x-request-id", "trace-Me_1.2")], None)
        .await;
    let made_up = header_text(&response, "x-request-id").expect("a request id");
    assert_ne!(made_up, "trace-Me_1.2", "a client's id is not kept");
    untrusted.stop().await;
    let app =
        TestApp::spawn_with(backend, Options::with(&[("TRUSTED_PROXIES", "127.0.0.1")])).await;
    let id_of = |response: &reqwest::Response| {
        header_text(response, "x-request-id").expect("every answer has a request id")
    };
    let well_formed = "trace-Me_1.2";
    let longest = "x".repeat(64);
    for id in [well_formed, longest.as_str()] {
        for path in ["/", "/profile", "/nope", "/healthz"] {
            let response = app
                .send_with_headers(Method::GET, path, &[("x-request-id", id)], None)
                .await;
            assert_eq!(id_of(&response), id, "{path}");
        }
    }
    // A login refused as cross-origin is answered before routing, and still carries it.
    let response = app
        .send_with_headers(
            Method::POST,
            "/v1/auth/login",
            &[
                ("x-request-id", well_formed),
                ("origin", "https://evil.example"),
            ],
            Some(&serde_json::json!({"email_or_username": "a", "password": PASSWORD})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(id_of(&response), well_formed);

    let too_long = "x".repeat(65);
    let mut seen = Vec::new();
    for bad in ["has space", "quote\"", too_long.as_str(), ""] {
        let response = app
            .send_with_headers(Method::GET, "/", &[("x-request-id", bad)], None)
            .await;
        let id = id_of(&response);
        assert_ne!(id, bad);
        assert!(
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "{id}"
        );
        seen.push(id);
    }
    let fresh = id_of(&app.get("/").await);
    seen.push(fresh);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "each request gets its own id");
    app.stop().await;
}

/// A login that sets a `Secure` cookie over plain http is counted (#22): an http page of
/// another host, or a trusted proxy saying `X-Forwarded-Proto: http`. https and loopback
/// pages are not. (An untrusted peer's `X-Forwarded-Proto` is left to the unit tests: a
/// second app in this process could not install its own metrics recorder.)
pub(crate) async fn logins_setting_a_secure_cookie_over_plain_http_are_counted(backend: Backend) {
    let metrics = free_address();
    let options = Options {
        secure_cookie: true,
        ..Options::with(&[
            ("METRICS_ADDR", &metrics),
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ])
    };
    let app = TestApp::spawn_with(backend, options).await;
    app.register_user("ada@example.com").await;
    let same_origin = ("sec-fetch-site", "same-origin");
    for fine in [
        &[][..],
        &[("origin", "https://app.example.test"), same_origin],
        &[("origin", "http://localhost:8080"), same_origin],
        &[("x-forwarded-proto", "https")],
    ] {
        log_in_with(&app, fine).await;
    }
    let counted = |page: &str| sample(page, "auth_secure_cookie_over_http_total", &[]);
    assert_eq!(counted(&scrape(&metrics).await), 0.0);

    for over_http in [
        &[("origin", "http://app.example.test"), same_origin][..],
        &[("referer", "http://app.example.test/login")],
        &[("x-forwarded-proto", "http")],
    ] {
        log_in_with(&app, over_http).await;
    }
    assert_eq!(counted(&scrape(&metrics).await), 3.0);
    app.stop().await;
}

/// Logs ada in with these headers, expecting a 200.
async fn log_in_with(app: &TestApp, headers: &[(&str, &str)]) {
    let body = serde_json::json!({"email_or_username": "ada@example.com", "password": PASSWORD});
    let response = app
        .send_with_headers(Method::POST, "/v1/auth/login", headers, Some(&body))
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{headers:?}");
}
