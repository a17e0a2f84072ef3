//! The memory backend's [`Stores`]: the in-memory stores of [`crate::memory`],
//! [`crate::memory_audit`] and [`crate::memory_admin`], sharing one state and one clock,
//! for tests of the layers above the stores that need no database.

use std::{sync::Arc, time::Duration};

use auth_domain::{
    audit::AuditLog,
    clock::Clock,
    work::{Change, CommitError, Refusal, Work},
    InsertUserError, Stores, UserRepository, UserSessions, Username,
};

use crate::{
    memory::{lock, MemorySessionStore, MemoryUserRepository},
    memory_admin::MemoryAdministration,
    memory_audit::{MemoryAuditLog, MemoryFailureCounter},
    memory_factors::{MemoryChallenges, MemoryFactors},
    memory_mail::{MemoryOutbox, MemoryTokens},
};

/// Every in-memory store, on one state: a session loads with its owner from these users,
/// and the operator's view shows all of them.
#[derive(Debug, Clone)]
pub struct MemoryStores {
    users: MemoryUserRepository,
    sessions: MemorySessionStore,
    failures: MemoryFailureCounter,
    audit: MemoryAuditLog,
    admin: MemoryAdministration,
    tokens: MemoryTokens,
    outbox: MemoryOutbox,
    factors: MemoryFactors,
    challenges: MemoryChallenges,
    /// Held through a whole commit: its guards are checked, then its changes applied,
    /// with no other commit in between, as a transaction would.
    commits: Arc<tokio::sync::Mutex<()>>,
}

impl MemoryStores {
    /// Empty stores, on `clock`.
    pub fn new(clock: Clock) -> Self {
        let users = MemoryUserRepository::new();
        let sessions = MemorySessionStore::with_users(users.clone()).with_clock(clock);
        let audit = MemoryAuditLog::new();
        Self {
            admin: MemoryAdministration::new(&users, &sessions, &audit),
            users,
            sessions,
            failures: MemoryFailureCounter::new(),
            audit,
            tokens: MemoryTokens::new(),
            outbox: MemoryOutbox::new(),
            factors: MemoryFactors::new(),
            challenges: MemoryChallenges::new(),
            commits: Arc::default(),
        }
    }

    /// The refusal a guard of `change` gives in the current state, if any.
    fn refusal(&self, change: &Change) -> Option<Refusal> {
        let users = lock(&self.users.users);
        match change {
            Change::InsertUser(user) => {
                if users.by_email.contains_key(&user.email) {
                    Some(Refusal::EmailTaken)
                } else if users.by_username.contains_key(&user.username) {
                    Some(Refusal::UsernameTaken)
                } else {
                    None
                }
            }
            Change::ConsumeToken {
                digest,
                purpose,
                now,
            } => {
                let tokens = lock(&self.tokens.tokens);
                let live = tokens
                    .get(digest)
                    .is_some_and(|token| token.purpose == *purpose && token.is_live(*now));
                (!live).then_some(Refusal::TokenSpent)
            }
            Change::SetPassword { user, .. } => {
                (!users.by_id.contains_key(user)).then_some(Refusal::Stale)
            }
            Change::SetEmail { user, from, to } => {
                if users.by_id.get(user).is_none_or(|u| u.email != *from) {
                    Some(Refusal::Stale)
                } else if users.by_email.get(to).is_some_and(|owner| owner != user) {
                    Some(Refusal::EmailTaken)
                } else {
                    None
                }
            }
            Change::ReplacePassword { user, current, .. } => users
                .by_id
                .get(user)
                .is_none_or(|u| u.password_hash != *current)
                .then_some(Refusal::Stale),
            Change::DeleteUser { user } => {
                (!users.by_id.contains_key(user)).then_some(Refusal::Stale)
            }
            Change::MarkEmailVerified { user, email } => users
                .by_id
                .get(user)
                .is_none_or(|u| u.email != *email)
                .then_some(Refusal::Stale),
            Change::ConfirmTotp { user, id, .. } => self.factors.confirm_refusal(*user, *id),
            Change::RemoveTotp { user } => {
                (!self.factors.has_confirmed_totp(*user)).then_some(Refusal::Stale)
            }
            Change::ConsumeRecoveryCode { user, digest } => {
                (!self.factors.has_code(*user, digest)).then_some(Refusal::TokenSpent)
            }
            Change::InsertPasskey(passkey) => self
                .factors
                .credential_taken(&passkey.credential_id)
                .then_some(Refusal::CredentialTaken),
            Change::DeletePasskey { user, id } => {
                (!self.factors.owns_passkey(*user, *id)).then_some(Refusal::Stale)
            }
            Change::EndSessions { .. }
            | Change::EndSession { .. }
            | Change::VoidTokens { .. }
            | Change::InsertToken(_)
            | Change::Enqueue(_)
            | Change::Record(_)
            | Change::ReplaceRecoveryCodes { .. }
            | Change::RemoveFactors { .. } => None,
        }
    }

    /// Applies `change`, whose guard passed.
    async fn apply(&self, change: Change) -> Result<(), CommitError> {
        match change {
            Change::InsertUser(user) => match self.users.insert(user).await {
                Ok(_) => {}
                Err(InsertUserError::EmailTaken) => {
                    return Err(CommitError::Refused(Refusal::EmailTaken))
                }
                Err(InsertUserError::UsernameTaken) => {
                    return Err(CommitError::Refused(Refusal::UsernameTaken))
                }
                Err(InsertUserError::Unexpected(e)) => return Err(e.into()),
            },
            Change::ConsumeToken { digest, .. } => {
                lock(&self.tokens.tokens).remove(&digest);
            }
            Change::SetPassword { user, hash } => {
                if let Some(stored) = lock(&self.users.users).by_id.get_mut(&user) {
                    stored.password_hash = hash;
                }
            }
            Change::SetEmail { user, from, to } => {
                let mut guard = lock(&self.users.users);
                let users = &mut *guard;
                users.by_email.remove(&from);
                users.by_email.insert(to.clone(), user);
                if let Some(stored) = users.by_id.get_mut(&user) {
                    // The default username is the address: it follows it.
                    if stored.username.as_str() == from.as_str() {
                        users.by_username.remove(&stored.username);
                        stored.username = Username::from_trusted(to.as_str().to_owned());
                        users.by_username.insert(stored.username.clone(), user);
                    }
                    stored.email = to;
                    stored.email_verified = true;
                }
            }
            Change::ReplacePassword { user, new, .. } => {
                if let Some(stored) = lock(&self.users.users).by_id.get_mut(&user) {
                    stored.password_hash = new;
                }
            }
            Change::DeleteUser { user } => {
                self.users.delete(user).await?;
                self.factors.remove_all(user);
            }
            Change::EndSession { user, handle } => {
                self.sessions.delete_user_session(user, &handle).await?;
            }
            Change::MarkEmailVerified { user, .. } => {
                if let Some(stored) = lock(&self.users.users).by_id.get_mut(&user) {
                    stored.email_verified = true;
                }
            }
            Change::EndSessions { user } => {
                self.sessions.delete_user_sessions(user).await?;
            }
            Change::VoidTokens { user, purpose } => {
                lock(&self.tokens.tokens).retain(|_, token| {
                    token.user_id != user || purpose.is_some_and(|p| p != token.purpose)
                });
            }
            Change::InsertToken(token) => {
                lock(&self.tokens.tokens).insert(token.digest.clone(), token);
            }
            Change::Enqueue(mail) => self.outbox.enqueue(mail),
            Change::Record(event) => self.audit.record(&event).await?,
            Change::ConfirmTotp { user, step, .. } => self.factors.confirm(user, step),
            Change::RemoveTotp { user } => self.factors.remove_totp(user),
            Change::ReplaceRecoveryCodes { user, digests, .. } => {
                self.factors.replace_codes(user, digests);
            }
            Change::ConsumeRecoveryCode { user, digest } => {
                self.factors.consume_code(user, &digest);
            }
            Change::InsertPasskey(passkey) => self.factors.insert_passkey(passkey),
            Change::DeletePasskey { id, .. } => self.factors.delete_passkey(id),
            Change::RemoveFactors { user } => self.factors.remove_all(user),
        }
        Ok(())
    }
}

impl Default for MemoryStores {
    fn default() -> Self {
        Self::new(Clock::system())
    }
}

impl Stores for MemoryStores {
    type Users = MemoryUserRepository;
    type Sessions = MemorySessionStore;
    type Failures = MemoryFailureCounter;
    type Audit = MemoryAuditLog;
    type Admin = MemoryAdministration;
    type Tokens = MemoryTokens;
    type Outbox = MemoryOutbox;
    type Factors = MemoryFactors;
    type Challenges = MemoryChallenges;

    fn users(&self) -> &MemoryUserRepository {
        &self.users
    }

    fn sessions(&self) -> &MemorySessionStore {
        &self.sessions
    }

    fn failures(&self) -> &MemoryFailureCounter {
        &self.failures
    }

    fn audit(&self) -> &MemoryAuditLog {
        &self.audit
    }

    fn admin(&self) -> &MemoryAdministration {
        &self.admin
    }

    fn tokens(&self) -> &MemoryTokens {
        &self.tokens
    }

    fn outbox(&self) -> &MemoryOutbox {
        &self.outbox
    }

    fn factors(&self) -> &MemoryFactors {
        &self.factors
    }

    fn challenges(&self) -> &MemoryChallenges {
        &self.challenges
    }

    /// Every guard is checked before anything is written, under a lock no other commit
    /// can take: all or nothing, as in a transaction. (A guard about a change earlier in
    /// the same work is checked against the state before it; no use case needs more.)
    async fn commit(&self, work: Work) -> Result<(), CommitError> {
        let _serial = self.commits.lock().await;
        if let Some(refusal) = work.changes().iter().find_map(|c| self.refusal(c)) {
            return Err(CommitError::Refused(refusal));
        }
        for change in work.changes() {
            if let Change::EndSession { user, handle } = change {
                let live = self.sessions.list_user_sessions(*user).await?;
                if !live.iter().any(|session| session.handle == *handle) {
                    return Err(CommitError::Refused(Refusal::Stale));
                }
            }
        }
        for change in work.into_changes() {
            self.apply(change).await?;
        }
        Ok(())
    }

    /// Nothing to close: the state goes with the last clone.
    async fn close(self, _timeout: Duration) {}
}
