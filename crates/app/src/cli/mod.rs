//! The `app` command line: `app` or `app serve` serves the API; `app install`, `app users`,
//! `app sessions` and `app events` administer the configured backend, with the server's
//! own configuration and code.
//!
//! Exit codes: 0 on success; 1 when a command fails (an unknown user or session handle, a
//! refused password, an unreachable database), with one line on stderr; 2 for bad usage or
//! a bad configuration. A command prints its result on stdout: a table, or with `--json`
//! exactly one JSON document.

mod args;
mod commands;
mod password;
mod render;
mod table;

use std::{io::Write as _, path::Path, process::ExitCode};

use anyhow::Context as _;
use auth_domain::AuthService;
use auth_store_mongo::MongoAdministration;
use auth_store_sql::{SqlAdministration, SqlAuditLog, SqlSessionStore, SqlUserRepository};
use serde_json::json;

pub use self::args::{Cli, Command, EventsArgs, RevokeArgs, SessionsCommand, UsersCommand};
use self::{
    commands::Stores,
    render::{render, Output},
};
use crate::{bounded::Bounded, Config, Storage};

/// Runs what `cli` asks for and says how it went, as the process's exit code.
pub fn main(cli: Cli) -> ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let serving = matches!(cli.command, None | Some(Command::Serve));
    // A command keeps stderr for its one line of failure unless LOG asks for more.
    let log_set = Config::sources(Path::new(".")).find_value("LOG").is_ok();
    let filter = if serving || log_set {
        config.log.as_str()
    } else {
        "warn"
    };
    crate::init_tracing(filter, config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        None | Some(Command::Serve) => runtime.block_on(crate::serve_until_signalled(config)),
        Some(command) => runtime
            .block_on(administer(&config, command))
            .and_then(|output| {
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(render(&output, cli.json).as_bytes())
                    .and_then(|()| stdout.flush())
                    .context("writing the output")
            }),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", crate::one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Runs an admin `command` on the configured backend.
async fn administer(config: &Config, command: Command) -> anyhow::Result<Output> {
    if let Command::Install = command {
        crate::install(config).await?;
        let target = config.redacted_storage_url();
        return Ok(Output::Done {
            message: format!("{} ready on {target}", what_install_builds(config.storage)),
            json: json!({ "installed": true, "storage": config.storage.to_string() }),
        });
    }
    let hasher = crate::password_hasher(config.hashing).await?;
    let policy = config.password_policy;
    // Every operation bounded as when serving: against a database that stopped answering,
    // a command gives up after DATABASE_TIMEOUT instead of hanging.
    let timeout = config.database_timeout;
    match config.storage {
        Storage::Sql => {
            let db = crate::open_sql(config).await?;
            let stores = Stores {
                service: AuthService::new(
                    Bounded::new(SqlUserRepository::new(db.clone()), timeout),
                    hasher,
                    policy,
                ),
                sessions: Bounded::new(SqlSessionStore::new(db.clone()), timeout),
                audit: Bounded::new(SqlAuditLog::new(db.clone()), timeout),
                admin: Bounded::new(SqlAdministration::new(db.clone()), timeout),
            };
            let output = execute(&stores, command).await;
            // A failed command (perhaps on a database that stopped answering) does not
            // wait for a graceful close: dropping the pool is enough, and its answer is due.
            if output.is_ok() {
                crate::close_sql(db, timeout).await;
            }
            output
        }
        Storage::Mongodb => {
            let opened = crate::open_mongo(config).await?;
            let client = opened.client.clone();
            let stores = Stores {
                admin: Bounded::new(MongoAdministration::of(&opened), timeout),
                service: AuthService::new(Bounded::new(opened.users, timeout), hasher, policy),
                sessions: Bounded::new(opened.sessions, timeout),
                audit: Bounded::new(opened.events, timeout),
            };
            let output = execute(&stores, command).await;
            drop(stores);
            crate::shut_down_mongo(client, timeout).await;
            output
        }
    }
}

/// Dispatches `command` to the stores; a new password is read from the terminal or stdin.
async fn execute<R, S, A, D>(
    stores: &Stores<R, S, A, D>,
    command: Command,
) -> anyhow::Result<Output>
where
    R: auth_domain::UserRepository,
    S: auth_domain::UserSessions,
    A: auth_domain::audit::AuditLog,
    D: auth_domain::admin::Administration,
{
    match command {
        Command::Users(command) => {
            stores
                .users(command, &mut password::read_new_password)
                .await
        }
        Command::Sessions(command) => stores.sessions(command).await,
        Command::Events(args) => stores.events(args).await,
        Command::Serve | Command::Install => {
            anyhow::bail!("not an admin command on open stores")
        }
    }
}

fn what_install_builds(storage: Storage) -> &'static str {
    match storage {
        Storage::Sql => "SQL schema",
        Storage::Mongodb => "MongoDB indexes",
    }
}

#[cfg(test)]
mod tests;
