//! The API suite: the whole HTTP contract of DESIGN.md, driven over a real connection
//! against a real server, written once and run on every backend.

mod bodies;
mod contract;
mod helpers;
mod sessions;

auth_testkit::backend_tests! {
    backends: [sqlite, postgres, mysql, mongodb],
    tests: {
        crate::contract => [
            the_recipes_manual_test_passes,
            registration_answers_201_with_the_user_and_does_not_log_in,
            login_accepts_the_username_or_the_email_in_any_case,
            a_taken_email_or_username_is_409,
            invalid_fields_are_400_with_per_field_errors,
            wrong_password_and_unknown_user_get_the_same_401,
            logout_without_a_session_is_401,
            unknown_paths_and_wrong_methods_are_404_json,
            security_headers_are_on_every_response,
            concurrent_registrations_of_one_email_give_exactly_one_201,
        ],
        crate::bodies => [
            each_bad_body_gets_its_status_and_never_echoes_the_value,
            control_characters_never_cause_a_500,
            an_oversized_body_is_413_json,
        ],
        crate::sessions => [
            the_cookie_is_signed_http_only_lax_and_lives_as_configured,
            the_cookie_is_secure_when_configured,
            every_login_issues_a_fresh_session_id,
            a_cookie_replayed_after_logout_is_401,
            a_tampered_or_forged_cookie_is_401,
            a_steady_authenticated_request_sends_no_cookie,
            a_used_session_rolls_and_an_idle_one_dies,
        ],
    },
}
