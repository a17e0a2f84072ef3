//! What every session store must do, whatever it stores sessions in.

use std::{collections::HashMap, net::IpAddr, time::Duration as StdDuration};

use auth_domain::{
    clock::Clock,
    session::{self, Device, Login, SessionHandle, SessionInfo},
    User, UserId, UserSessions,
};
use time::{Duration, OffsetDateTime};
use tower_sessions::{
    session::{Id, Record},
    SessionStore,
};

/// A record expiring in an hour, holding a logged-in user as the login manager writes it.
pub fn record() -> Record {
    logged_in_as(UserId::generate())
}

/// The user [`logged_in_as`] logs in: a stand-in with the id `user`, never stored.
pub fn stand_in(user: UserId) -> User {
    let mut stand_in = crate::users::new_user("someone@example.com", "someone").into_user();
    stand_in.id = user;
    stand_in
}

/// A record expiring in an hour, with `user` logged in on it (as a login writes it).
pub fn logged_in_as(user: UserId) -> Record {
    let mut data = session::logged_in(&stand_in(user), Clock::system().now());
    data.insert("counter".to_owned(), serde_json::json!(1));
    Record {
        id: Id::default(),
        data,
        expiry_date: in_seconds(3600),
    }
}

/// A record expiring in an hour that nobody is logged in on.
pub fn anonymous() -> Record {
    Record {
        id: Id::default(),
        data: HashMap::from([("counter".to_owned(), serde_json::json!(1))]),
        expiry_date: in_seconds(3600),
    }
}

pub(crate) fn in_seconds(seconds: i64) -> OffsetDateTime {
    Clock::system().now() + Duration::seconds(seconds)
}

/// Stores keep expiry dates to the millisecond at least; the API only ever needs seconds.
fn assert_same_record(loaded: &Record, expected: &Record) {
    assert_eq!(loaded.id, expected.id);
    assert_eq!(loaded.data, expected.data);
    let drift = (loaded.expiry_date - expected.expiry_date).abs();
    assert!(
        drift < Duration::milliseconds(1),
        "expiry drifted by {drift}"
    );
}

async fn create(store: &impl SessionStore, record: &mut Record) {
    store.create(record).await.expect("create works");
}

async fn load(store: &impl SessionStore, id: &Id) -> Option<Record> {
    store.load(id).await.expect("load works")
}

/// What was created loads back: same id, same data, same expiry.
pub async fn a_created_session_loads_back(store: impl SessionStore) {
    let mut record = record();
    create(&store, &mut record).await;
    let loaded = load(&store, &record.id).await.expect("the session exists");
    assert_same_record(&loaded, &record);
}

/// An id never stored loads nothing.
pub async fn an_unknown_session_loads_nothing(store: impl SessionStore) {
    assert_eq!(load(&store, &Id::default()).await, None);
}

/// An id collision at `create` picks another id; the existing session is untouched.
pub async fn create_never_overwrites_an_existing_session(store: impl SessionStore) {
    let mut first = record();
    create(&store, &mut first).await;

    let mut colliding = record();
    colliding.id = first.id;
    colliding
        .data
        .insert("intruder".into(), serde_json::json!(true));
    create(&store, &mut colliding).await;

    assert_ne!(
        colliding.id, first.id,
        "create must move a colliding record to a new id"
    );
    assert_same_record(&load(&store, &first.id).await.expect("still there"), &first);
    assert_same_record(
        &load(&store, &colliding.id)
            .await
            .expect("stored under its new id"),
        &colliding,
    );
}

/// `save` replaces the data and the expiry of a stored session.
pub async fn save_updates_an_existing_session(store: impl SessionStore) {
    let mut record = record();
    create(&store, &mut record).await;
    record.data.insert("counter".into(), serde_json::json!(2));
    record.expiry_date = in_seconds(7200);
    store.save(&record).await.expect("save works");
    assert_same_record(&load(&store, &record.id).await.expect("exists"), &record);
}

/// A request still in flight after a logout must not bring the session back.
pub async fn save_never_brings_back_a_deleted_session(store: impl SessionStore) {
    let mut record = record();
    create(&store, &mut record).await;
    store.delete(&record.id).await.expect("delete works");
    store
        .save(&record)
        .await
        .expect("saving a deleted session is not an error");
    assert_eq!(load(&store, &record.id).await, None);
}

/// A session past its expiry is dead, whether or not anything has purged it yet.
pub async fn an_expired_session_never_loads(store: impl SessionStore) {
    let mut record = record();
    record.expiry_date = in_seconds(-1);
    create(&store, &mut record).await;
    assert_eq!(load(&store, &record.id).await, None);

    let mut live = self::record();
    create(&store, &mut live).await;
    live.expiry_date = in_seconds(-1);
    store.save(&live).await.expect("save works");
    assert_eq!(
        load(&store, &live.id).await,
        None,
        "a save into the past expires the session"
    );
}

/// `delete` removes a session; deleting it again is harmless.
pub async fn delete_removes_the_session(store: impl SessionStore) {
    let mut record = record();
    create(&store, &mut record).await;
    store.delete(&record.id).await.expect("delete works");
    assert_eq!(load(&store, &record.id).await, None);
    store
        .delete(&record.id)
        .await
        .expect("a second delete is harmless");
}

/// Each id sees its own data only.
pub async fn sessions_of_different_ids_do_not_mix(store: impl SessionStore) {
    let mut a = record();
    let mut b = record();
    b.data.insert("counter".into(), serde_json::json!(42));
    create(&store, &mut a).await;
    create(&store, &mut b).await;
    store.delete(&a.id).await.expect("delete works");
    assert_eq!(load(&store, &a.id).await, None);
    assert_same_record(&load(&store, &b.id).await.expect("b survives"), &b);
}

/// Ending a user's sessions ends theirs only: another user's and an anonymous session stay.
pub async fn deleting_a_users_sessions_leaves_everyone_elses(
    store: impl SessionStore + UserSessions,
) {
    let (ada, grace) = (UserId::generate(), UserId::generate());
    let anonymous = anonymous();
    let mut records = [
        logged_in_as(ada),
        logged_in_as(ada),
        logged_in_as(grace),
        anonymous,
    ];
    for record in &mut records {
        create(&store, record).await;
    }

    let deleted = store.delete_user_sessions(ada).await.expect("delete works");
    assert_eq!(deleted, 2);
    let [first, second, others @ ..] = &records;
    for gone in [first, second] {
        assert_eq!(load(&store, &gone.id).await, None);
    }
    for kept in others {
        assert_same_record(&load(&store, &kept.id).await.expect("kept"), kept);
    }
    let again = store.delete_user_sessions(ada).await.expect("delete works");
    assert_eq!(again, 0, "nothing is left to delete");
}

/// Session data is the application's: keys that BSON or SQL would treat specially (`$`,
/// dots, NUL) and any JSON value read back unchanged.
pub async fn any_data_reads_back_unchanged(store: impl SessionStore) {
    let mut record = Record {
        data: HashMap::from([
            ("$set".to_owned(), serde_json::json!({ "a.b": 1 })),
            ("dotted.key".to_owned(), serde_json::json!(["x", null, 2.5])),
            ("\u{0}nul".to_owned(), serde_json::json!("é'\"; --")),
        ]),
        ..record()
    };
    create(&store, &mut record).await;
    assert_same_record(&load(&store, &record.id).await.expect("exists"), &record);
}

/// A record expiring in an hour, with `user` logged in on it from `device`.
fn logged_in_from(user: UserId, device: Device) -> Record {
    let mut record = logged_in_as(user);
    let mut login = Login::read(&record.data).expect("the record is logged in");
    login.device = device;
    login.write(&mut record.data);
    record
}

fn device(user_agent: &str, ip: &str) -> Device {
    Device::new(
        Some(user_agent),
        Some(ip.parse::<IpAddr>().expect("a valid test address")),
    )
}

pub(crate) fn handle(record: &Record) -> SessionHandle {
    SessionHandle::of_session_id(&record.id.to_string())
}

/// Leaves the clock time to move past the millisecond, the coarsest precision a store keeps
/// a session's times at, so that the writes around it are ordered.
pub(crate) async fn tick() {
    tokio::time::sleep(StdDuration::from_millis(10)).await;
}

async fn list(store: &impl UserSessions, user: UserId) -> Vec<SessionInfo> {
    store.list_user_sessions(user).await.expect("listing works")
}

/// A user's list holds their own live sessions, the one used last first, each with its
/// times and the device it was made on; never another user's, an anonymous or an expired
/// one (which nothing may have purged yet).
pub async fn a_users_list_holds_their_own_live_sessions_most_recently_used_first(
    store: impl SessionStore + UserSessions,
) {
    let (ada, grace) = (UserId::generate(), UserId::generate());
    let before = Clock::system().now() - Duration::milliseconds(1);
    let mut laptop = logged_in_from(ada, device("Firefox/128.0", "192.0.2.7"));
    create(&store, &mut laptop).await;
    tick().await;
    let mut phone = logged_in_from(ada, device("Safari/17.4", "2001:db8::1"));
    create(&store, &mut phone).await;
    tick().await;
    let mut tablet = logged_in_as(ada);
    create(&store, &mut tablet).await;
    for mut other in [logged_in_as(grace), anonymous()] {
        create(&store, &mut other).await;
    }
    let mut expired = logged_in_from(ada, device("Expired/1.0", "192.0.2.9"));
    expired.expiry_date = in_seconds(-1);
    create(&store, &mut expired).await;
    tick().await;
    // A renewal moves the laptop to the top.
    laptop.expiry_date = in_seconds(7200);
    store.save(&laptop).await.expect("save works");
    let after = Clock::system().now();

    let listed = list(&store, ada).await;
    let handles: Vec<_> = listed.iter().map(|info| info.handle.clone()).collect();
    assert_eq!(
        handles,
        [handle(&laptop), handle(&tablet), handle(&phone)],
        "live sessions of ada only, the one used last first, then the newest"
    );
    for (info, record) in listed.iter().zip([&laptop, &tablet, &phone]) {
        assert!(
            before <= info.created_at && info.created_at <= info.last_seen_at,
            "{info:?}"
        );
        assert!(info.last_seen_at <= after, "{info:?}");
        let drift = (info.expires_at - record.expiry_date).abs();
        assert!(
            drift < Duration::milliseconds(1),
            "expiry drifted by {drift}"
        );
    }
    let [laptop_info, tablet_info, phone_info] = &listed[..] else {
        panic!("three sessions, as asserted above");
    };
    assert!(
        laptop_info.last_seen_at > laptop_info.created_at,
        "a save is seen"
    );
    assert!(laptop_info.created_at < phone_info.created_at);
    assert_eq!(laptop_info.device, device("Firefox/128.0", "192.0.2.7"));
    assert_eq!(phone_info.device, device("Safari/17.4", "2001:db8::1"));
    assert_eq!(tablet_info.device, Device::default(), "no device recorded");

    assert_eq!(list(&store, grace).await.len(), 1);
    assert!(list(&store, UserId::generate()).await.is_empty());
}

/// A user ends one of their sessions by its handle; another user's handle, an unknown one
/// or one of their own expired sessions ends nothing and says so.
pub async fn a_user_deletes_their_own_session_by_handle_and_no_one_elses(
    store: impl SessionStore + UserSessions,
) {
    let (ada, grace) = (UserId::generate(), UserId::generate());
    let mut records = [logged_in_as(ada), logged_in_as(ada), logged_in_as(grace)];
    for record in &mut records {
        create(&store, record).await;
    }
    let [mine, kept, graces] = &records;
    let mut expired = logged_in_as(ada);
    expired.expiry_date = in_seconds(-1);
    create(&store, &mut expired).await;

    let delete = |user, record: &Record| {
        let handle = handle(record);
        let store = &store;
        async move {
            store
                .delete_user_session(user, &handle)
                .await
                .expect("delete works")
        }
    };
    assert!(!delete(ada, graces).await, "grace's session is not ada's");
    assert!(!delete(ada, &anonymous()).await, "an unknown handle");
    assert!(
        !delete(ada, &expired).await,
        "an expired session is gone already"
    );
    assert!(delete(ada, mine).await);
    assert_eq!(load(&store, &mine.id).await, None);
    assert!(!delete(ada, mine).await, "a second delete finds nothing");

    assert_same_record(&load(&store, &kept.id).await.expect("kept"), kept);
    assert_same_record(&load(&store, &graces.id).await.expect("kept"), graces);
    let listed = list(&store, ada).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].handle, handle(kept));
}

/// "Log out my other devices" keeps exactly the session named and counts the live ones it
/// ended; another user's sessions stay.
pub async fn deleting_a_users_other_sessions_keeps_exactly_the_one_named(
    store: impl SessionStore + UserSessions,
) {
    let (ada, grace) = (UserId::generate(), UserId::generate());
    let mut records = [
        logged_in_as(ada),
        logged_in_as(ada),
        logged_in_as(ada),
        logged_in_as(grace),
    ];
    for record in &mut records {
        create(&store, record).await;
    }
    let [current, other, another, graces] = &records;
    let mut expired = logged_in_as(ada);
    expired.expiry_date = in_seconds(-1);
    create(&store, &mut expired).await;

    let deleted = store
        .delete_other_user_sessions(ada, &handle(current))
        .await
        .expect("delete works");
    assert_eq!(
        deleted, 2,
        "the two other live sessions, not the expired one"
    );
    assert_same_record(&load(&store, &current.id).await.expect("kept"), current);
    for gone in [other, another] {
        assert_eq!(load(&store, &gone.id).await, None);
    }
    assert_same_record(&load(&store, &graces.id).await.expect("kept"), graces);
    let listed = list(&store, ada).await;
    assert_eq!(
        listed.iter().map(|info| &info.handle).collect::<Vec<_>>(),
        [&handle(current)]
    );
    let again = store
        .delete_other_user_sessions(ada, &handle(current))
        .await
        .expect("delete works");
    assert_eq!(again, 0, "nothing else is left");
}
