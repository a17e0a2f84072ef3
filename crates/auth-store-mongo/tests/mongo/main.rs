//! MongoDB adapters against a real server (`MONGODB_URL`; `cargo xtask test` starts
//! SecantusDB when none is given). Every test gets a database of its own, dropped after.

mod common;
mod connection;
mod factors;
mod indexes;
mod revocation;
mod sessions;
mod throttle_audit;
mod users;

mod user_repository {
    auth_testkit::user_repository_suite!(
        backends: [mongodb],
        setup: crate::common::user_repository,
    );
}

mod session_store {
    auth_testkit::session_store_suite!(
        backends: [mongodb],
        setup: crate::common::session_store,
    );
}

mod owners {
    auth_testkit::session_owner_suite!(backends: [mongodb], setup: crate::common::both);
}

mod failures {
    auth_testkit::failure_counter_suite!(
        backends: [mongodb],
        setup: crate::common::failure_counter,
    );
}

mod audit {
    auth_testkit::audit_log_suite!(backends: [mongodb], setup: crate::common::audit_log);
}

mod mail {
    auth_testkit::mail_stores_suite!(
        backends: [mongodb],
        setup: crate::common::transactional_stores,
    );

    mod transactional {
        auth_testkit::backend_tests! {
            backends: [mongodb],
            setup: crate::common::transactional_stores,
            tests: {
                auth_testkit::commit => [a_refused_work_leaves_nothing_of_its_earlier_changes],
            },
        }
    }

    /// As on a standalone server: no transactions.
    mod change_by_change {
        auth_testkit::mail_stores_suite!(
            backends: [mongodb],
            setup: crate::common::stores_change_by_change,
        );
    }

    mod instances {
        auth_testkit::backend_tests! {
            backends: [mongodb],
            setup: crate::common::two_instances,
            tests: {
                auth_testkit::outbox => [concurrent_leases_from_two_instances_never_share_a_mail],
            },
        }
    }
}

mod second_factors {
    auth_testkit::factor_stores_suite!(
        backends: [mongodb],
        setup: crate::common::transactional_stores,
        two_instances: crate::common::two_instances,
        transactional: true,
    );

    /// As on a standalone server: no transactions.
    mod change_by_change {
        auth_testkit::factor_stores_suite!(
            backends: [mongodb],
            setup: crate::common::stores_change_by_change,
            two_instances: crate::common::two_instances_change_by_change,
        );
    }

    mod documents {
        auth_testkit::backend_tests! {
            backends: [mongodb],
            setup: crate::common::stores_and_database,
            tests: {
                crate::factors => [
                    totp_passkeys_and_codes_are_stored_with_string_ids_and_exact_microseconds,
                    a_challenge_is_stored_with_a_date_for_its_ttl_and_exact_microseconds,
                    deleting_a_user_removes_their_ceremonies_and_no_one_elses,
                ],
            },
        }
    }

    mod racing {
        auth_testkit::backend_tests! {
            backends: [mongodb],
            setup: crate::common::two_instances,
            tests: {
                crate::factors => [
                    concurrent_enrolments_from_two_instances_each_begin_and_one_stays,
                ],
            },
        }
    }
}

mod indexed {
    auth_testkit::backend_tests! {
        backends: [mongodb],
        setup: crate::common::database,
        tests: {
            crate::users => [
                a_users_created_at_is_stored_as_microseconds_since_the_epoch,
                an_operator_object_given_as_an_email_or_username_matches_nothing,
                a_corrupt_user_document_is_a_storage_error_that_quotes_no_hash,
            ],
            crate::sessions => [
                the_stored_document_holds_a_hashed_key_the_json_data_and_indexed_fields,
                undecodable_stored_data_is_an_error_that_quotes_neither_id_nor_data,
                an_expired_session_is_neither_listed_nor_deleted_before_the_ttl_monitor_runs,
                sessions_created_in_bulk_load_with_their_owner_and_given_times,
            ],
            crate::revocation => [
                a_password_change_cut_short_after_the_rebind_leaves_old_sessions_refused,
            ],
            crate::indexes => [
                ensure_indexes_can_run_again_and_declares_what_the_adapters_rely_on,
                throttle_and_audit_indexes_can_run_again_and_declare_what_the_adapters_rely_on,
                mail_indexes_can_run_again_and_declare_what_the_adapters_rely_on,
                factor_indexes_can_run_again_and_declare_what_the_adapters_rely_on,
            ],
            crate::throttle_audit => [
                a_failure_is_stored_with_a_date_for_its_ttl_and_exact_microseconds,
                an_event_is_stored_with_string_ids_and_exact_microseconds,
                an_unreadable_stored_event_is_an_error_that_quotes_no_value,
            ],
        },
    }
}

mod without_indexes {
    auth_testkit::backend_tests! {
        backends: [mongodb],
        setup: crate::common::bare_database,
        tests: {
            crate::users => [duplicates_under_indexes_made_by_hand_are_still_told_apart],
            crate::indexes => [
                an_index_of_the_same_name_with_other_options_is_reported_with_its_collection,
            ],
        },
    }
}

mod admin {
    use auth_store_mongo::{
        MongoAdministration, MongoAuditLog, MongoSessionStore, MongoUserRepository,
    };
    use auth_testkit::{Backend, TestDatabase};

    use crate::common::{EVENTS, SESSIONS, USERS};

    /// Every store on one fresh, indexed database, with the operator's view of them.
    async fn stores(
        backend: Backend,
    ) -> (
        (
            MongoUserRepository,
            MongoSessionStore,
            MongoAuditLog,
            MongoAdministration,
        ),
        TestDatabase,
    ) {
        let (db, database) = crate::common::database(backend).await;
        (
            (
                MongoUserRepository::new(&db, USERS, SESSIONS),
                MongoSessionStore::new(&db, SESSIONS),
                MongoAuditLog::new(&db, EVENTS),
                MongoAdministration::new(&db, USERS, SESSIONS, EVENTS),
            ),
            database,
        )
    }

    auth_testkit::administration_suite!(backends: [mongodb], setup: crate::admin::stores);
}
