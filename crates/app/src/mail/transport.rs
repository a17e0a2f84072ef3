//! Where messages go: an SMTP server (`SMTP_URL`, plain, STARTTLS or TLS, with credentials,
//! over rustls), or `.eml` files in a directory (`MAIL_DIR`) when there is none.

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor,
};

use super::{MailConfig, SmtpUrl};

/// The longest an answer to one SMTP command may take: past it the connection is dropped.
/// The worker bounds the whole send too.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// SMTP, or files.
pub enum Transport {
    /// An SMTP server, through a pool of connections.
    Smtp {
        /// The pool.
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// Its URL, shown redacted.
        url: SmtpUrl,
    },
    /// One `.eml` file per message in `dir`.
    Files {
        /// The writer.
        transport: AsyncFileTransport<Tokio1Executor>,
        /// Where it writes.
        dir: PathBuf,
    },
}

/// A send that failed: the server's answer, or why there was none. Never holds the body.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SendError(String);

impl Transport {
    /// The transport `config` names: SMTP at `SMTP_URL`, or files in `MAIL_DIR` (created
    /// if missing).
    ///
    /// # Errors
    ///
    /// An SMTP URL lettre refuses, or a `MAIL_DIR` that cannot be created.
    pub fn from_config(config: &MailConfig) -> anyhow::Result<Self> {
        match &config.smtp_url {
            Some(url) => Self::smtp(url),
            None => Self::files(&config.dir),
        }
    }

    /// SMTP at `url`; nothing is connected before the first send.
    ///
    /// # Errors
    ///
    /// A URL lettre refuses (its scheme, its `tls` parameter, its host).
    pub fn smtp(url: &SmtpUrl) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            // lettre's message names the part at fault, never the password.
            .with_context(|| format!("SMTP_URL {url} is refused"))?
            .timeout(Some(COMMAND_TIMEOUT))
            .build();
        Ok(Self::Smtp {
            transport,
            url: url.clone(),
        })
    }

    /// `.eml` files in `dir`, created now if missing.
    ///
    /// # Errors
    ///
    /// When `dir` cannot be created.
    pub fn files(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create MAIL_DIR {}", dir.display()))?;
        Ok(Self::Files {
            transport: AsyncFileTransport::new(dir),
            dir: dir.to_owned(),
        })
    }

    /// Hands `message` over: to the SMTP server, or to a new file.
    ///
    /// # Errors
    ///
    /// What the server answered, or why it could not be reached; the file's I/O error.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Self::Smtp { transport, .. } => transport
                .send(message)
                .await
                .map(drop)
                .map_err(|e| SendError(e.to_string())),
            Self::Files { transport, .. } => transport
                .send(message)
                .await
                .map(drop)
                .map_err(|e| SendError(e.to_string())),
        }
    }

    /// Whether mail is only written to files.
    pub fn is_files(&self) -> bool {
        matches!(self, Self::Files { .. })
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Smtp { url, .. } => write!(f, "SMTP at {url}"),
            Self::Files { dir, .. } => write!(f, ".eml files in {}", dir.display()),
        }
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Transport({self})")
    }
}
