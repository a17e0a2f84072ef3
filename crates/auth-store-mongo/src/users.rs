//! Users as documents, behind the [`UserRepository`] port.

use std::fmt;

use auth_domain::{
    session::Credential, Email, InsertUserError, NewUser, PasswordHash, RepositoryError, User,
    UserId, UserRepository, Username,
};
use bson::{doc, Document};
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};

use crate::{
    error::{duplicate_key_message, duplicated_field, repository_error, violated_index},
    sessions::fields as session_fields,
    timestamp,
    tx::{run, Failure, Tx},
    EMAIL_INDEX, USERNAME_INDEX,
};

/// Field names, shared with the index declarations.
pub(crate) mod fields {
    pub(crate) const ID: &str = "_id";
    pub(crate) const EMAIL: &str = "email";
    pub(crate) const USERNAME: &str = "username";
    pub(crate) const PASSWORD_HASH: &str = "password_hash";
    /// [`Credential::of`] the password hash, written with it: what a login's session is
    /// checked against.
    pub(crate) const CREDENTIAL: &str = "credential";
    pub(crate) const EMAIL_VERIFIED: &str = "email_verified";
}

/// A user as stored. `_id` is the UUID's string form, like the sessions' `user_id`.
#[derive(Serialize, Deserialize)]
pub(crate) struct UserDocument {
    #[serde(rename = "_id")]
    id: String,
    email: String,
    username: String,
    password_hash: String,
    /// [`Credential::of`] the password hash.
    credential: String,
    /// When the user registered, in microseconds since the Unix epoch (see
    /// [`crate::timestamp`]).
    created_at_us: i64,
    /// Whether the user followed a link mailed to `email`; absent on users stored before
    /// there was such a thing, who are unverified.
    #[serde(default)]
    email_verified: bool,
}

impl TryFrom<&User> for UserDocument {
    type Error = RepositoryError;

    fn try_from(user: &User) -> Result<Self, Self::Error> {
        let created_at_us = timestamp::micros(user.created_at)
            .ok_or_else(|| RepositoryError::new("created_at is out of range"))?;
        Ok(Self {
            id: user.id.to_string(),
            email: user.email.as_str().to_owned(),
            username: user.username.as_str().to_owned(),
            password_hash: user.password_hash.as_str().to_owned(),
            credential: Credential::of(&user.password_hash).as_str().to_owned(),
            created_at_us,
            email_verified: user.email_verified,
        })
    }
}

impl TryFrom<UserDocument> for User {
    type Error = RepositoryError;

    fn try_from(doc: UserDocument) -> Result<Self, Self::Error> {
        let id = doc
            .id
            .parse()
            .map_err(|_| RepositoryError::new("a stored user has a malformed _id"))?;
        let created_at = timestamp::read(doc.created_at_us)
            .ok_or_else(|| RepositoryError::new("a stored user has a malformed created_at"))?;
        Ok(User {
            id,
            email: Email::from_trusted(doc.email),
            username: Username::from_trusted(doc.username),
            password_hash: PasswordHash::from_trusted(doc.password_hash),
            created_at,
            email_verified: doc.email_verified,
        })
    }
}

/// The users collection as a [`UserRepository`]. Cheap to clone: clones share one client.
#[derive(Clone)]
pub struct MongoUserRepository {
    pub(crate) users: Collection<UserDocument>,
    /// The sessions, whose snapshots of their user this repository keeps current.
    sessions: Collection<Document>,
}

impl MongoUserRepository {
    /// The repository over the `users` collection of `db`, keeping the user snapshots in
    /// the `sessions` collection current; [`crate::ensure_indexes`] must have run for
    /// uniqueness to hold.
    pub fn new(db: &Database, users: &str, sessions: &str) -> Self {
        Self {
            users: db.collection(users),
            sessions: db.collection(sessions),
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
            .map_err(|e| repository_error("find user", &e))?
            .map(User::try_from)
            .transpose()
    }
}

/// The writes of the user repository and of a unit of work, each in `tx`'s transaction
/// when there is one. They answer with the driver's error, which the caller describes (and
/// a transaction reads its labels to retry).
impl MongoUserRepository {
    /// Sets `set` in the snapshots of `id`'s sessions that `filter` picks.
    async fn update_snapshots(
        &self,
        tx: &mut Tx<'_>,
        mut filter: Document,
        id: UserId,
        set: Document,
    ) -> Result<(), mongodb::error::Error> {
        filter.insert(session_fields::USER_ID, id.to_string());
        run!(tx, self.sessions.update_many(filter, doc! { "$set": set }))?;
        Ok(())
    }

    /// Hands the sessions of `id` logged in with `old` (with any, given `None`) the
    /// credential `new`, which ends them at their next request.
    pub(crate) async fn rebind_sessions(
        &self,
        tx: &mut Tx<'_>,
        id: UserId,
        old: Option<&Credential>,
        new: &Credential,
    ) -> Result<(), mongodb::error::Error> {
        let filter = match old {
            Some(old) => doc! { session_fields::OWNER_CREDENTIAL: old.as_str() },
            // Only sessions with a snapshot: `$set` would make one of a bare credential.
            None => doc! { session_fields::OWNER_CREDENTIAL: { "$exists": true } },
        };
        self.update_snapshots(
            tx,
            filter,
            id,
            doc! { session_fields::OWNER_CREDENTIAL: new.as_str() },
        )
        .await
    }

    /// Stores `user`; the caller tells a taken email or username by [`insert_error`].
    pub(crate) async fn insert_in(&self, tx: &mut Tx<'_>, user: &User) -> Result<(), Failure> {
        let document = UserDocument::try_from(user)?;
        run!(tx, self.users.insert_one(document))?;
        Ok(())
    }

    /// Sets `id`'s password hash (and credential) to `new` if it is still `current`, or
    /// whatever it is with `None`; whether it did. Ordered to fail safe without a
    /// transaction, with `MongoSessionStore::create`:
    /// 1. every session bound to the old credential is handed the new one, which no login
    ///    made before carries: they end now, and stay ended if what follows fails or loses
    ///    a race (then the hash is not `current` any more either);
    /// 2. the hash and its credential are swapped, compare-and-set;
    /// 3. step 1 again, for the sessions of logins that verified the old hash and were
    ///    inserted meanwhile. A login inserted after step 3 reads the new credential when
    ///    it checks its session, and deletes it.
    pub(crate) async fn set_password_in(
        &self,
        tx: &mut Tx<'_>,
        id: UserId,
        current: Option<&PasswordHash>,
        new: &PasswordHash,
    ) -> Result<bool, mongodb::error::Error> {
        let old = current.map(Credential::of);
        let new_credential = Credential::of(new);
        self.rebind_sessions(tx, id, old.as_ref(), &new_credential)
            .await?;
        let mut filter = doc! { fields::ID: id.to_string() };
        if let Some(current) = current {
            filter.insert(fields::PASSWORD_HASH, current.as_str());
        }
        let update = doc! { "$set": {
            fields::PASSWORD_HASH: new.as_str(),
            fields::CREDENTIAL: new_credential.as_str(),
        } };
        let result = run!(tx, self.users.update_one(filter, update))?;
        if result.matched_count != 1 {
            return Ok(false);
        }
        self.rebind_sessions(tx, id, old.as_ref(), &new_credential)
            .await?;
        Ok(true)
    }

    /// Moves `id` from the address `from` to `to`, verified, if `from` is still theirs; a
    /// default username (the address itself) follows it. Then the snapshots in their
    /// sessions follow (they show the address; the credential decides who is logged in).
    /// A duplicate key error says `to` is taken.
    pub(crate) async fn set_email_in(
        &self,
        tx: &mut Tx<'_>,
        id: UserId,
        from: &Email,
        to: &Email,
    ) -> Result<bool, mongodb::error::Error> {
        // Two compare-and-sets rather than one conditional update, which needs an
        // aggregation pipeline: the first matches only a default username.
        for follows in [true, false] {
            let mut filter = doc! { fields::ID: id.to_string(), fields::EMAIL: from.as_str() };
            let mut set = doc! { fields::EMAIL: to.as_str(), fields::EMAIL_VERIFIED: true };
            let mut snapshot = doc! {
                session_fields::OWNER_EMAIL: to.as_str(),
                session_fields::OWNER_EMAIL_VERIFIED: true,
            };
            if follows {
                filter.insert(fields::USERNAME, from.as_str());
                set.insert(fields::USERNAME, to.as_str());
                snapshot.insert(session_fields::OWNER_USERNAME, to.as_str());
            }
            let result = run!(tx, self.users.update_one(filter, doc! { "$set": set }))?;
            if result.matched_count == 1 {
                let filter = doc! { session_fields::OWNER_EMAIL: from.as_str() };
                self.update_snapshots(tx, filter, id, snapshot).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Marks `id`'s address verified if it is still `email`, in the user and in the
    /// snapshots of their sessions; whether it is.
    pub(crate) async fn mark_email_verified_in(
        &self,
        tx: &mut Tx<'_>,
        id: UserId,
        email: &Email,
    ) -> Result<bool, mongodb::error::Error> {
        let filter = doc! { fields::ID: id.to_string(), fields::EMAIL: email.as_str() };
        let update = doc! { "$set": { fields::EMAIL_VERIFIED: true } };
        let result = run!(tx, self.users.update_one(filter, update))?;
        if result.matched_count != 1 {
            return Ok(false);
        }
        let filter = doc! { session_fields::OWNER_EMAIL: email.as_str() };
        let set = doc! { session_fields::OWNER_EMAIL_VERIFIED: true };
        self.update_snapshots(tx, filter, id, set).await?;
        Ok(true)
    }

    /// Deletes every session of `id`.
    pub(crate) async fn delete_sessions_in(
        &self,
        tx: &mut Tx<'_>,
        id: UserId,
    ) -> Result<(), mongodb::error::Error> {
        let filter = doc! { session_fields::USER_ID: id.to_string() };
        run!(tx, self.sessions.delete_many(filter))?;
        Ok(())
    }

    /// Deletes `id` and their sessions; whether there was such a user. A session loads
    /// with the snapshot of its user kept in its own document, never with the user's
    /// document: left alone, the sessions would stay logged in after the user is gone. So
    /// they are deleted before the user (if the rest fails, nobody stays logged in) and
    /// again after, for the logins that read the user before it went and inserted their
    /// session in between; a login that inserts later finds no user when it reads the user
    /// again after storing its session (the login manager does), and deletes it.
    pub(crate) async fn delete_in(
        &self,
        tx: &mut Tx<'_>,
        id: UserId,
    ) -> Result<bool, mongodb::error::Error> {
        self.delete_sessions_in(tx, id).await?;
        let deleted = run!(
            tx,
            self.users.delete_one(doc! { fields::ID: id.to_string() })
        )?;
        self.delete_sessions_in(tx, id).await?;
        Ok(deleted.deleted_count == 1)
    }
}

impl fmt::Debug for MongoUserRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoUserRepository")
            .field("collection", &self.users.namespace().to_string())
            .field("sessions", &self.sessions.namespace().to_string())
            .finish()
    }
}

impl UserRepository for MongoUserRepository {
    async fn insert(&self, user: NewUser) -> Result<User, InsertUserError> {
        // What is written is what is returned: the user at the domain's precision.
        let user = user.into_user();
        match self.insert_in(&mut None, &user).await {
            Ok(()) => Ok(user),
            Err(Failure::Driver(error)) => Err(insert_error(&error)),
            Err(Failure::Invalid(error)) => Err(error.into()),
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

    /// Compare-and-set, ordered to fail safe (see `set_password_in`): no transaction
    /// spans two collections on a standalone server.
    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &PasswordHash,
        new: &PasswordHash,
    ) -> Result<bool, RepositoryError> {
        self.set_password_in(&mut None, id, Some(current), new)
            .await
            .map_err(|e| repository_error("update password hash", &e))
    }

    /// The sessions go before the user and again after (see `delete_in`).
    async fn delete(&self, id: UserId) -> Result<bool, RepositoryError> {
        self.delete_in(&mut None, id)
            .await
            .map_err(|e| repository_error("delete user", &e))
    }
}

/// Turns a failed insert into the domain's answer: which unique index refused it.
pub(crate) fn insert_error(error: &mongodb::error::Error) -> InsertUserError {
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
    InsertUserError::Unexpected(repository_error("insert user", error))
}

#[cfg(test)]
mod tests {
    use auth_domain::timestamp::truncate_to_micros;
    use bson::Document;
    use time::macros::datetime;

    use super::*;

    fn user() -> User {
        let email = Email::parse("ada@example.com").expect("valid");
        User {
            id: UserId::generate(),
            username: Username::from_email(&email),
            email,
            password_hash: PasswordHash::from_trusted("$argon2id$stand-in".into()),
            created_at: datetime!(2026-11-28 11:46:53.123_456 UTC),
            email_verified: false,
        }
    }

    fn encode(user: &User) -> Document {
        bson::to_document(&UserDocument::try_from(user).expect("in range")).expect("encodes")
    }

    /// As the driver reads a document: from its bytes.
    fn decode(document: &Document) -> User {
        let bytes = bson::to_vec(document).expect("encodes");
        let document: UserDocument = bson::from_slice(&bytes).expect("a user document");
        User::try_from(document).expect("a valid user")
    }

    #[test]
    fn a_user_document_holds_microseconds_and_reads_back_exactly() {
        let user = user();
        let document = encode(&user);
        assert_eq!(document.get_i64("created_at_us"), Ok(1_795_866_413_123_456));
        assert!(
            document.keys().all(|key| !key.ends_with("_sub_ms_ns")),
            "{document}"
        );
        assert!(!document.contains_key("created_at"), "{document}");
        assert_eq!(decode(&document), user);
    }

    #[test]
    fn a_finer_time_is_stored_cut_to_the_microsecond() {
        let finer = datetime!(2026-11-28 11:46:53.123_456_789 UTC);
        let user = User {
            created_at: finer,
            ..user()
        };
        let document = encode(&user);
        assert_eq!(decode(&document).created_at, truncate_to_micros(finer));
    }
}
