use std::{collections::BTreeMap, time::Duration};

use auth_store_mongo::{
    ensure_factor_indexes, ensure_indexes, ensure_mail_indexes, ensure_throttle_and_audit_indexes,
    CHALLENGE_EXPIRY_INDEX, CHALLENGE_USER_INDEX, DEFAULT_CHALLENGES_COLLECTION,
    DEFAULT_OUTBOX_COLLECTION, DEFAULT_PASSKEYS_COLLECTION, DEFAULT_RECOVERY_CODES_COLLECTION,
    DEFAULT_TOKENS_COLLECTION, EMAIL_INDEX, EVENT_TIME_INDEX, EVENT_USER_INDEX,
    FAILURE_EXPIRY_INDEX, FAILURE_KEY_INDEX, FAILURE_RETENTION, MAIL_DUE_INDEX, MAIL_LIST_INDEX,
    MAIL_SENT_INDEX, PASSKEY_CREDENTIAL_INDEX, PASSKEY_USER_INDEX, RECOVERY_CODE_INDEX,
    SESSION_EXPIRY_INDEX, SESSION_USER_INDEX, TOKEN_EXPIRY_INDEX, TOKEN_USER_INDEX, USERNAME_INDEX,
};
use bson::{doc, Document};
use futures::TryStreamExt;
use mongodb::{options::IndexOptions, Database, IndexModel};

use crate::common::{EVENTS, FAILURES, SESSIONS, USERS};

async fn indexes_of(db: &Database, collection: &str) -> BTreeMap<String, IndexModel> {
    db.collection::<Document>(collection)
        .list_indexes()
        .await
        .expect("list_indexes works")
        .try_collect::<Vec<_>>()
        .await
        .expect("the listing reads")
        .into_iter()
        .map(|model| {
            let name = model
                .options
                .as_ref()
                .and_then(|o| o.name.clone())
                .expect("listed indexes are named");
            (name, model)
        })
        .collect()
}

fn options(model: &IndexModel) -> &IndexOptions {
    model.options.as_ref().expect("listed indexes have options")
}

pub(crate) async fn ensure_indexes_can_run_again_and_declares_what_the_adapters_rely_on(
    db: Database,
) {
    ensure_indexes(&db, USERS, SESSIONS)
        .await
        .expect("a second run changes nothing and succeeds");

    let users = indexes_of(&db, USERS).await;
    assert_eq!(users.len(), 3, "{users:?}");
    assert_eq!(users[EMAIL_INDEX].keys, doc! { "email": 1 });
    assert_eq!(options(&users[EMAIL_INDEX]).unique, Some(true));
    assert_eq!(users[USERNAME_INDEX].keys, doc! { "username": 1 });
    assert_eq!(options(&users[USERNAME_INDEX]).unique, Some(true));

    let sessions = indexes_of(&db, SESSIONS).await;
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    assert_eq!(sessions[SESSION_USER_INDEX].keys, doc! { "user_id": 1 });
    assert_ne!(options(&sessions[SESSION_USER_INDEX]).unique, Some(true));
    assert_eq!(
        sessions[SESSION_EXPIRY_INDEX].keys,
        doc! { "expires_at": 1 }
    );
    assert_eq!(
        options(&sessions[SESSION_EXPIRY_INDEX]).expire_after,
        Some(Duration::ZERO),
        "each session must expire at its own expires_at"
    );
}

pub(crate) async fn throttle_and_audit_indexes_can_run_again_and_declare_what_the_adapters_rely_on(
    db: Database,
) {
    ensure_throttle_and_audit_indexes(&db, FAILURES, EVENTS)
        .await
        .expect("a second run changes nothing and succeeds");

    let failures = indexes_of(&db, FAILURES).await;
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert_eq!(
        failures[FAILURE_KEY_INDEX].keys,
        doc! { "key": 1, "at_us": 1 }
    );
    assert_eq!(failures[FAILURE_EXPIRY_INDEX].keys, doc! { "at": 1 });
    assert_eq!(
        options(&failures[FAILURE_EXPIRY_INDEX]).expire_after,
        Some(FAILURE_RETENTION)
    );

    let events = indexes_of(&db, EVENTS).await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(
        events[EVENT_USER_INDEX].keys,
        doc! { "user_id": 1, "at_us": -1 }
    );
    assert_eq!(events[EVENT_TIME_INDEX].keys, doc! { "at": 1 });
    assert_eq!(
        options(&events[EVENT_TIME_INDEX]).expire_after,
        None,
        "the retention of events is the purge's, not a TTL's"
    );
}

pub(crate) async fn mail_indexes_can_run_again_and_declare_what_the_adapters_rely_on(db: Database) {
    for _ in 0..2 {
        ensure_mail_indexes(&db, DEFAULT_TOKENS_COLLECTION, DEFAULT_OUTBOX_COLLECTION)
            .await
            .expect("the indexes are made, and a second run changes nothing");
    }

    let tokens = indexes_of(&db, DEFAULT_TOKENS_COLLECTION).await;
    assert_eq!(tokens.len(), 3, "the digest is the unique _id: {tokens:?}");
    assert_eq!(
        tokens[TOKEN_USER_INDEX].keys,
        doc! { "user_id": 1, "purpose": 1, "created_at_us": -1 }
    );
    assert_eq!(tokens[TOKEN_EXPIRY_INDEX].keys, doc! { "expires_at_us": 1 });
    assert_eq!(
        options(&tokens[TOKEN_EXPIRY_INDEX]).expire_after,
        None,
        "the purge decides by the service's clock"
    );

    let outbox = indexes_of(&db, DEFAULT_OUTBOX_COLLECTION).await;
    assert_eq!(outbox.len(), 4, "{outbox:?}");
    assert_eq!(
        outbox[MAIL_DUE_INDEX].keys,
        doc! { "status": 1, "next_attempt_at_us": 1 }
    );
    assert_eq!(
        outbox[MAIL_LIST_INDEX].keys,
        doc! { "status": 1, "created_at_us": -1 }
    );
    assert_eq!(outbox[MAIL_SENT_INDEX].keys, doc! { "sent_at_us": 1 });
}

pub(crate) async fn factor_indexes_can_run_again_and_declare_what_the_adapters_rely_on(
    db: Database,
) {
    for _ in 0..2 {
        ensure_factor_indexes(
            &db,
            DEFAULT_RECOVERY_CODES_COLLECTION,
            DEFAULT_PASSKEYS_COLLECTION,
            DEFAULT_CHALLENGES_COLLECTION,
        )
        .await
        .expect("the indexes are made, and a second run changes nothing");
    }

    let codes = indexes_of(&db, DEFAULT_RECOVERY_CODES_COLLECTION).await;
    assert_eq!(codes.len(), 2, "{codes:?}");
    assert_eq!(
        codes[RECOVERY_CODE_INDEX].keys,
        doc! { "user_id": 1, "digest": 1 }
    );
    assert_eq!(options(&codes[RECOVERY_CODE_INDEX]).unique, Some(true));

    let passkeys = indexes_of(&db, DEFAULT_PASSKEYS_COLLECTION).await;
    assert_eq!(passkeys.len(), 3, "{passkeys:?}");
    assert_eq!(
        passkeys[PASSKEY_CREDENTIAL_INDEX].keys,
        doc! { "credential_id": 1 }
    );
    assert_eq!(
        options(&passkeys[PASSKEY_CREDENTIAL_INDEX]).unique,
        Some(true)
    );
    assert_eq!(
        passkeys[PASSKEY_USER_INDEX].keys,
        doc! { "user_id": 1, "created_at_us": 1 }
    );

    let challenges = indexes_of(&db, DEFAULT_CHALLENGES_COLLECTION).await;
    assert_eq!(
        challenges.len(),
        3,
        "the digest is the unique _id: {challenges:?}"
    );
    assert_eq!(
        challenges[CHALLENGE_EXPIRY_INDEX].keys,
        doc! { "expires_at": 1 }
    );
    assert_eq!(
        options(&challenges[CHALLENGE_EXPIRY_INDEX]).expire_after,
        Some(Duration::ZERO)
    );
    assert_eq!(challenges[CHALLENGE_USER_INDEX].keys, doc! { "user_id": 1 });
}

pub(crate) async fn an_index_of_the_same_name_with_other_options_is_reported_with_its_collection(
    db: Database,
) {
    db.collection::<Document>(USERS)
        .create_index(
            IndexModel::builder()
                .keys(doc! { "email": 1 })
                .options(IndexOptions::builder().name(EMAIL_INDEX.to_owned()).build())
                .build(),
        )
        .await
        .expect("a non-unique index can be made by hand");

    let error = ensure_indexes(&db, USERS, SESSIONS)
        .await
        .expect_err("a non-unique index cannot pass for the unique one");
    assert_eq!(error.collection(), USERS);
}
