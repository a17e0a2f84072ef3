use std::time::Duration;

use auth_testkit::{Backend, TempDir, TestDatabase};
use figment::Figment;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};

use super::*;

auth_testkit::backend_tests! {
    backends: [sqlite, postgres, mysql, mongodb],
    tests: {
        crate::tests => [
            installing_twice_changes_nothing,
            a_request_in_flight_at_shutdown_is_answered,
        ],
    },
}

const SECRET_KEY: &str = "unit-test-secret-key-unit-test-secret-key-unit-test-secret-key!!";

/// The service on `database`, its mail (no `SMTP_URL`) written into `mail_dir`, never
/// into the working directory.
fn config_for(database: &TestDatabase, mail_dir: &TempDir) -> Config {
    let figment = Figment::new()
        .merge(("SECRET_KEY", SECRET_KEY))
        .merge(("MAIL_DIR", mail_dir.path()))
        .merge(("DEBUG", false))
        .merge(("ARGON2_MEMORY_KIB", 1024))
        .merge(("ARGON2_ITERATIONS", 1));
    let figment = if database.backend().is_sql() {
        figment
            .merge(("STORAGE", "sql"))
            .merge(("DATABASE_URL", database.url()))
    } else {
        figment
            .merge(("STORAGE", "mongodb"))
            .merge(("MONGODB_URL", database.url()))
            .merge(("MONGODB_DB", database.mongo_db_name()))
    };
    Config::from_figment(figment).expect("a valid test configuration")
}

async fn installing_twice_changes_nothing(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mail_dir = TempDir::new("mail");
    let config = config_for(&database, &mail_dir);
    install(&config).await.expect("a fresh install");
    install(&config).await.expect("a second install is a no-op");
    database.drop_now().await;
}

/// Starts a registration whose body is only half sent, asks the server to stop, then
/// sends the rest: the request in flight must still get its answer.
async fn a_request_in_flight_at_shutdown_is_answered(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("bound");
    let (stop, stopped) = oneshot::channel::<()>();
    let mail_dir = TempDir::new("mail");
    let server = tokio::spawn(run(
        config_for(&database, &mail_dir),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));

    let mut ready = false;
    for _ in 0..400 {
        if reqwest::get(format!("http://{address}/"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ready, "the server did not start");

    let body = br#"{"email":"ada@example.com","password":"velvet-otter-harbour"}"#;
    let (first, rest) = body.split_at(20);
    let mut stream = TcpStream::connect(address).await.expect("connected");
    let head = format!(
        "POST /v1/auth/register HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("sent");
    stream.write_all(first).await.expect("sent");
    // Let the server accept the connection and start on the request before it is told
    // to stop; the assertion below does not depend on how long anything takes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(()).expect("the server is running");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!server.is_finished(), "the server waits for the request");
    stream.write_all(rest).await.expect("sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("a response, then the connection closes");
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops once the request is answered")
        .expect("the server task did not panic")
        .expect("the server stopped cleanly");
    database.drop_now().await;
}

#[tokio::test]
async fn an_unreachable_database_fails_start_up_naming_the_key_without_the_password() {
    let config = Config::from_figment(
        Figment::new()
            .merge(("SECRET_KEY", SECRET_KEY))
            .merge(("DATABASE_URL", "postgres://app:hunter2@127.0.0.1:1/auth")),
    )
    .expect("valid");
    let error = install(&config)
        .await
        .expect_err("nothing listens on port 1");
    let line = format!("{error:#}");
    assert!(line.contains("DATABASE_URL"), "{line}");
    assert!(!line.contains("hunter2"), "{line}");
}
