//! The outbox survives `kill -9` (#20): a mail written but not yet sent when the process
//! dies goes out once another instance runs on the database; and SMTP being down when it
//! was written changes nothing. Real `app` processes, a real SMTP server behind a relay
//! the test takes down and up (`auth_testkit::smtp_relay`).

use std::time::Duration;

use auth_testkit::{
    mailbox::{self, Mailbox},
    smtp_relay::SmtpRelay,
    AppCommand, AppProcess, Backend, TempDir, TestDatabase,
};
use reqwest::StatusCode;
use serde_json::json;

/// Under `smtp`, so that `cargo xtask test` skips them when it cannot start the server.
mod smtp {
    auth_testkit::backend_tests! {
        backends: [sqlite, postgres, mysql, mongodb],
        tests: {
            crate => [a_mail_pending_at_kill_9_goes_out_after_the_restart],
        },
    }
}

const SECRET_KEY: &str = "outbox-crash-secret-key-outbox-crash-secret-key-outbox-crash-key";
const PASSWORD: &str = "velvet-otter-harbour";

async fn start(database: &TestDatabase, smtp_url: &str, mail_dir: &TempDir) -> AppProcess {
    AppCommand::new(env!("CARGO_BIN_EXE_app"))
        .env("SECRET_KEY", SECRET_KEY)
        .env("DEBUG", "false")
        .env("SESSION_COOKIE_SECURE", "false")
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("ARGON2_ITERATIONS", "1")
        .env("LOG", "warn")
        .env("EMAIL_VERIFICATION", "off")
        .env("SMTP_URL", smtp_url)
        .env("MAIL_DIR", mail_dir.path())
        .database(database)
        .spawn_ready()
        .await
        .expect("the instance starts")
}

async fn a_mail_pending_at_kill_9_goes_out_after_the_restart(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let relay = SmtpRelay::to_url(&mailbox::smtp_url()).await;
    relay.down();
    let mail_dir = TempDir::new("outbox-crash");
    let ada = format!("ada.{:016x}@example.com", rand::random::<u64>());
    let first = start(&database, &relay.url(), &mail_dir).await;
    let http = reqwest::Client::new();
    let registered = http
        .post(first.url("/v1/auth/register"))
        .json(&json!({"email": ada, "password": PASSWORD}))
        .send()
        .await
        .expect("sent");
    assert_eq!(registered.status(), StatusCode::CREATED);
    let forgot = http
        .post(first.url("/v1/auth/password/forgot"))
        .json(&json!({"email": ada}))
        .send()
        .await
        .expect("sent");
    assert_eq!(forgot.status(), StatusCode::ACCEPTED);
    // The request is handled after its answer, and the worker's first attempt meets the
    // relay down: the mail is written and unsent when the process dies.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        Mailbox::from_env().messages_to(&ada).is_empty(),
        "SMTP was down"
    );
    first.kill();

    relay.up();
    let _second = start(&database, &relay.url(), &mail_dir).await;
    let received = Mailbox::from_env()
        .wait_for(&ada, 1, Duration::from_secs(90))
        .await;
    assert_eq!(received.len(), 1, "{received:#?}");
    assert!(received[0].token().is_some(), "the reset link");
    // It went once: give the worker time to send it twice, if it would.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(Mailbox::from_env().messages_to(&ada).len(), 1);
    database.drop_now().await;
}
