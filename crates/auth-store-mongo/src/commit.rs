//! [`crate::MongoStores`]' `commit`: a unit of work, change by change.
//!
//! A standalone server (and SecantusDB, the test server) has no multi-document
//! transactions, so the changes are applied in order and the work stops at the first
//! refusal. The use cases put their guards first (see `auth_domain::work`), so a refused
//! work has changed nothing; a storage failure halfway may leave the changes before it,
//! each of which is safe alone (a spent token, ended sessions, a queued notice).

use auth_domain::{
    audit::AuditLog as _,
    work::{Change, CommitError, Refusal, Work},
    InsertUserError, UserRepository as _, UserSessions as _,
};

use crate::MongoStores;

/// Applies `work` to `stores`, in order, up to the first refusal.
pub(crate) async fn commit(stores: &MongoStores, work: Work) -> Result<(), CommitError> {
    for change in work.into_changes() {
        apply(stores, change).await?;
    }
    Ok(())
}

/// `Err(refusal)` unless `passed`.
fn guard(passed: bool, refusal: Refusal) -> Result<(), CommitError> {
    if passed {
        Ok(())
    } else {
        Err(CommitError::Refused(refusal))
    }
}

async fn apply(stores: &MongoStores, change: Change) -> Result<(), CommitError> {
    match change {
        Change::InsertUser(user) => match stores.users.insert_user(&user.into_user()).await {
            Ok(()) => Ok(()),
            Err(InsertUserError::EmailTaken) => Err(CommitError::Refused(Refusal::EmailTaken)),
            Err(InsertUserError::UsernameTaken) => {
                Err(CommitError::Refused(Refusal::UsernameTaken))
            }
            Err(InsertUserError::Unexpected(error)) => Err(error.into()),
        },
        Change::ConsumeToken {
            digest,
            purpose,
            now,
        } => guard(
            stores.tokens.consume(&digest, purpose, now).await?,
            Refusal::TokenSpent,
        ),
        Change::SetPassword { user, hash } => guard(
            stores.users.set_password(user, &hash).await?,
            Refusal::Stale,
        ),
        Change::ReplacePassword { user, current, new } => guard(
            stores
                .users
                .replace_password_hash(user, &current, &new)
                .await?,
            Refusal::Stale,
        ),
        Change::DeleteUser { user } => guard(stores.users.delete(user).await?, Refusal::Stale),
        Change::EndSession { user, handle } => guard(
            stores.sessions.delete_user_session(user, &handle).await?,
            Refusal::Stale,
        ),
        Change::SetEmail { user, from, to } => stores
            .users
            .set_email(user, &from, &to)
            .await?
            .map_err(CommitError::Refused),
        Change::MarkEmailVerified { user, email } => guard(
            stores.users.mark_email_verified(user, &email).await?,
            Refusal::Stale,
        ),
        Change::EndSessions { user } => Ok(stores.users.delete_sessions(user).await?),
        Change::VoidTokens { user, purpose } => Ok(stores.tokens.void(user, purpose).await?),
        Change::InsertToken(token) => Ok(stores.tokens.insert(&token).await?),
        Change::Enqueue(mail) => Ok(stores.outbox.enqueue(&mail).await?),
        Change::Record(event) => Ok(stores.events.record(&event).await?),
    }
}
