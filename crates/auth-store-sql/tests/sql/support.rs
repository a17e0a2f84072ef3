//! Fresh, installed databases and the stores on them.

use auth_store_sql::{connect, install, SqlSessionStore, SqlUserRepository};
use auth_testkit::db::{Backend, TestDatabase};
use sea_orm::DatabaseConnection;

/// A new database on `backend`, connected and migrated, or `None` when the engine is not
/// available here (already reported by the testkit).
pub async fn database(backend: Backend) -> Option<(DatabaseConnection, TestDatabase)> {
    let database = TestDatabase::create(backend).await?;
    let db = connect(database.url())
        .await
        .expect("the test database accepts connections");
    install(&db).await.expect("the migrations run");
    Some((db, database))
}

/// A user repository on a fresh database.
pub async fn repository(backend: Backend) -> Option<(SqlUserRepository, TestDatabase)> {
    let (db, database) = database(backend).await?;
    Some((SqlUserRepository::new(db), database))
}

/// A session store on a fresh database.
pub async fn store(backend: Backend) -> Option<(SqlSessionStore, TestDatabase)> {
    let (db, database) = database(backend).await?;
    Some((SqlSessionStore::new(db), database))
}
