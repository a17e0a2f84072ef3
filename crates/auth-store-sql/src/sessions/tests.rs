//! The session store beyond the shared suite, from the inside: what a row holds, and the
//! purge.

use std::time::Duration as StdDuration;

use auth_domain::{session, timestamp::truncate_to_micros};
use auth_testkit::{sessions::record, Backend, TestDatabase};
use migration::{Migrator, MigratorTrait};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use time::{Duration, OffsetDateTime};
use tower_sessions::{
    session::{Id, Record},
    SessionStore,
};

use crate::{entity::sessions, SqlSessionStore};

auth_testkit::backend_tests! {
    backends: [sqlite, postgres, mysql],
    setup: crate::sessions::tests::database,
    tests: {
        crate::sessions::tests => [
            the_row_holds_the_hash_of_the_id_and_the_user_id,
            timestamps_of_a_session_read_back_to_the_microsecond,
            an_expired_row_is_invisible_before_the_purge_and_gone_after,
            purge_deletes_only_expired_sessions_in_batches,
            the_periodic_purge_survives_a_database_error,
            sessions_created_in_bulk_read_back_as_created_ones_and_the_probe_sees_the_expired,
        ],
    },
}

async fn database(backend: Backend) -> (DatabaseConnection, TestDatabase) {
    let database = TestDatabase::create(backend).await;
    let db = crate::connect(database.url())
        .await
        .expect("the test database accepts connections");
    crate::install(&db).await.expect("the migrations run");
    (db, database)
}

fn seconds_from_now(seconds: i64) -> OffsetDateTime {
    auth_domain::clock::Clock::system().now() + Duration::seconds(seconds)
}

async fn row(db: &DatabaseConnection, id: &Id) -> Option<sessions::Model> {
    sessions::Entity::find_by_id(session::storage_key(&id.to_string()))
        .one(db)
        .await
        .expect("the row can be read")
}

async fn rows(db: &DatabaseConnection) -> u64 {
    sessions::Entity::find()
        .count(db)
        .await
        .expect("the rows can be counted")
}

async fn created(store: &SqlSessionStore, expiry_date: OffsetDateTime) -> Record {
    let mut record = record();
    record.expiry_date = expiry_date;
    store.create(&mut record).await.expect("create works");
    record
}

/// A copy of the table holds no cookie: the key is a hash, and the id appears nowhere.
/// The user id sits in its own column, so a user's sessions can be found.
async fn the_row_holds_the_hash_of_the_id_and_the_user_id(db: DatabaseConnection) {
    let store = SqlSessionStore::new(db.clone());
    let record = created(&store, seconds_from_now(3600)).await;
    let row = row(&db, &record.id).await.expect("stored");
    let id = record.id.to_string();
    assert_eq!(row.id, session::storage_key(&id));
    assert!(!row.id.contains(&id) && !row.data.contains(&id));
    let user = session::user_id(&record.data).expect("the test record is logged in");
    assert_eq!(row.user_id, Some(user.to_string()));
    let data: serde_json::Value = serde_json::from_str(&row.data).expect("JSON");
    assert_eq!(data, serde_json::to_value(&record.data).expect("JSON"));

    // A session nobody is logged in on any more clears the column.
    let anonymous = Record {
        data: auth_testkit::sessions::anonymous().data,
        ..record.clone()
    };
    store.save(&anonymous).await.expect("save works");
    assert_eq!(
        self::row(&db, &record.id).await.expect("stored").user_id,
        None
    );
}

/// Expiry, creation and last-seen times are exact to the microsecond on every engine.
async fn timestamps_of_a_session_read_back_to_the_microsecond(db: DatabaseConnection) {
    let store = SqlSessionStore::new(db.clone());
    let before = truncate_to_micros(auth_domain::clock::Clock::system().now());
    let record = created(&store, seconds_from_now(3600)).await;
    let loaded = store
        .load(&record.id)
        .await
        .expect("load works")
        .expect("exists");
    assert_eq!(loaded.expiry_date, truncate_to_micros(record.expiry_date));
    let first = row(&db, &record.id).await.expect("stored");
    assert_eq!(first.expires_at, truncate_to_micros(record.expiry_date));
    assert!(before <= first.created_at && first.created_at == first.last_seen_at);

    tokio::time::sleep(StdDuration::from_millis(5)).await;
    store.save(&record).await.expect("save works");
    let saved = row(&db, &record.id).await.expect("stored");
    assert_eq!(saved.created_at, first.created_at, "creation time is kept");
    assert!(saved.last_seen_at > first.last_seen_at, "a save is seen");
}

/// `load` compares with the clock itself; the purge only tidies up.
async fn an_expired_row_is_invisible_before_the_purge_and_gone_after(db: DatabaseConnection) {
    let store = SqlSessionStore::new(db.clone());
    let expired = created(&store, seconds_from_now(-1)).await;
    let expiring_now = created(&store, auth_domain::clock::Clock::system().now()).await;
    assert_eq!(rows(&db).await, 2, "nothing purged yet");
    assert_eq!(store.load(&expired.id).await.expect("load works"), None);
    assert_eq!(
        store.load(&expiring_now.id).await.expect("load works"),
        None
    );
    assert_eq!(store.purge_expired(100).await.expect("purge works"), 2);
    assert_eq!(rows(&db).await, 0);
}

/// Expired rows go, batch by batch; live ones stay untouched.
async fn purge_deletes_only_expired_sessions_in_batches(db: DatabaseConnection) {
    let store = SqlSessionStore::new(db.clone());
    for age in 1..=7 {
        created(&store, seconds_from_now(-age * 60)).await;
    }
    let mut live = Vec::new();
    for _ in 0..3 {
        live.push(created(&store, seconds_from_now(3600)).await);
    }
    assert_eq!(store.purge_expired(3).await.expect("purge works"), 7);
    assert_eq!(rows(&db).await, 3);
    for record in &live {
        let loaded = store.load(&record.id).await.expect("load works");
        assert_eq!(loaded.map(|r| r.data), Some(record.data.clone()));
    }
    assert_eq!(store.purge_expired(3).await.expect("purge works"), 0);

    // A batch size dividing the count exactly still ends, and zero means one at a time.
    for _ in 0..4 {
        created(&store, seconds_from_now(-5)).await;
    }
    assert_eq!(store.purge_expired(2).await.expect("purge works"), 4);
    created(&store, seconds_from_now(-5)).await;
    assert_eq!(store.purge_expired(0).await.expect("purge works"), 1);
    assert_eq!(rows(&db).await, 3);
}

/// The background purge logs a failure and carries on at the next tick.
async fn the_periodic_purge_survives_a_database_error(db: DatabaseConnection) {
    let store = SqlSessionStore::new(db.clone());
    Migrator::down(&db, None).await.expect("down runs");
    let purge = tokio::spawn(
        store
            .clone()
            .purge_expired_periodically(StdDuration::from_millis(20)),
    );
    // Long enough for several failing ticks.
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    assert!(!purge.is_finished(), "the purge must not stop on an error");

    Migrator::up(&db, None).await.expect("up runs");
    created(&store, seconds_from_now(-5)).await;
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    while rows(&db).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the purge never came back"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    purge.abort();
}

/// `create_many` stores what `create` would have, at the instant given; the expiry probe
/// finds an expired session until the purge has taken it.
async fn sessions_created_in_bulk_read_back_as_created_ones_and_the_probe_sees_the_expired(
    db: DatabaseConnection,
) {
    let store = SqlSessionStore::new(db.clone());
    let seen = truncate_to_micros(seconds_from_now(-300));
    let mut live = record();
    live.expiry_date = seconds_from_now(3600);
    let mut expired = record();
    expired.expiry_date = seconds_from_now(-10);
    store
        .create_many(&[(live.clone(), seen), (expired.clone(), seen)])
        .await
        .expect("create_many works");
    assert_eq!(rows(&db).await, 2);

    let loaded = store
        .load(&live.id)
        .await
        .expect("load works")
        .expect("the live session is found");
    assert_eq!(loaded.expiry_date, truncate_to_micros(live.expiry_date));
    assert_eq!(session::user_id(&loaded.data), session::user_id(&live.data));
    let row = row(&db, &live.id).await.expect("stored");
    assert_eq!((row.created_at, row.last_seen_at), (seen, seen));
    assert_eq!(
        row.user_id,
        session::user_id(&live.data).map(|user| user.to_string())
    );
    assert_eq!(store.load(&expired.id).await.expect("load works"), None);

    let now = auth_domain::clock::Clock::system().now();
    assert!(store.holds_expired_at(now).await.expect("the probe works"));
    assert!(!store
        .holds_expired_at(expired.expiry_date - Duration::seconds(1))
        .await
        .expect("the probe works"));
    assert_eq!(store.purge_expired(100).await.expect("purge works"), 1);
    assert!(!store.holds_expired_at(now).await.expect("the probe works"));
}
