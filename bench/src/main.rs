//! The benchmark: the release app on a fresh database that holds the sessions of many
//! other users (preloaded straight into the database), driven over loopback by a load
//! generator in this process. Scenarios: the HTTP floor (`GET /`), an authenticated
//! `GET /profile`, logins, `GET /profile` while other clients log in, logins that finish
//! with a TOTP code and passkey sign-ins (#21), refused and forgotten logins; on the SQL
//! backends, when asked, `GET /profile` while the app purges many expired sessions; then
//! the `baseline` server (one and two bare primary-key reads per request) on the same
//! database, which `GET /profile` is compared with. It reports and checks targets; it never
//! fails because a target is missed.
//!
//! `cargo xtask bench` provides the database server, builds this crate and the app in
//! release, and runs this binary; `bench --help` tells how to run it directly.

// Printing progress and the report to the terminal is what this binary is for.
#![allow(clippy::print_stdout)]

mod instructions;
mod load;
mod mfa;
mod preload;
mod report;
mod server;

use std::{
    net::SocketAddr,
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};
use auth_testkit::{
    db::{Backend, TestDatabase},
    SetSessionCookie,
};
use bytes::Bytes;
use hyper::{
    header::{HeaderValue, CONTENT_TYPE, COOKIE},
    Method, StatusCode,
};

use load::{drive, drive_flows, drive_until, send_once, CpuTime, Flow, Measured, Template};
use mfa::{PasskeySignIn, TotpLogin, TotpPool};
use preload::{Expiry, Preloaded, Preloader};
use report::{Baselines, ForgotTiming, Purge, PurgeRun, Report, SecondFactor, FORGOT_ROUNDS};
use server::{Launch, Paths, SecretKey, Server};

const USAGE: &str = "\
usage: bench [--backend sqlite|postgres|mysql|mongodb] [--duration SECS] [--concurrency N]
             [--sessions N] [--purge-sessions M]
       bench --instructions [--backend sqlite|postgres|mysql|mongodb] [--requests N]

Load-tests the release app over loopback on a throwaway database (defaults: sqlite, 10 s
per scenario, 32 clients for GET / and GET /profile; logins always use 8, as do TOTP logins
and passkey sign-ins, whose users are prepared through the API first), then the baseline
server (one and two bare primary-key reads) on the same database. The results are printed
and written as JSON to <target-dir>/bench/.

--sessions N: live sessions of other users (N/10 of them) written straight into the
database before measuring (default 1000).
--purge-sessions M: on the SQL backends, M expired sessions are written once the main
scenarios are over, and the app is restarted with SESSION_PURGE_INTERVAL=1, so that its
purge runs over them while GET /profile is measured (default: N when N >= 100000, else 0,
which skips this scenario; MongoDB purges by its TTL monitor and never runs it).

--instructions: instead of the load test, counts the instructions the server executes per
request under valgrind's callgrind, which repeat exactly where req/s moves by 20%: GET /,
an authenticated GET /profile and the baseline's GET /one-read, each the difference between
a run with N requests on one connection (default 2000) and a run with none, on SQLite and
PostgreSQL unless --backend names one; on PostgreSQL also the transactions and rows written
per GET /profile, as the server counts them. Needs valgrind (`apt-get install valgrind`).

It runs the release `app` and `baseline` binaries found in the directory of this executable
(<target-dir>/release/): build them with `cargo build --release -p app` and then
`cargo build --release -p bench` (apart, so that the app is built as it ships). The database
servers come from DATABASE_URL_POSTGRES and DATABASE_URL_MYSQL (default: local servers) and
MONGODB_URL (required for mongodb). `cargo xtask bench` does all of this: it builds, provides
the server, and runs this binary with the same flags.";

/// Clients logging in for scenario (c), during the login storm (d), with a TOTP code and
/// with a passkey.
const LOGIN_CLIENTS: usize = 8;
/// Clients reading their profile during the login storm: a light load, so that the p99
/// shows what the hashing does to other requests rather than queueing among readers.
const STORM_PROFILE_CLIENTS: usize = 4;
/// Load before each scenario that is not measured (connections, caches, allocator).
const WARM_UP: Duration = Duration::from_secs(2);
/// Preloaded sessions unless `--sessions` says otherwise.
const DEFAULT_SESSIONS: u64 = 1_000;
/// From this many sessions on, the purge scenario runs by default, over as many.
const LARGE_SESSIONS: u64 = 100_000;
/// How often the app purges in the purge scenario: its purge starts with it anyway, this
/// only keeps it going should the first pass miss a session.
const PURGE_INTERVAL: Duration = Duration::from_secs(1);
/// How often the purge's progress is probed.
const PURGE_POLL: Duration = Duration::from_millis(100);
/// The longest a purge may take before the bench gives up on it.
const PURGE_TIMEOUT: Duration = Duration::from_secs(600);

const EMAIL: &str = "bench@example.com";
const USERNAME: &str = "bench";
// Not secret: it guards a throwaway account in a database dropped after the run.
const PASSWORD: &str = "loopback-benchmark-passphrase-7319";

/// What the benchmark was asked to do.
#[derive(Debug, Clone, Copy)]
struct Options {
    backend: Backend,
    /// Whether `--backend` said which.
    backend_named: bool,
    /// `--instructions`: count instructions per request instead of measuring load, this
    /// many requests per run.
    instructions: Option<u64>,
    duration: Duration,
    concurrency: usize,
    /// Live sessions of other users preloaded.
    sessions: u64,
    /// Expired sessions the purge scenario preloads (0: no purge scenario).
    purge_sessions: u64,
}

impl Options {
    /// Parses `[--backend B] [--duration SECS] [--concurrency N] [--sessions N]
    /// [--purge-sessions M]` (also `--flag=value`).
    fn parse(args: &[String]) -> Result<Self> {
        let mut options = Self {
            backend: Backend::Sqlite,
            backend_named: false,
            instructions: None,
            duration: Duration::from_secs(10),
            concurrency: 32,
            sessions: DEFAULT_SESSIONS,
            purge_sessions: 0,
        };
        let mut purge_sessions = None;
        let mut requests = None;
        let mut instructions = false;
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
                    options.backend_named = true;
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
                "--sessions" => {
                    options.sessions = value()?
                        .parse()
                        .context("--sessions takes a whole number")?;
                }
                "--purge-sessions" => {
                    purge_sessions = Some(
                        value()?
                            .parse()
                            .context("--purge-sessions takes a whole number")?,
                    );
                }
                "--instructions" if inline.is_none() => instructions = true,
                "--requests" => {
                    let count: u64 = value()?
                        .parse()
                        .context("--requests takes a whole number")?;
                    ensure!(count > 0, "--requests must be at least 1");
                    requests = Some(count);
                }
                _ => bail!("unknown bench option `{arg}` (try `bench --help`)"),
            }
        }
        ensure!(
            instructions || requests.is_none(),
            "--requests counts the requests of --instructions"
        );
        options.instructions =
            instructions.then(|| requests.unwrap_or(instructions::DEFAULT_REQUESTS));
        options.purge_sessions = purge_sessions.unwrap_or(if options.sessions >= LARGE_SESSIONS {
            options.sessions
        } else {
            0
        });
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
    if let Some(requests) = options.instructions {
        let backends = if options.backend_named {
            vec![options.backend]
        } else {
            vec![Backend::Sqlite, Backend::Postgres]
        };
        let counts = runtime.block_on(instructions::count_all(&paths, &backends, requests))?;
        instructions::print(&counts);
        for path in instructions::write(&counts, &paths.out, unix_time())? {
            println!("wrote {}", path.display());
        }
        return Ok(());
    }
    let report = runtime.block_on(measure(&paths, options))?;
    report.print();
    report.write(&paths.out)
}

/// Seconds since the epoch, to stamp reports with.
fn unix_time() -> u64 {
    u64::try_from(auth_domain::clock::Clock::system().now().unix_timestamp()).unwrap_or_default()
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
    let unix_time = unix_time();
    println!(
        "bench: starting the app on a fresh {} database",
        options.backend
    );
    // One key for every start of the app, so that the bench user's cookie outlives a restart.
    let secret = SecretKey::random()?;
    let server = Server::app(paths, database, &secret, None, Launch::Direct).await?;
    println!(
        "bench: app up at http://{} (log {})",
        server.addr,
        server.log().display()
    );

    let addr = server.addr;
    let cookie = register_and_log_in(addr).await?;
    // After the app has made the schema and indexes, before anything is measured.
    let preloader = Preloader::connect(database).await?;
    let sessions = preload(&preloader, options.sessions, Expiry::Live).await?;
    let root = Arc::new(Template::new(Method::GET, addr, "/"));
    let profile =
        Arc::new(Template::new(Method::GET, addr, "/profile").header(COOKIE, cookie.clone()));
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
    if let Ok(bytes) = server.peak_rss_bytes() {
        println!(
            "bench: the app's peak RSS before the second factor's scenarios: {:.1} MiB",
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
    // Before the throttled scenario, which leaves this client throttled.
    let second_factor = second_factor(addr, pid, login_measured.rps(), duration).await?;
    let throttled = throttled_logins(addr, pid, duration).await?;
    let forgot = forgot_passwords(addr).await?;

    let peak_rss_bytes = match server.peak_rss_bytes() {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            eprintln!("warning: cannot read the server's peak RSS: {error:#}");
            None
        }
    };
    server.stop();
    let purge = if !options.backend.is_sql() {
        if options.purge_sessions > 0 {
            println!("bench: no purge scenario on MongoDB: its TTL monitor purges, not the app");
        }
        Purge::ByTtlMonitor
    } else if options.purge_sessions == 0 {
        Purge::NotRun
    } else {
        let setup = PurgeSetup {
            paths,
            database,
            secret: &secret,
            cookie: &cookie,
            preloader: &preloader,
        };
        Purge::Ran(Box::new(
            purge_scenario(&setup, options.purge_sessions, duration).await?,
        ))
    };
    preloader.close().await;
    let baselines = baselines(paths, database, options.concurrency, duration).await?;
    Ok(Report {
        backend: options.backend.name().to_owned(),
        unix_time,
        duration: options.duration,
        cores: std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1),
        sessions,
        root: root_measured,
        profile: profile_measured,
        login: login_measured,
        storm_profile,
        storm_login,
        second_factor,
        throttled,
        forgot,
        purge,
        baselines,
        peak_rss_bytes,
    })
}

/// Preloads `count` sessions, saying how long it took.
async fn preload(preloader: &Preloader, count: u64, expiry: Expiry) -> Result<Preloaded> {
    println!("bench: preloading {count} {expiry} sessions of other users into the database");
    let preloaded = preloader.insert(count, expiry).await?;
    println!(
        "bench: preloaded {} {expiry} sessions of {} users in {:.2}s ({:.0} rows/s)",
        preloaded.sessions,
        preloaded.users,
        preloaded.took.as_secs_f64(),
        preloaded.sessions as f64 / preloaded.took.as_secs_f64().max(f64::EPSILON)
    );
    Ok(preloaded)
}

/// What the purge scenario starts the app with.
struct PurgeSetup<'a> {
    paths: &'a Paths,
    database: &'a TestDatabase,
    secret: &'a SecretKey,
    cookie: &'a HeaderValue,
    preloader: &'a Preloader,
}

/// `GET /profile` while the app's purge deletes `count` expired sessions, and after. The
/// app is stopped meanwhile: the sessions are preloaded, then the app is started with a
/// short purge interval, and its purge starts with it (the first tick of its timer is at
/// once). So the purge's time, from the start of the app until no expired session is left,
/// includes the app's start-up (a fraction of a second), and the readers start cold.
async fn purge_scenario(
    setup: &PurgeSetup<'_>,
    count: u64,
    duration: Duration,
) -> Result<PurgeRun> {
    let preloaded = preload(setup.preloader, count, Expiry::Expired).await?;
    println!(
        "bench: restarting the app with SESSION_PURGE_INTERVAL={}",
        PURGE_INTERVAL.as_secs()
    );
    let started = Instant::now();
    let server = Server::app(
        setup.paths,
        setup.database,
        setup.secret,
        Some(PURGE_INTERVAL),
        Launch::Direct,
    )
    .await?;
    let (addr, pid) = (server.addr, server.pid());
    let profile =
        Arc::new(Template::new(Method::GET, addr, "/profile").header(COOKIE, setup.cookie.clone()));
    println!(
        "bench: GET /profile during the purge: {STORM_PROFILE_CLIENTS} clients until no expired session is left (log {})",
        server.log().display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let purged = async {
        let purged = wait_for_purge(setup.preloader, preloaded.latest_expiry, started).await;
        stop.store(true, Ordering::Relaxed);
        purged
    };
    let before = CpuTime::now(pid);
    let (during, took) = tokio::join!(
        drive_until(addr, STORM_PROFILE_CLIENTS, PURGE_TIMEOUT, &stop, &profile),
        purged
    );
    let (mut during, took) = (during?, took?);
    during.cpu = before
        .zip(CpuTime::now(pid))
        .map(|(before, after)| after.since(before));
    println!(
        "bench: the purge deleted {count} expired sessions {:.1}s after the app started",
        took.as_secs_f64()
    );
    let after = scenario(
        addr,
        pid,
        "GET /profile after the purge",
        &profile,
        STORM_PROFILE_CLIENTS,
        duration,
    )
    .await?;
    let peak_rss_bytes = server.peak_rss_bytes().ok();
    server.stop();
    Ok(PurgeRun {
        preloaded,
        took,
        during,
        after,
        peak_rss_bytes,
    })
}

/// Waits until no session that expired at or before `up_to` is left; returns the time
/// since `started`.
async fn wait_for_purge(
    preloader: &Preloader,
    up_to: time::OffsetDateTime,
    started: Instant,
) -> Result<Duration> {
    loop {
        if !preloader.expired_left(up_to).await? {
            return Ok(started.elapsed());
        }
        ensure!(
            started.elapsed() < PURGE_TIMEOUT,
            "the app's purge has not finished after {}s",
            PURGE_TIMEOUT.as_secs()
        );
        tokio::time::sleep(PURGE_POLL).await;
    }
}

/// The baselines for `GET /profile`: one and two bare primary-key reads of a user per
/// request, on the database the app just used (its user is registered there), loaded like
/// `GET /profile`. The app is stopped by then, so the two servers never share the machine
/// or the database.
async fn baselines(
    paths: &Paths,
    database: &TestDatabase,
    concurrency: usize,
    duration: Duration,
) -> Result<Baselines> {
    println!("bench: starting the baseline server on the same database");
    let baseline = Server::baseline(paths, database, Launch::Direct).await?;
    let (addr, pid) = (baseline.addr, baseline.pid());
    let one = Arc::new(Template::new(Method::GET, addr, "/one-read"));
    let two = Arc::new(Template::new(Method::GET, addr, "/two-reads"));
    let one_read = scenario(addr, pid, "GET /one-read", &one, concurrency, duration).await?;
    let two_reads = scenario(addr, pid, "GET /two-reads", &two, concurrency, duration).await?;
    baseline.stop();
    Ok(Baselines {
        driver: if database.backend().is_sql() {
            "sea-orm"
        } else {
            "the mongodb driver"
        },
        one_read,
        two_reads,
    })
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

/// As [`scenario`], for clients that each repeat a [`Flow`]; the flows are handed back.
async fn flow_scenario<F: Flow>(
    addr: SocketAddr,
    server_pid: u32,
    name: &str,
    flows: Vec<F>,
    duration: Duration,
) -> Result<(Measured, Vec<F>)> {
    println!(
        "bench: {name}: {} clients, {}s warm-up, {}s measured",
        flows.len(),
        WARM_UP.as_secs(),
        duration.as_secs()
    );
    let (_, flows) = drive_flows(addr, flows, WARM_UP).await?;
    let before = CpuTime::now(server_pid);
    let (mut measured, flows) = drive_flows(addr, flows, duration).await?;
    measured.cpu = before
        .zip(CpuTime::now(server_pid))
        .map(|(before, after)| after.since(before));
    Ok((measured, flows))
}

/// (h) and (i), #21: logins of users with TOTP on, each a password login then a code,
/// and passwordless passkey sign-ins, each sign-in options then a signed assertion; each
/// timed from the first request to the second answer. The TOTP users are sized from
/// `login_rps`, the password logins per second of scenario (c).
async fn second_factor(
    addr: SocketAddr,
    server_pid: u32,
    login_rps: f64,
    duration: Duration,
) -> Result<SecondFactor> {
    let seconds = (WARM_UP + duration).as_secs_f64();
    let users = TotpPool::users_needed(login_rps, seconds, LOGIN_CLIENTS);
    println!("bench: preparing {users} users with TOTP on (register, log in, enrol, confirm)");
    let (pool, totp_prepared) = TotpPool::prepare(addr, users, LOGIN_CLIENTS).await?;
    println!(
        "bench: prepared {users} TOTP users in {:.1}s",
        totp_prepared.took.as_secs_f64()
    );
    let totp = (0..LOGIN_CLIENTS)
        .map(|_| TotpLogin::new(addr, pool.clone()))
        .collect();
    let (totp_login, _) = flow_scenario(
        addr,
        server_pid,
        "TOTP logins (POST /v1/auth/login, then /v1/auth/mfa/verify)",
        totp,
        duration,
    )
    .await?;
    println!("bench: preparing {LOGIN_CLIENTS} users with a passkey, each on its own software authenticator");
    let (passkeys, passkey_prepared) = PasskeySignIn::prepare_all(addr, LOGIN_CLIENTS).await?;
    let (passkey_sign_in, _) = flow_scenario(
        addr,
        server_pid,
        "passkey sign-ins (POST /v1/auth/passkeys/login/options, then /login)",
        passkeys,
        duration,
    )
    .await?;
    Ok(SecondFactor {
        totp_prepared,
        totp_login,
        passkey_prepared,
        passkey_sign_in,
    })
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
    let cookie = SetSessionCookie::of(logged_in.headers())
        .context("the login response set no `session` cookie")?
        .pair();
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

/// (f): logins refused by the throttle: wrong passwords for the bench user until the
/// per-client limit is reached, then as fast as the clients go, every answer a 429 that
/// costs no hash: the attempt is recorded, counted and withdrawn (#19).
async fn throttled_logins(
    addr: SocketAddr,
    server_pid: u32,
    duration: Duration,
) -> Result<Measured> {
    let body = serde_json::json!({"email_or_username": EMAIL, "password": "not-the-password"});
    let wrong = Template::new(Method::POST, addr, "/v1/auth/login")
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(Bytes::from(body.to_string()));
    // A few more than the per-client limit make sure the account is throttled.
    for _ in 0..server::LOGIN_FAILURES_PER_CLIENT + 3 {
        send_once(addr, &wrong).await?;
    }
    let refused = Arc::new(wrong.expect(StatusCode::TOO_MANY_REQUESTS));
    scenario(
        addr,
        server_pid,
        "POST /v1/auth/login, throttled (429)",
        &refused,
        LOGIN_CLIENTS,
        duration,
    )
    .await
}

/// (g): forgotten-password requests for the bench user's address and for one no account
/// has, alternated on one connection after a warm-up: whether the answer's timing tells
/// them apart (#20). Both are 202 with the same body; only what happens after differs.
async fn forgot_passwords(addr: SocketAddr) -> Result<ForgotTiming> {
    println!("bench: POST /v1/auth/password/forgot: {FORGOT_ROUNDS} known and {FORGOT_ROUNDS} unknown addresses, alternated");
    let forgot = |email: &str| {
        Template::new(Method::POST, addr, "/v1/auth/password/forgot")
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Bytes::from(
                serde_json::json!({ "email": email }).to_string(),
            ))
            .expect(StatusCode::ACCEPTED)
    };
    let (known, unknown) = (forgot(EMAIL), forgot("nobody@bench.invalid"));
    load::alternate(addr, &[&known, &unknown], 20).await?;
    let mut measured = load::alternate(addr, &[&known, &unknown], FORGOT_ROUNDS).await?;
    let unknown_us = measured.pop().context("two histograms")?;
    let known_us = measured.pop().context("two histograms")?;
    Ok(ForgotTiming {
        known_us,
        unknown_us,
    })
}

/// The bench user's login request.
fn login_request(addr: SocketAddr) -> Template {
    let body = serde_json::json!({"email_or_username": EMAIL, "password": PASSWORD});
    Template::new(Method::POST, addr, "/v1/auth/login")
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(Bytes::from(body.to_string()))
}
