//! Sending the outbox's mail.
//!
//! The use cases write each mail into the outbox in the same transaction as the action
//! that causes it (see `auth_domain::mail`); this module takes it from there. An
//! [`OutboxWorker`] leases what is due, hands each mail to the [`Transport`] and settles
//! it: sent, or failed and due again after a backoff, or failed for good after its last
//! attempt. The transport is SMTP (`SMTP_URL`), or, with none configured, `.eml` files in
//! `MAIL_DIR`, so that a development server needs no mail server and its mail can be read.
//!
//! - `message`: a domain `Mail` as a plain-text message.
//! - `transport`: SMTP or files, chosen by the configuration.
//! - `worker`: the loop, its backoff and its metrics.

mod message;
mod transport;
mod worker;

use std::{fmt, path::PathBuf};

use auth_domain::redact_url;
pub use lettre::message::Mailbox;
use secrecy::{ExposeSecret as _, SecretString};

pub use self::{
    message::MessageError,
    transport::{SendError, Transport},
    worker::{
        Backoff, OutboxWorker, RunningWorker, WorkerSettings, DEPTH_METRIC, FAILED_METRIC,
        RETRIED_METRIC, SENT_METRIC,
    },
};

/// Where mail goes and whom it is from (`SMTP_URL`, `MAIL_FROM`, `MAIL_DIR`).
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// The SMTP server; `None` writes `.eml` files into [`dir`](Self::dir) instead.
    pub smtp_url: Option<SmtpUrl>,
    /// The sender of every mail.
    pub from: Mailbox,
    /// Where mail is written when there is no SMTP server.
    pub dir: PathBuf,
}

/// An `smtp://` or `smtps://` URL, which may hold a password: `Debug` and `Display` show
/// it redacted.
#[derive(Clone)]
pub struct SmtpUrl(SecretString);

impl SmtpUrl {
    /// The URL as configured. The caller checks the scheme.
    pub fn new(url: SecretString) -> Self {
        Self(url)
    }

    /// The URL, password included: for the transport, never for a log.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_url(self.expose()), f)
    }
}

impl fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(self.expose()))
    }
}

#[cfg(test)]
mod tests;
