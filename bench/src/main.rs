//! The benchmark: the release app on a fresh database, driven over loopback by a load
//! generator in this process. Scenarios: the HTTP floor (`GET /`), an authenticated
//! `GET /profile`, logins, and `GET /profile` while other clients log in; then, on the
//! SQL backends, the `two_reads` baseline (two bare sea-orm reads per request) on the same
//! database, which `GET /profile` is compared with. It reports and checks targets; it never
//! fails because a target is missed.
//!
//! `cargo xtask bench` provides the database server, builds this crate and the app in
//! release, and runs this binary; `bench --help` tells how to run it directly.

// Printing progress and the report to the terminal is what this binary is for.
#![allow(clippy::print_stdout)]

mod load;
mod report;
mod server;

use std::{
    net::SocketAddr,
    process::ExitCode,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, ensure, Context as _, Result};
use auth_testkit::db::{Backend, TestDatabase};
use bytes::Bytes;
use hyper::{
    header::{HeaderValue, CONTENT_TYPE, COOKIE, SET_COOKIE},
    Method, StatusCode,
};

use load::{drive, send_once, CpuTime, Measured, Template};
use report::Report;
use server::{Paths, Server};

const USAGE: &str = "\
usage: bench [--backend sqlite|postgres|mysql|mongodb] [--duration SECS] [--concurrency N]

Load-tests the release app over loopback on a throwaway database (defaults: sqlite, 10 s
per scenario, 32 clients for GET / and GET /profile; logins always use 8), then, on the SQL
backends, the two_reads baseline on the same database. The results are printed and written
as JSON to <target-dir>/bench/.

It runs the release `app` and `two_reads` binaries found in the directory of this executable
(<target-dir>/release/): build them with `cargo build --release -p app` and then
`cargo build --release -p bench` (apart, so that the app is built as it ships). The database
servers come from DATABASE_URL_POSTGRES and DATABASE_URL_MYSQL (default: local servers) and
MONGODB_URL (required for mongodb). `cargo xtask bench` does all of this: it builds, provides
the server, and runs this binary with the same flags.";

/// Clients logging in for scenario (c) and during the login storm (d).
const LOGIN_CLIENTS: usize = 8;
/// Clients reading their profile during the login storm: a light load, so that the p99
/// shows what the hashing does to other requests rather than queueing among readers.
const STORM_PROFILE_CLIENTS: usize = 4;
/// Load before each scenario that is not measured (connections, caches, allocator).
const WARM_UP: Duration = Duration::from_secs(2);

const EMAIL: &str = "bench@example.com";
const USERNAME: &str = "bench";
// Not secret: it guards a throwaway account in a database dropped after the run.
const PASSWORD: &str = "loopback-benchmark-passphrase-7319";

/// What the benchmark was asked to do.
#[derive(Debug, Clone, Copy)]
struct Options {
    backend: Backend,
    duration: Duration,
    concurrency: usize,
}

impl Options {
    /// Parses `[--backend B] [--duration SECS] [--concurrency N]` (also `--flag=value`).
    fn parse(args: &[String]) -> Result<Self> {
        let mut options = Self {
            backend: Backend::Sqlite,
            duration: Duration::from_secs(10),
            concurrency: 32,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value.to_owned())),
                None => (arg.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next().cloned())
                    .with_context(|| format!("{flag} needs a value"))
            };
            match flag {
                "--backend" => {
                    let name = value()?;
                    options.backend = Backend::from_name(&name)
                        // The kit's in-memory stores are no backend of the app.
                        .filter(|backend| *backend != Backend::Memory)
                        .with_context(|| {
                            format!(
                                "unknown backend `{name}`: use sqlite, postgres, mysql or mongodb"
                            )
                        })?;
                }
                "--duration" => {
                    let secs: u64 = value()?.parse().context("--duration takes whole seconds")?;
                    ensure!(secs > 0, "--duration must be at least 1 second");
                    options.duration = Duration::from_secs(secs);
                }
                "--concurrency" => {
                    options.concurrency = value()?
                        .parse()
                        .context("--concurrency takes a whole number")?;
                    ensure!(options.concurrency > 0, "--concurrency must be at least 1");
                }
                _ => bail!("unknown bench option `{arg}` (try `bench --help`)"),
            }
        }
        Ok(options)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some("help" | "--help" | "-h") = args.first().map(String::as_str) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the benchmark and writes its report under `<target-dir>/bench/`.
fn run(args: &[String]) -> Result<()> {
    let options = Options::parse(args)?;
    // Unoptimised, the load generator would need more CPU than the server it measures,
    // and the binaries beside it would be unoptimised builds too.
    ensure!(
        !cfg!(debug_assertions),
        "the benchmark must be an optimised build: `cargo run --release -p bench`, or `cargo xtask bench`"
    );
    let paths = Paths::beside_this_executable()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let report = runtime.block_on(measure(&paths, options))?;
    report.print();
    report.write(&paths.out)
}

async fn measure(paths: &Paths, options: Options) -> Result<Report> {
    let backend = options.backend;
    // In a task of its own: the kit panics when the server cannot be reached, which is
    // then this run's error rather than a crash.
    let database = tokio::spawn(TestDatabase::create(backend))
        .await
        .with_context(|| format!("cannot create a database on {backend}"))?;
    let report = measure_on(paths, &database, options).await;
    database.drop_now().await;
    report
}

async fn measure_on(paths: &Paths, database: &TestDatabase, options: Options) -> Result<Report> {
    let unix_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or_default();
    println!(
        "bench: starting the app on a fresh {} database",
        options.backend
    );
    let server = Server::app(paths, database).await?;
    println!(
        "bench: app up at http://{} (log {})",
        server.addr,
        server.log().display()
    );

    let addr = server.addr;
    let cookie = register_and_log_in(addr).await?;
    let root = Arc::new(Template::new(Method::GET, addr, "/"));
    let profile = Arc::new(Template::new(Method::GET, addr, "/profile").header(COOKIE, cookie));
    let login = Arc::new(login_request(addr));

    let pid = server.pid();
    let duration = options.duration;
    let root_measured = scenario(addr, pid, "GET /", &root, options.concurrency, duration).await?;
    let profile_measured = scenario(
        addr,
        pid,
        "GET /profile",
        &profile,
        options.concurrency,
        duration,
    )
    .await?;
    let login_measured = scenario(
        addr,
        pid,
        "POST /v1/auth/login",
        &login,
        LOGIN_CLIENTS,
        duration,
    )
    .await?;
    let (storm_profile, storm_login) = login_storm(addr, pid, &profile, &login, duration).await?;

    let peak_rss_bytes = match server.peak_rss_bytes() {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            eprintln!("warning: cannot read the server's peak RSS: {error:#}");
            None
        }
    };
    server.stop().await?;
    // The baseline reads with sea-orm, which has no MongoDB driver.
    let two_reads = if options.backend.is_sql() {
        Some(two_reads_baseline(paths, database, options.concurrency, duration).await?)
    } else {
        None
    };
    Ok(Report {
        backend: options.backend.name().to_owned(),
        unix_time,
        duration: options.duration,
        cores: std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1),
        root: root_measured,
        profile: profile_measured,
        login: login_measured,
        storm_profile,
        storm_login,
        two_reads,
        peak_rss_bytes,
    })
}

/// The baseline for `GET /profile`: two bare sea-orm reads per request, on the database
/// the app just used (its user is registered there), loaded like `GET /profile`. The app
/// is stopped by then, so the two servers never share the machine or the database.
async fn two_reads_baseline(
    paths: &Paths,
    database: &TestDatabase,
    concurrency: usize,
    duration: Duration,
) -> Result<Measured> {
    println!("bench: starting the two_reads baseline on the same database");
    let baseline = Server::two_reads(paths, database).await?;
    let addr = baseline.addr;
    let template = Arc::new(Template::new(Method::GET, addr, "/two-reads"));
    let measured = scenario(
        addr,
        baseline.pid(),
        "GET /two-reads",
        &template,
        concurrency,
        duration,
    )
    .await?;
    baseline.stop().await?;
    Ok(measured)
}

/// One scenario: a warm-up, then the measured run with the CPU both sides used.
async fn scenario(
    addr: SocketAddr,
    server_pid: u32,
    name: &str,
    template: &Arc<Template>,
    concurrency: usize,
    duration: Duration,
) -> Result<Measured> {
    println!(
        "bench: {name}: {concurrency} clients, {}s warm-up, {}s measured",
        WARM_UP.as_secs(),
        duration.as_secs()
    );
    drive(addr, concurrency, WARM_UP, template).await?;
    let before = CpuTime::now(server_pid);
    let mut measured = drive(addr, concurrency, duration, template).await?;
    measured.cpu = before
        .zip(CpuTime::now(server_pid))
        .map(|(before, after)| after.since(before));
    Ok(measured)
}

/// (d): readers of `/profile` measured while other clients log in as fast as they can.
/// The CPU time of both sides is recorded on the readers' row.
async fn login_storm(
    addr: SocketAddr,
    server_pid: u32,
    profile: &Arc<Template>,
    login: &Arc<Template>,
    duration: Duration,
) -> Result<(Measured, Measured)> {
    println!(
        "bench: login storm: {STORM_PROFILE_CLIENTS} clients on GET /profile while {LOGIN_CLIENTS} log in, {}s warm-up, {}s measured",
        WARM_UP.as_secs(),
        duration.as_secs()
    );
    let storm = |duration| async move {
        let (readers, loggers) = tokio::join!(
            drive(addr, STORM_PROFILE_CLIENTS, duration, profile),
            drive(addr, LOGIN_CLIENTS, duration, login)
        );
        Ok::<_, anyhow::Error>((readers?, loggers?))
    };
    storm(WARM_UP).await?;
    let before = CpuTime::now(server_pid);
    let (mut readers, loggers) = storm(duration).await?;
    readers.cpu = before
        .zip(CpuTime::now(server_pid))
        .map(|(before, after)| after.since(before));
    Ok((readers, loggers))
}

/// Registers the bench user, logs in and returns the `Cookie` header that carries the session.
async fn register_and_log_in(addr: SocketAddr) -> Result<HeaderValue> {
    let body = serde_json::json!({"email": EMAIL, "username": USERNAME, "password": PASSWORD});
    let register = Template::new(Method::POST, addr, "/v1/auth/register")
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(Bytes::from(body.to_string()));
    let registered = send_once(addr, &register).await?;
    ensure!(
        registered.status() == StatusCode::CREATED,
        "POST /v1/auth/register answered {}: {}",
        registered.status(),
        String::from_utf8_lossy(registered.body())
    );
    let logged_in = send_once(addr, &login_request(addr)).await?;
    ensure!(
        logged_in.status() == StatusCode::OK,
        "POST /v1/auth/login answered {}",
        logged_in.status()
    );
    let cookie = logged_in
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            value
                .split(';')
                .next()
                .filter(|pair| pair.starts_with("session="))
        })
        .context("the login response set no `session` cookie")?;
    let cookie =
        HeaderValue::from_str(cookie).context("the session cookie is no valid header value")?;
    let profile = Template::new(Method::GET, addr, "/profile").header(COOKIE, cookie.clone());
    let answered = send_once(addr, &profile).await?;
    ensure!(
        answered.status() == StatusCode::OK,
        "GET /profile with the session cookie answered {}",
        answered.status()
    );
    Ok(cookie)
}

/// The bench user's login request.
fn login_request(addr: SocketAddr) -> Template {
    let body = serde_json::json!({"email_or_username": EMAIL, "password": PASSWORD});
    Template::new(Method::POST, addr, "/v1/auth/login")
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(Bytes::from(body.to_string()))
}
