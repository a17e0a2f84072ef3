//! The mail section: where mail goes (`SMTP_URL`, `MAIL_DIR`), whom it is from
//! (`MAIL_FROM`), where its links point (`PUBLIC_URL`), and what the mail use cases are
//! configured with (`PASSWORD_RESET_LIFETIME`, `EMAIL_VERIFICATION`).

use std::path::PathBuf;

use auth_domain::account_mail::EmailVerification;

use super::{read::Settings, ConfigError};
use crate::mail::{MailConfig, Mailbox, SmtpUrl};

/// The shortest `PASSWORD_RESET_LIFETIME`: a minute to open the mail and follow the link.
const MIN_RESET_LIFETIME_SECS: u64 = 60;

/// The longest `PASSWORD_RESET_LIFETIME`: a reset link is a password that lies in a
/// mailbox; past a day it is a liability, not a convenience.
const MAX_RESET_LIFETIME_SECS: u64 = 24 * 60 * 60;

pub(super) fn mail_config(s: &Settings<'_>) -> Result<MailConfig, ConfigError> {
    let dir = s.string("MAIL_DIR")?;
    if dir.is_empty() {
        return Err(s.error("MAIL_DIR", "must not be empty"));
    }
    Ok(MailConfig {
        smtp_url: smtp_url(s)?,
        from: mail_from(s)?,
        dir: PathBuf::from(dir),
    })
}

/// `SMTP_URL`: unset or empty for none. Checked as lettre will read it, so that a typo
/// stops start-up; the value is never echoed, since it may hold a password.
fn smtp_url(s: &Settings<'_>) -> Result<Option<SmtpUrl>, ConfigError> {
    const KEY: &str = "SMTP_URL";
    let Some(secret) = s.secret(KEY)? else {
        return Ok(None);
    };
    let url = SmtpUrl::new(secret);
    let text = url.expose().trim();
    if text.is_empty() {
        return Ok(None);
    }
    let parsed = url::Url::parse(text).map_err(|e| s.error(KEY, format!("not a URL: {e}")))?;
    match parsed.scheme() {
        "smtp" | "smtps" => {}
        _ => return Err(s.error(KEY, "expected a URL starting with smtp: or smtps:")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(s.error(KEY, "names no host"));
    }
    let tls = parsed
        .query_pairs()
        .find(|(name, _)| name == "tls")
        .map(|(_, value)| value.into_owned());
    match (parsed.scheme(), tls.as_deref()) {
        (_, None) | ("smtp", Some("required" | "opportunistic")) => {}
        _ => {
            return Err(s.error(
                KEY,
                "`tls` must be `required` or `opportunistic` (STARTTLS), and only with smtp: \
                 (smtps: is TLS from the start)",
            ))
        }
    }
    // lettre would send them in the clear: a mail server's password is worth more than
    // the convenience.
    if parsed.password().is_some() && parsed.scheme() == "smtp" && tls.is_none() {
        return Err(s.error(
            KEY,
            "credentials over plain smtp: would cross the network unencrypted: use smtps: or \
             add ?tls=required",
        ));
    }
    Ok(Some(url))
}

/// `MAIL_FROM`: an address, or a name and an address (`auth <no-reply@example.com>`).
fn mail_from(s: &Settings<'_>) -> Result<Mailbox, ConfigError> {
    const KEY: &str = "MAIL_FROM";
    let from = s.string(KEY)?;
    from.parse().map_err(|e| {
        s.error(
            KEY,
            format!("`{from}` is not an address or `Name <address>`: {e}"),
        )
    })
}

/// `PUBLIC_URL`: an absolute http(s) URL with a host, and neither query nor fragment
/// (links add a path and a fragment to it). Kept without a trailing slash.
pub(super) fn public_url(s: &Settings<'_>) -> Result<String, ConfigError> {
    const KEY: &str = "PUBLIC_URL";
    let text = s.string(KEY)?;
    let url = url::Url::parse(&text)
        .map_err(|e| s.error(KEY, format!("`{text}` is not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(s.error(KEY, format!("`{text}` is not an http: or https: URL")));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(s.error(KEY, format!("`{text}` names no host")));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(s.error(
            KEY,
            format!("`{text}` must have no credentials, query or fragment: links add their own"),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// `PASSWORD_RESET_LIFETIME`, seconds.
pub(super) fn password_reset_lifetime(s: &Settings<'_>) -> Result<time::Duration, ConfigError> {
    let secs: u64 = s.number_in(
        "PASSWORD_RESET_LIFETIME",
        MIN_RESET_LIFETIME_SECS..=MAX_RESET_LIFETIME_SECS,
    )?;
    Ok(time::Duration::seconds(
        i64::try_from(secs).expect("at most a day"),
    ))
}

/// `EMAIL_VERIFICATION`: `off`, `optional` or `required`, in any case.
pub(super) fn email_verification(s: &Settings<'_>) -> Result<EmailVerification, ConfigError> {
    const KEY: &str = "EMAIL_VERIFICATION";
    let mode = s.string(KEY)?;
    EmailVerification::parse(&mode.to_ascii_lowercase()).ok_or_else(|| {
        s.error(
            KEY,
            format!("expected `off`, `optional` or `required`, not `{mode}`"),
        )
    })
}
