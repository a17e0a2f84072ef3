//! [`crate::MongoStores`]' `commit`: a unit of work, in one transaction where the
//! deployment runs them, change by change where it does not.
//!
//! A replica set (or a sharded cluster) runs multi-document transactions: the work is
//! applied in one, all or nothing, and retried whole when the server says a concurrent
//! transaction got in the way (a write conflict: the label `TransientTransactionError`).
//! A retried work sees what the other one committed, so of concurrent works spending one
//! token, one is applied and the others are refused.
//!
//! A standalone server has none: the changes are applied in order and the work stops at
//! the first refusal. The use cases put their guards first (see `auth_domain::work`), so a
//! refused work has changed nothing; a storage failure halfway may leave the changes
//! before it, each of which is safe alone (a spent token, ended sessions, a queued
//! notice).
//!
//! Either way each change runs the same statements, inside the transaction's session or
//! outside any (see [`crate::tx`]).

use auth_domain::{
    session::Credential,
    work::{Change, CommitError, Refusal, Work},
    InsertUserError,
};
use mongodb::{
    error::{TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT},
    ClientSession,
};

use crate::{
    error::{duplicate_key_message, repository_error},
    factors::InsertPasskeyError,
    tx::{Failure, Tx},
    users::insert_error,
    MongoStores,
};

/// How many times a work is tried when concurrent transactions keep getting in its way.
/// Each conflict means another work was applied, so a handful is plenty; the caller's
/// timeout bounds the whole anyway.
const ATTEMPTS: usize = 8;

/// How many times a commit whose outcome is unknown (a connection lost while committing)
/// is sent again: committing twice is harmless, the server recognises the transaction.
const COMMIT_ATTEMPTS: usize = 3;

/// Why a change stopped the work.
enum Stop {
    /// A guard refused it.
    Refused(Refusal),
    /// The storage failed, doing the change named.
    Failed(&'static str, Failure),
}

impl Stop {
    /// Whether trying the whole work again may succeed: a write conflict.
    fn is_transient(&self) -> bool {
        matches!(self, Self::Failed(_, Failure::Driver(error)) if error.contains_label(TRANSIENT_TRANSACTION_ERROR))
    }

    fn into_commit_error(self) -> CommitError {
        match self {
            Self::Refused(refusal) => CommitError::Refused(refusal),
            Self::Failed(operation, failure) => {
                CommitError::Storage(failure.into_repository_error(operation))
            }
        }
    }
}

/// Applies `work` to `stores`: in a transaction when `transactions`, else in order up to
/// the first refusal.
pub(crate) async fn commit(
    stores: &MongoStores,
    transactions: bool,
    work: Work,
) -> Result<(), CommitError> {
    if !transactions {
        return apply_all(stores, &mut None, work)
            .await
            .map_err(Stop::into_commit_error);
    }
    let failed =
        |error: mongodb::error::Error| CommitError::Storage(repository_error("commit", &error));
    let mut session = stores.client.start_session().await.map_err(failed)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let retry = attempt < ATTEMPTS;
        session.start_transaction().await.map_err(failed)?;
        let applied = {
            let mut tx = Some(&mut session);
            apply_all(stores, &mut tx, work.clone()).await
        };
        match applied {
            Ok(()) => match commit_transaction(&mut session).await {
                Ok(()) => {
                    sweep_after(stores, &work).await;
                    return Ok(());
                }
                Err(error) if retry && error.contains_label(TRANSIENT_TRANSACTION_ERROR) => {}
                Err(error) => return Err(failed(error)),
            },
            Err(stop) => {
                // A failed write may have ended the transaction on the server already:
                // then there is nothing left to abort, and nothing of it stays either.
                if let Err(error) = session.abort_transaction().await {
                    tracing::debug!(error = %crate::error::DriverError::new("abort", &error), "aborting a stopped work");
                }
                if !(retry && stop.is_transient()) {
                    return Err(stop.into_commit_error());
                }
            }
        }
        tracing::debug!(
            attempt,
            "a unit of work met a concurrent one; trying it again"
        );
        // A short, growing pause lets the transaction that won finish first (as on SQL):
        // tried again at once, a burst of works on one document only meets itself again.
        tokio::time::sleep(std::time::Duration::from_millis(5 * attempt as u64)).await;
    }
}

/// Ends, after a committed transaction, the sessions that logins racing it inserted
/// meanwhile. A transaction's writes are seen by no one until it commits, so its own sweep
/// of a deleted user's sessions, or its rebinding of sessions to a new password, could not
/// see a session inserted by a login that read the user before the commit. Swept again
/// outside it, each such session is gone, and a login that inserts later reads the
/// committed user when it checks its session, as without a transaction
/// ([`crate::users`]). A failed sweep is logged: that login's own check still ends it at
/// its next request.
///
/// A deleted user's second factors and ceremonies are swept again too, for the same
/// reason: an enrolment or a ceremony of one of their sessions that raced the transaction
/// inserted a document its deletes could not see (a delete that matches nothing meets no
/// write conflict), which would outlive the account.
async fn sweep_after(stores: &MongoStores, work: &Work) {
    for change in work.changes() {
        let swept = match change {
            Change::DeleteUser { user } => sweep_deleted_user(stores, *user).await,
            Change::SetPassword { user, hash } => {
                stores
                    .users
                    .rebind_sessions(&mut None, *user, None, &Credential::of(hash))
                    .await
            }
            Change::ReplacePassword { user, current, new } => {
                stores
                    .users
                    .rebind_sessions(
                        &mut None,
                        *user,
                        Some(&Credential::of(current)),
                        &Credential::of(new),
                    )
                    .await
            }
            _ => Ok(()),
        };
        if let Err(error) = swept {
            tracing::warn!(error = %crate::error::DriverError::new("sweep", &error), change = change.name(), "could not sweep after a committed change");
        }
    }
}

/// Deletes whatever of `user` a racing write may have left after their deletion.
async fn sweep_deleted_user(
    stores: &MongoStores,
    user: auth_domain::UserId,
) -> Result<(), mongodb::error::Error> {
    stores.users.delete_sessions_in(&mut None, user).await?;
    delete_belongings(stores, &mut None, user).await
}

/// Deletes `user`'s second factors and WebAuthn ceremonies: after the user (its guard),
/// so that a failure between them on a standalone server never leaves an account that a
/// password alone signs into where it had a second factor.
async fn delete_belongings(
    stores: &MongoStores,
    tx: &mut Tx<'_>,
    user: auth_domain::UserId,
) -> Result<(), mongodb::error::Error> {
    stores.factors.remove_all_in(tx, user).await?;
    stores.challenges.delete_for_user_in(tx, user).await
}

/// Commits the session's transaction, sending the commit again while its outcome is
/// unknown.
async fn commit_transaction(session: &mut ClientSession) -> Result<(), mongodb::error::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match session.commit_transaction().await {
            Err(error)
                if attempt < COMMIT_ATTEMPTS
                    && error.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) => {}
            done => return done,
        }
    }
}

async fn apply_all(stores: &MongoStores, tx: &mut Tx<'_>, work: Work) -> Result<(), Stop> {
    for change in work.into_changes() {
        apply(stores, tx, change).await?;
    }
    Ok(())
}

/// `Err(refusal)` unless `passed`.
fn guard(passed: bool, refusal: Refusal) -> Result<(), Stop> {
    if passed {
        Ok(())
    } else {
        Err(Stop::Refused(refusal))
    }
}

async fn apply(stores: &MongoStores, tx: &mut Tx<'_>, change: Change) -> Result<(), Stop> {
    let name = change.name();
    let failed = |failure: Failure| Stop::Failed(name, failure);
    let driver = |error: mongodb::error::Error| Stop::Failed(name, Failure::Driver(error));
    match change {
        Change::InsertUser(user) => match stores.users.insert_in(tx, &user.into_user()).await {
            Ok(()) => Ok(()),
            Err(Failure::Driver(error)) => match insert_error(&error) {
                InsertUserError::EmailTaken => Err(Stop::Refused(Refusal::EmailTaken)),
                InsertUserError::UsernameTaken => Err(Stop::Refused(Refusal::UsernameTaken)),
                InsertUserError::Unexpected(_) => Err(driver(error)),
            },
            Err(invalid) => Err(failed(invalid)),
        },
        Change::ConsumeToken {
            digest,
            purpose,
            now,
        } => guard(
            stores
                .tokens
                .consume_in(tx, &digest, purpose, now)
                .await
                .map_err(failed)?,
            Refusal::TokenSpent,
        ),
        Change::SetPassword { user, hash } => guard(
            stores
                .users
                .set_password_in(tx, user, None, &hash)
                .await
                .map_err(driver)?,
            Refusal::Stale,
        ),
        Change::ReplacePassword { user, current, new } => guard(
            stores
                .users
                .set_password_in(tx, user, Some(&current), &new)
                .await
                .map_err(driver)?,
            Refusal::Stale,
        ),
        Change::DeleteUser { user } => {
            guard(
                stores.users.delete_in(tx, user).await.map_err(driver)?,
                Refusal::Stale,
            )?;
            delete_belongings(stores, tx, user).await.map_err(driver)
        }
        Change::EndSession { user, handle } => guard(
            stores
                .sessions
                .end_session_in(tx, user, &handle)
                .await
                .map_err(driver)?,
            Refusal::Stale,
        ),
        Change::SetEmail { user, from, to } => {
            match stores.users.set_email_in(tx, user, &from, &to).await {
                Ok(moved) => guard(moved, Refusal::Stale),
                // The new address is another account's email, or its default username.
                Err(error) if duplicate_key_message(&error).is_some() => {
                    Err(Stop::Refused(Refusal::EmailTaken))
                }
                Err(error) => Err(driver(error)),
            }
        }
        Change::MarkEmailVerified { user, email } => guard(
            stores
                .users
                .mark_email_verified_in(tx, user, &email)
                .await
                .map_err(driver)?,
            Refusal::Stale,
        ),
        Change::EndSessions { user } => stores
            .users
            .delete_sessions_in(tx, user)
            .await
            .map_err(driver),
        Change::VoidTokens { user, purpose } => stores
            .tokens
            .void_in(tx, user, purpose)
            .await
            .map_err(driver),
        Change::InsertToken(token) => stores.tokens.insert_in(tx, &token).await.map_err(failed),
        Change::Enqueue(mail) => stores.outbox.enqueue_in(tx, &mail).await.map_err(failed),
        Change::Record(event) => stores.events.insert_in(tx, &event).await.map_err(failed),
        Change::ConfirmTotp { user, id, step } => guard(
            stores
                .factors
                .confirm_totp_in(tx, user, id, step)
                .await
                .map_err(driver)?,
            Refusal::Stale,
        ),
        Change::RemoveTotp { user } => guard(
            stores
                .factors
                .remove_totp_in(tx, user)
                .await
                .map_err(driver)?,
            Refusal::Stale,
        ),
        Change::ReplaceRecoveryCodes { user, digests, at } => stores
            .factors
            .replace_codes_in(tx, user, &digests, at)
            .await
            .map_err(failed),
        Change::ConsumeRecoveryCode { user, digest } => guard(
            stores
                .factors
                .consume_code_in(tx, user, &digest)
                .await
                .map_err(driver)?,
            Refusal::TokenSpent,
        ),
        Change::InsertPasskey(passkey) => {
            match stores.factors.insert_passkey_in(tx, &passkey).await {
                Ok(()) => Ok(()),
                Err(InsertPasskeyError::CredentialTaken) => {
                    Err(Stop::Refused(Refusal::CredentialTaken))
                }
                Err(InsertPasskeyError::Failed(failure)) => Err(failed(failure)),
            }
        }
        Change::DeletePasskey { user, id } => guard(
            stores
                .factors
                .delete_passkey_in(tx, user, id)
                .await
                .map_err(driver)?,
            Refusal::Stale,
        ),
        Change::RemoveFactors { user } => {
            stores.factors.remove_all_in(tx, user).await.map_err(driver)
        }
    }
}
