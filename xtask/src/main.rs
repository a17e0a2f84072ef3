//! Project tasks, run as `cargo xtask <task>` (see `.cargo/config.toml`).
//!
//! - `install`: builds the storage schema with the app's own code and configuration.
//! - `test [-- <nextest args>]`: provides PostgreSQL, MariaDB and MongoDB (SecantusDB), then
//!   runs the whole test suite and the doc tests.
//! - `bench [--backend B] [--duration SECS] [--concurrency N]`: starts the release app and
//!   measures it over loopback.

// Printing progress, banners and reports to the terminal is what this binary is for.
#![allow(clippy::print_stdout)]

mod backends;
mod bench;
mod install;
mod process;
mod project;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  install                     create or update the schema (SQL) or indexes (MongoDB) of the
                              storage configured as for the app (App.toml, .env, environment)
  test [-- <nextest args>]    provide PostgreSQL, MariaDB and MongoDB (SecantusDB unless
                              MONGODB_URL is set), run every test with nextest, then the doc
                              tests; with CI=true a backend that cannot be provided is an error
  bench [--backend sqlite|postgres|mysql|mongodb] [--duration SECS] [--concurrency N]
                              load-test the release build over loopback (defaults: sqlite,
                              10 s per scenario, 32 clients for GET / and GET /profile; logins
                              always use 8); reports go to <target-dir>/bench/";

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
        eprintln!("error: {}", one_line(&error));
        ExitCode::FAILURE
    })
}

/// The error and its causes on one line, leaving out a cause whose text the line already
/// holds (driver errors often repeat their source in their own message).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
