//! The indexes of every collection, declared once.

use std::time::Duration;

use bson::doc;
use mongodb::{options::IndexOptions, Database, IndexModel};

use crate::{
    audit::fields as event,
    challenges::fields as challenge,
    factors::fields::{code, passkey},
    outbox::fields as mail,
    sessions::fields as session,
    throttle::fields as failure,
    tokens::fields as token,
    users::fields as user,
    FAILURE_RETENTION,
};

/// Unique index of the users' `email`; its name tells a duplicate email from a duplicate
/// username.
pub const EMAIL_INDEX: &str = "email_unique";

/// Unique index of the users' `username`.
pub const USERNAME_INDEX: &str = "username_unique";

/// Index of the sessions' `user_id`, to list and revoke a user's sessions.
pub const SESSION_USER_INDEX: &str = "user_id";

/// TTL index of the sessions' `expires_at`: MongoDB deletes a session once that date passes.
pub const SESSION_EXPIRY_INDEX: &str = "expires_at_ttl";

/// Creates the indexes of the users and sessions collections (and the collections with
/// them). Idempotent: an index that already exists as declared is left alone.
///
/// # Errors
///
/// The server is unreachable, or refuses an index: existing documents violate a unique
/// index, or an index of the same name or keys exists with other options.
pub async fn ensure_indexes(
    db: &Database,
    users: &str,
    sessions: &str,
) -> Result<(), EnsureIndexesError> {
    let unique = |name: &str| {
        IndexOptions::builder()
            .name(name.to_owned())
            .unique(true)
            .build()
    };
    let user_indexes = [
        IndexModel::builder()
            .keys(doc! { user::EMAIL: 1 })
            .options(unique(EMAIL_INDEX))
            .build(),
        IndexModel::builder()
            .keys(doc! { user::USERNAME: 1 })
            .options(unique(USERNAME_INDEX))
            .build(),
    ];
    let session_indexes = [
        IndexModel::builder()
            .keys(doc! { session::USER_ID: 1 })
            .options(
                IndexOptions::builder()
                    .name(SESSION_USER_INDEX.to_owned())
                    .build(),
            )
            .build(),
        IndexModel::builder()
            .keys(doc! { session::EXPIRES_AT: 1 })
            .options(
                IndexOptions::builder()
                    .name(SESSION_EXPIRY_INDEX.to_owned())
                    // Zero: each document expires at its own `expires_at`.
                    .expire_after(Duration::ZERO)
                    .build(),
            )
            .build(),
    ];
    for (collection, indexes) in [(users, user_indexes), (sessions, session_indexes)] {
        create(db, collection, indexes).await?;
    }
    Ok(())
}

/// Index of the failures' `(key, at_us)`: counting one key's failures within a window.
pub const FAILURE_KEY_INDEX: &str = "key_at";

/// TTL index of the failures' `at`: MongoDB deletes a failure [`FAILURE_RETENTION`] after
/// it happened.
pub const FAILURE_EXPIRY_INDEX: &str = "at_ttl";

/// Index of the events' `(user_id, at_us)`: a user's most recent events.
pub const EVENT_USER_INDEX: &str = "user_id_at";

/// Index of the events' `at`, for the purge. Not a TTL index: the retention is the
/// operator's setting, applied by the purge.
pub const EVENT_TIME_INDEX: &str = "at";

/// Creates the indexes of the login failures and audit events collections (and the
/// collections with them). Idempotent, like [`ensure_indexes`].
///
/// # Errors
///
/// The server is unreachable, or refuses an index: one of the same name or keys exists
/// with other options (a TTL index of another retention, say).
pub async fn ensure_throttle_and_audit_indexes(
    db: &Database,
    failures: &str,
    events: &str,
) -> Result<(), EnsureIndexesError> {
    let named = |name: &str| IndexOptions::builder().name(name.to_owned()).build();
    let failure_indexes = [
        IndexModel::builder()
            .keys(doc! { failure::KEY: 1, failure::AT_US: 1 })
            .options(named(FAILURE_KEY_INDEX))
            .build(),
        IndexModel::builder()
            .keys(doc! { failure::AT: 1 })
            .options(
                IndexOptions::builder()
                    .name(FAILURE_EXPIRY_INDEX.to_owned())
                    .expire_after(FAILURE_RETENTION)
                    .build(),
            )
            .build(),
    ];
    let event_indexes = [
        IndexModel::builder()
            .keys(doc! { event::USER_ID: 1, event::AT_US: -1 })
            .options(named(EVENT_USER_INDEX))
            .build(),
        IndexModel::builder()
            .keys(doc! { event::AT: 1 })
            .options(named(EVENT_TIME_INDEX))
            .build(),
    ];
    for (collection, indexes) in [(failures, failure_indexes), (events, event_indexes)] {
        create(db, collection, indexes).await?;
    }
    Ok(())
}

/// Index of the tokens' `(user_id, purpose, created_at_us)`: voiding a user's tokens of
/// one purpose, and finding when the newest was issued. (The digest is the `_id`, unique
/// by nature.)
pub const TOKEN_USER_INDEX: &str = "user_id_purpose_created_at";

/// Index of the tokens' `expires_at_us`, for the purge. Not a TTL index: the purge decides
/// by the service's clock, and a spent token is deleted when it is spent.
pub const TOKEN_EXPIRY_INDEX: &str = "expires_at";

/// Index of the outbox's `(status, next_attempt_at_us)`: the due mail a worker leases, and
/// the failed mail the purge deletes.
pub const MAIL_DUE_INDEX: &str = "status_next_attempt_at";

/// Index of the outbox's `(status, created_at_us)`: the newest mail of a status, listed.
pub const MAIL_LIST_INDEX: &str = "status_created_at";

/// Index of the outbox's `sent_at_us`, for the purge of sent mail.
pub const MAIL_SENT_INDEX: &str = "sent_at";

/// Creates the indexes of the one-time tokens and outbox collections (and the collections
/// with them). Idempotent, like [`ensure_indexes`].
///
/// # Errors
///
/// The server is unreachable, or refuses an index: one of the same name or keys exists
/// with other options.
pub async fn ensure_mail_indexes(
    db: &Database,
    tokens: &str,
    outbox: &str,
) -> Result<(), EnsureIndexesError> {
    let named = |name: &str| IndexOptions::builder().name(name.to_owned()).build();
    let token_indexes = vec![
        IndexModel::builder()
            .keys(doc! { token::USER_ID: 1, token::PURPOSE: 1, token::CREATED_AT_US: -1 })
            .options(named(TOKEN_USER_INDEX))
            .build(),
        IndexModel::builder()
            .keys(doc! { token::EXPIRES_AT_US: 1 })
            .options(named(TOKEN_EXPIRY_INDEX))
            .build(),
    ];
    let mail_indexes = vec![
        IndexModel::builder()
            .keys(doc! { mail::STATUS: 1, mail::NEXT_ATTEMPT_AT_US: 1 })
            .options(named(MAIL_DUE_INDEX))
            .build(),
        IndexModel::builder()
            .keys(doc! { mail::STATUS: 1, mail::CREATED_AT_US: -1 })
            .options(named(MAIL_LIST_INDEX))
            .build(),
        IndexModel::builder()
            .keys(doc! { mail::SENT_AT_US: 1 })
            .options(named(MAIL_SENT_INDEX))
            .build(),
    ];
    create(db, tokens, token_indexes).await?;
    create(db, outbox, mail_indexes).await
}

/// Unique index of the recovery codes' `(user_id, digest)`: a user's code is one
/// document, found (and spent) by this index.
pub const RECOVERY_CODE_INDEX: &str = "user_id_digest_unique";

/// Unique index of the passkeys' `credential_id`: an authenticator's credential belongs
/// to one account; its name tells a taken credential from any other duplicate.
pub const PASSKEY_CREDENTIAL_INDEX: &str = "credential_id_unique";

/// Index of the passkeys' `(user_id, created_at_us)`: a user's passkeys, oldest first.
pub const PASSKEY_USER_INDEX: &str = "user_id_created_at";

/// TTL index of the WebAuthn challenges' `expires_at`: MongoDB deletes a ceremony once
/// that date passes. Tidying only: a take checks the expiry itself, as the TTL monitor
/// runs about once a minute.
pub const CHALLENGE_EXPIRY_INDEX: &str = "expires_at_ttl";

/// Index of the WebAuthn challenges' `user_id`: a deleted user's ceremonies go with them.
pub const CHALLENGE_USER_INDEX: &str = "user_id";

/// Creates the indexes of the recovery codes, passkeys and WebAuthn challenges collections
/// (and the collections with them); the TOTP credentials need none but their `_id`, the
/// user's id. Idempotent, like [`ensure_indexes`].
///
/// # Errors
///
/// The server is unreachable, or refuses an index: existing documents violate a unique
/// index, or one of the same name or keys exists with other options.
pub async fn ensure_factor_indexes(
    db: &Database,
    codes: &str,
    passkeys: &str,
    challenges: &str,
) -> Result<(), EnsureIndexesError> {
    let named = |name: &str| IndexOptions::builder().name(name.to_owned()).build();
    let unique = |name: &str| {
        IndexOptions::builder()
            .name(name.to_owned())
            .unique(true)
            .build()
    };
    let code_indexes = vec![IndexModel::builder()
        .keys(doc! { code::USER_ID: 1, code::DIGEST: 1 })
        .options(unique(RECOVERY_CODE_INDEX))
        .build()];
    let passkey_indexes = vec![
        IndexModel::builder()
            .keys(doc! { passkey::CREDENTIAL_ID: 1 })
            .options(unique(PASSKEY_CREDENTIAL_INDEX))
            .build(),
        IndexModel::builder()
            .keys(doc! { passkey::USER_ID: 1, passkey::CREATED_AT_US: 1 })
            .options(named(PASSKEY_USER_INDEX))
            .build(),
    ];
    let challenge_indexes = vec![
        IndexModel::builder()
            .keys(doc! { challenge::EXPIRES_AT: 1 })
            .options(
                IndexOptions::builder()
                    .name(CHALLENGE_EXPIRY_INDEX.to_owned())
                    // Zero: each document expires at its own `expires_at`.
                    .expire_after(Duration::ZERO)
                    .build(),
            )
            .build(),
        IndexModel::builder()
            .keys(doc! { challenge::USER_ID: 1 })
            .options(named(CHALLENGE_USER_INDEX))
            .build(),
    ];
    for (collection, indexes) in [
        (codes, code_indexes),
        (passkeys, passkey_indexes),
        (challenges, challenge_indexes),
    ] {
        create(db, collection, indexes).await?;
    }
    Ok(())
}

/// Creates `indexes` on `collection`, naming the collection if the server refuses.
async fn create(
    db: &Database,
    collection: &str,
    indexes: impl IntoIterator<Item = IndexModel>,
) -> Result<(), EnsureIndexesError> {
    db.collection::<bson::Document>(collection)
        .create_indexes(indexes)
        .await
        .map_err(|source| EnsureIndexesError {
            collection: collection.to_owned(),
            source,
        })?;
    tracing::debug!(collection, "indexes in place");
    Ok(())
}

/// Why [`ensure_indexes`], [`ensure_throttle_and_audit_indexes`],
/// [`ensure_mail_indexes`] or [`ensure_factor_indexes`] failed, naming the collection.
#[derive(Debug, thiserror::Error)]
#[error("could not create the indexes of the MongoDB collection `{collection}`")]
pub struct EnsureIndexesError {
    collection: String,
    #[source]
    source: mongodb::error::Error,
}

impl EnsureIndexesError {
    /// Whether the server was out of reach rather than refusing an index.
    pub fn is_unavailable(&self) -> bool {
        crate::error::is_unavailable(&self.source)
    }

    /// The collection whose indexes failed.
    pub fn collection(&self) -> &str {
        &self.collection
    }
}
