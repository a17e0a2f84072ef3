//! The documents of the second factors and WebAuthn ceremonies, as other tools see them,
//! and what the conformance suite cannot see: a deleted user's ceremonies.

use auth_domain::{
    factors::{Ceremony, ChallengeStore, FactorStore},
    work::{Change, Work},
    Stores,
};
use auth_store_mongo::{
    MongoStores, DEFAULT_CHALLENGES_COLLECTION, DEFAULT_PASSKEYS_COLLECTION,
    DEFAULT_RECOVERY_CODES_COLLECTION, DEFAULT_TOTP_COLLECTION,
};
use auth_testkit::{factors, tokens::user};
use bson::{doc, Bson, DateTime, Document};
use mongodb::Database;
use time::{Duration, OffsetDateTime};

/// The current instant with microseconds a BSON date cannot hold.
fn now() -> OffsetDateTime {
    let now = auth_domain::clock::Clock::system().now();
    now.replace_microsecond(123_456).unwrap_or(now)
}

fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).expect("in range")
}

async fn raw(db: &Database, collection: &str, filter: Document) -> Document {
    db.collection::<Document>(collection)
        .find_one(filter)
        .await
        .expect("raw read works")
        .expect("the document exists")
}

async fn commit(stores: &MongoStores, changes: impl IntoIterator<Item = Change>) {
    let work = changes.into_iter().fold(Work::new(), Work::then);
    stores.commit(work).await.expect("the work is applied");
}

/// A TOTP credential is the user's one document (`_id` the user's id), a passkey's `_id`
/// our UUID; ids are strings as the users' `_id`, instants exact microseconds, and a code
/// is kept as its digest only.
pub(crate) async fn totp_passkeys_and_codes_are_stored_with_string_ids_and_exact_microseconds(
    (stores, db): (MongoStores, Database),
) {
    let ada = user(&stores, "ada@example.com").await;
    let at = now();
    let enrolment = factors::totp(ada.id, at);
    assert!(stores
        .factors()
        .begin_totp(enrolment.clone())
        .await
        .expect("begin works"));
    let totp = raw(&db, DEFAULT_TOTP_COLLECTION, doc! {}).await;
    assert_eq!(totp.get_str("_id"), Ok(ada.id.to_string().as_str()));
    assert_eq!(
        totp.get_str("enrolment_id"),
        Ok(enrolment.id.to_string().as_str())
    );
    assert_eq!(totp.get_bool("confirmed"), Ok(false));
    assert_eq!(totp.get("last_step"), Some(&Bson::Null));
    assert_eq!(totp.get_i64("created_at_us"), Ok(micros(at)));

    let passkey = factors::passkey(ada.id, &factors::credential_id(32), "phone", at);
    let digests = factors::codes(2);
    commit(
        &stores,
        [
            Change::ConfirmTotp {
                user: ada.id,
                id: enrolment.id,
                step: 7,
            },
            Change::InsertPasskey(passkey.clone()),
            Change::ReplaceRecoveryCodes {
                user: ada.id,
                digests: digests.clone(),
                at,
            },
        ],
    )
    .await;
    let totp = raw(&db, DEFAULT_TOTP_COLLECTION, doc! {}).await;
    assert_eq!(totp.get_bool("confirmed"), Ok(true));
    assert_eq!(totp.get_i64("last_step"), Ok(7));

    let used_at = at + Duration::minutes(1);
    assert!(stores
        .factors()
        .passkey_used(ada.id, passkey.id, "{}".to_owned(), used_at)
        .await
        .expect("recording a use works"));
    let stored = raw(&db, DEFAULT_PASSKEYS_COLLECTION, doc! {}).await;
    assert_eq!(stored.get_str("_id"), Ok(passkey.id.to_string().as_str()));
    assert_eq!(stored.get_str("user_id"), Ok(ada.id.to_string().as_str()));
    assert_eq!(
        stored.get_str("credential_id"),
        Ok(passkey.credential_id.as_str())
    );
    assert_eq!(stored.get_i64("created_at_us"), Ok(micros(at)));
    assert_eq!(stored.get_i64("last_used_at_us"), Ok(micros(used_at)));

    let code = raw(
        &db,
        DEFAULT_RECOVERY_CODES_COLLECTION,
        doc! { "digest": digests[0].as_str() },
    )
    .await;
    assert_eq!(code.get_str("user_id"), Ok(ada.id.to_string().as_str()));
    assert_eq!(code.get_i64("created_at_us"), Ok(micros(at)));
}

/// A ceremony holds its expiry twice: a date for the TTL index, rounded down to the
/// millisecond, and the microseconds, which a take decides by.
pub(crate) async fn a_challenge_is_stored_with_a_date_for_its_ttl_and_exact_microseconds(
    (stores, db): (MongoStores, Database),
) {
    let ada = user(&stores, "ada@example.com").await;
    let expires_at = now() + Duration::minutes(5);
    let pending = factors::challenge(Ceremony::Registration, Some(ada.id), expires_at);
    stores
        .challenges()
        .put(pending.clone())
        .await
        .expect("put works");

    let stored = raw(&db, DEFAULT_CHALLENGES_COLLECTION, doc! {}).await;
    assert_eq!(stored.get_str("_id"), Ok(pending.digest.as_str()));
    assert_eq!(stored.get_str("ceremony"), Ok("registration"));
    assert_eq!(stored.get_str("user_id"), Ok(ada.id.to_string().as_str()));
    assert_eq!(stored.get_i64("expires_at_us"), Ok(micros(expires_at)));
    assert_eq!(
        stored.get_datetime("expires_at"),
        Ok(&DateTime::from_millis(micros(expires_at).div_euclid(1_000)))
    );

    // Within the millisecond the date was rounded down to, the microseconds still decide.
    let just_before = expires_at - Duration::microseconds(1);
    let taken = stores
        .challenges()
        .take(&pending.digest, Ceremony::Registration, just_before)
        .await
        .expect("take works");
    assert_eq!(taken, Some(pending));
}

/// Deleting a user deletes the ceremonies in flight for them, and no one else's (the
/// suite checks their factors; ceremonies are this store's own doing).
pub(crate) async fn deleting_a_user_removes_their_ceremonies_and_no_one_elses(
    (stores, db): (MongoStores, Database),
) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let later = now() + Duration::minutes(5);
    let adas = factors::challenge(Ceremony::Registration, Some(ada.id), later);
    let graces = factors::challenge(Ceremony::SecondFactor, Some(grace.id), later);
    let anyones = factors::challenge(Ceremony::SignIn, None, later);
    for pending in [&adas, &graces, &anyones] {
        stores
            .challenges()
            .put(pending.clone())
            .await
            .expect("put works");
    }

    commit(&stores, [Change::DeleteUser { user: ada.id }]).await;
    let left = db
        .collection::<Document>(DEFAULT_CHALLENGES_COLLECTION)
        .count_documents(doc! {})
        .await
        .expect("counting works");
    assert_eq!(left, 2);
    for (pending, ceremony) in [
        (&graces, Ceremony::SecondFactor),
        (&anyones, Ceremony::SignIn),
    ] {
        let taken = stores
            .challenges()
            .take(&pending.digest, ceremony, now())
            .await
            .expect("take works");
        assert_eq!(taken.as_ref(), Some(pending));
    }
}

/// Enrolments begun at once from two instances for a user with no credential all
/// succeed, and one of them is what stays. On MongoDB the upsert that loses the race to
/// insert the user's document can collide with it (a duplicate `_id`), and is then tried
/// again as a replacement; SecantusDB applies such upserts one after the other, so there
/// this checks the outcome, not that path.
pub(crate) async fn concurrent_enrolments_from_two_instances_each_begin_and_one_stays(
    (one, two): (MongoStores, MongoStores),
) {
    const RACERS: usize = 16;
    let ada = user(&one, "ada@example.com").await;
    let at = now();
    let enrolments: Vec<_> = (0..RACERS).map(|_| factors::totp(ada.id, at)).collect();
    let begins = enrolments.iter().enumerate().map(|(i, enrolment)| {
        let stores = if i % 2 == 0 { one.clone() } else { two.clone() };
        let enrolment = enrolment.clone();
        tokio::spawn(async move { stores.factors().begin_totp(enrolment).await })
    });
    for begun in futures::future::join_all(begins).await {
        assert!(begun.expect("no begin panicked").expect("begin works"));
    }
    let stored = one
        .factors()
        .totp(ada.id)
        .await
        .expect("lookup works")
        .expect("an enrolment stays");
    assert!(enrolments.contains(&stored), "{stored:?}");
}
