//! The SQL stores on real engines: SQLite (a file, always), PostgreSQL and MySQL/MariaDB
//! (from `DATABASE_URL_POSTGRES` / `DATABASE_URL_MYSQL`, or the local defaults; reported
//! as NOT RUN when absent outside CI). Every test gets a fresh database, dropped after.

mod conformance;
mod schema;
mod sessions;
mod support;
mod users;

/// Expands, for one engine, to a `#[tokio::test]` per listed `module::test`, each handed a
/// fresh, installed database.
macro_rules! on_engine {
    ($backend:expr; $($module:ident :: $name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((db, database)) = $crate::support::database($backend).await else {
                    return;
                };
                $crate::$module::$name(db).await;
                database.drop_now().await;
            }
        )+
    };
}

/// The behaviours beyond the shared suites, on every engine.
macro_rules! on_every_engine {
    ($backend:expr) => {
        on_engine!($backend;
            schema::installing_twice_changes_nothing,
            schema::down_drops_both_tables_and_up_builds_them_again,
            users::created_at_reads_back_to_the_microsecond,
            users::emails_are_compared_exactly_not_by_collation,
            users::a_taken_email_is_reported_even_when_the_default_username_collides_too,
            users::a_colliding_user_id_is_an_unexpected_error_not_a_taken_field,
            sessions::the_row_holds_the_hash_of_the_id_and_the_user_id,
            sessions::timestamps_of_a_session_read_back_to_the_microsecond,
            sessions::an_expired_row_is_invisible_before_the_purge_and_gone_after,
            sessions::purge_deletes_only_expired_sessions_in_batches,
            sessions::revoking_a_user_deletes_only_that_users_sessions,
            sessions::the_periodic_purge_survives_a_database_error,
        );
    };
}

mod sqlite {
    use auth_testkit::db::Backend;

    on_every_engine!(Backend::Sqlite);
    on_engine!(Backend::Sqlite;
        schema::sqlite_runs_in_wal_mode_with_a_busy_timeout,
        users::concurrent_writers_on_sqlite_never_see_a_locked_database,
    );
}

mod postgres {
    use auth_testkit::db::Backend;

    on_every_engine!(Backend::Postgres);

    /// A store is `Debug` (tower-sessions requires it); that must never print the password
    /// of the database URL.
    #[tokio::test]
    async fn a_stores_debug_output_holds_no_database_password() {
        let Some(database) = auth_testkit::db::TestDatabase::create(Backend::Postgres).await else {
            return;
        };
        // The local server trusts its clients, so any password is accepted and ignored.
        let url = database
            .url()
            .replacen("postgres@", "postgres:hunter2-secret@", 1);
        assert!(url.contains("hunter2-secret"), "{url}");
        let db = auth_store_sql::connect(&url).await.expect("connect works");
        let store = auth_store_sql::SqlSessionStore::new(db.clone());
        let repo = auth_store_sql::SqlUserRepository::new(db);
        let printed = format!("{store:?} {repo:?}");
        assert!(!printed.contains("hunter2-secret"), "{printed}");
        database.drop_now().await;
    }
}

/// An in-memory SQLite database lives as long as its single connection, which the pool
/// must keep.
#[tokio::test]
async fn an_in_memory_sqlite_database_keeps_its_data_across_statements() {
    use auth_domain::UserRepository;

    let db = auth_store_sql::connect("sqlite::memory:")
        .await
        .expect("connect works");
    auth_store_sql::install(&db).await.expect("install works");
    let repo = auth_store_sql::SqlUserRepository::new(db);
    let user = repo
        .insert(auth_testkit::users::new_user("ada@example.com", "ada_l"))
        .await
        .expect("insert works");
    let found = repo.find_by_id(user.id).await.expect("lookup works");
    assert_eq!(found, Some(user));
}

mod mysql {
    use auth_testkit::db::Backend;

    on_every_engine!(Backend::Mysql);
    on_engine!(Backend::Mysql;
        schema::mysql_text_columns_compare_bytes_and_timestamps_keep_microseconds,
    );
}
