//! The service under database faults, as an operator meets them: real `app` processes on
//! real databases that are stopped, frozen, filled up or killed under them.
//!
//! - `private_postgres`: a PostgreSQL cluster of the test's own (initdb into a temporary
//!   directory, on a free port), never the shared server, stopped and started, frozen
//!   with SIGSTOP and thawed with SIGCONT.
//! - `mongo`: a SecantusDB of the test's own, killed and restarted on the same port and
//!   storage (its binary is handed over by `cargo xtask test` in `SECANTUSD_RS_BIN`).
//! - `filesystem`: a SQLite database on a tiny tmpfs that fills up, and one on a read-only mount
//!   (tests that need to mount are named `..._on_tmpfs` and left out, loudly, by `cargo
//!   xtask test` where it cannot mount).
//! - `crash`: `kill -9` of the service (and of its database server) in the middle of a storm
//!   of registrations and logins.
//!
//! The bounds asserted are `DATABASE_TIMEOUT` plus a generous margin: what is checked is
//! that a request ends in 503 rather than hanging for the whole outage or failing with 500.
//! Measured times are printed (`fault timing:` lines) for the record.

mod app;
mod crash;
mod filesystem;
mod mongo;
mod private_postgres;

/// The `DATABASE_TIMEOUT` the service under test runs with, seconds.
const DATABASE_TIMEOUT_SECS: u64 = 2;

/// How much later than `DATABASE_TIMEOUT` a 503 may come: process scheduling on a busy
/// machine, a connect attempt that started just before the fault. A hang lasts as long
/// as the outage (tens of seconds here), far past it.
const MARGIN_SECS: u64 = 8;

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_up_retries_until_the_database_comes_up() {
        crate::private_postgres::start_up_waits_for_the_database().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_up_gives_up_with_one_clear_line_after_the_startup_timeout() {
        crate::private_postgres::start_up_gives_up_after_the_startup_timeout().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_database_answers_503_then_recovers_without_a_restart() {
        crate::private_postgres::stopped_then_started().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_frozen_database_answers_503_within_the_timeout_then_recovers() {
        crate::private_postgres::frozen_then_thawed().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_admin_command_gives_up_within_the_timeout_on_a_frozen_database() {
        crate::private_postgres::an_admin_command_gives_up_on_a_frozen_database().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_crash_mid_storm_loses_no_answered_registration() {
        crate::crash::postgres().await;
    }
}

mod mongodb {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_server_answers_503_then_recovers_without_a_restart() {
        crate::mongo::killed_then_restarted().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_crash_mid_storm_loses_no_answered_registration() {
        crate::crash::mongodb().await;
    }
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_answers_503_and_leaves_an_intact_database_on_tmpfs() {
        crate::filesystem::full_disk().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_only_directory_answers_503_and_leaves_an_intact_database_on_tmpfs() {
        crate::filesystem::read_only().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_only_spell_under_a_running_service_recovers_without_a_restart() {
        crate::filesystem::read_only_spell().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_crash_mid_storm_loses_no_answered_registration() {
        crate::crash::sqlite().await;
    }
}
