//! auth-domain's section: the password policy, the hasher and throttling.

use std::{path::PathBuf, time::Duration};

use auth_domain::{
    throttle::ThrottleLimits, HashingConfig, PasswordPolicy, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS,
};
use auth_store_mongo::FAILURE_RETENTION;

use super::{read::Settings, ConfigError};

/// The longest `LOGIN_FAILURE_WINDOW`: MongoDB's TTL index deletes a failed login this
/// long after it happened, so a longer window would silently count fewer failures there
/// than on SQL.
const MAX_FAILURE_WINDOW_SECS: u64 = FAILURE_RETENTION.as_secs();

/// The largest `HASH_QUEUE_LIMIT` accepted.
const MAX_HASH_QUEUE_LIMIT: usize = 1_000_000;

pub(super) fn password_policy(s: &Settings<'_>) -> Result<PasswordPolicy, ConfigError> {
    const KEY: &str = "PASSWORD_MIN_LENGTH";
    PasswordPolicy::with_min_chars(s.number_in(KEY, MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS)?)
        .map_err(|e| s.error(KEY, e))
}

/// `BREACHED_PASSWORDS`: the filter file's path; unset or empty for no such check. The
/// file is read at start-up (see `crate::password_policy`), not here: `app passwords
/// import` must run while the key already names the file it is about to write.
pub(super) fn breached_passwords(s: &Settings<'_>) -> Result<Option<PathBuf>, ConfigError> {
    const KEY: &str = "BREACHED_PASSWORDS";
    if !s.is_set(KEY) {
        return Ok(None);
    }
    let path = s.string(KEY)?;
    Ok((!path.is_empty()).then(|| PathBuf::from(path)))
}

/// The limits argon2 itself enforces, checked here to name the key at fault.
pub(super) fn hashing(s: &Settings<'_>) -> Result<HashingConfig, ConfigError> {
    let parallelism = s.number_in("ARGON2_PARALLELISM", 1..=0x00FF_FFFF)?;
    let iterations = s.number_in("ARGON2_ITERATIONS", 1..=u32::MAX)?;
    let memory_kib = s.number_in("ARGON2_MEMORY_KIB", 8 * parallelism..=u32::MAX)?;
    let max_concurrent = if s.is_set("MAX_CONCURRENT_HASHES") {
        s.number_in("MAX_CONCURRENT_HASHES", 1..=usize::MAX)?
    } else {
        HashingConfig::default().max_concurrent
    };
    Ok(HashingConfig {
        memory_kib,
        iterations,
        parallelism,
        max_concurrent,
    })
}

/// `HASH_QUEUE_LIMIT`: as set, else [`auth_domain::DEFAULT_QUEUE_PER_SLOT`] per hashing
/// slot (`MAX_CONCURRENT_HASHES`, itself the number of CPUs by default).
pub(super) fn hash_queue_limit(
    s: &Settings<'_>,
    hashing: &HashingConfig,
) -> Result<usize, ConfigError> {
    if s.is_set("HASH_QUEUE_LIMIT") {
        return s.number_in("HASH_QUEUE_LIMIT", 0..=MAX_HASH_QUEUE_LIMIT);
    }
    Ok(hashing
        .max_concurrent
        .saturating_mul(auth_domain::DEFAULT_QUEUE_PER_SLOT))
}

/// `LOGIN_*`, `REGISTRATIONS_PER_ADDRESS` and `PASSKEY_SIGN_INS_PER_ADDRESS`; a limit of 0
/// disables it, so no upper bound.
pub(super) fn throttle(s: &Settings<'_>) -> Result<ThrottleLimits, ConfigError> {
    const WINDOW: &str = "LOGIN_FAILURE_WINDOW";
    let window: u64 = s.number(WINDOW)?;
    if !(1..=MAX_FAILURE_WINDOW_SECS).contains(&window) {
        return Err(s.error(
            WINDOW,
            format!(
                "must be between 1 and {MAX_FAILURE_WINDOW_SECS} seconds, not {window}: MongoDB deletes a failed login {MAX_FAILURE_WINDOW_SECS} seconds after it happened (a TTL index)"
            ),
        ));
    }
    Ok(ThrottleLimits {
        failures_per_client: s.number("LOGIN_FAILURES_PER_CLIENT")?,
        failures_per_account: s.number("LOGIN_FAILURES_PER_ACCOUNT")?,
        failures_per_address: s.number("LOGIN_FAILURES_PER_ADDRESS")?,
        failure_window: time::Duration::try_from(Duration::from_secs(window))
            .map_err(|e| s.error(WINDOW, e))?,
        registrations_per_address: s.number("REGISTRATIONS_PER_ADDRESS")?,
        passkey_sign_ins_per_address: s.number("PASSKEY_SIGN_INS_PER_ADDRESS")?,
        ipv6_prefix: s.number_in("IPV6_THROTTLE_PREFIX", 1..=128)?,
    })
}
