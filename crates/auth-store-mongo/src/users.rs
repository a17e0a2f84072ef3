//! Users as documents, behind the [`UserRepository`] port.

use std::fmt;

use auth_domain::{
    session::Credential, work::Refusal, Email, InsertUserError, NewUser, PasswordHash,
    RepositoryError, User, UserId, UserRepository, Username,
};
use bson::{doc, Document};
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};

use crate::{
    error::{duplicate_key_message, duplicated_field, repository_error, violated_index},
    sessions::fields as session_fields,
    timestamp, EMAIL_INDEX, USERNAME_INDEX,
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

impl MongoUserRepository {
    /// Hands the sessions of `id` logged in with `old` the credential `new`, which ends
    /// them at their next request.
    async fn rebind_sessions(
        &self,
        id: UserId,
        old: &Credential,
        new: &Credential,
    ) -> Result<(), RepositoryError> {
        self.sessions
            .update_many(
                doc! {
                    session_fields::USER_ID: id.to_string(),
                    session_fields::OWNER_CREDENTIAL: old.as_str(),
                },
                doc! { "$set": { session_fields::OWNER_CREDENTIAL: new.as_str() } },
            )
            .await
            .map_err(|e| repository_error("update session owners", &e))?;
        Ok(())
    }

    /// Hands every session of `id` that carries a snapshot the credential `new`: a
    /// password set whatever it was ends every login made before it.
    async fn rebind_all_sessions(
        &self,
        id: UserId,
        new: &Credential,
    ) -> Result<(), RepositoryError> {
        self.update_snapshots(
            "update session owners",
            doc! { session_fields::OWNER_CREDENTIAL: { "$exists": true } },
            id,
            doc! { session_fields::OWNER_CREDENTIAL: new.as_str() },
        )
        .await
    }

    /// Sets `set` in the snapshots of `id`'s sessions that `filter` picks.
    async fn update_snapshots(
        &self,
        operation: &'static str,
        mut filter: Document,
        id: UserId,
        set: Document,
    ) -> Result<(), RepositoryError> {
        filter.insert(session_fields::USER_ID, id.to_string());
        self.sessions
            .update_many(filter, doc! { "$set": set })
            .await
            .map_err(|e| repository_error(operation, &e))?;
        Ok(())
    }

    /// Sets `id`'s password hash (and credential) to `new` whatever it was; whether there
    /// is such a user. Ordered to fail safe as [`UserRepository::replace_password_hash`]
    /// is: the sessions are handed the new credential (which ends them) before the hash
    /// changes and again after, for logins that verified the old one meanwhile.
    pub(crate) async fn set_password(
        &self,
        id: UserId,
        new: &PasswordHash,
    ) -> Result<bool, RepositoryError> {
        let credential = Credential::of(new);
        self.rebind_all_sessions(id, &credential).await?;
        let result = self
            .users
            .update_one(
                doc! { fields::ID: id.to_string() },
                doc! { "$set": {
                    fields::PASSWORD_HASH: new.as_str(),
                    fields::CREDENTIAL: credential.as_str(),
                } },
            )
            .await
            .map_err(|e| repository_error("set password hash", &e))?;
        if result.matched_count != 1 {
            return Ok(false);
        }
        self.rebind_all_sessions(id, &credential).await?;
        Ok(true)
    }

    /// Moves `id` from the address `from` to `to`, verified, if `from` is still theirs; a
    /// default username (the address itself) follows it. Then the snapshots in their
    /// sessions follow (they show the address; the credential decides who is logged in).
    pub(crate) async fn set_email(
        &self,
        id: UserId,
        from: &Email,
        to: &Email,
    ) -> Result<Result<(), Refusal>, RepositoryError> {
        let moved = |username: bool| {
            let mut set = doc! { fields::EMAIL: to.as_str(), fields::EMAIL_VERIFIED: true };
            if username {
                set.insert(fields::USERNAME, to.as_str());
            }
            set
        };
        // Two compare-and-sets rather than one conditional update, which needs an
        // aggregation pipeline: the first matches only a default username.
        let mut follows = true;
        for filter in [
            doc! { fields::ID: id.to_string(), fields::EMAIL: from.as_str(), fields::USERNAME: from.as_str() },
            doc! { fields::ID: id.to_string(), fields::EMAIL: from.as_str() },
        ] {
            match self
                .users
                .update_one(filter, doc! { "$set": moved(follows) })
                .await
            {
                Ok(result) if result.matched_count == 1 => {
                    let mut set = doc! {
                        session_fields::OWNER_EMAIL: to.as_str(),
                        session_fields::OWNER_EMAIL_VERIFIED: true,
                    };
                    if follows {
                        set.insert(session_fields::OWNER_USERNAME, to.as_str());
                    }
                    self.update_snapshots(
                        "update session owners",
                        doc! { session_fields::OWNER_EMAIL: from.as_str() },
                        id,
                        set,
                    )
                    .await?;
                    return Ok(Ok(()));
                }
                Ok(_) => follows = false,
                // The new address is another account's email, or its default username.
                Err(error) if duplicate_key_message(&error).is_some() => {
                    return Ok(Err(Refusal::EmailTaken))
                }
                Err(error) => return Err(repository_error("set email", &error)),
            }
        }
        Ok(Err(Refusal::Stale))
    }

    /// Marks `id`'s address verified if it is still `email`, in the user and in the
    /// snapshots of their sessions; whether it is.
    pub(crate) async fn mark_email_verified(
        &self,
        id: UserId,
        email: &Email,
    ) -> Result<bool, RepositoryError> {
        let result = self
            .users
            .update_one(
                doc! { fields::ID: id.to_string(), fields::EMAIL: email.as_str() },
                doc! { "$set": { fields::EMAIL_VERIFIED: true } },
            )
            .await
            .map_err(|e| repository_error("mark email verified", &e))?;
        if result.matched_count != 1 {
            return Ok(false);
        }
        self.update_snapshots(
            "update session owners",
            doc! { session_fields::OWNER_EMAIL: email.as_str() },
            id,
            doc! { session_fields::OWNER_EMAIL_VERIFIED: true },
        )
        .await?;
        Ok(true)
    }

    /// Deletes every session of `id`.
    pub(crate) async fn delete_sessions(&self, id: UserId) -> Result<(), RepositoryError> {
        self.sessions
            .delete_many(doc! { session_fields::USER_ID: id.to_string() })
            .await
            .map_err(|e| repository_error("delete user sessions", &e))?;
        Ok(())
    }
}

impl MongoUserRepository {
    /// Stores `user`; the unique indexes tell a taken email or username.
    pub(crate) async fn insert_user(&self, user: &User) -> Result<(), InsertUserError> {
        match self.users.insert_one(UserDocument::try_from(user)?).await {
            Ok(_) => Ok(()),
            Err(error) => Err(insert_error(&error)),
        }
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
        self.insert_user(&user).await?;
        Ok(user)
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

    /// Ordered to fail safe, with `MongoSessionStore::create` (no transaction spans two
    /// collections on a standalone server):
    /// 1. every session bound to `current` is handed the new credential, which no login
    ///    made with `current` carries: they end now, and stay ended if what follows fails
    ///    or loses a race (then the hash is not `current` any more either);
    /// 2. the hash and its credential are swapped, compare-and-set;
    /// 3. step 1 again, for the sessions of logins that verified `current` and were
    ///    inserted meanwhile. A login inserted after step 3 reads the new credential when
    ///    it checks its session, and deletes it.
    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &PasswordHash,
        new: &PasswordHash,
    ) -> Result<bool, RepositoryError> {
        let (old_credential, new_credential) = (Credential::of(current), Credential::of(new));
        self.rebind_sessions(id, &old_credential, &new_credential)
            .await?;
        let result = self
            .users
            .update_one(
                doc! { fields::ID: id.to_string(), fields::PASSWORD_HASH: current.as_str() },
                doc! { "$set": {
                    fields::PASSWORD_HASH: new.as_str(),
                    fields::CREDENTIAL: new_credential.as_str(),
                } },
            )
            .await
            .map_err(|e| repository_error("update password hash", &e))?;
        if result.matched_count != 1 {
            return Ok(false);
        }
        self.rebind_sessions(id, &old_credential, &new_credential)
            .await?;
        Ok(true)
    }

    /// A session loads with the snapshot of its user kept in its own document, never with
    /// the user's document: left alone, the sessions would stay logged in after the user
    /// is gone. So they are deleted before the user (if the rest fails, nobody stays
    /// logged in) and again after, for the logins that read the user before it went and
    /// inserted their session in between; a login that inserts later finds no user when it
    /// reads the user again after storing its session (the login manager does), and
    /// deletes it.
    async fn delete(&self, id: UserId) -> Result<bool, RepositoryError> {
        self.delete_sessions(id).await?;
        let deleted = self
            .users
            .delete_one(doc! { fields::ID: id.to_string() })
            .await
            .map_err(|e| repository_error("delete user", &e))?;
        self.delete_sessions(id).await?;
        Ok(deleted.deleted_count == 1)
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
