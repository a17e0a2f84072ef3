//! Project tasks, run as `cargo xtask <task>` (see `.cargo/config.toml`).
//!
//! - `install`: builds the storage schema by running the app's own `app install`.
//! - `test [--backend B]... [-- <nextest args>]`: provides PostgreSQL, MariaDB, MongoDB
//!   (SecantusDB) and an SMTP server (aiosmtpd, see `smtp`), then runs the test suite and
//!   the doc tests, the tests of the backends left out reported as skipped; then
//!   schemathesis against the app on SQLite (see `schemathesis`).
//! - `bench [--backend B] [--duration SECS] [--concurrency N] [--sessions N]
//!   [--purge-sessions M]` or `bench --instructions [--backend B] [--requests N]`: provides
//!   the database server, builds the app and the `bench` crate in release, and runs the
//!   benchmark (load over loopback, or instructions per request counted by callgrind).

// Printing progress, banners and reports to the terminal is what this binary is for.
#![allow(clippy::print_stdout)]

mod backends;
mod bench;
mod install;
mod process;
mod project;
mod schemathesis;
mod smtp;
mod test;
mod venv;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  install                     create or update the schema (SQL) or indexes (MongoDB) of the
                              storage configured as for the app (App.toml, .env, environment)
  test [--backend sqlite|postgres|mysql|mongodb|memory]... [-- <nextest args>]
                              provide PostgreSQL, MariaDB and MongoDB (SecantusDB unless
                              MONGODB_URL is set) and an SMTP server (aiosmtpd unless
                              SMTP_URL_TEST and SMTP_SINK_DIR are set), run every test
                              with nextest, then the doc tests; --backend (repeatable) runs
                              only the named backends' tests (and those that need none);
                              the tests of a backend (or of the SMTP server) left out are
                              skipped, and with CI=true one that cannot be provided is an
                              error; then schemathesis checks the app, live on
                              SQLite, against its OpenAPI document (unless --backend leaves
                              out sqlite or nextest arguments are given); outside CI every
                              test runs whatever fails, and the summary lists the failed
                              tests with the command that reruns each
  bench [--backend sqlite|postgres|mysql|mongodb] [--duration SECS] [--concurrency N]
        [--sessions N] [--purge-sessions M]
                              provide the database server, build the app and the bench crate
                              in release, and run the benchmark (the `bench` binary, whose
                              --help tells the defaults): GET /, GET /profile, logins, a login
                              storm, with N stored sessions of other users, a purge of M
                              expired ones, and the one- and two-read baselines; reports go to
                              <target-dir>/bench/
  bench --instructions [--backend B] [--requests N]
                              count the instructions per request under valgrind's callgrind
                              (GET /, GET /profile, the one-read baseline; each N requests on
                              one connection minus a run with none), on SQLite and PostgreSQL
                              unless --backend names one";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("install") if args.len() == 1 => install::run(),
        Some("test") => test::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!("{USAGE}");
            Ok(ExitCode::from(2))
        }
    };
    // Returned, not `process::exit`ed, so that guards (database servers) are dropped first.
    outcome.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}
