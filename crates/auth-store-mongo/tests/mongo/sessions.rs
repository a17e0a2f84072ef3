use std::collections::HashMap;

use auth_domain::{
    session::{self, Owner, SessionHandle},
    OwnedSessions as _, UserId, UserSessions,
};
use auth_store_mongo::MongoSessionStore;
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

/// `create_many` (the benchmark's preload) stores what `create` would have, the owner a
/// login attaches included, created and last seen at the instant given; an expired one
/// stays invisible.
pub(crate) async fn sessions_created_in_bulk_load_with_their_owner_and_given_times(db: Database) {
    let store = MongoSessionStore::new(&db, SESSIONS);
    let user = stand_in(UserId::generate());
    let mut live = logged_in_as(user.id);
    session::put_owner(&mut live.data, &Owner::of(&user));
    let mut expired = logged_in_as(user.id);
    expired.expiry_date = auth_domain::clock::Clock::system().now() - Duration::seconds(10);
    let seen = auth_domain::clock::Clock::system().now() - Duration::minutes(5);
    store
        .create_many(&[(live.clone(), seen), (expired.clone(), seen)])
        .await
        .expect("create_many works");

    let loaded = store
        .load_owned(&live.id.to_string())
        .await
        .expect("load works")
        .expect("the session is live");
    let owner = loaded.owner.expect("the owner comes with the session");
    assert_eq!(owner, Owner::of(&user));
    assert!(owner.owns(&loaded.data.login().expect("logged in")));
    let document = raw_document(&db, &live.id).await.expect("stored");
    let seen_ms = bson::DateTime::from_time_0_3(seen);
    assert_eq!(document.get_datetime("created_at"), Ok(&seen_ms));
    assert_eq!(document.get_datetime("last_seen_at"), Ok(&seen_ms));
    assert_eq!(
        store
            .load_owned(&expired.id.to_string())
            .await
            .expect("load works"),
        None
    );
}
