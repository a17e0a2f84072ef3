//! A user's own sessions (#8): list them, end one, end all the others.

use std::time::Duration;

use auth_testkit::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    assert_access_denied, assert_cookie_expired, assert_error, json_body, timestamp, Browser,
    Options, TestApp, PASSWORD,
};

/// The User-Agents of `sessions`, in order.
fn agents(sessions: &[Value]) -> Vec<&str> {
    sessions
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap_or_default())
        .collect()
}

/// The handle of the one session in `sessions` that matches `pick`.
fn handle(sessions: &[Value], pick: impl Fn(&Value) -> bool) -> String {
    let picked: Vec<&Value> = sessions.iter().filter(|s| pick(s)).collect();
    assert_eq!(picked.len(), 1, "{sessions:?}");
    picked[0]["id"].as_str().expect("an id").to_owned()
}

fn revoke_path(handle: &str) -> String {
    format!("/v1/auth/sessions/{handle}")
}

async fn assert_status(browser: &Browser, path: &str, status: StatusCode) {
    assert_eq!(browser.get(path).await.status(), status, "GET {path}");
}

/// A handle is neither a cookie nor part of one, and no cookie made of it is accepted.
async fn assert_handles_are_opaque(app: &TestApp, sessions: &[Value], cookies: &[String]) {
    let handles: Vec<&str> = sessions.iter().filter_map(|s| s["id"].as_str()).collect();
    for (i, handle) in handles.iter().enumerate() {
        assert!(!handles[..i].contains(handle), "handles are distinct");
        for cookie in cookies {
            let value = cookie.strip_prefix("session=").expect("a session cookie");
            assert!(
                !value.contains(handle) && !handle.contains(value),
                "the handle {handle} and the cookie {value} overlap"
            );
        }
        assert_access_denied(
            app.get_with_cookie("/profile", &format!("session={handle}"))
                .await,
        )
        .await;
    }
}

pub(crate) async fn a_user_with_three_sessions_lists_them_and_revokes_one_then_the_others(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let browsers: [Browser; 3] = app.user_with_browsers("ada@example.com").await;
    let cookies: Vec<String> = browsers
        .iter()
        .map(|b| b.session_cookie().expect("logged in"))
        .collect();
    let [first, second, third] = &browsers;

    let sessions = third.sessions().await;
    assert_eq!(
        agents(&sessions),
        ["browser-2", "browser-1", "browser-0"],
        "most recently used first"
    );
    assert_eq!(
        handle(&sessions, |s| s["current"] == true),
        handle(&sessions, |s| s["user_agent"] == "browser-2"),
        "exactly one session is current: the one asking"
    );
    for session in &sessions {
        assert_eq!(session["ip"], "127.0.0.1", "{session}");
    }
    assert_handles_are_opaque(&app, &sessions, &cookies).await;

    let first_handle = handle(&sessions, |s| s["user_agent"] == "browser-0");
    let revoked = third.delete(&revoke_path(&first_handle)).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_status(first, "/profile", StatusCode::UNAUTHORIZED).await;
    assert_eq!(agents(&third.sessions().await), ["browser-2", "browser-1"]);
    assert_error(
        third.delete(&revoke_path(&first_handle)).await,
        StatusCode::NOT_FOUND,
        Some("Not found"),
    )
    .await;

    let others = third.delete("/v1/auth/sessions").await;
    assert_eq!(others.status(), StatusCode::OK);
    assert_eq!(json_body(others).await, json!({"revoked": 1}));
    assert_status(second, "/profile", StatusCode::UNAUTHORIZED).await;
    assert_status(third, "/profile", StatusCode::OK).await;
    assert_eq!(agents(&third.sessions().await), ["browser-2"]);

    let none_left = third.delete("/v1/auth/sessions").await;
    assert_eq!(json_body(none_left).await, json!({"revoked": 0}));
    assert_status(third, "/profile", StatusCode::OK).await;
    app.stop().await;
}

/// With a 4 s idle lifetime: a session used after 2.5 s is renewed and moves to the top;
/// one left alone is no longer listed once expired, whether or not it was purged yet.
pub(crate) async fn sessions_are_listed_most_recently_used_first_and_expired_ones_never(
    backend: Backend,
) {
    let options = Options {
        session_lifetime_secs: 4,
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    let [used, idle] = &app.user_with_browsers("ada@example.com").await;

    app.advance(Duration::from_millis(2500));
    assert_status(used, "/profile", StatusCode::OK).await;
    let sessions = used.sessions().await;
    assert_eq!(agents(&sessions), ["browser-0", "browser-1"]);
    let renewed = &sessions[0];
    assert!(
        timestamp(renewed, "last_seen_at") - timestamp(renewed, "created_at")
            >= time::Duration::SECOND,
        "last_seen_at moves when the session is renewed: {renewed}"
    );

    app.advance(Duration::from_millis(2500));
    assert_eq!(agents(&used.sessions().await), ["browser-0"]);
    assert_status(idle, "/profile", StatusCode::UNAUTHORIZED).await;
    app.stop().await;
}

pub(crate) async fn an_unknown_handle_and_someone_elses_get_the_same_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_and_login("ada@example.com").await;
    let grace = app.browser(None);
    grace.register_and_login("grace@example.com").await;
    let graces = handle(&grace.sessions().await, |s| s["current"] == true);

    // Well-formed but unknown: the last character changed within its class.
    let mut altered = graces.clone();
    let last = altered.pop().expect("a non-empty handle");
    altered.push(match last {
        '0' => '1',
        '0'..='9' => '0',
        'a' => 'b',
        'a'..='z' => 'a',
        'A' => 'B',
        _ => 'A',
    });
    let mut bodies = Vec::new();
    for handle in [
        graces.as_str(),
        altered.as_str(),
        "0",
        "not-a-handle",
        &"A".repeat(300),
    ] {
        let response = app.delete(&revoke_path(handle)).await;
        bodies.push(assert_error(response, StatusCode::NOT_FOUND, Some("Not found")).await);
    }
    assert!(
        bodies.iter().all(|body| *body == bodies[0]),
        "one answer for all: {bodies:?}"
    );

    assert_status(&grace, "/profile", StatusCode::OK).await;
    assert_eq!(grace.sessions().await.len(), 1);
    assert_status(&app, "/profile", StatusCode::OK).await;
    app.stop().await;
}

pub(crate) async fn revoking_the_current_session_logs_out_and_expires_the_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.register_and_login("ada@example.com").await;
    let current = handle(&app.sessions().await, |s| s["current"] == true);

    let revoked = app.delete(&revoke_path(&current)).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_cookie_expired(&revoked);
    assert_status(&app, "/profile", StatusCode::UNAUTHORIZED).await;
    assert_access_denied(app.get_with_cookie("/profile", &cookie).await).await;
    app.stop().await;
}

pub(crate) async fn every_self_service_route_is_401_when_anonymous(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_user("ada@example.com").await;
    let password = json!({"current_password": PASSWORD, "new_password": "a-fresh-passphrase"});
    let account = json!({"password": PASSWORD});
    let requests = [
        (Method::GET, "/v1/auth/sessions", None),
        (Method::DELETE, "/v1/auth/sessions", None),
        (Method::DELETE, "/v1/auth/sessions/some-handle", None),
        (Method::POST, "/v1/auth/password", Some(&password)),
        (Method::DELETE, "/v1/auth/account", Some(&account)),
    ];
    for (method, path, body) in requests {
        assert_access_denied(app.send(method, path, body).await).await;
    }
    let login = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK, "nothing changed");
    app.stop().await;
}

pub(crate) async fn the_user_agent_is_kept_without_control_characters_and_at_most_256_long(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.register_user("ada@example.com").await;
    // A tab is the one control character an HTTP client lets into a header value.
    let tabbed = app.browser(Some("Mozilla/5.0\t(X11; Linux)"));
    let long_agent = format!("Mozilla/5.0 {}", "x".repeat(400));
    let long = app.browser(Some(&long_agent));
    for browser in [&tabbed, &long] {
        let login = browser.login("ada@example.com", PASSWORD).await;
        assert_eq!(login.status(), StatusCode::OK);
    }

    let sessions = tabbed.sessions().await;
    assert_eq!(sessions.len(), 2);
    let agent = |current: bool| {
        let session = sessions
            .iter()
            .find(|s| s["current"] == current)
            .expect("one current session and one other");
        session["user_agent"].as_str().expect("a user agent")
    };
    assert_eq!(agent(true), "Mozilla/5.0(X11; Linux)");
    let cut = agent(false);
    assert!(
        !cut.is_empty() && cut.chars().count() <= 256 && long_agent.starts_with(cut),
        "{cut:?} is not the start of the User-Agent, cut to 256 characters"
    );
    app.stop().await;
}
