//! Connections shared fairly (#19): one address holds at most its share, a client that
//! stops reading is cut off, the metrics listener has the API's deadlines, and the listen
//! queue is as long as configured.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    time::{Duration, Instant},
};

use crate::App;

/// Whether the server closes `stream` (EOF or reset) within `limit`, without an answer.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream
        .set_read_timeout(Some(limit))
        .expect("a read timeout");
    let mut buf = [0; 1];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        ),
    }
}

/// `GET path` on a fresh connection: the status line.
fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connected");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .expect("request sent");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_the_connections() {
    let app = App::start("per-address", &[("MAX_CONNECTIONS_PER_ADDRESS", "3")]).await;
    let addr = app.addr();
    // A burst of eight, all connecting at once.
    let connecting: Vec<_> = (0..8)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || TcpStream::connect(addr).expect("the kernel accepts it"))
        })
        .collect();
    let mut burst: Vec<TcpStream> = connecting
        .into_iter()
        .map(|thread| thread.join().expect("connected"))
        .collect();
    let closed = burst
        .iter_mut()
        .map(|stream| closed_within(stream, Duration::from_secs(1)))
        .filter(|closed| *closed)
        .count();
    assert_eq!(
        closed, 5,
        "three of the burst are kept, the other five closed at once"
    );
    drop(burst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get(&addr, "/"),
        "HTTP/1.1 200 OK",
        "closed ones give back their share"
    );
    assert!(app.log().contains("MAX_CONNECTIONS_PER_ADDRESS reached"));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_after_the_write_timeout() {
    let app = App::start(
        "write-timeout",
        &[("WRITE_TIMEOUT", "1"), ("MAX_CONNECTIONS", "1")],
    )
    .await;
    let addr = app.addr();
    // Pipelined requests for the largest answer, never read: once the socket buffers are
    // full, the server's write waits on the client.
    let mut stalled = TcpStream::connect(&addr).expect("connected");
    let request = b"GET /openapi.json HTTP/1.1\r\nHost: test\r\n\r\n";
    let requests: Vec<u8> = request.repeat(2_000);
    stalled.write_all(&requests).expect("requests sent");
    // It holds the only connection slot until the write times out; then another client
    // is served.
    let started = Instant::now();
    let answered = tokio::task::spawn_blocking(move || get(&addr, "/"))
        .await
        .expect("the request ran");
    assert_eq!(answered, "HTTP/1.1 200 OK");
    eprintln!(
        "transport figure: a client behind one that stopped reading was answered after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "well before the header timeout would have freed the slot: {:?}",
        started.elapsed()
    );
    drop(stalled);
}

/// A port no one listens on, for the metrics listener.
fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

#[tokio::test]
async fn the_metrics_listener_closes_a_client_that_says_nothing() {
    let metrics = free_address().to_string();
    let app = App::start(
        "metrics-deadline",
        &[("METRICS_ADDR", &metrics), ("HEADER_READ_TIMEOUT", "1")],
    )
    .await;
    let mut silent = TcpStream::connect(&metrics).expect("connected");
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)),
        "closed after HEADER_READ_TIMEOUT"
    );
    assert_eq!(get(&metrics, "/metrics"), "HTTP/1.1 200 OK");
    drop(app);
}

#[tokio::test]
async fn the_listen_queue_is_as_long_as_configured() {
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .expect("this test reads net.core.somaxconn")
        .trim()
        .parse()
        .expect("a number");
    for backlog in [1000_u32, 77] {
        let app = App::start("backlog", &[("LISTEN_BACKLOG", &backlog.to_string())]).await;
        let port = app.addr().rsplit(':').next().expect("a port").to_owned();
        let listing = std::process::Command::new("ss")
            .args(["-ltnH", &format!("sport = :{port}")])
            .output()
            .expect("this test needs `ss` (iproute2) to read the listen queue's length");
        let listing = String::from_utf8_lossy(&listing.stdout);
        // State, Recv-Q, Send-Q (the backlog of a listening socket), ...
        let queue: u32 = listing
            .split_whitespace()
            .nth(2)
            .and_then(|column| column.parse().ok())
            .unwrap_or_else(|| panic!("a listening socket on {port}: {listing:?}"));
        assert_eq!(queue, backlog.min(somaxconn), "{listing}");
    }
}
