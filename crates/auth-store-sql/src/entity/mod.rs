//! sea-orm entities of the tables built by the `migration` crate.

pub mod auth_events;
pub mod login_failures;
pub mod one_time_tokens;
pub mod outbox;
pub mod passkeys;
pub mod recovery_codes;
pub mod sessions;
pub mod totp_credentials;
pub mod users;
pub mod webauthn_challenges;
