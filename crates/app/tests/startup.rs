//! The `app` binary as an operator meets it: configuration errors are one clear line, and
//! nothing secret ever reaches the logs.

use std::process::Output;

use auth_testkit::{
    process::free_port, AppCommand, Backend, SetSessionCookie, TempDir, TestDatabase,
};
use reqwest::header;
use serde_json::json;

// The trace is the same whatever the backend; SQLite needs no server.
auth_testkit::backend_tests! {
    backends: [sqlite],
    tests: { crate => [passwords_hashes_cookies_and_session_ids_never_reach_the_logs] },
}

const SECRET_KEY: &str = "startup-secret-key-startup-secret-key-startup-secret-key-startup!";
const PASSWORD: &str = "canary-password-d41d8cd9";

/// The binary with nothing from the environment, in an empty directory: no `.env` or
/// `App.toml` of the developer's leaks in.
fn app() -> AppCommand {
    AppCommand::new(env!("CARGO_BIN_EXE_app"))
}

/// Runs the binary expecting it to refuse to start; returns its output.
fn refused(command: AppCommand) -> Output {
    let output = command.expect_start_failure();
    assert_eq!(
        output.status.code(),
        Some(2),
        "a configuration error exits with 2: {output:?}"
    );
    output
}

fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_the_key() {
    let cases = [
        ("PORT", "not-a-port"),
        ("PERMANENT_SESSION_LIFETIME", "-5"),
        ("STORAGE", "redis"),
        ("PASSWORD_MIN_LENGTH", "4"),
        ("DEBUG", "perhaps"),
    ];
    for (key, value) in cases {
        let output = refused(
            app()
                .env("SECRET_KEY", SECRET_KEY)
                .env("DEBUG", "false")
                .env(key, value),
        );
        let lines = stderr_lines(&output);
        assert_eq!(lines.len(), 1, "{key}: {lines:?}");
        assert!(lines[0].contains(key), "{key} is not named: {lines:?}");
    }
}

#[test]
fn a_short_or_missing_secret_key_is_refused_outside_debug_without_echoing_it() {
    let output = refused(
        app()
            .env("DEBUG", "false")
            .env("SECRET_KEY", "too-short-but-secret-value"),
    );
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("SECRET_KEY"), "{lines:?}");
    assert!(
        !lines[0].contains("too-short-but-secret-value"),
        "the secret was echoed: {lines:?}"
    );

    let output = refused(app().env("DEBUG", "false"));
    assert!(stderr_lines(&output)
        .iter()
        .any(|l| l.contains("SECRET_KEY")));
}

#[test]
fn an_unreachable_mongodb_stops_start_up_with_a_clear_line() {
    let port = free_port();
    let output = app()
        .env("SECRET_KEY", SECRET_KEY)
        .env("DEBUG", "false")
        .env("STORAGE", "mongodb")
        .env(
            "MONGODB_URL",
            format!("mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=1000"),
        )
        .env("PORT", "0")
        .expect_start_failure();
    let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
    assert!(stderr.contains("mongodb"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Drives the whole flow with debug logging on, then searches the log for every secret.
async fn passwords_hashes_cookies_and_session_ids_never_reach_the_logs(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let logs = TempDir::new("startup-logs");
    let log = logs.path().join("app.log");
    let mut service = app()
        .env("SECRET_KEY", SECRET_KEY)
        .env("DEBUG", "false")
        .env("SESSION_COOKIE_SECURE", "false")
        .env("DATABASE_URL", database.url())
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("ARGON2_ITERATIONS", "1")
        .env("LOG", "trace")
        .log_to(&log)
        .spawn_ready()
        .await
        .expect("the service starts");
    let base = service.url("");
    let http = reqwest::Client::new();

    let registered = http
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("sent");
    assert_eq!(registered.status(), 201);
    let wrong =
        json!({"email_or_username": "ada@example.com", "password": format!("{PASSWORD}-wrong")});
    assert_eq!(
        http.post(format!("{base}/v1/auth/login"))
            .json(&wrong)
            .send()
            .await
            .expect("sent")
            .status(),
        401
    );
    let login = http
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"email_or_username": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("sent");
    assert_eq!(login.status(), 200);
    let cookie = SetSessionCookie::of(login.headers())
        .expect("a session cookie")
        .pair()
        .to_owned();
    let profile = http
        .get(format!("{base}/profile"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(profile.status(), 200);
    let logout = http
        .post(format!("{base}/v1/auth/logout"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(logout.status(), 200);

    // Both streams, stdout and stderr, go to the log file.
    service.stop();
    let log = service.log();

    assert!(
        log.contains("/v1/auth/login"),
        "the log should show the requests at trace level:\n{log}"
    );
    let cookie_value = cookie.trim_start_matches("session=");
    // The signed value is `<signature><id>`; the id is its last 22 characters.
    let session_id = &cookie_value[cookie_value.len() - 22..];
    for (what, secret) in [
        ("password", PASSWORD),
        ("cookie", cookie_value),
        ("session id", session_id),
        ("argon2 hash", "$argon2id$"),
        ("secret key", SECRET_KEY),
    ] {
        assert!(!log.contains(secret), "the {what} appears in the log");
    }
    database.drop_now().await;
}
