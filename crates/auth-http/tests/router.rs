//! The real `auth_http` router, built as the application builds it, over the in-memory
//! stores: the HTTP contract, sessions and every rejection of the JSON extractor, in
//! process and without a database.

#[allow(dead_code, reason = "this binary uses a part of the shared support")]
mod support;

use std::collections::BTreeSet;

use auth_domain::{PasswordHash, UserId, UserRepository, UserSessions};
use auth_http::BODY_LIMIT_BYTES;
use axum::body::Body;
use http::{
    header::{ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE},
    Method, Request, StatusCode,
};
use serde_json::{json, Value};
use support::{cheap_hashing, Cookie, Options, TestApp, PASSWORD};

/// The routes that read a JSON body.
const JSON_ROUTES: [&str; 2] = ["/v1/auth/register", "/v1/auth/login"];

fn user_id(body: &Value) -> UserId {
    body["id"].as_str().expect("an id").parse().expect("a UUID")
}

fn keys(body: &Value) -> BTreeSet<&str> {
    body.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

// The public routes and the 404s

#[tokio::test]
async fn the_index_is_public_and_stores_no_session() {
    let app = TestApp::new();
    let reply = app.get("/", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body["message"].is_string());
    assert!(reply.set_session_cookie().is_none());
    assert!(app.sessions.is_empty());
}

#[tokio::test]
async fn an_unknown_path_is_a_json_404() {
    let app = TestApp::new();
    for path in ["/nope", "/v1/auth", "/v1/auth/login/extra", "/profile/"] {
        let reply = app.get(path, None).await;
        let body = reply.assert_error(StatusCode::NOT_FOUND, "not_found");
        assert_eq!(body["message"], "Not found", "{path}");
    }
}

#[tokio::test]
async fn a_known_path_with_the_wrong_method_is_a_json_404_without_allow() {
    let app = TestApp::new();
    let cases = [
        (Method::POST, "/"),
        (Method::GET, "/v1/auth/register"),
        (Method::GET, "/v1/auth/login"),
        (Method::GET, "/v1/auth/logout"),
        (Method::DELETE, "/profile"),
        (Method::PUT, "/v1/auth/login"),
    ];
    for (method, path) in cases {
        let reply = app.request(method.clone(), path, None).await;
        let body = reply.assert_error(StatusCode::NOT_FOUND, "not_found");
        assert_eq!(body["message"], "Not found", "{method} {path}");
        assert!(reply.headers.get(ALLOW).is_none(), "{method} {path}");
    }
}

// Registration

#[tokio::test]
async fn a_registration_is_a_201_with_the_user_and_logs_nobody_in() {
    let app = TestApp::new();
    let reply = app
        .register(" Ada@Example.com", PASSWORD, Some("Ada_L"))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(
        keys(&reply.body),
        BTreeSet::from(["id", "email", "username", "created_at", "email_verified"])
    );
    assert_eq!(reply.body["email"], "ada@example.com");
    assert_eq!(reply.body["username"], "ada_l");
    assert!(!reply.text.contains("argon2"), "{}", reply.text);
    assert!(reply.set_session_cookie().is_none());
    assert!(app.sessions.is_empty());
    let stored = app
        .users
        .find_by_id(user_id(&reply.body))
        .await
        .expect("lookup");
    assert!(stored.is_some());
}

#[tokio::test]
async fn a_taken_email_or_username_is_a_409() {
    let app = TestApp::new();
    let first = app
        .register("ada@example.com", PASSWORD, Some("ada_l"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);

    let reply = app
        .register("ADA@example.com", PASSWORD, Some("someone"))
        .await;
    let body = reply.assert_error(StatusCode::CONFLICT, "email_taken");
    assert_eq!(body["message"], "Email address already occupied!");

    let reply = app
        .register("grace@example.com", PASSWORD, Some("Ada_L"))
        .await;
    reply.assert_error(StatusCode::CONFLICT, "username_taken");
    assert_eq!(app.users.len(), 1);
}

#[tokio::test]
async fn invalid_fields_are_a_400_naming_each_field_without_echoing_it() {
    let app = TestApp::new();
    let reply = app
        .register("secret-not-an-address", "secret-pw", Some("secret name!"))
        .await;
    let body = reply.assert_error(StatusCode::BAD_REQUEST, "validation_failed");
    assert!(body["errors"]["email"].is_array(), "{}", reply.text);
    assert!(body["errors"]["username"].is_array(), "{}", reply.text);
    assert!(!reply.text.contains("secret"), "{}", reply.text);

    let reply = app
        .register("ada@example.com", "ada@example.com", None)
        .await;
    let body = reply.assert_error(StatusCode::BAD_REQUEST, "validation_failed");
    assert_eq!(keys(&body["errors"]), BTreeSet::from(["password"]));
    assert!(!reply.text.contains("ada@"), "{}", reply.text);
    assert!(app.users.is_empty());
}

// Login, sessions, logout

#[tokio::test]
async fn a_login_is_a_200_with_the_user_and_a_signed_http_only_session_cookie() {
    let app = TestApp::new();
    let registered = app.register_user("ada@example.com").await;
    let reply = app.login("ADA@example.com", PASSWORD, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body, registered);

    let set_cookie = reply.set_session_cookie().expect("a session cookie");
    let attributes: Vec<_> = set_cookie.split(';').map(str::trim).collect();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attributes.contains(&attribute), "{set_cookie}");
    }
    assert!(!attributes.contains(&"Secure"), "{set_cookie}");
    assert_eq!(reply.headers[CACHE_CONTROL], "no-store");
    assert_eq!(app.sessions.user_session_count(user_id(&registered)), 1);
}

#[tokio::test]
async fn the_cookie_is_secure_when_configured_so() {
    let app = TestApp::with(Options {
        secure_cookie: true,
        ..Options::default()
    });
    app.register_user("ada@example.com").await;
    let reply = app.login("ada@example.com", PASSWORD, None).await;
    let set_cookie = reply.set_session_cookie().expect("a session cookie");
    assert!(
        set_cookie.split(';').any(|a| a.trim() == "Secure"),
        "{set_cookie}"
    );
}

#[tokio::test]
async fn the_profile_is_200_with_the_session_cookie_and_401_without() {
    let app = TestApp::new();
    let registered = app.register_user("ada@example.com").await;

    let anonymous = app.get("/profile", None).await;
    let body = anonymous.assert_error(StatusCode::UNAUTHORIZED, "access_denied");
    assert_eq!(body["message"], "Access denied!");
    assert!(anonymous.set_session_cookie().is_none());

    let cookie = app.log_in("ada@example.com").await;
    let reply = app.get("/profile", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body, registered);
    assert_eq!(reply.headers[CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn an_authenticated_request_early_in_the_session_rewrites_nothing() {
    let app = TestApp::new();
    app.register_user("ada@example.com").await;
    let cookie = app.log_in("ada@example.com").await;
    for _ in 0..3 {
        let reply = app.get("/profile", Some(&cookie)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            reply.set_session_cookie().is_none(),
            "no write before half the lifetime"
        );
    }
}

#[tokio::test]
async fn every_login_issues_a_new_session_id() {
    let app = TestApp::new();
    let ada = user_id(&app.register_user("ada@example.com").await);

    let first = app.log_in("ada@example.com").await;
    let second = app.log_in("ada@example.com").await;
    assert_ne!(first, second, "two logins, two sessions");
    for cookie in [&first, &second] {
        assert_eq!(
            app.get("/profile", Some(cookie)).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(app.sessions.user_session_count(ada), 2);

    // Logging in again on a session that is already logged in moves it to a new id, and
    // the old id is dead: no id outlives a login.
    let reply = app.login("ada@example.com", PASSWORD, Some(&first)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let renewed = reply.session_cookie().expect("a new cookie at login");
    assert_ne!(renewed, first);
    assert_ne!(renewed, second);
    assert_eq!(
        app.get("/profile", Some(&renewed)).await.status,
        StatusCode::OK
    );
    app.get("/profile", Some(&first))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "access_denied");
    assert_eq!(app.sessions.user_session_count(ada), 2);
}

#[tokio::test]
async fn logging_in_as_someone_else_on_a_session_replaces_it() {
    let app = TestApp::new();
    app.register_user("ada@example.com").await;
    let grace = app.register_user("grace@example.com").await;
    let ada_cookie = app.log_in("ada@example.com").await;

    let reply = app
        .login("grace@example.com", PASSWORD, Some(&ada_cookie))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let grace_cookie = reply.session_cookie().expect("a new cookie");
    assert_ne!(grace_cookie, ada_cookie);
    assert_eq!(app.get("/profile", Some(&grace_cookie)).await.body, grace);
    app.get("/profile", Some(&ada_cookie))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "access_denied");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401_and_no_session() {
    let app = TestApp::new();
    app.register_user("ada@example.com").await;
    let wrong = app
        .login("ada@example.com", "velvet-otter-harbouR", None)
        .await;
    let unknown = app.login("grace@example.com", PASSWORD, None).await;
    let nonsense = app.login("neither name nor address!", PASSWORD, None).await;
    for reply in [&wrong, &unknown, &nonsense] {
        let body = reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
        assert_eq!(body["message"], "Invalid credentials!");
        assert!(reply.set_session_cookie().is_none());
        assert!(!reply.text.contains("velvet"), "{}", reply.text);
    }
    assert_eq!(wrong.text, unknown.text);
    assert_eq!(wrong.text, nonsense.text);
    assert!(app.sessions.is_empty());
}

#[tokio::test]
async fn a_forged_or_tampered_cookie_is_a_401() {
    let app = TestApp::new();
    app.register_user("ada@example.com").await;
    let genuine = app.log_in("ada@example.com").await;
    let value = genuine.value();

    let flip = |value: &str, at: usize| {
        let mut bytes = value.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).expect("ASCII")
    };
    // A signed cookie is the base64 HMAC (44 characters) followed by the session id: the
    // cookie crate's format, which tower-sessions uses as it is.
    assert_eq!(
        value.len(),
        44 + 22,
        "a signature and a 128-bit id: {value}"
    );
    let (signature, id) = value.split_at(44);
    let other_key = TestApp::over(
        app.stores.clone(),
        Options {
            key: [0x17; 64],
            ..Options::default()
        },
    );
    let signed_elsewhere = other_key.log_in("ada@example.com").await;
    let forgeries = [
        Cookie::new("AAAAAAAAAAAAAAAAAAAAAA"),
        Cookie::new(&flip(value, value.len() - 1)),
        Cookie::new(&flip(value, 0)),
        Cookie::new(id),
        Cookie::new(signature),
        Cookie::new(""),
        Cookie::new(&"x".repeat(4096)),
    ];
    for forged in &forgeries {
        app.get("/profile", Some(forged))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "access_denied");
    }
    // A genuine session, but its cookie signed with another key.
    assert_eq!(
        other_key
            .get("/profile", Some(&signed_elsewhere))
            .await
            .status,
        StatusCode::OK
    );
    app.get("/profile", Some(&signed_elsewhere))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "access_denied");
    // The genuine cookie still works: nothing above harmed its session.
    assert_eq!(
        app.get("/profile", Some(&genuine)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_deletes_the_session_and_expires_the_cookie() {
    let app = TestApp::new();
    let ada = user_id(&app.register_user("ada@example.com").await);
    let cookie = app.log_in("ada@example.com").await;

    let reply = app.logout(Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.body["message"].is_string());
    let set_cookie = reply.set_session_cookie().expect("the cookie is expired");
    assert!(set_cookie.contains("Max-Age=0"), "{set_cookie}");
    assert_eq!(app.sessions.user_session_count(ada), 0);
    assert!(app.sessions.is_empty());

    app.get("/profile", Some(&cookie))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "access_denied");
    app.logout(Some(&cookie))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "access_denied");
}

#[tokio::test]
async fn logout_without_a_session_is_a_401() {
    let app = TestApp::new();
    app.logout(None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "access_denied");
    assert!(app.sessions.is_empty());
}

#[tokio::test]
async fn a_changed_password_hash_ends_every_session() {
    let app = TestApp::new();
    let ada = user_id(&app.register_user("ada@example.com").await);
    let cookie = app.log_in("ada@example.com").await;
    let user = app
        .users
        .find_by_id(ada)
        .await
        .expect("lookup")
        .expect("stored");
    let changed = PasswordHash::from_trusted("$argon2id$v=19$m=64,t=1,p=1$Y2hhbmdlZA$x".into());
    assert!(app
        .users
        .replace_password_hash(ada, &user.password_hash, &changed)
        .await
        .expect("replaced"));
    app.get("/profile", Some(&cookie))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "access_denied");
}

#[tokio::test]
async fn revoking_a_users_sessions_logs_them_out_everywhere_and_nobody_else() {
    let app = TestApp::new();
    let ada = user_id(&app.register_user("ada@example.com").await);
    app.register_user("grace@example.com").await;
    let laptop = app.log_in("ada@example.com").await;
    let phone = app.log_in("ada@example.com").await;
    let grace = app.log_in("grace@example.com").await;

    assert_eq!(
        app.sessions
            .delete_user_sessions(ada)
            .await
            .expect("deleted"),
        2
    );
    for cookie in [&laptop, &phone] {
        app.get("/profile", Some(cookie))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "access_denied");
    }
    assert_eq!(
        app.get("/profile", Some(&grace)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_session_past_its_lifetime_is_refused_whatever_the_cookie_says() {
    // A lifetime of zero: every session has expired by the next request.
    let app = TestApp::with(Options {
        session_lifetime: time::Duration::ZERO,
        ..Options::default()
    });
    app.register_user("ada@example.com").await;
    let reply = app.login("ada@example.com", PASSWORD, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let cookie = reply.session_cookie().expect("a session cookie");
    assert_eq!(app.sessions.len(), 1, "stored, not yet purged");
    app.get("/profile", Some(&cookie))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "access_denied");
}

#[tokio::test]
async fn a_login_that_upgrades_an_outdated_hash_keeps_its_session_valid() {
    let old = TestApp::with(Options {
        hashing: auth_domain::HashingConfig {
            memory_kib: 32,
            ..cheap_hashing()
        },
        ..Options::default()
    });
    let ada = user_id(&old.register_user("ada@example.com").await);
    let before = old
        .users
        .find_by_id(ada)
        .await
        .expect("lookup")
        .expect("stored");
    let app = TestApp::over(old.stores.clone(), Options::default());

    let cookie = app.log_in("ada@example.com").await;
    let after = app
        .users
        .find_by_id(ada)
        .await
        .expect("lookup")
        .expect("stored");
    assert_ne!(after.password_hash, before.password_hash, "upgraded");
    assert!(after.password_hash.as_str().contains("m=64,t=1,p=1"));
    // The session carries a digest of the hash: it must be the digest of the new one.
    assert_eq!(
        app.get("/profile", Some(&cookie)).await.status,
        StatusCode::OK
    );
}

// The JSON extractor's rejections, on every route that reads a body

/// A `POST` of `body` with this content type (none when `None`).
fn post(path: &str, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::post(path);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    request.body(body.into()).expect("a valid request")
}

const JSON: Option<&str> = Some("application/json");

#[tokio::test]
async fn a_body_not_declared_as_json_is_a_415() {
    let app = TestApp::new();
    let body = json!({"email": "ada@example.com", "email_or_username": "ada@example.com", "password": PASSWORD})
        .to_string();
    for path in JSON_ROUTES {
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("application/json; charset=latin1"),
        ] {
            let reply = app.send(post(path, content_type, body.clone())).await;
            reply.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
            assert!(!reply.text.contains(PASSWORD), "{}", reply.text);
        }
    }
    assert!(app.users.is_empty());
}

#[tokio::test]
async fn malformed_json_is_a_400_that_does_not_echo_the_body() {
    let app = TestApp::new();
    for path in JSON_ROUTES {
        for body in [
            "",
            "{",
            r#"{"email": "secret-address", "password": "hunter2-secret""#,
            r#"{"email_or_username": "a", "password": "hunter2-secret"} trailing-secret"#,
            r#"{"password": hunter2secret}"#,
        ] {
            let reply = app.send(post(path, JSON, body)).await;
            reply.assert_error(StatusCode::BAD_REQUEST, "malformed_json");
            assert!(!reply.text.contains("secret"), "{path}: {}", reply.text);
        }
    }
}

#[tokio::test]
async fn missing_fields_are_a_422_naming_each_of_them() {
    let app = TestApp::new();
    let cases = [
        ("/v1/auth/register", json!({}), vec!["email", "password"]),
        (
            "/v1/auth/register",
            json!({"email": "ada@example.com"}),
            vec!["password"],
        ),
        (
            "/v1/auth/login",
            json!({}),
            vec!["email_or_username", "password"],
        ),
        (
            "/v1/auth/login",
            json!({"password": PASSWORD}),
            vec!["email_or_username"],
        ),
        (
            "/v1/auth/login",
            json!({"email_or_username": null, "password": null}),
            vec!["email_or_username", "password"],
        ),
    ];
    for (path, body, fields) in cases {
        let reply = app.send(post(path, JSON, body.to_string())).await;
        let error = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_fields");
        assert_eq!(
            keys(&error["errors"]),
            fields.into_iter().collect::<BTreeSet<_>>(),
            "{path} {body}"
        );
    }
}

#[tokio::test]
async fn fields_of_the_wrong_type_are_a_422_that_never_echoes_the_value() {
    let app = TestApp::new();
    let cases = [
        (
            "/v1/auth/register",
            json!({"email": {"$ne": null}, "password": 987_654_321, "username": 13_579}),
            vec!["email", "password", "username"],
        ),
        (
            "/v1/auth/register",
            json!({"email": ["x-secret"], "password": 987_654_321.5}),
            vec!["email", "password"],
        ),
        (
            "/v1/auth/login",
            json!({"email_or_username": {"$gt": ""}, "password": 987_654_321}),
            vec!["email_or_username", "password"],
        ),
        (
            "/v1/auth/login",
            json!({"email_or_username": true, "password": ["x-secret"]}),
            vec!["email_or_username", "password"],
        ),
    ];
    for (path, body, fields) in cases {
        let reply = app.send(post(path, JSON, body.to_string())).await;
        let error = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_fields");
        assert_eq!(
            keys(&error["errors"]),
            fields.into_iter().collect::<BTreeSet<_>>(),
            "{path} {body}"
        );
        for echoed in ["987654321", "$ne", "$gt", "x-secret", "13579"] {
            assert!(!reply.text.contains(echoed), "{path}: {}", reply.text);
        }
    }
    assert!(app.users.is_empty());
    assert!(app.sessions.is_empty());
}

#[tokio::test]
async fn json_that_is_not_an_object_is_a_422() {
    let app = TestApp::new();
    for path in JSON_ROUTES {
        for body in ["[1, 2]", "\"a string\"", "12345678", "null", "true"] {
            let reply = app.send(post(path, JSON, body)).await;
            reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "not_an_object");
            assert!(!reply.text.contains("12345678"), "{}", reply.text);
            assert!(reply.body.get("errors").is_none(), "{}", reply.text);
        }
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_whether_announced_or_not() {
    let app = TestApp::new();
    let padding = "x".repeat(BODY_LIMIT_BYTES);
    let body = json!({"email": "ada@example.com", "email_or_username": "ada", "password": padding})
        .to_string();
    assert!(body.len() > BODY_LIMIT_BYTES);
    for path in JSON_ROUTES {
        let announced = Request::post(path)
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_LENGTH, body.len())
            .body(Body::from(body.clone()))
            .expect("a valid request");
        let reply = app.send(announced).await;
        reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
        assert!(!reply.text.contains("xxxx"), "{}", reply.text);

        let unannounced = post(path, JSON, body.clone());
        assert!(unannounced.headers().get(CONTENT_LENGTH).is_none());
        let reply = app.send(unannounced).await;
        reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }
    assert!(app.users.is_empty());
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_judged_on_its_content() {
    let app = TestApp::new();
    let mut body = json!({"email": "ada@example.com", "password": ""});
    let room = BODY_LIMIT_BYTES - body.to_string().len();
    body["password"] = json!("p".repeat(room));
    let body = body.to_string();
    assert_eq!(body.len(), BODY_LIMIT_BYTES);
    let reply = app.send(post("/v1/auth/register", JSON, body)).await;
    // Past the password policy's 128 characters: refused by the domain, not by the limit.
    let error = reply.assert_error(StatusCode::BAD_REQUEST, "validation_failed");
    assert_eq!(keys(&error["errors"]), BTreeSet::from(["password"]));
}
