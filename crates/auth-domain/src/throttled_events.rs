//! Throttled logins in the audit trail, without letting a flood of them grow it.
//!
//! A refused login is answered at once; its event is written afterwards by one worker
//! task, fed through a bounded queue: when the queue is full, the event is dropped and
//! counted (`auth_audit_events_dropped_total`), and nothing is ever spawned per request.
//! Repeated refusals of one account (as typed, normalised) from one client within
//! [`WINDOW`] become one event: the first is written at once, with a count of 1; the rest
//! are counted, and written as one more event, with their count, once the window closes.
//! So a client replaying a refused request thousands of times a second writes two events
//! a minute, and the owner still sees that it happened and how often.

use std::{collections::HashMap, net::IpAddr, time::Duration as StdDuration};

use time::{Duration, OffsetDateTime};
use tokio::sync::mpsc;

use crate::{
    accounts::Context,
    audit::{AuditLog, AuthEvent, EventKind},
    clock::Clock,
    throttle::account_name,
    AuthService, UserId, UserRepository,
};

/// The window of one coalesced event.
pub const WINDOW: Duration = Duration::MINUTE;
/// Refusals waiting to be recorded, at most.
const QUEUE: usize = 1024;
/// Windows open at once, at most (distinct account and client pairs within a minute).
const MOST_OPEN: usize = 10_000;
/// How often closed windows are looked for.
const TICK: StdDuration = StdDuration::from_secs(1);

/// `auth_audit_events_dropped_total`: audit events not written because the queue of
/// throttled logins, or its table of open windows, was full.
pub const AUDIT_EVENTS_DROPPED: &str = "auth_audit_events_dropped_total";

/// A refused login on its way to the worker.
pub(crate) struct Refused {
    pub(crate) login: String,
    pub(crate) context: Context,
    pub(crate) at: OffsetDateTime,
}

/// The sending side; the worker stops, writing what it still holds, once every sender is
/// dropped.
#[derive(Clone)]
pub(crate) struct ThrottledEvents(mpsc::Sender<Refused>);

impl ThrottledEvents {
    /// Starts the worker, writing with `audit`, finding users through `service`.
    pub(crate) fn start<R: UserRepository, A: AuditLog>(
        service: AuthService<R>,
        audit: A,
        clock: Clock,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let worker = Worker {
            service,
            audit,
            clock,
            open: HashMap::new(),
        };
        tokio::spawn(worker.run(receiver));
        Self(sender)
    }

    /// Queues `refused`; drops and counts it when the queue is full.
    pub(crate) fn push(&self, refused: Refused) {
        if self.0.try_send(refused).is_err() {
            metrics::counter!(AUDIT_EVENTS_DROPPED).increment(1);
        }
    }
}

/// Refusals of one account from one client since the window opened.
struct Window {
    opened: OffsetDateTime,
    user: Option<UserId>,
    /// The latest refusal's, for the event that closes the window.
    context: Context,
    /// Refused since the first, not yet written.
    pending: u32,
}

struct Worker<R, A> {
    service: AuthService<R>,
    audit: A,
    clock: Clock,
    open: HashMap<(String, Option<IpAddr>), Window>,
}

impl<R: UserRepository, A: AuditLog> Worker<R, A> {
    async fn run(mut self, mut receiver: mpsc::Receiver<Refused>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                refused = receiver.recv() => match refused {
                    Some(refused) => self.refused(refused).await,
                    None => break,
                },
                _ = tick.tick() => self.close_windows(false).await,
            }
        }
        self.close_windows(true).await;
    }

    async fn refused(&mut self, refused: Refused) {
        let key = (account_name(&refused.login), refused.context.device.ip);
        if let Some(window) = self.open.get_mut(&key) {
            if refused.at - window.opened < WINDOW {
                window.pending = window.pending.saturating_add(1);
                window.context = refused.context;
                return;
            }
        }
        if let Some(closed) = self.open.remove(&key) {
            self.write(closed).await;
        }
        if self.open.len() >= MOST_OPEN {
            self.close_windows(false).await;
            if self.open.len() >= MOST_OPEN {
                metrics::counter!(AUDIT_EVENTS_DROPPED).increment(1);
                return;
            }
        }
        let user = match self.service.find_by_login(&refused.login).await {
            Ok(user) => user.map(|user| user.id),
            Err(error) => {
                tracing::warn!(%error, "could not find whose login was throttled");
                None
            }
        };
        self.record(user, &refused.context, 1).await;
        let window = Window {
            opened: refused.at,
            user,
            context: refused.context,
            pending: 0,
        };
        self.open.insert(key, window);
    }

    /// Writes and forgets the windows that have closed (every one when `all`).
    async fn close_windows(&mut self, all: bool) {
        let now = self.clock.now();
        let closed: Vec<_> = self
            .open
            .iter()
            .filter(|(_, window)| all || now - window.opened >= WINDOW)
            .map(|(key, _)| key.clone())
            .collect();
        for key in closed {
            if let Some(window) = self.open.remove(&key) {
                self.write(window).await;
            }
        }
    }

    /// The event of a closed window's refusals after its first, if any.
    async fn write(&self, window: Window) {
        if window.pending > 0 {
            self.record(window.user, &window.context, window.pending)
                .await;
        }
    }

    async fn record(&self, user: Option<UserId>, context: &Context, count: u32) {
        // An identifier that names no account is not kept: no personal data of strangers.
        if user.is_none() {
            return;
        }
        let mut event = AuthEvent::new(EventKind::LoginThrottled, user, context, self.clock.now());
        event.count = count;
        if let Err(error) = self.audit.record(&event).await {
            metrics::counter!(AUDIT_EVENTS_DROPPED).increment(1);
            tracing::error!(%error, "could not store a throttled login's event");
        }
    }
}
