use std::{fmt, sync::Arc};

use argon2::{
    password_hash::{
        self, rand_core::OsRng, PasswordHasher as _, PasswordVerifier as _, SaltString,
    },
    Algorithm, Argon2, Params, Version,
};
use tokio::sync::Semaphore;
use tracing::Span;

use crate::{BoxError, Password};

/// An argon2 hash in PHC string form (`$argon2id$v=19$m=...`). Not a secret in the way a
/// password is, but still kept out of logs: `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string read back from storage. It is checked when used, not here, so
    /// that one corrupt row cannot make a whole listing fail.
    pub fn from_trusted(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, for storage.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}

/// Cost of argon2id and how many hashes may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingConfig {
    /// Memory per hash, KiB (OWASP: 19456).
    pub memory_kib: u32,
    /// Passes over memory (OWASP: 2).
    pub iterations: u32,
    /// Lanes (OWASP: 1).
    pub parallelism: u32,
    /// Hashes allowed to run at the same time; each holds `memory_kib` of memory.
    pub max_concurrent: usize,
}

impl Default for HashingConfig {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            max_concurrent: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        }
    }
}

/// Parameters argon2 refuses, or a concurrency of zero.
#[derive(Debug, thiserror::Error)]
#[error("invalid password hashing parameters: {0}")]
pub struct HashingConfigError(String);

/// The outcome of checking a password against a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Wrong password (or no such user).
    Mismatch,
    /// Right password, hash made with the current parameters.
    Match,
    /// Right password, but the hash uses outdated parameters: here is a fresh one.
    MatchNeedsRehash,
}

/// Hashes and verifies passwords with argon2id, off the async runtime and with a bounded
/// number of hashes in flight, so a login storm can neither starve the executor nor
/// exhaust memory.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// A hash of a random password with the current parameters, verified against when the
    /// user does not exist, so that an unknown user costs as much as a wrong password.
    dummy: Arc<PasswordHash>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", self.argon2.params())
            .field("available_permits", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Builds a hasher; computes one hash to serve as the dummy.
    pub fn new(config: &HashingConfig) -> Result<Self, HashingConfigError> {
        if config.max_concurrent == 0 {
            return Err(HashingConfigError(
                "max_concurrent must be at least 1".into(),
            ));
        }
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| HashingConfigError(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let random = SaltString::generate(&mut OsRng);
        let dummy = hash_sync(&argon2, random.as_str().as_bytes())
            .map_err(|e| HashingConfigError(e.to_string()))?;
        Ok(Self {
            argon2,
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            dummy: Arc::new(dummy),
        })
    }

    /// Hashes a password with a fresh salt.
    pub async fn hash(&self, password: &Password) -> Result<PasswordHash, BoxError> {
        let argon2 = self.argon2.clone();
        let password = password.clone();
        self.run_blocking(move || {
            hash_sync(&argon2, password.expose().as_bytes()).map_err(BoxError::from)
        })
        .await
    }

    /// Checks a password against `hash`, or against the dummy hash when there is no user,
    /// in which case the answer is always [`Verification::Mismatch`].
    pub async fn verify(
        &self,
        password: &Password,
        hash: Option<&PasswordHash>,
    ) -> Result<Verification, BoxError> {
        let argon2 = self.argon2.clone();
        let password = password.clone();
        let user_exists = hash.is_some();
        let hash = hash.cloned().unwrap_or_else(|| (*self.dummy).clone());
        self.run_blocking(move || {
            let parsed = password_hash::PasswordHash::new(hash.as_str()).map_err(BoxError::from)?;
            match argon2.verify_password(password.expose().as_bytes(), &parsed) {
                Ok(()) if !user_exists => Ok(Verification::Mismatch),
                Ok(()) if is_current(&argon2, &parsed) => Ok(Verification::Match),
                Ok(()) => Ok(Verification::MatchNeedsRehash),
                Err(password_hash::Error::Password) => Ok(Verification::Mismatch),
                Err(e) => Err(BoxError::from(e)),
            }
        })
        .await
    }

    /// Runs CPU- and memory-heavy work on the blocking pool, at most `max_concurrent` at
    /// a time, keeping the caller's tracing span.
    async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, BoxError> + Send + 'static,
    ) -> Result<T, BoxError> {
        let permit = Arc::clone(&self.permits).acquire_owned().await?;
        let span = Span::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            span.in_scope(work)
        })
        .await?
    }
}

fn hash_sync(argon2: &Argon2<'_>, password: &[u8]) -> Result<PasswordHash, password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(PasswordHash(
        argon2.hash_password(password, &salt)?.to_string(),
    ))
}

/// True when `hash` was made with exactly the parameters this hasher would use now.
fn is_current(argon2: &Argon2<'_>, hash: &password_hash::PasswordHash<'_>) -> bool {
    let Ok(params) = Params::try_from(hash) else {
        return false;
    };
    let current = argon2.params();
    hash.algorithm == Algorithm::Argon2id.ident()
        && hash.version == Some(Version::V0x13.into())
        && params.m_cost() == current.m_cost()
        && params.t_cost() == current.t_cost()
        && params.p_cost() == current.p_cost()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the tests check behaviour, not cost.
    fn cheap() -> HashingConfig {
        HashingConfig {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
        }
    }

    #[tokio::test]
    async fn a_hash_verifies_the_right_password_only() {
        let hasher = PasswordHasher::new(&cheap()).expect("valid config");
        let hash = hasher
            .hash(&Password::new("velvet-otter-harbour"))
            .await
            .expect("hashed");
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        let right = hasher
            .verify(&Password::new("velvet-otter-harbour"), Some(&hash))
            .await;
        let wrong = hasher
            .verify(&Password::new("velvet-otter-harbouR"), Some(&hash))
            .await;
        assert_eq!(right.expect("verified"), Verification::Match);
        assert_eq!(wrong.expect("verified"), Verification::Mismatch);
    }

    #[tokio::test]
    async fn the_same_password_gets_a_different_salt_each_time() {
        let hasher = PasswordHasher::new(&cheap()).expect("valid config");
        let a = hasher
            .hash(&Password::new("velvet-otter-harbour"))
            .await
            .expect("hashed");
        let b = hasher
            .hash(&Password::new("velvet-otter-harbour"))
            .await
            .expect("hashed");
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn the_default_parameters_are_owasps() {
        let hasher = PasswordHasher::new(&HashingConfig::default()).expect("valid config");
        let hash = hasher
            .hash(&Password::new("velvet-otter-harbour"))
            .await
            .expect("hashed");
        assert!(
            hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_str()
        );
    }

    #[tokio::test]
    async fn no_user_never_verifies_even_with_the_dummy_password() {
        let hasher = PasswordHasher::new(&cheap()).expect("valid config");
        let outcome = hasher.verify(&Password::new("anything at all"), None).await;
        assert_eq!(outcome.expect("verified"), Verification::Mismatch);
    }

    #[tokio::test]
    async fn a_hash_with_outdated_parameters_asks_for_a_rehash() {
        let old = PasswordHasher::new(&cheap()).expect("valid config");
        let new = PasswordHasher::new(&HashingConfig {
            iterations: 2,
            ..cheap()
        })
        .expect("valid config");
        let hash = old
            .hash(&Password::new("velvet-otter-harbour"))
            .await
            .expect("hashed");
        let outcome = new
            .verify(&Password::new("velvet-otter-harbour"), Some(&hash))
            .await;
        assert_eq!(outcome.expect("verified"), Verification::MatchNeedsRehash);
    }

    #[tokio::test]
    async fn a_corrupt_stored_hash_is_an_error_not_a_match() {
        let hasher = PasswordHasher::new(&cheap()).expect("valid config");
        let corrupt = PasswordHash::from_trusted("not a phc string".into());
        assert!(hasher
            .verify(&Password::new("x"), Some(&corrupt))
            .await
            .is_err());
    }

    #[test]
    fn zero_concurrency_and_absurd_parameters_are_refused() {
        assert!(PasswordHasher::new(&HashingConfig {
            max_concurrent: 0,
            ..cheap()
        })
        .is_err());
        assert!(PasswordHasher::new(&HashingConfig {
            memory_kib: 1,
            ..cheap()
        })
        .is_err());
    }

    #[test]
    fn debug_never_shows_a_hash() {
        let shown = format!(
            "{:?}",
            PasswordHash::from_trusted("$argon2id$v=19$secret".into())
        );
        assert!(!shown.contains("argon2id"));
    }
}
