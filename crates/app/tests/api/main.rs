//! The API suite: the whole HTTP contract of DESIGN.md, driven over a real connection
//! against a real server, written once and run on every backend.

mod absolute_lifetime;
mod account;
mod audit_events;
mod bodies;
mod contract;
mod cross_origin;
mod hardening;
mod helpers;
mod key_rotation;
mod mail;
mod my_sessions;
mod probes;
mod proxies;
mod remember;
mod revocation_races;
mod second_factor;
mod sessions;
mod telemetry;
mod throttling;

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
            a_session_cookie_counts_only_when_a_key_verifies_it,
            a_steady_authenticated_request_sends_no_cookie,
            a_used_session_rolls_and_an_idle_one_dies,
        ],
        crate::my_sessions => [
            a_user_with_three_sessions_lists_them_and_revokes_one_then_the_others,
            sessions_are_listed_most_recently_used_first_and_expired_ones_never,
            an_unknown_handle_and_someone_elses_get_the_same_404,
            revoking_the_current_session_logs_out_and_expires_the_cookie,
            every_self_service_route_is_401_when_anonymous,
            the_user_agent_is_kept_without_control_characters_and_at_most_256_long,
        ],
        crate::account => [
            a_password_change_ends_the_other_sessions_and_keeps_this_one_under_a_new_cookie,
            a_new_password_must_follow_the_policy_and_the_current_one_must_match,
            a_password_change_needs_both_fields_as_strings,
            deleting_the_account_ends_every_session_and_frees_the_email,
            deleting_the_account_needs_the_right_password,
        ],
        crate::revocation_races => [
            logins_racing_a_password_change_or_a_deletion_leave_no_session,
        ],
        crate::remember => [
            remember_false_gives_a_cookie_that_ends_with_the_browser,
            remember_true_and_the_default_give_a_persistent_cookie,
            a_non_boolean_remember_is_422,
        ],
        crate::absolute_lifetime => [
            a_session_used_every_second_dies_at_its_absolute_lifetime,
        ],
        crate::key_rotation => [
            a_restart_with_the_old_key_as_a_fallback_keeps_sessions_and_reissues_cookies,
            a_restart_with_any_byte_of_the_key_changed_ends_every_session,
            a_device_cookie_carries_over_a_rotation_and_is_reissued,
        ],
        crate::throttling => [
            the_sixth_wrong_password_is_429_and_so_is_the_right_one_then,
            a_throttled_attempt_skips_the_hash,
            a_second_address_is_unaffected,
            x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy,
            the_per_account_limit_spares_a_browser_holding_the_device_cookie,
            two_instances_share_the_counts,
            an_unknown_email_is_throttled_exactly_like_a_known_one,
            a_success_resets_the_count_of_its_client,
            a_wrong_current_password_counts_as_a_failed_login,
            guesses_inside_a_session_are_limited_per_account,
            one_ipv6_64_shares_a_budget_and_two_do_not,
            registrations_per_address_are_limited,
            concurrent_wrong_passwords_on_two_instances_stay_within_the_limit,
            concurrent_registrations_on_two_instances_stay_within_the_limit,
            concurrent_guesses_inside_a_session_stay_within_the_limit,
            a_device_cookie_dies_with_its_account_and_its_password,
        ],
        crate::cross_origin => [
            state_changing_requests_from_another_site_are_403,
            an_allowed_origin_gets_cors_with_credentials_and_no_other_does,
        ],
        crate::audit_events => [
            the_events_of_a_full_flow_are_listed_newest_first,
            a_user_sees_at_most_fifty_events_and_only_their_own,
            a_throttled_login_is_recorded,
            the_client_address_behind_a_trusted_proxy_is_recorded,
            an_event_names_the_request_that_caused_it,
            a_flood_of_attempts_cannot_hide_a_login_from_its_owner,
        ],
        crate::hardening => [
            a_duplicate_json_key_is_422,
            every_response_carries_the_csp_and_referrer_policy,
            format_characters_never_come_back,
        ],
        crate::proxies => [
            a_stray_byte_in_x_forwarded_for_never_makes_the_proxy_the_client,
            forwarding_from_loopback_without_trusted_proxies_is_reported,
        ],
        crate::probes => [
            the_probes_answer_ok_without_touching_a_session,
        ],
        crate::second_factor => [
            totp_enrol_confirm_login_and_no_code_twice,
            a_recovery_code_works_once_and_a_new_set_voids_the_old,
            a_passkey_signs_in_with_no_username_and_every_bad_answer_is_refused,
            sensitive_actions_need_a_proof_from_the_last_five_minutes,
            two_instances_accept_each_totp_step_once,
            passkey_routes_answer_503_on_an_ip_public_url,
            an_account_can_drop_its_password_and_sign_in_with_a_passkey_alone,
            recovery_codes_answers_and_wrong_codes_hold_across_two_instances,
            passkey_sign_ins_per_address_are_limited_across_two_instances,
            concurrent_regenerations_leave_one_set_of_recovery_codes,
        ],
        crate::telemetry => [
            metrics_are_served_apart_and_a_login_moves_the_login_counter,
            a_request_id_is_kept_when_well_formed_and_made_up_otherwise,
            logins_setting_a_secure_cookie_over_plain_http_are_counted,
        ],
    },
}

/// What only a SQL database lets a test break on purpose.
mod sql {
    auth_testkit::backend_tests! {
        backends: [sqlite, postgres, mysql],
        tests: {
            crate::throttling => [
                an_attempt_that_cannot_be_counted_is_503,
            ],
        },
    }
}

/// Outages staged on the test's own database or connection.
mod outage {
    auth_testkit::backend_tests! {
        backends: [sqlite, postgres, mysql, mongodb],
        tests: {
            crate::probes => [
                readiness_is_503_while_the_database_is_down,
            ],
        },
    }
}

/// The tests that read what the service mailed from the test SMTP server: under `smtp`,
/// so that `cargo xtask test` skips them by name when it cannot start one.
mod smtp {
    auth_testkit::backend_tests! {
        backends: [sqlite, postgres, mysql, mongodb],
        tests: {
            crate::mail => [
                forgot_answers_a_known_and_an_unknown_address_alike_and_mails_one,
                a_reset_token_works_once_and_ends_every_session,
                an_expired_or_superseded_reset_token_fails,
                verification_resend_cooldown_and_required_mode,
                an_email_change_mails_both_addresses_and_waits_for_the_link,
                a_mail_written_while_smtp_is_down_arrives_once_it_is_up,
                two_instances_send_every_mail_exactly_once,
                a_reset_leaves_the_second_factor_in_place,
            ],
        }
    }
}
