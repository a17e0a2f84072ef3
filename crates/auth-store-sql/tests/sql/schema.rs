//! The schema as the migrations build it, and the connection settings.

use auth_domain::{
    session::{self, Credential, Login, Owner},
    timestamp, OwnedSessions, User, UserRepository,
};
use auth_store_sql::{install, SqlSessionStore, SqlUserRepository};
use auth_testkit::{sessions::logged_in_as, users::new_user};
use migration::{Migrator, MigratorTrait, SchemaManager};
use sea_orm::{
    sea_query::{Alias, Query},
    ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value,
};
use time::PrimitiveDateTime;
use tower_sessions::SessionStore;

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

/// A database made by the first release (users and sessions only) is brought up to date
/// by the next start, and keeps what it held: its users get the credential of their
/// password hash, so that their sessions stay logged in.
pub(crate) async fn a_database_of_the_first_schema_upgrades_and_keeps_its_data(
    db: DatabaseConnection,
) {
    let manager = SchemaManager::new(&db);
    assert!(!has_table(&manager, "login_failures").await);
    let pending = Migrator::get_pending_migrations(&db).await.expect("status");
    assert_eq!(
        pending.len(),
        Migrator::migrations().len() - 1,
        "all but the first migration are pending"
    );

    let user = new_user("ada@example.com", "ada_l").into_user();
    insert_as_the_first_release_did(&db, &user).await;
    let sessions = SqlSessionStore::new(db.clone());
    let mut record = logged_in_as(user.id);
    Login::new(&user, auth_domain::clock::Clock::system().now()).write(&mut record.data);
    SessionStore::create(&sessions, &mut record)
        .await
        .expect("the first schema takes a session");

    install(&db).await.expect("the upgrade runs");

    assert!(Migrator::get_pending_migrations(&db)
        .await
        .expect("status")
        .is_empty());
    for table in ["login_failures", "auth_events", "one_time_tokens", "outbox"] {
        assert!(has_table(&manager, table).await, "{table}");
    }
    let users = SqlUserRepository::new(db.clone());
    assert_eq!(
        users.find_by_id(user.id).await.expect("lookup works"),
        Some(user.clone())
    );
    let loaded = sessions
        .load_owned(&record.id.to_string())
        .await
        .expect("load works")
        .expect("the session survived the upgrade");
    let data = loaded.data.parse().expect("a JSON object");
    assert_eq!(session::user_id(&data), Some(user.id));
    assert_eq!(
        loaded.expires_at,
        timestamp::truncate_to_micros(record.expiry_date)
    );
    let owner = loaded.owner.expect("the session loads with its user");
    assert_eq!(owner, Owner::of(&user));
    assert!(
        !owner.email_verified,
        "users from before verification are unverified"
    );
    assert_eq!(owner.credential, Credential::of(&user.password_hash));
    assert!(
        owner.owns(&loaded.data.login().expect("logged in")),
        "the upgrade keeps the user logged in"
    );
}

/// `user` as a row of the first schema, which has no `credential`.
async fn insert_as_the_first_release_did(db: &DatabaseConnection, user: &User) {
    let backend = db.get_database_backend();
    let at = user.created_at;
    let created_at = match backend {
        DbBackend::Sqlite => Value::from(
            at.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
            ))
            .expect("formats"),
        ),
        DbBackend::MySql => Value::from(PrimitiveDateTime::new(at.date(), at.time())),
        DbBackend::Postgres => Value::from(at),
    };
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new("users"))
        .columns(["id", "email", "username", "password_hash", "created_at"].map(Alias::new))
        .values_panic([
            user.id.as_uuid().into(),
            user.email.as_str().into(),
            user.username.as_str().into(),
            user.password_hash.as_str().into(),
            created_at.into(),
        ]);
    db.execute(backend.build(&insert))
        .await
        .expect("the first schema takes a user");
}

/// Each later migration has a real `down` of its own, undone newest first: the eighth
/// drops the second factors' four tables, the seventh the tokens, the outbox and `users.email_verified`, the sixth the events' `count`,
/// the fifth the failures' `attempt`, the fourth the events' `actor` and `request_id`, the
/// third `users.credential` and nothing else, the second its tables and leaves the first
/// migration's alone; `up` then builds them again.
pub(crate) async fn the_later_migrations_go_down_and_up_one_at_a_time(db: DatabaseConnection) {
    let manager = SchemaManager::new(&db);
    assert!(has_factors(&manager).await);
    Migrator::down(&db, Some(1)).await.expect("down runs");
    assert!(!has_factors(&manager).await);
    assert!(has_mail(&manager).await);
    Migrator::down(&db, Some(1)).await.expect("down runs");
    assert!(!has_mail(&manager).await);
    assert!(has_count(&manager).await);
    Migrator::down(&db, Some(1)).await.expect("down runs");
    assert!(!has_count(&manager).await);
    assert!(has_attempt(&manager).await);
    Migrator::down(&db, Some(1)).await.expect("down runs");
    assert!(!has_attempt(&manager).await);
    assert!(has_actor(&manager).await);
    Migrator::down(&db, Some(1)).await.expect("down runs");
    assert!(!has_actor(&manager).await);
    assert!(has_credential(&manager).await);
    Migrator::down(&db, Some(1)).await.expect("down runs");
    assert!(!has_credential(&manager).await);
    for table in ["login_failures", "auth_events"] {
        assert!(has_table(&manager, table).await, "{table}");
    }
    Migrator::down(&db, Some(1)).await.expect("down runs");
    for table in ["login_failures", "auth_events"] {
        assert!(!has_table(&manager, table).await, "{table}");
    }
    assert_eq!(has_tables(&db).await, (true, true));
    install(&db).await.expect("up runs again");
    for table in ["login_failures", "auth_events"] {
        assert!(has_table(&manager, table).await, "{table}");
    }
    assert!(has_credential(&manager).await);
    assert!(has_actor(&manager).await);
    assert!(has_attempt(&manager).await);
    assert!(has_count(&manager).await);
    assert!(has_mail(&manager).await);
    assert!(has_factors(&manager).await);
}

/// Whether the second factors' migration is in: its four tables, which come and go
/// together.
async fn has_factors(manager: &SchemaManager<'_>) -> bool {
    let mut present = Vec::new();
    for table in [
        "totp_credentials",
        "recovery_codes",
        "passkeys",
        "webauthn_challenges",
    ] {
        present.push(has_table(manager, table).await);
    }
    assert!(
        present.iter().all(|p| *p == present[0]),
        "all or none: {present:?}"
    );
    present[0]
}

/// Whether the mail migration is in: its two tables and `users.email_verified`, which come
/// and go together.
async fn has_mail(manager: &SchemaManager<'_>) -> bool {
    let tokens = has_table(manager, "one_time_tokens").await;
    let outbox = has_table(manager, "outbox").await;
    let verified = manager
        .has_column("users", "email_verified")
        .await
        .expect("the catalogue answers");
    assert_eq!((tokens, outbox), (verified, verified), "all or none");
    verified
}

async fn has_actor(manager: &SchemaManager<'_>) -> bool {
    let actor = manager
        .has_column("auth_events", "actor")
        .await
        .expect("the catalogue answers");
    let request_id = manager
        .has_column("auth_events", "request_id")
        .await
        .expect("the catalogue answers");
    assert_eq!(actor, request_id, "both columns come and go together");
    actor
}

async fn has_count(manager: &SchemaManager<'_>) -> bool {
    manager
        .has_column("auth_events", "count")
        .await
        .expect("the catalogue answers")
}

async fn has_attempt(manager: &SchemaManager<'_>) -> bool {
    manager
        .has_column("login_failures", "attempt")
        .await
        .expect("the catalogue answers")
}

async fn has_credential(manager: &SchemaManager<'_>) -> bool {
    manager
        .has_column("users", "credential")
        .await
        .expect("the catalogue answers")
}

async fn has_table(manager: &SchemaManager<'_>, table: &str) -> bool {
    manager
        .has_table(table)
        .await
        .expect("the catalogue answers")
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

/// The tables of the second migration follow the first's rules on MySQL: keys and names
/// compare bytes, text is utf8mb4, instants keep microseconds, ids are binary UUIDs.
pub(crate) async fn mysql_throttle_and_audit_columns_compare_bytes_and_keep_microseconds(
    db: DatabaseConnection,
) {
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT CONCAT(table_name, '.', column_name) AS col, \
                    COALESCE(collation_name, '') AS collation, column_type AS type \
             FROM information_schema.columns \
             WHERE table_schema = DATABASE() \
               AND table_name IN ('login_failures', 'auth_events') \
             ORDER BY col",
        ))
        .await
        .expect("the catalogue answers");
    let columns: Vec<(String, String, String)> = rows
        .iter()
        .map(|row| {
            let kind: String = row.try_get("", "type").expect("type");
            // MariaDB shows a display width (`bigint(20)`), MySQL 8 none.
            let kind = if kind.starts_with("bigint") {
                "bigint".to_owned()
            } else if kind.starts_with("int(") {
                "int".to_owned()
            } else {
                kind
            };
            (
                row.try_get::<String>("", "col")
                    .expect("col")
                    .to_lowercase(),
                row.try_get("", "collation").expect("collation"),
                kind,
            )
        })
        .collect();
    let expected = [
        ("auth_events.actor", "ascii_bin", "varchar(16)"),
        ("auth_events.at", "", "datetime(6)"),
        ("auth_events.count", "", "int"),
        ("auth_events.id", "", "binary(16)"),
        ("auth_events.ip", "ascii_bin", "varchar(45)"),
        ("auth_events.kind", "ascii_bin", "varchar(32)"),
        ("auth_events.request_id", "ascii_bin", "varchar(64)"),
        ("auth_events.user_agent", "utf8mb4_bin", "varchar(256)"),
        ("auth_events.user_id", "", "binary(16)"),
        ("login_failures.at", "", "datetime(6)"),
        ("login_failures.attempt", "", "bigint"),
        ("login_failures.id", "", "bigint"),
        ("login_failures.key", "ascii_bin", "varchar(64)"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(col, collation, kind)| ((*col).into(), (*collation).into(), (*kind).into()))
        .collect();
    assert_eq!(columns, expected);
}

/// The mail tables follow the others' rules on MySQL: names and digests ASCII compared by
/// bytes, addresses and text utf8mb4 compared by bytes, bodies past 64 KiB, instants with
/// microseconds, ids binary UUIDs.
pub(crate) async fn mysql_mail_columns_compare_bytes_and_keep_microseconds(db: DatabaseConnection) {
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT LOWER(CONCAT(table_name, '.', column_name)) AS col, \
                    COALESCE(collation_name, '') AS collation, column_type AS type \
             FROM information_schema.columns \
             WHERE table_schema = DATABASE() \
               AND (table_name IN ('one_time_tokens', 'outbox') \
                    OR (table_name = 'users' AND column_name = 'email_verified')) \
             ORDER BY col",
        ))
        .await
        .expect("the catalogue answers");
    let columns: Vec<(String, String, String)> = rows
        .iter()
        .map(|row| {
            let kind: String = row.try_get("", "type").expect("type");
            // MariaDB shows a display width (`int(11)`), MySQL 8 none.
            let kind = if kind.starts_with("int(") {
                "int".to_owned()
            } else {
                kind
            };
            (
                row.try_get("", "col").expect("col"),
                row.try_get("", "collation").expect("collation"),
                kind,
            )
        })
        .collect();
    let expected = [
        ("one_time_tokens.created_at", "", "datetime(6)"),
        ("one_time_tokens.digest", "ascii_bin", "varchar(64)"),
        ("one_time_tokens.email", "utf8mb4_bin", "varchar(254)"),
        ("one_time_tokens.expires_at", "", "datetime(6)"),
        ("one_time_tokens.purpose", "ascii_bin", "varchar(32)"),
        ("one_time_tokens.user_id", "", "binary(16)"),
        ("outbox.attempts", "", "int"),
        ("outbox.body", "utf8mb4_bin", "mediumtext"),
        ("outbox.created_at", "", "datetime(6)"),
        ("outbox.id", "", "binary(16)"),
        ("outbox.kind", "ascii_bin", "varchar(32)"),
        ("outbox.last_error", "utf8mb4_bin", "text"),
        ("outbox.lease_id", "", "binary(16)"),
        ("outbox.lease_until", "", "datetime(6)"),
        ("outbox.next_attempt_at", "", "datetime(6)"),
        ("outbox.recipient", "utf8mb4_bin", "varchar(254)"),
        ("outbox.sent_at", "", "datetime(6)"),
        ("outbox.status", "ascii_bin", "varchar(16)"),
        ("outbox.subject", "utf8mb4_bin", "text"),
        ("users.email_verified", "", "tinyint(1)"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(col, collation, kind)| ((*col).into(), (*collation).into(), (*kind).into()))
        .collect();
    assert_eq!(columns, expected);
}

/// The second factors' tables follow the others' rules on MySQL: digests, names and
/// credential ids ASCII compared by bytes (a credential id of 1364 characters fits a
/// unique index so), names and secrets utf8mb4 compared by bytes, library JSON past
/// 64 KiB, instants with microseconds, ids binary UUIDs.
pub(crate) async fn mysql_factor_columns_compare_bytes_and_keep_microseconds(
    db: DatabaseConnection,
) {
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT LOWER(CONCAT(table_name, '.', column_name)) AS col, \
                    COALESCE(collation_name, '') AS collation, column_type AS type \
             FROM information_schema.columns \
             WHERE table_schema = DATABASE() \
               AND table_name IN ('totp_credentials', 'recovery_codes', 'passkeys', \
                                  'webauthn_challenges') \
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
    let expected = [
        ("passkeys.created_at", "", "datetime(6)"),
        ("passkeys.credential_id", "ascii_bin", "varchar(1364)"),
        ("passkeys.id", "", "binary(16)"),
        ("passkeys.key", "utf8mb4_bin", "mediumtext"),
        ("passkeys.last_used_at", "", "datetime(6)"),
        ("passkeys.name", "utf8mb4_bin", "varchar(64)"),
        ("passkeys.user_id", "", "binary(16)"),
        ("recovery_codes.created_at", "", "datetime(6)"),
        ("recovery_codes.digest", "ascii_bin", "varchar(64)"),
        ("recovery_codes.user_id", "", "binary(16)"),
        ("totp_credentials.confirmed", "", "tinyint(1)"),
        ("totp_credentials.created_at", "", "datetime(6)"),
        ("totp_credentials.id", "", "binary(16)"),
        ("totp_credentials.last_step", "", "bigint(20)"),
        ("totp_credentials.sealed_secret", "utf8mb4_bin", "text"),
        ("totp_credentials.user_id", "", "binary(16)"),
        ("webauthn_challenges.ceremony", "ascii_bin", "varchar(32)"),
        ("webauthn_challenges.digest", "ascii_bin", "varchar(64)"),
        ("webauthn_challenges.expires_at", "", "datetime(6)"),
        ("webauthn_challenges.state", "utf8mb4_bin", "mediumtext"),
        ("webauthn_challenges.user_id", "", "binary(16)"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(col, collation, kind)| ((*col).into(), (*collation).into(), (*kind).into()))
        .collect();
    // MariaDB shows a display width (`bigint(20)`), MySQL 8 none.
    let columns: Vec<(String, String, String)> = columns
        .into_iter()
        .map(|(col, collation, kind)| {
            let kind = if kind == "bigint" {
                "bigint(20)".to_owned()
            } else {
                kind
            };
            (col, collation, kind)
        })
        .collect();
    assert_eq!(columns, expected);
}
