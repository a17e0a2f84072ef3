//! In-memory stores with the contracts of the real ones, for tests of the layers above the
//! stores (the service, the router) that need no database.
//!
//! Both keep their state behind an `Arc<Mutex<..>>`: clones share it, so a test can keep a
//! clone to look at (or change) what the code under test stored. Every operation takes the
//! lock once and finishes under it, which makes each of them atomic, as a unique index or
//! a single-statement update is in a database. The lock is never held across an `.await`.
//!
//! Neither store ever reports a storage failure: tests that need one wrap a store.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use async_trait::async_trait;
use auth_domain::{
    session, Email, InsertUserError, NewUser, PasswordHash, RepositoryError, User, UserId,
    UserRepository, UserSessions, Username,
};
use time::OffsetDateTime;
use tower_sessions::{
    session::{Id, Record},
    session_store, SessionStore,
};

/// How many fresh ids `create` tries after collisions before giving up, as the real stores
/// do: with 128 random bits a second collision means a broken id generator.
const CREATE_ATTEMPTS: usize = 8;

/// Locks `mutex`. Every operation leaves the state consistent before it could panic (the
/// checks come first, the writes last), so a lock poisoned by a failed test is safe to use.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Users in memory, with the unique email and username of the real repositories.
#[derive(Clone, Default)]
pub struct MemoryUserRepository {
    users: Arc<Mutex<Users>>,
}

/// The users, and the two unique indexes.
#[derive(Default)]
struct Users {
    by_id: HashMap<UserId, User>,
    by_email: HashMap<Email, UserId>,
    by_username: HashMap<Username, UserId>,
}

impl MemoryUserRepository {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many users are stored.
    pub fn len(&self) -> usize {
        lock(&self.users).by_id.len()
    }

    /// True when no user is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// Counts only: a test's failure message has no use for addresses or hashes.
impl fmt::Debug for MemoryUserRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryUserRepository")
            .field("users", &self.len())
            .finish()
    }
}

impl UserRepository for MemoryUserRepository {
    async fn insert(&self, user: NewUser) -> Result<User, InsertUserError> {
        let mut users = lock(&self.users);
        // The email first: when both are taken (the default username is the email itself),
        // the email is what the user needs to hear about, as with the SQL stores.
        if users.by_email.contains_key(&user.email) {
            return Err(InsertUserError::EmailTaken);
        }
        if users.by_username.contains_key(&user.username) {
            return Err(InsertUserError::UsernameTaken);
        }
        // A primary-key violation is no business rule: the database would fail likewise.
        if users.by_id.contains_key(&user.id) {
            return Err(InsertUserError::Unexpected(RepositoryError::new(
                "insert user: the id is already in use",
            )));
        }
        let user = user.into_user();
        users.by_email.insert(user.email.clone(), user.id);
        users.by_username.insert(user.username.clone(), user.id);
        users.by_id.insert(user.id, user.clone());
        Ok(user)
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, RepositoryError> {
        Ok(lock(&self.users).by_id.get(&id).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        let users = lock(&self.users);
        Ok(users
            .by_email
            .get(email)
            .and_then(|id| users.by_id.get(id))
            .cloned())
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<User>, RepositoryError> {
        let users = lock(&self.users);
        Ok(users
            .by_username
            .get(username)
            .and_then(|id| users.by_id.get(id))
            .cloned())
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &PasswordHash,
        new: &PasswordHash,
    ) -> Result<bool, RepositoryError> {
        let mut users = lock(&self.users);
        match users.by_id.get_mut(&id) {
            Some(user) if user.password_hash == *current => {
                user.password_hash = new.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// Sessions in memory, keyed like the real stores by [`session::storage_key`] of the id and
/// indexed by the logged-in user ([`session::user_id`] of the data).
///
/// Expired sessions never load but stay stored until deleted: nothing purges them, as
/// nothing may be assumed to have purged them in a database either.
#[derive(Clone, Default)]
pub struct MemorySessionStore {
    sessions: Arc<Mutex<Sessions>>,
    /// The users a loaded session's owner is read from, as the SQL stores join them.
    users: Option<MemoryUserRepository>,
}

/// The sessions, and the index of them by user.
#[derive(Default)]
struct Sessions {
    by_key: HashMap<String, Stored>,
    by_user: HashMap<UserId, HashSet<String>>,
}

/// A session as stored.
struct Stored {
    data: HashMap<String, serde_json::Value>,
    user: Option<UserId>,
    expiry_date: OffsetDateTime,
}

impl Sessions {
    /// Stores `stored` under `key`, keeping the user index in step.
    fn put(&mut self, key: String, stored: Stored) {
        let previous = self.by_key.get(&key).map(|previous| previous.user);
        if let Some(previous) = previous.filter(|previous| *previous != stored.user) {
            self.unindex(&key, previous);
        }
        if let Some(user) = stored.user {
            self.by_user.entry(user).or_default().insert(key.clone());
        }
        self.by_key.insert(key, stored);
    }

    /// Removes the session under `key`, if there is one.
    fn remove(&mut self, key: &str) {
        if let Some(previous) = self.by_key.remove(key) {
            self.unindex(key, previous.user);
        }
    }

    /// Drops `key` from the index of `user`.
    fn unindex(&mut self, key: &str, user: Option<UserId>) {
        let Some(user) = user else { return };
        if let Some(keys) = self.by_user.get_mut(&user) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_user.remove(&user);
            }
        }
    }
}

impl MemorySessionStore {
    /// An empty store whose sessions load without an owner (see [`Self::with_users`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that loads each session with its owner from `users`, as stored at
    /// the time of the load: what the login manager needs.
    pub fn with_users(users: MemoryUserRepository) -> Self {
        Self {
            sessions: Arc::default(),
            users: Some(users),
        }
    }

    /// How many sessions are stored, expired ones included.
    pub fn len(&self) -> usize {
        lock(&self.sessions).by_key.len()
    }

    /// True when no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many sessions `user` is logged in on, expired ones included.
    pub fn user_session_count(&self, user: UserId) -> usize {
        lock(&self.sessions)
            .by_user
            .get(&user)
            .map_or(0, HashSet::len)
    }
}

// Counts only: ids and data are as secret here as in a database.
impl fmt::Debug for MemorySessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sessions = lock(&self.sessions);
        f.debug_struct("MemorySessionStore")
            .field("sessions", &sessions.by_key.len())
            .field("users", &sessions.by_user.len())
            .finish()
    }
}

fn key(id: &Id) -> String {
    session::storage_key(&id.to_string())
}

/// The record as stored: without the owner a load attached.
fn stored(record: &Record) -> Stored {
    let mut data = record.data.clone();
    session::take_owner(&mut data);
    Stored {
        user: session::user_id(&data),
        data,
        expiry_date: record.expiry_date,
    }
}

impl UserSessions for MemorySessionStore {
    async fn delete_user_sessions(&self, user: UserId) -> Result<u64, RepositoryError> {
        let mut sessions = lock(&self.sessions);
        let keys = sessions.by_user.remove(&user).unwrap_or_default();
        for key in &keys {
            sessions.by_key.remove(key);
        }
        Ok(keys.len() as u64)
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    /// Stores a new session; on an id collision, moves the record to a fresh id rather than
    /// overwrite anyone's session (an expired one included: it is still stored).
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut sessions = lock(&self.sessions);
        for _ in 0..CREATE_ATTEMPTS {
            let key = key(&record.id);
            if !sessions.by_key.contains_key(&key) {
                sessions.put(key, stored(record));
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(session_store::Error::Backend(format!(
            "create session failed: no free id after {CREATE_ATTEMPTS} attempts"
        )))
    }

    /// Updates a stored session; a session that is gone (logged out, revoked) stays gone.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let mut sessions = lock(&self.sessions);
        let key = key(&record.id);
        if sessions.by_key.contains_key(&key) {
            sessions.put(key, stored(record));
        }
        Ok(())
    }

    /// The session, unless it is unknown or expired, with its owner when this store knows
    /// the users.
    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let now = OffsetDateTime::now_utc();
        let Some(mut record) = lock(&self.sessions)
            .by_key
            .get(&key(session_id))
            .filter(|stored| stored.expiry_date > now)
            .map(|stored| Record {
                id: *session_id,
                data: stored.data.clone(),
                expiry_date: stored.expiry_date,
            })
        else {
            return Ok(None);
        };
        let owner = self.users.as_ref().and_then(|users| {
            let user = session::user_id(&record.data)?;
            lock(&users.users).by_id.get(&user).map(session::Owner::of)
        });
        if let Some(owner) = owner {
            session::put_owner(&mut record.data, &owner);
        }
        Ok(Some(record))
    }

    /// Removes the session; removing one that is gone is not an error.
    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        lock(&self.sessions).remove(&key(session_id));
        Ok(())
    }
}
