//! Names the stores rely on: the adapters tell which unique index a duplicate hit by its
//! name, so these are part of the schema's contract, not an implementation detail.

/// The unique index on `users.email`.
pub const USERS_EMAIL_UNIQUE: &str = "idx_users_email_unique";

/// The unique index on `users.username`.
pub const USERS_USERNAME_UNIQUE: &str = "idx_users_username_unique";

/// The index on `sessions.user_id`, for listing and revoking a user's sessions.
pub const SESSIONS_USER_ID: &str = "idx_sessions_user_id";

/// The index on `sessions.expires_at`, for the periodic purge.
pub const SESSIONS_EXPIRES_AT: &str = "idx_sessions_expires_at";

/// The index on `login_failures (key, at)`, for counting a key's failures in a window.
pub const LOGIN_FAILURES_KEY_AT: &str = "idx_login_failures_key_at";

/// The index on `login_failures.at`, for the purge.
pub const LOGIN_FAILURES_AT: &str = "idx_login_failures_at";

/// The index on `auth_events (user_id, at)`, for a user's recent events.
pub const AUTH_EVENTS_USER_ID_AT: &str = "idx_auth_events_user_id_at";

/// The index on `auth_events.at`, for the purge.
pub const AUTH_EVENTS_AT: &str = "idx_auth_events_at";

/// The index on `one_time_tokens (user_id, purpose)`: a user's tokens of one purpose, to
/// void them and to find when the newest was issued.
pub const ONE_TIME_TOKENS_USER_PURPOSE: &str = "idx_one_time_tokens_user_id_purpose";

/// The index on `one_time_tokens.expires_at`, for the purge.
pub const ONE_TIME_TOKENS_EXPIRES_AT: &str = "idx_one_time_tokens_expires_at";

/// The index on `outbox (status, next_attempt_at)`: the due mail the worker leases, and
/// the failed mail the purge deletes.
pub const OUTBOX_STATUS_NEXT_ATTEMPT_AT: &str = "idx_outbox_status_next_attempt_at";

/// The index on `outbox (status, created_at)`: the newest mail of one status, listed.
pub const OUTBOX_STATUS_CREATED_AT: &str = "idx_outbox_status_created_at";

/// The index on `outbox.sent_at`, for the purge of sent mail.
pub const OUTBOX_SENT_AT: &str = "idx_outbox_sent_at";

/// The unique index on `passkeys.credential_id`: a credential id names one passkey, of
/// one user. The adapters tell a taken credential id by this name.
pub const PASSKEYS_CREDENTIAL_ID_UNIQUE: &str = "idx_passkeys_credential_id_unique";

/// The index on `passkeys (user_id, created_at)`: a user's passkeys, oldest first.
pub const PASSKEYS_USER_ID_CREATED_AT: &str = "idx_passkeys_user_id_created_at";

/// The index on `webauthn_challenges.expires_at`, for the purge.
pub const WEBAUTHN_CHALLENGES_EXPIRES_AT: &str = "idx_webauthn_challenges_expires_at";

/// The index on `webauthn_challenges.user_id`, which its foreign key's cascade reads when
/// a user is deleted.
pub const WEBAUTHN_CHALLENGES_USER_ID: &str = "idx_webauthn_challenges_user_id";
