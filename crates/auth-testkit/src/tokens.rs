//! What every [`TokenStore`] must do, with the [`Stores::commit`] that writes its tokens.
//!
//! Instants are taken around the current time, at the stored precision.

use auth_domain::{
    clock::Clock,
    timestamp::truncate_to_micros,
    tokens::{OneTimeToken, Purpose, TokenKey, TokenSecret, TokenStore},
    work::{Change, Work},
    Email, Stores, User, UserId, UserRepository,
};
use time::{Duration, OffsetDateTime};

use crate::users::new_user_with_default_username;

/// The current instant at the stored precision.
pub fn now() -> OffsetDateTime {
    truncate_to_micros(Clock::system().now())
}

/// The key of this suite's digests.
pub fn key() -> TokenKey {
    TokenKey::new(&[9; auth_domain::digest::KEY_BYTES])
}

/// A fresh token of `purpose` for `user`, sent to `email`, issued `at` for `lifetime`,
/// with its secret.
pub fn token(
    user: UserId,
    email: &Email,
    purpose: Purpose,
    at: OffsetDateTime,
    lifetime: Duration,
) -> (TokenSecret, OneTimeToken) {
    let secret = TokenSecret::generate();
    let digest = key().digest(purpose, &secret);
    let token = OneTimeToken::issue(digest, purpose, user, email.clone(), at, lifetime);
    (secret, token)
}

/// A user of default username `email`, stored.
pub async fn user(stores: &impl Stores, email: &str) -> User {
    stores
        .users()
        .insert(new_user_with_default_username(email))
        .await
        .expect("insert works")
}

/// Commits `changes`, which must be applied.
pub async fn commit(stores: &impl Stores, changes: impl IntoIterator<Item = Change>) {
    let work = changes.into_iter().fold(Work::new(), Work::then);
    stores.commit(work).await.expect("the work is applied");
}

/// A token committed reads back exactly, at the stored precision; an unknown digest finds
/// nothing.
pub async fn a_token_reads_back_exactly_as_inserted(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let at = now().replace_microsecond(654_321).unwrap_or_else(|_| now());
    let (_, stored) = token(
        ada.id,
        &ada.email,
        Purpose::PasswordReset,
        at,
        Duration::hours(1),
    );
    commit(&stores, [Change::InsertToken(stored.clone())]).await;

    let found = stores
        .tokens()
        .find(&stored.digest)
        .await
        .expect("find works");
    assert_eq!(found, Some(stored.clone()));
    let (_, unknown) = token(
        ada.id,
        &ada.email,
        Purpose::PasswordReset,
        at,
        Duration::hours(1),
    );
    assert_eq!(
        stores
            .tokens()
            .find(&unknown.digest)
            .await
            .expect("find works"),
        None
    );
}

/// What a resend's cooldown is measured from: the newest token of that user and purpose,
/// whatever the others.
pub async fn the_latest_issued_token_is_found_per_user_and_purpose(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let t = now();
    let hour = Duration::hours(1);
    let issued = [
        token(ada.id, &ada.email, Purpose::EmailVerification, t, hour).1,
        token(
            ada.id,
            &ada.email,
            Purpose::EmailVerification,
            t + Duration::seconds(2),
            hour,
        )
        .1,
        token(
            ada.id,
            &ada.email,
            Purpose::EmailVerification,
            t + Duration::seconds(1),
            hour,
        )
        .1,
        token(
            ada.id,
            &ada.email,
            Purpose::PasswordReset,
            t + Duration::seconds(5),
            hour,
        )
        .1,
        token(
            grace.id,
            &grace.email,
            Purpose::EmailVerification,
            t + Duration::seconds(9),
            hour,
        )
        .1,
    ];
    commit(&stores, issued.into_iter().map(Change::InsertToken)).await;

    let tokens = stores.tokens();
    let latest = |user, purpose| async move {
        tokens
            .latest_issued(user, purpose)
            .await
            .expect("look-up works")
    };
    assert_eq!(
        latest(ada.id, Purpose::EmailVerification).await,
        Some(t + Duration::seconds(2))
    );
    assert_eq!(
        latest(ada.id, Purpose::PasswordReset).await,
        Some(t + Duration::seconds(5))
    );
    assert_eq!(latest(ada.id, Purpose::EmailChange).await, None);
    assert_eq!(
        latest(UserId::generate(), Purpose::PasswordReset).await,
        None
    );
}

/// The purge deletes expired tokens, at most a batch per call, and never a live one.
pub async fn a_purge_deletes_expired_tokens_up_to_the_batch_and_keeps_live_ones(
    stores: impl Stores,
) {
    let ada = user(&stores, "ada@example.com").await;
    let t = now();
    let expired: Vec<OneTimeToken> = (1..=3)
        .map(|minutes| {
            token(
                ada.id,
                &ada.email,
                Purpose::PasswordReset,
                t - Duration::hours(2),
                Duration::minutes(minutes),
            )
            .1
        })
        .collect();
    let (_, live) = token(
        ada.id,
        &ada.email,
        Purpose::PasswordReset,
        t,
        Duration::hours(1),
    );
    commit(
        &stores,
        expired
            .iter()
            .cloned()
            .chain([live.clone()])
            .map(Change::InsertToken),
    )
    .await;

    let purge = || async {
        stores
            .tokens()
            .purge_expired(t, 2)
            .await
            .expect("purge works")
    };
    assert_eq!(purge().await, 2);
    assert_eq!(purge().await, 1);
    assert_eq!(purge().await, 0);
    for token in &expired {
        assert_eq!(
            stores
                .tokens()
                .find(&token.digest)
                .await
                .expect("find works"),
            None
        );
    }
    assert_eq!(
        stores
            .tokens()
            .find(&live.digest)
            .await
            .expect("find works"),
        Some(live)
    );
}

/// Voiding deletes a user's tokens of one purpose, or of all, and no one else's.
pub async fn voiding_deletes_a_users_tokens_of_one_purpose_or_of_all(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let t = now();
    let hour = Duration::hours(1);
    let reset = token(ada.id, &ada.email, Purpose::PasswordReset, t, hour).1;
    let verify = token(ada.id, &ada.email, Purpose::EmailVerification, t, hour).1;
    let theirs = token(grace.id, &grace.email, Purpose::PasswordReset, t, hour).1;
    commit(
        &stores,
        [&reset, &verify, &theirs].map(|token| Change::InsertToken(token.clone())),
    )
    .await;
    let found = |token: &OneTimeToken| {
        let digest = token.digest.clone();
        let stores = stores.clone();
        async move {
            stores
                .tokens()
                .find(&digest)
                .await
                .expect("find works")
                .is_some()
        }
    };

    commit(
        &stores,
        [Change::VoidTokens {
            user: ada.id,
            purpose: Some(Purpose::PasswordReset),
        }],
    )
    .await;
    assert!(!found(&reset).await);
    assert!(found(&verify).await);
    assert!(found(&theirs).await);

    commit(
        &stores,
        [Change::VoidTokens {
            user: ada.id,
            purpose: None,
        }],
    )
    .await;
    assert!(!found(&verify).await);
    assert!(found(&theirs).await);
}
