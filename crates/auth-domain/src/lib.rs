//! The domain of the authentication service: who a user is and how a password is judged,
//! hashed and checked. It knows nothing of HTTP or of any database.
//!
//! Everything arrives as raw strings and leaves as parsed types: [`Email`], [`Username`],
//! [`Password`], [`PasswordHash`], [`UserId`]. The [`AuthService`] is the only caller of
//! the [`UserRepository`] port and of argon2.
//!
//! It also states the few rules every other crate follows rather than restates: the
//! precision of a stored instant ([`timestamp`]), how a connection URL is made fit for
//! a log ([`redact_url`]) and how a crate lists the settings it reads ([`settings`]).
//!
//! ```
//! # async fn demo<R: auth_domain::UserRepository>(repo: R) -> Result<(), Box<dyn std::error::Error>> {
//! use auth_domain::{AuthService, HashingConfig, PasswordHasher, PasswordPolicy, Registration};
//!
//! let hasher = PasswordHasher::new(&HashingConfig::default())?;
//! let service = AuthService::new(repo, hasher, PasswordPolicy::default());
//! let user = service
//!     .register(Registration {
//!         email: "Ada@Example.com ".into(),
//!         password: "correct horse battery staple".into(),
//!         username: None,
//!     })
//!     .await?;
//! assert_eq!(user.email.as_str(), "ada@example.com");
//! # Ok(()) }
//! ```

pub mod account_mail;
pub mod accounts;
pub mod admin;
pub mod audit;
pub mod breached;
pub mod clock;
pub mod digest;
mod email;
mod error;
pub mod factors;
mod hashing;
pub mod mail;
pub mod mfa;
pub mod passkeys;
mod password;
pub mod readiness;
mod redact;
mod repository;
pub mod seal;
mod service;
pub mod session;
pub mod settings;
pub mod stores;
pub mod throttle;
pub mod throttled_events;
pub mod timestamp;
pub mod tokens;
mod user;
mod username;
mod validation;
pub mod work;

pub use email::Email;
pub use error::{
    is_unavailable, unavailable_message, AuthenticateError, BoxError, ChangePasswordError,
    DeleteAccountError, InsertUserError, RegisterError, RepositoryError, Unavailable,
    DEFAULT_STORAGE_TIMEOUT,
};
pub use hashing::{
    is_overloaded, HashingConfig, HashingConfigError, Overloaded, PasswordHash, PasswordHasher,
    Verification, DEFAULT_QUEUE_PER_SLOT,
};
pub use password::{
    Password, PasswordPolicy, PasswordPolicyError, BREACHED, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS,
};
pub use redact::redact_url;
pub use repository::{OwnedSessions, UserRepository, UserSessions};
pub use service::{AuthService, Registration};
pub use stores::Stores;
pub use user::{NewUser, User, UserId};
pub use username::Username;
pub use validation::{FieldError, ValidationErrors};
