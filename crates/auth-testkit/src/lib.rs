//! Test support shared by every store and by the API suite.
//!
//! - [`db`]: the backends, and a throwaway database per test on any of them, dropped
//!   afterwards.
//! - [`users`] and [`sessions`]: conformance suites that every [`auth_domain::UserRepository`]
//!   and every `tower_sessions::SessionStore` must pass.
//! - [`owners`]: the suite of a session store and a user repository together: a session
//!   loads with its owner as stored now.
//! - [`memory`]: in-memory stores that pass those suites, for tests of the layers above
//!   the stores that need no database; [`memory_stores`] bundles them as one backend.
//! - [`failures`] and [`audit`]: the suites of every `FailureCounter` and `AuditLog`
//!   (`auth_domain::throttle`, `auth_domain::audit`); [`memory_audit`] has in-memory ones.
//! - [`admin`]: the suite of every `auth_domain::admin::Administration`, with the stores
//!   whose contents it shows; [`memory_admin`] has an in-memory one.
//! - [`tokens`], [`outbox`] and [`commit`]: the suites of every backend's one-time tokens,
//!   outbox and unit of work (`auth_domain::Stores`), run on the whole bundle, since
//!   tokens and mail are only ever written through `commit`; [`memory_mail`] has
//!   in-memory ones.
//! - [`factors`]: the suite of every backend's second factors and WebAuthn ceremonies
//!   (`auth_domain::factors`), run on the whole bundle with its `commit`;
//!   [`memory_factors`] has in-memory ones.
//! - [`process`]: the app binary as a child process ([`AppCommand`]: a cleared
//!   environment, a free port, killed when dropped), and [`SetSessionCookie`], the one
//!   reader of the session cookie a response sets.
//! - [`mailbox`]: the mail the test SMTP server received (`cargo xtask test` starts it), and
//!   [`SmtpRelay`], a relay in front of it that a test turns down and up to make an outage.
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

pub mod admin;
pub mod audit;
pub mod commit;
pub mod db;
pub mod factors;
pub mod failures;
pub mod logs;
pub mod mailbox;
pub mod memory;
pub mod memory_admin;
pub mod memory_audit;
pub mod memory_factors;
pub mod memory_mail;
pub mod memory_stores;
pub mod outbox;
pub mod owners;
pub mod process;
mod readiness;
pub mod sessions;
pub mod smtp_relay;
pub mod tokens;
pub mod users;

pub use db::{Backend, Teardown, TestDatabase};
pub use mailbox::{Mailbox, Received};
pub use process::{AppCommand, AppProcess, SetSessionCookie, TempDir};
pub use smtp_relay::SmtpRelay;

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
                deleting_a_user_removes_them_and_frees_their_email_and_username,
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
                a_users_list_holds_their_own_live_sessions_most_recently_used_first,
                a_user_deletes_their_own_session_by_handle_and_no_one_elses,
                deleting_a_users_other_sessions_keeps_exactly_the_one_named,
            ] },
        }
    };
}

/// The behaviours every session store must have with the users it shares a database with,
/// as `backend_tests!` expands them: `session_owner_suite!(backends: [..], setup: path)`,
/// where `path(backend)` makes `((impl UserRepository, impl SessionStore + OwnedSessions +
/// UserSessions), impl Teardown)`.
#[macro_export]
macro_rules! session_owner_suite {
    (backends: $backends:tt, setup: $setup:path $(,)?) => {
        $crate::backend_tests! {
            backends: $backends,
            setup: $setup,
            tests: { $crate::owners => [
                a_session_loads_with_its_owner,
                a_changed_password_reaches_the_loaded_owner_at_once,
                a_save_in_flight_across_a_password_change_does_not_revive_the_old_login,
                a_session_of_an_unknown_user_loads_without_an_owner,
                deleting_a_user_ends_all_their_sessions_and_only_theirs,
            ] },
        }
    };
}

/// The behaviours every `auth_domain::throttle::FailureCounter` must have, as
/// `backend_tests!` expands them: `failure_counter_suite!(backends: [..], setup: path)`.
#[macro_export]
macro_rules! failure_counter_suite {
    (backends: $backends:tt, setup: $setup:path $(,)?) => {
        $crate::backend_tests! {
            backends: $backends,
            setup: $setup,
            tests: { $crate::failures => [
                counts_come_back_per_key_in_the_order_asked,
                only_failures_since_the_window_start_count,
                the_oldest_failure_is_exact_whatever_the_order_recorded,
                a_recorded_failure_counts_at_once_under_every_key,
                failures_at_the_same_instant_all_count,
                recording_under_no_key_is_harmless,
                a_reset_clears_that_key_only,
                a_withdrawn_attempt_no_longer_counts_and_no_other_is_touched,
                a_purge_deletes_old_failures_in_batches_and_keeps_new_ones,
            ] },
        }
    };
}

/// The behaviours every `auth_domain::audit::AuditLog` must have, as `backend_tests!`
/// expands them: `audit_log_suite!(backends: [..], setup: path)`.
#[macro_export]
macro_rules! audit_log_suite {
    (backends: $backends:tt, setup: $setup:path $(,)?) => {
        $crate::backend_tests! {
            backends: $backends,
            setup: $setup,
            tests: { $crate::audit => [
                an_event_reads_back_exactly_as_recorded,
                every_kind_reads_back,
                a_finer_instant_reads_back_cut_to_the_microsecond,
                a_users_events_come_newest_first,
                the_limit_keeps_the_most_recent_events,
                only_that_users_events_are_listed,
                an_event_without_a_user_is_stored_but_listed_for_nobody,
                a_purge_deletes_old_events_in_batches_and_keeps_new_ones,
                paging_with_the_cursor_reaches_every_event_once_and_kinds_filter,
            ] },
        }
    };
}

/// The behaviours every `auth_domain::admin::Administration` must have, as
/// `backend_tests!` expands them: `administration_suite!(backends: [..], setup: path)`,
/// where `path(backend)` makes `((impl UserRepository, impl SessionStore + UserSessions,
/// impl AuditLog, impl Administration), impl Teardown)`, all four on one database.
#[macro_export]
macro_rules! administration_suite {
    (backends: $backends:tt, setup: $setup:path $(,)?) => {
        $crate::backend_tests! {
            backends: $backends,
            setup: $setup,
            tests: { $crate::admin => [
                users_are_listed_newest_first_up_to_the_limit,
                every_users_live_sessions_are_listed_with_their_owner_most_recently_used_first,
                a_session_is_revoked_by_handle_whoever_owns_it_and_only_while_live,
                purging_deletes_every_expired_session_now_and_keeps_live_ones,
                everyones_events_come_newest_first_up_to_the_limit,
            ] },
        }
    };
}

/// The behaviours every backend's one-time tokens, outbox and unit of work must have, as
/// `backend_tests!` expands them: `mail_stores_suite!(backends: [..], setup: path)`, where
/// `path(backend)` makes `(impl Stores, impl Teardown)` on a fresh database, and its
/// sessions are a `tower_sessions::SessionStore`.
#[macro_export]
macro_rules! mail_stores_suite {
    (backends: $backends:tt, setup: $setup:path $(,)?) => {
        $crate::backend_tests! {
            backends: $backends,
            setup: $setup,
            tests: {
                $crate::tokens => [
                    a_token_reads_back_exactly_as_inserted,
                    the_latest_issued_token_is_found_per_user_and_purpose,
                    a_purge_deletes_expired_tokens_up_to_the_batch_and_keeps_live_ones,
                    voiding_deletes_a_users_tokens_of_one_purpose_or_of_all,
                ],
                $crate::outbox => [
                    enqueued_mail_is_leased_once_until_its_lease_ends,
                    only_the_lease_holder_marks_a_mail_sent_and_it_forgets_its_body,
                    a_failed_attempt_is_due_again_at_its_retry_time,
                    mail_failed_for_good_waits_for_retry_failed,
                    mail_is_listed_newest_first_by_status_up_to_the_limit,
                    a_purge_deletes_settled_mail_before_the_cutoff_and_keeps_pending_mail,
                ],
                $crate::commit => [
                    a_committed_work_applies_every_change,
                    concurrent_commits_spend_a_token_exactly_once,
                    a_token_of_another_purpose_or_expired_is_spent,
                    setting_an_email_is_refused_when_taken_or_stale_and_verifies_it,
                    email_verified_reads_back_through_users_and_a_sessions_owner,
                    a_password_set_by_a_work_ends_the_older_logins,
                    guards_refuse_what_is_gone_or_taken,
                ],
            },
        }
    };
}

/// The behaviours every backend's second factors and WebAuthn ceremonies must have, as
/// `backend_tests!` expands them:
/// `factor_stores_suite!(backends: [..], setup: path, two_instances: path)`, where
/// `setup(backend)` makes `(impl Stores, impl Teardown)` on a fresh database and
/// `two_instances(backend)` makes `((S, S), impl Teardown)`: two instances' stores, each
/// on its own connections, on one fresh database. Add `transactional: true` for a backend
/// whose `commit` is all or nothing (SQL, memory): its tests then include that too.
#[macro_export]
macro_rules! factor_stores_suite {
    (
        backends: $backends:tt,
        setup: $setup:path,
        two_instances: $two:path,
        transactional: true $(,)?
    ) => {
        $crate::factor_stores_suite!(backends: $backends, setup: $setup, two_instances: $two);

        mod transactional {
            $crate::backend_tests! {
                backends: $backends,
                setup: $setup,
                tests: { $crate::factors => [
                    a_refused_factor_work_leaves_nothing_of_its_earlier_changes,
                ] },
            }
        }
    };
    (backends: $backends:tt, setup: $setup:path, two_instances: $two:path $(,)?) => {
        $crate::backend_tests! {
            backends: $backends,
            setup: $setup,
            tests: { $crate::factors => [
                an_unconfirmed_totp_enrolment_reads_back_and_is_replaced_by_the_next,
                an_enrolment_is_refused_while_a_confirmed_credential_exists,
                confirming_is_refused_unless_it_names_the_pending_enrolment,
                a_totp_step_is_accepted_only_when_newer_than_the_last,
                removing_totp_is_refused_without_a_confirmed_credential,
                a_new_set_of_recovery_codes_voids_the_old_one,
                a_recovery_code_is_spent_once_and_only_by_its_owner,
                passkeys_read_back_oldest_first_and_by_credential_id,
                credential_ids_are_compared_exactly,
                renaming_and_using_a_passkey_change_only_the_owners,
                deleting_a_passkey_is_refused_unless_it_is_theirs,
                a_taken_credential_id_refuses_the_work_that_registers_it,
                the_summary_counts_each_users_own_factors,
                removing_factors_removes_totp_codes_and_passkeys_of_that_user_only,
                deleting_a_user_removes_their_factors,
                a_challenge_is_taken_once_for_its_own_ceremony,
                an_expired_challenge_is_not_given,
                a_purge_deletes_expired_challenges_up_to_the_batch_and_keeps_live_ones,
            ] },
        }

        mod instances {
            $crate::backend_tests! {
                backends: $backends,
                setup: $two,
                tests: { $crate::factors => [
                    concurrent_acceptances_of_one_step_from_two_instances_accept_it_once,
                    concurrent_uses_of_one_recovery_code_from_two_instances_spend_it_once,
                    concurrent_registrations_of_one_credential_from_two_instances_store_one,
                    concurrent_takes_of_one_challenge_from_two_instances_give_it_once,
                ] },
            }
        }
    };
}
