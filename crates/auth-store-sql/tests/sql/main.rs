//! The SQL stores on real engines: SQLite (a file, always), PostgreSQL and MySQL/MariaDB
//! (from `DATABASE_URL_POSTGRES` / `DATABASE_URL_MYSQL`, or the local defaults). Every test
//! gets a fresh database, dropped after. The session store's row layout is tested beside
//! it, in `src/sessions/tests.rs`.

mod deletion;
mod schema;
mod support;
mod work;
mod writers;

mod users {
    auth_testkit::user_repository_suite!(
        backends: [sqlite, postgres, mysql],
        setup: crate::support::repository,
    );
}

mod sessions {
    auth_testkit::session_store_suite!(
        backends: [sqlite, postgres, mysql],
        setup: crate::support::store,
    );
}

mod owners {
    auth_testkit::session_owner_suite!(
        backends: [sqlite, postgres, mysql],
        setup: crate::support::both,
    );
}

mod failures {
    auth_testkit::failure_counter_suite!(
        backends: [sqlite, postgres, mysql],
        setup: crate::support::failure_counter,
    );
}

mod audit {
    auth_testkit::audit_log_suite!(
        backends: [sqlite, postgres, mysql],
        setup: crate::support::audit_log,
    );
}

mod mail {
    auth_testkit::mail_stores_suite!(
        backends: [sqlite, postgres, mysql],
        setup: crate::support::stores,
    );

    mod transactional {
        auth_testkit::backend_tests! {
            backends: [sqlite, postgres, mysql],
            setup: crate::support::stores,
            tests: {
                auth_testkit::commit => [a_refused_work_leaves_nothing_of_its_earlier_changes],
            },
        }
    }

    mod instances {
        auth_testkit::backend_tests! {
            backends: [sqlite, postgres, mysql],
            setup: crate::support::two_instances,
            tests: {
                auth_testkit::outbox => [concurrent_leases_from_two_instances_never_share_a_mail],
            },
        }
    }
}

mod factors {
    auth_testkit::factor_stores_suite!(
        backends: [sqlite, postgres, mysql],
        setup: crate::support::stores,
        two_instances: crate::support::two_instances,
        transactional: true,
    );
}

mod upgrade {
    auth_testkit::backend_tests! {
        backends: [sqlite, postgres, mysql],
        setup: crate::support::first_schema,
        tests: {
            crate::schema => [a_database_of_the_first_schema_upgrades_and_keeps_its_data],
        },
    }
}

auth_testkit::backend_tests! {
    backends: [sqlite, postgres, mysql],
    setup: crate::support::database,
    tests: {
        crate::deletion => [a_user_deletion_that_fails_halfway_deletes_nothing],
        crate::work => [a_work_whose_storage_fails_halfway_applies_nothing],
        crate::schema => [
            installing_twice_changes_nothing,
            down_drops_both_tables_and_up_builds_them_again,
            the_later_migrations_go_down_and_up_one_at_a_time,
        ],
    },
}

mod sqlite_only {
    auth_testkit::backend_tests! {
        backends: [sqlite],
        setup: crate::support::database,
        tests: {
            crate::schema => [sqlite_runs_in_wal_mode_with_a_busy_timeout],
            crate::writers => [concurrent_writers_on_sqlite_never_see_a_locked_database],
        },
    }
}

mod mysql_only {
    auth_testkit::backend_tests! {
        backends: [mysql],
        setup: crate::support::database,
        tests: {
            crate::schema => [
                mysql_text_columns_compare_bytes_and_timestamps_keep_microseconds,
                mysql_throttle_and_audit_columns_compare_bytes_and_keep_microseconds,
                mysql_mail_columns_compare_bytes_and_keep_microseconds,
                mysql_factor_columns_compare_bytes_and_keep_microseconds,
            ],
        },
    }
}

mod postgres_only {
    auth_testkit::backend_tests! {
        backends: [postgres],
        tests: {
            crate::support => [a_stores_debug_output_holds_no_database_password],
        },
    }
}

/// An in-memory SQLite database lives as long as its single connection, which the pool
/// must keep. (No backend module: it needs no server and no file.)
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

mod admin {
    use auth_store_sql::{SqlAdministration, SqlAuditLog, SqlSessionStore, SqlUserRepository};
    use auth_testkit::{Backend, TestDatabase};

    /// Every store on one fresh database, with the operator's view of them.
    async fn stores(
        backend: Backend,
    ) -> (
        (
            SqlUserRepository,
            SqlSessionStore,
            SqlAuditLog,
            SqlAdministration,
        ),
        TestDatabase,
    ) {
        let (db, database) = crate::support::database(backend).await;
        (
            (
                SqlUserRepository::new(db.clone()),
                SqlSessionStore::new(db.clone()),
                SqlAuditLog::new(db.clone()),
                SqlAdministration::new(db),
            ),
            database,
        )
    }

    auth_testkit::administration_suite!(
        backends: [sqlite, postgres, mysql],
        setup: crate::admin::stores,
    );
}
