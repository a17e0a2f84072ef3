//! Slow and hostile clients: connections that stall mid-headers (slowloris), bodies that
//! stall or drip, too many headers, more connections than the cap.

use std::{
    io::{ErrorKind, Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use reqwest::StatusCode;

use crate::{raise_own_descriptor_limit, App};

/// As many stalled connections as the issue asks the service to shrug off.
const STALLED: usize = 2_000;

/// Half a request: a request line and the start of a header, never finished.
const HALF_A_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

/// Opens `n` connections to `addr` that each send half a request and then stall.
fn stall(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            let mut stream = TcpStream::connect(addr)
                .unwrap_or_else(|e| panic!("stalled connection {i} could not connect: {e}"));
            stream
                .write_all(HALF_A_REQUEST)
                .expect("half a request sent");
            stream
        })
        .collect()
}

/// Whether the service still holds `stream` open: nothing to read, and no end of stream.
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("non-blocking");
    let mut buf = [0; 64];
    let open = matches!((&*stream).read(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock);
    stream.set_nonblocking(false).expect("blocking");
    open
}

/// Reads until the service closes `stream` (or resets it), at most until `deadline`;
/// returns what it sent, or `None` when it was still open at the deadline.
fn read_until_closed(stream: &mut TcpStream, deadline: Instant) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).expect("a read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Some(received),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            // Reset: closed all the same.
            Err(_) => return Some(received),
        }
    }
}

/// Sends `request` on a fresh connection and returns everything the service sent before
/// closing it (at most 30 s).
fn exchange(addr: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connected");
    stream.write_all(request).expect("request sent");
    let received = read_until_closed(&mut stream, Instant::now() + Duration::from_secs(30))
        .expect("the service answers and closes the connection");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_client_is_answered_while_two_thousand_connections_stall() {
    raise_own_descriptor_limit(STALLED as u64 + 512);
    // Long enough that every stalled connection is still open when the client is served.
    let app = App::start("stalled", &[("HEADER_READ_TIMEOUT", "300")]).await;
    app.register("early@example.com").await;
    let before = app.rss_kib();

    let addr = app.addr();
    let stalled = tokio::task::spawn_blocking(move || stall(&addr, STALLED))
        .await
        .expect("stalled connections");

    // Connections are accepted in order: once this one (a new connection) is answered,
    // every stalled one is in.
    let index = reqwest::Client::new()
        .get(app.url("/"))
        .send()
        .await
        .expect("GET /");
    assert_eq!(index.status(), StatusCode::OK);
    app.register("ada@example.com").await;
    let login = app.login("ada@example.com").await.expect("login answered");
    assert_eq!(login.status(), StatusCode::OK);

    let during = app.rss_kib();
    let open = stalled.iter().filter(|stream| still_open(stream)).count();
    assert_eq!(
        open, STALLED,
        "the stalled connections were still being held"
    );
    eprintln!(
        "transport figure: VmRSS {before} KiB before, {during} KiB under {STALLED} stalled \
         connections ({} KiB more, {:.1} KiB each)",
        during.saturating_sub(before),
        during.saturating_sub(before) as f64 / STALLED as f64
    );
    // Bounded: a stalled connection costs a socket and a small buffer, never megabytes.
    assert!(
        during.saturating_sub(before) < 200 * 1024,
        "{STALLED} stalled connections grew the service by {} KiB",
        during - before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_are_closed_after_the_header_timeout_and_said_so() {
    raise_own_descriptor_limit(STALLED as u64 + 512);
    let app = App::start("header-timeout", &[("HEADER_READ_TIMEOUT", "1")]).await;
    let addr = app.addr();
    let closed = tokio::task::spawn_blocking(move || {
        let mut stalled = stall(&addr, STALLED);
        // Generous: the timeout is one second.
        let deadline = Instant::now() + Duration::from_secs(60);
        stalled
            .iter_mut()
            .filter_map(|stream| read_until_closed(stream, deadline))
            .count()
    })
    .await
    .expect("read the stalled connections");
    assert_eq!(closed, STALLED, "every stalled connection is closed");

    let index = app.client.get(app.url("/")).send().await.expect("GET /");
    assert_eq!(index.status(), StatusCode::OK);
    assert!(
        app.log()
            .contains("did not send its headers within HEADER_READ_TIMEOUT"),
        "slow clients are logged:\n{}",
        app.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let app = App::start("keep-alive", &[("HEADER_READ_TIMEOUT", "1")]).await;
    let addr = app.addr();
    let received = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&addr).expect("connected");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("request sent");
        read_until_closed(&mut stream, Instant::now() + Duration::from_secs(60))
    })
    .await
    .expect("read")
    .expect("the idle connection is closed");
    let received = String::from_utf8_lossy(&received);
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_or_drips_is_answered_408_and_closed() {
    let app = App::start("body-timeout", &[("BODY_READ_TIMEOUT", "1")]).await;
    let head = "POST /v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/json\r\nContent-Length: 200\r\n\r\n";
    let addr = app.addr();
    let stalled = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || exchange(&addr, format!("{head}{{\"email_or_username\":").as_bytes())
    })
    .await
    .expect("stalled body");
    assert!(stalled.starts_with("HTTP/1.1 408"), "{stalled}");
    assert!(stalled.contains("\"code\":\"body_timeout\""), "{stalled}");

    let dripped = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&addr).expect("connected");
        stream.write_all(head.as_bytes()).expect("head sent");
        let mut writer = stream.try_clone().expect("a second handle");
        let drip = std::thread::spawn(move || {
            // One byte every 200 ms: 200 bytes would take 40 s.
            for _ in 0..200 {
                if writer.write_all(b" ").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let received = read_until_closed(&mut stream, Instant::now() + Duration::from_secs(30));
        drop(stream);
        let _ = drip.join();
        received
    })
    .await
    .expect("dripped body")
    .expect("the service answers and closes the connection");
    let dripped = String::from_utf8_lossy(&dripped);
    assert!(dripped.starts_with("HTTP/1.1 408"), "{dripped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_or_too_large_headers_are_answered_431() {
    let app = App::start("headers", &[]).await;
    let addr = app.addr();
    tokio::task::spawn_blocking(move || {
        let many: String = (0..150).map(|i| format!("X-Header-{i}: {i}\r\n")).collect();
        let answer = exchange(
            &addr,
            format!("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n{many}\r\n").as_bytes(),
        );
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

        let large = "a".repeat(100 * 1024);
        let answer = exchange(
            &addr,
            format!("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Large: {large}\r\n\r\n").as_bytes(),
        );
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    })
    .await
    .expect("431s");
    let index = app.client.get(app.url("/")).send().await.expect("GET /");
    assert_eq!(index.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_a_free_slot_instead_of_failing() {
    let app = App::start(
        "cap",
        &[("MAX_CONNECTIONS", "20"), ("HEADER_READ_TIMEOUT", "2")],
    )
    .await;
    let addr = app.addr();
    let stalled = tokio::task::spawn_blocking(move || stall(&addr, 20))
        .await
        .expect("stalled connections");
    // A new connection: waits in the listen queue until the header timeout frees a slot,
    // then is served.
    let index = reqwest::Client::new()
        .get(app.url("/"))
        .send()
        .await
        .expect("GET /");
    assert_eq!(index.status(), StatusCode::OK);
    assert!(
        app.log().contains("MAX_CONNECTIONS reached"),
        "reaching the cap is logged:\n{}",
        app.log()
    );
    drop(stalled);
}
