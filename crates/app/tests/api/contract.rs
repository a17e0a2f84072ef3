//! Each row of the HTTP contract table of DESIGN.md.

use auth_testkit::Backend;
use reqwest::{header, StatusCode};
use serde_json::json;

use crate::helpers::{assert_error, json_body, session_cookie, TestApp, PASSWORD};

/// The Flask recipe's manual test, step by step.
pub(crate) async fn the_recipes_manual_test_passes(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let root = app.get("/").await;
    assert_eq!(root.status(), StatusCode::OK);
    json_body(root).await;

    assert_error(
        app.get("/profile").await,
        StatusCode::UNAUTHORIZED,
        Some("Access denied!"),
    )
    .await;

    let registered = app.register("ada@example.com", PASSWORD, None).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let registered = json_body(registered).await;

    let login = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    assert!(
        session_cookie(&login).is_some(),
        "login sets the session cookie"
    );
    assert_eq!(
        json_body(login).await,
        registered,
        "login answers with the user"
    );

    let profile = app.get("/profile").await;
    assert_eq!(profile.status(), StatusCode::OK);
    let profile = json_body(profile).await;
    assert_eq!(profile, registered);
    assert_eq!(profile["email"], "ada@example.com");

    let logout = app.logout().await;
    assert_eq!(logout.status(), StatusCode::OK);
    json_body(logout).await;

    assert_error(
        app.get("/profile").await,
        StatusCode::UNAUTHORIZED,
        Some("Access denied!"),
    )
    .await;
    app.stop().await;
}

pub(crate) async fn registration_answers_201_with_the_user_and_does_not_log_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.register("  Ada@Example.COM ", PASSWORD, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(
        session_cookie(&response).is_none(),
        "registration must not log in"
    );
    let user = json_body(response).await;
    assert_eq!(
        user["email"], "ada@example.com",
        "the email is stored normalised"
    );
    assert_eq!(
        user["username"], "ada@example.com",
        "the username defaults to the email"
    );
    assert!(
        user["id"].as_str().is_some_and(|id| id.len() == 36),
        "{user}"
    );
    let created_at = user["created_at"].as_str().expect("created_at is a string");
    time::OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339)
        .expect("created_at is RFC 3339");
    let keys: Vec<_> = user
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys.len(),
        5,
        "only id, email, username, created_at, email_verified: {keys:?}"
    );
    assert_eq!(user["email_verified"], false, "nobody followed a link yet");

    assert_eq!(app.get("/profile").await.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

pub(crate) async fn login_accepts_the_username_or_the_email_in_any_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .register("grace@example.com", PASSWORD, Some("Grace_H"))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(json_body(response).await["username"], "grace_h");

    for login in [
        "grace_h",
        "GRACE_H",
        "grace@example.com",
        " Grace@Example.com ",
    ] {
        let response = app.login(login, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "login as {login:?}");
        assert_eq!(json_body(response).await["email"], "grace@example.com");
    }
    app.stop().await;
}

pub(crate) async fn a_taken_email_or_username_is_409(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.register("ada@example.com", PASSWORD, Some("ada_l"))
            .await
            .status(),
        StatusCode::CREATED
    );

    let same_email = app
        .register("ADA@example.com", "another-long-passphrase", Some("other"))
        .await;
    assert_error(
        same_email,
        StatusCode::CONFLICT,
        Some("Email address already occupied!"),
    )
    .await;

    let same_username = app
        .register(
            "lovelace@example.com",
            "another-long-passphrase",
            Some("ADA_L"),
        )
        .await;
    assert_error(
        same_username,
        StatusCode::CONFLICT,
        Some("Username already occupied!"),
    )
    .await;

    // Nothing half-written: the refused user cannot log in.
    let refused = app
        .login("lovelace@example.com", "another-long-passphrase")
        .await;
    assert_error(
        refused,
        StatusCode::UNAUTHORIZED,
        Some("Invalid credentials!"),
    )
    .await;
    app.stop().await;
}

pub(crate) async fn invalid_fields_are_400_with_per_field_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": "ada@example.com", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "ada@example.com", "password": "password1"}),
            "password",
        ),
        (
            json!({"email": "ada@example.com", "password": "ADA@example.com"}),
            "password",
        ),
        (
            json!({"email": "ada@example.com", "password": "x".repeat(129)}),
            "password",
        ),
        (
            json!({"email": "ada@example.com", "password": PASSWORD, "username": "a b"}),
            "username",
        ),
        (
            json!({"email": "ada@example.com", "password": PASSWORD, "username": "bob@example.com"}),
            "username",
        ),
    ];
    for (body, field) in cases {
        let response = app.post_json("/v1/auth/register", &body).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, None).await;
        let messages = error["errors"][field].as_array();
        assert!(
            messages.is_some_and(|m| !m.is_empty()),
            "{field} should be reported for {body}: {error}"
        );
    }
    // None of them was stored.
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

pub(crate) async fn wrong_password_and_unknown_user_get_the_same_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_user("ada@example.com").await;

    let wrong = app.login("ada@example.com", "not-the-password").await;
    assert!(session_cookie(&wrong).is_none());
    let wrong = assert_error(
        wrong,
        StatusCode::UNAUTHORIZED,
        Some("Invalid credentials!"),
    )
    .await;
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    let unknown = assert_error(
        unknown,
        StatusCode::UNAUTHORIZED,
        Some("Invalid credentials!"),
    )
    .await;
    assert_eq!(
        wrong, unknown,
        "an unknown user and a wrong password must be indistinguishable"
    );
    assert_eq!(app.get("/profile").await.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

pub(crate) async fn logout_without_a_session_is_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_error(app.logout().await, StatusCode::UNAUTHORIZED, None).await;
    app.stop().await;
}

pub(crate) async fn unknown_paths_and_wrong_methods_are_404_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/nope", "/v1/auth", "/v1/auth/login/extra", "/profile/"] {
        assert_error(
            app.get(path).await,
            StatusCode::NOT_FOUND,
            Some("Not found"),
        )
        .await;
    }
    let wrong_methods = [
        app.get("/v1/auth/login").await,
        app.get("/v1/auth/register").await,
        app.client
            .delete(app.url("/profile"))
            .send()
            .await
            .expect("sent"),
        app.client.post(app.url("/")).send().await.expect("sent"),
        app.client
            .put(app.url("/v1/auth/logout"))
            .send()
            .await
            .expect("sent"),
    ];
    for response in wrong_methods {
        assert_error(response, StatusCode::NOT_FOUND, Some("Not found")).await;
    }
    app.stop().await;
}

pub(crate) async fn security_headers_are_on_every_response(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let header_of = |response: &reqwest::Response, name: header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_lowercase)
    };
    for response in [
        app.get("/").await,
        app.get("/nope").await,
        app.get("/profile").await,
    ] {
        assert_eq!(
            header_of(&response, header::X_CONTENT_TYPE_OPTIONS).as_deref(),
            Some("nosniff")
        );
    }
    let private = [
        app.get("/profile").await,
        app.register("ada@example.com", PASSWORD, None).await,
        app.login("ada@example.com", PASSWORD).await,
        app.get("/profile").await,
        app.logout().await,
    ];
    for response in private {
        let url = response.url().path().to_owned();
        assert_eq!(
            header_of(&response, header::CACHE_CONTROL).as_deref(),
            Some("no-store"),
            "{url}"
        );
        let vary = header_of(&response, header::VARY).unwrap_or_default();
        assert!(vary.contains("cookie"), "{url}: Vary {vary:?}");
    }
    app.stop().await;
}

pub(crate) async fn concurrent_registrations_of_one_email_give_exactly_one_201(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let app = std::sync::Arc::new(app);
    let attempts = (0..20).map(|i| {
        let app = std::sync::Arc::clone(&app);
        tokio::spawn(async move {
            app.register("race@example.com", PASSWORD, Some(&format!("racer_{i}")))
                .await
                .status()
        })
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("no panic"))
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let app = std::sync::Arc::into_inner(app).expect("every task is done");
    app.stop().await;
}
