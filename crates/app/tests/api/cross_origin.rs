//! Refusing state-changing requests from other sites (CSRF), the way Go 1.25's
//! `CrossOriginProtection` does, and CORS with credentials for the allowed origins (#9).

use auth_testkit::Backend;
use reqwest::{Method, Response, StatusCode};
use serde_json::json;

use crate::helpers::{
    assert_access_denied, assert_error, header_text, set_cookie, Options, TestApp, PASSWORD,
};

const ADA: &str = "ada@example.com";
const REFUSED: &str = "Cross-origin request refused";
const APP_ORIGIN: &str = "https://app.example.com";
const EVIL_ORIGIN: &str = "https://evil.example";
const ALLOW_ORIGIN: &str = "access-control-allow-origin";

/// A login of Ada with the right password, sent with `headers`.
async fn login_with(app: &TestApp, headers: &[(&str, &str)]) -> Response {
    let body = json!({"email_or_username": ADA, "password": PASSWORD});
    app.send_with_headers(Method::POST, "/v1/auth/login", headers, Some(&body))
        .await
}

/// An anonymous logout sent with `headers`: 401 when it gets past the check.
async fn logout_with(app: &TestApp, headers: &[(&str, &str)]) -> Response {
    app.send_with_headers(Method::POST, "/v1/auth/logout", headers, None)
        .await
}

async fn assert_refused(response: Response, headers: &[(&str, &str)]) {
    assert!(
        header_text(&response, ALLOW_ORIGIN).is_none(),
        "no CORS for {headers:?}"
    );
    assert!(
        set_cookie(&response).is_none(),
        "no session for {headers:?}"
    );
    assert_error(response, StatusCode::FORBIDDEN, Some(REFUSED)).await;
}

pub(crate) async fn state_changing_requests_from_another_site_are_403(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_user(ADA).await;
    let own_origin = format!("http://{}", app.address);
    let refused: [&[(&str, &str)]; 6] = [
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[("sec-fetch-site", "cross-site"), ("origin", &own_origin)],
        &[("origin", EVIL_ORIGIN)],
        &[("origin", "null")],
        // Not allowed in this configuration.
        &[("origin", APP_ORIGIN)],
    ];
    for headers in refused {
        assert_refused(login_with(&app, headers).await, headers).await;
        assert_refused(logout_with(&app, headers).await, headers).await;
        let delete = app
            .send_with_headers(Method::DELETE, "/v1/auth/sessions", headers, None)
            .await;
        assert_refused(delete, headers).await;
    }

    let passing: [&[(&str, &str)]; 5] = [
        &[],
        &[("sec-fetch-site", "same-origin")],
        &[("sec-fetch-site", "none")],
        &[("origin", &own_origin)],
        &[("sec-fetch-site", "same-origin"), ("origin", &own_origin)],
    ];
    for headers in passing {
        assert_access_denied(logout_with(&app, headers).await).await;
    }
    assert_eq!(login_with(&app, passing[3]).await.status(), StatusCode::OK);

    // Reading is never refused.
    let cross_site = [("sec-fetch-site", "cross-site"), ("origin", EVIL_ORIGIN)];
    for (method, path, status) in [
        (Method::GET, "/profile", StatusCode::OK),
        (Method::GET, "/", StatusCode::OK),
        (Method::HEAD, "/", StatusCode::OK),
    ] {
        let response = app
            .send_with_headers(method.clone(), path, &cross_site, None)
            .await;
        assert_eq!(response.status(), status, "{method} {path}");
        assert!(header_text(&response, ALLOW_ORIGIN).is_none());
    }
    app.stop().await;
}

/// Asserts CORS with credentials for `origin`, never a wildcard.
fn assert_cors(response: &Response, origin: &str) {
    assert_eq!(
        header_text(response, ALLOW_ORIGIN).as_deref(),
        Some(origin),
        "{:?}",
        response.headers()
    );
    assert_eq!(
        header_text(response, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
}

/// Asserts no CORS at all: no origin allowed, no credentials header.
fn assert_no_cors(response: &Response) {
    assert!(
        header_text(response, ALLOW_ORIGIN).is_none()
            && header_text(response, "access-control-allow-credentials").is_none(),
        "{:?}",
        response.headers()
    );
}

/// A preflight for a JSON POST to the login route from `origin`.
async fn preflight(app: &TestApp, origin: &str) -> Response {
    let headers = [
        ("origin", origin),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];
    app.send_with_headers(Method::OPTIONS, "/v1/auth/login", &headers, None)
        .await
}

pub(crate) async fn an_allowed_origin_gets_cors_with_credentials_and_no_other_does(
    backend: Backend,
) {
    let options = Options::with(&[("ALLOWED_ORIGINS", APP_ORIGIN)]);
    let app = TestApp::spawn_with(backend, options).await;
    app.register_user(ADA).await;

    let allowed = preflight(&app, APP_ORIGIN).await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_cors(&allowed, APP_ORIGIN);
    let methods = header_text(&allowed, "access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("POST"), "{methods}");
    let headers = header_text(&allowed, "access-control-allow-headers").unwrap_or_default();
    assert!(headers.to_lowercase().contains("content-type"), "{headers}");
    let foreign = preflight(&app, EVIL_ORIGIN).await;
    // Neither header for anyone else: no origin granted, and no credentials advertised.
    assert_no_cors(&foreign);
    for headers in [&[][..], &[("origin", EVIL_ORIGIN)]] {
        let page = app.send_with_headers(Method::GET, "/", headers, None).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_no_cors(&page);
    }

    // A browser on the allowed origin says cross-site, and is let through.
    let from_app = [("origin", APP_ORIGIN), ("sec-fetch-site", "cross-site")];
    let login = login_with(&app, &from_app).await;
    assert_eq!(login.status(), StatusCode::OK);
    assert_cors(&login, APP_ORIGIN);
    let profile = app
        .send_with_headers(Method::GET, "/profile", &from_app, None)
        .await;
    assert_eq!(profile.status(), StatusCode::OK);
    assert_cors(&profile, APP_ORIGIN);
    // So is an older one that sends only the Origin.
    let logout = logout_with(&app, &from_app[..1]).await;
    assert_eq!(logout.status(), StatusCode::OK);
    assert_cors(&logout, APP_ORIGIN);

    for headers in [
        [("origin", EVIL_ORIGIN), ("sec-fetch-site", "cross-site")].as_slice(),
        &[("origin", EVIL_ORIGIN)],
    ] {
        assert_refused(login_with(&app, headers).await, headers).await;
    }
    app.stop().await;
}
