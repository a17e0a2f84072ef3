//! Forgetting what is no longer needed: expired sessions, failed logins past their window,
//! audit events past their retention, expired one-time tokens and WebAuthn challenges and
//! settled mail, deleted in
//! batches by one background task on every backend. (MongoDB's TTL index would delete expired sessions too, within a minute
//! or so; the purge decides by the service's clock, as every other expiry does.)

use std::time::Duration;

use auth_domain::{
    admin::Administration, audit::AuditLog, clock::Clock, factors::ChallengeStore, mail::Outbox,
    throttle::FailureCounter, tokens::TokenStore, Stores,
};
use auth_store_sql::SESSIONS_PURGED_METRIC;

/// Rows or documents deleted per statement: small enough that no purge holds locks for
/// long, large enough to keep up.
const BATCH: u64 = 1_000;

/// How long sent or failed mail is kept at least, whatever the events' retention: long
/// enough for an operator to see what went out (`app mail list`) and retry what failed.
const MAIL_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

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
pub(crate) async fn old_entries_periodically<B: Stores>(
    stores: B,
    clock: Clock,
    retention: Retention,
    every: Duration,
) {
    // A zero period would make `interval` panic inside the spawned task.
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match stores.admin().purge_expired_sessions().await {
            Ok(0) => {}
            Ok(deleted) => {
                metrics::counter!(SESSIONS_PURGED_METRIC).increment(deleted);
                tracing::debug!(deleted, "purged expired sessions");
            }
            Err(error) => {
                tracing::error!(%error, "purging expired sessions failed; retrying at the next tick");
            }
        }
        let now = clock.now();
        match stores
            .failures()
            .purge_before(now - retention.failures, BATCH)
            .await
        {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "purged old failed logins"),
            Err(error) => {
                tracing::error!(%error, "purging failed logins failed; retrying at the next tick");
            }
        }
        match stores
            .audit()
            .purge_before(now - retention.events, BATCH)
            .await
        {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "purged old audit events"),
            Err(error) => {
                tracing::error!(%error, "purging audit events failed; retrying at the next tick");
            }
        }
        match stores.tokens().purge_expired(now, BATCH).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "purged expired one-time tokens"),
            Err(error) => {
                tracing::error!(%error, "purging one-time tokens failed; retrying at the next tick");
            }
        }
        match stores.challenges().purge_expired(now, BATCH).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "purged expired WebAuthn challenges"),
            Err(error) => {
                tracing::error!(%error, "purging WebAuthn challenges failed; retrying at the next tick");
            }
        }
        match stores
            .outbox()
            .purge_settled_before(now - retention.mail(), BATCH)
            .await
        {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "purged settled mail"),
            Err(error) => {
                tracing::error!(%error, "purging settled mail failed; retrying at the next tick");
            }
        }
    }
}

impl Retention {
    /// Sent and failed mail: as long as the events, and at least [`MAIL_RETENTION`].
    fn mail(&self) -> Duration {
        self.events.max(MAIL_RETENTION)
    }
}
