//! The use cases that go through the user's mailbox: a forgotten password, verifying an
//! address, changing it. Each writes its token, its mail and its audit event in one
//! [`Work`], so a mail exists exactly when its action does, and the outbox's worker sends
//! it after the answer: no request waits on SMTP.
//!
//! What the links prove: a reset proves the mailbox of the address it was sent to (so it
//! verifies that address too), a verification proves it, an email change proves the new
//! address. A token is bound to the address it was sent to: once the user's address is
//! another, the guard of its work refuses it.

use std::sync::Arc;

use time::Duration;
use tokio::sync::{mpsc, Notify};

use crate::{
    accounts::{Accounts, Context},
    audit::{AuthEvent, EventKind},
    mail::Templates,
    seal::Seal,
    throttle::Throttled,
    tokens::{OneTimeToken, Purpose, TokenKey, TokenSecret, TokenStore},
    work::{Change, CommitError, Refusal, Work},
    BoxError, ChangePasswordError, Email, FieldError, Password, Stores, User, UserId,
    UserRepository, ValidationErrors,
};

/// Whether an address must be verified (`EMAIL_VERIFICATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmailVerification {
    /// No verification mail is sent at registration.
    Off,
    /// A verification mail is sent; an unverified account works all the same.
    #[default]
    Optional,
    /// A verification mail is sent; until the address is verified, the account can only
    /// verify it, ask for the link again, or log out.
    Required,
}

impl EmailVerification {
    /// Every mode.
    pub const ALL: [Self; 3] = [Self::Off, Self::Optional, Self::Required];

    /// The configured name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }

    /// The mode named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == name)
    }
}

/// How long a verification or email-change link lives.
pub const VERIFICATION_LIFETIME: Duration = Duration::hours(24);
/// The default of `PASSWORD_RESET_LIFETIME`.
pub const DEFAULT_RESET_LIFETIME: Duration = Duration::hours(1);
/// How soon a verification link can be sent again.
pub const RESEND_COOLDOWN: Duration = Duration::minutes(1);
/// The window of [`EMAIL_CHANGES_PER_WINDOW`].
pub const PER_USER_MAIL_WINDOW: Duration = Duration::hours(1);
/// Email change requests per user per [`PER_USER_MAIL_WINDOW`]: each mails two
/// addresses, one of them perhaps a stranger's.
pub const EMAIL_CHANGES_PER_WINDOW: u64 = 10;
/// Forgotten-password requests waiting to be handled; past this, one is dropped (logged
/// and counted) and still answered as always.
const FORGOT_QUEUE: usize = 1024;
/// The metric counting dropped forgotten-password requests.
pub const FORGOT_DROPPED_METRIC: &str = "auth_password_forgot_dropped_total";
/// The metric counting forgotten-password requests past their limits.
pub const FORGOT_THROTTLED_METRIC: &str = "auth_password_forgot_throttled_total";

/// What the mail use cases need: the wording, the key of token digests, the lifetimes,
/// the verification mode, and whom to wake when a mail is written.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The wording and the links (`PUBLIC_URL`).
    pub templates: Templates,
    /// The key tokens are digested under.
    pub token_key: TokenKey,
    /// How long a reset link lives (`PASSWORD_RESET_LIFETIME`).
    pub reset_lifetime: Duration,
    /// `EMAIL_VERIFICATION`.
    pub verification: EmailVerification,
    /// Notified after every commit that wrote a mail: the outbox's worker waits on it.
    pub enqueued: Arc<Notify>,
    /// What every mail's body is sealed with before it is stored (see [`crate::seal`]);
    /// the outbox's worker opens it with the same keys.
    pub seal: Seal,
}

impl MailSettings {
    /// Defaults, with links to `public_url` and tokens digested under `token_key`. Bodies
    /// are sealed under a random key, which only this process knows: set
    /// [`seal`](Self::seal) to keys every sending process has (the app derives them from
    /// `SECRET_KEY`).
    pub fn new(public_url: &str, token_key: TokenKey) -> Self {
        let mut key = [0_u8; crate::digest::KEY_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        Self {
            templates: Templates::new(public_url),
            token_key,
            reset_lifetime: DEFAULT_RESET_LIFETIME,
            verification: EmailVerification::default(),
            enqueued: Arc::default(),
            seal: Seal::new(&key, &[]),
        }
    }
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Malformed, unknown, expired, already used, or for an address the account no
    /// longer has: one answer for all.
    #[error("the token is invalid or expired")]
    Invalid,
    /// Storage failed.
    #[error("the token could not be checked")]
    Unexpected(#[source] BoxError),
}

/// Why a password reset failed.
#[derive(Debug, thiserror::Error)]
pub enum ResetPasswordError {
    /// See [`TokenError::Invalid`].
    #[error("the token is invalid or expired")]
    InvalidToken,
    /// The new password breaks the policy.
    #[error("invalid input")]
    Invalid(ValidationErrors),
    /// The new password is a breached one (`new_password`).
    #[error("breached password")]
    Breached(ValidationErrors),
    /// Storage or hashing failed.
    #[error("the password could not be reset")]
    Unexpected(#[source] BoxError),
}

/// Why a verification link was not followed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyEmailError {
    /// See [`TokenError::Invalid`].
    #[error("the token is invalid or expired")]
    InvalidToken,
    /// The new address of an email change became another account's meanwhile.
    #[error("the email is taken")]
    EmailTaken,
    /// Storage failed.
    #[error("the address could not be verified")]
    Unexpected(#[source] BoxError),
}

/// Why a verification link was not sent again.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    /// The address is verified already.
    #[error("the address is verified already")]
    AlreadyVerified,
    /// `EMAIL_VERIFICATION=off`.
    #[error("email verification is off")]
    Off,
    /// Asked again within the cooldown.
    #[error("asked again too soon")]
    Throttled(Throttled),
    /// The account is gone.
    #[error("unknown user")]
    UnknownUser,
    /// Storage failed.
    #[error("the link could not be sent")]
    Unexpected(#[source] BoxError),
}

/// Why an email change was not started.
#[derive(Debug, thiserror::Error)]
pub enum ChangeEmailError {
    /// Too many wrong passwords, or too many requests.
    #[error("too many attempts")]
    Throttled(Throttled),
    /// A wrong password, or a new address that is not one, or is the current one.
    #[error("invalid input")]
    Invalid(ValidationErrors),
    /// The account is gone.
    #[error("unknown user")]
    UnknownUser,
    /// Storage or hashing failed.
    #[error("the email change could not be started")]
    Unexpected(#[source] BoxError),
}

/// An address verified by a followed link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Whose.
    pub user: UserId,
    /// The address, now verified.
    pub email: Email,
    /// Whether it is a new address (an email change), not the one the user had.
    pub changed: bool,
}

const SAME_EMAIL: FieldError = FieldError::new("same_email", "This is your address already.");

/// A forgotten-password request waiting for the worker.
#[derive(Debug)]
pub(crate) struct Forgot {
    email: Email,
    context: Context,
}

impl<B: Stores> Accounts<B> {
    /// Answers a forgotten password. The answer is the same whatever the address: the
    /// request is queued and handled after it (limits, look-up, token, mail), so neither
    /// what is answered nor how fast says whether an account has the address.
    ///
    /// # Errors
    ///
    /// `email` is not an address.
    pub fn forgot_password(&self, email: &str, context: &Context) -> Result<(), ValidationErrors> {
        let email = Email::parse(email).map_err(|why| {
            let mut errors = ValidationErrors::default();
            errors.add("email", why);
            errors
        })?;
        if self
            .forgot_queue()
            .try_send(Forgot {
                email,
                context: context.clone(),
            })
            .is_err()
        {
            metrics::counter!(FORGOT_DROPPED_METRIC).increment(1);
            tracing::warn!("the queue of forgotten-password requests is full; one was dropped");
        }
        Ok(())
    }

    /// Handles one queued forgotten-password request.
    pub(crate) async fn handle_forgot(&self, Forgot { email, context }: Forgot) {
        let now = self.clock().now();
        match self
            .throttle()
            .admit_reset_request(&email, context.device.ip, now)
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                metrics::counter!(FORGOT_THROTTLED_METRIC).increment(1);
                tracing::info!("a password reset request was past its limits; no mail sent");
                return;
            }
            Err(error) => {
                tracing::error!(%error, "could not count a password reset request; no mail sent");
                return;
            }
        }
        let user = match self.stores().users().find_by_email(&email).await {
            Ok(Some(user)) => user,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(%error, "could not look up the address of a password reset request");
                return;
            }
        };
        let settings = self.mail_settings();
        let token = TokenSecret::generate();
        let mail =
            settings
                .templates
                .password_reset(&user.email, &token, settings.reset_lifetime, now);
        let work = self
            .issue(
                &user,
                Purpose::PasswordReset,
                &token,
                settings.reset_lifetime,
                now,
            )
            .then(Change::Enqueue(mail))
            .then(self.event(EventKind::PasswordResetRequested, user.id, &context));
        match self.commit(work).await {
            Ok(()) => tracing::info!(user.id = %user.id, "password reset mailed"),
            Err(error) => {
                tracing::error!(user.id = %user.id, %error, "could not write a password reset");
            }
        }
    }

    /// Sets a new password with a reset token: the token is spent, the password replaced,
    /// the address verified (the link proved it), every session and every other reset
    /// token of the user ended, and a notice mailed, all at once. Nobody is logged in.
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(
        &self,
        token: &str,
        new: &Password,
        context: &Context,
    ) -> Result<UserId, ResetPasswordError> {
        let (stored, user) = match self.redeemable(token, &[Purpose::PasswordReset]).await {
            Ok(found) => found,
            Err(TokenError::Invalid) => return Err(ResetPasswordError::InvalidToken),
            Err(TokenError::Unexpected(e)) => return Err(ResetPasswordError::Unexpected(e)),
        };
        let hash = self
            .service()
            .new_password_hash(&user, new, "new_password")
            .await
            .map_err(|e| match e {
                ChangePasswordError::Invalid(errors) => ResetPasswordError::Invalid(errors),
                ChangePasswordError::Breached(errors) => ResetPasswordError::Breached(errors),
                other => ResetPasswordError::Unexpected(other.into()),
            })?;
        let now = self.clock().now();
        let work = Work::new()
            .then(consume(&stored, now))
            .then(Change::SetPassword {
                user: user.id,
                hash,
            })
            .then(Change::MarkEmailVerified {
                user: user.id,
                email: stored.email.clone(),
            })
            .then(Change::EndSessions { user: user.id })
            .then(Change::VoidTokens {
                user: user.id,
                purpose: Some(Purpose::PasswordReset),
            })
            .then(Change::Enqueue(
                self.mail_settings()
                    .templates
                    .password_changed(&user.email, now),
            ))
            .then(self.event(EventKind::PasswordReset, user.id, context));
        match self.commit(work).await {
            Ok(()) => {
                tracing::info!(user.id = %user.id, "password reset");
                Ok(user.id)
            }
            Err(CommitError::Refused(_)) => Err(ResetPasswordError::InvalidToken),
            Err(CommitError::Storage(e)) => Err(ResetPasswordError::Unexpected(e.into())),
        }
    }

    /// Follows a verification or email-change link: the address it was sent to becomes
    /// the user's, verified.
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(
        &self,
        token: &str,
        context: &Context,
    ) -> Result<Verified, VerifyEmailError> {
        let (stored, user) = match self
            .redeemable(token, &[Purpose::EmailVerification, Purpose::EmailChange])
            .await
        {
            Ok(found) => found,
            Err(TokenError::Invalid) => return Err(VerifyEmailError::InvalidToken),
            Err(TokenError::Unexpected(e)) => return Err(VerifyEmailError::Unexpected(e)),
        };
        let now = self.clock().now();
        let changed = stored.purpose == Purpose::EmailChange;
        let work = if changed {
            // Every token of the user went to the old address, or is this one.
            Work::new()
                .then(consume(&stored, now))
                .then(Change::SetEmail {
                    user: user.id,
                    from: user.email.clone(),
                    to: stored.email.clone(),
                })
                .then(Change::VoidTokens {
                    user: user.id,
                    purpose: None,
                })
                .then(self.event(EventKind::EmailChanged, user.id, context))
        } else {
            Work::new()
                .then(consume(&stored, now))
                .then(Change::MarkEmailVerified {
                    user: user.id,
                    email: stored.email.clone(),
                })
                .then(Change::VoidTokens {
                    user: user.id,
                    purpose: Some(Purpose::EmailVerification),
                })
                .then(self.event(EventKind::EmailVerified, user.id, context))
        };
        match self.commit(work).await {
            Ok(()) => {
                tracing::info!(user.id = %user.id, changed, "address verified");
                Ok(Verified {
                    user: user.id,
                    email: stored.email,
                    changed,
                })
            }
            Err(CommitError::Refused(Refusal::EmailTaken)) => Err(VerifyEmailError::EmailTaken),
            Err(CommitError::Refused(_)) => Err(VerifyEmailError::InvalidToken),
            Err(CommitError::Storage(e)) => Err(VerifyEmailError::Unexpected(e.into())),
        }
    }

    /// Mails `user` a new verification link, voiding the older ones: once per
    /// [`RESEND_COOLDOWN`].
    #[tracing::instrument(skip_all, fields(user.id = %user))]
    pub async fn resend_verification(
        &self,
        user: UserId,
        context: &Context,
    ) -> Result<(), ResendError> {
        if self.mail_settings().verification == EmailVerification::Off {
            return Err(ResendError::Off);
        }
        let user = self
            .service()
            .get_user(user)
            .await
            .map_err(|e| ResendError::Unexpected(e.into()))?
            .ok_or(ResendError::UnknownUser)?;
        if user.email_verified {
            return Err(ResendError::AlreadyVerified);
        }
        let now = self.clock().now();
        self.throttle()
            .admit_per_user("verify-resend", user.id, 1, RESEND_COOLDOWN, now)
            .await
            .map_err(|e| ResendError::Unexpected(e.into()))?
            .map_err(ResendError::Throttled)?;
        let work = self.verification(&user, now, context);
        self.commit(work).await.map_err(|e| match e {
            CommitError::Refused(_) => ResendError::UnknownUser,
            CommitError::Storage(e) => ResendError::Unexpected(e.into()),
        })
    }

    /// Starts moving `user` to the address `new`, proven by their `password`, guarded and
    /// counted as a password change is. The new address gets a link, the current one a
    /// notice at once. A new address that is another account's answers the same, and
    /// that account's owner gets a mail saying someone tried it instead of a link.
    #[tracing::instrument(skip_all, fields(user.id = %user))]
    pub async fn request_email_change(
        &self,
        user: UserId,
        new: &str,
        password: &Password,
        context: &Context,
    ) -> Result<(), ChangeEmailError> {
        let stored = self
            .service()
            .get_user(user)
            .await
            .map_err(|e| ChangeEmailError::Unexpected(e.into()))?
            .ok_or(ChangeEmailError::UnknownUser)?;
        let reservation = self
            .guard_password(&stored.email, context)
            .await
            .map_err(|e| {
                e.map_or_else(ChangeEmailError::Unexpected, ChangeEmailError::Throttled)
            })?;
        let right = self.service().verifies(&stored, password).await;
        let wrong = matches!(right, Ok(false));
        self.settle_password(reservation, wrong).await;
        let mut errors = ValidationErrors::default();
        match right {
            Ok(true) => {}
            Ok(false) => errors.add("password", crate::service::WRONG_PASSWORD),
            Err(e) => return Err(ChangeEmailError::Unexpected(e)),
        }
        let new = match Email::parse(new) {
            Ok(new) if new == stored.email => {
                errors.add("new_email", SAME_EMAIL);
                None
            }
            Ok(new) => Some(new),
            Err(why) => {
                errors.add("new_email", why);
                None
            }
        };
        let Some(new) = new.filter(|_| errors.is_empty()) else {
            return Err(ChangeEmailError::Invalid(errors));
        };
        let now = self.clock().now();
        self.throttle()
            .admit_per_user(
                "email-change",
                user,
                EMAIL_CHANGES_PER_WINDOW,
                PER_USER_MAIL_WINDOW,
                now,
            )
            .await
            .map_err(|e| ChangeEmailError::Unexpected(e.into()))?
            .map_err(ChangeEmailError::Throttled)?;
        let templates = &self.mail_settings().templates;
        let owner = self
            .stores()
            .users()
            .find_by_email(&new)
            .await
            .map_err(|e| ChangeEmailError::Unexpected(e.into()))?;
        let work = if owner.is_some() {
            Work::new().then(Change::Enqueue(templates.email_in_use(&new, now)))
        } else {
            let token = TokenSecret::generate();
            let mut pending = stored.clone();
            pending.email = new.clone();
            self.issue(
                &pending,
                Purpose::EmailChange,
                &token,
                VERIFICATION_LIFETIME,
                now,
            )
            .then(Change::Enqueue(templates.email_change(
                &new,
                &token,
                VERIFICATION_LIFETIME,
                now,
            )))
        }
        .then(Change::Enqueue(templates.email_change_notice(
            &stored.email,
            &new,
            now,
        )))
        .then(self.event(EventKind::EmailChangeRequested, user, context));
        self.commit(work).await.map_err(|e| match e {
            CommitError::Refused(_) => ChangeEmailError::UnknownUser,
            CommitError::Storage(e) => ChangeEmailError::Unexpected(e.into()),
        })
    }

    /// The work that mails `user` a verification link (voiding the older ones), unless
    /// verification is off or their address is verified.
    pub(crate) fn verification(
        &self,
        user: &User,
        now: time::OffsetDateTime,
        context: &Context,
    ) -> Work {
        let settings = self.mail_settings();
        if settings.verification == EmailVerification::Off || user.email_verified {
            return Work::new();
        }
        let token = TokenSecret::generate();
        self.issue(
            user,
            Purpose::EmailVerification,
            &token,
            VERIFICATION_LIFETIME,
            now,
        )
        .then(Change::Enqueue(settings.templates.email_verification(
            &user.email,
            &token,
            VERIFICATION_LIFETIME,
            now,
        )))
        .then(self.event(EventKind::EmailVerificationSent, user.id, context))
    }

    /// The work that issues a token of `purpose` for `user`'s address, voiding the older
    /// ones of that purpose.
    fn issue(
        &self,
        user: &User,
        purpose: Purpose,
        token: &TokenSecret,
        lifetime: Duration,
        now: time::OffsetDateTime,
    ) -> Work {
        let digest = self.mail_settings().token_key.digest(purpose, token);
        Work::new()
            .then(Change::VoidTokens {
                user: user.id,
                purpose: Some(purpose),
            })
            .then(Change::InsertToken(OneTimeToken::issue(
                digest,
                purpose,
                user.id,
                user.email.clone(),
                now,
                lifetime,
            )))
    }

    /// The live token `token` of one of `purposes`, and its user, whose address must
    /// still be the one a reset or verification link went to.
    async fn redeemable(
        &self,
        token: &str,
        purposes: &[Purpose],
    ) -> Result<(OneTimeToken, User), TokenError> {
        let secret = TokenSecret::parse(token).ok_or(TokenError::Invalid)?;
        let now = self.clock().now();
        let candidates = purposes.iter().flat_map(|purpose| {
            self.mail_settings()
                .token_key
                .digests(*purpose, &secret)
                .into_iter()
                .map(move |digest| (purpose, digest))
        });
        for (purpose, digest) in candidates {
            let Some(stored) = self
                .stores()
                .tokens()
                .find(&digest)
                .await
                .map_err(|e| TokenError::Unexpected(e.into()))?
            else {
                continue;
            };
            if !stored.is_live(now) || stored.purpose != *purpose {
                return Err(TokenError::Invalid);
            }
            let user = self
                .service()
                .get_user(stored.user_id)
                .await
                .map_err(|e| TokenError::Unexpected(e.into()))?
                .ok_or(TokenError::Invalid)?;
            let bound = stored.purpose == Purpose::EmailChange || user.email == stored.email;
            return if bound {
                Ok((stored, user))
            } else {
                Err(TokenError::Invalid)
            };
        }
        Err(TokenError::Invalid)
    }

    /// An audit event of `kind` about `user`, to record within a work.
    pub(crate) fn event(&self, kind: EventKind, user: UserId, context: &Context) -> Change {
        Change::Record(AuthEvent::new(
            kind,
            Some(user),
            context,
            self.clock().now(),
        ))
    }

    /// Applies `work`, its mails' bodies sealed, and wakes the outbox's worker when it
    /// wrote a mail.
    pub(crate) async fn commit(&self, work: Work) -> Result<(), CommitError> {
        let mut mails = false;
        let mut sealed = Work::new();
        for change in work.into_changes() {
            sealed.push(match change {
                Change::Enqueue(mut mail) => {
                    mails = true;
                    mail.body = self.mail_settings().seal.seal(&mail.body);
                    Change::Enqueue(mail)
                }
                other => other,
            });
        }
        self.stores().commit(sealed).await?;
        if mails {
            self.mail_settings().enqueued.notify_one();
        }
        Ok(())
    }
}

/// The change that spends `token`, live at `now`.
fn consume(token: &OneTimeToken, now: time::OffsetDateTime) -> Change {
    Change::ConsumeToken {
        digest: token.digest.clone(),
        purpose: token.purpose,
        now,
    }
}

/// A forgotten-password queue and its receiver, for [`Accounts::forgot_queue`].
pub(crate) fn forgot_channel() -> (mpsc::Sender<Forgot>, mpsc::Receiver<Forgot>) {
    mpsc::channel(FORGOT_QUEUE)
}
