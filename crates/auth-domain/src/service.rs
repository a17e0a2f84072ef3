use std::{fmt, sync::Arc};

use crate::{
    clock::Clock, validation::collect, AuthenticateError, BoxError, ChangePasswordError,
    DeleteAccountError, Email, FieldError, InsertUserError, NewUser, Password, PasswordHash,
    PasswordHasher, PasswordPolicy, RegisterError, RepositoryError, User, UserId, UserRepository,
    Username, ValidationErrors, Verification, BREACHED,
};

/// What a wrong password in a change or a deletion is told; it names no rule, only that
/// the password is not the one on file.
/// The answer when the password changed since the current one was proven: that proof is
/// of a password no longer on file.
pub(crate) fn changed_meanwhile() -> ChangePasswordError {
    let mut errors = ValidationErrors::default();
    errors.add("current_password", WRONG_PASSWORD);
    ChangePasswordError::Invalid(errors)
}

/// The refusal of a new password on `field`: [`ChangePasswordError::Breached`] for a
/// breached one, [`ChangePasswordError::Invalid`] for any other rule.
fn refused_new_password(field: &'static str, why: FieldError) -> ChangePasswordError {
    let mut errors = ValidationErrors::default();
    errors.add(field, why);
    if why == BREACHED {
        ChangePasswordError::Breached(errors)
    } else {
        ChangePasswordError::Invalid(errors)
    }
}

pub(crate) const WRONG_PASSWORD: FieldError =
    FieldError::new("wrong_password", "Password is incorrect.");

/// A registration as submitted: raw strings, parsed by [`AuthService::register`].
#[derive(Debug, Clone)]
pub struct Registration {
    /// The email address as typed.
    pub email: String,
    /// The chosen password.
    pub password: Password,
    /// The chosen username; the email address when absent.
    pub username: Option<String>,
}

/// Registers users and checks their credentials. The only caller of the repository and
/// of the password hasher.
pub struct AuthService<R> {
    repo: R,
    hasher: Arc<PasswordHasher>,
    policy: PasswordPolicy,
    clock: Clock,
}

impl<R: Clone> Clone for AuthService<R> {
    fn clone(&self) -> Self {
        Self {
            repo: self.repo.clone(),
            hasher: Arc::clone(&self.hasher),
            policy: self.policy.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl<R> fmt::Debug for AuthService<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<R: UserRepository> AuthService<R> {
    /// A service over `repo`.
    pub fn new(repo: R, hasher: PasswordHasher, policy: PasswordPolicy) -> Self {
        Self {
            repo,
            hasher: Arc::new(hasher),
            policy,
            clock: Clock::system(),
        }
    }

    /// What a new password must satisfy.
    pub fn policy(&self) -> &PasswordPolicy {
        &self.policy
    }

    /// The same service, stamping new users with `clock`'s time.
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// Parses, checks and stores a new user. Every invalid field is reported at once.
    #[tracing::instrument(skip_all)]
    pub async fn register(&self, registration: Registration) -> Result<User, RegisterError> {
        let new_user = self.prepare_registration(&registration).await?;
        self.repo.insert(new_user).await.map_err(|e| match e {
            InsertUserError::EmailTaken => RegisterError::EmailTaken,
            InsertUserError::UsernameTaken => RegisterError::UsernameTaken,
            InsertUserError::Unexpected(e) => RegisterError::Unexpected(e.into()),
        })
    }

    /// The user a registration would store, checked and hashed, not yet stored: for a
    /// caller that stores it together with more ([`crate::work::Change::InsertUser`]).
    pub async fn prepare_registration(
        &self,
        registration: &Registration,
    ) -> Result<NewUser, RegisterError> {
        let new_user = self.parse_registration(registration)?;
        let password_hash = self
            .hasher
            .hash(&registration.password)
            .await
            .map_err(RegisterError::Unexpected)?;
        Ok(NewUser::new(
            new_user.0,
            new_user.1,
            password_hash,
            self.clock.now(),
        ))
    }

    /// The hash of `new` as `user`'s next password, once it passes the registration
    /// policy (a refusal is reported on `field`): for a caller that stores it together
    /// with more ([`crate::work::Change::SetPassword`]).
    pub async fn new_password_hash(
        &self,
        user: &User,
        new: &Password,
        field: &'static str,
    ) -> Result<PasswordHash, ChangePasswordError> {
        if let Err(why) = self
            .policy
            .check(new, Some(&user.email), Some(&user.username))
        {
            return Err(refused_new_password(field, why));
        }
        self.hasher
            .hash(new)
            .await
            .map_err(ChangePasswordError::Unexpected)
    }

    fn parse_registration(
        &self,
        registration: &Registration,
    ) -> Result<(Email, Username), RegisterError> {
        let mut errors = ValidationErrors::default();
        let email = collect(&mut errors, "email", Email::parse(&registration.email));
        let username = match (&registration.username, &email) {
            (Some(raw), _) => collect(&mut errors, "username", Username::parse(raw)),
            (None, Some(email)) => Some(Username::from_email(email)),
            (None, None) => None,
        };
        let password = self
            .policy
            .check(&registration.password, email.as_ref(), username.as_ref());
        let breached = password == Err(BREACHED);
        collect(&mut errors, "password", password);
        match (email, username) {
            (Some(email), Some(username)) if errors.is_empty() => Ok((email, username)),
            // The breach is all that is wrong: its own answer. With other refusals, it is
            // told among them, so that every invalid field is reported at once.
            (Some(_), Some(_)) if breached => Err(RegisterError::Breached(errors)),
            _ => Err(RegisterError::Invalid(errors)),
        }
    }

    /// Checks a login (an email address or a username) and a password. An unknown user
    /// and a wrong password cost one verification each and get the same answer. A hash
    /// with outdated parameters is replaced by a fresh one.
    #[tracing::instrument(skip_all)]
    pub async fn authenticate(
        &self,
        login: &str,
        password: &Password,
    ) -> Result<User, AuthenticateError> {
        let user = self
            .find_by_login(login)
            .await
            .map_err(|e| AuthenticateError::Unexpected(e.into()))?;
        let verification = self
            .hasher
            .verify(password, user.as_ref().map(|u| &u.password_hash))
            .await
            .map_err(AuthenticateError::Unexpected)?;
        match (user, verification) {
            (Some(user), Verification::Match) => Ok(user),
            (Some(user), Verification::MatchNeedsRehash) => Ok(self.rehash(user, password).await),
            (user, _) => Err(AuthenticateError::InvalidCredentials {
                user: user.map(|user| user.id),
            }),
        }
    }

    /// Replaces the password of `user` with `new`, once `current` proves it is them and
    /// `new` passes the registration policy. Returns the user with the new hash. Ending
    /// the user's other sessions is the caller's: the new hash already ends them at their
    /// next request, deleting them frees their rows at once.
    #[tracing::instrument(skip_all, fields(user.id = %user))]
    pub async fn change_password(
        &self,
        user: UserId,
        current: &Password,
        new: &Password,
    ) -> Result<User, ChangePasswordError> {
        let (stored, new_hash) = self.check_password_change(user, current, new).await?;
        let replaced = self
            .repo
            .replace_password_hash(stored.id, &stored.password_hash, &new_hash)
            .await
            .map_err(|e| ChangePasswordError::Unexpected(e.into()))?;
        if !replaced {
            return Err(changed_meanwhile());
        }
        Ok(User {
            password_hash: new_hash,
            ..stored
        })
    }

    /// Checks a change of `user`'s password from `current` to `new` (the current one
    /// must verify, the new one pass the policy) and hashes the new one; stores nothing.
    /// Returns the user as read and the new hash, for a caller that stores it together
    /// with more ([`crate::work::Change::ReplacePassword`]).
    pub async fn check_password_change(
        &self,
        user: UserId,
        current: &Password,
        new: &Password,
    ) -> Result<(User, PasswordHash), ChangePasswordError> {
        let unexpected = |e: BoxError| ChangePasswordError::Unexpected(e);
        let stored = self.stored_for_change(user).await?;
        let mut errors = ValidationErrors::default();
        let verified = self.verifies(&stored, current).await.map_err(unexpected)?;
        if !verified {
            errors.add("current_password", WRONG_PASSWORD);
        }
        if let Err(why) = self
            .policy
            .check(new, Some(&stored.email), Some(&stored.username))
        {
            // A breach is told as such only to whoever proved the current password.
            if verified {
                return Err(refused_new_password("new_password", why));
            }
            errors.add("new_password", why);
        }
        if !errors.is_empty() {
            return Err(ChangePasswordError::Invalid(errors));
        }
        let new_hash = self.hasher.hash(new).await.map_err(unexpected)?;
        Ok((stored, new_hash))
    }

    /// Deletes the account of `user` once `password` proves it is them. Their sessions
    /// are the caller's to delete (the store of users may end them too, see
    /// [`UserRepository::delete`]).
    #[tracing::instrument(skip_all, fields(user.id = %user))]
    pub async fn delete_account(
        &self,
        user: UserId,
        password: &Password,
    ) -> Result<(), DeleteAccountError> {
        let unexpected = |e: BoxError| DeleteAccountError::Unexpected(e);
        let stored = self
            .repo
            .find_by_id(user)
            .await
            .map_err(|e| unexpected(e.into()))?
            .ok_or(DeleteAccountError::UnknownUser)?;
        if !self.verifies(&stored, password).await.map_err(unexpected)? {
            let mut errors = ValidationErrors::default();
            errors.add("password", WRONG_PASSWORD);
            return Err(DeleteAccountError::Invalid(errors));
        }
        match self.repo.delete(user).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(DeleteAccountError::UnknownUser),
            Err(e) => Err(unexpected(e.into())),
        }
    }

    /// An operator's reset: gives `user` the password `new`, which must pass the
    /// registration policy (`password`), without asking for the current one. Returns the
    /// user with the new hash; ending their sessions is the caller's, as in
    /// [`Self::change_password`].
    #[tracing::instrument(skip_all, fields(user.id = %user))]
    pub async fn set_password(
        &self,
        user: UserId,
        new: &Password,
    ) -> Result<User, ChangePasswordError> {
        let unexpected = |e: BoxError| ChangePasswordError::Unexpected(e);
        let stored = self.stored_for_change(user).await?;
        if let Err(why) = self
            .policy
            .check(new, Some(&stored.email), Some(&stored.username))
        {
            return Err(refused_new_password("password", why));
        }
        // Changed or deleted since it was read: the operator's reset must not silently
        // overwrite a change made meanwhile.
        self.replace_hash(stored, new)
            .await
            .map_err(unexpected)?
            .ok_or_else(|| unexpected("the password or the user changed meanwhile".into()))
    }

    /// The user whose password is about to change.
    async fn stored_for_change(&self, user: UserId) -> Result<User, ChangePasswordError> {
        self.repo
            .find_by_id(user)
            .await
            .map_err(|e| ChangePasswordError::Unexpected(e.into()))?
            .ok_or(ChangePasswordError::UnknownUser)
    }

    /// Hashes `new` and stores it in place of `stored`'s hash, unless that hash changed
    /// since `stored` was read; returns the user with the new hash, or `None` when it had.
    async fn replace_hash(
        &self,
        mut stored: User,
        new: &Password,
    ) -> Result<Option<User>, BoxError> {
        let new_hash = self.hasher.hash(new).await?;
        let replaced = self
            .repo
            .replace_password_hash(stored.id, &stored.password_hash, &new_hash)
            .await?;
        Ok(replaced.then(|| {
            stored.password_hash = new_hash;
            stored
        }))
    }

    /// An operator's deletion of `user`, without their password; returns whether they
    /// existed. Their sessions are the caller's to delete, as in [`Self::delete_account`].
    #[tracing::instrument(skip_all, fields(user.id = %user))]
    pub async fn delete_user(&self, user: UserId) -> Result<bool, RepositoryError> {
        self.repo.delete(user).await
    }

    /// Whether `password` is `user`'s. A hash due for new parameters is left alone here:
    /// the next login upgrades it.
    pub async fn verifies(&self, user: &User, password: &Password) -> Result<bool, BoxError> {
        Ok(matches!(
            self.hasher
                .verify(password, Some(&user.password_hash))
                .await?,
            Verification::Match | Verification::MatchNeedsRehash
        ))
    }

    /// The user with this id, if they still exist.
    pub async fn get_user(&self, id: UserId) -> Result<Option<User>, RepositoryError> {
        self.repo.find_by_id(id).await
    }

    /// The user an email address or a username names, if any.
    pub async fn find_by_login(&self, login: &str) -> Result<Option<User>, RepositoryError> {
        // A username never holds an `@` unless it is its owner's email, so anything that
        // parses as an address is looked up as one. Input that is neither cannot match.
        if let Ok(email) = Email::parse(login) {
            self.repo.find_by_email(&email).await
        } else if let Ok(username) = Username::parse(login) {
            self.repo.find_by_username(&username).await
        } else {
            Ok(None)
        }
    }

    /// Upgrades the stored hash. The login succeeds whatever happens here: a failed
    /// upgrade is retried at the next login.
    async fn rehash(&self, mut user: User, password: &Password) -> User {
        let new_hash = match self.hasher.hash(password).await {
            Ok(hash) => hash,
            Err(error) => {
                tracing::warn!(user.id = %user.id, %error, "could not rehash an outdated password hash");
                return user;
            }
        };
        match self
            .repo
            .replace_password_hash(user.id, &user.password_hash, &new_hash)
            .await
        {
            Ok(true) => {
                tracing::info!(user.id = %user.id, "password hash upgraded to the current parameters");
                user.password_hash = new_hash;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(user.id = %user.id, %error, "could not store an upgraded password hash");
            }
        }
        user
    }
}
