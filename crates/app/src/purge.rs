//! Forgetting what is no longer needed: failed logins past their window and audit events
//! past their retention, deleted in batches by one background task on every backend.
//! (Expired sessions have their own purge on SQL and a TTL index on MongoDB.)

use std::time::Duration;

use auth_domain::{audit::AuditLog, throttle::FailureCounter};
use time::OffsetDateTime;

/// Rows or documents deleted per statement: small enough that no purge holds locks for
/// long, large enough to keep up.
const BATCH: u64 = 1_000;

/// How long entries are kept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retention {
    /// Failed attempts: the longest window that counts them.
    pub(crate) failures: time::Duration,
    /// Audit events (`AUDIT_RETENTION_DAYS`).
    pub(crate) events: Duration,
}

/// Purges now and then every `every`, forever: meant for `tokio::spawn`. A failed purge is
/// logged and retried at the next tick.
pub(crate) async fn old_entries_periodically<F: FailureCounter, A: AuditLog>(
    failures: F,
    audit: A,
    retention: Retention,
    every: Duration,
) {
    // A zero period would make `interval` panic inside the spawned task.
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = OffsetDateTime::now_utc();
        match failures.purge_before(now - retention.failures, BATCH).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "purged old failed logins"),
            Err(error) => {
                tracing::error!(%error, "purging failed logins failed; retrying at the next tick");
            }
        }
        match audit.purge_before(now - retention.events, BATCH).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "purged old audit events"),
            Err(error) => {
                tracing::error!(%error, "purging audit events failed; retrying at the next tick");
            }
        }
    }
}
