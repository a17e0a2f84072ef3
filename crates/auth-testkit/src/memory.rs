//! In-memory stores with the contracts of the real ones, for tests of the layers above the
//! stores (the service, the router) that need no database.
//!
//! Both keep their state behind an `Arc<Mutex<..>>`: clones share it, so a test can keep a
//! clone to look at (or change) what the code under test stored. Every operation takes the
//! lock once and finishes under it, which makes each of them atomic, as a unique index or
//! a single-statement update is in a database. The lock is never held across an `.await`.
//! Deleting a user also ends their sessions in every session store made
//! [`with_users`](MemorySessionStore::with_users) of that repository, under both locks,
//! as one transaction would; the users' lock is always taken first, never the reverse.
//!
//! Neither store ever reports a storage failure: tests that need one wrap a store.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError, Weak},
};

use async_trait::async_trait;
use auth_domain::{
    clock::Clock,
    session::{self, OwnedSession, SessionHandle, SessionInfo, StoredData},
    Email, InsertUserError, NewUser, OwnedSessions, PasswordHash, RepositoryError, User, UserId,
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
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Users in memory, with the unique email and username of the real repositories.
#[derive(Clone, Default)]
pub struct MemoryUserRepository {
    pub(crate) users: Arc<Mutex<Users>>,
    /// The sessions of the stores that load their owners from here: a deleted user's
    /// sessions end with them, as the real stores make sure.
    sessions: Arc<Mutex<Vec<Weak<Mutex<Sessions>>>>>,
}

/// The users, and the two unique indexes.
#[derive(Default)]
pub(crate) struct Users {
    pub(crate) by_id: HashMap<UserId, User>,
    pub(crate) by_email: HashMap<Email, UserId>,
    pub(crate) by_username: HashMap<Username, UserId>,
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

    async fn delete(&self, id: UserId) -> Result<bool, RepositoryError> {
        let mut users = lock(&self.users);
        let Some(user) = users.by_id.remove(&id) else {
            return Ok(false);
        };
        users.by_email.remove(&user.email);
        users.by_username.remove(&user.username);
        let mut stores = lock(&self.sessions);
        stores.retain(|sessions| match sessions.upgrade() {
            Some(sessions) => {
                lock(&sessions).remove_user(id);
                true
            }
            None => false,
        });
        Ok(true)
    }
}

/// Sessions in memory, keyed like the real stores by [`session::storage_key`] of the id and
/// indexed by the logged-in user ([`session::user_id`] of the data).
///
/// Expired sessions never load but stay stored until deleted: nothing purges them, as
/// nothing may be assumed to have purged them in a database either.
#[derive(Clone, Default)]
pub struct MemorySessionStore {
    pub(crate) sessions: Arc<Mutex<Sessions>>,
    /// The users a loaded session's owner is read from, as the SQL stores join them.
    users: Option<MemoryUserRepository>,
    /// What decides whether a session has expired.
    pub(crate) clock: Clock,
}

/// The sessions, and the index of them by user.
#[derive(Default)]
pub(crate) struct Sessions {
    pub(crate) by_key: HashMap<String, Stored>,
    by_user: HashMap<UserId, HashSet<String>>,
}

/// A session as stored.
pub(crate) struct Stored {
    pub(crate) data: HashMap<String, serde_json::Value>,
    pub(crate) user: Option<UserId>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) last_seen_at: OffsetDateTime,
    pub(crate) expiry_date: OffsetDateTime,
}

impl Stored {
    /// Whether it is still alive at `now`.
    pub(crate) fn is_live(&self, now: OffsetDateTime) -> bool {
        self.expiry_date > now
    }
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
    pub(crate) fn remove(&mut self, key: &str) {
        if let Some(previous) = self.by_key.remove(key) {
            self.unindex(key, previous.user);
        }
    }

    /// Removes every session of `user`, expired or not; returns how many.
    fn remove_user(&mut self, user: UserId) -> u64 {
        let keys = self.by_user.remove(&user).unwrap_or_default();
        for key in &keys {
            self.by_key.remove(key);
        }
        keys.len() as u64
    }

    /// Removes the live sessions of `user` that `pick` picks by key; returns how many.
    /// Expired ones stay, as they do in a database until the purge: they count for
    /// nothing, whenever the purge runs.
    fn remove_live(
        &mut self,
        user: UserId,
        now: OffsetDateTime,
        pick: impl Fn(&str) -> bool,
    ) -> u64 {
        let keys: Vec<String> = self
            .by_user
            .get(&user)
            .into_iter()
            .flatten()
            .filter(|key| pick(key))
            .filter(|key| {
                self.by_key
                    .get(*key)
                    .is_some_and(|stored| stored.is_live(now))
            })
            .cloned()
            .collect();
        for key in &keys {
            self.remove(key);
        }
        keys.len() as u64
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
        let sessions = Arc::default();
        lock(&users.sessions).push(Arc::downgrade(&sessions));
        Self {
            sessions,
            users: Some(users),
            clock: Clock::system(),
        }
    }

    /// The same store, telling expired sessions by `clock`.
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
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

/// The record as stored at `now`, first stored at `created_at`: without the owner a login
/// attached.
fn stored(record: &Record, created_at: OffsetDateTime, now: OffsetDateTime) -> Stored {
    let mut data = record.data.clone();
    session::take_owner(&mut data);
    Stored {
        user: session::user_id(&data),
        data,
        created_at,
        last_seen_at: now,
        expiry_date: record.expiry_date,
    }
}

impl MemorySessionStore {
    /// The live session `session_id`, with its owner when this store knows the users.
    fn live(&self, session_id: &str) -> Option<OwnedSession> {
        let now = self.clock.now();
        let (data, expires_at) = lock(&self.sessions)
            .by_key
            .get(&session::storage_key(session_id))
            .filter(|stored| stored.is_live(now))
            .map(|stored| (stored.data.clone(), stored.expiry_date))?;
        let owner = self.users.as_ref().and_then(|users| {
            let user = session::user_id(&data)?;
            lock(&users.users).by_id.get(&user).map(session::Owner::of)
        });
        Some(OwnedSession {
            data: StoredData::of(&data),
            expires_at,
            owner,
        })
    }
}

impl OwnedSessions for MemorySessionStore {
    async fn load_owned(&self, session_id: &str) -> Result<Option<OwnedSession>, RepositoryError> {
        Ok(self.live(session_id))
    }
}

impl UserSessions for MemorySessionStore {
    async fn list_user_sessions(&self, user: UserId) -> Result<Vec<SessionInfo>, RepositoryError> {
        let now = self.clock.now();
        let sessions = lock(&self.sessions);
        let mut listed: Vec<SessionInfo> = sessions
            .by_user
            .get(&user)
            .into_iter()
            .flatten()
            .filter_map(|key| Some((key, sessions.by_key.get(key)?)))
            .filter(|(_, stored)| stored.is_live(now))
            .map(|(key, stored)| {
                SessionInfo::from_stored(
                    SessionHandle::from_trusted(key.clone()),
                    stored.created_at,
                    stored.last_seen_at,
                    stored.expiry_date,
                    &stored.data,
                )
            })
            .collect();
        session::sort_for_listing(&mut listed);
        Ok(listed)
    }

    async fn delete_user_session(
        &self,
        user: UserId,
        handle: &SessionHandle,
    ) -> Result<bool, RepositoryError> {
        let deleted =
            lock(&self.sessions).remove_live(user, self.clock.now(), |key| key == handle.as_str());
        Ok(deleted > 0)
    }

    async fn delete_other_user_sessions(
        &self,
        user: UserId,
        keep: &SessionHandle,
    ) -> Result<u64, RepositoryError> {
        Ok(lock(&self.sessions).remove_live(user, self.clock.now(), |key| key != keep.as_str()))
    }

    async fn delete_user_sessions(&self, user: UserId) -> Result<u64, RepositoryError> {
        Ok(lock(&self.sessions).remove_user(user))
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
                let now = self.clock.now();
                sessions.put(key, stored(record, now, now));
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
        if let Some(created_at) = sessions.by_key.get(&key).map(|stored| stored.created_at) {
            sessions.put(key, stored(record, created_at, self.clock.now()));
        }
        Ok(())
    }

    /// The session, unless it is unknown or expired.
    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        self.live(&session_id.to_string())
            .map(|owned| {
                Ok(Record {
                    id: *session_id,
                    data: owned
                        .data
                        .parse()
                        .map_err(|e| session_store::Error::Decode(e.to_string()))?,
                    expiry_date: owned.expires_at,
                })
            })
            .transpose()
    }

    /// Removes the session; removing one that is gone is not an error.
    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        lock(&self.sessions).remove(&key(session_id));
        Ok(())
    }
}
