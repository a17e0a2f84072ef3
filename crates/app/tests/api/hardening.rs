//! Hardening (#9): a body naming a key twice is refused, and every response forbids
//! being run as a page, framed, or named in a Referer.

use auth_testkit::Backend;
use reqwest::{header, Method, Response, StatusCode};

use crate::helpers::{assert_error, header_text, set_cookie, Options, TestApp, PASSWORD};

const ADA: &str = "ada@example.com";

/// POSTs `body` to `path` as JSON, byte for byte.
async fn post_raw(app: &TestApp, path: &str, body: String) -> Response {
    app.client
        .post(app.url(path))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .expect("request sent")
}

/// Bodies that name a key twice; a parser keeping the last value would log Ada in with
/// the first, and create a user with the second.
fn duplicate_key_bodies() -> [(&'static str, String); 3] {
    [
        (
            "/v1/auth/login",
            format!(
                r#"{{"email_or_username":"{ADA}","password":"wrong-password-1","password":"{PASSWORD}"}}"#
            ),
        ),
        (
            "/v1/auth/login",
            format!(
                r#"{{"email_or_username":"{ADA}","email_or_username":"{ADA}","password":"{PASSWORD}"}}"#
            ),
        ),
        (
            "/v1/auth/register",
            format!(
                r#"{{"email":"one@example.com","password":"{PASSWORD}","email":"two@example.com"}}"#
            ),
        ),
    ]
}

pub(crate) async fn a_duplicate_json_key_is_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_user(ADA).await;
    for (path, body) in duplicate_key_bodies() {
        let response = post_raw(&app, path, body.clone()).await;
        assert!(set_cookie(&response).is_none(), "{body}");
        let error = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, None).await;
        assert!(!error.to_string().contains(PASSWORD), "{error}");
    }
    assert_eq!(app.get("/profile").await.status(), StatusCode::UNAUTHORIZED);
    // Neither email was taken.
    app.register_user("one@example.com").await;
    app.register_user("two@example.com").await;
    app.stop().await;
}

/// Whether `response` carries both headers.
fn hardened(response: &Response) -> bool {
    header_text(response, "content-security-policy").as_deref()
        == Some("default-src 'none'; frame-ancestors 'none'")
        && header_text(response, "referrer-policy").as_deref() == Some("no-referrer")
}

pub(crate) async fn every_response_carries_the_csp_and_referrer_policy(backend: Backend) {
    let origin = "https://app.example.com";
    let app = TestApp::spawn_with(backend, Options::with(&[("ALLOWED_ORIGINS", origin)])).await;
    let preflight = [
        ("origin", origin),
        ("access-control-request-method", "POST"),
    ];
    let mut responses = vec![
        app.get("/").await,
        app.register(ADA, PASSWORD, None).await,
        app.register(ADA, PASSWORD, None).await,
        app.get("/profile").await,
        app.login(ADA, PASSWORD).await,
        app.get("/profile").await,
        app.get("/nope").await,
        app.send(Method::PUT, "/profile", None).await,
        post_raw(&app, "/v1/auth/login", "{".to_owned()).await,
        post_raw(&app, "/v1/auth/login", duplicate_key_bodies()[0].1.clone()).await,
        app.send_with_headers(
            Method::POST,
            "/v1/auth/logout",
            &[("sec-fetch-site", "cross-site")],
            None,
        )
        .await,
        app.send_with_headers(Method::OPTIONS, "/v1/auth/login", &preflight, None)
            .await,
    ];
    for _ in 0..6 {
        responses.push(app.login(ADA, "not-the-password-at-all").await);
    }

    let bare: Vec<String> = responses
        .iter()
        .enumerate()
        .filter(|(_, response)| !hardened(response))
        .map(|(i, r)| format!("#{i}: {} {}", r.status(), r.url().path()))
        .collect();
    assert!(bare.is_empty(), "without the headers: {bare:?}");
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    statuses.dedup();
    assert_eq!(statuses, [200, 201, 400, 401, 403, 404, 409, 422, 429]);
    app.stop().await;
}

/// A User-Agent carrying bidi overrides and zero-width characters is stored and shown
/// without them: the owner's list of sessions and their events show what the text says,
/// not what it was made to look like (#19).
pub(crate) async fn format_characters_never_come_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_user(ADA).await;
    let agent = "Mozilla/5.0 \u{202E}gpj.exe\u{200B}\u{2066} (X11)\u{FEFF}";
    // Sent as the raw UTF-8 bytes a client can put in a header (obs-text).
    let value = header::HeaderValue::from_bytes(agent.as_bytes()).expect("obs-text bytes");
    let login = app
        .client
        .post(app.url("/v1/auth/login"))
        .header(header::USER_AGENT, value)
        .json(&serde_json::json!({"email_or_username": ADA, "password": PASSWORD}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(login.status(), StatusCode::OK);
    let shown = "Mozilla/5.0 gpj.exe (X11)";
    let sessions = app.sessions().await;
    assert_eq!(sessions[0]["user_agent"], shown, "{sessions:?}");
    let events = app
        .get("/v1/auth/events")
        .await
        .text()
        .await
        .expect("a body");
    assert!(events.contains(shown), "{events}");
    for invisible in ['\u{202E}', '\u{200B}', '\u{2066}', '\u{FEFF}'] {
        assert!(!events.contains(invisible), "{events}");
        assert!(
            !serde_json::to_string(&sessions)
                .expect("JSON")
                .contains(invisible),
            "{sessions:?}"
        );
    }
    app.stop().await;
}
