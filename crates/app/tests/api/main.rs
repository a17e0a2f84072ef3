//! The API suite: the whole HTTP contract of DESIGN.md, driven over a real connection
//! against a real server, written once and run on every backend.

mod bodies;
mod contract;
mod helpers;
mod sessions;

/// Expands every listed test once per backend, as `<backend>::<test>`; each test is an
/// `async fn(Backend)` that spawns its own service on its own database.
macro_rules! on_every_backend {
    ($($module:ident :: $test:ident),+ $(,)?) => {
        on_every_backend!(@backend sqlite, Sqlite; $($module::$test),+);
        on_every_backend!(@backend postgres, Postgres; $($module::$test),+);
        on_every_backend!(@backend mysql, Mysql; $($module::$test),+);
        on_every_backend!(@backend mongodb, Mongodb; $($module::$test),+);
    };
    (@backend $name:ident, $variant:ident; $($module:ident :: $test:ident),+) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    crate::$module::$test(auth_testkit::db::Backend::$variant).await;
                }
            )+
        }
    };
}

on_every_backend!(
    contract::the_recipes_manual_test_passes,
    contract::registration_answers_201_with_the_user_and_does_not_log_in,
    contract::login_accepts_the_username_or_the_email_in_any_case,
    contract::a_taken_email_or_username_is_409,
    contract::invalid_fields_are_400_with_per_field_errors,
    contract::wrong_password_and_unknown_user_get_the_same_401,
    contract::logout_without_a_session_is_401,
    contract::unknown_paths_and_wrong_methods_are_404_json,
    contract::security_headers_are_on_every_response,
    contract::concurrent_registrations_of_one_email_give_exactly_one_201,
    bodies::each_bad_body_gets_its_status_and_never_echoes_the_value,
    bodies::control_characters_never_cause_a_500,
    bodies::an_oversized_body_is_413_json,
    sessions::the_cookie_is_signed_http_only_lax_and_lives_as_configured,
    sessions::the_cookie_is_secure_when_configured,
    sessions::every_login_issues_a_fresh_session_id,
    sessions::a_cookie_replayed_after_logout_is_401,
    sessions::a_tampered_or_forged_cookie_is_401,
    sessions::a_steady_authenticated_request_sends_no_cookie,
    sessions::a_used_session_rolls_and_an_idle_one_dies,
);
