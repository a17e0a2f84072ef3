//! Shutdown: SIGTERM lets logins in flight finish, refuses new connections at once, and
//! is bounded by `SHUTDOWN_TIMEOUT`.

use std::{
    io::{ErrorKind, Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::json;

use crate::{App, PASSWORD};

/// Logins in flight when SIGTERM arrives.
const IN_FLIGHT: usize = 16;

/// A whole login request, on a connection the service closes after answering.
fn login_request(email: &str) -> Vec<u8> {
    let body = json!({"email_or_username": email, "password": PASSWORD}).to_string();
    format!(
        "POST /v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Everything the service sends on `stream` until it closes it (at most two minutes).
fn answer(mut stream: TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("a read timeout");
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    String::from_utf8_lossy(&received).into_owned()
}

/// Waits until the service has accepted every connection opened so far: connections are
/// accepted in order, so a new one answered means the earlier ones are in.
async fn accepted_so_far(app: &App) {
    let index = reqwest::Client::new()
        .get(app.url("/"))
        .send()
        .await
        .expect("GET /");
    assert_eq!(index.status(), StatusCode::OK);
    // And a moment for each connection's task to read its request.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Waits until a new connection is refused (at most `limit`); returns how long that took.
async fn refused_within(addr: &str, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        match tokio::net::TcpStream::connect(addr).await {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Some(started.elapsed()),
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_with_sixteen_logins_in_flight_answers_them_all() {
    let mut app = App::start(
        "shutdown",
        &[
            // One hash at a time, each a while: the sixteen queue up behind each other.
            ("MAX_CONCURRENT_HASHES", "1"),
            ("HASH_QUEUE_LIMIT", "64"),
            ("ARGON2_MEMORY_KIB", "19456"),
            ("ARGON2_ITERATIONS", "6"),
        ],
    )
    .await;
    app.register("ada@example.com").await;

    let logins: Vec<TcpStream> = (0..IN_FLIGHT)
        .map(|_| {
            let mut stream = TcpStream::connect(app.addr()).expect("connected");
            stream
                .write_all(&login_request("ada@example.com"))
                .expect("login sent");
            stream
        })
        .collect();
    let answers: Vec<_> = logins
        .into_iter()
        .map(|stream| tokio::task::spawn_blocking(move || answer(stream)))
        .collect();
    accepted_so_far(&app).await;

    let signalled = Instant::now();
    app.terminate();
    let refused = refused_within(&app.addr(), Duration::from_secs(10))
        .await
        .expect("new connections are refused once shutdown starts");

    let mut answered = 0;
    for answer in answers {
        let answer = answer.await.expect("read the answer");
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "a login in flight was not answered 200: {answer:?}\n{}",
            app.log()
        );
        answered += 1;
    }
    let all_answered = signalled.elapsed();
    let status = app
        .exited_within(Duration::from_secs(60))
        .await
        .expect("the service exits after SIGTERM");
    let exited = signalled.elapsed();
    assert!(status.success(), "{status}\n{}", app.log());
    assert!(!app.log().contains("panicked"), "{}", app.log());
    eprintln!(
        "transport figure: SIGTERM with {answered} logins in flight: new connections refused \
         after {refused:?}, all answered after {all_answered:?}, process exited after {exited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_by_shutdown_timeout_even_with_a_request_that_never_ends() {
    let mut app = App::start(
        "shutdown-bound",
        &[
            ("SHUTDOWN_TIMEOUT", "2"),
            ("BODY_READ_TIMEOUT", "600"),
            ("REQUEST_TIMEOUT", "600"),
        ],
    )
    .await;
    // A login whose body never finishes: in flight for as long as the body timeout.
    let mut stalled = TcpStream::connect(app.addr()).expect("connected");
    stalled
        .write_all(
            b"POST /v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"email",
        )
        .expect("half a login sent");
    accepted_so_far(&app).await;

    let signalled = Instant::now();
    app.terminate();
    // Far below the ten minutes the request could otherwise hold the process.
    let status = app
        .exited_within(Duration::from_secs(60))
        .await
        .expect("the service exits within SHUTDOWN_TIMEOUT and a margin");
    let exited = signalled.elapsed();
    assert!(status.success(), "{status}\n{}", app.log());
    assert!(
        app.log().contains("SHUTDOWN_TIMEOUT"),
        "giving up on a request is logged:\n{}",
        app.log()
    );
    eprintln!(
        "transport figure: SIGTERM with a request that never ends, SHUTDOWN_TIMEOUT=2: \
         process exited after {exited:?}"
    );
    drop(stalled);
}
