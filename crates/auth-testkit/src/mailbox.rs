//! The mail the service sent, as the test SMTP server received it.
//!
//! `cargo xtask test` starts an SMTP sink (aiosmtpd) on a free loopback port and hands it
//! to the tests as two variables: [`SMTP_URL_KEY`], the URL the service sends to, and
//! [`SINK_DIR_KEY`], the Maildir the sink writes every message it accepts into. A
//! [`Mailbox`] reads that Maildir. Every test shares the one sink, so a test reads only
//! the mail of addresses it made up itself ([`Mailbox::messages_to`]).
//!
//! Tests that need the sink live under a module named `smtp` (`smtp::postgres::...`,
//! `smtp::the_worker_...`): `cargo xtask test` skips them, by that name, when it cannot
//! provide the sink, as it does the tests of a backend it cannot provide.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use mail_parser::MessageParser;

/// The variable that holds the test SMTP server's URL (`smtp://127.0.0.1:PORT`).
pub const SMTP_URL_KEY: &str = "SMTP_URL_TEST";

/// The variable that holds the Maildir the test SMTP server writes into.
pub const SINK_DIR_KEY: &str = "SMTP_SINK_DIR";

/// How often [`Mailbox::wait_for`] looks at the Maildir again.
const POLL: Duration = Duration::from_millis(50);

/// The characters of a token in a mailed link: 32 bytes, base64url without padding.
const TOKEN_CHARS: usize = 43;

/// What comes before the token in a mailed link (`https://host/page#token=...`).
const TOKEN_MARK: &str = "#token=";

/// The test SMTP server's URL.
///
/// # Panics
///
/// When [`SMTP_URL_KEY`] is not set: the tests that need it run under `cargo xtask test`.
pub fn smtp_url() -> String {
    required(SMTP_URL_KEY)
}

fn required(key: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{key} is not set: this test needs the test SMTP server, which `cargo xtask \
                 test` starts (it sets {SMTP_URL_KEY} and {SINK_DIR_KEY}); run it with \
                 `cargo xtask test -- -E 'test(/smtp::/)'`, or set both variables to a \
                 server and the Maildir it writes into"
            )
        })
}

/// The Maildir of the test SMTP server.
#[derive(Debug, Clone)]
pub struct Mailbox {
    dir: PathBuf,
}

/// One message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The `From` header's address.
    pub from: String,
    /// The envelope's recipients (`RCPT TO`), else the `To` header's addresses.
    pub to: Vec<String>,
    /// The subject, decoded.
    pub subject: String,
    /// The plain-text body, decoded from its transfer encoding (quoted-printable, base64).
    pub body: String,
    /// The `Message-ID`, without its angle brackets.
    pub message_id: Option<String>,
}

impl Received {
    /// The token of the link in the body, if there is one.
    pub fn token(&self) -> Option<&str> {
        token_in(&self.body)
    }

    /// Whether `address` is among the recipients (compared case-insensitively).
    pub fn is_to(&self, address: &str) -> bool {
        self.to.iter().any(|to| to.eq_ignore_ascii_case(address))
    }
}

impl Mailbox {
    /// The sink's Maildir, from [`SINK_DIR_KEY`].
    ///
    /// # Panics
    ///
    /// When [`SINK_DIR_KEY`] is not set: the tests that need it run under `cargo xtask
    /// test`.
    pub fn from_env() -> Self {
        Self::at(required(SINK_DIR_KEY))
    }

    /// The Maildir at `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Where it is.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every message delivered so far, oldest first.
    ///
    /// # Panics
    ///
    /// When the Maildir cannot be read, or holds a message that does not parse.
    pub fn messages(&self) -> Vec<Received> {
        let mut files: Vec<(SystemTime, PathBuf)> = Vec::new();
        // The sink writes into `tmp/` and renames into `new/`: a file there is whole.
        for sub in ["new", "cur"] {
            let dir = self.dir.join(sub);
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                // No message yet: the sink makes the folders with its first one.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => panic!("cannot read {}: {error}", dir.display()),
            };
            for entry in entries {
                let entry = entry.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
                let modified = entry
                    .metadata()
                    .and_then(|metadata| metadata.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                files.push((modified, entry.path()));
            }
        }
        // Maildir names start with the delivery's second: a tie-break within one mtime.
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| {
                let raw = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                parse_message(&raw).unwrap_or_else(|| panic!("{} is not a message", path.display()))
            })
            .collect()
    }

    /// The messages delivered to `to` so far, oldest first.
    pub fn messages_to(&self, to: &str) -> Vec<Received> {
        self.messages()
            .into_iter()
            .filter(|message| message.is_to(to))
            .collect()
    }

    /// The messages to `to` once there are at least `count` of them.
    ///
    /// # Panics
    ///
    /// When `timeout` passes first, saying what did arrive.
    pub async fn wait_for(&self, to: &str, count: usize, timeout: Duration) -> Vec<Received> {
        let seen = self
            .wait_until(to, timeout, |messages| messages.len() >= count)
            .await;
        assert!(
            seen.len() >= count,
            "{count} message(s) to {to} expected within {timeout:?}; {} arrived: {:?}",
            seen.len(),
            subjects(&seen)
        );
        seen
    }

    /// The messages to `to` once `done` holds of them, or those there are when `timeout`
    /// passes first (the caller's assertion then says what is missing).
    pub async fn wait_until(
        &self,
        to: &str,
        timeout: Duration,
        mut done: impl FnMut(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = self.messages_to(to);
            if done(&messages) || tokio::time::Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

fn subjects(messages: &[Received]) -> Vec<&str> {
    messages
        .iter()
        .map(|message| message.subject.as_str())
        .collect()
}

/// A message as the sink (or the app's `MAIL_DIR`) holds it; `None` if it does not parse.
pub fn parse_message(raw: &[u8]) -> Option<Received> {
    let message = MessageParser::default().parse(raw)?;
    let addresses = |address: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        address
            .into_iter()
            .flat_map(|address| address.iter())
            .filter_map(|addr| addr.address().map(str::to_owned))
            .collect()
    };
    // aiosmtpd's Maildir handler records the envelope, which is who it was delivered to.
    let envelope: Vec<String> = message
        .header_raw("X-RcptTo")
        .map(|rcpt| {
            rcpt.split(',')
                .map(|to| to.trim().to_owned())
                .filter(|to| !to.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Some(Received {
        from: addresses(message.from())
            .into_iter()
            .next()
            .unwrap_or_default(),
        to: if envelope.is_empty() {
            addresses(message.to())
        } else {
            envelope
        },
        subject: message.subject().unwrap_or_default().to_owned(),
        body: message
            .body_text(0)
            .map(|body| body.into_owned())
            .unwrap_or_default(),
        message_id: message.message_id().map(str::to_owned),
    })
}

/// The token of the first link in `body` (`...#token=` and 43 base64url characters).
pub fn token_in(body: &str) -> Option<&str> {
    let (_, after) = body.split_once(TOKEN_MARK)?;
    let end = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(after.len());
    (end == TOKEN_CHARS).then(|| &after[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "q8E0l2m-WcY_Jx0v3m1yHn3B2mQ9aSx7dWcYk0Zp1Ag";

    #[test]
    fn the_token_is_read_from_the_link_in_a_body() {
        let body = format!("Open this:\n\nhttps://auth.example.com/reset#token={TOKEN}\n\nor");
        assert_eq!(token_in(&body), Some(TOKEN));
        assert_eq!(token_in("no link here"), None);
        let short = format!("x#token={}", &TOKEN[..42]);
        assert_eq!(token_in(&short), None);
        let long = format!("x#token={TOKEN}A");
        assert_eq!(token_in(&long), None);
    }

    #[test]
    fn a_quoted_printable_message_is_decoded_with_its_envelope() {
        let raw = format!(
            "From: auth-service <no-reply@localhost>\r\n\
             To: ada@example.com\r\n\
             Subject: =?utf-8?q?R=C3=A9initialiser?=\r\n\
             Message-ID: <0190abcd@localhost>\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\
             X-MailFrom: no-reply@localhost\r\n\
             X-RcptTo: Ada@Example.com, bob@example.com\r\n\
             \r\n\
             https://auth.example.com/reset-password#token=3D{}=\r\n{}\r\n",
            &TOKEN[..20],
            &TOKEN[20..]
        );
        let received = parse_message(raw.as_bytes()).expect("a message");
        assert_eq!(received.from, "no-reply@localhost");
        assert_eq!(received.to, ["Ada@Example.com", "bob@example.com"]);
        assert!(received.is_to("ada@example.com"));
        assert_eq!(received.subject, "Réinitialiser");
        assert_eq!(received.message_id.as_deref(), Some("0190abcd@localhost"));
        assert_eq!(received.token(), Some(TOKEN));
    }

    #[test]
    fn a_maildir_without_messages_is_empty() {
        let dir = std::env::temp_dir().join(format!("mailbox-test-{}", uuid::Uuid::new_v4()));
        assert!(Mailbox::at(&dir).messages().is_empty());
        std::fs::create_dir_all(dir.join("new")).expect("writable");
        std::fs::write(
            dir.join("new").join("1.M1P1Q1.host"),
            "From: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n\r\nbody\r\n",
        )
        .expect("writable");
        let mailbox = Mailbox::at(&dir);
        assert_eq!(mailbox.messages_to("B@y.test").len(), 1);
        assert!(mailbox.messages_to("c@y.test").is_empty());
        std::fs::remove_dir_all(&dir).expect("removable");
    }
}
