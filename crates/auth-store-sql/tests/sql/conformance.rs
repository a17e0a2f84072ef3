//! The shared conformance suites of `auth-testkit`, once per engine.

use auth_store_sql::{SqlSessionStore, SqlUserRepository};
use auth_testkit::db::{Backend, TestDatabase};

use crate::support;

async fn sqlite_repository() -> Option<(SqlUserRepository, TestDatabase)> {
    support::repository(Backend::Sqlite).await
}
async fn sqlite_store() -> Option<(SqlSessionStore, TestDatabase)> {
    support::store(Backend::Sqlite).await
}
async fn postgres_repository() -> Option<(SqlUserRepository, TestDatabase)> {
    support::repository(Backend::Postgres).await
}
async fn postgres_store() -> Option<(SqlSessionStore, TestDatabase)> {
    support::store(Backend::Postgres).await
}
async fn mysql_repository() -> Option<(SqlUserRepository, TestDatabase)> {
    support::repository(Backend::Mysql).await
}
async fn mysql_store() -> Option<(SqlSessionStore, TestDatabase)> {
    support::store(Backend::Mysql).await
}

mod sqlite {
    auth_testkit::user_repository_suite!(super::sqlite_repository);
    auth_testkit::session_store_suite!(super::sqlite_store);
}

mod postgres {
    auth_testkit::user_repository_suite!(super::postgres_repository);
    auth_testkit::session_store_suite!(super::postgres_store);
}

mod mysql {
    auth_testkit::user_repository_suite!(super::mysql_repository);
    auth_testkit::session_store_suite!(super::mysql_store);
}
