//! The admin CLI end to end, on every backend: the real `app` binary, configured through
//! its environment as an operator would, next to a real `app` server on the same database.

use std::process::Output;

use auth_testkit::{AppCommand, AppProcess, Backend, SetSessionCookie, TestDatabase};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

auth_testkit::backend_tests! {
    backends: [sqlite, postgres, mysql, mongodb],
    tests: {
        crate => [
            a_user_made_on_the_command_line_logs_in_and_loses_sessions_the_cli_revokes,
            an_unknown_user_or_handle_exits_1_with_one_line,
            install_is_idempotent_and_lists_start_empty,
            queued_mail_is_listed_without_its_content_until_a_server_sends_it,
        ],
    },
}

// Usage does not depend on the backend; SQLite needs no server.
mod usage {
    auth_testkit::backend_tests! {
        backends: [sqlite],
        tests: { crate => [bad_usage_exits_2_and_every_level_has_help] },
    }
}

const SECRET_KEY: &str = "cli-secret-key-cli-secret-key-cli-secret-key-cli-secret-key-cli!!";
const PASSWORD: &str = "velvet-otter-harbour";
const NEW_PASSWORD: &str = "quiet-lantern-meadow";

/// The binary with `database`'s configuration and nothing else from the environment.
fn app(database: &TestDatabase) -> AppCommand {
    AppCommand::new(env!("CARGO_BIN_EXE_app"))
        .env("SECRET_KEY", SECRET_KEY)
        .env("DEBUG", "false")
        .env("SESSION_COOKIE_SECURE", "false")
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("ARGON2_ITERATIONS", "1")
        .database(database)
}

/// Runs `app <args>` with `stdin` piped in (a script, not a terminal).
fn run(database: &TestDatabase, args: &[&str], stdin: &str) -> Output {
    app(database).args(args).run_to_exit(stdin)
}

/// Runs `app <args> --json`, expecting success and one JSON document on stdout.
fn json(database: &TestDatabase, args: &[&str], stdin: &str) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let output = run(database, &args, stdin);
    assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {output:?}"))
}

/// Asserts that `output` is a failure with exit code 1 and one line on stderr, nothing
/// on stdout; returns the line.
fn failed_with_one_line(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines[0].to_owned()
}

/// An `app` server on the database, killed when dropped.
struct Server(AppProcess);

impl Server {
    async fn start(database: &TestDatabase) -> Self {
        let server = app(database)
            .env("LOG", "warn")
            .spawn_ready()
            .await
            .expect("the server starts");
        Self(server)
    }

    /// Logs in; returns the session cookie, or the status of a refusal.
    async fn log_in(&self, login: &str, password: &str) -> Result<String, StatusCode> {
        let response = reqwest::Client::new()
            .post(self.0.url("/v1/auth/login"))
            .json(&json!({"email_or_username": login, "password": password}))
            .send()
            .await
            .expect("sent");
        if response.status() != StatusCode::OK {
            return Err(response.status());
        }
        Ok(SetSessionCookie::of(response.headers())
            .expect("a session cookie")
            .pair()
            .to_owned())
    }

    async fn profile(&self, cookie: &str) -> StatusCode {
        reqwest::Client::new()
            .get(self.0.url("/profile"))
            .header(header::COOKIE, cookie)
            .send()
            .await
            .expect("sent")
            .status()
    }
}

fn handles(sessions: &Value) -> Vec<String> {
    sessions
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["handle"].as_str().expect("a handle").to_owned())
        .collect()
}

/// The whole story: a user created from stdin logs in over HTTP; the CLI lists
/// and revokes their sessions (by handle, then all of them) and the HTTP session ends;
/// a password set on the command line replaces the old one; the user is deleted.
async fn a_user_made_on_the_command_line_logs_in_and_loses_sessions_the_cli_revokes(
    backend: Backend,
) {
    let database = TestDatabase::create(backend).await;
    let created = json(
        &database,
        &[
            "users",
            "create",
            "--email",
            "Ada@Example.com",
            "--username",
            "ada_l",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(created["email"], "ada@example.com");
    assert_eq!(created["username"], "ada_l");
    assert!(created.get("password_hash").is_none(), "{created}");
    let id = created["id"].as_str().expect("an id").to_owned();
    let shown = run(&database, &["users", "show", "ada_l"], "");
    assert_eq!(shown.status.code(), Some(0), "{shown:?}");
    let table = String::from_utf8_lossy(&shown.stdout);
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains("ada@example.com") && table.contains(&id),
        "{table}"
    );
    assert!(!table.contains("argon2"), "{table}");

    let server = Server::start(&database).await;
    let cookie = server
        .log_in("ada@example.com", PASSWORD)
        .await
        .expect("the password given on stdin logs in");
    assert_eq!(server.profile(&cookie).await, StatusCode::OK);

    let hers = json(&database, &["sessions", "list", "--user", "ada_l"], "");
    let everyones = json(&database, &["sessions", "list"], "");
    assert_eq!(handles(&hers).len(), 1, "{hers}");
    assert_eq!(hers, everyones);
    assert_eq!(everyones[0]["user_id"], id.as_str());
    let handle = &handles(&hers)[0];

    let revoked = json(&database, &["sessions", "revoke", handle], "");
    assert_eq!(revoked, json!({"revoked": 1}));
    assert_eq!(
        server.profile(&cookie).await,
        StatusCode::UNAUTHORIZED,
        "a session revoked on the command line ends at once"
    );
    assert_eq!(json(&database, &["sessions", "list"], ""), json!([]));

    let phone = server.log_in("ada_l", PASSWORD).await.expect("logs in");
    let laptop = server.log_in("ada_l", PASSWORD).await.expect("logs in");
    let revoked = json(&database, &["sessions", "revoke", "--user", &id], "");
    assert_eq!(revoked["revoked"], 2);
    for cookie in [&phone, &laptop] {
        assert_eq!(server.profile(cookie).await, StatusCode::UNAUTHORIZED);
    }

    let events = json(
        &database,
        &["events", "--user", "ada_l", "--limit", "2"],
        "",
    );
    let kinds: Vec<(&str, &str)> = events
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().expect("a kind"),
                e["actor"].as_str().expect("an actor"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [("sessions_revoked", "admin"), ("login_succeeded", "user")],
        "the command line's revocation is in the user's trail, by an admin"
    );
    assert!(!json(&database, &["events"], "")
        .as_array()
        .expect("a list")
        .is_empty());

    let session = server.log_in("ada_l", PASSWORD).await.expect("logs in");
    let set = json(
        &database,
        &["users", "set-password", "ada@example.com"],
        &format!("{NEW_PASSWORD}\n"),
    );
    assert_eq!(set["sessions_ended"], 1);
    assert_eq!(server.profile(&session).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.log_in("ada_l", PASSWORD).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    let session = server.log_in("ada_l", NEW_PASSWORD).await.expect("logs in");

    let deleted = json(&database, &["users", "delete", "ada_l"], "");
    assert_eq!(deleted, json!({"deleted": id, "sessions_ended": 1}));
    assert_eq!(server.profile(&session).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.log_in("ada_l", NEW_PASSWORD).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(json(&database, &["users", "list"], ""), json!([]));

    drop(server);
    database.drop_now().await;
}

async fn an_unknown_user_or_handle_exits_1_with_one_line(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    for args in [
        &["users", "show", "nobody@example.com"][..],
        &["users", "delete", "nobody"],
        &[
            "sessions",
            "list",
            "--user",
            "0190f0c4-0000-7000-8000-000000000000",
        ],
        &["events", "--user", "nobody", "--json"],
    ] {
        let line = failed_with_one_line(&run(&database, args, ""));
        assert!(line.contains("no such user"), "{args:?}: {line}");
    }
    let line = failed_with_one_line(&run(
        &database,
        &["users", "set-password", "nobody"],
        &format!("{PASSWORD}\n"),
    ));
    assert!(line.contains("no such user"), "{line}");
    let handle = "0".repeat(64);
    let line = failed_with_one_line(&run(&database, &["sessions", "revoke", &handle], ""));
    assert!(line.contains("no live session"), "{line}");

    // A refused password is one line too, and creates nobody.
    let line = failed_with_one_line(&run(
        &database,
        &["users", "create", "--email", "ada@example.com"],
        "password\n",
    ));
    assert!(line.starts_with("error: refused: password: "), "{line}");
    assert_eq!(json(&database, &["users", "list"], ""), json!([]));
    database.drop_now().await;
}

async fn install_is_idempotent_and_lists_start_empty(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    for _ in 0..2 {
        let installed = json(&database, &["install"], "");
        assert_eq!(installed["installed"], true);
    }
    for args in [
        &["users", "list"][..],
        &["sessions", "list"],
        &["events"],
        &["mail", "list"],
    ] {
        assert_eq!(json(&database, args, ""), json!([]), "{args:?}");
    }
    assert_eq!(
        json(&database, &["sessions", "purge"], ""),
        json!({"purged": 0})
    );
    database.drop_now().await;
}

/// A user made on the command line is mailed a verification link: the CLI queues it (it
/// sends nothing itself), lists it without its content, and a server's worker sends it.
async fn queued_mail_is_listed_without_its_content_until_a_server_sends_it(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    json(
        &database,
        &["users", "create", "--email", "ada@example.com"],
        &format!("{PASSWORD}\n"),
    );
    let pending = json(&database, &["mail", "list", "--status", "pending"], "");
    let pending = pending.as_array().expect("a list");
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["kind"], "email_verification");
    assert_eq!(pending[0]["to"], "ada@example.com");
    assert_eq!(pending[0]["attempts"], 0);
    let listed = run(&database, &["mail", "list"], "");
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(table.starts_with("ID  "), "{table}");
    for shown in [table.as_ref(), &format!("{pending:?}")] {
        assert!(
            !shown.contains("token") && !shown.contains("http"),
            "{shown}"
        );
    }
    let id = pending[0]["id"].as_str().expect("an id").to_owned();

    // Nothing failed: nothing to retry, and an id that names no failed mail is an error.
    assert_eq!(
        json(&database, &["mail", "retry"], ""),
        json!({"retried": 0})
    );
    let line = failed_with_one_line(&run(&database, &["mail", "retry", &id], ""));
    assert_eq!(line, format!("error: no failed mail with id {id}"));

    // A server (no SMTP_URL: mail goes to its MAIL_DIR) sends what is due when it starts.
    let _server = Server::start(&database).await;
    let mut sent = Value::Null;
    for _ in 0..100 {
        sent = json(&database, &["mail", "list", "--status", "sent"], "");
        if sent.as_array().is_some_and(|sent| !sent.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(sent[0]["id"], id.as_str(), "{sent}");
    assert!(sent[0]["sent_at"].is_string(), "{sent}");
    assert_eq!(
        json(&database, &["mail", "list", "--status", "pending"], ""),
        json!([])
    );
    database.drop_now().await;
}

async fn bad_usage_exits_2_and_every_level_has_help(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    for args in [
        &["frobnicate"][..],
        &["users"],
        &["users", "create"],
        &[
            "users",
            "create",
            "--email",
            "a@example.com",
            "--password",
            "x",
        ],
        &["users", "list", "--limit", "many"],
        &["sessions", "revoke"],
        &["sessions", "revoke", "not-a-handle"],
        &["mail", "list", "--status", "lost"],
        &["mail", "retry", "not-an-id"],
    ] {
        let output = run(&database, args, "");
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
    }
    for (args, mentions) in [
        (&["--help"][..], "users"),
        (&["users", "--help"], "set-password"),
        (&["users", "create", "--help"], "--email"),
        (&["sessions", "--help"], "purge"),
        (&["sessions", "revoke", "--help"], "--user"),
        (&["events", "--help"], "--limit"),
        (&["mail", "--help"], "retry"),
        (&["mail", "list", "--help"], "--status"),
    ] {
        let output = run(&database, args, "");
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(help.contains(mentions), "{args:?}: {help}");
    }
    database.drop_now().await;
}
