//! `bench --instructions`: what one request costs the server, in instructions counted by
//! callgrind rather than in requests per second. On a shared VM, req/s moves by 20% from
//! run to run; the instructions a request executes repeat to the last digit.
//!
//! Each figure is the difference of two runs of the release server under
//! `valgrind --tool=callgrind`, alike in all but the requests counted: both start on a
//! fresh database, register and log in the bench user, send the same warm-up on one
//! connection and then open a second connection, which one run uses for `--requests`
//! requests and the other closes at once. Both exit on SIGTERM, which is when callgrind
//! writes its count. What the start-up, the migrations, the two password hashes and the
//! warm-up cost is the same in both and cancels out; what is left, divided by the number
//! of requests, is the cost of one request, from reading it to writing the answer.
//!
//! The counts include what callgrind cannot speed up the way the CPU does: it runs
//! SHA-256 in software (it does not emulate the SHA extensions), so a request that hashes
//! costs more here than on the metal. The figures compare builds and requests with each
//! other; they are no prediction of a request's time.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context as _, Result};
use auth_testkit::db::{Backend, TestDatabase};
use hyper::{header::COOKIE, Method};
use sea_orm::{ConnectionTrait as _, Statement};
use serde_json::json;

use crate::{
    load::{send_in_turn, Template},
    register_and_log_in,
    server::{Launch, Paths, SecretKey, Server},
};

/// Requests counted per run unless `--requests` says otherwise: enough that what differs
/// between two runs besides them (timers that tick while the longer run lasts) is lost in
/// the rounding.
pub(crate) const DEFAULT_REQUESTS: u64 = 2_000;

/// Requests of each kind sent, in every run alike, before the counted ones: connections
/// opened, statements prepared, caches and allocator pages filled.
const WARM_UP: u64 = 50;

/// #17's targets.
const ROOT_TARGET: f64 = 35_000.0;
const PROFILE_TO_ONE_READ_TARGET: f64 = 2.0;

/// What a request of one kind costs on one backend.
#[derive(Debug, Clone)]
pub(crate) struct Counts {
    backend: Backend,
    requests: u64,
    /// Instructions per `GET /` (no cookie, no database).
    root: f64,
    /// Instructions per authenticated `GET /profile`.
    profile: f64,
    /// Instructions per `GET /one-read` of the baseline server.
    one_read: f64,
    /// What `GET /profile` asks of the database, where the server tells (PostgreSQL).
    profile_database: Option<DatabaseWork>,
}

/// What requests cost the database, per request: counted by PostgreSQL itself.
#[derive(Debug, Clone, Copy)]
struct DatabaseWork {
    /// Transactions committed or rolled back: each statement outside a transaction is one.
    transactions: f64,
    /// Rows inserted, updated or deleted.
    rows_written: f64,
}

/// Which requests a run of the app counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    /// None: the run every other is compared with.
    Nothing,
    Root,
    Profile,
}

impl Counted {
    fn name(self) -> &'static str {
        match self {
            Self::Nothing => "idle",
            Self::Root => "root",
            Self::Profile => "profile",
        }
    }
}

/// Counts the instructions per request on each of `backends`, one after the other.
pub(crate) async fn count_all(
    paths: &Paths,
    backends: &[Backend],
    requests: u64,
) -> Result<Vec<Counts>> {
    valgrind_is_installed()?;
    let dir = paths.out.join("callgrind");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut all = Vec::with_capacity(backends.len());
    for &backend in backends {
        all.push(count(paths, &dir, backend, requests).await?);
    }
    Ok(all)
}

async fn count(paths: &Paths, dir: &Path, backend: Backend, requests: u64) -> Result<Counts> {
    println!(
        "bench: counting instructions on {backend}: {requests} requests of each kind under callgrind (about a minute a run)"
    );
    let secret = SecretKey::random()?;
    let run = |counted| app_run(paths, dir, backend, &secret, counted, requests);

    let idle = run(Counted::Nothing).await?;
    let idle_work = database_work(&idle.database).await?;
    idle.database.drop_now().await;
    let root = run(Counted::Root).await?;
    root.database.drop_now().await;
    let profile = run(Counted::Profile).await?;
    let profile_work = database_work(&profile.database).await?;

    // The baseline reads the user the app registered, on the same database.
    let one_read = async {
        let idle = baseline_run(paths, dir, &profile.database, 0).await?;
        let counted = baseline_run(paths, dir, &profile.database, requests).await?;
        per_request(counted, idle, requests, "GET /one-read")
    }
    .await;
    profile.database.drop_now().await;

    let counts = Counts {
        backend,
        requests,
        root: per_request(root.instructions, idle.instructions, requests, "GET /")?,
        profile: per_request(
            profile.instructions,
            idle.instructions,
            requests,
            "GET /profile",
        )?,
        one_read: one_read?,
        profile_database: idle_work.zip(profile_work).map(|(idle, profile)| {
            let per = |of: fn(&Totals) -> i64| (of(&profile) - of(&idle)) as f64 / requests as f64;
            DatabaseWork {
                transactions: per(|totals| totals.transactions),
                rows_written: per(|totals| totals.rows_written),
            }
        }),
    };
    println!(
        "bench: {backend}: GET / {:.0}, GET /profile {:.0}, GET /one-read {:.0} instructions per request",
        counts.root, counts.profile, counts.one_read
    );
    Ok(counts)
}

/// A finished run of the app: what callgrind counted, and the database it ran on.
struct AppRun {
    instructions: u64,
    database: TestDatabase,
}

/// Starts the app under callgrind on a fresh database, registers and logs in, warms up,
/// sends `requests` of what `counted` says on a connection of their own, and stops it.
async fn app_run(
    paths: &Paths,
    dir: &Path,
    backend: Backend,
    secret: &SecretKey,
    counted: Counted,
    requests: u64,
) -> Result<AppRun> {
    // In a task of its own: the kit panics when the server cannot be reached, which is
    // then this run's error rather than a crash.
    let database = tokio::spawn(TestDatabase::create(backend))
        .await
        .with_context(|| format!("cannot create a database on {backend}"))?;
    let out = dir.join(format!("{backend}-app-{}.callgrind", counted.name()));
    let server = Server::app(paths, &database, secret, None, Launch::Callgrind(&out)).await?;
    let addr = server.addr;
    let cookie = register_and_log_in(addr).await?;
    let root = Template::new(Method::GET, addr, "/");
    let profile = Template::new(Method::GET, addr, "/profile").header(COOKIE, cookie);
    send_in_turn(addr, &[(&root, WARM_UP), (&profile, WARM_UP)]).await?;
    let (template, count) = match counted {
        Counted::Nothing => (&root, 0),
        Counted::Root => (&root, requests),
        Counted::Profile => (&profile, requests),
    };
    send_in_turn(addr, &[(template, count)]).await?;
    server.terminate().await?;
    Ok(AppRun {
        instructions: callgrind_total(&out)?,
        database,
    })
}

/// Starts the baseline server under callgrind on `database`, warms up, sends `requests`
/// `GET /one-read` on a connection of their own, stops it and returns the count.
async fn baseline_run(
    paths: &Paths,
    dir: &Path,
    database: &TestDatabase,
    requests: u64,
) -> Result<u64> {
    let label = if requests == 0 { "idle" } else { "one-read" };
    let out = dir.join(format!("{}-baseline-{label}.callgrind", database.backend()));
    let server = Server::baseline(paths, database, Launch::Callgrind(&out)).await?;
    let one_read = Template::new(Method::GET, server.addr, "/one-read");
    send_in_turn(server.addr, &[(&one_read, WARM_UP)]).await?;
    send_in_turn(server.addr, &[(&one_read, requests)]).await?;
    server.terminate().await?;
    callgrind_total(&out)
}

/// `(counted - idle) / requests`, refusing a difference that cannot be one.
fn per_request(counted: u64, idle: u64, requests: u64, what: &str) -> Result<f64> {
    ensure!(
        counted > idle,
        "{what}: the run with {requests} requests counted {counted} instructions, \
         no more than the idle run's {idle}"
    );
    Ok((counted - idle) as f64 / requests.max(1) as f64)
}

/// The total instructions of a callgrind output file (its `totals:` line, or `summary:`).
fn callgrind_total(path: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("callgrind wrote no {}", path.display()))?;
    let total = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|number| number.parse::<u64>().ok())
    };
    total("totals:")
        .or_else(|| total("summary:"))
        .with_context(|| format!("no totals in {}", path.display()))
}

/// A database's own count of its work so far, once every other connection has closed.
#[derive(Debug, Clone, Copy)]
struct Totals {
    transactions: i64,
    rows_written: i64,
}

/// PostgreSQL's statistics of `database` (`None` on the other backends), read once the
/// app's connections are gone: a backend reports its counts when it exits, if not before.
async fn database_work(database: &TestDatabase) -> Result<Option<Totals>> {
    if database.backend() != Backend::Postgres {
        return Ok(None);
    }
    let db = auth_store_sql::connect(database.url()).await?;
    let backend = sea_orm::DbBackend::Postgres;
    let mut waited = 0;
    loop {
        let row = db
            .query_one(Statement::from_string(
                backend,
                "SELECT numbackends::bigint, (xact_commit + xact_rollback)::bigint, \
                 (tup_inserted + tup_updated + tup_deleted)::bigint \
                 FROM pg_stat_database WHERE datname = current_database()",
            ))
            .await?
            .context("pg_stat_database has no row for this database")?;
        let (connections, transactions, rows_written): (i64, i64, i64) =
            row.try_get_many_by_index()?;
        if connections <= 1 {
            db.close().await?;
            return Ok(Some(Totals {
                transactions,
                rows_written,
            }));
        }
        waited += 1;
        if waited > 100 {
            bail!("the app's database connections are still open 10s after it exited");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn valgrind_is_installed() -> Result<()> {
    let found = std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    ensure!(
        found,
        "valgrind is not installed: `apt-get install valgrind` (Debian), then run this again"
    );
    Ok(())
}

/// Prints the table and the targets.
pub(crate) fn print(all: &[Counts]) {
    let Some(first) = all.first() else { return };
    println!(
        "\n==== bench --instructions: callgrind, release build; per request = (run with {} requests - run with none) / {} ====",
        first.requests, first.requests
    );
    println!(
        "{:<10} {:>10} {:>13} {:>14} {:>18} {:>22}",
        "backend",
        "GET /",
        "GET /profile",
        "GET /one-read",
        "/profile ÷ 1 read",
        "/profile: txns, writes"
    );
    for counts in all {
        let database = counts.profile_database.map_or_else(
            || "-".to_owned(),
            |work| format!("{:.3}, {:.3}", work.transactions, work.rows_written),
        );
        println!(
            "{:<10} {:>10} {:>13} {:>14} {:>18.2} {:>22}",
            counts.backend.name(),
            thousands(counts.root),
            thousands(counts.profile),
            thousands(counts.one_read),
            counts.ratio(),
            database
        );
    }
    println!("targets (#17):");
    for counts in all {
        let verdict = |met: bool| if met { "met" } else { "MISSED" };
        println!(
            "  {}: GET / at most {} instructions: {}; GET /profile at most {PROFILE_TO_ONE_READ_TARGET:.1}x one read: {}",
            counts.backend.name(),
            thousands(ROOT_TARGET),
            verdict(counts.root <= ROOT_TARGET),
            verdict(counts.ratio() <= PROFILE_TO_ONE_READ_TARGET),
        );
    }
}

impl Counts {
    fn ratio(&self) -> f64 {
        self.profile / self.one_read.max(f64::EPSILON)
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "backend": self.backend.name(),
            "requests": self.requests,
            "instructions_per_request": {
                "root": self.root.round(),
                "profile": self.profile.round(),
                "one_read": self.one_read.round(),
            },
            "profile_to_one_read": (self.ratio() * 1000.0).round() / 1000.0,
            "profile_database": self.profile_database.map(|work| json!({
                "transactions_per_request": work.transactions,
                "rows_written_per_request": work.rows_written,
            })),
        })
    }
}

/// Writes the counts as JSON under `dir`: stamped with `unix_time`, and as the latest.
pub(crate) fn write(all: &[Counts], dir: &Path, unix_time: u64) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let text = serde_json::to_string_pretty(&json!({
        "unix_time": unix_time,
        "counts": all.iter().map(Counts::to_json).collect::<Vec<_>>(),
    }))
    .context("cannot serialise the counts")?;
    let mut written = Vec::new();
    for name in [
        format!("instructions-{unix_time}.json"),
        "instructions-latest.json".to_owned(),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// `1234567.8` as `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (at, digit) in digits.chars().enumerate() {
        if at > 0 && (digits.len() - at) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }

    #[test]
    fn a_count_is_the_difference_per_request_and_never_negative() {
        assert_eq!(per_request(3_000, 1_000, 1_000, "x").unwrap(), 2.0);
        assert!(per_request(1_000, 1_000, 10, "x").is_err());
        assert!(per_request(900, 1_000, 10, "x").is_err());
    }

    #[test]
    fn the_total_is_read_from_a_callgrind_file() {
        let dir = std::env::temp_dir().join(format!("bench-callgrind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("out");
        std::fs::write(
            &file,
            "version: 1\nevents: Ir\nfl=x\n1 5\nsummary: 1234\ntotals: 1234\n",
        )
        .unwrap();
        assert_eq!(callgrind_total(&file).unwrap(), 1234);
        std::fs::write(&file, "events: Ir\n").unwrap();
        assert!(callgrind_total(&file).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
