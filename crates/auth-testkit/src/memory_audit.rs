//! In-memory [`FailureCounter`] and [`AuditLog`], with the contracts of the real stores
//! (the [`crate::failures`] and [`crate::audit`] suites), for tests of throttling and of
//! the audit trail that need no database.
//!
//! As in [`crate::memory`], clones share their state, every operation takes the lock once
//! and finishes under it, and no operation ever reports a storage failure.

use std::{
    cmp::Reverse,
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use auth_domain::{
    audit::{AuditLog, AuthEvent, EventPage},
    throttle::{AttemptId, FailureCount, FailureCounter, ThrottleKey},
    timestamp::truncate_to_micros,
    RepositoryError, UserId,
};
use time::OffsetDateTime;

/// Locks `mutex`. Every operation finishes its checks before it writes, so a lock poisoned
/// by a failed test is safe to use.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Failed attempts in memory: one entry per failure and key, as the real stores keep them.
#[derive(Clone, Default)]
pub struct MemoryFailureCounter {
    failures: Arc<Mutex<Vec<(ThrottleKey, OffsetDateTime, AttemptId)>>>,
}

impl MemoryFailureCounter {
    /// An empty counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many failures are stored, under every key and at any time.
    pub fn len(&self) -> usize {
        lock(&self.failures).len()
    }

    /// Whether no failure is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for MemoryFailureCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryFailureCounter")
            .field("failures", &self.len())
            .finish()
    }
}

impl FailureCounter for MemoryFailureCounter {
    async fn failures(
        &self,
        keys: &[ThrottleKey],
        since: OffsetDateTime,
    ) -> Result<Vec<FailureCount>, RepositoryError> {
        let since = truncate_to_micros(since);
        let mut counted: HashMap<&ThrottleKey, FailureCount> = HashMap::new();
        let failures = lock(&self.failures);
        for (key, at, _) in failures.iter().filter(|(_, at, _)| *at >= since) {
            let count = counted.entry(key).or_insert(FailureCount::NONE);
            count.count += 1;
            count.oldest = Some(count.oldest.map_or(*at, |oldest| oldest.min(*at)));
        }
        Ok(keys
            .iter()
            .map(|key| counted.get(key).copied().unwrap_or(FailureCount::NONE))
            .collect())
    }

    async fn record_failure(
        &self,
        keys: &[ThrottleKey],
        at: OffsetDateTime,
        attempt: AttemptId,
    ) -> Result<(), RepositoryError> {
        let at = truncate_to_micros(at);
        lock(&self.failures).extend(keys.iter().map(|key| (key.clone(), at, attempt)));
        Ok(())
    }

    async fn withdraw(
        &self,
        keys: &[ThrottleKey],
        attempt: AttemptId,
    ) -> Result<(), RepositoryError> {
        lock(&self.failures).retain(|(key, _, id)| *id != attempt || !keys.contains(key));
        Ok(())
    }

    async fn reset(&self, key: &ThrottleKey) -> Result<(), RepositoryError> {
        lock(&self.failures).retain(|(stored, _, _)| stored != key);
        Ok(())
    }

    /// Everything at once: there is no statement to keep short.
    async fn purge_before(
        &self,
        before: OffsetDateTime,
        _batch: u64,
    ) -> Result<u64, RepositoryError> {
        let before = truncate_to_micros(before);
        let mut failures = lock(&self.failures);
        let kept_before = failures.len();
        failures.retain(|(_, at, _)| *at >= before);
        Ok((kept_before - failures.len()) as u64)
    }
}

/// The audit trail in memory.
#[derive(Clone, Default)]
pub struct MemoryAuditLog {
    events: Arc<Mutex<Vec<AuthEvent>>>,
}

impl MemoryAuditLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every stored event, in the order recorded: for tests that look at what the code
    /// under test wrote, events without a user included.
    pub fn events(&self) -> Vec<AuthEvent> {
        lock(&self.events).clone()
    }

    /// How many events are stored.
    pub fn len(&self) -> usize {
        lock(&self.events).len()
    }

    /// Whether no event is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for MemoryAuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryAuditLog")
            .field("events", &self.len())
            .finish()
    }
}

impl AuditLog for MemoryAuditLog {
    async fn record(&self, event: &AuthEvent) -> Result<(), RepositoryError> {
        let mut event = event.clone();
        event.at = truncate_to_micros(event.at);
        lock(&self.events).push(event);
        Ok(())
    }

    async fn recent_for_user(
        &self,
        user: UserId,
        page: &EventPage,
    ) -> Result<Vec<AuthEvent>, RepositoryError> {
        let limit = page.limit;
        let mut events: Vec<AuthEvent> = lock(&self.events)
            .iter()
            .filter(|event| event.user_id == Some(user) && page.admits(event))
            .cloned()
            .collect();
        // Newest first; the id (a UUIDv7) orders events of the same microsecond, as the
        // real stores do.
        events.sort_by_key(|event| Reverse((event.at, event.id)));
        events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(events)
    }

    /// Everything at once: there is no statement to keep short.
    async fn purge_before(
        &self,
        before: OffsetDateTime,
        _batch: u64,
    ) -> Result<u64, RepositoryError> {
        let before = truncate_to_micros(before);
        let mut events = lock(&self.events);
        let kept_before = events.len();
        events.retain(|event| event.at >= before);
        Ok((kept_before - events.len()) as u64)
    }
}
