//! One backend's stores, as one bundle: what the application opens once and hands to the
//! use cases ([`crate::accounts::Accounts`]), the HTTP layer and the admin command line.
//!
//! Each backend implements [`Stores`] once (SQL, MongoDB, and the test kit's memory), so
//! code above the stores names one type parameter, not one per port.

use std::future::Future;

use crate::{
    admin::Administration,
    audit::AuditLog,
    factors::{ChallengeStore, FactorStore},
    mail::Outbox,
    readiness::Readiness,
    throttle::FailureCounter,
    tokens::TokenStore,
    work::{CommitError, Work},
    OwnedSessions, UserRepository, UserSessions,
};

/// Every store of one backend, on one database.
pub trait Stores: Clone + Send + Sync + 'static {
    /// Users.
    type Users: UserRepository;
    /// Sessions: loaded with their owner, listed and ended by user. Their database
    /// answering is what readiness reports.
    type Sessions: OwnedSessions + UserSessions + Readiness + Clone;
    /// Failed attempts, for throttling.
    type Failures: FailureCounter;
    /// The audit trail.
    type Audit: AuditLog;
    /// The operator's view of all of them.
    type Admin: Administration;
    /// One-time tokens (reset, verification, email change).
    type Tokens: TokenStore;
    /// Mail waiting to be sent.
    type Outbox: Outbox;
    /// Second factors: TOTP, recovery codes, passkeys.
    type Factors: FactorStore;
    /// WebAuthn ceremonies waiting for their answer.
    type Challenges: ChallengeStore;

    /// The users.
    fn users(&self) -> &Self::Users;
    /// The sessions.
    fn sessions(&self) -> &Self::Sessions;
    /// The failure counter.
    fn failures(&self) -> &Self::Failures;
    /// The audit log.
    fn audit(&self) -> &Self::Audit;
    /// The operator's view.
    fn admin(&self) -> &Self::Admin;
    /// The tokens.
    fn tokens(&self) -> &Self::Tokens;
    /// The outbox.
    fn outbox(&self) -> &Self::Outbox;
    /// The second factors.
    fn factors(&self) -> &Self::Factors;
    /// The WebAuthn ceremonies.
    fn challenges(&self) -> &Self::Challenges;

    /// Applies `work`'s changes together: all or none in one transaction where the store
    /// has them, in order up to the first refusal where it has not (see
    /// [`crate::work`]).
    fn commit(&self, work: Work) -> impl Future<Output = Result<(), CommitError>> + Send;

    /// Closes the connections, waiting at most `timeout` for a graceful close: a
    /// database that stopped answering must not keep a finished command or a stopped
    /// server from exiting. Called before the runtime ends, so that no background task of
    /// a driver outlives it.
    fn close(self, timeout: std::time::Duration) -> impl Future<Output = ()> + Send;
}
