//! A release-like configuration (a `Secure` session cookie) reached over plain http: the
//! login works, the browser will drop the cookie, and the service says so once per
//! process. A test binary of its own: the warning is once per process, and the captured
//! log is the process's global subscriber.

#[allow(dead_code, reason = "this binary uses a part of the shared support")]
mod support;

use auth_testkit::logs::CapturedLogs;
use axum::body::Body;
use http::{
    header::{CONTENT_TYPE, ORIGIN, REFERER},
    Request, StatusCode,
};
use serde_json::json;
use support::{Options, TestApp, PASSWORD};

const EMAIL: &str = "ada@example.com";

async fn login_from(app: &TestApp, headers: &[(http::HeaderName, &str)]) -> StatusCode {
    let mut request = Request::post("/v1/auth/login")
        .header(CONTENT_TYPE, "application/json")
        // Past the cross-origin refusal: the page is the API's own site.
        .header("sec-fetch-site", "same-origin");
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let body = json!({"email_or_username": EMAIL, "password": PASSWORD}).to_string();
    app.send(request.body(Body::from(body)).expect("a valid request"))
        .await
        .status
}

fn warnings(logs: &CapturedLogs) -> usize {
    logs.text().matches("SESSION_COOKIE_SECURE=false").count()
}

#[tokio::test]
async fn a_login_over_plain_http_with_a_secure_cookie_warns_once_per_process() {
    let logs = CapturedLogs::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish(),
    )
    .expect("the only subscriber of this test binary");

    let plain = TestApp::with(Options::default());
    plain.register_user(EMAIL).await;
    let over_http = [(ORIGIN, "http://app.example.test")];
    assert_eq!(login_from(&plain, &over_http).await, StatusCode::OK);
    assert_eq!(warnings(&logs), 0, "no Secure cookie, nothing to warn of");

    let secure = TestApp::with(Options {
        secure_cookie: true,
        ..Options::default()
    });
    secure.register_user(EMAIL).await;
    for fine in [
        &[][..],
        &[(ORIGIN, "https://app.example.test")],
        &[(ORIGIN, "http://localhost:3000")],
        &[(REFERER, "http://127.0.0.1:8000/login")],
    ] {
        assert_eq!(login_from(&secure, fine).await, StatusCode::OK);
    }
    assert_eq!(warnings(&logs), 0, "https and loopback keep Secure cookies");

    for _ in 0..2 {
        assert_eq!(login_from(&secure, &over_http).await, StatusCode::OK);
    }
    let referer = [(REFERER, "http://app.example.test/login")];
    assert_eq!(login_from(&secure, &referer).await, StatusCode::OK);
    assert_eq!(warnings(&logs), 1, "once per process:\n{}", logs.text());
    assert!(logs.text().contains("SESSION_COOKIE_SECURE"));
}
