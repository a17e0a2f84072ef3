//! The account use cases, each in one place: registering, logging in and out, changing the
//! password, deleting the account, ending sessions, and what an operator does to a user.
//!
//! The HTTP handlers and the admin commands call these and only parse what comes in and
//! map what goes out. Each operation applies the throttle where it guards a password,
//! counts a wrong one, ends the sessions it must, and records its audit event with who
//! acted ([`Actor`]) and the request that caused it. What a session is on the wire (a
//! cookie, its id) stays with the caller: [`Accounts::log_in`] and [`Accounts::log_out`]
//! take the step that starts or ends it.

use std::{
    fmt,
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, OnceLock,
    },
};

use tokio::sync::mpsc;

use crate::{
    account_mail::{Forgot, MailSettings},
    admin::Administration,
    audit::{Actor, AuditLog, AuthEvent, EventKind},
    clock::Clock,
    digest::DigestKeys,
    factors::FactorStore,
    mfa::{Method, MfaSettings},
    session::{Credential, Device, SessionHandle},
    stores::Stores,
    throttle::{Reservation, Throttle, ThrottleLimits, Throttled},
    throttled_events::{Refused, ThrottledEvents},
    work::{Change, CommitError, Refusal, Work},
    AuthService, AuthenticateError, BoxError, ChangePasswordError, DeleteAccountError, Email,
    Password, PasswordHasher, PasswordPolicy, RegisterError, Registration, RepositoryError, User,
    UserId, UserSessions,
};

/// Who is acting, from where, in which request: what every audit event records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Who acts.
    pub actor: Actor,
    /// The client's address and User-Agent; empty on the command line.
    pub device: Device,
    /// The HTTP request's id, when there is one.
    pub request_id: Option<String>,
}

impl Context {
    /// A client of the API, from `device`, in the request `request_id`.
    pub fn user(device: Device, request_id: Option<String>) -> Self {
        Self {
            actor: Actor::User,
            device,
            request_id,
        }
    }

    /// An operator on the command line.
    pub fn admin() -> Self {
        Self {
            actor: Actor::Admin,
            device: Device::default(),
            request_id: None,
        }
    }

    /// The service itself.
    pub fn system() -> Self {
        Self {
            actor: Actor::System,
            device: Device::default(),
            request_id: None,
        }
    }
}

/// What a login form submits, once read.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// An email address or a username.
    pub login: String,
    /// The password as typed.
    pub password: Password,
    /// The device tokens the client presented (its device cookies), unchecked: one that
    /// is the token of this account's user and current password spares the client the
    /// per-account limit.
    pub device_tokens: Vec<String>,
}

/// A login whose password was right.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// Who.
    pub user: User,
    /// The second factors the session waits for, one of which completes it; empty when
    /// the session is whole.
    pub second_factors: Vec<Method>,
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError<E> {
    /// Past the failure limits: refused without checking anything.
    #[error("too many failed logins")]
    Throttled(Throttled),
    /// Unknown user or wrong password: one answer for both.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The credentials were right, but starting the session failed.
    #[error("the session could not be started")]
    Session(#[source] E),
    /// Storage or hashing failed.
    #[error("login failed")]
    Unexpected(#[source] BoxError),
}

/// The account use cases over one backend's [`Stores`]. Cloning shares it.
pub struct Accounts<B: Stores>(Arc<Shared<B>>);

struct Shared<B: Stores> {
    stores: B,
    service: AuthService<B::Users>,
    throttle: Throttle<B::Failures>,
    keys: DigestKeys,
    clock: Clock,
    /// The worker recording throttled logins, started with the first.
    throttled_events: OnceLock<ThrottledEvents>,
    /// Audit events that could not be stored.
    lost_events: AtomicU64,
    /// What the mail use cases need.
    mail: MailSettings,
    /// The queue of forgotten-password requests, and its worker, started with the first.
    forgot: OnceLock<mpsc::Sender<Forgot>>,
    /// What the second factor's use cases need.
    mfa: MfaSettings,
}

impl<B: Stores> Clone for Accounts<B> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<B: Stores> fmt::Debug for Accounts<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accounts")
            .field("service", &self.0.service)
            .field("limits", &self.0.throttle.limits())
            .field("clock", &self.0.clock)
            .finish_non_exhaustive()
    }
}

impl<B: Stores> Accounts<B> {
    /// The use cases over `stores`, hashing with `hasher`, judging new passwords by
    /// `policy`, throttling by `limits`, digesting what they store under `keys`, telling
    /// the time by `clock`, mailing as `mail` says.
    pub fn new(
        stores: B,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        limits: ThrottleLimits,
        keys: DigestKeys,
        clock: Clock,
        mail: MailSettings,
    ) -> Self {
        let service =
            AuthService::new(stores.users().clone(), hasher, policy).with_clock(clock.clone());
        let throttle = Throttle::new(stores.failures().clone(), limits, keys.clone());
        Self(Arc::new(Shared {
            stores,
            service,
            throttle,
            keys,
            clock,
            throttled_events: OnceLock::new(),
            lost_events: AtomicU64::new(0),
            mail,
            forgot: OnceLock::new(),
            mfa: MfaSettings::default(),
        }))
    }

    /// These use cases with the second factor configured by `mfa`.
    ///
    /// # Panics
    ///
    /// Once cloned: settings are given before the use cases are shared.
    #[must_use]
    pub fn with_mfa(mut self, mfa: MfaSettings) -> Self {
        Arc::get_mut(&mut self.0)
            .expect("the second factor is configured before the use cases are shared")
            .mfa = mfa;
        self
    }

    /// The mail settings.
    pub fn mail_settings(&self) -> &MailSettings {
        &self.0.mail
    }

    /// The second factor's settings.
    pub fn mfa_settings(&self) -> &MfaSettings {
        &self.0.mfa
    }

    /// The throttle.
    pub(crate) fn throttle(&self) -> &Throttle<B::Failures> {
        &self.0.throttle
    }

    /// The queue of forgotten-password requests; the first call starts its worker, which
    /// handles them one after the other and ends with the last clone of the queue.
    pub(crate) fn forgot_queue(&self) -> &mpsc::Sender<Forgot> {
        self.0.forgot.get_or_init(|| {
            let (sender, mut requests) = crate::account_mail::forgot_channel();
            // A weak handle: the worker must not keep the use cases (and their pool)
            // alive after the last user of them is gone.
            let accounts = Arc::downgrade(&self.0);
            tokio::spawn(async move {
                while let Some(request) = requests.recv().await {
                    let Some(shared) = accounts.upgrade() else {
                        break;
                    };
                    Accounts(shared).handle_forgot(request).await;
                }
            });
            sender
        })
    }

    /// The device token to hand `user` after a login: it proves, at their next logins,
    /// that this client logged in to them before, until their password changes or the
    /// account is deleted.
    pub fn device_token(&self, user: &User) -> String {
        self.0
            .keys
            .device_token(user.id, &Credential::of(&user.password_hash))
    }

    /// Whether one of `tokens` is the device token of the account named `login` (one read
    /// of the user, only when a token is presented).
    async fn device_proven(&self, login: &str, tokens: &[String]) -> bool {
        if tokens.is_empty() {
            return false;
        }
        match self.0.service.find_by_login(login).await {
            Ok(Some(user)) => {
                let credential = Credential::of(&user.password_hash);
                tokens
                    .iter()
                    .any(|token| self.0.keys.proves_device(token, user.id, &credential))
            }
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, "could not check a device cookie; treated as absent");
                false
            }
        }
    }

    /// The stores, for what only reads them (a user's sessions, their events).
    pub fn stores(&self) -> &B {
        &self.0.stores
    }

    /// The credentials service: looking users up, checking a password.
    pub fn service(&self) -> &AuthService<B::Users> {
        &self.0.service
    }

    /// The clock every operation reads.
    pub fn clock(&self) -> &Clock {
        &self.0.clock
    }

    /// The throttle's limits.
    pub fn limits(&self) -> ThrottleLimits {
        self.0.throttle.limits()
    }

    /// How many audit events could not be stored since start-up.
    pub fn lost_events(&self) -> u64 {
        self.0.lost_events.load(Ordering::Relaxed)
    }

    /// Registers a user. A client is limited in registrations per address; an operator
    /// is not.
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        registration: Registration,
        context: &Context,
    ) -> Result<User, RegisterError> {
        if context.actor == Actor::User {
            self.0
                .throttle
                .admit_registration(context.device.ip, self.0.clock.now())
                .await
                .map_err(|e| RegisterError::Unexpected(uncounted(e)))?
                .map_err(RegisterError::Throttled)?;
        }
        let new_user = self.0.service.prepare_registration(&registration).await?;
        let user = new_user.clone().into_user();
        let now = self.0.clock.now();
        let mut work = Work::new()
            .then(Change::InsertUser(new_user))
            .then(self.event(EventKind::Registered, user.id, context));
        // A new user has no tokens to void: voiding would only lock an index range.
        for change in self.verification(&user, now, context).into_changes() {
            if !matches!(change, Change::VoidTokens { .. }) {
                work.push(change);
            }
        }
        match self.commit(work).await {
            Ok(()) => {}
            Err(CommitError::Refused(Refusal::UsernameTaken)) => {
                return Err(RegisterError::UsernameTaken)
            }
            Err(CommitError::Refused(_)) => return Err(RegisterError::EmailTaken),
            Err(CommitError::Storage(e)) => return Err(RegisterError::Unexpected(e.into())),
        }
        tracing::info!(user.id = %user.id, actor = %context.actor, "user registered");
        Ok(user)
    }

    /// Logs a user in: refuses a client past the failure limits without checking anything
    /// (no hash is computed), checks the credentials, counts a failure or clears the
    /// client's count, and on success runs `start_session` with the user and the second
    /// factors still owed (none: a whole session; some: a half-authenticated one that can
    /// only complete them), then records the login, or its first step. A refused login is
    /// recorded too.
    #[tracing::instrument(skip_all)]
    pub async fn log_in<F, Fut, E>(
        &self,
        credentials: &Credentials,
        context: &Context,
        start_session: F,
    ) -> Result<LoggedIn, LoginError<E>>
    where
        F: FnOnce(User, Vec<Method>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let proven = self
            .device_proven(&credentials.login, &credentials.device_tokens)
            .await;
        let attempt = self
            .0
            .throttle
            .attempt(&credentials.login, context.device.ip, proven);
        let verdict = self
            .0
            .throttle
            .reserve_login(&attempt, self.0.clock.now())
            .await
            .map_err(|e| LoginError::Unexpected(uncounted(e)))?;
        let reservation = match verdict {
            Ok(reservation) => reservation,
            Err(throttled) => {
                self.record_throttled_login(&credentials.login, context);
                return Err(LoginError::Throttled(throttled));
            }
        };
        let user = match self
            .0
            .service
            .authenticate(&credentials.login, &credentials.password)
            .await
        {
            Ok(user) => user,
            Err(AuthenticateError::InvalidCredentials { user }) => {
                self.0.throttle.login_failed(reservation);
                self.record(EventKind::LoginFailed, user, context).await;
                return Err(LoginError::InvalidCredentials);
            }
            Err(AuthenticateError::Unexpected(source)) => {
                self.withdraw(reservation).await;
                return Err(LoginError::Unexpected(source));
            }
        };
        if let Err(error) = self.0.throttle.login_succeeded(&attempt, reservation).await {
            tracing::warn!(%error, "could not reset the failed logins of a client");
        }
        let owed = match self.0.stores.factors().summary(user.id).await {
            Ok(factors) if factors.has_second_factor() => Method::available(&factors),
            Ok(_) => Vec::new(),
            Err(error) => return Err(LoginError::Unexpected(error.into())),
        };
        start_session(user.clone(), owed.clone())
            .await
            .map_err(LoginError::Session)?;
        if owed.is_empty() {
            tracing::info!(user.id = %user.id, "user logged in");
            self.record(EventKind::LoginSucceeded, Some(user.id), context)
                .await;
        } else {
            tracing::info!(user.id = %user.id, "user logged in; a second factor is owed");
            self.record(EventKind::MfaChallenged, Some(user.id), context)
                .await;
        }
        Ok(LoggedIn {
            user,
            second_factors: owed,
        })
    }

    /// Logs `user` out: `end_session` ends their session, then the logout is recorded.
    pub async fn log_out<E>(
        &self,
        user: UserId,
        context: &Context,
        end_session: impl Future<Output = Result<(), E>>,
    ) -> Result<(), E> {
        end_session.await?;
        tracing::info!(user.id = %user, "user logged out");
        self.record(EventKind::LoggedOut, Some(user), context).await;
        Ok(())
    }

    /// A user's change of their own password, proven by the current one. Guarded like a
    /// login without a device cookie (the per-account limit applies: a stolen cookie must
    /// not give unlimited guesses), and a wrong current password counts as a failed login. Every
    /// session of the user but `keep` ends; the one kept must be logged in again by the
    /// caller, bound to the new password.
    #[tracing::instrument(skip_all, fields(user.id = %user))]
    pub async fn change_password(
        &self,
        user: UserId,
        account: &Email,
        current: &Password,
        new: &Password,
        keep: Option<&SessionHandle>,
        context: &Context,
    ) -> Result<User, ChangePasswordError> {
        let reservation = self.guard_password(account, context).await.map_err(|e| {
            e.map_or_else(
                ChangePasswordError::Unexpected,
                ChangePasswordError::Throttled,
            )
        })?;
        let checked = self
            .0
            .service
            .check_password_change(user, current, new)
            .await;
        let wrong = matches!(&checked, Err(ChangePasswordError::Invalid(errors)) if !errors.field("current_password").is_empty());
        self.settle_password(reservation, wrong).await;
        let (stored, new_hash) = checked?;
        // The new hash, the end of the sessions it must end and the event, together.
        let mut work = Work::new().then(Change::ReplacePassword {
            user,
            current: stored.password_hash.clone(),
            new: new_hash.clone(),
        });
        if keep.is_none() {
            work.push(Change::EndSessions { user });
        }
        work.push(self.event(EventKind::PasswordChanged, user, context));
        match self.commit(work).await {
            Ok(()) => {}
            Err(CommitError::Refused(_)) => return Err(crate::service::changed_meanwhile()),
            Err(CommitError::Storage(e)) => return Err(ChangePasswordError::Unexpected(e.into())),
        }
        if let Some(keep) = keep {
            self.free_other_sessions(user, keep).await;
        }
        tracing::info!(user.id = %user, "user changed their password");
        Ok(User {
            password_hash: new_hash,
            ..stored
        })
    }

    /// A user's deletion of their own account, proven by their password, guarded and
    /// counted as [`Self::change_password`] is. Every session of theirs ends.
    #[tracing::instrument(skip_all, fields(user.id = %user))]
    pub async fn delete_account(
        &self,
        user: UserId,
        account: &Email,
        password: &Password,
        context: &Context,
    ) -> Result<(), DeleteAccountError> {
        let checked = self
            .check_own_password(user, account, password, context)
            .await
            .map_err(|e| {
                e.map_or_else(
                    DeleteAccountError::Unexpected,
                    DeleteAccountError::Throttled,
                )
            })?;
        match checked {
            // Without a password, the route's step-up (a passkey within five minutes) is
            // the proof.
            PasswordCheck::Right | PasswordCheck::NoPassword => {}
            PasswordCheck::Wrong => {
                let mut errors = crate::ValidationErrors::default();
                errors.add("password", crate::service::WRONG_PASSWORD);
                return Err(DeleteAccountError::Invalid(errors));
            }
            // Gone already: what the caller wanted.
            PasswordCheck::Gone => return Ok(()),
        }
        let work = Work::new()
            .then(Change::DeleteUser { user })
            .then(Change::EndSessions { user })
            .then(Change::VoidTokens {
                user,
                purpose: None,
            })
            .then(self.event(EventKind::AccountDeleted, user, context));
        match self.commit(work).await {
            Ok(()) | Err(CommitError::Refused(_)) => {}
            Err(CommitError::Storage(e)) => return Err(DeleteAccountError::Unexpected(e.into())),
        }
        tracing::info!(user.id = %user, "user deleted their account");
        Ok(())
    }

    /// Ends the session `handle` of `user`; returns whether it was theirs and live.
    pub async fn revoke_session(
        &self,
        user: UserId,
        handle: &SessionHandle,
        context: &Context,
    ) -> Result<bool, RepositoryError> {
        let work = Work::new()
            .then(Change::EndSession {
                user,
                handle: handle.clone(),
            })
            .then(self.event(EventKind::SessionRevoked, user, context));
        match self.commit(work).await {
            Ok(()) => {
                tracing::info!(user.id = %user, actor = %context.actor, "a session ended");
                Ok(true)
            }
            Err(CommitError::Refused(_)) => Ok(false),
            Err(CommitError::Storage(e)) => Err(e),
        }
    }

    /// Ends every session of `user` but `keep`; returns how many.
    pub async fn revoke_other_sessions(
        &self,
        user: UserId,
        keep: &SessionHandle,
        context: &Context,
    ) -> Result<u64, RepositoryError> {
        let revoked = self
            .0
            .stores
            .sessions()
            .delete_other_user_sessions(user, keep)
            .await?;
        tracing::info!(user.id = %user, revoked, "user ended their other sessions");
        self.record(EventKind::OtherSessionsRevoked, Some(user), context)
            .await;
        Ok(revoked)
    }

    /// An operator's reset of `user`'s password to `new` (which must pass the policy),
    /// without the current one. Every session of theirs ends; returns how many.
    #[tracing::instrument(skip_all, fields(user.id = %user))]
    pub async fn set_password(
        &self,
        user: UserId,
        new: &Password,
        context: &Context,
    ) -> Result<u64, ChangePasswordError> {
        let stored = self
            .0
            .service
            .get_user(user)
            .await
            .map_err(|e| ChangePasswordError::Unexpected(e.into()))?
            .ok_or(ChangePasswordError::UnknownUser)?;
        let new_hash = self
            .0
            .service
            .new_password_hash(&stored, new, "password")
            .await?;
        let ended = self.live_sessions(user).await;
        let work = Work::new()
            .then(Change::ReplacePassword {
                user,
                current: stored.password_hash,
                new: new_hash,
            })
            .then(Change::EndSessions { user })
            .then(self.event(EventKind::PasswordChanged, user, context));
        // Changed or deleted since it was read: the operator's reset must not silently
        // overwrite a change made meanwhile.
        self.commit(work).await.map_err(|e| match e {
            CommitError::Refused(_) => {
                ChangePasswordError::Unexpected("the password or the user changed meanwhile".into())
            }
            CommitError::Storage(e) => ChangePasswordError::Unexpected(e.into()),
        })?;
        tracing::info!(user.id = %user, actor = %context.actor, ended, "password set");
        Ok(ended)
    }

    /// An operator's deletion of `user`, without their password: the user first, so that
    /// no login can start a new session, then every session of theirs. Returns how many
    /// sessions ended, or `None` when there was no such user.
    #[tracing::instrument(skip_all, fields(user.id = %user))]
    pub async fn delete_user(
        &self,
        user: UserId,
        context: &Context,
    ) -> Result<Option<u64>, RepositoryError> {
        let ended = self.live_sessions(user).await;
        let work = Work::new()
            .then(Change::DeleteUser { user })
            .then(Change::EndSessions { user })
            .then(Change::VoidTokens {
                user,
                purpose: None,
            })
            .then(self.event(EventKind::AccountDeleted, user, context));
        match self.commit(work).await {
            Ok(()) => {}
            Err(CommitError::Refused(_)) => return Ok(None),
            Err(CommitError::Storage(e)) => return Err(e),
        }
        tracing::info!(user.id = %user, actor = %context.actor, ended, "user deleted");
        Ok(Some(ended))
    }

    /// How many live sessions `user` has, for an operator's report of what a change
    /// ended (read before it: the change itself reports no count); 0 if unreadable.
    async fn live_sessions(&self, user: UserId) -> u64 {
        match self.0.stores.sessions().list_user_sessions(user).await {
            Ok(live) => live.len() as u64,
            Err(error) => {
                tracing::warn!(user.id = %user, %error, "could not count the sessions of a user");
                0
            }
        }
    }

    /// Ends every session of `user`; returns how many.
    pub async fn revoke_user_sessions(
        &self,
        user: UserId,
        context: &Context,
    ) -> Result<u64, RepositoryError> {
        let ended = self.end_sessions(user).await?;
        tracing::info!(user.id = %user, actor = %context.actor, ended, "every session of the user ended");
        self.record(EventKind::SessionsRevoked, Some(user), context)
            .await;
        Ok(ended)
    }

    /// Ends the live session `handle`, whoever's it is; returns whose it was.
    pub async fn revoke_any_session(
        &self,
        handle: &SessionHandle,
        context: &Context,
    ) -> Result<Option<UserId>, RepositoryError> {
        let owner = self.0.stores.admin().revoke_session(handle).await?;
        if let Some(user) = owner {
            tracing::info!(user.id = %user, actor = %context.actor, "a session ended");
            self.record(EventKind::SessionRevoked, Some(user), context)
                .await;
        }
        Ok(owner)
    }

    /// Deletes every session of `user` but `keep` after their credential changed: the new
    /// credential already ends them at their next request; this frees their rows now, and
    /// a failure is only logged.
    pub(crate) async fn free_other_sessions(&self, user: UserId, keep: &SessionHandle) {
        if let Err(error) = self
            .0
            .stores
            .sessions()
            .delete_other_user_sessions(user, keep)
            .await
        {
            tracing::warn!(user.id = %user, %error, "could not delete the other sessions after a change of credential; they end at their next request");
        }
    }

    /// The one place a user's sessions all end.
    async fn end_sessions(&self, user: UserId) -> Result<u64, RepositoryError> {
        self.0.stores.sessions().delete_user_sessions(user).await
    }

    /// Checks `password` as `user`'s own, guarded and counted as a login's would be (a
    /// stolen cookie must not give unlimited guesses): only a wrong one stays counted. An
    /// account without a password is not checked at all; the caller decides what that
    /// proves.
    pub(crate) async fn check_own_password(
        &self,
        user: UserId,
        account: &Email,
        password: &Password,
        context: &Context,
    ) -> Result<PasswordCheck, GuardError> {
        let reservation = self.guard_password(account, context).await?;
        let checked = match self.0.service.get_user(user).await {
            Ok(Some(stored)) if stored.password_hash.is_no_password() => {
                Ok(PasswordCheck::NoPassword)
            }
            Ok(Some(stored)) => self
                .0
                .service
                .verifies(&stored, password)
                .await
                .map(|right| {
                    if right {
                        PasswordCheck::Right
                    } else {
                        PasswordCheck::Wrong
                    }
                }),
            Ok(None) => Ok(PasswordCheck::Gone),
            Err(e) => Err(e.into()),
        };
        self.settle_password(reservation, matches!(checked, Ok(PasswordCheck::Wrong)))
            .await;
        checked.map_err(GuardError::Storage)
    }

    /// Reserves a password check on `account` from this client, refused once it is
    /// throttled as a login would be.
    pub(crate) async fn guard_password(
        &self,
        account: &Email,
        context: &Context,
    ) -> Result<Reservation, GuardError> {
        // No device exemption: with a stolen cookie, the session proves nothing about who
        // guesses, and the per-account limit is what stops guesses from many addresses.
        let attempt = self
            .0
            .throttle
            .attempt(account.as_str(), context.device.ip, false);
        match self
            .0
            .throttle
            .reserve_login(&attempt, self.0.clock.now())
            .await
        {
            Ok(Ok(reservation)) => Ok(reservation),
            Ok(Err(throttled)) => Err(GuardError::Throttled(throttled)),
            Err(e) => Err(GuardError::Storage(uncounted(e))),
        }
    }

    /// Settles a guarded password check: a `wrong` password stays counted as a failed
    /// login; a right one, or a request refused before the password was checked, is
    /// withdrawn.
    pub(crate) async fn settle_password(&self, reservation: Reservation, wrong: bool) {
        if wrong {
            self.0.throttle.login_failed(reservation);
        } else {
            self.withdraw(reservation).await;
        }
    }

    /// Withdraws a reservation whose password was not found wrong; if that fails, it
    /// stays counted (stricter, never looser).
    async fn withdraw(&self, reservation: Reservation) {
        if let Err(error) = self.0.throttle.withdraw(reservation).await {
            tracing::warn!(%error, "could not withdraw a counted attempt; it counts as a failure");
        }
    }

    /// Stores an event of `kind` about `user`, as [`Self::record`].
    pub(crate) async fn record_event(
        &self,
        kind: EventKind,
        user: Option<UserId>,
        context: &Context,
    ) {
        self.record(kind, user, context).await;
    }

    /// Stores an event of `kind` about `user`. A failure is logged at error level and
    /// counted, and the operation goes on: an answered login must not fail because its
    /// trace could not be written.
    async fn record(&self, kind: EventKind, user: Option<UserId>, context: &Context) {
        let event = AuthEvent::new(kind, user, context, self.0.clock.now());
        if let Err(error) = self.0.stores.audit().record(&event).await {
            let lost = self.0.lost_events.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(%error, event = %kind, lost, "could not store an audit event");
        }
    }

    /// Records a refused (throttled) login after the answer, through the bounded queue
    /// of [`ThrottledEvents`]: finding whose account it named costs a read, and a throttled
    /// request must cost no more than the one that refused it; repeated refusals become
    /// one event with a count.
    fn record_throttled_login(&self, login: &str, context: &Context) {
        let events = self.0.throttled_events.get_or_init(|| {
            ThrottledEvents::start(
                self.0.service.clone(),
                self.0.stores.audit().clone(),
                self.0.clock.clone(),
            )
        });
        events.push(Refused {
            login: login.to_owned(),
            context: context.clone(),
            at: self.0.clock.now(),
        });
    }
}

/// An attempt the throttle could not record or count: whatever the storage said, it is
/// refused as unavailable (503, retry later), never waved through unthrottled and never
/// answered as a bug of ours.
pub(crate) fn uncounted(error: RepositoryError) -> BoxError {
    Box::new(crate::Unavailable(error.into()))
}

/// What [`Accounts::check_own_password`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PasswordCheck {
    /// The password is the user's.
    Right,
    /// It is not.
    Wrong,
    /// The account has no password (passkeys only): nothing was checked.
    NoPassword,
    /// The user is gone.
    Gone,
}

/// Why [`Accounts::guard_password`] refused.
pub(crate) enum GuardError {
    Throttled(Throttled),
    Storage(BoxError),
}

impl GuardError {
    pub(crate) fn map_or_else<T>(
        self,
        storage: impl FnOnce(BoxError) -> T,
        throttled: impl FnOnce(Throttled) -> T,
    ) -> T {
        match self {
            Self::Throttled(t) => throttled(t),
            Self::Storage(e) => storage(e),
        }
    }
}
