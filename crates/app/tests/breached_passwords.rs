//! The breached-password check end to end (#21): `app passwords import` turns a
//! HaveIBeenPwned file into a filter, a server started with `BREACHED_PASSWORDS` refuses
//! its passwords (and `/readyz` says it is loaded), and a filter that cannot be loaded
//! stops start-up with one line.

use std::{path::Path, process::Output};

use auth_domain::{breached::hibp, Password};
use auth_testkit::{AppCommand, Backend, TempDir, TestDatabase};
use reqwest::StatusCode;
use serde_json::{json, Value};

// The filter is a file, the same whatever the backend; SQLite needs no server.
auth_testkit::backend_tests! {
    backends: [sqlite],
    tests: { crate => [a_server_with_an_imported_filter_refuses_its_passwords] },
}

const SECRET_KEY: &str = "breached-secret-key-breached-secret-key-breached-secret-key-12345";

/// How many breached passwords the generated file lists.
const LISTED: usize = 3_000;

/// The `i`-th breached password of the generated file.
fn listed(i: usize) -> String {
    format!("leaked-password-{i:05}")
}

/// The binary with nothing from the environment but a working configuration.
fn app() -> AppCommand {
    AppCommand::new(env!("CARGO_BIN_EXE_app"))
        .env("SECRET_KEY", SECRET_KEY)
        .env("DEBUG", "false")
        .env("SESSION_COOKIE_SECURE", "false")
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("ARGON2_ITERATIONS", "1")
}

/// Writes a HaveIBeenPwned file of the [`LISTED`] passwords, with CRLF line ends and a
/// blank line, as the downloader's files may have.
fn write_hibp_file(path: &Path) {
    let mut text = String::new();
    for i in 0..LISTED {
        text.push_str(&hibp::line_of(&Password::new(listed(i)), i as u64 + 1));
        text.push_str(if i % 2 == 0 { "\r\n" } else { "\n" });
        if i == LISTED / 2 {
            text.push('\n');
        }
    }
    std::fs::write(path, text).expect("the HIBP file is written");
}

/// Runs `app passwords import <hibp> <filter> --json`, expecting success.
fn import(hibp: &Path, filter: &Path) -> Value {
    let output = AppCommand::new(env!("CARGO_BIN_EXE_app"))
        .args([
            "passwords".as_ref(),
            "import".as_ref(),
            hibp.as_os_str(),
            filter.as_os_str(),
            "--json".as_ref(),
        ])
        .run_to_exit("");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("one JSON document")
}

/// The one line a failure wrote on stderr.
fn one_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines[0].to_owned()
}

async fn a_server_with_an_imported_filter_refuses_its_passwords(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let dir = TempDir::new("breached");
    let (hibp, filter) = (
        dir.path().join("pwned.txt"),
        dir.path().join("pwned.filter"),
    );
    write_hibp_file(&hibp);
    let imported = import(&hibp, &filter);
    assert_eq!(imported["count"], LISTED);
    assert_eq!(imported["source"], "pwned.txt");

    let server = app()
        .database(&database)
        .env("BREACHED_PASSWORDS", &filter)
        .env("LOG", "warn")
        .spawn_ready()
        .await
        .expect("the server starts");
    let http = reqwest::Client::new();
    let register = |email: &str, password: String| {
        http.post(server.url("/v1/auth/register"))
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    for i in [0, 1, LISTED / 2, LISTED - 1] {
        let response = register("ada@example.com", listed(i)).await.expect("sent");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["code"], "password_breached", "{body}");
        assert!(body["errors"]["password"].is_array(), "{body}");
    }
    let response = register("ada@example.com", "quiet-lantern-meadow".into())
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let ready: Value = http
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        ready,
        json!({"status": "ok", "breached_passwords": {"loaded": true, "count": LISTED}})
    );

    // An operator's set-password meets the same filter.
    let output = app()
        .database(&database)
        .env("BREACHED_PASSWORDS", &filter)
        .args(["users", "set-password", "ada@example.com"])
        .run_to_exit(&format!("{}\n", listed(7)));
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(one_line(&output).contains("breach"), "{output:?}");
    drop(server);
    database.drop_now().await;
}

#[test]
fn a_corrupt_or_missing_filter_stops_start_up_with_one_line_naming_it() {
    let dir = TempDir::new("breached-corrupt");
    let (hibp, filter) = (
        dir.path().join("pwned.txt"),
        dir.path().join("pwned.filter"),
    );
    write_hibp_file(&hibp);
    import(&hibp, &filter);
    let mut bytes = std::fs::read(&filter).expect("the filter");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&filter, &bytes).expect("corrupted");
    let missing = dir.path().join("missing.filter");
    for (path, reason) in [(&filter, "corrupt"), (&missing, "cannot read")] {
        let output = app()
            .env("BREACHED_PASSWORDS", path)
            .env("PORT", "0")
            .expect_start_failure();
        let line = one_line(&output);
        assert!(line.contains("BREACHED_PASSWORDS"), "{line}");
        assert!(line.contains(&path.display().to_string()), "{line}");
        assert!(line.contains(reason), "{line}");
    }
}

#[test]
fn a_malformed_hibp_file_is_refused_with_its_line_number() {
    let dir = TempDir::new("breached-malformed");
    let hibp = dir.path().join("pwned.txt");
    let good = hibp::line_of(&Password::new("quiet-lantern-meadow"), 1);
    std::fs::write(&hibp, format!("{good}\n{good}\nnot a hash\n")).expect("written");
    let filter = dir.path().join("pwned.filter");
    let output = AppCommand::new(env!("CARGO_BIN_EXE_app"))
        .args([
            "passwords".as_ref(),
            "import".as_ref(),
            hibp.as_os_str(),
            filter.as_os_str(),
        ])
        .run_to_exit("");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let line = one_line(&output);
    assert!(line.contains("line 3"), "{line}");
    assert!(!filter.exists(), "no filter is written");
}
