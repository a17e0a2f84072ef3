//! What every [`Administration`] must do, on the database it shares with the user
//! repository, the session store and the audit log whose contents it shows.

use auth_domain::{
    admin::{Administration, UserSession},
    audit::{AuditLog, EventKind},
    clock::Clock,
    session::SessionHandle,
    User, UserId, UserRepository, UserSessions,
};
use time::Duration;
use tower_sessions::{session::Record, SessionStore};

use crate::{
    audit,
    sessions::{anonymous, handle, in_seconds, logged_in_as, tick},
    users::new_user,
};

async fn insert(users: &impl UserRepository, email: &str, username: &str) -> User {
    users
        .insert(new_user(email, username))
        .await
        .expect("insert works")
}

async fn create(store: &impl SessionStore, mut record: Record) -> Record {
    store.create(&mut record).await.expect("create works");
    record
}

async fn expired(store: &impl SessionStore, user: Option<UserId>) -> Record {
    let mut record = user.map_or_else(anonymous, logged_in_as);
    record.expiry_date = in_seconds(-1);
    create(store, record).await
}

async fn loads(store: &impl SessionStore, record: &Record) -> bool {
    store.load(&record.id).await.expect("load works").is_some()
}

/// Users come newest first, as many as asked for.
pub async fn users_are_listed_newest_first_up_to_the_limit(
    (users, _, _, admin): (
        impl UserRepository,
        impl SessionStore + UserSessions,
        impl AuditLog,
        impl Administration,
    ),
) {
    assert!(admin
        .list_users(10)
        .await
        .expect("listing works")
        .is_empty());
    let ada = insert(&users, "ada@example.com", "ada_l").await;
    tick().await;
    let grace = insert(&users, "grace@example.com", "grace_h").await;
    tick().await;
    let alan = insert(&users, "alan@example.com", "alan_t").await;

    let listed = admin.list_users(10).await.expect("listing works");
    assert_eq!(listed, [alan.clone(), grace.clone(), ada]);
    assert_eq!(
        admin.list_users(2).await.expect("listing works"),
        [alan, grace]
    );
    assert!(admin.list_users(0).await.expect("listing works").is_empty());
}

/// Every user's live sessions are listed with their owner, the one used last first; never
/// an anonymous or an expired one.
pub async fn every_users_live_sessions_are_listed_with_their_owner_most_recently_used_first(
    (_, store, _, admin): (
        impl UserRepository,
        impl SessionStore + UserSessions,
        impl AuditLog,
        impl Administration,
    ),
) {
    let (ada, grace) = (UserId::generate(), UserId::generate());
    let mut laptop = create(&store, logged_in_as(ada)).await;
    tick().await;
    let phone = create(&store, logged_in_as(grace)).await;
    tick().await;
    let tablet = create(&store, logged_in_as(ada)).await;
    create(&store, anonymous()).await;
    expired(&store, Some(grace)).await;
    tick().await;
    // A renewal moves the laptop to the top.
    laptop.expiry_date = in_seconds(7200);
    store.save(&laptop).await.expect("save works");

    let listed = admin.list_sessions(10).await.expect("listing works");
    let owned: Vec<(UserId, SessionHandle)> = listed
        .iter()
        .map(|s| (s.user_id, s.session.handle.clone()))
        .collect();
    assert_eq!(
        owned,
        [
            (ada, handle(&laptop)),
            (ada, handle(&tablet)),
            (grace, handle(&phone))
        ],
        "live sessions of users only, the one used last first, then the newest"
    );
    // Each is what its owner's own list shows.
    for UserSession { user_id, session } in &listed {
        let own = store
            .list_user_sessions(*user_id)
            .await
            .expect("listing works");
        assert!(own.contains(session), "{session:?} not in {own:?}");
    }
    let first_two = admin.list_sessions(2).await.expect("listing works");
    assert_eq!(first_two[..], listed[..2]);
    assert!(admin
        .list_sessions(0)
        .await
        .expect("listing works")
        .is_empty());
}

/// Any live session is revoked by its handle alone, whoever's it is, and the revocation
/// says whose it was; an unknown, an expired or an already revoked handle revokes nothing
/// and says so.
pub async fn a_session_is_revoked_by_handle_whoever_owns_it_and_only_while_live(
    (_, store, _, admin): (
        impl UserRepository,
        impl SessionStore + UserSessions,
        impl AuditLog,
        impl Administration,
    ),
) {
    let (ada, grace) = (UserId::generate(), UserId::generate());
    let adas = create(&store, logged_in_as(ada)).await;
    let graces = create(&store, logged_in_as(grace)).await;
    let dead = expired(&store, Some(ada)).await;

    let revoke = |record: &Record| {
        let handle = handle(record);
        let admin = &admin;
        async move { admin.revoke_session(&handle).await.expect("revoke works") }
    };
    assert_eq!(revoke(&adas).await, Some(ada), "the owner is told");
    assert!(!loads(&store, &adas).await);
    assert!(
        loads(&store, &graces).await,
        "only the one named is revoked"
    );
    assert_eq!(revoke(&adas).await, None, "a revoked session is gone");
    assert_eq!(
        revoke(&dead).await,
        None,
        "an expired session counts for nothing"
    );
    assert_eq!(
        revoke(&anonymous()).await,
        None,
        "an unknown handle revokes nothing"
    );
    assert_eq!(
        store
            .list_user_sessions(grace)
            .await
            .expect("listing works")
            .len(),
        1
    );
}

/// A purge deletes every expired session now, logged in or not, and leaves live ones.
pub async fn purging_deletes_every_expired_session_now_and_keeps_live_ones(
    (_, store, _, admin): (
        impl UserRepository,
        impl SessionStore + UserSessions,
        impl AuditLog,
        impl Administration,
    ),
) {
    let ada = UserId::generate();
    let live = [
        create(&store, logged_in_as(ada)).await,
        create(&store, anonymous()).await,
    ];
    expired(&store, Some(ada)).await;
    expired(&store, None).await;

    assert_eq!(
        admin.purge_expired_sessions().await.expect("purge works"),
        2
    );
    assert_eq!(
        admin.purge_expired_sessions().await.expect("purge works"),
        0
    );
    for record in &live {
        assert!(loads(&store, record).await, "a live session is kept");
    }
}

/// Events of everyone (and of no one) come newest first, to the microsecond and then by
/// id, as many as asked for.
pub async fn everyones_events_come_newest_first_up_to_the_limit(
    (users, _, log, admin): (
        impl UserRepository,
        impl SessionStore + UserSessions,
        impl AuditLog,
        impl Administration,
    ),
) {
    assert!(admin
        .recent_events(10)
        .await
        .expect("listing works")
        .is_empty());
    let ada = insert(&users, "ada@example.com", "ada_l").await.id;
    let grace = UserId::generate();
    // Three events within one millisecond, ordered by their microseconds and ids only.
    let now = Clock::system().now();
    let t = now.replace_microsecond(123_400).unwrap_or(now);
    let oldest = audit::event(EventKind::Registered, Some(ada), t - Duration::seconds(3));
    let stranger = audit::event(EventKind::LoginFailed, None, t - Duration::seconds(2));
    let first = audit::event(EventKind::LoginSucceeded, Some(grace), t);
    let second = audit::event(
        EventKind::LoginSucceeded,
        Some(ada),
        t + Duration::microseconds(200),
    );
    // Made after `second`, at the same instant: a greater id (UUIDv7s are monotonic).
    let third = audit::event(EventKind::LoggedOut, Some(grace), second.at);
    for event in [&second, &oldest, &third, &first, &stranger] {
        log.record(event).await.expect("recording works");
    }

    let recent = |limit| {
        let admin = &admin;
        async move { admin.recent_events(limit).await.expect("listing works") }
    };
    assert_eq!(
        recent(10).await,
        [
            third.clone(),
            second.clone(),
            first.clone(),
            stranger,
            oldest
        ]
    );
    assert_eq!(recent(1).await, std::slice::from_ref(&third));
    assert_eq!(recent(3).await, [third, second, first]);
    assert!(recent(0).await.is_empty());
}
