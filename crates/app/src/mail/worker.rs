//! The outbox's worker: leases the mail that is due, sends it, settles it.
//!
//! Two instances never send one mail twice: a mail is sent only under a lease that the
//! outbox gives one worker at a time (`Outbox::lease_due`), and a send starts only while
//! the lease has at least `send_timeout` left, so that it ends (or is given up) before
//! another worker can take the mail. A mail whose send succeeded but whose settling failed
//! (the database went away) is sent again once its lease ends: delivery is at least once,
//! and the `Message-ID` of both copies is the same.
//!
//! A failed send is retried with an exponential backoff, and after the last attempt the
//! mail is marked failed (logged with its id and kind, never its body, which may hold a
//! live token); `app mail retry` makes it pending again.

use std::{sync::Arc, time::Duration};

use auth_domain::{
    clock::Clock,
    mail::{Leased, Mail, Outbox},
    seal::Seal,
};
use lettre::message::Mailbox;
use tokio::{
    sync::{watch, Notify},
    task::JoinHandle,
};

use super::{message::message, Transport};

/// Mails handed to the transport.
pub const SENT_METRIC: &str = "auth_mail_sent_total";
/// Failed attempts that will be retried.
pub const RETRIED_METRIC: &str = "auth_mail_retried_total";
/// Mails given up on after their last attempt.
pub const FAILED_METRIC: &str = "auth_mail_failed_total";
/// Mails pending in the outbox, as the last round counted them.
pub const DEPTH_METRIC: &str = "auth_mail_outbox_depth";

/// The longest failure message kept with a mail.
const MAX_ERROR_CHARS: usize = 500;

/// When a failed mail is tried again, and when it is given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failed attempt; each further one doubles it.
    pub first: Duration,
    /// The longest wait.
    pub cap: Duration,
    /// Attempts in all: the mail is failed after this many.
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// 5 s, doubling, at most 15 min, 8 attempts: the last about 10 minutes after the
    /// first, long enough to ride out a mail server's restart.
    fn default() -> Self {
        Self {
            first: Duration::from_secs(5),
            cap: Duration::from_secs(15 * 60),
            max_attempts: 8,
        }
    }
}

impl Backoff {
    /// The wait after `attempts` failed attempts, or `None` when that was the last.
    pub fn after(&self, attempts: u32) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(31);
        Some(self.first.saturating_mul(1 << doublings).min(self.cap))
    }
}

/// How the worker paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// How often the outbox is looked at when nobody wakes the worker: mail written by
    /// another instance, or due again after a backoff, waits at most this long.
    pub poll: Duration,
    /// How long a lease holds a mail for this worker.
    pub lease: Duration,
    /// The most mails leased at once.
    pub batch: u32,
    /// The longest one send may take, well within `lease`.
    pub send_timeout: Duration,
    /// Retries.
    pub backoff: Backoff,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            lease: Duration::from_secs(5 * 60),
            batch: 20,
            send_timeout: Duration::from_secs(30),
            backoff: Backoff::default(),
        }
    }
}

/// Sends what the outbox holds, from `from`, through a [`Transport`].
#[derive(Debug)]
pub struct OutboxWorker<O> {
    outbox: O,
    transport: Transport,
    from: Mailbox,
    clock: Clock,
    wake: Arc<Notify>,
    settings: WorkerSettings,
    /// Opens the sealed bodies (`auth_domain::seal`); without one, bodies are sent as
    /// stored.
    seal: Option<Seal>,
}

/// What became of one leased mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Retried,
    Failed,
    /// Not tried: too little of the lease was left, or another worker holds it now.
    Skipped,
}

impl<O: Outbox> OutboxWorker<O> {
    /// A worker on `outbox`, with the default [`WorkerSettings`]. `wake` is notified
    /// after a commit that wrote a mail (`auth_domain::account_mail::MailSettings`'s
    /// `enqueued`): the worker then looks at once instead of at its next poll.
    pub fn new(
        outbox: O,
        transport: Transport,
        from: Mailbox,
        clock: Clock,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            outbox,
            transport,
            from,
            clock,
            wake,
            settings: WorkerSettings::default(),
            seal: None,
        }
    }

    /// The same worker, opening sealed bodies with `seal`.
    #[must_use]
    pub fn with_seal(mut self, seal: Seal) -> Self {
        self.seal = Some(seal);
        self
    }

    /// The same worker, paced by `settings`.
    #[must_use]
    pub fn with_settings(mut self, settings: WorkerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Runs in a task of its own until [`RunningWorker::stop`] (or until dropped).
    pub fn spawn(self) -> RunningWorker {
        let (stop, stopping) = watch::channel(false);
        RunningWorker {
            stop,
            task: Some(tokio::spawn(self.run(stopping))),
        }
    }

    /// Rounds until `stop` turns true: after a round that leased a whole batch at once
    /// (more may be due), otherwise when woken or after `poll`.
    async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let leased = match self.round(&stop).await {
                Ok(leased) => leased,
                Err(error) => {
                    tracing::warn!(%error, "cannot lease mail from the outbox; trying again");
                    0
                }
            };
            self.record_depth().await;
            if leased >= self.settings.batch as usize {
                continue;
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.settings.poll) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One round: leases what is due, sends it, settles it. Returns how many mails it
    /// leased.
    ///
    /// # Errors
    ///
    /// When the outbox cannot be read; a failure to settle one mail is logged.
    pub async fn run_once(&self) -> Result<usize, auth_domain::RepositoryError> {
        let (_, never) = watch::channel(false);
        self.round(&never).await
    }

    async fn round(
        &self,
        stop: &watch::Receiver<bool>,
    ) -> Result<usize, auth_domain::RepositoryError> {
        let lease = time::Duration::try_from(self.settings.lease).unwrap_or(time::Duration::MAX);
        let leased = self
            .outbox
            .lease_due(self.clock.now(), lease, self.settings.batch)
            .await?;
        let count = leased.len();
        for mail in leased {
            // What is left stays leased until its lease ends; then any worker takes it.
            if *stop.borrow() {
                break;
            }
            self.deliver(&mail).await;
        }
        Ok(count)
    }

    /// Sends one leased mail and settles it.
    async fn deliver(&self, leased: &Leased) -> Outcome {
        let mail = &leased.mail;
        let send_timeout =
            time::Duration::try_from(self.settings.send_timeout).unwrap_or(time::Duration::MAX);
        if self.clock.now() + send_timeout > leased.until {
            tracing::debug!(mail_id = %mail.id, "too little of the lease is left to send; leaving it");
            return Outcome::Skipped;
        }
        let opened = match &self.seal {
            Some(seal) => seal.open(&mail.body).map(|body| Mail {
                body,
                ..mail.clone()
            }),
            None => Ok(mail.clone()),
        };
        let sent = match opened
            .map_err(|error| error.to_string())
            .and_then(|mail| message(&mail, &self.from).map_err(|error| error.to_string()))
        {
            // A mail that cannot be opened or made into a message never will be: no retry.
            Err(error) => Err((error, false)),
            Ok(message) => {
                match tokio::time::timeout(self.settings.send_timeout, self.transport.send(message))
                    .await
                {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(error)) => Err((error.to_string(), true)),
                    Err(_) => Err((
                        format!("no answer within {:?}", self.settings.send_timeout),
                        true,
                    )),
                }
            }
        };
        let attempts = leased.attempts.saturating_add(1);
        let (settled, outcome) = match sent {
            Ok(()) => {
                let settled = self.outbox.mark_sent(leased, self.clock.now()).await;
                (settled, Outcome::Sent)
            }
            Err((error, retry)) => {
                let next = retry
                    .then(|| self.settings.backoff.after(attempts))
                    .flatten()
                    .and_then(|wait| time::Duration::try_from(wait).ok())
                    .map(|wait| self.clock.now() + wait);
                let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
                let outcome = match next {
                    Some(next) => {
                        tracing::warn!(
                            mail_id = %mail.id, kind = %mail.kind, attempts, %error, retry_at = %next,
                            "sending a mail failed; it will be retried"
                        );
                        Outcome::Retried
                    }
                    None => {
                        tracing::error!(
                            mail_id = %mail.id, kind = %mail.kind, attempts, %error,
                            "sending a mail failed for the last time; it is marked failed \
                             (`app mail retry` tries it again)"
                        );
                        Outcome::Failed
                    }
                };
                let settled = self.outbox.mark_attempt_failed(leased, &error, next).await;
                (settled, outcome)
            }
        };
        match settled {
            Ok(true) => {
                let metric = match outcome {
                    Outcome::Sent => SENT_METRIC,
                    Outcome::Retried => RETRIED_METRIC,
                    Outcome::Failed => FAILED_METRIC,
                    Outcome::Skipped => return outcome,
                };
                metrics::counter!(metric, "kind" => mail.kind.as_str()).increment(1);
                outcome
            }
            Ok(false) => {
                tracing::warn!(
                    mail_id = %mail.id, kind = %mail.kind,
                    "the lease of a mail ended before it was settled; another worker may send it again"
                );
                Outcome::Skipped
            }
            Err(error) => {
                tracing::error!(
                    mail_id = %mail.id, kind = %mail.kind, %error,
                    "cannot settle a mail; it is sent again once its lease ends"
                );
                Outcome::Skipped
            }
        }
    }

    async fn record_depth(&self) {
        match self.outbox.pending().await {
            // A gauge is a float; past 2^53 mails precision is the least worry.
            #[allow(clippy::cast_precision_loss)]
            Ok(depth) => metrics::gauge!(DEPTH_METRIC).set(depth as f64),
            Err(error) => tracing::debug!(%error, "cannot count the pending mail"),
        }
    }
}

/// A worker running in its own task: stopped by [`RunningWorker::stop`], or aborted when
/// dropped.
#[derive(Debug)]
pub struct RunningWorker {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningWorker {
    /// Asks the worker to stop after the mail it is sending, and waits at most `grace`
    /// for it; then aborts it. What it leased and did not send is sent once the lease
    /// ends, by this instance after a restart or by another.
    pub async fn stop(mut self, grace: Duration) {
        self.stop.send_replace(true);
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                tracing::warn!("the mail worker did not stop within {grace:?}; aborting it");
                task.abort();
            }
        }
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_its_first_wait_up_to_its_cap_then_gives_up() {
        let backoff = Backoff {
            first: Duration::from_secs(5),
            cap: Duration::from_secs(60),
            max_attempts: 6,
        };
        let waits: Vec<Option<u64>> = (1..=7)
            .map(|attempts| backoff.after(attempts).map(|wait| wait.as_secs()))
            .collect();
        assert_eq!(
            waits,
            [Some(5), Some(10), Some(20), Some(40), Some(60), None, None]
        );
    }

    #[test]
    fn the_default_backoff_gives_up_after_eight_attempts_about_ten_minutes_on() {
        let backoff = Backoff::default();
        let total: Duration = (1..8).filter_map(|attempts| backoff.after(attempts)).sum();
        assert_eq!(total, Duration::from_secs(5 * 127));
        assert_eq!(backoff.after(8), None);
    }

    #[test]
    fn a_send_ends_well_within_the_lease() {
        let settings = WorkerSettings::default();
        assert!(settings.send_timeout * 4 <= settings.lease);
    }
}
