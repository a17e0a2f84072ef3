//! What a session holds: the one place that knows the shape of a session's data.
//!
//! A logged-in session holds a [`Login`]: who, the [`Credential`] they logged in with, and
//! when the session was last written (the rolling renewal's clock). Stores read the user id
//! from it ([`user_id`]) to keep it in an indexed field, so that a user's sessions can be
//! found and ended.
//!
//! A store loads the session's user in the same round trip as the session (a join, or a
//! snapshot kept in the session document) and hands it over, typed, as the session's
//! [`Owner`] beside its data ([`OwnedSession`], through
//! [`OwnedSessions`](crate::OwnedSessions)). The owner is never part of what a store
//! writes as session data: it is a view of the user as stored now, which is what lets a
//! changed password or a deleted user end the session on the very next request. Only a
//! login hands one to a store through the data ([`put_owner`], [`take_owner`]), for a
//! store that keeps a snapshot of the user in the session (MongoDB).

mod device;
mod listing;

use std::{collections::HashMap, fmt};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub use self::{
    device::{clean_user_agent, Device, MAX_USER_AGENT_CHARS},
    listing::{sort_for_listing, NotAHandle, SessionHandle, SessionInfo},
};
use crate::{Email, PasswordHash, User, UserId, Username};

/// A session's data, as tower-sessions keeps it.
pub type Data = HashMap<String, Value>;

const LOGIN_KEY: &str = "auth.login";
const OWNER_KEY: &str = "auth.owner";

/// Every key this module may read or write in a session's data. A session adapter that
/// cannot hand over the whole data (tower-sessions' `Session`) copies these in and out;
/// what they hold is this module's business alone.
pub const KEYS: [&str; 2] = [LOGIN_KEY, OWNER_KEY];

/// What ties a session to the password its user logged in with: the hex SHA-256 of the
/// stored password hash. A new password (or a re-hash) changes it, which ends every
/// session made before; the hash itself is never written into a session. Stores keep it
/// beside the hash, written with it, so that loading a session computes no digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Credential(String);

impl Credential {
    /// The credential of this stored password hash.
    pub fn of(hash: &PasswordHash) -> Self {
        Self(hex_sha256(hash.as_str()))
    }

    /// The hex digest, for a store's snapshot of the user.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A credential a store kept, as [`as_str`](Self::as_str) gave it.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }
}

/// Who is logged in on a session, since when, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// The user.
    pub user_id: UserId,
    /// The password they logged in with; the session ends when it no longer matches.
    pub credential: Credential,
    /// When the session was last written, in unix seconds.
    pub renewed_at: i64,
    /// When the user logged in, in unix milliseconds (the absolute deadline is kept to the
    /// millisecond, not cut to a second).
    pub logged_in_at_ms: i64,
    /// Whether the cookie outlives the browser ("remember me"); `false` makes it a browser
    /// session cookie. The stored session expires the same either way.
    pub persistent: bool,
    /// The device the login came from.
    pub device: Device,
    /// Whether the password was right but a second factor is still owed: such a session
    /// may only complete the second step or log out, and lives [`PENDING_LIFETIME`].
    /// Absent from the stored text of a whole login, which reads as `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaiting_second_factor: bool,
    /// When the user last proved themselves again for a sensitive action (step-up), in
    /// unix milliseconds; the login itself counts as a proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reauthenticated_at_ms: Option<i64>,
}

/// How long a half-authenticated session waits for its second factor.
pub const PENDING_LIFETIME: time::Duration = time::Duration::minutes(5);

/// How long a proof (the login, a step-up) lets sensitive actions through.
pub const FRESH_PROOF: time::Duration = time::Duration::minutes(5);

/// How long sessions live: idle, and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Without activity (`PERMANENT_SESSION_LIFETIME`).
    pub idle: time::Duration,
    /// From the login on, whatever the activity (`SESSION_ABSOLUTE_LIFETIME`).
    pub absolute: time::Duration,
}

impl Login {
    /// A login of `user` at `now`, with a persistent cookie and no device data.
    pub fn new(user: &User, now: OffsetDateTime) -> Self {
        Self {
            user_id: user.id,
            credential: Credential::of(&user.password_hash),
            renewed_at: now.unix_timestamp(),
            logged_in_at_ms: unix_millis(now),
            persistent: true,
            device: Device::default(),
            awaiting_second_factor: false,
            reauthenticated_at_ms: None,
        }
    }

    /// When the user last proved who they are: the login, or a later step-up.
    pub fn last_proof_at(&self) -> OffsetDateTime {
        let latest = self
            .reauthenticated_at_ms
            .map_or(self.logged_in_at_ms, |at| at.max(self.logged_in_at_ms));
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(latest) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Whether a proof within [`FRESH_PROOF`] of `now` lets a sensitive action through.
    pub fn has_fresh_proof(&self, now: OffsetDateTime) -> bool {
        !self.awaiting_second_factor && now - self.last_proof_at() <= FRESH_PROOF
    }

    /// This login, proven again at `now`.
    pub fn reauthenticated(&self, now: OffsetDateTime) -> Self {
        Self {
            reauthenticated_at_ms: Some(unix_millis(now)),
            ..self.clone()
        }
    }

    /// When the user logged in (the epoch for a stamp out of range).
    pub fn logged_in_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.logged_in_at_ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// When the session ends if it is not renewed: the idle lifetime after its last
    /// write (whose stamp is cut to the second), but never past the absolute lifetime
    /// after the login.
    pub fn expires_at(&self, lifetimes: Lifetimes) -> OffsetDateTime {
        let renewed_at = OffsetDateTime::from_unix_timestamp(self.renewed_at)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        self.expiry_from(renewed_at, lifetimes)
    }

    /// The expiry of a write of this login at `now`: the idle lifetime from `now`, capped
    /// at the absolute deadline. What the session and its cookie are given when written.
    pub fn expiry_from(&self, now: OffsetDateTime, lifetimes: Lifetimes) -> OffsetDateTime {
        let absolute = if self.awaiting_second_factor {
            lifetimes.absolute.min(PENDING_LIFETIME)
        } else {
            lifetimes.absolute
        };
        now.saturating_add(lifetimes.idle)
            .min(self.logged_in_at().saturating_add(absolute))
    }

    /// This login renewed at `now`, when a write is worth it: past half the idle lifetime
    /// since the last write (see [`is_renewal_due`](Self::is_renewal_due)), and only if it
    /// moves the expiry, which stops moving at the absolute deadline.
    pub fn renewed(&self, lifetimes: Lifetimes, now: OffsetDateTime) -> Option<Self> {
        if !self.is_renewal_due(lifetimes.idle, now) {
            return None;
        }
        let renewed = Self {
            renewed_at: now.unix_timestamp(),
            ..self.clone()
        };
        (renewed.expiry_from(now, lifetimes) > self.expires_at(lifetimes)).then_some(renewed)
    }

    /// The login held by `data`, if any. Anything unreadable is no login: the session is
    /// then anonymous.
    pub fn read(data: &Data) -> Option<Self> {
        Self::deserialize(data.get(LOGIN_KEY)?).ok()
    }

    /// Writes this login into `data`, replacing any other.
    pub fn write(&self, data: &mut Data) {
        let value = serde_json::to_value(self).expect("a login is plain JSON");
        data.insert(LOGIN_KEY.to_owned(), value);
    }

    /// Whether the session should be written again to roll its expiry: once more than half
    /// of `lifetime` has passed since the last write, so that a busy session costs a couple
    /// of writes per lifetime and an idle one expires on time.
    pub fn is_renewal_due(&self, lifetime: time::Duration, now: OffsetDateTime) -> bool {
        match OffsetDateTime::from_unix_timestamp(self.renewed_at) {
            Ok(renewed_at) => now - renewed_at > lifetime / 2,
            Err(_) => true,
        }
    }
}

/// `at` in unix milliseconds.
fn unix_millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The user a session belongs to, as the store found them when it loaded the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The user's id.
    pub id: UserId,
    email: String,
    username: String,
    /// When the user registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The credential of the user's current password hash.
    pub credential: Credential,
    /// Whether the user's address is verified. Snapshots written before there was such a
    /// thing read as unverified.
    #[serde(default)]
    pub email_verified: bool,
}

impl Owner {
    /// The owner view of a stored user.
    pub fn of(user: &User) -> Self {
        Self::from_stored(
            user.id,
            user.email.as_str().to_owned(),
            user.username.as_str().to_owned(),
            user.created_at,
            Credential::of(&user.password_hash),
            user.email_verified,
        )
    }

    /// An owner rebuilt from what a store kept (a snapshot in a session document).
    pub fn from_stored(
        id: UserId,
        email: String,
        username: String,
        created_at: OffsetDateTime,
        credential: Credential,
        email_verified: bool,
    ) -> Self {
        Self {
            id,
            email,
            username,
            created_at,
            credential,
            email_verified,
        }
    }

    /// The user's email address.
    pub fn email(&self) -> Email {
        Email::from_trusted(self.email.clone())
    }

    /// The user's username.
    pub fn username(&self) -> Username {
        Username::from_trusted(self.username.clone())
    }

    /// Whether `login` was made by this user with the password they have now.
    pub fn owns(&self, login: &Login) -> bool {
        self.id == login.user_id && self.credential == login.credential
    }
}

/// A session as a store loads it for a request: what it holds, when it expires, and the
/// user it belongs to as stored now (`None` for an anonymous session, or one whose user is
/// gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSession {
    /// The session's data, as written.
    pub data: StoredData,
    /// When the stored session expires.
    pub expires_at: OffsetDateTime,
    /// The logged-in user, read in the same round trip.
    pub owner: Option<Owner>,
}

/// A session's data as stores keep it, JSON text, read no further than a request needs:
/// the login alone ([`login`](Self::login)) for a request that only reads, the whole map
/// ([`parse`](Self::parse)) only for one that writes the session.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredData(String);

// Never the text: the login's credential and device are in it.
impl fmt::Debug for StoredData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredData")
            .field("bytes", &self.0.len())
            .finish()
    }
}

impl StoredData {
    /// The data of a session as a store read it.
    pub fn from_json(text: String) -> Self {
        Self(text)
    }

    /// The data, to store (for a store that keeps the map itself).
    pub fn of(data: &Data) -> Self {
        Self(serde_json::to_string(data).expect("session data is plain JSON"))
    }

    /// The login the session holds, read straight from the text; anything unreadable, as
    /// with [`Login::read`], is no login.
    pub fn login(&self) -> Option<Login> {
        #[derive(Deserialize)]
        struct LoginOnly {
            #[serde(rename = "auth.login")]
            login: Option<Login>,
        }
        serde_json::from_str::<LoginOnly>(&self.0).ok()?.login
    }

    /// The whole data, as tower-sessions keeps it.
    ///
    /// # Errors
    ///
    /// The text is not a JSON object; serde's error, which may quote the text, is not
    /// passed on.
    pub fn parse(&self) -> Result<Data, NotSessionData> {
        serde_json::from_str(&self.0).map_err(|_| NotSessionData)
    }
}

/// Stored session data that is not a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stored session data is not a JSON object")]
pub struct NotSessionData;

/// Hands a new session's owner to the store that creates it (a login calls this): a store
/// that keeps a snapshot of the user in the session takes it out with [`take_owner`].
pub fn put_owner(data: &mut Data, owner: &Owner) {
    let value = serde_json::to_value(owner).expect("an owner is plain JSON");
    data.insert(OWNER_KEY.to_owned(), value);
}

/// Removes the owner a login attached, returning it: what remains is what a store persists
/// as the session's data (stores call this in `create` and `save`).
pub fn take_owner(data: &mut Data) -> Option<Owner> {
    data.remove(OWNER_KEY)
        .and_then(|value| serde_json::from_value(value).ok())
}

/// The key a session is stored under: the hex SHA-256 of its id, so that a copy of the
/// sessions table or collection holds no cookie that could be replayed.
pub fn storage_key(session_id: &str) -> String {
    hex_sha256(session_id)
}

/// The lowercase hex SHA-256 of `text`, written into one buffer: `hex::encode` collects
/// it a character at a time, which showed in the profile of every authenticated request.
fn hex_sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = vec![0; 2 * digest.len()];
    hex::encode_to_slice(digest, &mut hex).expect("the buffer holds two digits a byte");
    String::from_utf8(hex).expect("hex digits are ASCII")
}

/// The id of the user logged in on a session, read from its data, so that stores can keep
/// it in an indexed field and a user's sessions can be listed and revoked.
pub fn user_id(data: &Data) -> Option<UserId> {
    Login::read(data).map(|login| login.user_id)
}

/// Session data with `user` logged in at `now`, as a login writes it: for stores' tests and
/// the benchmark's preloaded sessions.
pub fn logged_in(user: &User, now: OffsetDateTime) -> Data {
    let mut data = Data::new();
    Login::new(user, now).write(&mut data);
    data
}

#[cfg(test)]
mod tests {
    use time::{macros::datetime, Duration};

    use super::*;

    fn user(phc: &str) -> User {
        let email = Email::parse("ada@example.com").expect("valid");
        User {
            id: UserId::generate(),
            username: Username::from_email(&email),
            email,
            password_hash: PasswordHash::from_trusted(phc.to_owned()),
            created_at: datetime!(2026-01-02 03:04:05.678901 UTC),
            email_verified: false,
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    #[test]
    fn digests_are_lowercase_hex_sha256() {
        // printf %s abc | sha256sum
        assert_eq!(
            storage_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_storage_key_is_a_sha256_digest_not_the_id() {
        let key = storage_key("c2Vzc2lvbi1pZC1ub3QtcmVhbA");
        assert_eq!(key.len(), 64);
        assert!(!key.contains("c2Vzc2lvbi1pZC1ub3QtcmVhbA"));
        assert_eq!(key, storage_key("c2Vzc2lvbi1pZC1ub3QtcmVhbA"));
        assert_ne!(key, storage_key("c2Vzc2lvbi1pZC1ub3QtcmVhbB"));
    }

    #[test]
    fn a_login_reads_back_as_written_and_names_its_user() {
        let ada = user("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");
        let data = logged_in(&ada, NOW);
        let login = Login::read(&data).expect("a login");
        assert_eq!(login, Login::new(&ada, NOW));
        assert_eq!(user_id(&data), Some(ada.id));
        assert_eq!(user_id(&Data::new()), None);
    }

    #[test]
    fn the_credential_follows_the_password_hash_without_containing_it() {
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let first = Credential::of(&PasswordHash::from_trusted(phc.into()));
        let again = Credential::of(&PasswordHash::from_trusted(phc.into()));
        let other = Credential::of(&PasswordHash::from_trusted(format!("{phc}x")));
        assert_eq!(first, again);
        assert_ne!(first, other);
        assert!(!first.as_str().contains("argon2"));
        assert_eq!(first.as_str().len(), 64);
    }

    #[test]
    fn stored_data_reads_its_login_as_the_map_does() {
        let ada = user("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");
        let mut data = logged_in(&ada, NOW);
        data.insert("other".to_owned(), serde_json::json!({"kept": [1, 2]}));
        let stored = StoredData::of(&data);
        assert_eq!(stored.login(), Login::read(&data));
        assert_eq!(stored.parse(), Ok(data));
        assert!(!format!("{stored:?}").contains("argon2"));
        for (text, login) in [
            ("{}", None),
            (r#"{"auth.login": null}"#, None),
            (r#"{"auth.login": {"user_id": "not-a-uuid"}}"#, None),
            ("[]", None),
            ("not json", None),
        ] {
            assert_eq!(
                StoredData::from_json(text.to_owned()).login(),
                login,
                "{text}"
            );
        }
        assert_eq!(
            StoredData::from_json("[]".to_owned()).parse(),
            Err(NotSessionData)
        );
    }

    #[test]
    fn unreadable_login_data_is_no_login() {
        for value in [
            serde_json::json!(null),
            serde_json::json!({"user_id": "not-a-uuid"}),
            serde_json::json!("text"),
        ] {
            let data = Data::from([(LOGIN_KEY.to_owned(), value.clone())]);
            assert_eq!(Login::read(&data), None, "{value}");
        }
    }

    #[test]
    fn an_owner_owns_only_logins_made_with_their_current_password() {
        let ada = user("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$b2xk");
        let login = Login::new(&ada, NOW);
        assert!(Owner::of(&ada).owns(&login));

        let changed = User {
            password_hash: PasswordHash::from_trusted(
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bmV3".into(),
            ),
            ..ada.clone()
        };
        assert!(
            !Owner::of(&changed).owns(&login),
            "a new password ends the login"
        );
        let grace = User {
            id: UserId::generate(),
            ..ada
        };
        assert!(
            !Owner::of(&grace).owns(&login),
            "another user never owns it"
        );
    }

    #[test]
    fn the_owner_travels_beside_the_data_and_is_taken_out_before_storing() {
        let ada = user("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");
        let mut data = logged_in(&ada, NOW);
        let stored = data.clone();
        put_owner(&mut data, &Owner::of(&ada));
        assert_ne!(data, stored);
        assert_eq!(take_owner(&mut data), Some(Owner::of(&ada)));
        assert_eq!(data, stored);
        assert_eq!(take_owner(&mut data), None);
    }

    #[test]
    fn renewal_rolls_the_expiry_until_the_absolute_deadline_and_then_stops() {
        let lifetimes = Lifetimes {
            idle: Duration::seconds(4),
            absolute: Duration::seconds(8),
        };
        let login = Login::new(&user("$argon2id$x"), NOW);
        assert_eq!(login.expires_at(lifetimes), NOW + Duration::seconds(4));
        assert_eq!(login.renewed(lifetimes, NOW + Duration::seconds(2)), None);

        let at3 = login
            .renewed(lifetimes, NOW + Duration::seconds(3))
            .expect("past half the idle lifetime");
        assert_eq!(at3.expires_at(lifetimes), NOW + Duration::seconds(7));
        assert_eq!(at3.logged_in_at(), NOW);

        let at6 = at3
            .renewed(lifetimes, NOW + Duration::seconds(6))
            .expect("the expiry still moves");
        assert_eq!(
            at6.expires_at(lifetimes),
            NOW + Duration::seconds(8),
            "capped at login + absolute"
        );
        assert_eq!(
            at6.renewed(
                lifetimes,
                NOW + Duration::seconds(8) + Duration::milliseconds(500)
            ),
            None,
            "a write that cannot move the expiry is skipped"
        );
    }

    #[test]
    fn the_absolute_deadline_is_kept_to_the_millisecond() {
        let lifetimes = Lifetimes {
            idle: Duration::seconds(4),
            absolute: Duration::seconds(8),
        };
        let at = NOW + Duration::milliseconds(987);
        let login = Login::new(&user("$argon2id$x"), at);
        assert_eq!(login.expiry_from(at, lifetimes), at + Duration::seconds(4));
        assert_eq!(
            login.expiry_from(at + Duration::seconds(6), lifetimes),
            at + Duration::seconds(8)
        );
    }

    #[test]
    fn renewal_is_due_past_half_the_lifetime_only() {
        let lifetime = Duration::hours(2);
        let at = |seconds_ago: i64| Login {
            renewed_at: (NOW - Duration::seconds(seconds_ago)).unix_timestamp(),
            ..Login::new(&user("$argon2id$x"), NOW)
        };
        assert!(!at(0).is_renewal_due(lifetime, NOW));
        assert!(!at(3_600).is_renewal_due(lifetime, NOW));
        assert!(at(3_601).is_renewal_due(lifetime, NOW));
        assert!(
            !at(-60).is_renewal_due(lifetime, NOW),
            "a stamp from the future"
        );
        let unreadable = Login {
            renewed_at: i64::MIN,
            ..at(0)
        };
        assert!(unreadable.is_renewal_due(lifetime, NOW));
    }
}
