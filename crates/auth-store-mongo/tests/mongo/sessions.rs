use std::collections::HashMap;

use auth_domain::{session, UserId};
use auth_store_mongo::MongoSessionStore;
use auth_testkit::sessions::record;
use bson::{doc, Bson, Document};
use mongodb::{Collection, Database};
use time::{Duration, OffsetDateTime};
use tower_sessions::{
    session::{Id, Record},
    session_store, SessionStore,
};

use crate::common::{self, SESSIONS};

fn raw(db: &Database) -> Collection<Document> {
    db.collection(SESSIONS)
}

async fn raw_document(db: &Database, id: &Id) -> Option<Document> {
    raw(db)
        .find_one(doc! { "_id": session::storage_key(&id.to_string()) })
        .await
        .expect("raw read works")
}

fn logged_in(user: UserId) -> HashMap<String, serde_json::Value> {
    HashMap::from([(
        session::USER_DATA_KEY.to_owned(),
        serde_json::json!({ "user_id": user.to_string(), "auth_hash": [7, 7] }),
    )])
}

#[tokio::test]
async fn the_stored_document_holds_a_hashed_key_the_json_data_and_indexed_fields() {
    let Some((db, test_database)) = common::database().await else {
        return;
    };
    let store = MongoSessionStore::new(&db, SESSIONS);
    let user = UserId::generate();
    let mut record = Record {
        data: logged_in(user),
        ..record()
    };
    store.create(&mut record).await.expect("create works");

    let created = raw_document(&db, &record.id).await.expect("stored");
    let id = record.id.to_string();
    assert!(
        !created.to_string().contains(&id),
        "the session id must not be stored in clear: {created}"
    );
    let data: HashMap<String, serde_json::Value> =
        serde_json::from_str(created.get_str("data").expect("data is JSON text"))
            .expect("valid JSON");
    assert_eq!(data, record.data);
    assert_eq!(created.get_str("user_id"), Ok(user.to_string().as_str()));
    let created_at = created.get_datetime("created_at").expect("a date");
    let first_seen = created.get_datetime("last_seen_at").expect("a date");
    assert_eq!(created_at, first_seen);
    assert!(created.get_datetime("expires_at").is_ok(), "{created}");

    // Logging out keeps the session but forgets the user.
    record.data = HashMap::from([("theme".to_owned(), serde_json::json!("dark"))]);
    store.save(&record).await.expect("save works");
    let saved = raw_document(&db, &record.id).await.expect("stored");
    assert_eq!(saved.get("user_id"), Some(&Bson::Null));
    assert_eq!(saved.get_datetime("created_at"), Ok(created_at));
    assert!(*saved.get_datetime("last_seen_at").expect("a date") >= *first_seen);

    test_database.drop_now().await;
}

#[tokio::test]
async fn data_keys_bson_would_refuse_and_the_exact_expiry_read_back_unchanged() {
    let Some((store, test_database)) = common::session_store().await else {
        return;
    };
    let mut record = Record {
        data: HashMap::from([
            ("$set".to_owned(), serde_json::json!({ "a.b": 1 })),
            ("dotted.key".to_owned(), serde_json::json!(["x", null, 2.5])),
            ("\u{0}nul".to_owned(), serde_json::json!("é")),
        ]),
        expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
        ..record()
    };
    store.create(&mut record).await.expect("create works");
    let loaded = store.load(&record.id).await.expect("load works");
    assert_eq!(loaded, Some(record));

    test_database.drop_now().await;
}

#[tokio::test]
async fn load_ignores_an_expired_document_the_ttl_monitor_has_not_purged_yet() {
    let Some((db, test_database)) = common::database().await else {
        return;
    };
    let store = MongoSessionStore::new(&db, SESSIONS);
    let mut record = Record {
        expiry_date: OffsetDateTime::now_utc() - Duration::seconds(5),
        ..record()
    };
    store.create(&mut record).await.expect("create works");
    assert!(
        raw_document(&db, &record.id).await.is_some(),
        "still stored: purging is lazy"
    );
    assert_eq!(store.load(&record.id).await.expect("load works"), None);

    test_database.drop_now().await;
}

#[tokio::test]
async fn save_after_delete_does_not_resurrect_the_session() {
    let Some((db, test_database)) = common::database().await else {
        return;
    };
    let store = MongoSessionStore::new(&db, SESSIONS);
    let mut record = record();
    store.create(&mut record).await.expect("create works");
    store.delete(&record.id).await.expect("delete works");
    store
        .save(&record)
        .await
        .expect("saving a deleted session is not an error");
    assert_eq!(raw_document(&db, &record.id).await, None);
    assert_eq!(
        raw(&db)
            .count_documents(doc! {})
            .await
            .expect("count works"),
        0
    );

    test_database.drop_now().await;
}

#[tokio::test]
async fn create_never_overwrites_a_document_already_under_its_key() {
    let Some((db, test_database)) = common::database().await else {
        return;
    };
    let store = MongoSessionStore::new(&db, SESSIONS);
    let taken = Id::default();
    let theirs = doc! {
        "_id": session::storage_key(&taken.to_string()),
        "data": r#"{"owner":"someone else"}"#,
        "user_id": Bson::Null,
        "created_at": bson::DateTime::now(),
        "last_seen_at": bson::DateTime::now(),
        "expires_at": bson::DateTime::from_time_0_3(OffsetDateTime::now_utc() + Duration::hours(1)),
    };
    raw(&db)
        .insert_one(theirs.clone())
        .await
        .expect("raw insert works");

    let mut record = Record {
        id: taken,
        ..record()
    };
    store.create(&mut record).await.expect("create works");
    assert_ne!(record.id, taken, "a colliding create moves to a fresh id");
    assert_eq!(raw_document(&db, &taken).await, Some(theirs));
    assert_eq!(
        store.load(&record.id).await.expect("load works"),
        Some(record)
    );

    test_database.drop_now().await;
}

#[tokio::test]
async fn deleting_a_users_sessions_leaves_everyone_elses() {
    let Some((store, test_database)) = common::session_store().await else {
        return;
    };
    let (ada, grace) = (UserId::generate(), UserId::generate());
    let mut records = [
        Record {
            data: logged_in(ada),
            ..record()
        },
        Record {
            data: logged_in(ada),
            ..record()
        },
        Record {
            data: logged_in(grace),
            ..record()
        },
        Record {
            data: HashMap::new(),
            ..record()
        },
    ];
    for record in &mut records {
        store.create(record).await.expect("create works");
    }

    assert_eq!(
        store.delete_user_sessions(ada).await.expect("delete works"),
        2
    );
    let [first, second, others @ ..] = &records;
    for gone in [first, second] {
        assert_eq!(store.load(&gone.id).await.expect("load works"), None);
    }
    for kept in others {
        assert!(store.load(&kept.id).await.expect("load works").is_some());
    }
    assert_eq!(
        store.delete_user_sessions(ada).await.expect("delete works"),
        0
    );

    test_database.drop_now().await;
}

#[tokio::test]
async fn undecodable_stored_data_is_an_error_that_quotes_neither_id_nor_data() {
    let Some((db, test_database)) = common::database().await else {
        return;
    };
    let store = MongoSessionStore::new(&db, SESSIONS);
    let id = Id::default();
    raw(&db)
        .insert_one(doc! {
            "_id": session::storage_key(&id.to_string()),
            "data": "not json: secret-token-123",
            "user_id": Bson::Null,
            "created_at": bson::DateTime::now(),
            "last_seen_at": bson::DateTime::now(),
            "expires_at": bson::DateTime::from_time_0_3(OffsetDateTime::now_utc() + Duration::hours(1)),
        })
        .await
        .expect("raw insert works");

    let error = store.load(&id).await.expect_err("the data is not JSON");
    assert!(
        matches!(error, session_store::Error::Decode(_)),
        "{error:?}"
    );
    let shown = format!("{error:?} {error}");
    assert!(!shown.contains("secret-token"), "{shown}");
    assert!(!shown.contains(&id.to_string()), "{shown}");
    assert!(
        !shown.contains(&session::storage_key(&id.to_string())),
        "{shown}"
    );

    test_database.drop_now().await;
}
