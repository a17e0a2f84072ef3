use std::collections::HashMap;

use auth_domain::{
    session::{self, Owner, SessionHandle},
    OwnedSessions as _, UserId, UserSessions,
};
use auth_store_mongo::{owner_document, MongoSessionStore};
use auth_testkit::sessions::{logged_in_as, stand_in};
use bson::{doc, Bson, Document};
use mongodb::{Collection, Database};
use time::Duration;
use tower_sessions::{session::Id, session_store, SessionStore};

use crate::common::SESSIONS;

fn raw(db: &Database) -> Collection<Document> {
    db.collection(SESSIONS)
}

async fn raw_document(db: &Database, id: &Id) -> Option<Document> {
    raw(db)
        .find_one(doc! { "_id": session::storage_key(&id.to_string()) })
        .await
        .expect("raw read works")
}

pub(crate) async fn the_stored_document_holds_a_hashed_key_the_json_data_and_indexed_fields(
    db: Database,
) {
    let store = MongoSessionStore::new(&db, SESSIONS);
    let user = UserId::generate();
    let mut record = logged_in_as(user);
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
}

pub(crate) async fn undecodable_stored_data_is_an_error_that_quotes_neither_id_nor_data(
    db: Database,
) {
    let store = MongoSessionStore::new(&db, SESSIONS);
    let id = Id::default();
    raw(&db)
        .insert_one(doc! {
            "_id": session::storage_key(&id.to_string()),
            "data": "not json: secret-token-123",
            "user_id": Bson::Null,
            "created_at": bson::DateTime::from_time_0_3(auth_domain::clock::Clock::system().now()),
            "last_seen_at": bson::DateTime::from_time_0_3(auth_domain::clock::Clock::system().now()),
            "expires_at": bson::DateTime::from_time_0_3(auth_domain::clock::Clock::system().now() + Duration::hours(1)),
            "expires_at_us": (auth_domain::clock::Clock::system().now() + Duration::hours(1)).unix_timestamp() * 1_000_000,
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
}

/// The TTL monitor runs about once a minute: until it does, an expired document is still
/// there, and neither listed nor counted as deleted.
pub(crate) async fn an_expired_session_is_neither_listed_nor_deleted_before_the_ttl_monitor_runs(
    db: Database,
) {
    let store = MongoSessionStore::new(&db, SESSIONS);
    let user = UserId::generate();
    let mut expired = logged_in_as(user);
    expired.expiry_date = auth_domain::clock::Clock::system().now() - Duration::seconds(1);
    store.create(&mut expired).await.expect("create works");
    let handle = SessionHandle::of_session_id(&expired.id.to_string());

    let listed = store.list_user_sessions(user).await.expect("listing works");
    assert!(listed.is_empty(), "{listed:?}");
    assert!(!store
        .delete_user_session(user, &handle)
        .await
        .expect("delete works"));
    let keep = SessionHandle::of_session_id(&Id::default().to_string());
    assert_eq!(
        store
            .delete_other_user_sessions(user, &keep)
            .await
            .expect("delete works"),
        0
    );
    assert!(
        raw_document(&db, &expired.id).await.is_some(),
        "left to the TTL monitor"
    );
}

/// A session document written without the store (the benchmark's preload) carries its
/// owner as [`owner_document`] encodes it, and loads logged in, as one the store wrote.
pub(crate) async fn a_document_written_with_owner_document_loads_with_its_owner(db: Database) {
    let store = MongoSessionStore::new(&db, SESSIONS);
    let user = stand_in(UserId::generate());
    let record = logged_in_as(user.id);
    let expires_at = bson::DateTime::from_time_0_3(record.expiry_date);
    raw(&db)
        .insert_one(doc! {
            "_id": session::storage_key(&record.id.to_string()),
            "data": serde_json::to_string(&record.data).expect("JSON"),
            "user_id": user.id.to_string(),
            "created_at": bson::DateTime::from_time_0_3(auth_domain::clock::Clock::system().now()),
            "last_seen_at": bson::DateTime::from_time_0_3(auth_domain::clock::Clock::system().now()),
            "expires_at": expires_at,
            "expires_at_us": expires_at.timestamp_millis() * 1_000,
            "owner": owner_document(&Owner::of(&user)).expect("encodable"),
        })
        .await
        .expect("raw insert works");

    let loaded = store
        .load_owned(&record.id.to_string())
        .await
        .expect("load works")
        .expect("the session is live");
    let owner = loaded.owner.expect("the owner comes with the session");
    assert_eq!(owner, Owner::of(&user));
    assert!(owner.owns(&loaded.data.login().expect("logged in")));
}
