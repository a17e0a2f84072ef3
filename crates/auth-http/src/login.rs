//! The login manager's view of our users: axum-login's backend over the [`AuthService`],
//! and the user it keeps in the session.

use std::fmt;

use auth_domain::{
    AuthService, AuthenticateError, BoxError, Password, RepositoryError, User, UserId,
    UserRepository,
};
use axum_login::{AuthUser, AuthnBackend};
use sha2::{Digest, Sha256};

/// The session type handlers take to see and change who is logged in.
pub(crate) type AuthSession<R> = axum_login::AuthSession<LoginBackend<R>>;

/// What a login form submits.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    /// An email address or a username.
    pub(crate) login: String,
    /// The password as typed.
    pub(crate) password: Password,
}

/// A logged-in user, as the login manager sees them.
#[derive(Clone)]
pub(crate) struct SessionUser {
    user: User,
    /// SHA-256 of the stored password hash: kept in the session so that a changed password
    /// ends every session, without the hash itself ever being written there.
    auth_hash: [u8; 32],
}

impl SessionUser {
    fn new(user: User) -> Self {
        let auth_hash = Sha256::digest(user.password_hash.as_str().as_bytes()).into();
        Self { user, auth_hash }
    }

    /// The user as stored.
    pub(crate) fn user(&self) -> &User {
        &self.user
    }
}

// Only the id: axum-login logs the users it returns at debug level, and an email address
// is personal data.
impl fmt::Debug for SessionUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionUser")
            .field("id", &self.user.id)
            .finish_non_exhaustive()
    }
}

impl AuthUser for SessionUser {
    type Id = UserId;

    fn id(&self) -> UserId {
        self.user.id
    }

    fn session_auth_hash(&self) -> &[u8] {
        &self.auth_hash
    }
}

/// axum-login's backend: the domain's [`AuthService`] under another name.
pub(crate) struct LoginBackend<R> {
    service: AuthService<R>,
}

impl<R: UserRepository> LoginBackend<R> {
    pub(crate) fn new(service: AuthService<R>) -> Self {
        Self { service }
    }
}

impl<R: UserRepository> Clone for LoginBackend<R> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
        }
    }
}

impl<R> fmt::Debug for LoginBackend<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginBackend")
            .field("service", &self.service)
            .finish()
    }
}

/// The storage or the hasher failed; never a wrong password.
#[derive(Debug, thiserror::Error)]
#[error("login backend failure")]
pub(crate) struct BackendError(#[source] BoxError);

impl From<RepositoryError> for BackendError {
    fn from(error: RepositoryError) -> Self {
        Self(error.into())
    }
}

impl<R: UserRepository> AuthnBackend for LoginBackend<R> {
    type User = SessionUser;
    type Credentials = Credentials;
    type Error = BackendError;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<SessionUser>, BackendError> {
        match self
            .service
            .authenticate(&creds.login, &creds.password)
            .await
        {
            Ok(user) => Ok(Some(SessionUser::new(user))),
            Err(AuthenticateError::InvalidCredentials) => Ok(None),
            Err(AuthenticateError::Unexpected(source)) => Err(BackendError(source)),
        }
    }

    async fn get_user(&self, id: &UserId) -> Result<Option<SessionUser>, BackendError> {
        Ok(self.service.get_user(*id).await?.map(SessionUser::new))
    }
}

#[cfg(test)]
mod tests {
    use auth_domain::{Email, PasswordHash, Username};
    use time::OffsetDateTime;

    use super::*;

    fn user(phc: &str) -> User {
        let email = Email::parse("ada@example.com").unwrap();
        User {
            id: UserId::generate(),
            username: Username::from_email(&email),
            email,
            password_hash: PasswordHash::from_trusted(phc.to_owned()),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_session_hash_follows_the_password_hash_without_containing_it() {
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
        let first = SessionUser::new(user(phc));
        let again = SessionUser::new(user(phc));
        let changed = SessionUser::new(user("$argon2id$v=19$m=19456,t=2,p=1$b3RoZXI$b3RoZXI"));
        assert_eq!(first.session_auth_hash(), again.session_auth_hash());
        assert_ne!(first.session_auth_hash(), changed.session_auth_hash());
        assert_eq!(first.session_auth_hash().len(), 32);
        assert_eq!(
            first.session_auth_hash(),
            Sha256::digest(phc.as_bytes()).as_slice()
        );
    }

    #[test]
    fn a_session_user_prints_only_its_id() {
        let user = SessionUser::new(user("$argon2id$secret"));
        let printed = format!("{user:?}");
        assert!(printed.contains(&user.id().to_string()));
        assert!(!printed.contains("ada@example.com"));
        assert!(!printed.contains("argon2id"));
    }
}
