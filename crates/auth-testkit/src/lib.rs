//! Test support shared by every store and by the API suite.
//!
//! - [`db`]: a throwaway database per test on any backend, dropped afterwards.
//! - [`users`] and [`sessions`]: conformance suites that every [`auth_domain::UserRepository`]
//!   and every `tower_sessions::SessionStore` must pass, expanded once per store with
//!   [`user_repository_suite!`] and [`session_store_suite!`].
//!
//! ```text
//! async fn sqlite_repo() -> Option<(SqlUserRepository, TestDatabase)> { ... }
//! auth_testkit::user_repository_suite!(sqlite_repo);
//! ```

pub mod db;
pub mod sessions;
pub mod users;

/// Expands to one `#[tokio::test]` per user-repository behaviour, each on a fresh store made
/// by `$make: async fn() -> Option<(impl UserRepository, TestDatabase)>` (None: the backend
/// is not available here, which [`db::TestDatabase::create`] has already reported).
#[macro_export]
macro_rules! user_repository_suite {
    ($make:path) => {
        $crate::__suite!($make, $crate::users;
            a_user_reads_back_exactly_as_inserted,
            lookups_of_unknown_users_find_nothing,
            a_second_user_with_the_same_email_is_refused,
            a_second_user_with_the_same_username_is_refused,
            a_refused_insert_stores_nothing,
            usernames_differing_only_in_accents_or_case_folding_are_distinct,
            replacing_a_password_hash_is_compare_and_set,
            concurrent_registrations_of_one_email_store_exactly_one,
        );
    };
}

/// Expands to one `#[tokio::test]` per session-store behaviour, each on a fresh store made
/// by `$make: async fn() -> Option<(impl SessionStore, TestDatabase)>`.
#[macro_export]
macro_rules! session_store_suite {
    ($make:path) => {
        $crate::__suite!($make, $crate::sessions;
            a_created_session_loads_back,
            an_unknown_session_loads_nothing,
            create_never_overwrites_an_existing_session,
            save_updates_an_existing_session,
            save_never_brings_back_a_deleted_session,
            an_expired_session_never_loads,
            delete_removes_the_session,
            sessions_of_different_ids_do_not_mix,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite {
    ($make:path, $module:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((subject, database)) = $make().await else { return };
                {
                    use $module as suite;
                    suite::$name(subject).await;
                }
                database.drop_now().await;
            }
        )+
    };
}
