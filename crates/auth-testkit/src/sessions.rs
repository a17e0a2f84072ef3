//! What every session store must do, whatever it stores sessions in.

use std::collections::HashMap;

use auth_domain::{session, UserId, UserSessions};
use time::{Duration, OffsetDateTime};
use tower_sessions::{
    session::{Id, Record},
    SessionStore,
};

/// A record expiring in an hour, holding a logged-in user as the login manager writes it.
pub fn record() -> Record {
    logged_in_as(UserId::generate())
}

/// A record expiring in an hour, with `user` logged in on it (as a login writes it).
pub fn logged_in_as(user: UserId) -> Record {
    let mut stand_in = crate::users::new_user("someone@example.com", "someone").into_user();
    stand_in.id = user;
    let mut data = session::logged_in(&stand_in, OffsetDateTime::now_utc());
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

fn in_seconds(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::seconds(seconds)
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
