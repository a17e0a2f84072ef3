//! The HTTP API of the authentication service: an axum [`Router`](axum::Router) with JSON
//! handlers, our own JSON extractor and error type, the login manager (ours, on
//! tower-sessions: one store read per authenticated request) and the middleware around
//! them.
//!
//! It is generic over the stores; it never names a backend. The application opens them,
//! builds the account use cases over them (`auth_domain::accounts::Accounts`) and hands
//! those over:
//!
//! ```no_run
//! # fn demo<B: auth_http::Stores>(accounts: auth_domain::accounts::Accounts<B>) -> Result<(), Box<dyn std::error::Error>> {
//! use auth_http::{router, HttpConfig, SessionKey};
//!
//! let config = HttpConfig {
//!     session_key: SessionKey::from_bytes(&[0x5a; 64])?,
//!     fallback_keys: Vec::new(),
//!     session_lifetime: time::Duration::days(31),
//!     absolute_lifetime: time::Duration::days(90),
//!     secure_cookie: true,
//!     trusted_proxies: Vec::new(),
//!     allowed_origins: Vec::new(),
//!     timeouts: auth_http::RequestTimeouts::default(),
//! };
//! let app: axum::Router = router(accounts, config);
//! # Ok(()) }
//! ```
//!
//! Routes (all bodies JSON, errors `{"message", "code"}` plus `"errors"` for fields):
//! `GET /`, `GET /profile`, `POST /v1/auth/register`, `POST /v1/auth/login`,
//! `POST /v1/auth/logout`, `GET` and `DELETE /v1/auth/sessions`,
//! `DELETE /v1/auth/sessions/{id}`, `POST /v1/auth/password`, `DELETE /v1/auth/account`,
//! `GET /v1/auth/events`; anything else is a 404.

mod client;
mod config;
mod cookies;
mod cross_origin;
mod device_cookie;
mod documented;
mod error;
mod extract;
mod handlers;
mod headers;
mod log_limiter;
mod login;
pub mod metrics;
mod openapi;
mod plain_http;
mod router;
mod safety_net;
mod session_layer;
mod signing;
mod state;
mod strict_json;
mod timeouts;
mod trace;

pub use config::{HttpConfig, KeyTooShort, SessionKey, MIN_SECRET_BYTES};
pub use log_limiter::LogLimiter;
pub use router::{router, BODY_LIMIT_BYTES};
pub use signing::{digest_keys, mail_seal, token_key, totp_seal};
pub use state::Stores;
pub use timeouts::RequestTimeouts;
