//! The SMTP server the mail tests send to: `SMTP_URL_TEST` and `SMTP_SINK_DIR` when both
//! are set (a server of one's own and the Maildir it writes), else aiosmtpd (PyPI, pinned,
//! in a venv under the target directory) started here on a free loopback port, writing
//! every message it accepts into a fresh Maildir; stopped, and the Maildir removed, when
//! [`SmtpSink`] is dropped.
//!
//! The tests that need it live under a module named `smtp` ([`TESTS`]); when it cannot be
//! provided they are skipped, by that name, as a backend's are (an error with `CI=true`).

use std::{net::SocketAddr, path::Path, process::Command, time::Duration};

use anyhow::{Context as _, Result};
use auth_domain::redact_url;
use auth_testkit::mailbox::{SINK_DIR_KEY, SMTP_URL_KEY};

use crate::{
    backends::{connect_any, Status},
    process::{free_port, ChildGuard, TempDir},
    project::Project,
    venv::PinnedTool,
};

/// aiosmtpd, an asyncio SMTP server whose `Mailbox` handler writes a Maildir.
const AIOSMTPD: PinnedTool = PinnedTool {
    package: "aiosmtpd",
    version: "1.4.6",
    venv: "aiosmtpd-venv",
    program: "aiosmtpd",
    label: "aiosmtpd",
};

/// How long aiosmtpd may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The nextest filterset of the tests that need the SMTP server: under a module `smtp`.
pub(crate) const TESTS: &str = "test(/(^|::)smtp::/)";

/// The port of an `smtp://` URL that names none.
const SMTP_PORT: u16 = 25;

/// The test SMTP server, provided or not; owns the aiosmtpd it may have started.
#[derive(Debug)]
pub(crate) struct SmtpSink {
    status: Status,
    /// Where messages are written: the Maildir handed to the tests.
    maildir: String,
    /// Declared before `storage`: the server stops before its Maildir is removed.
    server: Option<ChildGuard>,
    storage: Option<TempDir>,
}

impl SmtpSink {
    /// The server from the environment, else an aiosmtpd started here; one that cannot be
    /// provided is recorded, not fatal.
    pub(crate) fn provide(project: &Project) -> Self {
        let from_env = |key| std::env::var(key).ok().filter(|value| !value.is_empty());
        match (from_env(SMTP_URL_KEY), from_env(SINK_DIR_KEY)) {
            (Some(url), Some(maildir)) => Self {
                status: check(url, &maildir),
                maildir,
                server: None,
                storage: None,
            },
            (None, None) => match start(&project.target_dir) {
                Ok(sink) => sink,
                Err(error) => Self::not_run(format!(
                    "{SMTP_URL_KEY} is not set and aiosmtpd could not be started: {}",
                    format!("{error:#}").replace('\n', " ")
                )),
            },
            (Some(_), None) => Self::not_run(format!(
                "{SMTP_URL_KEY} is set but {SINK_DIR_KEY} is not: set both (the server and \
                 the Maildir it writes), or neither to have aiosmtpd started"
            )),
            (None, Some(_)) => Self::not_run(format!(
                "{SINK_DIR_KEY} is set but {SMTP_URL_KEY} is not: set both, or neither"
            )),
        }
    }

    fn not_run(why: String) -> Self {
        Self {
            status: Status::NotRun { why },
            maildir: String::new(),
            server: None,
            storage: None,
        }
    }

    /// Why it could not be provided, if it could not.
    pub(crate) fn not_run_why(&self) -> Option<&str> {
        match &self.status {
            Status::NotRun { why } => Some(why),
            Status::Provided { .. } => None,
        }
    }

    /// `SMTP_URL_TEST` and `SMTP_SINK_DIR`, when provided.
    pub(crate) fn env(&self) -> Vec<(&'static str, &str)> {
        match &self.status {
            Status::Provided { url, .. } => {
                vec![(SMTP_URL_KEY, url.as_str()), (SINK_DIR_KEY, &self.maildir)]
            }
            Status::NotRun { .. } => Vec::new(),
        }
    }

    /// Its line of the backends' list: provided where and how, or why not.
    pub(crate) fn describe(&self) -> String {
        let name = "smtp";
        match &self.status {
            Status::Provided { url, how } => {
                format!("  {name:<9} provided  {} ({how})\n", redact_url(url))
            }
            Status::NotRun { why } => format!("  {name:<9} NOT RUN   {why}\n"),
        }
    }

    /// Stops aiosmtpd and removes its Maildir now, if this started it (dropping does the
    /// same).
    pub(crate) fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            println!("xtask: stopping aiosmtpd");
            server.stop();
        }
        drop(self.storage.take());
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A server of one's own: provided when it accepts TCP connections and its Maildir is a
/// directory.
fn check(url: String, maildir: &str) -> Status {
    let source = format!("{SMTP_URL_KEY}, {SINK_DIR_KEY}={maildir}");
    if !Path::new(maildir).is_dir() {
        return Status::NotRun {
            why: format!("{SINK_DIR_KEY}={maildir} is not a directory"),
        };
    }
    let addresses = url::Url::parse(&url)
        .context("the URL does not parse")
        .and_then(|parsed| {
            parsed
                .socket_addrs(|| Some(SMTP_PORT))
                .context("cannot resolve its host")
        });
    match addresses.and_then(|addresses| connect_any(&addresses)) {
        Ok(()) => Status::Provided { url, how: source },
        Err(error) => Status::NotRun {
            why: format!(
                "cannot connect to {} ({source}): {error:#}",
                redact_url(&url)
            ),
        },
    }
}

/// Installs aiosmtpd if needed and starts it on a free loopback port, writing a fresh
/// Maildir, and waits for it.
fn start(target_dir: &Path) -> Result<SmtpSink> {
    let aiosmtpd = AIOSMTPD.install(target_dir)?;
    let storage = TempDir::new("auth-service-smtp")?;
    let maildir = storage.path().join("maildir");
    let maildir = maildir
        .to_str()
        .context("the temporary directory's path is not UTF-8")?
        .to_owned();
    let port = free_port()?;
    let mut command = Command::new(&aiosmtpd);
    command
        // `-n`: stay the user that runs it (it would try to become `nobody` as root);
        // `-u`: accept SMTPUTF8, for addresses beyond ASCII.
        .args(["-n", "-u", "-l", &format!("127.0.0.1:{port}")])
        .args(["-c", "aiosmtpd.handlers.Mailbox", &maildir])
        .current_dir(storage.path());
    println!(
        "xtask: starting aiosmtpd {} on 127.0.0.1:{port}",
        AIOSMTPD.version
    );
    // The log outlives the Maildir, for a look after a failed run.
    let log = target_dir.join("aiosmtpd").join("aiosmtpd.log");
    let mut server = ChildGuard::spawn("aiosmtpd", &mut command, &log)?;
    server.wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)), START_TIMEOUT)?;
    let how = format!(
        "aiosmtpd {} started by xtask, Maildir {maildir}, log {}",
        AIOSMTPD.version,
        log.display()
    );
    Ok(SmtpSink {
        status: Status::Provided {
            url: format!("smtp://127.0.0.1:{port}"),
            how,
        },
        maildir,
        server: Some(server),
        storage: Some(storage),
    })
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    fn why(status: &Status) -> &str {
        match status {
            Status::NotRun { why } => why,
            Status::Provided { .. } => panic!("provided: {status:?}"),
        }
    }

    #[test]
    fn a_server_of_ones_own_is_provided_when_it_answers_and_its_maildir_exists() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bound");
        let url = format!("smtp://{}", listener.local_addr().expect("bound"));
        let maildir = std::env::temp_dir();
        let maildir = maildir.to_str().expect("UTF-8");
        assert!(matches!(
            check(url.clone(), maildir),
            Status::Provided { .. }
        ));

        let status = check(url, "/nonexistent/maildir");
        assert!(why(&status).contains("is not a directory"), "{status:?}");
        drop(listener);
    }

    #[test]
    fn a_server_that_does_not_answer_is_not_run_and_its_password_not_shown() {
        let port = free_port().expect("a free port");
        let url = format!("smtp://ada:hunter2@127.0.0.1:{port}");
        let maildir = std::env::temp_dir();
        let status = check(url, maildir.to_str().expect("UTF-8"));
        let why = why(&status);
        assert!(
            why.starts_with("cannot connect to smtp://ada:[redacted]@"),
            "{why}"
        );
        assert!(!why.contains("hunter2"), "{why}");
    }
}
