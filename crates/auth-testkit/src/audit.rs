//! What every [`AuditLog`] must do, whatever it keeps events in.

use std::net::IpAddr;

use auth_domain::{
    audit::{Actor, AuditLog, AuthEvent, EventCursor, EventKind, EventPage},
    clock::Clock,
    timestamp, UserId,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// An event of `kind` for `user` at `at`, from a typical browser.
pub fn event(kind: EventKind, user: Option<UserId>, at: OffsetDateTime) -> AuthEvent {
    AuthEvent {
        id: Uuid::now_v7(),
        at,
        kind,
        user_id: user,
        actor: Actor::User,
        request_id: Some(Uuid::new_v4().to_string()),
        ip: Some(IpAddr::from([203, 0, 113, 7])),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Firefox/140.0".to_owned()),
        count: 1,
    }
}

/// The current instant at the stored precision, with microseconds to lose if a store kept
/// less.
fn now() -> OffsetDateTime {
    let now = Clock::system().now();
    now.replace_microsecond(654_321).unwrap_or(now)
}

async fn record(log: &impl AuditLog, event: &AuthEvent) {
    log.record(event).await.expect("recording works");
}

async fn recent(log: &impl AuditLog, user: UserId, limit: u64) -> Vec<AuthEvent> {
    log.recent_for_user(user, &EventPage::newest(limit))
        .await
        .expect("listing works")
}

/// Pages through a user's events with the cursor, `page` at a time, of `kinds`: every
/// event, each once, newest first.
pub async fn paging_with_the_cursor_reaches_every_event_once_and_kinds_filter(log: impl AuditLog) {
    let user = UserId::generate();
    let t = now();
    let mut recorded = Vec::new();
    // Three share an instant: the id orders them.
    for (i, kind) in [
        EventKind::LoginSucceeded,
        EventKind::LoginFailed,
        EventKind::LoginFailed,
        EventKind::LoginThrottled,
        EventKind::LoginFailed,
        EventKind::LoggedOut,
        EventKind::LoginFailed,
    ]
    .into_iter()
    .enumerate()
    {
        let at = if (2..5).contains(&i) {
            t
        } else {
            t + time::Duration::seconds(i as i64)
        };
        let event = event(kind, Some(user), at);
        record(&log, &event).await;
        recorded.push(event);
    }
    record(
        &log,
        &event(EventKind::LoginFailed, Some(UserId::generate()), t),
    )
    .await;
    recorded.sort_by_key(|event| std::cmp::Reverse((event.at, event.id)));

    let page_through = |kinds: Vec<EventKind>| {
        let log = log.clone();
        async move {
            let mut seen = Vec::new();
            let mut page = EventPage {
                before: None,
                kinds,
                limit: 2,
            };
            loop {
                let events = log
                    .recent_for_user(user, &page)
                    .await
                    .expect("listing works");
                assert!(events.len() <= 2);
                let Some(last) = events.last() else { break };
                page.before = Some(EventCursor::after(last));
                seen.extend(events);
            }
            seen
        }
    };
    assert_eq!(page_through(Vec::new()).await, recorded);
    let failed: Vec<AuthEvent> = recorded
        .iter()
        .filter(|event| event.kind == EventKind::LoginFailed)
        .cloned()
        .collect();
    assert_eq!(page_through(vec![EventKind::LoginFailed]).await, failed);
    let either = page_through(vec![EventKind::LoginSucceeded, EventKind::LoggedOut]).await;
    assert_eq!(
        either.iter().map(|event| event.kind).collect::<Vec<_>>(),
        [EventKind::LoggedOut, EventKind::LoginSucceeded]
    );
}

/// An event reads back exactly as recorded, whatever its address, and with or without an
/// address and a User-Agent.
pub async fn an_event_reads_back_exactly_as_recorded(log: impl AuditLog) {
    let user = UserId::generate();
    let t = now();
    let full = event(EventKind::LoginSucceeded, Some(user), t);
    let mut ipv6 = event(
        EventKind::PasswordChanged,
        Some(user),
        t + Duration::seconds(1),
    );
    ipv6.ip = Some("2001:db8::ff00:42:8329".parse().expect("an address"));
    ipv6.user_agent = Some("curl/8.14 ünïcödé ✓".to_owned());
    let mut by_admin = event(
        EventKind::PasswordChanged,
        Some(user),
        t + Duration::seconds(3),
    );
    by_admin.actor = Actor::Admin;
    by_admin.request_id = None;
    by_admin.ip = None;
    by_admin.user_agent = None;
    by_admin.count = 54;
    let bare = AuthEvent {
        ip: None,
        user_agent: None,
        actor: Actor::System,
        request_id: None,
        ..event(EventKind::LoggedOut, Some(user), t + Duration::seconds(2))
    };
    for event in [&full, &ipv6, &bare, &by_admin] {
        record(&log, event).await;
    }
    assert_eq!(recent(&log, user, 10).await, [by_admin, bare, ipv6, full]);
}

/// Every kind is stored under its name and reads back as itself.
pub async fn every_kind_reads_back(log: impl AuditLog) {
    let user = UserId::generate();
    let t = now();
    let events: Vec<AuthEvent> = EventKind::ALL
        .into_iter()
        .enumerate()
        .map(|(i, kind)| event(kind, Some(user), t + Duration::seconds(i as i64)))
        .collect();
    for event in &events {
        record(&log, event).await;
    }
    let mut listed = recent(&log, user, 100).await;
    listed.reverse();
    assert_eq!(listed, events);
}

/// An instant finer than the stored precision reads back cut to the microsecond.
pub async fn a_finer_instant_reads_back_cut_to_the_microsecond(log: impl AuditLog) {
    let user = UserId::generate();
    let fine = now() + Duration::nanoseconds(789);
    let recorded = event(EventKind::Registered, Some(user), fine);
    record(&log, &recorded).await;
    let listed = recent(&log, user, 1).await;
    assert_eq!(
        listed,
        [AuthEvent {
            at: timestamp::truncate_to_micros(fine),
            ..recorded
        }]
    );
}

/// A user's events come newest first, whatever order they were recorded in; events of
/// the same instant come in the order of their ids (UUIDv7s: the order they were made).
pub async fn a_users_events_come_newest_first(log: impl AuditLog) {
    let user = UserId::generate();
    let t = now();
    let first = event(EventKind::Registered, Some(user), t - Duration::minutes(2));
    let second = event(
        EventKind::LoginFailed,
        Some(user),
        t - Duration::microseconds(1),
    );
    let third = event(EventKind::LoginSucceeded, Some(user), t);
    let fourth = event(EventKind::LoggedOut, Some(user), t);
    assert!(third.id < fourth.id, "UUIDv7s grow");
    for event in [&third, &first, &fourth, &second] {
        record(&log, event).await;
    }
    assert_eq!(recent(&log, user, 10).await, [fourth, third, second, first]);
}

/// The limit keeps the most recent events; a limit of zero lists none.
pub async fn the_limit_keeps_the_most_recent_events(log: impl AuditLog) {
    let user = UserId::generate();
    let t = now();
    let events: Vec<AuthEvent> = (0..5)
        .map(|i| event(EventKind::LoginFailed, Some(user), t + Duration::seconds(i)))
        .collect();
    for event in &events {
        record(&log, event).await;
    }
    let listed = recent(&log, user, 3).await;
    let newest: Vec<AuthEvent> = events[2..].iter().rev().cloned().collect();
    assert_eq!(listed, newest);
    assert_eq!(recent(&log, user, 0).await, []);
    assert_eq!(recent(&log, user, 50).await.len(), 5);
}

/// A listing holds that user's events only.
pub async fn only_that_users_events_are_listed(log: impl AuditLog) {
    let (ada, grace) = (UserId::generate(), UserId::generate());
    let t = now();
    let adas = event(EventKind::LoginSucceeded, Some(ada), t);
    let graces = event(
        EventKind::LoginSucceeded,
        Some(grace),
        t + Duration::seconds(1),
    );
    record(&log, &adas).await;
    record(&log, &graces).await;
    assert_eq!(recent(&log, ada, 10).await, [adas]);
    assert_eq!(recent(&log, grace, 10).await, [graces]);
    assert_eq!(recent(&log, UserId::generate(), 10).await, []);
}

/// An event of nobody's account (a failed login for an unknown identifier) is stored, as
/// the purge shows, yet listed for no user.
pub async fn an_event_without_a_user_is_stored_but_listed_for_nobody(log: impl AuditLog) {
    let user = UserId::generate();
    let t = now();
    let strangers = event(EventKind::LoginFailed, None, t);
    let users = event(EventKind::LoginFailed, Some(user), t);
    record(&log, &strangers).await;
    record(&log, &users).await;
    assert_eq!(recent(&log, user, 10).await, [users]);
    let purged = log
        .purge_before(t + Duration::seconds(1), 10)
        .await
        .expect("purging works");
    assert_eq!(purged, 2, "both events were stored");
    assert_eq!(recent(&log, user, 10).await, []);
}

/// A purge deletes every event before its cut-off, batch after batch, and keeps the
/// others; it answers how many it deleted.
pub async fn a_purge_deletes_old_events_in_batches_and_keeps_new_ones(log: impl AuditLog) {
    let user = UserId::generate();
    let t = now();
    let cutoff = t - Duration::days(90);
    for i in 0..7 {
        let owner = (i % 2 == 0).then_some(user);
        record(
            &log,
            &event(
                EventKind::LoginFailed,
                owner,
                cutoff - Duration::hours(i + 1),
            ),
        )
        .await;
    }
    record(
        &log,
        &event(
            EventKind::LoginFailed,
            Some(user),
            cutoff - Duration::microseconds(1),
        ),
    )
    .await;
    let at_cutoff = event(EventKind::LoginSucceeded, Some(user), cutoff);
    let recent_one = event(EventKind::LoggedOut, Some(user), t);
    record(&log, &at_cutoff).await;
    record(&log, &recent_one).await;

    let purged = log.purge_before(cutoff, 3).await.expect("purging works");
    assert_eq!(purged, 8, "eight old events, over several batches");
    assert_eq!(
        recent(&log, user, 10).await,
        [recent_one.clone(), at_cutoff.clone()],
        "an event at the cut-off itself is not older than it"
    );
    let purged = log.purge_before(cutoff, 3).await.expect("purging works");
    assert_eq!(purged, 0, "nothing left to purge");

    // A count that is a multiple of the batch ends too.
    for i in 1..=6 {
        record(
            &log,
            &event(
                EventKind::LoginFailed,
                Some(user),
                cutoff - Duration::minutes(i),
            ),
        )
        .await;
    }
    let purged = log.purge_before(cutoff, 3).await.expect("purging works");
    assert_eq!(purged, 6);
    assert_eq!(recent(&log, user, 10).await, [recent_one, at_cutoff]);
}
