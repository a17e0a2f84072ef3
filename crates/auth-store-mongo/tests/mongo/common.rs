//! A fresh MongoDB database per test, with the indexes in place.

use auth_store_mongo::{connect, ensure_indexes, MongoSessionStore, MongoUserRepository};
use auth_testkit::db::{Backend, TestDatabase};
use mongodb::Database;

pub const USERS: &str = "users";
pub const SESSIONS: &str = "sessions";

/// A connected, empty database without indexes; None when no MongoDB is configured
/// outside CI.
pub async fn bare_database() -> Option<(Database, TestDatabase)> {
    let test_database = TestDatabase::create(Backend::Mongodb).await?;
    let db = connect(test_database.url(), test_database.mongo_db_name())
        .await
        .expect("the test server answers");
    Some((db, test_database))
}

/// A connected, indexed, empty database.
pub async fn database() -> Option<(Database, TestDatabase)> {
    let (db, test_database) = bare_database().await?;
    ensure_indexes(&db, USERS, SESSIONS)
        .await
        .expect("the indexes can be created");
    Some((db, test_database))
}

/// A user repository on a fresh database.
pub async fn user_repository() -> Option<(MongoUserRepository, TestDatabase)> {
    let (db, test_database) = database().await?;
    Some((MongoUserRepository::new(&db, USERS), test_database))
}

/// A session store on a fresh database.
pub async fn session_store() -> Option<(MongoSessionStore, TestDatabase)> {
    let (db, test_database) = database().await?;
    Some((MongoSessionStore::new(&db, SESSIONS), test_database))
}
