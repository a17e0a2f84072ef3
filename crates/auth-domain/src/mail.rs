//! The mails the service sends, as plain text, and the outbox they wait in.
//!
//! Every mail is written ([`crate::work::Change::Enqueue`]) in the same transaction as the
//! action that causes it, and sent later by the outbox's worker: a request never waits on
//! SMTP, so what it answers and how long it takes say nothing about whether a mail went
//! out. [`Templates`] is the one place their wording lives; every link is built from
//! `PUBLIC_URL`, never from a request's `Host`.

use std::{fmt, future::Future};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{timestamp, tokens::TokenSecret, Email, RepositoryError};

/// Which mail it is: kept with it, shown by `app mail list`, and never its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// A link to set a new password.
    PasswordReset,
    /// "Your password was changed."
    PasswordChanged,
    /// A link to verify an address.
    EmailVerification,
    /// A link to confirm a new address.
    EmailChange,
    /// To the old address: "your address is being changed".
    EmailChangeNotice,
    /// To the owner of an address someone tried to take.
    EmailInUse,
    /// "A second factor was added to (or removed from) your account", or new recovery
    /// codes were made: a change to how the account is protected.
    SecurityNotice,
    /// "A recovery code was used to sign in."
    RecoveryCodeUsed,
}

impl MailKind {
    /// Every kind, for stores that check what they read back.
    pub const ALL: [Self; 8] = [
        Self::PasswordReset,
        Self::PasswordChanged,
        Self::EmailVerification,
        Self::EmailChange,
        Self::EmailChangeNotice,
        Self::EmailInUse,
        Self::SecurityNotice,
        Self::RecoveryCodeUsed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::PasswordChanged => "password_changed",
            Self::EmailVerification => "email_verification",
            Self::EmailChange => "email_change",
            Self::EmailChangeNotice => "email_change_notice",
            Self::EmailInUse => "email_in_use",
            Self::SecurityNotice => "security_notice",
            Self::RecoveryCodeUsed => "recovery_code_used",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for MailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One mail to send.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    /// Its id (a UUIDv7): also the Message-ID's local part, so a retried send is
    /// recognisable as the same message.
    pub id: Uuid,
    /// Which mail.
    pub kind: MailKind,
    /// The recipient.
    pub to: Email,
    /// The subject line.
    pub subject: String,
    /// The plain-text body: it may hold a live token, so it is never logged.
    pub body: String,
    /// When it was written, at the stored precision.
    pub created_at: OffsetDateTime,
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Where a mail is in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// Handed to the SMTP server (or written to `MAIL_DIR`).
    Sent,
    /// Given up on after its last attempt; `app mail retry` makes it pending again.
    Failed,
}

impl MailStatus {
    /// Every status.
    pub const ALL: [Self; 3] = [Self::Pending, Self::Sent, Self::Failed];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    /// The status stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }
}

impl fmt::Display for MailStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mail in the outbox, with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The mail.
    pub mail: Mail,
    /// Where it is.
    pub status: MailStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it may be tried (again): pending mail only.
    pub next_attempt_at: OffsetDateTime,
    /// The last failure's message (the SMTP server's answer; never the body).
    pub last_error: Option<String>,
    /// When it was sent.
    pub sent_at: Option<OffsetDateTime>,
}

/// A pending mail leased to one worker: no other worker gets it until `until`, and only
/// the holder of `lease` can settle it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    /// The mail.
    pub mail: Mail,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The lease's own id.
    pub lease: Uuid,
    /// When the lease ends, and another worker may take the mail.
    pub until: OffsetDateTime,
}

/// The outbox: mail waiting to be sent, written through [`crate::work::Work`], leased,
/// sent and settled by the worker.
///
/// # Errors
///
/// Every adapter MUST lease atomically (two workers on two instances never both hold a
/// lease on one mail: a conditional update or a compare-and-set, never a read then a
/// write), settle a mail only for the holder of its current lease, and wrap every driver
/// error in [`RepositoryError`].
pub trait Outbox: Clone + Send + Sync + 'static {
    /// Leases up to `limit` pending mails due at `now` (`next_attempt_at <= now`, no
    /// live lease), oldest first, until `now + lease`.
    fn lease_due(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Leased>, RepositoryError>> + Send;

    /// Marks a leased mail sent `at` and forgets its body (it may hold a live token).
    /// Returns whether the lease was still this worker's.
    fn mark_sent(
        &self,
        leased: &Leased,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, RepositoryError>> + Send;

    /// Records a failed attempt of a leased mail: pending again from `next_attempt_at`,
    /// or, with `None`, failed for good. Returns whether the lease was still this
    /// worker's.
    fn mark_attempt_failed(
        &self,
        leased: &Leased,
        error: &str,
        next_attempt_at: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<bool, RepositoryError>> + Send;

    /// The newest `limit` mails of `status` (every status with `None`), newest first.
    fn list(
        &self,
        status: Option<MailStatus>,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<OutboxEntry>, RepositoryError>> + Send;

    /// Makes failed mail pending again, due at `now`, with its attempts counted afresh:
    /// the one mail `id`, or every failed one. Returns how many.
    fn retry_failed(
        &self,
        id: Option<Uuid>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, RepositoryError>> + Send;

    /// How many mails are pending: the outbox's depth.
    fn pending(&self) -> impl Future<Output = Result<u64, RepositoryError>> + Send;

    /// Deletes at most `batch` mails sent or failed before `before`; returns how many.
    fn purge_settled_before(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> impl Future<Output = Result<u64, RepositoryError>> + Send;
}

/// The wording of every mail, and the links in them, built from `PUBLIC_URL`.
#[derive(Debug, Clone)]
pub struct Templates {
    /// The service's public base URL, without a trailing slash.
    public_url: String,
}

impl Templates {
    /// Templates whose links start with `public_url`.
    pub fn new(public_url: &str) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The page a link opens, with the token in the fragment: a browser never sends a
    /// fragment to a server, so neither a prefetching mail scanner nor a proxy's log sees
    /// it, and a GET of the page consumes nothing (only the page's POST does).
    fn link(&self, path: &str, token: &TokenSecret) -> String {
        format!("{}{path}#token={}", self.public_url, token.expose())
    }

    fn mail(kind: MailKind, to: &Email, subject: &str, body: String, at: OffsetDateTime) -> Mail {
        Mail {
            id: Uuid::now_v7(),
            kind,
            to: to.clone(),
            subject: subject.to_owned(),
            body,
            created_at: timestamp::truncate_to_micros(at),
        }
    }

    /// The link to set a new password.
    pub fn password_reset(
        &self,
        to: &Email,
        token: &TokenSecret,
        lifetime: time::Duration,
        at: OffsetDateTime,
    ) -> Mail {
        let body = format!(
            "Someone asked to reset the password of the account with this address.\n\
             \n\
             To choose a new password, open this link within {}:\n\
             \n\
             {}\n\
             \n\
             or submit this code to POST /v1/auth/password/reset:\n\
             \n\
             {}\n\
             \n\
             Every session of the account ends when the password changes.\n\
             If you did not ask for this, ignore this mail: your password stays as it is.\n",
            human(lifetime),
            self.link("/reset-password", token),
            token.expose(),
        );
        Self::mail(MailKind::PasswordReset, to, "Reset your password", body, at)
    }

    /// The notice of a change to how the account is protected: `what` happened ("TOTP
    /// was turned on", "a passkey was added", ...).
    pub fn security_notice(&self, to: &Email, what: &str, at: OffsetDateTime) -> Mail {
        let body = format!(
            "A change was made to how your account is protected: {what}.\n\
             \n\
             If this was not you, reset your password at once and review your second\n\
             factors:\n\
             \n\
             {}/forgot-password\n",
            self.public_url
        );
        Self::mail(
            MailKind::SecurityNotice,
            to,
            "Your account's security settings changed",
            body,
            at,
        )
    }

    /// The notice that a recovery code was spent; `left` remain.
    pub fn recovery_code_used(&self, to: &Email, left: u64, at: OffsetDateTime) -> Mail {
        let body = format!(
            "A recovery code of your account was used to sign in. {left} unused codes remain.\n\
             \n\
             If this was not you, someone has your password and a recovery code: reset your\n\
             password at once and make new recovery codes:\n\
             \n\
             {}/forgot-password\n",
            self.public_url
        );
        Self::mail(
            MailKind::RecoveryCodeUsed,
            to,
            "A recovery code was used",
            body,
            at,
        )
    }

    /// The notice that the password changed.
    pub fn password_changed(&self, to: &Email, at: OffsetDateTime) -> Mail {
        let body = format!(
            "The password of your account was changed, and every session of it ended.\n\
             \n\
             If this was not you, reset your password at once:\n\
             \n\
             {}/forgot-password\n",
            self.public_url
        );
        Self::mail(
            MailKind::PasswordChanged,
            to,
            "Your password was changed",
            body,
            at,
        )
    }

    /// The link to verify an address.
    pub fn email_verification(
        &self,
        to: &Email,
        token: &TokenSecret,
        lifetime: time::Duration,
        at: OffsetDateTime,
    ) -> Mail {
        let body = format!(
            "Please confirm that this address is yours by opening this link within {}:\n\
             \n\
             {}\n\
             \n\
             or submit this code to POST /v1/auth/email/verify:\n\
             \n\
             {}\n\
             \n\
             If you did not create an account, ignore this mail.\n",
            human(lifetime),
            self.link("/verify-email", token),
            token.expose(),
        );
        Self::mail(
            MailKind::EmailVerification,
            to,
            "Verify your email address",
            body,
            at,
        )
    }

    /// The link to confirm a new address, sent to it.
    pub fn email_change(
        &self,
        to: &Email,
        token: &TokenSecret,
        lifetime: time::Duration,
        at: OffsetDateTime,
    ) -> Mail {
        let body = format!(
            "Someone asked to make this the address of their account.\n\
             \n\
             To confirm, open this link within {}:\n\
             \n\
             {}\n\
             \n\
             or submit this code to POST /v1/auth/email/verify:\n\
             \n\
             {}\n\
             \n\
             If this was not you, ignore this mail: nothing changes without it.\n",
            human(lifetime),
            self.link("/verify-email", token),
            token.expose(),
        );
        Self::mail(
            MailKind::EmailChange,
            to,
            "Confirm your new email address",
            body,
            at,
        )
    }

    /// The notice to the old address that a change to `new` was asked for.
    pub fn email_change_notice(&self, to: &Email, new: &Email, at: OffsetDateTime) -> Mail {
        let body = format!(
            "Someone asked to change the address of your account to {new}.\n\
             It changes once that address confirms it.\n\
             \n\
             If this was not you, change your password at once:\n\
             \n\
             {}/forgot-password\n",
            self.public_url
        );
        Self::mail(
            MailKind::EmailChangeNotice,
            to,
            "Your email address is being changed",
            body,
            at,
        )
    }

    /// To the owner of an address that someone asked to move another account to.
    pub fn email_in_use(&self, to: &Email, at: OffsetDateTime) -> Mail {
        let body = format!(
            "Someone asked to make this address the address of another account.\n\
             It already belongs to your account, so nothing changed.\n\
             \n\
             If you forgot your password:\n\
             \n\
             {}/forgot-password\n",
            self.public_url
        );
        Self::mail(
            MailKind::EmailInUse,
            to,
            "Someone tried to use your email address",
            body,
            at,
        )
    }
}

/// A lifetime as a person reads it: "1 hour", "24 hours", "30 minutes".
fn human(lifetime: time::Duration) -> String {
    let minutes = lifetime.whole_minutes();
    match (minutes / 60, minutes % 60) {
        (1, 0) => "1 hour".to_owned(),
        (hours, 0) => format!("{hours} hours"),
        (0, 1) => "1 minute".to_owned(),
        _ => format!("{minutes} minutes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_built_from_the_public_url_with_the_token_in_the_fragment() {
        let templates = Templates::new("https://auth.example.com/");
        let token = TokenSecret::generate();
        let to = Email::parse("ada@example.com").unwrap();
        let mail = templates.password_reset(
            &to,
            &token,
            time::Duration::hours(1),
            OffsetDateTime::UNIX_EPOCH,
        );
        assert!(mail.body.contains(&format!(
            "https://auth.example.com/reset-password#token={}",
            token.expose()
        )));
        assert!(mail.body.contains("within 1 hour"));
        assert_eq!(mail.kind, MailKind::PasswordReset);
        assert!(!format!("{mail:?}").contains(token.expose()));
    }

    #[test]
    fn lifetimes_read_as_words() {
        assert_eq!(human(time::Duration::hours(24)), "24 hours");
        assert_eq!(human(time::Duration::minutes(90)), "90 minutes");
        assert_eq!(human(time::Duration::minutes(1)), "1 minute");
    }
}
