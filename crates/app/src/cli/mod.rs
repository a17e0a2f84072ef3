//! The `app` command line: `app` or `app serve` serves the API; `app install`, `app users`,
//! `app sessions`, `app events` and `app mail` administer the configured backend, with the
//! server's own configuration and code; `app passwords import` builds the breached-password
//! filter, with no configuration and no database.
//!
//! Exit codes: 0 on success; 1 when a command fails (an unknown user or session handle, a
//! refused password, an unreachable database), with one line on stderr; 2 for bad usage or
//! a bad configuration. A command prints its result on stdout: a table, or with `--json`
//! exactly one JSON document.

mod args;
mod breached;
mod commands;
mod password;
mod render;
mod table;

use std::{io::Write as _, path::Path, process::ExitCode};

use anyhow::Context as _;
use auth_domain::{accounts::Accounts, clock::Clock};
use serde_json::json;

pub use self::args::{
    Cli, Command, EventsArgs, MailCommand, PasswordsCommand, RevokeArgs, SessionsCommand,
    UsersCommand,
};
use self::{
    commands::Admin,
    render::{render, Output},
};
use crate::{
    bounded::BoundedStores,
    stores::{self, Backend, OnBackend, OnStores},
    Config,
};

/// Runs what `cli` asks for and says how it went, as the process's exit code.
pub fn main(cli: Cli) -> ExitCode {
    // Before the configuration: BREACHED_PASSWORDS may already name the file this writes.
    if let Some(Command::Passwords(command)) = &cli.command {
        return finish(breached::run(command).and_then(|output| print(&output, cli.json)));
    }
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
            .and_then(|output| print(&output, cli.json)),
    };
    finish(outcome)
}

/// Writes a command's `output` on stdout.
fn print(output: &Output, json: bool) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(render(output, json).as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing the output")
}

/// The exit code of `outcome`, its failure told on one line.
fn finish(outcome: anyhow::Result<()>) -> ExitCode {
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
            message: format!(
                "{} ready on {target}",
                config.storage.with(WhatInstallBuilds)
            ),
            json: json!({ "installed": true, "storage": config.storage.to_string() }),
        });
    }
    // Only the commands that set a password need the filter, which may be gigabytes.
    let sets_password = matches!(
        command,
        Command::Users(UsersCommand::Create { .. } | UsersCommand::SetPassword { .. })
    );
    let policy = if sets_password {
        crate::password_policy(config).await?
    } else {
        config.password_policy.clone()
    };
    let administer = Administer {
        command,
        hasher: crate::password_hasher(config.hashing).await?,
        policy,
        config,
    };
    // Every operation bounded as when serving: against a database that stopped answering,
    // a command gives up after DATABASE_TIMEOUT instead of hanging.
    stores::with_stores(config, &Clock::system(), administer).await
}

/// An admin command, run on the configured backend's stores as an operator.
struct Administer<'a> {
    command: Command,
    hasher: auth_domain::PasswordHasher,
    policy: auth_domain::PasswordPolicy,
    config: &'a Config,
}

impl OnStores for Administer<'_> {
    type Output = Output;

    async fn run<B: auth_http::Stores>(self, stores: BoundedStores<B>) -> anyhow::Result<Output> {
        let accounts = Accounts::new(
            stores,
            self.hasher,
            self.policy,
            self.config.throttle,
            auth_http::digest_keys(&self.config.http),
            Clock::system(),
            // No worker here: what a command queues goes out through a serving instance's.
            crate::mail_settings(self.config),
        )
        .with_mfa(crate::mfa_settings(self.config));
        let admin = Admin::new(accounts);
        match self.command {
            Command::Users(command) => admin.users(command, &mut password::read_new_password).await,
            Command::Sessions(command) => admin.sessions(command).await,
            Command::Events(args) => admin.events(args).await,
            Command::Mail(command) => admin.mail(command).await,
            Command::Serve | Command::Install | Command::Passwords(_) => {
                anyhow::bail!("not an admin command on open stores")
            }
        }
    }
}

/// What `app install` makes on the backend configured.
struct WhatInstallBuilds;

impl OnBackend for WhatInstallBuilds {
    type Output = &'static str;

    fn on<B: Backend>(self) -> &'static str {
        B::INSTALLS
    }
}

#[cfg(test)]
mod tests;
