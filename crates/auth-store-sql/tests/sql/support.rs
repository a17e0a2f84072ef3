//! Fresh, installed databases and the stores on them.

use auth_domain::clock::Clock;
use auth_store_sql::{
    connect, install, SqlAuditLog, SqlFailureCounter, SqlSessionStore, SqlStores, SqlUserRepository,
};
use auth_testkit::{Backend, TestDatabase};
use migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;

/// A new database on `backend`, connected and migrated.
pub(crate) async fn database(backend: Backend) -> (DatabaseConnection, TestDatabase) {
    let database = TestDatabase::create(backend).await;
    let db = connect(database.url())
        .await
        .expect("the test database accepts connections");
    install(&db).await.expect("the migrations run");
    (db, database)
}

/// A user repository on a fresh database.
pub(crate) async fn repository(backend: Backend) -> (SqlUserRepository, TestDatabase) {
    let (db, database) = database(backend).await;
    (SqlUserRepository::new(db), database)
}

/// A session store on a fresh database.
pub(crate) async fn store(backend: Backend) -> (SqlSessionStore, TestDatabase) {
    let (db, database) = database(backend).await;
    (SqlSessionStore::new(db), database)
}

/// A user repository and a session store on one fresh database.
pub(crate) async fn both(backend: Backend) -> ((SqlUserRepository, SqlSessionStore), TestDatabase) {
    let (db, database) = database(backend).await;
    (
        (SqlUserRepository::new(db.clone()), SqlSessionStore::new(db)),
        database,
    )
}

/// A failure counter on a fresh database.
pub(crate) async fn failure_counter(backend: Backend) -> (SqlFailureCounter, TestDatabase) {
    let (db, database) = database(backend).await;
    (SqlFailureCounter::new(db), database)
}

/// An audit log on a fresh database.
pub(crate) async fn audit_log(backend: Backend) -> (SqlAuditLog, TestDatabase) {
    let (db, database) = database(backend).await;
    (SqlAuditLog::new(db), database)
}

/// Every store on a fresh database.
pub(crate) async fn stores(backend: Backend) -> (SqlStores, TestDatabase) {
    let (db, database) = database(backend).await;
    (SqlStores::new(db, Clock::system()), database)
}

/// Two instances' stores, each on its own pool, on one fresh database.
pub(crate) async fn two_instances(backend: Backend) -> ((SqlStores, SqlStores), TestDatabase) {
    let (db, database) = database(backend).await;
    let other = connect(database.url())
        .await
        .expect("the test database accepts a second pool");
    (
        (
            SqlStores::new(db, Clock::system()),
            SqlStores::new(other, Clock::system()),
        ),
        database,
    )
}

/// A database on `backend` with the first migration only, as a release before #9 left
/// it.
pub(crate) async fn first_schema(backend: Backend) -> (DatabaseConnection, TestDatabase) {
    let database = TestDatabase::create(backend).await;
    let db = connect(database.url())
        .await
        .expect("the test database accepts connections");
    Migrator::up(&db, Some(1))
        .await
        .expect("the first migration runs");
    (db, database)
}

/// A store is `Debug` (tower-sessions requires it); that must never print the password of
/// the database URL. (PostgreSQL only: its local server trusts its clients, so any
/// password is accepted and ignored.)
pub(crate) async fn a_stores_debug_output_holds_no_database_password(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let url = database
        .url()
        .replacen("postgres@", "postgres:hunter2-secret@", 1);
    assert!(url.contains("hunter2-secret"), "{url}");
    let db = connect(&url).await.expect("connect works");
    let store = SqlSessionStore::new(db.clone());
    let repo = SqlUserRepository::new(db);
    let printed = format!("{store:?} {repo:?}");
    assert!(!printed.contains("hunter2-secret"), "{printed}");
    database.drop_now().await;
}
