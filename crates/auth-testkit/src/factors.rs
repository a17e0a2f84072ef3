//! What every backend's second factors and WebAuthn ceremonies must do
//! ([`FactorStore`], [`ChallengeStore`]), with the [`Stores::commit`] that writes them.
//!
//! Instants are taken around the current time, at the stored precision. The tests that
//! take a pair of stores get two instances on one database (two pools): what must be
//! decided once across instances (a TOTP step, a recovery code, a challenge, a credential
//! id) is raced from both.

use std::collections::HashSet;

use auth_domain::{
    audit::{AuditLog, EventKind, EventPage},
    factors::{
        Ceremony, ChallengeStore, CodeDigest, CredentialId, FactorStore, FactorSummary,
        PendingChallenge, StoredPasskey, TotpCredential,
    },
    mail::Outbox,
    work::{Change, CommitError, Refusal, Work},
    Stores, UserId,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::{
    audit::event,
    commit::refused,
    outbox::mail,
    tokens::{commit, user},
};

/// How many tasks race for what only one of them may get.
const RACERS: usize = 16;

/// The current instant at the stored precision, with microseconds to lose if a store kept
/// fewer.
fn now() -> OffsetDateTime {
    let now = crate::tokens::now();
    now.replace_microsecond(654_321).unwrap_or(now)
}

/// 64 random hexadecimal digits: a digest as the domain makes them.
fn hex64() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// A fresh, unconfirmed TOTP enrolment of `user`, started `at`.
pub fn totp(user: UserId, at: OffsetDateTime) -> TotpCredential {
    TotpCredential {
        id: Uuid::new_v4(),
        user_id: user,
        sealed_secret: format!("v1.{}", hex64()),
        confirmed: false,
        last_step: None,
        created_at: at,
    }
}

/// `count` fresh recovery code digests.
pub fn codes(count: usize) -> Vec<CodeDigest> {
    (0..count)
        .map(|_| CodeDigest::from_stored(hex64()))
        .collect()
}

/// A credential id of `bytes` random bytes, as base64url without padding would spell it
/// (the characters matter less than the length: 1023 bytes, the most WebAuthn allows,
/// make 1364 characters).
pub fn credential_id(bytes: usize) -> CredentialId {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let chars = (bytes * 4).div_ceil(3);
    let seed = Uuid::new_v4();
    let text = (0..chars)
        .map(|i| {
            let byte = seed.as_bytes()[i % 16] as usize;
            char::from(ALPHABET[(byte + i * 7 + i / 16) % 64])
        })
        .collect();
    CredentialId::from_stored(text)
}

/// A passkey of `user` with the credential id `credential_id`, registered `at`, never
/// used.
pub fn passkey(
    user: UserId,
    credential_id: &CredentialId,
    name: &str,
    at: OffsetDateTime,
) -> StoredPasskey {
    StoredPasskey {
        id: Uuid::new_v4(),
        user_id: user,
        credential_id: credential_id.clone(),
        name: name.to_owned(),
        key: key_json(0),
        created_at: at,
        last_used_at: None,
    }
}

/// A passkey's key as the WebAuthn library serialises it, at signature counter `counter`:
/// a few KiB of JSON.
fn key_json(counter: u32) -> String {
    format!(
        r#"{{"cred":{{"cred_id":"{}","cred":{{"type_":"ES256","key":{{"EC_EC2":{{"x":"{}","y":"{}"}}}}}},"counter":{counter},"user_verified":true,"padding":"{}"}}}}"#,
        hex64(),
        hex64(),
        hex64(),
        "é".repeat(1500)
    )
}

/// A ceremony for `ceremony` of `user`, answerable until `expires_at`.
pub fn challenge(
    ceremony: Ceremony,
    user: Option<UserId>,
    expires_at: OffsetDateTime,
) -> PendingChallenge {
    PendingChallenge {
        digest: hex64(),
        ceremony,
        user_id: user,
        state: format!(
            r#"{{"rs":{{"policy":"required","challenge":"{}","allow_credentials":[],"pad":"{}"}}}}"#,
            hex64(),
            "ü".repeat(2000)
        ),
        expires_at,
    }
}

async fn begin(stores: &impl Stores, credential: &TotpCredential) -> bool {
    stores
        .factors()
        .begin_totp(credential.clone())
        .await
        .expect("begin works")
}

async fn stored_totp(stores: &impl Stores, user: UserId) -> Option<TotpCredential> {
    stores.factors().totp(user).await.expect("lookup works")
}

async fn summary(stores: &impl Stores, user: UserId) -> FactorSummary {
    stores.factors().summary(user).await.expect("summary works")
}

async fn passkeys(stores: &impl Stores, user: UserId) -> Vec<StoredPasskey> {
    stores
        .factors()
        .passkeys(user)
        .await
        .expect("listing works")
}

async fn by_credential(
    stores: &impl Stores,
    credential_id: &CredentialId,
) -> Option<StoredPasskey> {
    stores
        .factors()
        .passkey_by_credential(credential_id)
        .await
        .expect("lookup works")
}

async fn accept(stores: &impl Stores, user: UserId, id: Uuid, step: i64) -> bool {
    stores
        .factors()
        .accept_totp_step(user, id, step)
        .await
        .expect("accepting works")
}

async fn put(stores: &impl Stores, challenge: &PendingChallenge) {
    stores
        .challenges()
        .put(challenge.clone())
        .await
        .expect("put works");
}

async fn take(
    stores: &impl Stores,
    digest: &str,
    ceremony: Ceremony,
    now: OffsetDateTime,
) -> Option<PendingChallenge> {
    stores
        .challenges()
        .take(digest, ceremony, now)
        .await
        .expect("take works")
}

/// `user`'s enrolment `credential`, begun and confirmed at `step`; as it reads back.
async fn confirmed(stores: &impl Stores, credential: &TotpCredential, step: i64) -> TotpCredential {
    assert!(begin(stores, credential).await);
    commit(
        stores,
        [Change::ConfirmTotp {
            user: credential.user_id,
            id: credential.id,
            step,
        }],
    )
    .await;
    TotpCredential {
        confirmed: true,
        last_step: Some(step),
        ..credential.clone()
    }
}

/// An enrolment reads back exactly; a second unconfirmed one replaces the first; an
/// unconfirmed credential is no factor.
pub async fn an_unconfirmed_totp_enrolment_reads_back_and_is_replaced_by_the_next(
    stores: impl Stores,
) {
    let ada = user(&stores, "ada@example.com").await;
    let t = now();
    assert_eq!(stored_totp(&stores, ada.id).await, None);

    let first = totp(ada.id, t);
    assert!(begin(&stores, &first).await);
    assert_eq!(stored_totp(&stores, ada.id).await, Some(first.clone()));
    assert!(!summary(&stores, ada.id).await.totp, "not confirmed yet");

    let second = totp(ada.id, t + Duration::seconds(5));
    assert!(begin(&stores, &second).await);
    assert_eq!(stored_totp(&stores, ada.id).await, Some(second));
    assert_eq!(summary(&stores, ada.id).await, FactorSummary::default());
}

/// A confirmed credential stays until removed: a new enrolment is refused and writes
/// nothing; the confirmation records the setup code's step.
pub async fn an_enrolment_is_refused_while_a_confirmed_credential_exists(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let t = now();
    let first = confirmed(&stores, &totp(ada.id, t), 1_000).await;
    assert_eq!(stored_totp(&stores, ada.id).await, Some(first.clone()));
    assert!(summary(&stores, ada.id).await.totp);

    assert!(!begin(&stores, &totp(ada.id, t + Duration::seconds(1))).await);
    assert_eq!(stored_totp(&stores, ada.id).await, Some(first));
}

/// Only the user's current unconfirmed enrolment can be confirmed, once: a replaced one,
/// a confirmed one, another user's or an unknown one is stale.
pub async fn confirming_is_refused_unless_it_names_the_pending_enrolment(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let t = now();
    let replaced = totp(ada.id, t);
    let pending = totp(ada.id, t + Duration::seconds(1));
    assert!(begin(&stores, &replaced).await);
    assert!(begin(&stores, &pending).await);
    let confirm = |user: UserId, id: Uuid| Change::ConfirmTotp { user, id, step: 7 };

    for (change, why) in [
        (confirm(ada.id, replaced.id), "replaced"),
        (confirm(grace.id, pending.id), "another user's"),
        (confirm(ada.id, Uuid::new_v4()), "unknown"),
        (confirm(UserId::generate(), pending.id), "no such user"),
    ] {
        assert_eq!(refused(&stores, [change]).await, Refusal::Stale, "{why}");
    }
    assert_eq!(stored_totp(&stores, ada.id).await, Some(pending.clone()));
    assert_eq!(stored_totp(&stores, grace.id).await, None);

    commit(&stores, [confirm(ada.id, pending.id)]).await;
    assert_eq!(
        refused(&stores, [confirm(ada.id, pending.id)]).await,
        Refusal::Stale,
        "confirmed already"
    );
    let stored = stored_totp(&stores, ada.id).await.expect("still there");
    assert!(stored.confirmed);
    assert_eq!(stored.last_step, Some(7), "the first confirmation's step");
}

/// A step is accepted only for the user's confirmed credential, and only when newer than
/// every step accepted before (the setup code's included).
pub async fn a_totp_step_is_accepted_only_when_newer_than_the_last(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let t = now();
    let pending = totp(ada.id, t);
    assert!(begin(&stores, &pending).await);
    assert!(
        !accept(&stores, ada.id, pending.id, 100).await,
        "not confirmed"
    );
    assert_eq!(stored_totp(&stores, ada.id).await, Some(pending.clone()));

    let credential = confirmed(&stores, &pending, 100).await;
    for (user, id, step, expected, why) in [
        (ada.id, credential.id, 100, false, "the setup code's step"),
        (ada.id, credential.id, 99, false, "older"),
        (ada.id, credential.id, 101, true, "newer"),
        (ada.id, credential.id, 101, false, "replayed"),
        (ada.id, credential.id, 103, true, "a step skipped"),
        (ada.id, credential.id, 102, false, "older than the last"),
        (ada.id, Uuid::new_v4(), 200, false, "another credential"),
        (grace.id, credential.id, 200, false, "another user"),
    ] {
        assert_eq!(
            accept(&stores, user, id, step).await,
            expected,
            "step {step}: {why}"
        );
    }
    assert_eq!(
        stored_totp(&stores, ada.id).await,
        Some(TotpCredential {
            last_step: Some(103),
            ..credential.clone()
        })
    );

    commit(&stores, [Change::RemoveTotp { user: ada.id }]).await;
    assert!(
        !accept(&stores, ada.id, credential.id, 104).await,
        "the credential is gone"
    );
}

/// Two instances accepting the same step for the same user, many times at once: exactly
/// one acceptance (RFC 6238 §5.2, across instances).
pub async fn concurrent_acceptances_of_one_step_from_two_instances_accept_it_once<S: Stores>(
    (one, two): (S, S),
) {
    let ada = user(&one, "ada@example.com").await;
    let credential = confirmed(&one, &totp(ada.id, now()), 100).await;

    let attempts = (0..RACERS).map(|i| {
        let factors = if i % 2 == 0 {
            one.factors().clone()
        } else {
            two.factors().clone()
        };
        let id = credential.id;
        tokio::spawn(async move { factors.accept_totp_step(ada.id, id, 101).await })
    });
    let accepted = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|attempt| attempt.expect("no task panicked").expect("accepting works"))
        .filter(|accepted| *accepted)
        .count();
    assert_eq!(accepted, 1);
    assert_eq!(
        stored_totp(&two, ada.id).await.and_then(|t| t.last_step),
        Some(101)
    );
}

/// Removing TOTP needs a confirmed credential, and removes it.
pub async fn removing_totp_is_refused_without_a_confirmed_credential(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let remove = || Change::RemoveTotp { user: ada.id };
    assert_eq!(
        refused(&stores, [remove()]).await,
        Refusal::Stale,
        "no credential"
    );

    let pending = totp(ada.id, now());
    assert!(begin(&stores, &pending).await);
    assert_eq!(
        refused(&stores, [remove()]).await,
        Refusal::Stale,
        "unconfirmed"
    );
    assert_eq!(stored_totp(&stores, ada.id).await, Some(pending.clone()));

    confirmed(&stores, &totp(ada.id, now()), 5).await;
    commit(&stores, [remove()]).await;
    assert_eq!(stored_totp(&stores, ada.id).await, None);
    assert!(!summary(&stores, ada.id).await.totp);
    assert_eq!(
        refused(&stores, [remove()]).await,
        Refusal::Stale,
        "removed"
    );
    assert!(
        begin(&stores, &totp(ada.id, now())).await,
        "a new enrolment can start"
    );
}

/// A new set of recovery codes voids the old one: an old code is spent, a new one works.
pub async fn a_new_set_of_recovery_codes_voids_the_old_one(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let t = now();
    let old = codes(10);
    let new = codes(10);
    let replace = |digests: &[CodeDigest]| Change::ReplaceRecoveryCodes {
        user: ada.id,
        digests: digests.to_vec(),
        at: t,
    };
    commit(&stores, [replace(&old)]).await;
    assert_eq!(summary(&stores, ada.id).await.recovery_codes, 10);
    commit(&stores, [replace(&new)]).await;
    assert_eq!(summary(&stores, ada.id).await.recovery_codes, 10);

    let consume = |digest: &CodeDigest| Change::ConsumeRecoveryCode {
        user: ada.id,
        digest: digest.clone(),
    };
    assert_eq!(
        refused(&stores, [consume(&old[0])]).await,
        Refusal::TokenSpent,
        "voided"
    );
    commit(&stores, [consume(&new[0])]).await;
    assert_eq!(summary(&stores, ada.id).await.recovery_codes, 9);

    commit(&stores, [replace(&[])]).await;
    assert_eq!(summary(&stores, ada.id).await.recovery_codes, 0);
}

/// A code is spent once, and only by the user it was made for, even when another user
/// holds the same digest.
pub async fn a_recovery_code_is_spent_once_and_only_by_its_owner(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let t = now();
    let adas = codes(3);
    let mut graces = codes(2);
    graces.push(adas[1].clone());
    for (user, digests) in [(ada.id, &adas), (grace.id, &graces)] {
        commit(
            &stores,
            [Change::ReplaceRecoveryCodes {
                user,
                digests: digests.clone(),
                at: t,
            }],
        )
        .await;
    }
    let consume = |user, digest: &CodeDigest| Change::ConsumeRecoveryCode {
        user,
        digest: digest.clone(),
    };

    assert_eq!(
        refused(&stores, [consume(ada.id, &graces[0])]).await,
        Refusal::TokenSpent,
        "another user's"
    );
    commit(&stores, [consume(ada.id, &adas[1])]).await;
    assert_eq!(
        refused(&stores, [consume(ada.id, &adas[1])]).await,
        Refusal::TokenSpent,
        "spent"
    );
    assert_eq!(summary(&stores, ada.id).await.recovery_codes, 2);
    assert_eq!(
        summary(&stores, grace.id).await.recovery_codes,
        3,
        "grace's copy of the digest stays"
    );
    commit(&stores, [consume(grace.id, &adas[1])]).await;
}

/// Of many works spending one recovery code at once, from two instances, exactly one is
/// applied, with its notice; the others are refused as spent.
pub async fn concurrent_uses_of_one_recovery_code_from_two_instances_spend_it_once<S: Stores>(
    (one, two): (S, S),
) {
    let ada = user(&one, "ada@example.com").await;
    let t = now();
    let digests = codes(10);
    commit(
        &one,
        [Change::ReplaceRecoveryCodes {
            user: ada.id,
            digests: digests.clone(),
            at: t,
        }],
    )
    .await;

    let attempts = (0..RACERS).map(|i| {
        let stores = if i % 2 == 0 { one.clone() } else { two.clone() };
        let work = Work::new()
            .then(Change::ConsumeRecoveryCode {
                user: ada.id,
                digest: digests[4].clone(),
            })
            .then(Change::Enqueue(mail("ada@example.com", t)))
            .then(Change::Record(event(
                EventKind::RecoveryCodeUsed,
                Some(ada.id),
                t,
            )));
        tokio::spawn(async move { stores.commit(work).await })
    });
    let mut applied = 0;
    for attempt in futures::future::join_all(attempts).await {
        match attempt.expect("no commit panicked") {
            Ok(()) => applied += 1,
            Err(CommitError::Refused(Refusal::TokenSpent)) => {}
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(summary(&two, ada.id).await.recovery_codes, 9);
    assert_eq!(one.outbox().pending().await.expect("count works"), 1);
}

/// A user's passkeys read back exactly (the longest credential id WebAuthn allows, a name
/// of 64 characters outside the BMP, a key of some KiB), oldest first; a passkey is found
/// by its credential id, whoever's it is.
pub async fn passkeys_read_back_oldest_first_and_by_credential_id(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let t = now();
    let longest = credential_id(1023);
    assert_eq!(longest.as_str().len(), 1364);
    let newest = passkey(
        ada.id,
        &credential_id(16),
        "phone",
        t + Duration::seconds(2),
    );
    let oldest = passkey(ada.id, &longest, &"🔑".repeat(64), t);
    let middle = passkey(
        ada.id,
        &credential_id(64),
        "laptop",
        t + Duration::microseconds(1),
    );
    let graces = passkey(grace.id, &credential_id(32), "yubikey", t);
    commit(
        &stores,
        [
            Change::InsertPasskey(newest.clone()),
            Change::InsertPasskey(oldest.clone()),
            Change::InsertPasskey(middle.clone()),
            Change::InsertPasskey(graces.clone()),
        ],
    )
    .await;

    assert_eq!(
        passkeys(&stores, ada.id).await,
        [oldest.clone(), middle, newest]
    );
    assert_eq!(
        passkeys(&stores, grace.id).await,
        std::slice::from_ref(&graces)
    );
    assert_eq!(by_credential(&stores, &longest).await, Some(oldest));
    assert_eq!(
        by_credential(&stores, &graces.credential_id).await,
        Some(graces)
    );
    assert_eq!(by_credential(&stores, &credential_id(16)).await, None);
    assert!(passkeys(&stores, UserId::generate()).await.is_empty());
    assert_eq!(
        summary(&stores, ada.id).await,
        FactorSummary {
            totp: false,
            passkeys: 3,
            recovery_codes: 0
        }
    );
}

/// A credential id differing only in case is another credential (base64url is case
/// sensitive): stored beside the first, and each found by its own spelling.
pub async fn credential_ids_are_compared_exactly(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let t = now();
    let lower = CredentialId::from_stored("abcdefghijklmnop_-".to_owned());
    let upper = CredentialId::from_stored("ABCDEFGHIJKLMNOP_-".to_owned());
    let first = passkey(ada.id, &lower, "one", t);
    let second = passkey(ada.id, &upper, "two", t + Duration::seconds(1));
    commit(
        &stores,
        [
            Change::InsertPasskey(first.clone()),
            Change::InsertPasskey(second.clone()),
        ],
    )
    .await;
    assert_eq!(by_credential(&stores, &lower).await, Some(first));
    assert_eq!(by_credential(&stores, &upper).await, Some(second));
}

/// Renaming and recording a use change only the owner's passkey; a use writes the
/// updated key and the instant, read back to the microsecond.
pub async fn renaming_and_using_a_passkey_change_only_the_owners(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let t = now();
    let registered = passkey(ada.id, &credential_id(32), "phone", t);
    commit(&stores, [Change::InsertPasskey(registered.clone())]).await;
    let factors = stores.factors();

    for (user, id, why) in [
        (grace.id, registered.id, "another user's"),
        (ada.id, Uuid::new_v4(), "unknown"),
    ] {
        assert!(
            !factors
                .rename_passkey(user, id, "mine".to_owned())
                .await
                .expect("rename works"),
            "{why}"
        );
        assert!(
            !factors
                .passkey_used(user, id, key_json(9), t)
                .await
                .expect("use works"),
            "{why}"
        );
    }
    assert_eq!(
        passkeys(&stores, ada.id).await,
        std::slice::from_ref(&registered)
    );

    assert!(factors
        .rename_passkey(ada.id, registered.id, "work phone".to_owned())
        .await
        .expect("rename works"));
    let used_at = t + Duration::minutes(3) + Duration::microseconds(17);
    let key = key_json(1);
    assert!(factors
        .passkey_used(ada.id, registered.id, key.clone(), used_at)
        .await
        .expect("use works"));
    let expected = StoredPasskey {
        name: "work phone".to_owned(),
        key,
        last_used_at: Some(used_at),
        ..registered.clone()
    };
    assert_eq!(
        passkeys(&stores, ada.id).await,
        std::slice::from_ref(&expected)
    );
    assert_eq!(
        by_credential(&stores, &registered.credential_id).await,
        Some(expected)
    );
}

/// Deleting a passkey is refused unless it is the user's, and frees its credential id.
pub async fn deleting_a_passkey_is_refused_unless_it_is_theirs(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let t = now();
    let registered = passkey(ada.id, &credential_id(32), "phone", t);
    commit(&stores, [Change::InsertPasskey(registered.clone())]).await;
    let delete = |user, id| Change::DeletePasskey { user, id };

    for (change, why) in [
        (delete(grace.id, registered.id), "another user's"),
        (delete(ada.id, Uuid::new_v4()), "unknown"),
    ] {
        assert_eq!(refused(&stores, [change]).await, Refusal::Stale, "{why}");
    }
    assert_eq!(
        passkeys(&stores, ada.id).await,
        std::slice::from_ref(&registered)
    );

    commit(&stores, [delete(ada.id, registered.id)]).await;
    assert!(passkeys(&stores, ada.id).await.is_empty());
    assert_eq!(
        by_credential(&stores, &registered.credential_id).await,
        None
    );
    assert_eq!(
        refused(&stores, [delete(ada.id, registered.id)]).await,
        Refusal::Stale,
        "gone"
    );

    let again = passkey(grace.id, &registered.credential_id, "found it", t);
    commit(&stores, [Change::InsertPasskey(again.clone())]).await;
    assert_eq!(
        by_credential(&stores, &registered.credential_id).await,
        Some(again)
    );
}

/// A credential id registered already, by anyone, refuses the work that registers it
/// again, and the changes after it (the notice, the event) are not applied.
pub async fn a_taken_credential_id_refuses_the_work_that_registers_it(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let t = now();
    let registered = passkey(ada.id, &credential_id(32), "phone", t);
    commit(&stores, [Change::InsertPasskey(registered.clone())]).await;

    for (owner, why) in [(grace.id, "another user"), (ada.id, "the same user")] {
        let copy = passkey(owner, &registered.credential_id, "copy", t);
        assert_eq!(
            refused(
                &stores,
                [
                    Change::InsertPasskey(copy),
                    Change::Enqueue(mail("grace@example.com", t)),
                    Change::Record(event(EventKind::PasskeyAdded, Some(owner), t)),
                ],
            )
            .await,
            Refusal::CredentialTaken,
            "{why}"
        );
    }
    assert_eq!(
        passkeys(&stores, ada.id).await,
        std::slice::from_ref(&registered)
    );
    assert!(passkeys(&stores, grace.id).await.is_empty());
    assert_eq!(
        by_credential(&stores, &registered.credential_id).await,
        Some(registered)
    );
    assert_eq!(stores.outbox().pending().await.expect("count works"), 0);
    assert!(stores
        .audit()
        .recent_for_user(grace.id, &EventPage::newest(10))
        .await
        .expect("listing works")
        .is_empty());
}

/// Of many registrations of one credential id at once, from two instances, exactly one
/// is stored; the others are refused as taken.
pub async fn concurrent_registrations_of_one_credential_from_two_instances_store_one<S: Stores>(
    (one, two): (S, S),
) {
    let ada = user(&one, "ada@example.com").await;
    let t = now();
    let credential = credential_id(64);
    let attempts = (0..RACERS).map(|i| {
        let stores = if i % 2 == 0 { one.clone() } else { two.clone() };
        let work = Work::new().then(Change::InsertPasskey(passkey(
            ada.id,
            &credential,
            &format!("key {i}"),
            t,
        )));
        tokio::spawn(async move { stores.commit(work).await })
    });
    let mut applied = 0;
    for attempt in futures::future::join_all(attempts).await {
        match attempt.expect("no commit panicked") {
            Ok(()) => applied += 1,
            Err(CommitError::Refused(Refusal::CredentialTaken)) => {}
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(passkeys(&two, ada.id).await.len(), 1);
}

/// `user`'s every factor: a confirmed TOTP credential, codes and two passkeys.
async fn every_factor(stores: &impl Stores, user: UserId, t: OffsetDateTime) -> Vec<StoredPasskey> {
    confirmed(stores, &totp(user, t), 10).await;
    let keys = vec![
        passkey(user, &credential_id(32), "phone", t),
        passkey(user, &credential_id(32), "laptop", t + Duration::seconds(1)),
    ];
    commit(
        stores,
        [
            Change::ReplaceRecoveryCodes {
                user,
                digests: codes(10),
                at: t,
            },
            Change::InsertPasskey(keys[0].clone()),
            Change::InsertPasskey(keys[1].clone()),
        ],
    )
    .await;
    keys
}

/// The summary counts a confirmed credential, the passkeys and the unspent codes, each
/// user's own.
pub async fn the_summary_counts_each_users_own_factors(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let t = now();
    every_factor(&stores, ada.id, t).await;
    let expected = FactorSummary {
        totp: true,
        passkeys: 2,
        recovery_codes: 10,
    };
    assert_eq!(summary(&stores, ada.id).await, expected);
    assert!(expected.has_second_factor());
    assert_eq!(summary(&stores, grace.id).await, FactorSummary::default());
    assert_eq!(
        summary(&stores, UserId::generate()).await,
        FactorSummary::default()
    );
}

/// Removing a user's factors removes all three kinds, theirs only; a user with none
/// removes nothing, and is not refused.
pub async fn removing_factors_removes_totp_codes_and_passkeys_of_that_user_only(
    stores: impl Stores,
) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let alan = user(&stores, "alan@example.com").await;
    let t = now();
    let adas = every_factor(&stores, ada.id, t).await;
    let graces = every_factor(&stores, grace.id, t).await;
    let before = summary(&stores, grace.id).await;

    commit(
        &stores,
        [
            Change::RemoveFactors { user: ada.id },
            Change::RemoveFactors { user: alan.id },
        ],
    )
    .await;
    assert_eq!(summary(&stores, ada.id).await, FactorSummary::default());
    assert_eq!(stored_totp(&stores, ada.id).await, None);
    assert!(passkeys(&stores, ada.id).await.is_empty());
    assert_eq!(by_credential(&stores, &adas[0].credential_id).await, None);
    assert_eq!(summary(&stores, grace.id).await, before);
    assert_eq!(passkeys(&stores, grace.id).await, graces);
}

/// Deleting a user deletes their factors with them: nothing of theirs is found, and
/// their credential ids are free again.
pub async fn deleting_a_user_removes_their_factors(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let t = now();
    let adas = every_factor(&stores, ada.id, t).await;
    every_factor(&stores, grace.id, t).await;

    commit(&stores, [Change::DeleteUser { user: ada.id }]).await;
    assert_eq!(summary(&stores, ada.id).await, FactorSummary::default());
    assert_eq!(stored_totp(&stores, ada.id).await, None);
    assert!(passkeys(&stores, ada.id).await.is_empty());
    assert_eq!(by_credential(&stores, &adas[0].credential_id).await, None);
    assert_eq!(
        summary(&stores, grace.id).await,
        FactorSummary {
            totp: true,
            passkeys: 2,
            recovery_codes: 10
        }
    );
    let again = passkey(grace.id, &adas[0].credential_id, "reused", t);
    commit(&stores, [Change::InsertPasskey(again)]).await;
}

/// A ceremony reads back exactly, once, for its own ceremony only: a take for another
/// ceremony gets nothing and leaves it in place.
pub async fn a_challenge_is_taken_once_for_its_own_ceremony(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let t = now();
    let registration = challenge(
        Ceremony::Registration,
        Some(ada.id),
        t + Duration::minutes(5),
    );
    let sign_in = challenge(Ceremony::SignIn, None, t + Duration::minutes(5));
    let second = challenge(
        Ceremony::SecondFactor,
        Some(ada.id),
        t + Duration::minutes(5),
    );
    for pending in [&registration, &sign_in, &second] {
        put(&stores, pending).await;
    }

    for pending in [&registration, &sign_in, &second] {
        for other in Ceremony::ALL.into_iter().filter(|c| *c != pending.ceremony) {
            assert_eq!(
                take(&stores, &pending.digest, other, t).await,
                None,
                "{other:?}"
            );
        }
        assert_eq!(
            take(&stores, &pending.digest, pending.ceremony, t).await,
            Some(pending.clone()),
            "{:?}",
            pending.ceremony
        );
        assert_eq!(
            take(&stores, &pending.digest, pending.ceremony, t).await,
            None,
            "taken already"
        );
    }
    assert_eq!(take(&stores, &hex64(), Ceremony::SignIn, t).await, None);
}

/// A ceremony is live until its expiry, not at it.
pub async fn an_expired_challenge_is_not_given(stores: impl Stores) {
    let t = now();
    let expired = challenge(Ceremony::SignIn, None, t);
    let live = challenge(Ceremony::SignIn, None, t + Duration::microseconds(1));
    put(&stores, &expired).await;
    put(&stores, &live).await;
    assert_eq!(
        take(&stores, &expired.digest, Ceremony::SignIn, t).await,
        None,
        "expired at its expiry"
    );
    assert_eq!(
        take(
            &stores,
            &expired.digest,
            Ceremony::SignIn,
            t + Duration::hours(1)
        )
        .await,
        None,
        "long expired"
    );
    assert_eq!(
        take(&stores, &live.digest, Ceremony::SignIn, t).await,
        Some(live),
        "a microsecond before its expiry"
    );
}

/// Two instances taking one ceremony, many times at once: exactly one gets it.
pub async fn concurrent_takes_of_one_challenge_from_two_instances_give_it_once<S: Stores>(
    (one, two): (S, S),
) {
    let t = now();
    let pending = challenge(Ceremony::SignIn, None, t + Duration::minutes(5));
    put(&one, &pending).await;
    let attempts = (0..RACERS).map(|i| {
        let challenges = if i % 2 == 0 {
            one.challenges().clone()
        } else {
            two.challenges().clone()
        };
        let digest = pending.digest.clone();
        tokio::spawn(async move { challenges.take(&digest, Ceremony::SignIn, t).await })
    });
    let taken: Vec<PendingChallenge> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .filter_map(|attempt| attempt.expect("no task panicked").expect("take works"))
        .collect();
    assert_eq!(taken, [pending]);
}

/// A purge deletes ceremonies expired at `now` (at their expiry included), at most a
/// batch at a time, and keeps the live ones.
pub async fn a_purge_deletes_expired_challenges_up_to_the_batch_and_keeps_live_ones(
    stores: impl Stores,
) {
    let t = now();
    let expired: Vec<PendingChallenge> = (0..5)
        .map(|i| challenge(Ceremony::SignIn, None, t - Duration::seconds(i)))
        .collect();
    let live: Vec<PendingChallenge> = (1..3)
        .map(|i| challenge(Ceremony::SignIn, None, t + Duration::microseconds(i)))
        .collect();
    for pending in expired.iter().chain(&live) {
        put(&stores, pending).await;
    }
    let challenges = stores.challenges();
    assert_eq!(
        challenges.purge_expired(t, 3).await.expect("purge works"),
        3
    );
    assert_eq!(
        challenges.purge_expired(t, 10).await.expect("purge works"),
        2
    );
    assert_eq!(
        challenges.purge_expired(t, 10).await.expect("purge works"),
        0
    );
    let mut kept = HashSet::new();
    for pending in &live {
        if take(&stores, &pending.digest, Ceremony::SignIn, t).await == Some(pending.clone()) {
            kept.insert(pending.digest.clone());
        }
    }
    assert_eq!(kept.len(), live.len(), "the live ones stay");
}

/// With transactions (SQL, memory): a work whose last change is refused leaves nothing of
/// the factor changes before it.
pub async fn a_refused_factor_work_leaves_nothing_of_its_earlier_changes(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let t = now();
    let alan = user(&stores, "alan@example.com").await;
    let graces = every_factor(&stores, grace.id, t).await;
    let grace_before = summary(&stores, grace.id).await;
    let alans = passkey(alan.id, &credential_id(32), "alan's", t);
    commit(&stores, [Change::InsertPasskey(alans.clone())]).await;
    let old = codes(10);
    commit(
        &stores,
        [Change::ReplaceRecoveryCodes {
            user: ada.id,
            digests: old.clone(),
            at: t,
        }],
    )
    .await;
    let kept = passkey(ada.id, &credential_id(32), "kept", t);
    commit(&stores, [Change::InsertPasskey(kept.clone())]).await;
    let pending = totp(ada.id, t);
    assert!(begin(&stores, &pending).await);

    // Each guard here finds what it needs in the state before the work, whatever the
    // changes before it did (memory checks them so, SQL as it goes).
    let earlier = || {
        [
            Change::ConfirmTotp {
                user: ada.id,
                id: pending.id,
                step: 3,
            },
            Change::ConsumeRecoveryCode {
                user: ada.id,
                digest: old[0].clone(),
            },
            Change::ReplaceRecoveryCodes {
                user: ada.id,
                digests: codes(10),
                at: t,
            },
            Change::DeletePasskey {
                user: ada.id,
                id: kept.id,
            },
            Change::InsertPasskey(passkey(ada.id, &credential_id(32), "new", t)),
            Change::RemoveFactors { user: grace.id },
            Change::Enqueue(mail("ada@example.com", t)),
        ]
    };
    // Alan's, which nothing in the work touches (grace's are gone by then on SQL).
    let taken = Change::InsertPasskey(passkey(ada.id, &alans.credential_id, "taken", t));
    let spent = Change::ConsumeRecoveryCode {
        user: ada.id,
        digest: CodeDigest::from_stored(hex64()),
    };
    for (last, expected) in [
        (taken, Refusal::CredentialTaken),
        (spent, Refusal::TokenSpent),
        (
            Change::DeletePasskey {
                user: ada.id,
                id: graces[1].id,
            },
            Refusal::Stale,
        ),
    ] {
        let work = earlier()
            .into_iter()
            .chain([last])
            .fold(Work::new(), Work::then);
        match stores.commit(work).await {
            Err(CommitError::Refused(refusal)) => assert_eq!(refusal, expected),
            other => panic!("expected {expected:?}, got {other:?}"),
        }
        assert_eq!(stored_totp(&stores, ada.id).await, Some(pending.clone()));
        assert_eq!(
            summary(&stores, ada.id).await,
            FactorSummary {
                totp: false,
                passkeys: 1,
                recovery_codes: 10
            }
        );
        assert_eq!(passkeys(&stores, ada.id).await, std::slice::from_ref(&kept));
        assert_eq!(summary(&stores, grace.id).await, grace_before);
        assert_eq!(stores.outbox().pending().await.expect("count works"), 0);
    }
    commit(
        &stores,
        [Change::ConsumeRecoveryCode {
            user: ada.id,
            digest: old[0].clone(),
        }],
    )
    .await;
}
