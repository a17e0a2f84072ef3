//! Malformed requests of every kind: each gets a clear 4xx JSON error, never a 500, and
//! the error never repeats what was sent.

use auth_testkit::Backend;
use reqwest::{header, StatusCode};
use serde_json::json;

use crate::helpers::{assert_error, TestApp, PASSWORD};

/// A value no error message may contain.
const CANARY: &str = "8675309";

pub(crate) async fn each_bad_body_gets_its_status_and_never_echoes_the_value(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let json = "application/json";
    let cases: Vec<(&str, Option<&str>, String, StatusCode)> = vec![
        // Not JSON at all.
        (
            "/v1/auth/register",
            Some("text/plain"),
            json!({"email": "a@example.com", "password": CANARY}).to_string(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "/v1/auth/login",
            None,
            format!("email_or_username=a&password={CANARY}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "/v1/auth/login",
            Some("application/x-www-form-urlencoded"),
            format!("email_or_username=a&password={CANARY}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        // Malformed JSON.
        (
            "/v1/auth/register",
            Some(json),
            format!("{{\"email\": \"a@example.com\", \"password\": {CANARY}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/auth/login",
            Some(json),
            String::new(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/auth/login",
            Some(json),
            format!("{{\"password\": \"{CANARY}\"}} trailing"),
            StatusCode::BAD_REQUEST,
        ),
        // Well-formed, but not what was asked for.
        (
            "/v1/auth/register",
            Some(json),
            json!({"email": "a@example.com"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/auth/register",
            Some(json),
            json!({"password": CANARY}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/auth/register",
            Some(json),
            json!({"email": "a@example.com", "password": 8_675_309}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/auth/register",
            Some(json),
            json!({"email": "a@example.com", "password": null}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/auth/register",
            Some(json),
            json!({"email": "a@example.com", "password": PASSWORD, "username": 8_675_309})
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/auth/register",
            Some(json),
            json!(["a@example.com", CANARY]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/auth/register",
            Some(json),
            json!(CANARY).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/auth/login",
            Some(json),
            json!({"email_or_username": "a@example.com"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/auth/login",
            Some(json),
            json!({"email_or_username": {"$ne": null}, "password": {"$ne": CANARY}}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v1/auth/login",
            Some(json),
            json!({"email_or_username": ["a"], "password": CANARY}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (path, content_type, body, status) in cases {
        let mut request = app.client.post(app.url(path)).body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = request.send().await.expect("sent");
        let error = assert_error(response, status, None).await;
        assert!(
            !error.to_string().contains(CANARY),
            "{path} {body:?} echoed the value: {error}"
        );
    }
    app.stop().await;
}

pub(crate) async fn control_characters_never_cause_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for email in [
        "ada\u{0}@example.com",
        "ada@exa\u{0}mple.com",
        "ada\u{7}@example.com",
    ] {
        assert_error(
            app.register(email, PASSWORD, None).await,
            StatusCode::BAD_REQUEST,
            None,
        )
        .await;
        assert_error(
            app.login(email, PASSWORD).await,
            StatusCode::UNAUTHORIZED,
            None,
        )
        .await;
    }
    let nul_username = app
        .register("ada@example.com", PASSWORD, Some("ada\u{0}l"))
        .await;
    assert_error(nul_username, StatusCode::BAD_REQUEST, None).await;
    assert_error(
        app.login("ada\u{0}l", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;

    // A password may hold any character; it is only ever hashed.
    let odd_password = "tab\there-nul\u{0}-bell\u{7}-ok";
    assert_eq!(
        app.register("grace@example.com", odd_password, None)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.login("grace@example.com", odd_password).await.status(),
        StatusCode::OK
    );
    app.stop().await;
}

pub(crate) async fn an_oversized_body_is_413_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"email": "a@example.com", "password": "x".repeat(20 * 1024)});
    let response = app.post_json("/v1/auth/register", &body).await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, None).await;
    app.stop().await;
}
