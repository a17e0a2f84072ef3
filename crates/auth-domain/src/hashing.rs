use std::{
    fmt,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

use argon2::{
    password_hash::{self, rand_core::OsRng, SaltString},
    Algorithm, Argon2, Block, Params, Version,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tracing::Span;

use crate::{
    settings::{DefaultValue, Setting},
    BoxError, Password,
};

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

    /// The mark of an account without a password (signed in with passkeys only): no
    /// password verifies against it, and each one is new, so that removing the password
    /// changes the credential its sessions are bound to, as any password change does.
    pub fn no_password() -> Self {
        Self(format!("{NO_PASSWORD}{}", uuid::Uuid::now_v7().simple()))
    }

    /// Whether this marks an account without a password.
    pub fn is_no_password(&self) -> bool {
        self.0.starts_with(NO_PASSWORD)
    }
}

/// What [`PasswordHash::no_password`] starts with: never a PHC string (those start with
/// `$`).
const NO_PASSWORD: &str = "!no-password$";

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}

/// Cost of argon2id and how many hashes may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingConfig {
    /// Memory per hash, KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
    /// Hashes allowed to run at the same time; each holds `memory_kib` of memory.
    pub max_concurrent: usize,
}

/// OWASP's minimum cost for argon2id (Password Storage Cheat Sheet), and as many hashes at
/// once as there are CPUs. The one statement of these defaults: the settings table and the
/// app's configuration take them from here.
impl Default for HashingConfig {
    fn default() -> Self {
        Self {
            memory_kib: Self::DEFAULT_MEMORY_KIB,
            iterations: Self::DEFAULT_ITERATIONS,
            parallelism: Self::DEFAULT_PARALLELISM,
            max_concurrent: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        }
    }
}

impl HashingConfig {
    /// OWASP's memory cost, KiB.
    pub const DEFAULT_MEMORY_KIB: u32 = 19_456;
    /// OWASP's passes over memory.
    pub const DEFAULT_ITERATIONS: u32 = 2;
    /// OWASP's lanes.
    pub const DEFAULT_PARALLELISM: u32 = 1;

    /// The settings of the hasher: its cost, its concurrency and its queue.
    pub const SETTINGS: &'static [Setting] = &[
        Setting::new(
            "ARGON2_MEMORY_KIB",
            DefaultValue::Number(Self::DEFAULT_MEMORY_KIB as u64),
            "argon2id memory per hash, KiB; at least 8 x ARGON2_PARALLELISM",
        ),
        Setting::new(
            "ARGON2_ITERATIONS",
            DefaultValue::Number(Self::DEFAULT_ITERATIONS as u64),
            "argon2id passes over memory",
        ),
        Setting::new(
            "ARGON2_PARALLELISM",
            DefaultValue::Number(Self::DEFAULT_PARALLELISM as u64),
            "argon2id lanes",
        ),
        Setting::new(
            "MAX_CONCURRENT_HASHES",
            DefaultValue::Computed("number of CPUs"),
            "password hashes allowed at once, each holding ARGON2_MEMORY_KIB",
        ),
        Setting::new(
            "HASH_QUEUE_LIMIT",
            DefaultValue::Computed("32 × `MAX_CONCURRENT_HASHES`"),
            "password checks waiting for a hashing slot; more are refused at once",
        ),
    ];
}

/// How many hashes may wait for a slot, per slot, unless configured otherwise
/// ([`PasswordHasher::with_queue_limit`]). One argon2id hash at OWASP's cost takes about
/// 15 to 30 ms of one core, so 32 waiting per slot is at most about a second of queue: a
/// login that has to wait longer than that is better told at once to come back (503 with
/// `Retry-After`) than kept until its client or proxy gives up, holding a connection and
/// memory all the while.
pub const DEFAULT_QUEUE_PER_SLOT: usize = 32;

/// Too many hashes are already waiting for a slot (`HASH_QUEUE_LIMIT`): this one is
/// refused at once instead of queueing. A fault of the load, not of the request: the
/// caller answers "unavailable, retry later", and a refused login is no failed login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing overloaded: too many hashes waiting")]
pub struct Overloaded;

/// Whether `error`, or any error in its chain of sources, is the hasher's [`Overloaded`].
pub fn is_overloaded(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<Overloaded>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// Recorded for each hash: seconds it waited for a slot (0 when one was free).
const WAIT_METRIC: &str = "password_hash_wait_seconds";
/// Hashes running now.
const IN_FLIGHT_METRIC: &str = "password_hash_in_flight";

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
    /// Right password, but the hash was not made with this hasher's algorithm, version and
    /// cost parameters: the caller should hash the password again and store that hash.
    MatchNeedsRehash,
}

/// Hashes and verifies passwords with argon2id, off the async runtime and with a bounded
/// number of hashes in flight, so a login storm can neither starve the executor nor
/// exhaust memory.
///
/// Each hash in flight works in one of `max_concurrent` memory areas allocated once, at
/// start-up: argon2 needs `memory_kib` per hash, and allocating that afresh on whichever
/// blocking thread runs the hash makes the allocator keep one such area per thread it ever
/// used (glibc's per-thread arenas), so the resident size grows with the thread pool
/// instead of with the bound.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// Hashes waiting for a permit now, at most `queue_limit`.
    waiting: Arc<AtomicUsize>,
    queue_limit: usize,
    /// Holds exactly one area per permit: whoever holds a permit finds one here.
    areas: Arc<Mutex<Vec<Vec<Block>>>>,
    /// A hash of a random password with the current parameters, verified against when the
    /// user does not exist, so that an unknown user costs as much as a wrong password.
    dummy: Arc<PasswordHash>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", self.argon2.params())
            .field("available_permits", &self.permits.available_permits())
            .field("queue_limit", &self.queue_limit)
            .finish_non_exhaustive()
    }
}

/// Length of the raw hash we produce (argon2's default, 256 bits).
const OUTPUT_LEN: usize = 32;

impl PasswordHasher {
    /// Builds a hasher: allocates its memory areas and computes the dummy hash.
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
            Some(OUTPUT_LEN),
        )
        .map_err(|e| HashingConfigError(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut areas = (0..config.max_concurrent)
            .map(|_| vec![Block::new(); argon2.params().block_count()])
            .collect::<Vec<_>>();
        let random = SaltString::generate(&mut OsRng);
        let dummy = hash_with(&argon2, random.as_str().as_bytes(), &mut areas[0])
            .map_err(|e| HashingConfigError(e.to_string()))?;
        Ok(Self {
            argon2,
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue_limit: config.max_concurrent.saturating_mul(DEFAULT_QUEUE_PER_SLOT),
            areas: Arc::new(Mutex::new(areas)),
            dummy: Arc::new(dummy),
        })
    }

    /// The same hasher, refusing a hash with [`Overloaded`] once `limit` others wait for
    /// a slot (0: refused whenever every slot is busy).
    #[must_use]
    pub fn with_queue_limit(mut self, limit: usize) -> Self {
        self.queue_limit = limit;
        self
    }

    /// Hashes a password with a fresh salt.
    pub async fn hash(&self, password: &Password) -> Result<PasswordHash, BoxError> {
        let argon2 = self.argon2.clone();
        let password = password.clone();
        self.run_blocking(move |area| {
            hash_with(&argon2, password.expose().as_bytes(), area).map_err(BoxError::from)
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
        let current = self.argon2.clone();
        let password = password.clone();
        // An account without a password costs what an unknown user does, and never matches.
        let hash = hash.filter(|hash| !hash.is_no_password());
        let user_exists = hash.is_some();
        let hash = hash.cloned().unwrap_or_else(|| (*self.dummy).clone());
        self.run_blocking(move |area| {
            let parsed = password_hash::PasswordHash::new(hash.as_str())?;
            let matches = verify_with(&parsed, password.expose().as_bytes(), area)?;
            Ok(match (matches, user_exists) {
                (true, true) if is_current(&current, &parsed) => Verification::Match,
                (true, true) => Verification::MatchNeedsRehash,
                _ => Verification::Mismatch,
            })
        })
        .await
    }

    /// Runs CPU- and memory-heavy work on the blocking pool, at most `max_concurrent` at
    /// a time, each in a memory area of its own, keeping the caller's tracing span.
    /// Refuses with [`Overloaded`] when `queue_limit` others already wait.
    async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, BoxError> + Send + 'static,
    ) -> Result<T, BoxError> {
        let permit = self.permit().await?;
        let areas = Arc::clone(&self.areas);
        let span = Span::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _in_flight = InFlight::start();
            let mut area = lock(&areas).pop().ok_or("no free hashing area")?;
            let result = span.in_scope(|| work(&mut area));
            lock(&areas).push(area);
            result
        })
        .await?
    }
}

impl PasswordHasher {
    /// A slot for one hash: at once when one is free, after a wait in the bounded queue
    /// otherwise.
    async fn permit(&self) -> Result<OwnedSemaphorePermit, BoxError> {
        let started = Instant::now();
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) => {
                let _place = Waiting::join(&self.waiting, self.queue_limit).ok_or(Overloaded)?;
                Arc::clone(&self.permits).acquire_owned().await?
            }
            Err(closed @ TryAcquireError::Closed) => return Err(closed.into()),
        };
        metrics::histogram!(WAIT_METRIC).record(started.elapsed().as_secs_f64());
        Ok(permit)
    }
}

/// A place in the queue for a hashing slot, given back when dropped (the slot came, or
/// the request was cancelled while waiting).
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    /// A place, unless `limit` are taken.
    fn join(waiting: &Arc<AtomicUsize>, limit: usize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(Arc::clone(waiting)))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts one running hash in `password_hash_in_flight`, until dropped (even by a panic).
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::gauge!(IN_FLIGHT_METRIC).increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(IN_FLIGHT_METRIC).decrement(1.0);
    }
}

/// The areas are only ever pushed and popped, so a panic elsewhere cannot leave the list
/// inconsistent: a poisoned lock is safe to use.
fn lock(areas: &Mutex<Vec<Vec<Block>>>) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
    areas
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn hash_with(
    argon2: &Argon2<'_>,
    password: &[u8],
    area: &mut [Block],
) -> Result<PasswordHash, password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0; password_hash::Salt::MAX_LENGTH];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes)?;
    let mut output = [0; OUTPUT_LEN];
    argon2.hash_password_into_with_memory(password, salt_bytes, &mut output, area)?;
    let phc = password_hash::PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: argon2.params().try_into()?,
        salt: Some(salt.as_salt()),
        hash: Some(password_hash::Output::new(&output)?),
    };
    Ok(PasswordHash(phc.to_string()))
}

/// Recomputes a stored hash with the parameters and salt it records, in `area` (or in a
/// fresh one when the stored parameters need more memory than the current ones).
fn verify_with(
    stored: &password_hash::PasswordHash<'_>,
    password: &[u8],
    area: &mut Vec<Block>,
) -> Result<bool, BoxError> {
    let algorithm = Algorithm::try_from(stored.algorithm)?;
    let version = stored
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)?;
    let expected = stored.hash.ok_or("the stored hash has no output")?;
    let salt = stored.salt.ok_or("the stored hash has no salt")?;
    let mut salt_bytes = [0; password_hash::Salt::MAX_LENGTH];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let recorded = Params::try_from(stored)?;
    let params = Params::new(
        recorded.m_cost(),
        recorded.t_cost(),
        recorded.p_cost(),
        Some(expected.len()),
    )?;
    let argon2 = Argon2::new(algorithm, version, params);
    let mut larger;
    let area = if area.len() >= argon2.params().block_count() {
        area
    } else {
        larger = vec![Block::new(); argon2.params().block_count()];
        &mut larger
    };
    let mut output = vec![0; expected.len()];
    argon2.hash_password_into_with_memory(
        password,
        salt_bytes,
        &mut output,
        area.as_mut_slice(),
    )?;
    // `Output`'s equality is constant-time.
    Ok(password_hash::Output::new(&output)? == expected)
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

    #[test]
    fn the_queue_default_said_in_words_is_the_queue_per_slot() {
        let queue = HashingConfig::SETTINGS
            .iter()
            .find(|setting| setting.key == "HASH_QUEUE_LIMIT")
            .expect("listed");
        assert_eq!(
            queue.default,
            DefaultValue::Computed("32 × `MAX_CONCURRENT_HASHES`")
        );
        assert_eq!(DEFAULT_QUEUE_PER_SLOT, 32);
    }

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
    async fn hashes_agree_with_the_argon2_crates_own_phc_implementation() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};

        let hasher = PasswordHasher::new(&cheap()).expect("valid config");
        let reference = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).expect("valid"),
        );
        let ours = hasher
            .hash(&Password::new("velvet-otter-harbour"))
            .await
            .expect("hashed");
        let parsed = password_hash::PasswordHash::new(ours.as_str()).expect("a PHC string");
        assert!(reference
            .verify_password(b"velvet-otter-harbour", &parsed)
            .is_ok());
        assert!(reference
            .verify_password(b"velvet-otter-harbouR", &parsed)
            .is_err());

        let salt = SaltString::generate(&mut OsRng);
        let theirs = reference
            .hash_password(b"velvet-otter-harbour", &salt)
            .expect("hashed");
        let theirs = PasswordHash::from_trusted(theirs.to_string());
        let outcome = hasher
            .verify(&Password::new("velvet-otter-harbour"), Some(&theirs))
            .await;
        assert_eq!(outcome.expect("verified"), Verification::Match);
    }

    #[tokio::test]
    async fn a_hash_needing_more_memory_than_the_current_parameters_still_verifies() {
        let bigger = PasswordHasher::new(&HashingConfig {
            memory_kib: 4096,
            ..cheap()
        })
        .expect("valid");
        let smaller = PasswordHasher::new(&cheap()).expect("valid config");
        let hash = bigger
            .hash(&Password::new("velvet-otter-harbour"))
            .await
            .expect("hashed");
        let outcome = smaller
            .verify(&Password::new("velvet-otter-harbour"), Some(&hash))
            .await;
        assert_eq!(outcome.expect("verified"), Verification::MatchNeedsRehash);
    }

    #[tokio::test]
    async fn many_concurrent_hashes_share_the_preallocated_areas() {
        let hasher = PasswordHasher::new(&cheap()).expect("valid config");
        let hashes = (0..16).map(|i| {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.hash(&Password::new(format!("password-{i}"))).await })
        });
        for hash in futures_join(hashes).await {
            hash.expect("no panic").expect("hashed");
        }
        assert_eq!(lock(&hasher.areas).len(), cheap().max_concurrent);
        assert_eq!(hasher.permits.available_permits(), cheap().max_concurrent);
    }

    async fn futures_join<T>(
        handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
    ) -> Vec<Result<T, tokio::task::JoinError>> {
        let mut results = Vec::new();
        for handle in handles {
            results.push(handle.await);
        }
        results
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

    #[tokio::test]
    async fn hashes_beyond_the_queue_limit_are_refused_at_once_as_overloaded() {
        let hasher = PasswordHasher::new(&HashingConfig {
            max_concurrent: 1,
            ..cheap()
        })
        .expect("valid config")
        .with_queue_limit(1);
        // Hold the only slot, so that every hash has to queue.
        let held = Arc::clone(&hasher.permits)
            .acquire_owned()
            .await
            .expect("a permit");
        let queued = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash(&Password::new("velvet-otter-harbour")).await }
        });
        while hasher.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        let refused = hasher
            .verify(&Password::new("velvet-otter-harbour"), None)
            .await
            .expect_err("the queue is full");
        assert!(is_overloaded(refused.as_ref()), "{refused}");
        drop(held);
        queued
            .await
            .expect("no panic")
            .expect("the queued hash runs once the slot is free");
        assert_eq!(hasher.waiting.load(Ordering::Acquire), 0);
        hasher
            .verify(&Password::new("velvet-otter-harbour"), None)
            .await
            .expect("room again");
    }

    #[test]
    fn overloaded_is_recognised_anywhere_in_an_error_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("login failed")]
        struct Outer(#[source] BoxError);
        assert!(is_overloaded(&Outer(Box::new(Overloaded))));
        assert!(!is_overloaded(&Outer("storage failure".into())));
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
