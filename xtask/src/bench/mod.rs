//! `cargo xtask bench`: the release app on a fresh database, driven over loopback by a
//! load generator in this process. Scenarios: the HTTP floor (`GET /`), an authenticated
//! `GET /profile`, logins, and `GET /profile` while other clients log in; then, on the
//! SQL backends, the `two_reads` example (two bare sea-orm reads per request) on the same
//! database, the baseline `GET /profile` is compared with. It reports and checks targets;
//! it never fails because a target is missed.

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

use crate::{
    backends::{Backends, Server},
    project::Project,
};
use load::{drive, send_once, CpuTime, Measured, Template};
use report::Report;
use server::{AppServer, BaselineServer, Binaries};

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

/// What `cargo xtask bench` was asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    backend: Backend,
    duration: Duration,
    concurrency: usize,
}

impl Options {
    /// Parses `[--backend B] [--duration SECS] [--concurrency N]` (also `--flag=value`).
    pub fn parse(args: &[String]) -> Result<Self> {
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
                    options.backend = Backend::ALL
                        .into_iter()
                        .find(|backend| backend.name() == name)
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
                _ => bail!("unknown bench option `{arg}` (try `cargo xtask help`)"),
            }
        }
        Ok(options)
    }
}

/// Runs the benchmark and writes its report under `<target-dir>/bench/`.
pub fn run(args: &[String]) -> Result<ExitCode> {
    let options = Options::parse(args)?;
    let project = Project::locate();
    if cfg!(debug_assertions) {
        return rerun_optimised(&project, args);
    }
    let server = match options.backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(Server::Postgres),
        Backend::Mysql => Some(Server::Mysql),
        Backend::Mongodb => Some(Server::Mongodb),
    };
    // Kept until the end: it may own the SecantusDB the app talks to.
    let backends = server.map(|server| Backends::provide(&project, &[server]));
    if let Some(backends) = &backends {
        if let Some((server, why)) = backends.not_run().next() {
            bail!("the {server} backend cannot be provided: {why}");
        }
        for (key, url) in backends.env() {
            // auth-testkit reads the servers from the environment; no other thread runs yet.
            std::env::set_var(key, url);
        }
    }
    let binaries = server::build_release(&project)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let report = runtime.block_on(measure(&project, &binaries, options))?;
    drop(backends);
    report.print();
    report.write(&project.target_dir.join("bench"))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs this same command from an optimised build of xtask: unoptimised, the load
/// generator would need more CPU than the server it measures.
fn rerun_optimised(project: &Project, args: &[String]) -> Result<ExitCode> {
    println!("xtask: the load generator must be optimised; re-running as `cargo run --release -p xtask -- bench`");
    let status = project
        .cargo()
        .args(["run", "--release", "--package", "xtask", "--", "bench"])
        .args(args)
        .status()
        .context("cannot run cargo run --release -p xtask")?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

async fn measure(project: &Project, binaries: &Binaries, options: Options) -> Result<Report> {
    let database = TestDatabase::create(options.backend)
        .await
        .with_context(|| format!("cannot create a database on {}", options.backend))?;
    let report = measure_on(project, binaries, &database, options).await;
    database.drop_now().await;
    report
}

async fn measure_on(
    project: &Project,
    binaries: &Binaries,
    database: &TestDatabase,
    options: Options,
) -> Result<Report> {
    let unix_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or_default();
    println!(
        "xtask: starting the app on a fresh {} database",
        options.backend
    );
    let mut server = AppServer::start(&binaries.app, project, database).await?;
    println!(
        "xtask: app up at http://{} (log {})",
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
    server.stop();
    let two_reads = match options.backend {
        // The baseline reads with sea-orm, which has no MongoDB driver.
        Backend::Mongodb => None,
        _ => Some(
            two_reads_baseline(
                project,
                &binaries.two_reads,
                database,
                options.concurrency,
                duration,
            )
            .await?,
        ),
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
    project: &Project,
    binary: &std::path::Path,
    database: &TestDatabase,
    concurrency: usize,
    duration: Duration,
) -> Result<Measured> {
    println!("xtask: starting the two_reads baseline on the same database");
    let mut baseline =
        BaselineServer::start(binary, project, database.backend(), database.url()).await?;
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
    baseline.stop();
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
        "xtask: {name}: {concurrency} clients, {}s warm-up, {}s measured",
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
        "xtask: login storm: {STORM_PROFILE_CLIENTS} clients on GET /profile while {LOGIN_CLIENTS} log in, {}s warm-up, {}s measured",
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
