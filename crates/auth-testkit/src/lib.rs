//! Test support shared by every store and by the API suite.
//!
//! - [`db`]: the backends, and a throwaway database per test on any of them, dropped
//!   afterwards.
//! - [`users`] and [`sessions`]: conformance suites that every [`auth_domain::UserRepository`]
//!   and every `tower_sessions::SessionStore` must pass.
//! - [`owners`]: the suite of a session store and a user repository together: a session
//!   loads with its owner as stored now.
//! - [`memory`]: in-memory stores that pass those suites, for tests of the layers above
//!   the stores that need no database.
//! - [`backend_tests!`]: the one way a test is expanded per backend. It puts the backend
//!   in the test's path (`postgres::logout_ends_the_session`), so that a runner can tell
//!   a backend's tests apart and skip them, by name, when the backend is not available:
//!   `cargo xtask test` does so with a nextest filter and reports them as skipped. A test
//!   never decides by itself to pass without running.
//!
//! ```text
//! auth_testkit::backend_tests! {
//!     backends: [sqlite, postgres, mysql],
//!     setup: crate::support::repository,      // async fn(Backend) -> (Subject, impl Teardown)
//!     tests: { auth_testkit::users => [a_user_reads_back_exactly_as_inserted] },
//! }
//! auth_testkit::backend_tests! {
//!     backends: [sqlite, postgres, mysql, mongodb],
//!     tests: { crate::contract => [the_recipes_manual_test_passes] },   // async fn(Backend)
//! }
//! ```

pub mod db;
pub mod memory;
pub mod owners;
pub mod sessions;
pub mod users;

pub use db::{Backend, Teardown, TestDatabase};

/// Expands each listed test once per backend, as `<backend>::<test>`, each a
/// `#[tokio::test]` on a multi-threaded runtime.
///
/// - Without `setup`, each test is an `async fn(Backend)` that makes what it needs.
/// - With `setup: path`, each test is an `async fn(Subject)`, handed what
///   `path(backend).await` returns first (`(Subject, impl Teardown)`); the second value is
///   torn down after the test.
///
/// `tests` maps modules to the names of their tests: `{ crate::contract => [a, b], .. }`.
/// Backends are the lower-case names of [`Backend`]'s variants.
#[macro_export]
macro_rules! backend_tests {
    (backends: [$($backend:ident),+ $(,)?], setup: $setup:path, tests: $tests:tt $(,)?) => {
        $( $crate::backend_tests!(@backend $backend, ($setup), $tests); )+
    };
    (backends: [$($backend:ident),+ $(,)?], tests: $tests:tt $(,)?) => {
        $( $crate::backend_tests!(@backend $backend, (), $tests); )+
    };
    (@backend $backend:ident, $setup:tt, { $($module:path => [$($test:ident),+ $(,)?]),+ $(,)? }) => {
        mod $backend {
            $($(
                $crate::backend_tests!(@test $backend, $setup, $module, $test);
            )+)+
        }
    };
    (@test $backend:ident, ($setup:path), $module:path, $test:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            use $module as suite;
            let (subject, scratch) = $setup($crate::db::by_name::$backend).await;
            suite::$test(subject).await;
            $crate::Teardown::teardown(scratch).await;
        }
    };
    (@test $backend:ident, (), $module:path, $test:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            use $module as suite;
            suite::$test($crate::db::by_name::$backend).await;
        }
    };
}

/// The behaviours every [`auth_domain::UserRepository`] must have, as `backend_tests!`
/// expands them: `user_repository_suite!(backends: [..], setup: path)`.
#[macro_export]
macro_rules! user_repository_suite {
    (backends: $backends:tt, setup: $setup:path $(,)?) => {
        $crate::backend_tests! {
            backends: $backends,
            setup: $setup,
            tests: { $crate::users => [
                a_user_reads_back_exactly_as_inserted,
                lookups_of_unknown_users_find_nothing,
                a_second_user_with_the_same_email_is_refused,
                a_second_user_with_the_same_username_is_refused,
                a_refused_insert_stores_nothing,
                usernames_differing_only_in_accents_or_case_folding_are_distinct,
                replacing_a_password_hash_is_compare_and_set,
                concurrent_registrations_of_one_email_store_exactly_one,
                replacing_a_hash_with_itself_still_counts_as_replaced,
                emails_are_compared_exactly_not_by_collation,
                a_taken_email_is_reported_even_when_the_default_username_collides_too,
                a_colliding_user_id_is_an_unexpected_error_not_a_taken_field,
                created_at_reads_back_to_the_microsecond,
            ] },
        }
    };
}

/// The behaviours every session store must have, as `backend_tests!` expands them:
/// `session_store_suite!(backends: [..], setup: path)`.
#[macro_export]
macro_rules! session_store_suite {
    (backends: $backends:tt, setup: $setup:path $(,)?) => {
        $crate::backend_tests! {
            backends: $backends,
            setup: $setup,
            tests: { $crate::sessions => [
                a_created_session_loads_back,
                an_unknown_session_loads_nothing,
                create_never_overwrites_an_existing_session,
                save_updates_an_existing_session,
                save_never_brings_back_a_deleted_session,
                an_expired_session_never_loads,
                delete_removes_the_session,
                sessions_of_different_ids_do_not_mix,
                deleting_a_users_sessions_leaves_everyone_elses,
                any_data_reads_back_unchanged,
            ] },
        }
    };
}

/// The behaviours every session store must have with the users it shares a database with,
/// as `backend_tests!` expands them: `session_owner_suite!(backends: [..], setup: path)`,
/// where `path(backend)` makes `((impl UserRepository, impl SessionStore), impl Teardown)`.
#[macro_export]
macro_rules! session_owner_suite {
    (backends: $backends:tt, setup: $setup:path $(,)?) => {
        $crate::backend_tests! {
            backends: $backends,
            setup: $setup,
            tests: { $crate::owners => [
                a_session_loads_with_its_owner,
                a_changed_password_reaches_the_loaded_owner_at_once,
                a_session_of_an_unknown_user_loads_without_an_owner,
            ] },
        }
    };
}
