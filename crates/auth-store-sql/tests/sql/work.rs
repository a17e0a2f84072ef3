//! A unit of work whose storage fails halfway: rolled back, as one refused is.

use auth_domain::{
    clock::Clock,
    mail::Outbox,
    tokens::{Purpose, TokenStore},
    work::{Change, CommitError, Work},
    Stores, UserRepository,
};
use auth_store_sql::SqlStores;
use auth_testkit::{
    audit::event,
    tokens::{now, token},
    users::new_user_with_default_username,
};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use time::Duration;

/// When the last write of a work fails (its table is gone), the token it spent, the
/// password it set and the user it verified are as they were: nothing is left half-done.
pub(crate) async fn a_work_whose_storage_fails_halfway_applies_nothing(db: DatabaseConnection) {
    let stores = SqlStores::new(db.clone(), Clock::system());
    let ada = stores
        .users()
        .insert(new_user_with_default_username("ada@example.com"))
        .await
        .expect("insert works");
    let t = now();
    let (_, reset) = token(
        ada.id,
        &ada.email,
        Purpose::PasswordReset,
        t,
        Duration::hours(1),
    );
    stores
        .commit(Work::new().then(Change::InsertToken(reset.clone())))
        .await
        .expect("the token is stored");
    db.execute_unprepared("DROP TABLE auth_events")
        .await
        .expect("the table can be dropped");

    let work = Work::new()
        .then(Change::ConsumeToken {
            digest: reset.digest.clone(),
            purpose: Purpose::PasswordReset,
            now: t,
        })
        .then(Change::SetPassword {
            user: ada.id,
            hash: auth_domain::PasswordHash::from_trusted("$argon2id$new".into()),
        })
        .then(Change::MarkEmailVerified {
            user: ada.id,
            email: ada.email.clone(),
        })
        .then(Change::Enqueue(auth_testkit::outbox::mail(
            "ada@example.com",
            t,
        )))
        .then(Change::Record(event(
            auth_domain::audit::EventKind::PasswordReset,
            Some(ada.id),
            t,
        )));
    match stores.commit(work).await {
        Err(CommitError::Storage(_)) => {}
        other => panic!("expected a storage failure, got {other:?}"),
    }

    assert_eq!(
        stores
            .users()
            .find_by_id(ada.id)
            .await
            .expect("lookup works"),
        Some(ada),
        "password and verification as they were"
    );
    assert_eq!(
        stores
            .tokens()
            .find(&reset.digest)
            .await
            .expect("find works"),
        Some(reset),
        "the token is not spent"
    );
    assert_eq!(stores.outbox().pending().await.expect("count works"), 0);
}
