//! Several instances of the service on one database behave as one service: a session made
//! through one is valid on the others, and a logout through one is honoured at once by all.
//! Each instance is a real `app` process, configured through its environment.
//!
//! A password changed or an account deleted through one instance ends the sessions it
//! must end at the very next request to another: no instance keeps a session or a user
//! in memory.
//!
//! Two instances with different hashing costs also show, end to end, that an outdated
//! hash is upgraded at the next login and that a changed hash ends the user's sessions.

use auth_testkit::{AppCommand, AppProcess, Backend, SetSessionCookie, TestDatabase};
use reqwest::{header, StatusCode};
use serde_json::json;

auth_testkit::backend_tests! {
    backends: [sqlite, postgres, mysql, mongodb],
    tests: {
        crate => [
            two_instances_share_sessions_and_logouts,
            a_password_change_or_a_deletion_on_one_instance_ends_sessions_on_the_other,
            an_upgraded_hash_ends_the_older_sessions,
        ],
    },
}

const SECRET_KEY: &str = "instances-secret-key-instances-secret-key-instances-secret-key-!!";

/// An instance: an `app` process on `database`, killed when dropped.
async fn start(database: &TestDatabase) -> AppProcess {
    start_with_iterations(database, 1).await
}

/// An instance hashing with `ARGON2_ITERATIONS=iterations` (cheap memory, for speed).
async fn start_with_iterations(database: &TestDatabase, iterations: u32) -> AppProcess {
    AppCommand::new(env!("CARGO_BIN_EXE_app"))
        .env("SECRET_KEY", SECRET_KEY)
        .env("DEBUG", "false")
        .env("SESSION_COOKIE_SECURE", "false")
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("ARGON2_ITERATIONS", iterations.to_string())
        .env("LOG", "warn")
        .database(database)
        .spawn_ready()
        .await
        .expect("the instance starts")
}

fn session_pair(response: &reqwest::Response) -> String {
    SetSessionCookie::of(response.headers())
        .expect("a session cookie")
        .pair()
        .to_owned()
}

async fn two_instances_share_sessions_and_logouts(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let (a, b) = (start(&database).await, start(&database).await);
    let http = reqwest::Client::new();
    let credentials = json!({"email": "ada@example.com", "password": "velvet-otter-harbour"});

    let registered = http
        .post(a.url("/v1/auth/register"))
        .json(&credentials)
        .send()
        .await
        .expect("sent");
    assert_eq!(registered.status(), StatusCode::CREATED);
    let login = json!({"email_or_username": "ada@example.com", "password": "velvet-otter-harbour"});
    let logged_in = http
        .post(b.url("/v1/auth/login"))
        .json(&login)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        logged_in.status(),
        StatusCode::OK,
        "a user registered on A logs in on B"
    );
    let cookie = session_pair(&logged_in);

    for instance in [&a, &b] {
        let profile = http
            .get(instance.url("/profile"))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .expect("sent");
        assert_eq!(
            profile.status(),
            StatusCode::OK,
            "a session made on B is valid on {}",
            instance.url("")
        );
    }

    let logout = http
        .post(a.url("/v1/auth/logout"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(logout.status(), StatusCode::OK);
    let after = http
        .get(b.url("/profile"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        after.status(),
        StatusCode::UNAUTHORIZED,
        "a logout on A is honoured at once by B"
    );

    drop((a, b));
    database.drop_now().await;
}

/// Ada has a session made on A and another made on B. She changes her password through A:
/// the session she used goes on, the one made on B ends at B's very next request. She then
/// deletes her account through A: the session left ends on B too.
async fn a_password_change_or_a_deletion_on_one_instance_ends_sessions_on_the_other(
    backend: Backend,
) {
    let database = TestDatabase::create(backend).await;
    let (a, b) = (start(&database).await, start(&database).await);
    let http = reqwest::Client::new();
    let credentials = json!({"email": "ada@example.com", "password": "velvet-otter-harbour"});
    let login = json!({"email_or_username": "ada@example.com", "password": "velvet-otter-harbour"});
    let registered = http
        .post(a.url("/v1/auth/register"))
        .json(&credentials)
        .send()
        .await
        .expect("sent");
    assert_eq!(registered.status(), StatusCode::CREATED);
    let mut sessions = Vec::new();
    for instance in [&a, &b] {
        let logged_in = http
            .post(instance.url("/v1/auth/login"))
            .json(&login)
            .send()
            .await
            .expect("sent");
        assert_eq!(logged_in.status(), StatusCode::OK);
        sessions.push(session_pair(&logged_in));
    }
    let (on_a, on_b) = (sessions[0].clone(), sessions[1].clone());
    let profile_status = |instance: &AppProcess, cookie: &str| {
        let request = http
            .get(instance.url("/profile"))
            .header(header::COOKIE, cookie.to_owned());
        async move { request.send().await.expect("sent").status() }
    };
    assert_eq!(profile_status(&b, &on_b).await, StatusCode::OK);

    let changed = http
        .post(a.url("/v1/auth/password"))
        .header(header::COOKIE, &on_a)
        .json(&json!({
            "current_password": "velvet-otter-harbour",
            "new_password": "copper-lantern-meadow",
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(changed.status(), StatusCode::OK);
    // The changing session may have been re-issued: the cookie that came back is the one
    // that lives on.
    let reissued = SetSessionCookie::of(changed.headers()).is_some();
    let on_a = if reissued {
        session_pair(&changed)
    } else {
        on_a
    };
    assert_eq!(
        profile_status(&b, &on_b).await,
        StatusCode::UNAUTHORIZED,
        "a password changed on A ends the session made on B, on B"
    );
    assert_eq!(
        profile_status(&b, &on_a).await,
        StatusCode::OK,
        "the session that changed the password lives on, on B too"
    );

    let deleted = http
        .delete(a.url("/v1/auth/account"))
        .header(header::COOKIE, &on_a)
        .json(&json!({"password": "copper-lantern-meadow"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        profile_status(&b, &on_a).await,
        StatusCode::UNAUTHORIZED,
        "an account deleted on A has no session left on B"
    );

    drop((a, b));
    database.drop_now().await;
}

/// Ada logs in on A (cheap hashing); an instance with a higher cost upgrades her hash at
/// her next login; the hash changed, so the session made on A is dead everywhere, while
/// the new one lives and the password still works.
async fn an_upgraded_hash_ends_the_older_sessions(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let (old, new) = (
        start_with_iterations(&database, 1).await,
        start_with_iterations(&database, 2).await,
    );
    let http = reqwest::Client::new();
    let credentials = json!({"email": "ada@example.com", "password": "velvet-otter-harbour"});
    let login = json!({"email_or_username": "ada@example.com", "password": "velvet-otter-harbour"});
    let registered = http
        .post(old.url("/v1/auth/register"))
        .json(&credentials)
        .send()
        .await
        .expect("sent");
    assert_eq!(registered.status(), StatusCode::CREATED);
    let first = session_pair(
        &http
            .post(old.url("/v1/auth/login"))
            .json(&login)
            .send()
            .await
            .expect("sent"),
    );
    let profile = |instance: &AppProcess, cookie: &str| {
        http.get(instance.url("/profile"))
            .header(header::COOKIE, cookie.to_owned())
            .send()
    };
    assert_eq!(
        profile(&new, &first).await.expect("sent").status(),
        StatusCode::OK
    );

    let upgraded = http
        .post(new.url("/v1/auth/login"))
        .json(&login)
        .send()
        .await
        .expect("sent");
    assert_eq!(upgraded.status(), StatusCode::OK);
    let second = session_pair(&upgraded);

    for instance in [&old, &new] {
        let stale = profile(instance, &first).await.expect("sent");
        assert_eq!(
            stale.status(),
            StatusCode::UNAUTHORIZED,
            "the session from before the upgrade is dead"
        );
        assert_eq!(
            profile(instance, &second).await.expect("sent").status(),
            StatusCode::OK
        );
    }
    let again = http
        .post(old.url("/v1/auth/login"))
        .json(&login)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "the upgraded hash still verifies the password"
    );

    drop((old, new));
    database.drop_now().await;
}
