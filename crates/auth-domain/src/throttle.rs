//! Counting failed attempts, so that guessing passwords gets slow without locking the
//! owner out (see `auth_http`'s login throttling for the policy).
//!
//! The store keeps one entry per attempt and key: a key (an opaque digest naming an
//! account, an address, or both), the instant it happened and the attempt's random id. A
//! sliding window is then one query: how many entries per key since the window's start,
//! and the oldest of them (which says when the count drops again). Every instance sharing
//! the database sees the same counts.
//!
//! An attempt is recorded *before* its password is checked, then counted together with
//! every other recorded attempt: it goes ahead only if the count, its own entry included,
//! is within the limit. Otherwise it is withdrawn and refused. A success withdraws it too;
//! a failure leaves it, counted. Checking first and recording after the (slow) hash would
//! let every concurrent guess pass the same count; this way, of any number of concurrent
//! attempts, the last one recorded among those that go ahead saw all the others, so no
//! more than the limit go ahead, on any store that shows a write to the reads that follow
//! it (every instance included). Concurrent attempts may refuse each other: a burst is
//! refused more, never less.

use std::{future::Future, net::IpAddr};

use time::OffsetDateTime;

use crate::{
    digest::DigestKeys,
    settings::{DefaultValue, Setting},
    Email, RepositoryError, UserId, Username,
};

/// What a counter counts, as a fixed-size keyed digest: the stored key never holds an
/// email address or a client address in clear, cannot be matched against a list of them
/// without `SECRET_KEY`, and every key has the same length.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThrottleKey(String);

impl ThrottleKey {
    /// The key of `parts` under `scope` (`"login-client"`, `"login-account"`, ...), keyed
    /// by `keys`. The parts are length-prefixed, so no two different lists give the same
    /// key.
    pub fn new(keys: &DigestKeys, scope: &str, parts: &[&str]) -> Self {
        Self(keys.throttle_digest(scope, parts))
    }

    /// A key as a store keeps it.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    /// The stored form: 64 hexadecimal digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The random id of one attempt, stored with each of its entries so that exactly those
/// can be withdrawn (two attempts may share their keys and their instant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttemptId(i64);

impl AttemptId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// The id as stored.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// The failures counted under one key within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    /// How many.
    pub count: u64,
    /// When the oldest of them happened: the count drops once it leaves the window.
    pub oldest: Option<OffsetDateTime>,
}

impl FailureCount {
    /// No failure.
    pub const NONE: Self = Self {
        count: 0,
        oldest: None,
    };

    /// The counts a store grouped by key, in the order of `keys` (a key it found no
    /// failure under counts [`FailureCount::NONE`]): what [`FailureCounter::failures`]
    /// returns.
    pub fn in_key_order(
        keys: &[ThrottleKey],
        counted: &std::collections::HashMap<String, FailureCount>,
    ) -> Vec<Self> {
        keys.iter()
            .map(|key| counted.get(key.as_str()).copied().unwrap_or(Self::NONE))
            .collect()
    }
}

/// Where attempts are counted. One adapter per backend.
///
/// # Errors
///
/// Every adapter MUST answer [`failures`](Self::failures) in one round trip (a throttled
/// request costs no more), count only entries at or after `since`, show an entry that
/// [`record_failure`](Self::record_failure) wrote to every count that starts after it
/// returned (on any instance), and wrap every driver error in [`RepositoryError`].
pub trait FailureCounter: Clone + Send + Sync + 'static {
    /// The failures under each of `keys` since `since`, in the order of `keys` (a key
    /// without any is [`FailureCount::NONE`]).
    fn failures(
        &self,
        keys: &[ThrottleKey],
        since: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<FailureCount>, RepositoryError>> + Send;

    /// Records one attempt at `at` under each of `keys`, tagged `attempt`, in one write.
    fn record_failure(
        &self,
        keys: &[ThrottleKey],
        at: OffsetDateTime,
        attempt: AttemptId,
    ) -> impl Future<Output = Result<(), RepositoryError>> + Send;

    /// Deletes the entries that `attempt` recorded under `keys` (and no other), in one
    /// write: the attempt no longer counts.
    fn withdraw(
        &self,
        keys: &[ThrottleKey],
        attempt: AttemptId,
    ) -> impl Future<Output = Result<(), RepositoryError>> + Send;

    /// Forgets every failure under `key` (a success resets its count).
    fn reset(&self, key: &ThrottleKey) -> impl Future<Output = Result<(), RepositoryError>> + Send;

    /// Deletes the failures older than `before`, at most `batch` per statement, until
    /// none is left; returns how many. (A store with a TTL index may do nothing here.)
    fn purge_before(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> impl Future<Output = Result<u64, RepositoryError>> + Send;
}

/// The limits of login and registration throttling (0 disables a limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Failed logins for one account from one address within the window, after which
    /// that address may not try that account (`LOGIN_FAILURES_PER_CLIENT`).
    pub failures_per_client: u64,
    /// Failed logins for one account from anywhere, after which clients that have not
    /// logged in to it before (no device cookie) may not try it
    /// (`LOGIN_FAILURES_PER_ACCOUNT`).
    pub failures_per_account: u64,
    /// Failed logins from one address across accounts (password spraying)
    /// (`LOGIN_FAILURES_PER_ADDRESS`).
    pub failures_per_address: u64,
    /// The sliding window of the three above (`LOGIN_FAILURE_WINDOW`).
    pub failure_window: time::Duration,
    /// Registrations from one address per [`REGISTRATION_WINDOW`]
    /// (`REGISTRATIONS_PER_ADDRESS`).
    pub registrations_per_address: u64,
    /// Passkey sign-ins (their options, each a stored ceremony) one address may start per
    /// [`SIGN_IN_CEREMONY_WINDOW`] (`PASSKEY_SIGN_INS_PER_ADDRESS`): anyone may ask, so
    /// this is what bounds the ceremonies a flood can make the database keep.
    pub passkey_sign_ins_per_address: u64,
    /// How many leading bits of an IPv6 address name one client for the limits per client,
    /// per address and on registrations (`IPV6_THROTTLE_PREFIX`): whoever holds a /64 (any
    /// server, most home lines) holds 2^64 addresses, but one budget. IPv4 addresses count
    /// one by one.
    pub ipv6_prefix: u8,
}

/// Wrong second-factor codes per account per failure window, after which every code is
/// refused with a 429 until the oldest leaves the window.
pub const SECOND_FACTOR_FAILURES: u64 = 5;

/// The window of the password reset request limits.
pub const RESET_REQUEST_WINDOW: time::Duration = time::Duration::HOUR;
/// Reset mails per address typed per [`RESET_REQUEST_WINDOW`]: a person who lost the
/// first mail asks again, a flood of mails to a victim stops here.
pub const RESET_REQUESTS_PER_ACCOUNT: u64 = 3;
/// Reset requests per client per [`RESET_REQUEST_WINDOW`], across addresses.
pub const RESET_REQUESTS_PER_ADDRESS: u64 = 20;

/// The window of [`ThrottleLimits::passkey_sign_ins_per_address`].
pub const SIGN_IN_CEREMONY_WINDOW: time::Duration = time::Duration::minutes(15);

/// The window of [`ThrottleLimits::registrations_per_address`].
pub const REGISTRATION_WINDOW: time::Duration = time::Duration::HOUR;

impl Default for ThrottleLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl ThrottleLimits {
    /// NIST SP 800-63B allows up to 100 consecutive failures per account; these are
    /// tighter where an attacker is identifiable and looser where a real user shares the
    /// key: 5 per account and address (a person mistyping gets five tries per quarter
    /// hour), 50 per account from clients without its device cookie, 100 per address
    /// (a whole office behind one NAT), over 15 minutes; 20 registrations per address
    /// per hour (a classroom signing up, not a bot farm).
    pub const DEFAULT: Self = Self {
        failures_per_client: 5,
        failures_per_account: 50,
        failures_per_address: 100,
        failure_window: time::Duration::minutes(15),
        registrations_per_address: 20,
        passkey_sign_ins_per_address: 300,
        ipv6_prefix: 64,
    };

    /// The longest window any count is kept for: what the purge of old attempts keeps.
    pub fn longest_window(&self) -> time::Duration {
        self.failure_window
            .max(REGISTRATION_WINDOW)
            .max(RESET_REQUEST_WINDOW)
            .max(SIGN_IN_CEREMONY_WINDOW)
            .max(crate::account_mail::PER_USER_MAIL_WINDOW)
    }

    /// The settings of login and registration throttling.
    pub const SETTINGS: &'static [Setting] = &[
        Setting::new(
            "LOGIN_FAILURES_PER_CLIENT",
            DefaultValue::Number(Self::DEFAULT.failures_per_client),
            "failed logins for one account from one address per window; 0 disables",
        ),
        Setting::new(
            "LOGIN_FAILURES_PER_ACCOUNT",
            DefaultValue::Number(Self::DEFAULT.failures_per_account),
            "failed logins for one account from anywhere per window; 0 disables",
        ),
        Setting::new(
            "LOGIN_FAILURES_PER_ADDRESS",
            DefaultValue::Number(Self::DEFAULT.failures_per_address),
            "failed logins from one address across accounts per window; 0 disables",
        ),
        Setting::new(
            "LOGIN_FAILURE_WINDOW",
            // A constant 15 minutes: the cast cannot lose a sign.
            DefaultValue::Number(Self::DEFAULT.failure_window.whole_seconds() as u64),
            "the sliding window of the three limits above, seconds",
        ),
        Setting::new(
            "REGISTRATIONS_PER_ADDRESS",
            DefaultValue::Number(Self::DEFAULT.registrations_per_address),
            "registrations from one address per hour; 0 disables",
        ),
        Setting::new(
            "PASSKEY_SIGN_INS_PER_ADDRESS",
            DefaultValue::Number(Self::DEFAULT.passkey_sign_ins_per_address),
            "passkey sign-ins one address may start per 15 minutes (each keeps a challenge for 5 minutes); 0 disables",
        ),
        Setting::new(
            "IPV6_THROTTLE_PREFIX",
            DefaultValue::Number(Self::DEFAULT.ipv6_prefix as u64),
            "leading bits of an IPv6 address that name one client for the limits, 1..=128",
        ),
    ];
}

/// A refusal: try again after this long.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// How long until the count drops below the limit again (at least a second).
    pub retry_after: time::Duration,
}

/// An attempt that went ahead and counts until it is settled: a failure leaves it counted
/// ([`Throttle::login_failed`]), a success or an attempt that checked no password withdraws it.
#[derive(Debug)]
#[must_use = "a reservation is settled as a failure, a success or withdrawn"]
pub struct Reservation {
    keys: Vec<ThrottleKey>,
    id: AttemptId,
}

/// Who a login attempt is for and from: the keys it counts under.
#[derive(Debug, Clone)]
pub struct LoginAttempt {
    /// Per account and address.
    client: ThrottleKey,
    /// Per account.
    account: ThrottleKey,
    /// Per address.
    address: ThrottleKey,
    /// Whether the client holds the device cookie of this account.
    device_proven: bool,
}

/// One key an attempt is recorded under, when its limit is not 0, and counted against
/// that limit when enforced.
struct Entry {
    key: ThrottleKey,
    limit: u64,
    enforced: bool,
}

impl Entry {
    fn enforced(key: ThrottleKey, limit: u64) -> Self {
        Self {
            key,
            limit,
            enforced: true,
        }
    }
}

/// The canonical name of an account as typed at login.
pub(crate) fn account_name(login: &str) -> String {
    if let Ok(email) = Email::parse(login) {
        email.as_str().to_owned()
    } else if let Ok(username) = Username::parse(login) {
        username.as_str().to_owned()
    } else {
        login.trim().to_lowercase()
    }
}

/// Login and registration throttling over a [`FailureCounter`].
#[derive(Debug, Clone)]
pub struct Throttle<F> {
    counter: F,
    limits: ThrottleLimits,
    keys: DigestKeys,
}

impl<F: FailureCounter> Throttle<F> {
    /// Throttling with `limits`, counting in `counter` under digests keyed by `keys`.
    pub fn new(counter: F, limits: ThrottleLimits, keys: DigestKeys) -> Self {
        Self {
            counter,
            limits,
            keys,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ThrottleLimits {
        self.limits
    }

    /// An attempt on the account named `login` (an email address or a username, as
    /// typed: it is normalised here, so `Ada@Example.com` and `ada@example.com` count
    /// together; an unknown account counts exactly like a known one) from `ip`, whose
    /// client is its IPv6 prefix or its IPv4 address. `device_proven`: the client holds
    /// the device cookie of this account, which spares it the per-account limit.
    pub fn attempt(&self, login: &str, ip: Option<IpAddr>, device_proven: bool) -> LoginAttempt {
        let (account, address) = (account_name(login), self.address(ip));
        LoginAttempt {
            client: ThrottleKey::new(&self.keys, "login-client", &[&account, &address]),
            account: ThrottleKey::new(&self.keys, "login-account", &[&account]),
            address: ThrottleKey::new(&self.keys, "login-address", &[&address]),
            device_proven,
        }
    }

    /// The address `ip` is counted under: itself for IPv4 (and an IPv4-mapped IPv6
    /// address), its network of [`ThrottleLimits::ipv6_prefix`] bits for IPv6.
    fn address(&self, ip: Option<IpAddr>) -> String {
        match ip.map(|ip| ip.to_canonical()) {
            None => "unknown".to_owned(),
            Some(IpAddr::V4(ip)) => ip.to_string(),
            Some(IpAddr::V6(ip)) => {
                let prefix = self.limits.ipv6_prefix.clamp(1, 128);
                let mask = u128::MAX << (128 - u32::from(prefix));
                let network = std::net::Ipv6Addr::from(u128::from(ip) & mask);
                format!("{network}/{prefix}")
            }
        }
    }

    /// Reserves `attempt`: records it, then counts it with every other attempt recorded
    /// under its keys (the per-client, per-account unless the device is proven, and
    /// per-address limits). Within every limit, it goes ahead, counted until settled;
    /// past one, it is withdrawn and refused for as long as the count stays at the limit.
    ///
    /// # Errors
    ///
    /// The attempt could not be recorded or counted: it must not go ahead.
    pub async fn reserve_login(
        &self,
        attempt: &LoginAttempt,
        now: OffsetDateTime,
    ) -> Result<Result<Reservation, Throttled>, RepositoryError> {
        let limits = self.limits;
        let entries = [
            Entry::enforced(attempt.client.clone(), limits.failures_per_client),
            Entry {
                key: attempt.account.clone(),
                limit: limits.failures_per_account,
                // Counted, so that clients without the cookie see it, but not enforced.
                enforced: !attempt.device_proven,
            },
            Entry::enforced(attempt.address.clone(), limits.failures_per_address),
        ];
        self.reserve(&entries, limits.failure_window, now).await
    }

    /// A failed password check of a reserved attempt: it stays counted.
    pub fn login_failed(&self, reservation: Reservation) {
        drop(reservation);
    }

    /// A successful login of `attempt`: its reservation is withdrawn, and its client's
    /// count reset.
    ///
    /// # Errors
    ///
    /// The count could not be reset.
    pub async fn login_succeeded(
        &self,
        attempt: &LoginAttempt,
        reservation: Reservation,
    ) -> Result<(), RepositoryError> {
        self.withdraw(reservation).await?;
        if self.limits.failures_per_client == 0 {
            return Ok(());
        }
        self.counter.reset(&attempt.client).await
    }

    /// A reserved attempt that checked no password (the storage failed, or the request
    /// was refused for another reason first) no longer counts.
    ///
    /// # Errors
    ///
    /// The reservation could not be withdrawn; it then counts as a failure.
    pub async fn withdraw(&self, reservation: Reservation) -> Result<(), RepositoryError> {
        if reservation.keys.is_empty() {
            return Ok(());
        }
        self.counter
            .withdraw(&reservation.keys, reservation.id)
            .await
    }

    /// Whether a registration from `ip` may go ahead; if so, it is counted. Reserved as a
    /// login is, so that concurrent registrations cannot all pass one count.
    ///
    /// # Errors
    ///
    /// The count could not be read or written.
    pub async fn admit_registration(
        &self,
        ip: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<Result<(), Throttled>, RepositoryError> {
        let limit = self.limits.registrations_per_address;
        let address = self.address(ip);
        let key = ThrottleKey::new(&self.keys, "register-address", &[&address]);
        let verdict = self
            .reserve(&[Entry::enforced(key, limit)], REGISTRATION_WINDOW, now)
            .await?;
        // A registration counts whatever becomes of it.
        Ok(verdict.map(drop))
    }

    /// Whether `ip` may start one more passkey sign-in (a stored ceremony); if so, it is
    /// counted, whatever becomes of it.
    ///
    /// # Errors
    ///
    /// The count could not be read or written.
    pub async fn admit_sign_in_ceremony(
        &self,
        ip: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<Result<(), Throttled>, RepositoryError> {
        let limit = self.limits.passkey_sign_ins_per_address;
        let key = ThrottleKey::new(&self.keys, "passkey-sign-in-address", &[&self.address(ip)]);
        Ok(self
            .reserve(&[Entry::enforced(key, limit)], SIGN_IN_CEREMONY_WINDOW, now)
            .await?
            .map(drop))
    }

    /// Whether a password reset may be mailed for the address `email` at the request of
    /// `ip`: at most [`RESET_REQUESTS_PER_ACCOUNT`] per address typed and
    /// [`RESET_REQUESTS_PER_ADDRESS`] per client within [`RESET_REQUEST_WINDOW`]. Counted
    /// whether or not an account has the address, so that the limit says nothing about it.
    ///
    /// # Errors
    ///
    /// The count could not be read or written.
    pub async fn admit_reset_request(
        &self,
        email: &Email,
        ip: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<Result<(), Throttled>, RepositoryError> {
        let address = self.address(ip);
        let entries = [
            Entry::enforced(
                ThrottleKey::new(&self.keys, "reset-account", &[email.as_str()]),
                RESET_REQUESTS_PER_ACCOUNT,
            ),
            Entry::enforced(
                ThrottleKey::new(&self.keys, "reset-address", &[&address]),
                RESET_REQUESTS_PER_ADDRESS,
            ),
        ];
        Ok(self
            .reserve(&entries, RESET_REQUEST_WINDOW, now)
            .await?
            .map(drop))
    }

    /// Reserves a check of a second factor (a TOTP or recovery code) of `user`: refused
    /// once [`SECOND_FACTOR_FAILURES`] wrong ones were counted within the failure window,
    /// whoever typed them, so that a password alone buys six guesses a quarter hour, not a
    /// million. Settled as a login is: a wrong code stays counted
    /// ([`Self::login_failed`]), a right one is withdrawn.
    ///
    /// # Errors
    ///
    /// The attempt could not be recorded or counted: it must not go ahead.
    pub async fn reserve_second_factor(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<Result<Reservation, Throttled>, RepositoryError> {
        let key = ThrottleKey::new(&self.keys, "second-factor", &[&user.to_string()]);
        let window = if self.limits.failure_window.is_positive() {
            self.limits.failure_window
        } else {
            ThrottleLimits::DEFAULT.failure_window
        };
        self.reserve(&[Entry::enforced(key, SECOND_FACTOR_FAILURES)], window, now)
            .await
    }

    /// Whether `user` may do one more thing of `scope` (ask for another mail) within
    /// `window`: at most `limit` per window, however many ask at once.
    ///
    /// # Errors
    ///
    /// The count could not be read or written.
    pub async fn admit_per_user(
        &self,
        scope: &str,
        user: UserId,
        limit: u64,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> Result<Result<(), Throttled>, RepositoryError> {
        let key = ThrottleKey::new(&self.keys, scope, &[&user.to_string()]);
        Ok(self
            .reserve(&[Entry::enforced(key, limit)], window, now)
            .await?
            .map(drop))
    }

    /// Records an attempt under the keys of `entries` that have a limit, counts those whose
    /// limit is enforced, and goes ahead within every limit; otherwise withdraws it.
    async fn reserve(
        &self,
        entries: &[Entry],
        window: time::Duration,
        now: OffsetDateTime,
    ) -> Result<Result<Reservation, Throttled>, RepositoryError> {
        let reservation = Reservation {
            keys: entries
                .iter()
                .filter(|entry| entry.limit > 0)
                .map(|entry| entry.key.clone())
                .collect(),
            id: AttemptId::random(),
        };
        if reservation.keys.is_empty() {
            return Ok(Ok(reservation));
        }
        self.counter
            .record_failure(&reservation.keys, now, reservation.id)
            .await?;
        let checked: Vec<&Entry> = entries
            .iter()
            .filter(|entry| entry.limit > 0 && entry.enforced)
            .collect();
        let keys: Vec<ThrottleKey> = checked.iter().map(|entry| entry.key.clone()).collect();
        let counts = match self.counter.failures(&keys, now - window).await {
            Ok(counts) => counts,
            Err(error) => {
                self.withdraw_or_log(reservation).await;
                return Err(error);
            }
        };
        let limits = checked.iter().map(|entry| entry.limit);
        // Its own entry is in each count: past the limit means more than it. Without its
        // own, the count is at the limit (refused attempts are withdrawn), and drops once
        // the oldest entry is more than a window old.
        let retry_after = counts
            .iter()
            .zip(limits)
            .filter(|(count, limit)| count.count > *limit)
            .map(|(count, _)| {
                count
                    .oldest
                    .map_or(window, |oldest| {
                        oldest + window + time::Duration::MICROSECOND - now
                    })
                    .max(time::Duration::SECOND)
            })
            .max();
        match retry_after {
            Some(retry_after) => {
                self.withdraw_or_log(reservation).await;
                Ok(Err(Throttled { retry_after }))
            }
            None => Ok(Ok(reservation)),
        }
    }

    /// Withdraws a refused reservation; one that cannot be withdrawn counts, as a failure
    /// would (stricter, never looser).
    async fn withdraw_or_log(&self, reservation: Reservation) {
        if let Err(error) = self.withdraw(reservation).await {
            tracing::warn!(%error, "could not withdraw a refused attempt; it counts as a failure");
        }
    }
}
