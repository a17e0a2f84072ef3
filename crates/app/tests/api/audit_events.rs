//! The audit trail (#9): every auth event is stored, and a user reads their own recent
//! security activity at `GET /v1/auth/events`.

use std::time::Duration;

use auth_testkit::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::helpers::{assert_access_denied, timestamp, Browser, Options, TestApp, PASSWORD};

const ADA: &str = "ada@example.com";
const GRACE: &str = "grace@example.com";
const WRONG: &str = "not-the-password-at-all";
const NEW_PASSWORD: &str = "copper-lantern-meadow";

/// `GET /v1/auth/events`, expecting a 200 whose every event has exactly the documented
/// fields, newest first, with distinct ids; returns the events.
async fn events(browser: &Browser) -> Vec<Value> {
    let keys = [
        "actor",
        "at",
        "count",
        "id",
        "ip",
        "kind",
        "request_id",
        "user_agent",
    ];
    let events = browser.list("/v1/auth/events", "events", &keys).await;
    let mut ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "distinct ids: {events:?}");
    for event in &events {
        assert!(event["kind"].is_string(), "{event}");
        // Every event here comes from a request: a user acting, in a request with an id.
        assert_eq!(event["actor"], "user", "{event}");
        assert!(
            event["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{event}"
        );
    }
    let times: Vec<OffsetDateTime> = events.iter().map(|e| timestamp(e, "at")).collect();
    assert!(
        times.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first: {events:?}"
    );
    events
}

/// The kind and the User-Agent of each event.
fn kinds_and_agents(events: &[Value]) -> Vec<(&str, &str)> {
    events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default(),
                e["user_agent"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    kinds_and_agents(events)
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

async fn assert_status(response: reqwest::Response, status: StatusCode) {
    assert_eq!(response.status(), status, "{}", response.url());
}

pub(crate) async fn the_events_of_a_full_flow_are_listed_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let started = auth_domain::clock::Clock::system().now();
    let [one, two, three] = [1, 2, 3].map(|i| app.browser(Some(&format!("browser-{i}"))));
    one.register_user(ADA).await;
    assert_status(one.login(ADA, WRONG).await, StatusCode::UNAUTHORIZED).await;
    assert_status(one.login(ADA, PASSWORD).await, StatusCode::OK).await;
    assert_status(two.login(ADA, PASSWORD).await, StatusCode::OK).await;
    let second = one
        .sessions()
        .await
        .into_iter()
        .find(|s| s["user_agent"] == "browser-2")
        .expect("browser-2's session");
    let path = format!(
        "/v1/auth/sessions/{}",
        second["id"].as_str().expect("an id")
    );
    assert_status(one.delete(&path).await, StatusCode::NO_CONTENT).await;
    assert_status(three.login(ADA, PASSWORD).await, StatusCode::OK).await;
    assert_status(one.delete("/v1/auth/sessions").await, StatusCode::OK).await;
    let change = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    let changed = one.post_json("/v1/auth/password", &change).await;
    assert_status(changed, StatusCode::OK).await;
    assert_status(one.logout().await, StatusCode::OK).await;
    assert_status(two.login(ADA, NEW_PASSWORD).await, StatusCode::OK).await;

    let events = events(&two).await;
    assert_eq!(
        kinds_and_agents(&events),
        [
            ("login_succeeded", "browser-2"),
            ("logged_out", "browser-1"),
            ("password_changed", "browser-1"),
            ("other_sessions_revoked", "browser-1"),
            ("login_succeeded", "browser-3"),
            ("session_revoked", "browser-1"),
            ("login_succeeded", "browser-2"),
            ("login_succeeded", "browser-1"),
            ("login_failed", "browser-1"),
            ("email_verification_sent", "browser-1"),
            ("registered", "browser-1"),
        ]
    );
    let slack = time::Duration::seconds(5);
    let now = auth_domain::clock::Clock::system().now();
    for event in &events {
        assert_eq!(event["ip"], "127.0.0.1", "{event}");
        let at = timestamp(event, "at");
        assert!(started - slack <= at && at <= now + slack, "{event}");
    }
    app.stop().await;
}

pub(crate) async fn a_user_sees_at_most_fifty_events_and_only_their_own(backend: Backend) {
    let app = TestApp::spawn_with(backend, without_verification()).await;
    assert_access_denied(app.get("/v1/auth/events").await).await;
    let ada = app.browser(Some("ada-browser"));
    let grace = app.browser(Some("grace-browser"));
    ada.register_user(ADA).await;
    grace.register_user(GRACE).await;
    assert_status(grace.login(GRACE, PASSWORD).await, StatusCode::OK).await;
    // Ada's browser guesses at Grace's account and at one that does not exist.
    assert_status(ada.login(GRACE, WRONG).await, StatusCode::UNAUTHORIZED).await;
    assert_status(
        ada.login("nobody@example.com", WRONG).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_access_denied(ada.get("/v1/auth/events").await).await;
    for _ in 0..55 {
        assert_status(ada.login(ADA, PASSWORD).await, StatusCode::OK).await;
    }

    let adas = events(&ada).await;
    assert_eq!(kinds(&adas), ["login_succeeded"; 50], "the 50 most recent");
    let graces = events(&grace).await;
    assert_eq!(
        kinds_and_agents(&graces),
        [
            ("login_failed", "ada-browser"),
            ("login_succeeded", "grace-browser"),
            ("registered", "grace-browser"),
        ]
    );
    assert!(
        graces
            .iter()
            .all(|g| adas.iter().all(|a| a["id"] != g["id"])),
        "no event is in both lists"
    );
    assert_status(ada.logout().await, StatusCode::OK).await;
    assert_access_denied(ada.get("/v1/auth/events").await).await;
    app.stop().await;
}

/// A refused login is recorded too, though after the answer (in the background): the
/// test waits for it.
pub(crate) async fn a_throttled_login_is_recorded(backend: Backend) {
    let app = TestApp::spawn_with(backend, without_verification()).await;
    let owner = app.browser(Some("owner"));
    owner.register_user(ADA).await;
    assert_status(owner.login(ADA, PASSWORD).await, StatusCode::OK).await;
    let guesser = app.browser(Some("guesser"));
    for _ in 0..5 {
        assert_status(guesser.login(ADA, WRONG).await, StatusCode::UNAUTHORIZED).await;
    }
    let refused = guesser.login(ADA, PASSWORD).await;
    assert_status(refused, StatusCode::TOO_MANY_REQUESTS).await;

    let mut listed = events(&owner).await;
    for _ in 0..50 {
        if listed.len() == 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        listed = events(&owner).await;
    }
    let mut expected = vec![("login_throttled", "guesser")];
    expected.extend([("login_failed", "guesser"); 5]);
    expected.extend([("login_succeeded", "owner"), ("registered", "owner")]);
    assert_eq!(kinds_and_agents(&listed), expected);
    app.stop().await;
}

/// Behind a trusted proxy, the address recorded for a session and for an event is the
/// client's, not the proxy's.
pub(crate) async fn the_client_address_behind_a_trusted_proxy_is_recorded(backend: Backend) {
    let options = Options::with(&[("TRUSTED_PROXIES", "127.0.0.1")]);
    let app = TestApp::spawn_with(backend, options).await;
    let browser = app.browser_behind_proxy("203.0.113.66, 198.51.100.7");
    browser.register_user(ADA).await;
    assert_status(browser.login(ADA, PASSWORD).await, StatusCode::OK).await;
    let sessions = browser.sessions().await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["ip"], "198.51.100.7");
    let events = events(&browser).await;
    assert_eq!(
        kinds(&events),
        ["login_succeeded", "email_verification_sent", "registered"]
    );
    for event in &events {
        assert_eq!(event["ip"], "198.51.100.7", "{event}");
    }
    app.stop().await;
}

/// Each event names the request that caused it: the `X-Request-Id` a trusted proxy sent,
/// or the one the service made up and answered with.
pub(crate) async fn an_event_names_the_request_that_caused_it(backend: Backend) {
    let trusted = Options::with(&[("TRUSTED_PROXIES", "127.0.0.1")]);
    let app = TestApp::spawn_with(backend, trusted).await;
    app.register_user(ADA).await;
    let credentials = json!({"email_or_username": ADA, "password": PASSWORD});
    let chosen = "client-chosen-id-0042";
    let login = app
        .send_with_headers(
            reqwest::Method::POST,
            "/v1/auth/login",
            &[("x-request-id", chosen)],
            Some(&credentials),
        )
        .await;
    assert_status(login, StatusCode::OK).await;
    let logout = app.logout().await;
    assert_eq!(logout.status(), StatusCode::OK);
    let made_up = logout
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .expect("the answer carries its request id")
        .to_owned();
    assert_status(app.login(ADA, PASSWORD).await, StatusCode::OK).await;
    let events = events(&app).await;
    assert_eq!(
        kinds(&events[1..3]),
        ["logged_out", "login_succeeded"],
        "{events:?}"
    );
    assert_eq!(events[1]["request_id"], made_up.as_str());
    assert_eq!(events[2]["request_id"], chosen);
    app.stop().await;
}

/// `GET path` as `browser`: the events and the `next` cursor.
async fn page(browser: &Browser, path: &str) -> (Vec<Value>, Option<String>) {
    let response = browser.get(path).await;
    assert_status_of(&response, StatusCode::OK);
    let body: Value = response.json().await.expect("a JSON body");
    let events = body["events"].as_array().expect("events").clone();
    let next = body["next"].as_str().map(str::to_owned);
    (events, next)
}

fn assert_status_of(response: &reqwest::Response, status: StatusCode) {
    assert_eq!(response.status(), status, "{}", response.url());
}

/// Sixty junk attempts after the owner's login cannot hide it (#19): filtered by kind it
/// is the first thing listed, and paging with `next` reaches it, each event once.
pub(crate) async fn a_flood_of_attempts_cannot_hide_a_login_from_its_owner(backend: Backend) {
    let app = TestApp::spawn_with(backend, without_verification()).await;
    let owner = app.browser(Some("owner"));
    owner.register_user(ADA).await;
    assert_status(owner.login(ADA, PASSWORD).await, StatusCode::OK).await;
    let guesser = app.browser(Some("guesser"));
    for _ in 0..60 {
        let status = guesser.login(ADA, WRONG).await.status();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
    }

    // Five failures, then 55 refusals: one event for the first refusal at once, and one
    // for the other 54 when the minute is over.
    let throttled = "/v1/auth/events?kind=login_throttled";
    let counts = |events: &[Value]| -> Vec<u64> {
        events.iter().filter_map(|e| e["count"].as_u64()).collect()
    };
    let mut listed = page(&owner, throttled).await.0;
    for _ in 0..50 {
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        listed = page(&owner, throttled).await.0;
    }
    assert_eq!(counts(&listed), [1], "{listed:?}");
    app.advance(Duration::from_secs(61));
    for _ in 0..50 {
        if listed.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        listed = page(&owner, throttled).await.0;
    }
    assert_eq!(counts(&listed), [54, 1], "{listed:?}");
    let failed = page(&owner, "/v1/auth/events?kind=login_failed").await.0;
    assert_eq!(counts(&failed), [1; 5]);

    let (found, next) = page(&owner, "/v1/auth/events?kind=login_succeeded").await;
    assert_eq!(kinds(&found), ["login_succeeded"]);
    assert_eq!(found[0]["user_agent"], "owner");
    assert_eq!(next, None, "one event, and a page of 50 is not full");
    let (found, _) = page(
        &owner,
        "/v1/auth/events?kind=registered,login_succeeded&limit=5",
    )
    .await;
    assert_eq!(kinds(&found), ["login_succeeded", "registered"]);

    let mut seen: Vec<Value> = Vec::new();
    let mut path = "/v1/auth/events?limit=7".to_owned();
    loop {
        let (events, next) = page(&owner, &path).await;
        assert!(events.len() <= 7);
        seen.extend(events);
        let Some(next) = next else { break };
        path = format!("/v1/auth/events?limit=7&before={next}");
        assert!(seen.len() < 200, "paging ends");
    }
    let mut ids: Vec<&str> = seen.iter().filter_map(|e| e["id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), seen.len(), "each event once");
    assert!(
        kinds(&seen).ends_with(&["login_succeeded", "registered"]),
        "{:?}",
        kinds(&seen)
    );
    assert!(seen.len() >= 7, "the flood was recorded: {}", seen.len());

    for bad in [
        "before=nope",
        "kind=login_succeded",
        "limit=0",
        "limit=201",
        "limit=x",
        "other=1",
        "limit=5&limit=6",
        "kind=",
        "before=",
    ] {
        let response = owner.get(&format!("/v1/auth/events?{bad}")).await;
        assert_status_of(&response, StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body["code"], "validation_failed", "{bad}: {body}");
    }
    app.stop().await;
}

/// The defaults, but registration mails no verification link (`EMAIL_VERIFICATION=off`):
/// these tests count the events of logins, and a registration is then one event.
fn without_verification() -> Options {
    Options::with(&[("EMAIL_VERIFICATION", "off")])
}
