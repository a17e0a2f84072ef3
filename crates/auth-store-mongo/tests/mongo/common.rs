//! A fresh MongoDB database per test, with or without the indexes.

use auth_store_mongo::{
    connect, ensure_indexes, ensure_throttle_and_audit_indexes, MongoAuditLog, MongoConfig,
    MongoFailureCounter, MongoSessionStore, MongoStores, MongoUserRepository,
};
use auth_testkit::{Backend, TestDatabase};
use mongodb::Database;

pub(crate) const USERS: &str = "users";
pub(crate) const SESSIONS: &str = "sessions";
pub(crate) const FAILURES: &str = "login_failures";
pub(crate) const EVENTS: &str = "auth_events";

/// A connected, empty database without indexes.
pub(crate) async fn bare_database(backend: Backend) -> (Database, TestDatabase) {
    let test_database = TestDatabase::create(backend).await;
    let db = connect(test_database.url(), test_database.mongo_db_name())
        .await
        .expect("the test server answers");
    (db, test_database)
}

/// A connected, indexed, empty database.
pub(crate) async fn database(backend: Backend) -> (Database, TestDatabase) {
    let (db, test_database) = bare_database(backend).await;
    ensure_indexes(&db, USERS, SESSIONS)
        .await
        .expect("the indexes can be created");
    ensure_throttle_and_audit_indexes(&db, FAILURES, EVENTS)
        .await
        .expect("the indexes can be created");
    (db, test_database)
}

/// A user repository on a fresh database.
pub(crate) async fn user_repository(backend: Backend) -> (MongoUserRepository, TestDatabase) {
    let (db, test_database) = database(backend).await;
    (
        MongoUserRepository::new(&db, USERS, SESSIONS),
        test_database,
    )
}

/// A session store on a fresh database.
pub(crate) async fn session_store(backend: Backend) -> (MongoSessionStore, TestDatabase) {
    let (db, test_database) = database(backend).await;
    (MongoSessionStore::new(&db, SESSIONS), test_database)
}

/// A user repository and a session store on one fresh database.
pub(crate) async fn both(
    backend: Backend,
) -> ((MongoUserRepository, MongoSessionStore), TestDatabase) {
    let (db, test_database) = database(backend).await;
    (
        (
            MongoUserRepository::new(&db, USERS, SESSIONS),
            MongoSessionStore::new(&db, SESSIONS),
        ),
        test_database,
    )
}

/// A failure counter on a fresh database.
pub(crate) async fn failure_counter(backend: Backend) -> (MongoFailureCounter, TestDatabase) {
    let (db, test_database) = database(backend).await;
    (MongoFailureCounter::new(&db, FAILURES), test_database)
}

/// An audit log on a fresh database.
pub(crate) async fn audit_log(backend: Backend) -> (MongoAuditLog, TestDatabase) {
    let (db, test_database) = database(backend).await;
    (MongoAuditLog::new(&db, EVENTS), test_database)
}

/// Every store on a fresh database, opened as the app opens them (indexes included).
pub(crate) async fn stores(backend: Backend) -> (MongoStores, TestDatabase) {
    let test_database = TestDatabase::create(backend).await;
    let config = MongoConfig::new(test_database.url(), test_database.mongo_db_name());
    let stores = MongoStores::open(&config)
        .await
        .expect("the test server answers");
    (stores, test_database)
}

/// Every store on a fresh database, applying units of work change by change as on a
/// standalone server.
pub(crate) async fn stores_change_by_change(backend: Backend) -> (MongoStores, TestDatabase) {
    let (stores, test_database) = stores(backend).await;
    (stores.without_transactions(), test_database)
}

/// Every store on a fresh database of a deployment that runs transactions (SecantusDB
/// does, as a replica set would).
pub(crate) async fn transactional_stores(backend: Backend) -> (MongoStores, TestDatabase) {
    let (stores, test_database) = stores(backend).await;
    assert!(
        stores.uses_transactions(),
        "the test server runs no transactions (a standalone mongod): use a replica set"
    );
    (stores, test_database)
}

/// Two instances' stores, each with its own client, on one fresh database.
pub(crate) async fn two_instances(backend: Backend) -> ((MongoStores, MongoStores), TestDatabase) {
    let (one, test_database) = stores(backend).await;
    let config = MongoConfig::new(test_database.url(), test_database.mongo_db_name());
    let two = MongoStores::open(&config)
        .await
        .expect("the test server answers a second client");
    ((one, two), test_database)
}

/// Two instances' stores on one fresh database, each applying units of work change by
/// change as on a standalone server.
pub(crate) async fn two_instances_change_by_change(
    backend: Backend,
) -> ((MongoStores, MongoStores), TestDatabase) {
    let ((one, two), test_database) = two_instances(backend).await;
    (
        (one.without_transactions(), two.without_transactions()),
        test_database,
    )
}

/// Every store on a fresh database, with the database itself, to look at the documents.
pub(crate) async fn stores_and_database(
    backend: Backend,
) -> ((MongoStores, Database), TestDatabase) {
    let (stores, test_database) = stores(backend).await;
    let db = stores.client.database(test_database.mongo_db_name());
    ((stores, db), test_database)
}
