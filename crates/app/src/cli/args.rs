//! The command line, as clap parses it: bad usage exits with 2 before anything runs.

use std::path::PathBuf;

use auth_domain::{mail::MailStatus, session::SessionHandle};
use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

/// How many rows a listing shows unless told otherwise.
const DEFAULT_LIMIT: &str = "100";

/// The authentication service: serves the API, and administers its users, sessions and
/// events on the configured backend (App.toml, .env and the environment, as the server
/// reads them).
#[derive(Debug, Parser)]
#[command(name = "app", version, propagate_version = true)]
pub struct Cli {
    /// Print one JSON document on stdout instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do; serving when none is given.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the binary does.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API on HOST:PORT until SIGINT or SIGTERM (what `app` alone does).
    Serve,
    /// Build the schema (SQL) or the indexes (MongoDB); what exists is left as it is.
    Install,
    /// List, show, create, reset or delete users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// List, revoke or purge sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Show the audit trail, newest first.
    Events(EventsArgs),
    /// List the outbox's mail, or retry failed mail.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Build the breached-password filter (needs no database).
    #[command(subcommand)]
    Passwords(PasswordsCommand),
}

/// `app passwords ...`
#[derive(Debug, Subcommand)]
pub enum PasswordsCommand {
    /// Build the filter BREACHED_PASSWORDS names from a HaveIBeenPwned file of `SHA1:COUNT`
    /// lines (its downloader's SHA-1 format), with a progress bar on stderr. Holds 8 bytes
    /// per hash while it builds, plus about 2.3 per hash for the filter.
    Import {
        /// The HaveIBeenPwned file (`SHA1HEX:COUNT` lines).
        hibp_file: PathBuf,
        /// The filter file to write (replaced once it is whole).
        filter_file: PathBuf,
    },
}

/// `app users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users, newest first.
    List {
        /// Show at most this many.
        #[arg(long, default_value = DEFAULT_LIMIT)]
        limit: u64,
    },
    /// Show one user.
    Show {
        /// The user's id, email address or username.
        user: String,
    },
    /// Create a user; the password is read from the terminal without echo, or as one
    /// line from stdin when it is not a terminal (never from an argument).
    Create {
        /// The email address.
        #[arg(long)]
        email: String,
        /// The username; the email address when absent.
        #[arg(long)]
        username: Option<String>,
    },
    /// Give a user a new password (read as for `create`) and end all their sessions.
    SetPassword {
        /// The user's id, email address or username.
        user: String,
    },
    /// Delete a user together with their sessions.
    Delete {
        /// The user's id, email address or username.
        user: String,
    },
    /// Remove every second factor of a user (TOTP, passkeys, recovery codes), for one who
    /// lost them all: their next login asks for the password alone. Audited as the
    /// admin's, and the user is mailed a notice.
    ResetMfa {
        /// The user's id, email address or username.
        user: String,
    },
}

/// `app sessions ...`
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List live sessions, the one used last first.
    List {
        /// Only this user's (id, email address or username).
        #[arg(long)]
        user: Option<String>,
        /// Show at most this many.
        #[arg(long, default_value = DEFAULT_LIMIT)]
        limit: u64,
    },
    /// End one session by its handle, or all of a user's sessions.
    Revoke(RevokeArgs),
    /// Delete the expired sessions now.
    Purge,
}

/// `app sessions revoke <handle> | --user U`
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RevokeArgs {
    /// The session's handle (64 hexadecimal digits, as `sessions list` shows it).
    pub handle: Option<SessionHandle>,
    /// Every session of this user (id, email address or username).
    #[arg(long)]
    pub user: Option<String>,
}

/// `app events [--user U] [--limit N]`
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this user's (id, email address or username).
    #[arg(long)]
    pub user: Option<String>,
    /// Show at most this many.
    #[arg(long, default_value = DEFAULT_LIMIT)]
    pub limit: u64,
}

/// `app mail ...`
#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// List mail, newest first: its id, kind, recipient, status, attempts and last error,
    /// never its content (a body may hold a live token).
    List {
        /// Only mail of this status: pending, sent or failed.
        #[arg(long, value_parser = mail_status)]
        status: Option<MailStatus>,
        /// Show at most this many.
        #[arg(long, default_value = DEFAULT_LIMIT)]
        limit: u64,
    },
    /// Make failed mail pending again, due now, its attempts counted afresh: the mail
    /// `ID`, or every failed mail.
    Retry {
        /// The mail's id, as `mail list` shows it; every failed mail when absent.
        id: Option<Uuid>,
    },
}

fn mail_status(name: &str) -> Result<MailStatus, String> {
    MailStatus::parse(&name.to_ascii_lowercase())
        .ok_or_else(|| "expected pending, sent or failed".to_owned())
}

#[cfg(test)]
mod tests {
    use clap::{error::ErrorKind, CommandFactory};

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("app").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_serving() {
        assert!(parse(&[]).expect("valid").command.is_none());
        assert!(matches!(
            parse(&["serve"]).expect("valid").command,
            Some(Command::Serve)
        ));
    }

    #[test]
    fn revoke_takes_a_handle_or_a_user_but_not_both_nor_neither() {
        let handle = "a".repeat(64);
        assert!(parse(&["sessions", "revoke", &handle]).is_ok());
        assert!(parse(&["sessions", "revoke", "--user", "ada"]).is_ok());
        for bad in [
            vec!["sessions", "revoke"],
            vec!["sessions", "revoke", &handle, "--user", "ada"],
            vec!["sessions", "revoke", "not-a-handle"],
        ] {
            let error = parse(&bad).expect_err("bad usage");
            assert_eq!(error.exit_code(), 2, "{bad:?}: {error}");
        }
    }

    #[test]
    fn a_password_is_never_an_argument() {
        let error = parse(&["users", "create", "--email", "a@b.c", "--password", "x"])
            .expect_err("no such argument");
        assert_eq!(error.kind(), ErrorKind::UnknownArgument);
    }

    #[test]
    fn mail_is_listed_by_status_and_retried_by_id_or_all_at_once() {
        let Some(Command::Mail(MailCommand::List { status, limit })) =
            parse(&["mail", "list", "--status", "failed", "--limit", "5"])
                .expect("valid")
                .command
        else {
            panic!("mail list");
        };
        assert_eq!((status, limit), (Some(MailStatus::Failed), 5));
        assert!(matches!(
            parse(&["mail", "retry"]).expect("valid").command,
            Some(Command::Mail(MailCommand::Retry { id: None }))
        ));
        let id = Uuid::now_v7();
        assert!(matches!(
            parse(&["mail", "retry", &id.to_string()]).expect("valid").command,
            Some(Command::Mail(MailCommand::Retry { id: Some(given) })) if given == id
        ));
        for bad in [
            vec!["mail", "list", "--status", "lost"],
            vec!["mail", "retry", "not-an-id"],
        ] {
            let error = parse(&bad).expect_err("bad usage");
            assert_eq!(error.exit_code(), 2, "{bad:?}: {error}");
        }
    }

    #[test]
    fn passwords_import_takes_the_two_files() {
        let Some(Command::Passwords(PasswordsCommand::Import {
            hibp_file,
            filter_file,
        })) = parse(&["passwords", "import", "pwned.txt", "filter.bin"])
            .expect("valid")
            .command
        else {
            panic!("passwords import");
        };
        assert_eq!(hibp_file, PathBuf::from("pwned.txt"));
        assert_eq!(filter_file, PathBuf::from("filter.bin"));
        let error = parse(&["passwords", "import", "pwned.txt"]).expect_err("bad usage");
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn json_is_accepted_at_any_level() {
        assert!(parse(&["--json", "users", "list"]).expect("valid").json);
        assert!(parse(&["users", "list", "--json"]).expect("valid").json);
    }
}
