//! The load generator: a fixed number of clients, each with one kept-alive HTTP/1.1
//! connection (hyper's low-level client, so the generator costs little CPU), sending one
//! request after another for a fixed time, with latencies in an HDR histogram. A client
//! may also repeat a [`Flow`] instead: several requests that make one operation (a login
//! in two steps), timed as a whole.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{ensure, Context as _, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::{
    client::conn::http1::{self, SendRequest},
    header::{HeaderValue, HOST},
    HeaderMap, Method, Request, Response, StatusCode, Uri,
};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpStream, task::JoinSet};

/// No request may take longer; the run always ends on its own.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Highest latency the histogram records, in microseconds (above the request timeout).
const MAX_LATENCY_US: u64 = 120_000_000;

/// One request of a scenario, prepared once and copied for every send.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    /// The status that counts as an answer; any 2xx when `None`.
    expect: Option<StatusCode>,
}

impl Template {
    /// A request for `path` on the server at `addr`, with a `Host` header.
    pub(crate) fn new(method: Method, addr: SocketAddr, path: &'static str) -> Self {
        let mut headers = HeaderMap::new();
        if let Ok(host) = HeaderValue::from_str(&addr.to_string()) {
            headers.insert(HOST, host);
        }
        Self {
            method,
            uri: Uri::from_static(path),
            headers,
            body: Bytes::new(),
            expect: None,
        }
    }

    /// Counts `status`, and only it, as an answer (a refusal being what is measured).
    pub(crate) fn expect(mut self, status: StatusCode) -> Self {
        self.expect = Some(status);
        self
    }

    fn answered(&self, status: StatusCode) -> bool {
        self.expect
            .map_or_else(|| status.is_success(), |expected| status == expected)
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: hyper::header::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Sets the body.
    pub(crate) fn body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }

    fn build(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// What one scenario measured.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    /// Concurrent clients.
    pub(crate) concurrency: usize,
    /// 2xx responses.
    pub(crate) ok: u64,
    /// Non-2xx responses and transport failures.
    pub(crate) errors: u64,
    /// The first error seen, to tell what went wrong.
    pub(crate) first_error: Option<String>,
    /// From the start until the last client finished.
    pub(crate) elapsed: Duration,
    /// Latencies of the 2xx responses, in microseconds.
    pub(crate) latency_us: Histogram<u64>,
    /// CPU time spent meanwhile, when measured.
    pub(crate) cpu: Option<CpuTime>,
}

impl Measured {
    fn empty(concurrency: usize) -> Self {
        Self {
            concurrency,
            ok: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("constant histogram bounds are valid"),
            cpu: None,
        }
    }

    fn error(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }

    /// Adds what one client measured.
    fn absorb(&mut self, part: Self) -> Result<()> {
        self.ok += part.ok;
        self.errors += part.errors;
        self.first_error = self.first_error.take().or(part.first_error);
        self.latency_us
            .add(&part.latency_us)
            .context("cannot merge latency histograms")
    }

    fn record(&mut self, started: Instant) {
        self.ok += 1;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.latency_us.saturating_record(micros.max(1));
    }

    /// Successful responses per second.
    pub(crate) fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// A latency quantile in milliseconds (0 when nothing succeeded).
    pub(crate) fn quantile_ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// CPU seconds used by the server and by this process (the load generator) during a
/// scenario: with both on the same few cores, it tells who was the bottleneck.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuTime {
    /// The app under test.
    pub(crate) server_secs: f64,
    /// This process.
    pub(crate) client_secs: f64,
}

impl CpuTime {
    /// CPU seconds of process `pid` (`self` for this one) so far, from `/proc`.
    fn of_process(pid: &str) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces:
        // state is field 3, utime 14 and stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // /proc counts in USER_HZ, which Linux fixes at 100 for user space.
        Some(ticks as f64 / 100.0)
    }

    /// Both processes' CPU seconds so far.
    pub(crate) fn now(server_pid: u32) -> Option<Self> {
        Some(Self {
            server_secs: Self::of_process(&server_pid.to_string())?,
            client_secs: Self::of_process("self")?,
        })
    }

    /// The CPU used between `earlier` and `self`.
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            server_secs: self.server_secs - earlier.server_secs,
            client_secs: self.client_secs - earlier.client_secs,
        }
    }
}

/// Sends `template` from `concurrency` clients, each on its own connection, for `duration`.
pub(crate) async fn drive(
    addr: SocketAddr,
    concurrency: usize,
    duration: Duration,
    template: &Arc<Template>,
) -> Result<Measured> {
    let never = Arc::new(AtomicBool::new(false));
    drive_until(addr, concurrency, duration, &never, template).await
}

/// As [`drive`], but the clients also stop, each after its request in flight, once `stop`
/// is set: for a scenario that lasts as long as something else does.
pub(crate) async fn drive_until(
    addr: SocketAddr,
    concurrency: usize,
    duration: Duration,
    stop: &Arc<AtomicBool>,
    template: &Arc<Template>,
) -> Result<Measured> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut clients = JoinSet::new();
    for _ in 0..concurrency {
        let template = Arc::clone(template);
        let stop = Arc::clone(stop);
        clients.spawn(async move { one_client(addr, deadline, &stop, &template).await });
    }
    let mut total = Measured::empty(concurrency);
    while let Some(joined) = clients.join_next().await {
        total.absorb(joined.context("a load client panicked")?)?;
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

async fn one_client(
    addr: SocketAddr,
    deadline: Instant,
    stop: &AtomicBool,
    template: &Template,
) -> Measured {
    let going = || Instant::now() < deadline && !stop.load(Ordering::Relaxed);
    let mut part = Measured::empty(1);
    'connect: while going() {
        let (mut sender, connection) = match open(addr).await {
            Ok(opened) => opened,
            Err(error) => {
                part.error(format!("connecting: {error:#}"));
                // A dead server refuses at once: do not spin on it.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // The connection is driven by this task, not a task of its own: no hand-over
        // between tasks (and threads) for every request keeps the generator cheap.
        let mut connection = std::pin::pin!(connection);
        while going() {
            let sent = Instant::now();
            let request = exchange(&mut sender, template.build());
            let answer = tokio::select! {
                biased;
                answer = tokio::time::timeout(REQUEST_TIMEOUT, request) => answer,
                ended = &mut connection => {
                    part.error(match ended {
                        Ok(()) => "the server closed the connection".to_owned(),
                        Err(error) => format!("transport: {error}"),
                    });
                    continue 'connect;
                }
            };
            match answer {
                Ok(Ok(status)) if template.answered(status) => part.record(sent),
                Ok(Ok(status)) => part.error(format!("HTTP {status}")),
                Ok(Err(error)) => {
                    part.error(format!("transport: {error}"));
                    continue 'connect;
                }
                Err(_) => {
                    part.error(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()));
                    continue 'connect;
                }
            }
        }
    }
    part
}

/// Why one run of a [`Flow`] did not complete.
#[derive(Debug)]
pub(crate) enum FlowError {
    /// An answer that is not the flow's, or nothing to do: counted, the connection kept.
    Refused(String),
    /// The connection is gone: counted, and the client opens another.
    Broken(String),
}

/// An operation of several requests that a client repeats, each run timed from its first
/// request to its last answer. It owns what its client needs between requests (an
/// authenticator, a pool of users), and is handed back when the run ends.
pub(crate) trait Flow: Send + 'static {
    /// Runs the operation once on `client`.
    fn run(&mut self, client: &mut Client) -> impl Future<Output = Result<(), FlowError>> + Send;
}

/// Repeats each of `flows` on its own connection for `duration`, one client per flow;
/// returns what was measured and the flows.
pub(crate) async fn drive_flows<F: Flow>(
    addr: SocketAddr,
    flows: Vec<F>,
    duration: Duration,
) -> Result<(Measured, Vec<F>)> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut total = Measured::empty(flows.len());
    let mut clients = JoinSet::new();
    for flow in flows {
        clients.spawn(one_flow_client(addr, deadline, flow));
    }
    let mut flows = Vec::with_capacity(total.concurrency);
    while let Some(joined) = clients.join_next().await {
        let (part, flow) = joined.context("a load client panicked")?;
        total.absorb(part)?;
        flows.push(flow);
    }
    total.elapsed = started.elapsed();
    Ok((total, flows))
}

async fn one_flow_client<F: Flow>(
    addr: SocketAddr,
    deadline: Instant,
    mut flow: F,
) -> (Measured, F) {
    let mut part = Measured::empty(1);
    'connect: while Instant::now() < deadline {
        let mut client = match Client::open(addr).await {
            Ok(client) => client,
            Err(error) => {
                part.error(format!("connecting: {error:#}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while Instant::now() < deadline {
            let started = Instant::now();
            match flow.run(&mut client).await {
                Ok(()) => part.record(started),
                Err(FlowError::Refused(error)) => part.error(error),
                Err(FlowError::Broken(error)) => {
                    part.error(error);
                    continue 'connect;
                }
            }
        }
    }
    (part, flow)
}

/// One kept-alive connection that answers whole responses, for a [`Flow`] that reads what
/// the server answers (a cookie, options to sign). Like the plain clients, it drives its
/// connection in the task that sends, with no task of its own.
pub(crate) struct Client {
    sender: SendRequest<Full<Bytes>>,
    connection: Pin<Box<Connection>>,
}

impl Client {
    async fn open(addr: SocketAddr) -> Result<Self> {
        let (sender, connection) = open(addr).await?;
        Ok(Self {
            sender,
            connection: Box::pin(connection),
        })
    }

    /// Sends `template`'s request and reads the whole answer, whatever its status.
    pub(crate) async fn send(&mut self, template: &Template) -> Result<Response<Bytes>, FlowError> {
        let Self { sender, connection } = self;
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(template.build()).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>(Response::from_parts(parts, body))
        };
        tokio::select! {
            biased;
            answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange) => match answer {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(error)) => Err(FlowError::Broken(format!("transport: {error}"))),
                Err(_) => Err(FlowError::Broken(format!(
                    "{} {}: no answer within {}s",
                    template.method,
                    template.uri,
                    REQUEST_TIMEOUT.as_secs()
                ))),
            },
            ended = connection.as_mut() => Err(FlowError::Broken(match ended {
                Ok(()) => "the server closed the connection".to_owned(),
                Err(error) => format!("transport: {error}"),
            })),
        }
    }
}

/// Sends each template its count of times, in order, one after the other on one kept-alive
/// connection, failing at the first answer that is not the template's: for counting what
/// a fixed number of requests costs the server, where only the count matters.
pub(crate) async fn send_in_turn(addr: SocketAddr, requests: &[(&Template, u64)]) -> Result<()> {
    let (mut sender, connection) = open(addr).await?;
    // Ends when the sender is dropped, below.
    let connection = tokio::spawn(connection);
    for (template, count) in requests {
        for sent in 0..*count {
            let what = || {
                format!(
                    "{} {} (request {} of {count})",
                    template.method,
                    template.uri,
                    sent + 1
                )
            };
            let status =
                tokio::time::timeout(REQUEST_TIMEOUT, exchange(&mut sender, template.build()))
                    .await
                    .with_context(|| {
                        format!(
                            "{}: no answer within {}s",
                            what(),
                            REQUEST_TIMEOUT.as_secs()
                        )
                    })?
                    .with_context(what)?;
            ensure!(template.answered(status), "{} answered {status}", what());
        }
    }
    drop(sender);
    connection
        .await
        .context("the connection task panicked")?
        .context("the connection failed")
}

/// Sends the templates in turn, `rounds` times over, one request at a time on one
/// kept-alive connection, and returns each template's latencies (microseconds): for
/// comparing requests that must not be told apart by their timing, each measured right
/// beside the other under the same conditions.
pub(crate) async fn alternate(
    addr: SocketAddr,
    templates: &[&Template],
    rounds: u64,
) -> Result<Vec<Histogram<u64>>> {
    let (mut sender, connection) = open(addr).await?;
    let connection = tokio::spawn(connection);
    let mut latencies = vec![Measured::empty(1).latency_us; templates.len()];
    for round in 0..rounds {
        for (template, latency) in templates.iter().zip(&mut latencies) {
            let started = Instant::now();
            let status =
                tokio::time::timeout(REQUEST_TIMEOUT, exchange(&mut sender, template.build()))
                    .await
                    .with_context(|| format!("{} {}: no answer", template.method, template.uri))?
                    .with_context(|| format!("{} {}", template.method, template.uri))?;
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            ensure!(
                template.answered(status),
                "{} {} answered {status} (round {round})",
                template.method,
                template.uri
            );
            latency.saturating_record(micros.max(1));
        }
    }
    drop(sender);
    connection
        .await
        .context("the connection task panicked")?
        .context("the connection failed")?;
    Ok(latencies)
}

/// Sends a request and reads the whole response, so the connection can carry the next.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<StatusCode, hyper::Error> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    Ok(status)
}

/// A new HTTP/1.1 connection to `addr`: the handle to send on, and the connection
/// itself, which must be polled for the handle to make progress.
async fn open(addr: SocketAddr) -> Result<(SendRequest<Full<Bytes>>, Connection)> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake failed")
}

type Connection = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// Sends one request on a fresh connection and returns the whole response.
pub(crate) async fn send_once(addr: SocketAddr, template: &Template) -> Result<Response<Bytes>> {
    let (mut sender, connection) = open(addr).await?;
    // Drives the connection; it ends when the sender is dropped or the server hangs up.
    tokio::spawn(connection);
    let send = async {
        sender.ready().await?;
        let response = sender.send_request(template.build()).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok::<_, hyper::Error>(Response::from_parts(parts, body))
    };
    let what = format!("{} {}", template.method, template.uri);
    tokio::time::timeout(REQUEST_TIMEOUT, send)
        .await
        .with_context(|| format!("{what}: no answer within {}s", REQUEST_TIMEOUT.as_secs()))?
        .with_context(|| format!("{what} failed"))
}
