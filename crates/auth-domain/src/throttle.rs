//! Counting failed attempts, so that guessing passwords gets slow without locking the
//! owner out (see `auth_http`'s login throttling for the policy).
//!
//! The store keeps one entry per failure: a key (an opaque digest naming an account, an
//! address, or both) and the instant it happened. A sliding window is then one query:
//! how many entries per key since the window's start, and the oldest of them (which says
//! when the count drops again). Every instance sharing the database sees the same counts.

use std::{future::Future, net::IpAddr};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{
    settings::{DefaultValue, Setting},
    Email, RepositoryError, Username,
};

/// What a counter counts, as a fixed-size digest: the stored key never holds an email
/// address or a client address in clear, and every key has the same length.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThrottleKey(String);

impl ThrottleKey {
    /// The key of `parts` under `scope` (`"login-client"`, `"login-account"`, ...). The
    /// parts are length-prefixed, so no two different lists give the same key.
    pub fn new(scope: &str, parts: &[&str]) -> Self {
        let mut digest = Sha256::new();
        for part in std::iter::once(scope).chain(parts.iter().copied()) {
            digest.update((part.len() as u64).to_be_bytes());
            digest.update(part.as_bytes());
        }
        Self(hex::encode(digest.finalize()))
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

/// Where failures are counted. One adapter per backend.
///
/// # Errors
///
/// Every adapter MUST answer [`failures`](Self::failures) in one round trip (a throttled
/// request costs no more), count only entries at or after `since`, and wrap every driver
/// error in [`RepositoryError`].
pub trait FailureCounter: Clone + Send + Sync + 'static {
    /// The failures under each of `keys` since `since`, in the order of `keys` (a key
    /// without any is [`FailureCount::NONE`]).
    fn failures(
        &self,
        keys: &[ThrottleKey],
        since: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<FailureCount>, RepositoryError>> + Send;

    /// Records one failure at `at` under each of `keys`, in one write.
    fn record_failure(
        &self,
        keys: &[ThrottleKey],
        at: OffsetDateTime,
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
    /// How many leading bits of an IPv6 address name one client for the limits per client,
    /// per address and on registrations (`IPV6_THROTTLE_PREFIX`): whoever holds a /64 (any
    /// server, most home lines) holds 2^64 addresses, but one budget. IPv4 addresses count
    /// one by one.
    pub ipv6_prefix: u8,
}

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
        ipv6_prefix: 64,
    };

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
            "IPV6_THROTTLE_PREFIX",
            DefaultValue::Number(Self::DEFAULT.ipv6_prefix as u64),
            "leading bits of an IPv6 address that name one client for the limits, 1..=128",
        ),
    ];
}

/// A refusal: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// How long until the count drops below the limit again (at least a second).
    pub retry_after: time::Duration,
}

/// Who a login attempt is for and from.
#[derive(Debug, Clone)]
pub struct LoginAttempt {
    account: String,
    address: String,
    /// Whether the client holds the device cookie of this account.
    device_proven: bool,
}

impl LoginAttempt {
    /// An attempt on the account named `login` (an email address or a username, as
    /// typed: it is normalised here, so `Ada@Example.com` and `ada@example.com` count
    /// together; an unknown account counts exactly like a known one) from `ip`.
    fn new(login: &str, address: String, device_proven: bool) -> Self {
        Self {
            account: account_name(login),
            address,
            device_proven,
        }
    }

    fn client_key(&self) -> ThrottleKey {
        ThrottleKey::new("login-client", &[&self.account, &self.address])
    }

    fn account_key(&self) -> ThrottleKey {
        ThrottleKey::new("login-account", &[&self.account])
    }

    fn address_key(&self) -> ThrottleKey {
        ThrottleKey::new("login-address", &[&self.address])
    }

    /// What a device cookie of this account holds: a digest, so the cookie names the
    /// account without spelling out its email address.
    pub fn device_token(&self) -> String {
        device_token(&self.account)
    }
}

/// The device-cookie value of the account named `login` (normalised as for a login).
pub fn device_token(login: &str) -> String {
    ThrottleKey::new("device", &[&account_name(login)]).0
}

/// The canonical name of an account as typed at login.
fn account_name(login: &str) -> String {
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
}

impl<F: FailureCounter> Throttle<F> {
    /// Throttling with `limits`, counting in `counter`.
    pub fn new(counter: F, limits: ThrottleLimits) -> Self {
        Self { counter, limits }
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
        LoginAttempt::new(login, self.address(ip), device_proven)
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

    /// Whether `attempt` may go ahead: one read of the three counts.
    ///
    /// # Errors
    ///
    /// The counts could not be read.
    pub async fn check_login(
        &self,
        attempt: &LoginAttempt,
        now: OffsetDateTime,
    ) -> Result<Result<(), Throttled>, RepositoryError> {
        let limits = self.limits;
        let exempt_account = attempt.device_proven;
        let checks = [
            (attempt.client_key(), limits.failures_per_client),
            (
                attempt.account_key(),
                if exempt_account {
                    0
                } else {
                    limits.failures_per_account
                },
            ),
            (attempt.address_key(), limits.failures_per_address),
        ];
        self.check(&checks, limits.failure_window, now).await
    }

    /// Counts a failed login of `attempt`.
    ///
    /// # Errors
    ///
    /// The failure could not be recorded.
    pub async fn login_failed(
        &self,
        attempt: &LoginAttempt,
        now: OffsetDateTime,
    ) -> Result<(), RepositoryError> {
        let limits = self.limits;
        let keys: Vec<ThrottleKey> = [
            (attempt.client_key(), limits.failures_per_client),
            (attempt.account_key(), limits.failures_per_account),
            (attempt.address_key(), limits.failures_per_address),
        ]
        .into_iter()
        .filter(|(_, limit)| *limit > 0)
        .map(|(key, _)| key)
        .collect();
        if keys.is_empty() {
            return Ok(());
        }
        self.counter.record_failure(&keys, now).await
    }

    /// A successful login of `attempt` resets its per-client count.
    ///
    /// # Errors
    ///
    /// The count could not be reset.
    pub async fn login_succeeded(&self, attempt: &LoginAttempt) -> Result<(), RepositoryError> {
        if self.limits.failures_per_client == 0 {
            return Ok(());
        }
        self.counter.reset(&attempt.client_key()).await
    }

    /// Whether a registration from `ip` may go ahead; if so, it is counted.
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
        if limit == 0 {
            return Ok(Ok(()));
        }
        let address = self.address(ip);
        let key = ThrottleKey::new("register-address", &[&address]);
        let checks = [(key.clone(), limit)];
        let verdict = self.check(&checks, REGISTRATION_WINDOW, now).await?;
        if verdict.is_ok() {
            self.counter.record_failure(&[key], now).await?;
        }
        Ok(verdict)
    }

    async fn check(
        &self,
        checks: &[(ThrottleKey, u64)],
        window: time::Duration,
        now: OffsetDateTime,
    ) -> Result<Result<(), Throttled>, RepositoryError> {
        let keys: Vec<ThrottleKey> = checks
            .iter()
            .filter(|(_, limit)| *limit > 0)
            .map(|(key, _)| key.clone())
            .collect();
        if keys.is_empty() {
            return Ok(Ok(()));
        }
        let counts = self.counter.failures(&keys, now - window).await?;
        let limits = checks
            .iter()
            .filter(|(_, limit)| *limit > 0)
            .map(|(_, l)| *l);
        let retry_after = counts
            .iter()
            .zip(limits)
            .filter(|(count, limit)| count.count >= *limit)
            .map(|(count, _)| {
                count
                    .oldest
                    .map_or(window, |oldest| oldest + window - now)
                    .max(time::Duration::SECOND)
            })
            .max();
        Ok(match retry_after {
            Some(retry_after) => Err(Throttled { retry_after }),
            None => Ok(()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_digests_that_tell_scopes_and_parts_apart() {
        let key = ThrottleKey::new("login-client", &["ada@example.com", "10.0.0.1"]);
        assert_eq!(key.as_str().len(), 64);
        assert!(!key.as_str().contains("ada"));
        assert_eq!(
            key,
            ThrottleKey::new("login-client", &["ada@example.com", "10.0.0.1"])
        );
        assert_ne!(
            key,
            ThrottleKey::new("login-account", &["ada@example.com", "10.0.0.1"])
        );
        assert_ne!(
            ThrottleKey::new("s", &["ab", "c"]),
            ThrottleKey::new("s", &["a", "bc"])
        );
    }
}
