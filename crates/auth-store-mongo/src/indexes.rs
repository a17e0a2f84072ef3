//! The indexes of both collections, declared once.

use std::time::Duration;

use bson::doc;
use mongodb::{options::IndexOptions, Database, IndexModel};

use crate::{sessions::fields as session, users::fields as user};

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
        db.collection::<bson::Document>(collection)
            .create_indexes(indexes)
            .await
            .map_err(|source| EnsureIndexesError {
                collection: collection.to_owned(),
                source,
            })?;
        tracing::debug!(collection, "indexes in place");
    }
    Ok(())
}

/// Why [`ensure_indexes`] failed, naming the collection.
#[derive(Debug, thiserror::Error)]
#[error("could not create the indexes of the MongoDB collection `{collection}`")]
pub struct EnsureIndexesError {
    collection: String,
    #[source]
    source: mongodb::error::Error,
}

impl EnsureIndexesError {
    /// The collection whose indexes failed.
    pub fn collection(&self) -> &str {
        &self.collection
    }
}
