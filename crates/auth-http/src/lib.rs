//! The HTTP API of the authentication service: an axum [`Router`](axum::Router) with JSON
//! handlers, our own JSON extractor and error type, the login manager (ours, on
//! tower-sessions: one store read per authenticated request) and the middleware around
//! them.
//!
//! It is generic over the user repository and the session store; it never names a
//! backend. The application builds both and hands them over:
//!
//! ```no_run
//! # fn demo<R: auth_domain::UserRepository, S: tower_sessions::SessionStore + auth_domain::UserSessions>(
//! #     service: auth_domain::AuthService<R>,
//! #     sessions: S,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use auth_http::{router, HttpConfig, SessionKey};
//!
//! let config = HttpConfig {
//!     session_key: SessionKey::from_bytes(&[0x5a; 64])?,
//!     fallback_keys: Vec::new(),
//!     session_lifetime: time::Duration::days(31),
//!     absolute_lifetime: time::Duration::days(90),
//!     secure_cookie: true,
//! };
//! let app: axum::Router = router(service, sessions, config);
//! # Ok(()) }
//! ```
//!
//! Routes (all bodies JSON, errors `{"message", "code"}` plus `"errors"` for fields):
//! `GET /`, `GET /profile`, `POST /v1/auth/register`, `POST /v1/auth/login`,
//! `POST /v1/auth/logout`, `GET` and `DELETE /v1/auth/sessions`,
//! `DELETE /v1/auth/sessions/{id}`, `POST /v1/auth/password`, `DELETE /v1/auth/account`;
//! anything else is a 404.

mod audit_trail;
mod client;
mod config;
mod cross_origin;
mod device_cookie;
mod error;
mod extract;
mod handlers;
mod headers;
mod login;
mod router;
mod safety_net;
mod session_cookie;
mod state;
mod strict_json;
mod trace;

pub use config::{HttpConfig, KeyTooShort, SessionKey};
pub use router::{router, BODY_LIMIT_BYTES};
