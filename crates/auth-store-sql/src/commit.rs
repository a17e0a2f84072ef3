//! [`crate::SqlStores::commit`]: a unit of work in one transaction.
//!
//! Every change runs on the transaction with the same statement its store runs on the
//! pool; a guard that finds nothing to change, or a unique index that refuses a write,
//! rolls the whole transaction back, so a refused work leaves nothing behind.

use auth_domain::{
    clock::Clock,
    work::{Change, CommitError, Refusal, Work},
    InsertUserError,
};
use sea_orm::{DatabaseTransaction, DbErr, TransactionTrait};

use crate::{
    audit,
    error::{is_unique_violation, repository_error},
    factors::{self, InsertPasskeyError},
    outbox, sessions, tokens,
    users::{self, taken, Taken},
    SqlUserRepository,
};

/// Why a change stopped the work.
enum Stop {
    /// A guard refused it.
    Refused(Refusal),
    /// The username of a new user is taken, and perhaps its email too (the engine names
    /// one index only): which to tell is decided once the transaction is gone.
    UsernameTaken,
    /// The database failed.
    Failed(&'static str, DbErr),
}

/// Applies `work` in one transaction on `users`' pool, telling live sessions by `clock`.
pub(crate) async fn commit(
    users: &SqlUserRepository,
    clock: &Clock,
    work: Work,
) -> Result<(), CommitError> {
    let mut attempt = 1;
    loop {
        match commit_once(users, clock, work.clone()).await {
            Err(Attempt::Conflict(err)) if attempt < CONFLICT_ATTEMPTS => {
                tracing::debug!(attempt, error = %crate::error::describe(&err), "a unit of work met a concurrent one; trying it again");
                attempt += 1;
                // A short, growing pause lets the transaction that won finish first.
                tokio::time::sleep(std::time::Duration::from_millis(5 * attempt)).await;
            }
            Err(Attempt::Conflict(err)) => {
                return Err(CommitError::Storage(repository_error("commit", &err)))
            }
            Err(Attempt::Done(error)) => return Err(error),
            Ok(()) => return Ok(()),
        }
    }
}

/// How many times a work is tried when the engine gives it up for a concurrent one (see
/// [`crate::error::is_transaction_conflict`]): InnoDB takes gap locks, so two works that
/// write near one another in an index (two registrations, each voiding and inserting a
/// token) can deadlock, and the engine rolls one back whole.
const CONFLICT_ATTEMPTS: u64 = 8;

/// Why one try of a work did not apply it.
enum Attempt {
    /// The engine rolled it back for a concurrent transaction: try again.
    Conflict(DbErr),
    /// Refused, or failed for good.
    Done(CommitError),
}

impl From<CommitError> for Attempt {
    fn from(error: CommitError) -> Self {
        Self::Done(error)
    }
}

/// One try of [`commit`].
async fn commit_once(users: &SqlUserRepository, clock: &Clock, work: Work) -> Result<(), Attempt> {
    let failed = |operation, err: DbErr| {
        if crate::error::is_transaction_conflict(&err) {
            Attempt::Conflict(err)
        } else {
            Attempt::Done(CommitError::Storage(repository_error(operation, &err)))
        }
    };
    let transaction = users
        .db()
        .begin()
        .await
        .map_err(|err| failed("commit", err))?;
    let mut new_email = None;
    for change in work.into_changes() {
        if let Change::InsertUser(user) = &change {
            new_email = Some(user.email.clone());
        }
        if let Err(stop) = apply(&transaction, clock, change).await {
            // A failed rollback leaves nothing either: the connection drops the
            // transaction with it.
            if let Err(err) = transaction.rollback().await {
                tracing::debug!(error = %crate::error::describe(&err), "rolling back a refused work");
            }
            return Err(match stop {
                Stop::Refused(refusal) => CommitError::Refused(refusal).into(),
                Stop::UsernameTaken => {
                    let email = new_email.expect("only an inserted user stops so");
                    match users.username_or_email_taken(&email).await {
                        InsertUserError::EmailTaken => CommitError::Refused(Refusal::EmailTaken),
                        _ => CommitError::Refused(Refusal::UsernameTaken),
                    }
                    .into()
                }
                Stop::Failed(operation, err) => failed(operation, err),
            });
        }
    }
    transaction
        .commit()
        .await
        .map_err(|err| failed("commit", err))
}

/// Applies one change on `db`.
async fn apply(db: &DatabaseTransaction, clock: &Clock, change: Change) -> Result<(), Stop> {
    let name = change.name();
    let failed = |err| Stop::Failed(name, err);
    let guard = |matched: u64, refusal| {
        if matched == 0 {
            Err(Stop::Refused(refusal))
        } else {
            Ok(())
        }
    };
    match change {
        Change::InsertUser(user) => match users::insert_row(db, &user.into_user()).await {
            Ok(()) => Ok(()),
            Err(err) => Err(match taken(&err) {
                Some(Taken::Email) => Stop::Refused(Refusal::EmailTaken),
                Some(Taken::Username) => Stop::UsernameTaken,
                None => failed(err),
            }),
        },
        Change::ConsumeToken {
            digest,
            purpose,
            now,
        } => guard(
            tokens::consume(db, &digest, purpose, now)
                .await
                .map_err(failed)?,
            Refusal::TokenSpent,
        ),
        Change::SetPassword { user, hash } => guard(
            users::set_password(db, user, &hash, None)
                .await
                .map_err(failed)?,
            Refusal::Stale,
        ),
        Change::ReplacePassword { user, current, new } => guard(
            users::set_password(db, user, &new, Some(&current))
                .await
                .map_err(failed)?,
            Refusal::Stale,
        ),
        Change::DeleteUser { user } => guard(
            users::delete_with_sessions(db, user)
                .await
                .map_err(failed)?,
            Refusal::Stale,
        ),
        Change::EndSession { user, handle } => guard(
            sessions::delete_live_of_user(db, user, &handle, clock.now())
                .await
                .map_err(failed)?,
            Refusal::Stale,
        ),
        Change::SetEmail { user, from, to } => match users::set_email(db, user, &from, &to).await {
            Ok(matched) => guard(matched, Refusal::Stale),
            // The new address is the other account's email, or its default username.
            Err(err) if is_unique_violation(&err) => Err(Stop::Refused(Refusal::EmailTaken)),
            Err(err) => Err(failed(err)),
        },
        Change::MarkEmailVerified { user, email } => guard(
            users::mark_email_verified(db, user, &email)
                .await
                .map_err(failed)?,
            Refusal::Stale,
        ),
        Change::EndSessions { user } => sessions::delete_of_user(db, user)
            .await
            .map(drop)
            .map_err(failed),
        Change::VoidTokens { user, purpose } => tokens::void(db, user, purpose)
            .await
            .map(drop)
            .map_err(failed),
        Change::InsertToken(token) => tokens::insert(db, &token).await.map_err(failed),
        Change::Enqueue(mail) => outbox::enqueue(db, &mail).await.map_err(failed),
        Change::Record(event) => audit::insert_event(db, &event).await.map_err(failed),
        Change::ConfirmTotp { user, id, step } => guard(
            factors::confirm_totp(db, user, id, step)
                .await
                .map_err(failed)?,
            Refusal::Stale,
        ),
        Change::RemoveTotp { user } => guard(
            factors::remove_totp(db, user).await.map_err(failed)?,
            Refusal::Stale,
        ),
        Change::ReplaceRecoveryCodes { user, digests, at } => {
            factors::replace_codes(db, user, &digests, at)
                .await
                .map_err(failed)
        }
        Change::ConsumeRecoveryCode { user, digest } => guard(
            factors::consume_code(db, user, &digest)
                .await
                .map_err(failed)?,
            Refusal::TokenSpent,
        ),
        Change::InsertPasskey(passkey) => match factors::insert_passkey(db, &passkey).await {
            Ok(()) => Ok(()),
            Err(InsertPasskeyError::CredentialTaken) => {
                Err(Stop::Refused(Refusal::CredentialTaken))
            }
            Err(InsertPasskeyError::Failed(err)) => Err(failed(err)),
        },
        Change::DeletePasskey { user, id } => guard(
            factors::delete_passkey(db, user, id)
                .await
                .map_err(failed)?,
            Refusal::Stale,
        ),
        Change::RemoveFactors { user } => factors::remove_all(db, user).await.map_err(failed),
    }
}
