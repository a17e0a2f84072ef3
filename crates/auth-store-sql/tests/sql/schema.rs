//! The schema as the migrations build it, and the connection settings.

use auth_store_sql::install;
use migration::{Migrator, MigratorTrait, SchemaManager};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

async fn has_tables(db: &DatabaseConnection) -> (bool, bool) {
    let manager = SchemaManager::new(db);
    (
        manager
            .has_table("users")
            .await
            .expect("the catalogue answers"),
        manager
            .has_table("sessions")
            .await
            .expect("the catalogue answers"),
    )
}

/// What the app does at every start must be harmless the second time.
pub(crate) async fn installing_twice_changes_nothing(db: DatabaseConnection) {
    install(&db).await.expect("a second install is a no-op");
    assert_eq!(has_tables(&db).await, (true, true));
    let pending = Migrator::get_pending_migrations(&db).await.expect("status");
    assert!(pending.is_empty());
}

/// The migration has a real `down`.
pub(crate) async fn down_drops_both_tables_and_up_builds_them_again(db: DatabaseConnection) {
    Migrator::down(&db, None).await.expect("down runs");
    assert_eq!(has_tables(&db).await, (false, false));
    install(&db).await.expect("up runs again");
    assert_eq!(has_tables(&db).await, (true, true));
}

/// WAL lets readers run beside a writer; the busy timeout makes a second writer wait
/// instead of failing with "database is locked". Checked on every pooled connection.
pub(crate) async fn sqlite_runs_in_wal_mode_with_a_busy_timeout(db: DatabaseConnection) {
    // The pool of a SQLite file, as `connect` sizes it on this machine.
    let pool_size = auth_store_sql::default_max_connections("sqlite://any-file.db").get();
    let checks = (0..pool_size).map(|_| {
        let db = db.clone();
        tokio::spawn(async move {
            // A transaction pins one connection while the others are checked.
            let transaction = sea_orm::TransactionTrait::begin(&db).await.expect("begin");
            let journal_mode = pragma_in(&transaction, "journal_mode").await;
            let synchronous = pragma_in(&transaction, "synchronous").await;
            let busy_timeout = pragma_in(&transaction, "busy_timeout").await;
            let foreign_keys = pragma_in(&transaction, "foreign_keys").await;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            transaction.commit().await.expect("commit");
            (journal_mode, synchronous, busy_timeout, foreign_keys)
        })
    });
    for check in futures::future::join_all(checks).await {
        let (journal_mode, synchronous, busy_timeout, foreign_keys) = check.expect("no panic");
        assert_eq!(journal_mode, "wal");
        assert_eq!(synchronous, "1", "NORMAL");
        assert_eq!(busy_timeout, "5000");
        assert_eq!(foreign_keys, "1");
    }
    assert_eq!(pragma_in(&db, "journal_mode").await, "wal");
}

async fn pragma_in(db: &impl ConnectionTrait, name: &str) -> String {
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!("PRAGMA {name}"),
        ))
        .await
        .expect("the pragma runs")
        .expect("the pragma answers");
    row.try_get_by_index::<String>(0)
        .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
        .expect("a text or integer answer")
}

/// MySQL's default collations ignore case and accents, and sea-query's "timestamp with
/// time zone" is a seconds-only `timestamp` there: the migration must avoid both.
pub(crate) async fn mysql_text_columns_compare_bytes_and_timestamps_keep_microseconds(
    db: DatabaseConnection,
) {
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT CONCAT(table_name, '.', column_name) AS col, \
                    COALESCE(collation_name, '') AS collation, column_type AS type \
             FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name IN ('users', 'sessions') \
             ORDER BY col",
        ))
        .await
        .expect("the catalogue answers");
    let columns: Vec<(String, String, String)> = rows
        .iter()
        .map(|row| {
            (
                row.try_get("", "col").expect("col"),
                row.try_get("", "collation").expect("collation"),
                row.try_get("", "type").expect("type"),
            )
        })
        .collect();
    let find = |name: &str| {
        columns
            .iter()
            .find(|(col, _, _)| col.eq_ignore_ascii_case(name))
            .unwrap_or_else(|| panic!("{name} missing from {columns:?}"))
            .clone()
    };
    for name in [
        "users.email",
        "users.username",
        "users.password_hash",
        "sessions.data",
    ] {
        assert_eq!(find(name).1, "utf8mb4_bin", "{name}");
    }
    for name in ["sessions.id", "sessions.user_id"] {
        assert_eq!(find(name).1, "ascii_bin", "{name}");
    }
    for name in [
        "users.created_at",
        "sessions.created_at",
        "sessions.last_seen_at",
        "sessions.expires_at",
    ] {
        assert_eq!(find(name).2, "datetime(6)", "{name}");
    }
    assert_eq!(find("sessions.data").2, "mediumtext");
    assert_eq!(find("users.id").2, "binary(16)");
}
