//! Second factors and WebAuthn ceremonies in memory: the test backend's
//! [`FactorStore`] and [`ChallengeStore`].

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
};

use auth_domain::{
    factors::{
        Ceremony, ChallengeStore, CodeDigest, CredentialId, FactorStore, FactorSummary,
        PendingChallenge, StoredPasskey, TotpCredential,
    },
    work::Refusal,
    RepositoryError, UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::memory::lock;

/// What the factor store holds.
#[derive(Debug, Default)]
pub(crate) struct Factors {
    pub(crate) totp: HashMap<UserId, TotpCredential>,
    pub(crate) codes: HashMap<UserId, HashSet<CodeDigest>>,
    /// By our id; ordered so that listings are stable.
    pub(crate) passkeys: BTreeMap<Uuid, StoredPasskey>,
}

/// Second factors in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryFactors {
    pub(crate) state: Arc<Mutex<Factors>>,
}

impl MemoryFactors {
    /// No factors.
    pub fn new() -> Self {
        Self::default()
    }

    /// The refusal the guard of confirming `id` gives now, if any.
    pub(crate) fn confirm_refusal(&self, user: UserId, id: Uuid) -> Option<Refusal> {
        let state = lock(&self.state);
        let pending = state
            .totp
            .get(&user)
            .is_some_and(|totp| totp.id == id && !totp.confirmed);
        (!pending).then_some(Refusal::Stale)
    }

    pub(crate) fn has_confirmed_totp(&self, user: UserId) -> bool {
        lock(&self.state)
            .totp
            .get(&user)
            .is_some_and(|totp| totp.confirmed)
    }

    pub(crate) fn has_code(&self, user: UserId, digest: &CodeDigest) -> bool {
        lock(&self.state)
            .codes
            .get(&user)
            .is_some_and(|codes| codes.contains(digest))
    }

    pub(crate) fn credential_taken(&self, credential_id: &CredentialId) -> bool {
        lock(&self.state)
            .passkeys
            .values()
            .any(|passkey| passkey.credential_id == *credential_id)
    }

    pub(crate) fn owns_passkey(&self, user: UserId, id: Uuid) -> bool {
        lock(&self.state)
            .passkeys
            .get(&id)
            .is_some_and(|passkey| passkey.user_id == user)
    }

    pub(crate) fn confirm(&self, user: UserId, step: i64) {
        if let Some(totp) = lock(&self.state).totp.get_mut(&user) {
            totp.confirmed = true;
            totp.last_step = Some(step);
        }
    }

    pub(crate) fn remove_totp(&self, user: UserId) {
        lock(&self.state).totp.remove(&user);
    }

    pub(crate) fn replace_codes(&self, user: UserId, digests: Vec<CodeDigest>) {
        lock(&self.state)
            .codes
            .insert(user, digests.into_iter().collect());
    }

    pub(crate) fn consume_code(&self, user: UserId, digest: &CodeDigest) {
        if let Some(codes) = lock(&self.state).codes.get_mut(&user) {
            codes.remove(digest);
        }
    }

    pub(crate) fn insert_passkey(&self, passkey: StoredPasskey) {
        lock(&self.state).passkeys.insert(passkey.id, passkey);
    }

    pub(crate) fn delete_passkey(&self, id: Uuid) {
        lock(&self.state).passkeys.remove(&id);
    }

    /// Forgets every factor of `user`: their removal, or their account's deletion.
    pub(crate) fn remove_all(&self, user: UserId) {
        let mut state = lock(&self.state);
        state.totp.remove(&user);
        state.codes.remove(&user);
        state.passkeys.retain(|_, passkey| passkey.user_id != user);
    }
}

impl FactorStore for MemoryFactors {
    async fn summary(&self, user: UserId) -> Result<FactorSummary, RepositoryError> {
        let state = lock(&self.state);
        Ok(FactorSummary {
            totp: state.totp.get(&user).is_some_and(|totp| totp.confirmed),
            passkeys: state
                .passkeys
                .values()
                .filter(|passkey| passkey.user_id == user)
                .count() as u64,
            recovery_codes: state.codes.get(&user).map_or(0, |codes| codes.len() as u64),
        })
    }

    async fn totp(&self, user: UserId) -> Result<Option<TotpCredential>, RepositoryError> {
        Ok(lock(&self.state).totp.get(&user).cloned())
    }

    async fn begin_totp(&self, credential: TotpCredential) -> Result<bool, RepositoryError> {
        let mut state = lock(&self.state);
        if state
            .totp
            .get(&credential.user_id)
            .is_some_and(|totp| totp.confirmed)
        {
            return Ok(false);
        }
        state.totp.insert(credential.user_id, credential);
        Ok(true)
    }

    async fn accept_totp_step(
        &self,
        user: UserId,
        id: Uuid,
        step: i64,
    ) -> Result<bool, RepositoryError> {
        let mut state = lock(&self.state);
        match state.totp.get_mut(&user) {
            Some(totp)
                if totp.id == id && totp.confirmed && totp.last_step.is_none_or(|l| l < step) =>
            {
                totp.last_step = Some(step);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn passkeys(&self, user: UserId) -> Result<Vec<StoredPasskey>, RepositoryError> {
        let mut passkeys: Vec<StoredPasskey> = lock(&self.state)
            .passkeys
            .values()
            .filter(|passkey| passkey.user_id == user)
            .cloned()
            .collect();
        passkeys.sort_by_key(|passkey| (passkey.created_at, passkey.id));
        Ok(passkeys)
    }

    async fn passkey_by_credential(
        &self,
        credential_id: &CredentialId,
    ) -> Result<Option<StoredPasskey>, RepositoryError> {
        Ok(lock(&self.state)
            .passkeys
            .values()
            .find(|passkey| passkey.credential_id == *credential_id)
            .cloned())
    }

    async fn passkey_used(
        &self,
        user: UserId,
        id: Uuid,
        key: String,
        at: OffsetDateTime,
    ) -> Result<bool, RepositoryError> {
        match lock(&self.state).passkeys.get_mut(&id) {
            Some(passkey) if passkey.user_id == user => {
                passkey.key = key;
                passkey.last_used_at = Some(auth_domain::timestamp::truncate_to_micros(at));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn rename_passkey(
        &self,
        user: UserId,
        id: Uuid,
        name: String,
    ) -> Result<bool, RepositoryError> {
        match lock(&self.state).passkeys.get_mut(&id) {
            Some(passkey) if passkey.user_id == user => {
                passkey.name = name;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// WebAuthn ceremonies in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryChallenges {
    challenges: Arc<Mutex<HashMap<String, PendingChallenge>>>,
}

impl MemoryChallenges {
    /// None in flight.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ChallengeStore for MemoryChallenges {
    async fn put(&self, challenge: PendingChallenge) -> Result<(), RepositoryError> {
        lock(&self.challenges).insert(challenge.digest.clone(), challenge);
        Ok(())
    }

    async fn take(
        &self,
        digest: &str,
        ceremony: Ceremony,
        now: OffsetDateTime,
    ) -> Result<Option<PendingChallenge>, RepositoryError> {
        let mut challenges = lock(&self.challenges);
        let matches = challenges
            .get(digest)
            .is_some_and(|c| c.ceremony == ceremony && now < c.expires_at);
        Ok(if matches {
            challenges.remove(digest)
        } else {
            None
        })
    }

    async fn purge_expired(&self, now: OffsetDateTime, batch: u64) -> Result<u64, RepositoryError> {
        let mut challenges = lock(&self.challenges);
        let expired: Vec<String> = challenges
            .values()
            .filter(|c| c.expires_at <= now)
            .take(usize::try_from(batch).unwrap_or(usize::MAX))
            .map(|c| c.digest.clone())
            .collect();
        for digest in &expired {
            challenges.remove(digest);
        }
        Ok(expired.len() as u64)
    }
}
