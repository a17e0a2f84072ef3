//! Users as documents, behind the [`UserRepository`] port.

use std::fmt;

use auth_domain::{
    Email, InsertUserError, NewUser, PasswordHash, RepositoryError, User, UserId, UserRepository,
    Username,
};
use bson::{doc, DateTime};
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};

use crate::{
    error::{duplicate_key_message, duplicated_field, violated_index, DriverError},
    timestamp, EMAIL_INDEX, USERNAME_INDEX,
};

/// Field names, shared with the index declarations.
pub(crate) mod fields {
    pub(crate) const ID: &str = "_id";
    pub(crate) const EMAIL: &str = "email";
    pub(crate) const USERNAME: &str = "username";
    pub(crate) const PASSWORD_HASH: &str = "password_hash";
}

/// A user as stored. `_id` is the UUID's string form, like the sessions' `user_id`.
#[derive(Serialize, Deserialize)]
struct UserDocument {
    #[serde(rename = "_id")]
    id: String,
    email: String,
    username: String,
    password_hash: String,
    created_at: DateTime,
    /// What `created_at` lost below the millisecond; absent means none.
    #[serde(default)]
    created_at_sub_ms_ns: i64,
}

impl From<&NewUser> for UserDocument {
    fn from(user: &NewUser) -> Self {
        let (created_at, created_at_sub_ms_ns) = timestamp::split(user.created_at);
        Self {
            id: user.id.to_string(),
            email: user.email.as_str().to_owned(),
            username: user.username.as_str().to_owned(),
            password_hash: user.password_hash.as_str().to_owned(),
            created_at,
            created_at_sub_ms_ns,
        }
    }
}

impl TryFrom<UserDocument> for User {
    type Error = RepositoryError;

    fn try_from(doc: UserDocument) -> Result<Self, Self::Error> {
        let id = doc
            .id
            .parse()
            .map_err(|_| RepositoryError::new("a stored user has a malformed _id"))?;
        let created_at = timestamp::join(doc.created_at, doc.created_at_sub_ms_ns)
            .ok_or_else(|| RepositoryError::new("a stored user has a malformed created_at"))?;
        Ok(User {
            id,
            email: Email::from_trusted(doc.email),
            username: Username::from_trusted(doc.username),
            password_hash: PasswordHash::from_trusted(doc.password_hash),
            created_at,
        })
    }
}

/// The users collection as a [`UserRepository`]. Cheap to clone: clones share one client.
#[derive(Clone)]
pub struct MongoUserRepository {
    users: Collection<UserDocument>,
}

impl MongoUserRepository {
    /// The repository over `collection` of `db`; [`crate::ensure_indexes`] must have run
    /// for uniqueness to hold.
    pub fn new(db: &Database, collection: &str) -> Self {
        Self {
            users: db.collection(collection),
        }
    }

    /// Every filter is built here from a typed value that serialises as a BSON string, so
    /// no operator object (`{"$ne": null}`) can reach a query.
    async fn find_one_by(
        &self,
        field: &'static str,
        value: &str,
    ) -> Result<Option<User>, RepositoryError> {
        self.users
            .find_one(doc! { field: value })
            .await
            .map_err(|e| RepositoryError::new(DriverError::new("find user", &e)))?
            .map(User::try_from)
            .transpose()
    }
}

impl fmt::Debug for MongoUserRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoUserRepository")
            .field("collection", &self.users.namespace().to_string())
            .finish()
    }
}

impl UserRepository for MongoUserRepository {
    async fn insert(&self, user: NewUser) -> Result<User, InsertUserError> {
        match self.users.insert_one(UserDocument::from(&user)).await {
            Ok(_) => Ok(user.into_user()),
            Err(error) => Err(insert_error(&error)),
        }
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, RepositoryError> {
        self.find_one_by(fields::ID, &id.to_string()).await
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        self.find_one_by(fields::EMAIL, email.as_str()).await
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<User>, RepositoryError> {
        self.find_one_by(fields::USERNAME, username.as_str()).await
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &PasswordHash,
        new: &PasswordHash,
    ) -> Result<bool, RepositoryError> {
        // Compare-and-set in one statement: the filter only matches while the hash is
        // still the one the caller verified.
        let result = self
            .users
            .update_one(
                doc! { fields::ID: id.to_string(), fields::PASSWORD_HASH: current.as_str() },
                doc! { "$set": { fields::PASSWORD_HASH: new.as_str() } },
            )
            .await
            .map_err(|e| RepositoryError::new(DriverError::new("update password hash", &e)))?;
        Ok(result.matched_count == 1)
    }
}

/// Turns a failed insert into the domain's answer: which unique index refused it.
fn insert_error(error: &mongodb::error::Error) -> InsertUserError {
    if let Some(message) = duplicate_key_message(error) {
        let by_name = match violated_index(message) {
            Some(EMAIL_INDEX) => Some(InsertUserError::EmailTaken),
            Some(USERNAME_INDEX) => Some(InsertUserError::UsernameTaken),
            _ => None,
        };
        // An index made by hand under another name still names its field.
        let by_field = || match duplicated_field(message) {
            Some(fields::EMAIL) => Some(InsertUserError::EmailTaken),
            Some(fields::USERNAME) => Some(InsertUserError::UsernameTaken),
            _ => None,
        };
        if let Some(taken) = by_name.or_else(by_field) {
            return taken;
        }
    }
    InsertUserError::Unexpected(RepositoryError::new(DriverError::new("insert user", error)))
}
