//! In-memory [`TokenStore`] and [`Outbox`], with the contracts of the real stores, for
//! tests of the mail use cases and of the outbox's worker that need no database.
//!
//! As in [`crate::memory`], clones share their state, every operation takes the lock once
//! and finishes under it, and no operation ever reports a storage failure. They are
//! written through [`crate::memory_stores::MemoryStores`]'s `commit`.

use std::{
    cmp::Reverse,
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
};

use auth_domain::{
    mail::{Leased, Mail, MailStatus, Outbox, OutboxEntry},
    timestamp::truncate_to_micros,
    tokens::{OneTimeToken, Purpose, TokenDigest, TokenStore},
    RepositoryError, UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::memory::lock;

/// One-time tokens in memory, by digest.
#[derive(Clone, Default)]
pub struct MemoryTokens {
    pub(crate) tokens: Arc<Mutex<HashMap<TokenDigest, OneTimeToken>>>,
}

impl MemoryTokens {
    /// No tokens.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many tokens are stored, live or not.
    pub fn len(&self) -> usize {
        lock(&self.tokens).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for MemoryTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTokens")
            .field("tokens", &self.len())
            .finish()
    }
}

impl TokenStore for MemoryTokens {
    async fn find(&self, digest: &TokenDigest) -> Result<Option<OneTimeToken>, RepositoryError> {
        Ok(lock(&self.tokens).get(digest).cloned())
    }

    async fn latest_issued(
        &self,
        user: UserId,
        purpose: Purpose,
    ) -> Result<Option<OffsetDateTime>, RepositoryError> {
        Ok(lock(&self.tokens)
            .values()
            .filter(|token| token.user_id == user && token.purpose == purpose)
            .map(|token| token.created_at)
            .max())
    }

    async fn purge_expired(&self, now: OffsetDateTime, batch: u64) -> Result<u64, RepositoryError> {
        let mut tokens = lock(&self.tokens);
        let expired: Vec<TokenDigest> = tokens
            .values()
            .filter(|token| token.expires_at <= now)
            .take(usize::try_from(batch).unwrap_or(usize::MAX))
            .map(|token| token.digest.clone())
            .collect();
        for digest in &expired {
            tokens.remove(digest);
        }
        Ok(expired.len() as u64)
    }
}

/// A mail in the memory outbox, with its lease.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    entry: OutboxEntry,
    lease: Option<(Uuid, OffsetDateTime)>,
}

/// The outbox in memory, in the order mail was written.
#[derive(Clone, Default)]
pub struct MemoryOutbox {
    mails: Arc<Mutex<Vec<Queued>>>,
}

impl MemoryOutbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `mail` in, pending and due at once.
    pub(crate) fn enqueue(&self, mail: Mail) {
        lock(&self.mails).push(Queued {
            entry: OutboxEntry {
                next_attempt_at: mail.created_at,
                mail,
                status: MailStatus::Pending,
                attempts: 0,
                last_error: None,
                sent_at: None,
            },
            lease: None,
        });
    }

    /// Every mail ever written and not purged, in the order it was written, bodies of
    /// unsent ones included: what a test of a use case reads its mail from.
    pub fn entries(&self) -> Vec<OutboxEntry> {
        lock(&self.mails).iter().map(|q| q.entry.clone()).collect()
    }

    /// How many mails it holds.
    pub fn len(&self) -> usize {
        lock(&self.mails).len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Settles the mail `leased` if its lease is still the one held, with `settle`.
    fn settle(&self, leased: &Leased, settle: impl FnOnce(&mut OutboxEntry)) -> bool {
        let mut mails = lock(&self.mails);
        let Some(queued) = mails.iter_mut().find(|q| {
            q.entry.mail.id == leased.mail.id && q.lease.is_some_and(|(id, _)| id == leased.lease)
        }) else {
            return false;
        };
        settle(&mut queued.entry);
        queued.lease = None;
        true
    }
}

impl fmt::Debug for MemoryOutbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryOutbox")
            .field("mails", &self.len())
            .finish()
    }
}

impl Outbox for MemoryOutbox {
    async fn lease_due(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: u32,
    ) -> Result<Vec<Leased>, RepositoryError> {
        let until = truncate_to_micros(now + lease);
        let mut mails = lock(&self.mails);
        let mut due: Vec<&mut Queued> = mails
            .iter_mut()
            .filter(|q| {
                q.entry.status == MailStatus::Pending
                    && q.entry.next_attempt_at <= now
                    && q.lease.is_none_or(|(_, until)| until <= now)
            })
            .collect();
        due.sort_by_key(|q| q.entry.next_attempt_at);
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|q| {
                let id = Uuid::new_v4();
                q.lease = Some((id, until));
                Leased {
                    mail: q.entry.mail.clone(),
                    attempts: q.entry.attempts,
                    lease: id,
                    until,
                }
            })
            .collect())
    }

    async fn mark_sent(
        &self,
        leased: &Leased,
        at: OffsetDateTime,
    ) -> Result<bool, RepositoryError> {
        Ok(self.settle(leased, |entry| {
            entry.status = MailStatus::Sent;
            entry.attempts += 1;
            entry.sent_at = Some(truncate_to_micros(at));
            entry.mail.body.clear();
        }))
    }

    async fn mark_attempt_failed(
        &self,
        leased: &Leased,
        error: &str,
        next_attempt_at: Option<OffsetDateTime>,
    ) -> Result<bool, RepositoryError> {
        Ok(self.settle(leased, |entry| {
            entry.attempts += 1;
            entry.last_error = Some(error.to_owned());
            match next_attempt_at {
                Some(at) => entry.next_attempt_at = truncate_to_micros(at),
                None => entry.status = MailStatus::Failed,
            }
        }))
    }

    async fn list(
        &self,
        status: Option<MailStatus>,
        limit: u64,
    ) -> Result<Vec<OutboxEntry>, RepositoryError> {
        let mut listed: Vec<OutboxEntry> = lock(&self.mails)
            .iter()
            .filter(|q| status.is_none_or(|status| q.entry.status == status))
            .map(|q| q.entry.clone())
            .collect();
        listed.sort_by_key(|entry| Reverse((entry.mail.created_at, entry.mail.id)));
        listed.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(listed)
    }

    async fn retry_failed(
        &self,
        id: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<u64, RepositoryError> {
        let mut retried = 0;
        for queued in lock(&self.mails).iter_mut().filter(|q| {
            q.entry.status == MailStatus::Failed && id.is_none_or(|id| q.entry.mail.id == id)
        }) {
            queued.entry.status = MailStatus::Pending;
            queued.entry.attempts = 0;
            queued.entry.next_attempt_at = truncate_to_micros(now);
            queued.lease = None;
            retried += 1;
        }
        Ok(retried)
    }

    async fn pending(&self) -> Result<u64, RepositoryError> {
        Ok(lock(&self.mails)
            .iter()
            .filter(|q| q.entry.status == MailStatus::Pending)
            .count() as u64)
    }

    async fn purge_settled_before(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> Result<u64, RepositoryError> {
        let mut mails = lock(&self.mails);
        let mut budget = batch;
        let before_len = mails.len();
        mails.retain(|q| {
            let settled_at = match q.entry.status {
                MailStatus::Pending => return true,
                MailStatus::Sent => q.entry.sent_at.unwrap_or(q.entry.mail.created_at),
                MailStatus::Failed => q.entry.next_attempt_at,
            };
            if budget > 0 && settled_at < before {
                budget -= 1;
                false
            } else {
                true
            }
        });
        Ok((before_len - mails.len()) as u64)
    }
}
