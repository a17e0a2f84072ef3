//! Every store operation bounded by `DATABASE_TIMEOUT`, on our side of the socket.
//!
//! The database bounds what it controls (a statement timeout, a busy timeout, server
//! selection), but a server that stops answering altogether (frozen, or cut off with its
//! sockets open) enforces nothing, and neither sqlx nor the MongoDB driver bounds a read
//! from a socket that stays open. So the composition root wraps each store in [`Bounded`]:
//! an operation that has not finished after the timeout is dropped and reported as
//! [`auth_domain::Unavailable`], which the HTTP layer answers with 503. Dropping is safe:
//! a write that did not finish was never acknowledged, and a transaction cut short is
//! rolled back.

use std::{fmt, future::Future, time::Duration};

use async_trait::async_trait;
use auth_domain::{
    admin::{Administration, UserSession},
    audit::{AuditLog, AuthEvent, EventPage},
    factors::{
        Ceremony, ChallengeStore, CredentialId, FactorStore, FactorSummary, PendingChallenge,
        StoredPasskey, TotpCredential,
    },
    mail::{Leased, MailStatus, Outbox, OutboxEntry},
    readiness::Readiness,
    session::{OwnedSession, SessionHandle, SessionInfo},
    throttle::{AttemptId, FailureCount, FailureCounter, ThrottleKey},
    tokens::{OneTimeToken, Purpose, TokenDigest, TokenStore},
    unavailable_message,
    work::{CommitError, Work},
    Email, InsertUserError, NewUser, OwnedSessions, PasswordHash, RepositoryError, Stores, User,
    UserId, UserRepository, UserSessions, Username,
};
use time::OffsetDateTime;
use tower_sessions::{
    session::{Id, Record},
    session_store, SessionStore,
};

/// A store whose every operation ends within `timeout` (see the module docs).
#[derive(Clone)]
pub(crate) struct Bounded<T> {
    inner: T,
    timeout: Duration,
}

impl<T> Bounded<T> {
    /// `inner`, each operation bounded by `timeout`.
    pub(crate) fn new(inner: T, timeout: Duration) -> Self {
        Self { inner, timeout }
    }

    /// `operation`'s result, or `timed_out(description)` once the timeout has passed.
    async fn run<O, E>(
        &self,
        what: &'static str,
        operation: impl Future<Output = Result<O, E>>,
        timed_out: impl FnOnce(TimedOut) -> E,
    ) -> Result<O, E> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(result) => result,
            Err(_) => Err(timed_out(TimedOut {
                what,
                after: self.timeout,
            })),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Bounded<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bounded")
            .field("inner", &self.inner)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// An operation that did not finish within the database timeout.
#[derive(Debug, thiserror::Error)]
#[error("{what} did not finish within {after:?} (DATABASE_TIMEOUT)")]
pub(crate) struct TimedOut {
    what: &'static str,
    after: Duration,
}

fn repository(timed_out: TimedOut) -> RepositoryError {
    RepositoryError::unavailable(timed_out)
}

fn session(timed_out: TimedOut) -> session_store::Error {
    session_store::Error::Backend(unavailable_message(timed_out))
}

impl<R: UserRepository> UserRepository for Bounded<R> {
    async fn insert(&self, user: NewUser) -> Result<User, InsertUserError> {
        self.run("insert user", self.inner.insert(user), |t| {
            InsertUserError::Unexpected(repository(t))
        })
        .await
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, RepositoryError> {
        self.run("find user", self.inner.find_by_id(id), repository)
            .await
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        self.run("find user", self.inner.find_by_email(email), repository)
            .await
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<User>, RepositoryError> {
        self.run(
            "find user",
            self.inner.find_by_username(username),
            repository,
        )
        .await
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &PasswordHash,
        new: &PasswordHash,
    ) -> Result<bool, RepositoryError> {
        self.run(
            "replace password hash",
            self.inner.replace_password_hash(id, current, new),
            repository,
        )
        .await
    }

    async fn delete(&self, id: UserId) -> Result<bool, RepositoryError> {
        self.run("delete user", self.inner.delete(id), repository)
            .await
    }
}

impl<S: UserSessions> UserSessions for Bounded<S> {
    async fn list_user_sessions(&self, user: UserId) -> Result<Vec<SessionInfo>, RepositoryError> {
        self.run(
            "list user sessions",
            self.inner.list_user_sessions(user),
            repository,
        )
        .await
    }

    async fn delete_user_session(
        &self,
        user: UserId,
        handle: &SessionHandle,
    ) -> Result<bool, RepositoryError> {
        self.run(
            "delete user session",
            self.inner.delete_user_session(user, handle),
            repository,
        )
        .await
    }

    async fn delete_other_user_sessions(
        &self,
        user: UserId,
        keep: &SessionHandle,
    ) -> Result<u64, RepositoryError> {
        self.run(
            "delete other user sessions",
            self.inner.delete_other_user_sessions(user, keep),
            repository,
        )
        .await
    }

    async fn delete_user_sessions(&self, user: UserId) -> Result<u64, RepositoryError> {
        self.run(
            "delete user sessions",
            self.inner.delete_user_sessions(user),
            repository,
        )
        .await
    }
}

impl<S: Readiness> Readiness for Bounded<S> {
    async fn ping(&self) -> Result<(), RepositoryError> {
        self.run("ping", self.inner.ping(), repository).await
    }
}

impl<S: OwnedSessions> OwnedSessions for Bounded<S> {
    async fn load_owned(&self, session_id: &str) -> Result<Option<OwnedSession>, RepositoryError> {
        self.run(
            "load session",
            self.inner.load_owned(session_id),
            repository,
        )
        .await
    }
}

#[async_trait]
impl<S: SessionStore + Clone> SessionStore for Bounded<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.run("create session", self.inner.create(record), session)
            .await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.run("save session", self.inner.save(record), session)
            .await
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        self.run("load session", self.inner.load(session_id), session)
            .await
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        self.run("delete session", self.inner.delete(session_id), session)
            .await
    }
}

impl<F: FailureCounter> FailureCounter for Bounded<F> {
    async fn failures(
        &self,
        keys: &[ThrottleKey],
        since: OffsetDateTime,
    ) -> Result<Vec<FailureCount>, RepositoryError> {
        self.run(
            "count failures",
            self.inner.failures(keys, since),
            repository,
        )
        .await
    }

    async fn record_failure(
        &self,
        keys: &[ThrottleKey],
        at: OffsetDateTime,
        attempt: AttemptId,
    ) -> Result<(), RepositoryError> {
        self.run(
            "record failures",
            self.inner.record_failure(keys, at, attempt),
            repository,
        )
        .await
    }

    async fn withdraw(
        &self,
        keys: &[ThrottleKey],
        attempt: AttemptId,
    ) -> Result<(), RepositoryError> {
        self.run(
            "withdraw an attempt",
            self.inner.withdraw(keys, attempt),
            repository,
        )
        .await
    }

    async fn reset(&self, key: &ThrottleKey) -> Result<(), RepositoryError> {
        self.run("reset failures", self.inner.reset(key), repository)
            .await
    }

    /// Unbounded: a background purge of many batches, not a request.
    async fn purge_before(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> Result<u64, RepositoryError> {
        self.inner.purge_before(before, batch).await
    }
}

impl<D: Administration> Administration for Bounded<D> {
    async fn list_users(&self, limit: u64) -> Result<Vec<User>, RepositoryError> {
        self.run("list users", self.inner.list_users(limit), repository)
            .await
    }

    async fn list_sessions(&self, limit: u64) -> Result<Vec<UserSession>, RepositoryError> {
        self.run("list sessions", self.inner.list_sessions(limit), repository)
            .await
    }

    async fn revoke_session(
        &self,
        handle: &SessionHandle,
    ) -> Result<Option<UserId>, RepositoryError> {
        self.run(
            "revoke session",
            self.inner.revoke_session(handle),
            repository,
        )
        .await
    }

    /// Unbounded: a purge of every expired session runs as many batches as it takes.
    async fn purge_expired_sessions(&self) -> Result<u64, RepositoryError> {
        self.inner.purge_expired_sessions().await
    }

    async fn recent_events(&self, limit: u64) -> Result<Vec<AuthEvent>, RepositoryError> {
        self.run("list events", self.inner.recent_events(limit), repository)
            .await
    }
}

impl<A: AuditLog> AuditLog for Bounded<A> {
    async fn record(&self, event: &AuthEvent) -> Result<(), RepositoryError> {
        self.run("record event", self.inner.record(event), repository)
            .await
    }

    async fn recent_for_user(
        &self,
        user: UserId,
        page: &EventPage,
    ) -> Result<Vec<AuthEvent>, RepositoryError> {
        self.run(
            "list events",
            self.inner.recent_for_user(user, page),
            repository,
        )
        .await
    }

    /// Unbounded: a background purge of many batches, not a request.
    async fn purge_before(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> Result<u64, RepositoryError> {
        self.inner.purge_before(before, batch).await
    }
}

impl<T: TokenStore> TokenStore for Bounded<T> {
    async fn find(&self, digest: &TokenDigest) -> Result<Option<OneTimeToken>, RepositoryError> {
        self.run("find token", self.inner.find(digest), repository)
            .await
    }

    async fn latest_issued(
        &self,
        user: UserId,
        purpose: Purpose,
    ) -> Result<Option<OffsetDateTime>, RepositoryError> {
        self.run(
            "find latest token",
            self.inner.latest_issued(user, purpose),
            repository,
        )
        .await
    }

    /// Unbounded: a background purge, not a request.
    async fn purge_expired(&self, now: OffsetDateTime, batch: u64) -> Result<u64, RepositoryError> {
        self.inner.purge_expired(now, batch).await
    }
}

impl<O: Outbox> Outbox for Bounded<O> {
    async fn lease_due(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: u32,
    ) -> Result<Vec<Leased>, RepositoryError> {
        self.run(
            "lease mail",
            self.inner.lease_due(now, lease, limit),
            repository,
        )
        .await
    }

    async fn mark_sent(
        &self,
        leased: &Leased,
        at: OffsetDateTime,
    ) -> Result<bool, RepositoryError> {
        self.run(
            "mark mail sent",
            self.inner.mark_sent(leased, at),
            repository,
        )
        .await
    }

    async fn mark_attempt_failed(
        &self,
        leased: &Leased,
        error: &str,
        next_attempt_at: Option<OffsetDateTime>,
    ) -> Result<bool, RepositoryError> {
        self.run(
            "mark mail failed",
            self.inner
                .mark_attempt_failed(leased, error, next_attempt_at),
            repository,
        )
        .await
    }

    async fn list(
        &self,
        status: Option<MailStatus>,
        limit: u64,
    ) -> Result<Vec<OutboxEntry>, RepositoryError> {
        self.run("list mail", self.inner.list(status, limit), repository)
            .await
    }

    async fn retry_failed(
        &self,
        id: Option<uuid::Uuid>,
        now: OffsetDateTime,
    ) -> Result<u64, RepositoryError> {
        self.run("retry mail", self.inner.retry_failed(id, now), repository)
            .await
    }

    async fn pending(&self) -> Result<u64, RepositoryError> {
        self.run("count pending mail", self.inner.pending(), repository)
            .await
    }

    /// Unbounded: a background purge, not a request.
    async fn purge_settled_before(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> Result<u64, RepositoryError> {
        self.inner.purge_settled_before(before, batch).await
    }
}

impl<F: FactorStore> FactorStore for Bounded<F> {
    async fn summary(&self, user: UserId) -> Result<FactorSummary, RepositoryError> {
        self.run("read factors", self.inner.summary(user), repository)
            .await
    }

    async fn totp(&self, user: UserId) -> Result<Option<TotpCredential>, RepositoryError> {
        self.run("read totp", self.inner.totp(user), repository)
            .await
    }

    async fn begin_totp(&self, credential: TotpCredential) -> Result<bool, RepositoryError> {
        self.run("begin totp", self.inner.begin_totp(credential), repository)
            .await
    }

    async fn accept_totp_step(
        &self,
        user: UserId,
        id: uuid::Uuid,
        step: i64,
    ) -> Result<bool, RepositoryError> {
        self.run(
            "accept totp step",
            self.inner.accept_totp_step(user, id, step),
            repository,
        )
        .await
    }

    async fn passkeys(&self, user: UserId) -> Result<Vec<StoredPasskey>, RepositoryError> {
        self.run("list passkeys", self.inner.passkeys(user), repository)
            .await
    }

    async fn passkey_by_credential(
        &self,
        credential_id: &CredentialId,
    ) -> Result<Option<StoredPasskey>, RepositoryError> {
        self.run(
            "find passkey",
            self.inner.passkey_by_credential(credential_id),
            repository,
        )
        .await
    }

    async fn passkey_used(
        &self,
        user: UserId,
        id: uuid::Uuid,
        key: String,
        at: OffsetDateTime,
    ) -> Result<bool, RepositoryError> {
        self.run(
            "record passkey use",
            self.inner.passkey_used(user, id, key, at),
            repository,
        )
        .await
    }

    async fn rename_passkey(
        &self,
        user: UserId,
        id: uuid::Uuid,
        name: String,
    ) -> Result<bool, RepositoryError> {
        self.run(
            "rename passkey",
            self.inner.rename_passkey(user, id, name),
            repository,
        )
        .await
    }
}

impl<C: ChallengeStore> ChallengeStore for Bounded<C> {
    async fn put(&self, challenge: PendingChallenge) -> Result<(), RepositoryError> {
        self.run("store challenge", self.inner.put(challenge), repository)
            .await
    }

    async fn take(
        &self,
        digest: &str,
        ceremony: Ceremony,
        now: OffsetDateTime,
    ) -> Result<Option<PendingChallenge>, RepositoryError> {
        self.run(
            "take challenge",
            self.inner.take(digest, ceremony, now),
            repository,
        )
        .await
    }

    /// Unbounded: a background purge, not a request.
    async fn purge_expired(&self, now: OffsetDateTime, batch: u64) -> Result<u64, RepositoryError> {
        self.inner.purge_expired(now, batch).await
    }
}

/// A backend's stores, each [`Bounded`]: what every code path of the application runs on.
#[derive(Clone)]
pub(crate) struct BoundedStores<B: Stores> {
    inner: B,
    users: Bounded<B::Users>,
    sessions: Bounded<B::Sessions>,
    failures: Bounded<B::Failures>,
    audit: Bounded<B::Audit>,
    admin: Bounded<B::Admin>,
    tokens: Bounded<B::Tokens>,
    outbox: Bounded<B::Outbox>,
    factors: Bounded<B::Factors>,
    challenges: Bounded<B::Challenges>,
    timeout: Duration,
}

impl<B: Stores> BoundedStores<B> {
    /// `stores`, each operation bounded by `timeout`.
    pub(crate) fn new(stores: B, timeout: Duration) -> Self {
        Self {
            users: Bounded::new(stores.users().clone(), timeout),
            sessions: Bounded::new(stores.sessions().clone(), timeout),
            failures: Bounded::new(stores.failures().clone(), timeout),
            audit: Bounded::new(stores.audit().clone(), timeout),
            admin: Bounded::new(stores.admin().clone(), timeout),
            tokens: Bounded::new(stores.tokens().clone(), timeout),
            outbox: Bounded::new(stores.outbox().clone(), timeout),
            factors: Bounded::new(stores.factors().clone(), timeout),
            challenges: Bounded::new(stores.challenges().clone(), timeout),
            timeout,
            inner: stores,
        }
    }

    /// The stores themselves, unbounded: for what runs as long as it takes (the purge).
    pub(crate) fn inner(&self) -> &B {
        &self.inner
    }
}

impl<B: Stores> Stores for BoundedStores<B> {
    type Users = Bounded<B::Users>;
    type Sessions = Bounded<B::Sessions>;
    type Failures = Bounded<B::Failures>;
    type Audit = Bounded<B::Audit>;
    type Admin = Bounded<B::Admin>;
    type Tokens = Bounded<B::Tokens>;
    type Outbox = Bounded<B::Outbox>;
    type Factors = Bounded<B::Factors>;
    type Challenges = Bounded<B::Challenges>;

    fn users(&self) -> &Self::Users {
        &self.users
    }

    fn sessions(&self) -> &Self::Sessions {
        &self.sessions
    }

    fn failures(&self) -> &Self::Failures {
        &self.failures
    }

    fn audit(&self) -> &Self::Audit {
        &self.audit
    }

    fn admin(&self) -> &Self::Admin {
        &self.admin
    }

    fn tokens(&self) -> &Self::Tokens {
        &self.tokens
    }

    fn outbox(&self) -> &Self::Outbox {
        &self.outbox
    }

    fn factors(&self) -> &Self::Factors {
        &self.factors
    }

    fn challenges(&self) -> &Self::Challenges {
        &self.challenges
    }

    /// A commit cut short is rolled back on SQL (the transaction dies with its
    /// connection); on MongoDB the changes before the cut may stay, as after any storage
    /// failure there (see `auth_domain::work`).
    async fn commit(&self, work: Work) -> Result<(), CommitError> {
        match tokio::time::timeout(self.timeout, self.inner.commit(work)).await {
            Ok(result) => result,
            Err(_) => Err(CommitError::Storage(repository(TimedOut {
                what: "commit",
                after: self.timeout,
            }))),
        }
    }

    async fn close(self, timeout: Duration) {
        let Self { inner, .. } = self;
        inner.close(timeout).await;
    }
}

#[cfg(test)]
mod tests {
    use auth_testkit::memory::MemoryUserRepository;

    use super::*;

    /// A store whose every lookup hangs: a database frozen with its socket open.
    #[derive(Clone)]
    struct Frozen;

    impl Readiness for Frozen {
        async fn ping(&self) -> Result<(), RepositoryError> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn an_operation_that_never_ends_is_unavailable_after_the_timeout() {
        let bounded = Bounded::new(Frozen, Duration::from_millis(50));
        let error = bounded.ping().await.expect_err("a frozen store times out");
        assert!(error.is_unavailable(), "{error}");
    }

    #[tokio::test]
    async fn an_operation_within_the_timeout_answers_as_the_store_does() {
        let bounded = Bounded::new(MemoryUserRepository::default(), Duration::from_secs(5));
        let id = UserId::generate();
        assert!(bounded.find_by_id(id).await.expect("no timeout").is_none());
    }
}
