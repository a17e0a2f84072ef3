//! Recording auth events without ever failing the request that caused them.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use auth_domain::{
    audit::{AuditLog, AuthEvent, EventKind},
    session::Device,
    AuthService, UserId, UserRepository,
};
use tracing::Instrument as _;

/// The audit trail of a router: its log, and how many events could not be stored.
#[derive(Debug, Clone)]
pub(crate) struct AuditTrail<A> {
    log: A,
    lost: Arc<AtomicU64>,
}

impl<A: AuditLog> AuditTrail<A> {
    pub(crate) fn new(log: A) -> Self {
        Self {
            log,
            lost: Arc::default(),
        }
    }

    /// The log, to read a user's events.
    pub(crate) fn log(&self) -> &A {
        &self.log
    }

    /// Stores an event of `kind` about `user`, from `device`. A failure is logged at
    /// error level and counted, and the request goes on: an answered login must not turn
    /// into a 500 because its trace could not be written.
    pub(crate) async fn record(&self, kind: EventKind, user: Option<UserId>, device: &Device) {
        // Who the request is from, for its access line: the user who just registered or
        // logged in (a failed login names the account tried, not the client).
        if let (EventKind::Registered | EventKind::LoginSucceeded, Some(id)) = (kind, user) {
            crate::trace::note_user(id);
        }
        let event = AuthEvent::now(kind, user, device.ip, device.user_agent.clone());
        if let Err(error) = self.log.record(&event).await {
            let lost = self.lost.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(%error, event = %kind, lost, "could not store an audit event");
        }
    }

    /// Records a refused (throttled) login in the background: finding whose account it
    /// named costs a read, and a throttled request must cost no more than the one that
    /// refused it. An identifier that names no account is not kept.
    pub(crate) fn record_throttled_login<R: UserRepository>(
        &self,
        service: &AuthService<R>,
        login: &str,
        device: &Device,
    ) {
        let (trail, service, login, device) = (
            self.clone(),
            service.clone(),
            login.to_owned(),
            device.clone(),
        );
        let record = async move {
            let user = match service.find_by_login(&login).await {
                Ok(user) => user.map(|user| user.id),
                Err(error) => {
                    tracing::warn!(%error, "could not find whose login was throttled");
                    None
                }
            };
            trail.record(EventKind::LoginThrottled, user, &device).await;
        };
        // In the request's span, so that its lines carry the request id.
        tokio::spawn(record.instrument(tracing::Span::current()));
    }
}
