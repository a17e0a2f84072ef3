use auth_domain::{
    Email, InsertUserError, NewUser, PasswordHash, UserId, UserRepository, Username,
};
use auth_store_mongo::MongoUserRepository;
use auth_testkit::users::new_user;
use bson::{doc, Bson, Document};
use mongodb::{options::IndexOptions, IndexModel};
use time::macros::datetime;

use crate::common::{self, USERS};

#[tokio::test]
async fn a_user_reads_back_with_its_created_at_exact_to_the_nanosecond() {
    let Some((db, test_database)) = common::database().await else {
        return;
    };
    let repo = MongoUserRepository::new(&db, USERS);
    let new = NewUser {
        created_at: datetime!(2026-11-28 11:46:53.123_456_789 UTC),
        ..new_user("ada@example.com", "ada_l")
    };
    let stored = repo.insert(new.clone()).await.expect("insert works");
    assert_eq!(stored, new.clone().into_user());
    let found = repo.find_by_id(new.id).await.expect("lookup works");
    assert_eq!(found, Some(stored));

    let raw = db
        .collection::<Document>(USERS)
        .find_one(doc! {})
        .await
        .expect("raw read works")
        .expect("the document exists");
    assert_eq!(raw.get("_id"), Some(&Bson::String(new.id.to_string())));
    assert!(
        matches!(raw.get("created_at"), Some(Bson::DateTime(_))),
        "{raw}"
    );
    assert_eq!(raw.get_i64("created_at_sub_ms_ns"), Ok(456_789));

    test_database.drop_now().await;
}

#[tokio::test]
async fn a_duplicate_email_and_a_duplicate_username_are_told_apart() {
    let Some((repo, test_database)) = common::user_repository().await else {
        return;
    };
    repo.insert(new_user("ada@example.com", "ada_l"))
        .await
        .expect("the first insert works");

    let same_email = repo.insert(new_user("ada@example.com", "grace_h")).await;
    assert!(
        matches!(same_email, Err(InsertUserError::EmailTaken)),
        "{same_email:?}"
    );
    let same_username = repo.insert(new_user("grace@example.com", "ada_l")).await;
    assert!(
        matches!(same_username, Err(InsertUserError::UsernameTaken)),
        "{same_username:?}"
    );
    let both = repo.insert(new_user("ada@example.com", "ada_l")).await;
    assert!(
        matches!(
            both,
            Err(InsertUserError::EmailTaken | InsertUserError::UsernameTaken)
        ),
        "{both:?}"
    );

    test_database.drop_now().await;
}

#[tokio::test]
async fn duplicates_under_indexes_made_by_hand_are_still_told_apart() {
    let Some((db, test_database)) = common::bare_database().await else {
        return;
    };
    let users = db.collection::<Document>(USERS);
    for field in ["email", "username"] {
        // Default names (`email_1`, `username_1`), as a hand-made index would have.
        users
            .create_index(
                IndexModel::builder()
                    .keys(doc! { field: 1 })
                    .options(IndexOptions::builder().unique(true).build())
                    .build(),
            )
            .await
            .expect("the index can be created");
    }
    let repo = MongoUserRepository::new(&db, USERS);
    repo.insert(new_user("ada@example.com", "ada_l"))
        .await
        .expect("the first insert works");

    let same_email = repo.insert(new_user("ada@example.com", "grace_h")).await;
    assert!(
        matches!(same_email, Err(InsertUserError::EmailTaken)),
        "{same_email:?}"
    );
    let same_username = repo.insert(new_user("grace@example.com", "ada_l")).await;
    assert!(
        matches!(same_username, Err(InsertUserError::UsernameTaken)),
        "{same_username:?}"
    );

    test_database.drop_now().await;
}

#[tokio::test]
async fn an_operator_object_given_as_an_email_or_username_matches_nothing() {
    let Some((repo, test_database)) = common::user_repository().await else {
        return;
    };
    repo.insert(new_user("ada@example.com", "ada_l"))
        .await
        .expect("insert works");

    // Even a value that bypassed parsing is compared as a string, never read as a query.
    for injected in [r#"{"$ne": null}"#, r#"{"$gt": ""}"#, "$where"] {
        let by_email = repo
            .find_by_email(&Email::from_trusted(injected.to_owned()))
            .await
            .expect("lookup works");
        assert_eq!(by_email, None, "{injected}");
        let by_username = repo
            .find_by_username(&Username::from_trusted(injected.to_owned()))
            .await
            .expect("lookup works");
        assert_eq!(by_username, None, "{injected}");
    }

    test_database.drop_now().await;
}

#[tokio::test]
async fn replacing_a_hash_with_itself_still_counts_as_replaced() {
    let Some((repo, test_database)) = common::user_repository().await else {
        return;
    };
    let user = repo
        .insert(new_user("ada@example.com", "ada_l"))
        .await
        .expect("insert works");
    // Compare-and-set answers whether the hash matched, not whether a byte changed.
    let replaced = repo
        .replace_password_hash(user.id, &user.password_hash, &user.password_hash)
        .await
        .expect("update works");
    assert!(replaced);

    let stale = PasswordHash::from_trusted("$argon2id$v=19$m=19456,t=2,p=1$b2xk$stale".into());
    let newer = PasswordHash::from_trusted("$argon2id$v=19$m=19456,t=2,p=1$bmV3$newer".into());
    assert!(!repo
        .replace_password_hash(user.id, &stale, &newer)
        .await
        .expect("update works"));
    assert!(repo
        .replace_password_hash(user.id, &user.password_hash, &newer)
        .await
        .expect("update works"));
    assert!(!repo
        .replace_password_hash(user.id, &user.password_hash, &stale)
        .await
        .expect("update works"));
    let found = repo.find_by_id(user.id).await.expect("lookup works");
    assert_eq!(found.expect("found").password_hash, newer);

    test_database.drop_now().await;
}

#[tokio::test]
async fn a_corrupt_user_document_is_a_storage_error_that_quotes_no_hash() {
    let Some((db, test_database)) = common::database().await else {
        return;
    };
    db.collection::<Document>(USERS)
        .insert_one(doc! {
            "_id": "not-a-uuid",
            "email": "ada@example.com",
            "username": "ada_l",
            "password_hash": "$argon2id$secret-hash",
            "created_at": bson::DateTime::now(),
        })
        .await
        .expect("raw insert works");
    db.collection::<Document>(USERS)
        .insert_one(doc! {
            "_id": UserId::generate().to_string(),
            "email": "grace@example.com",
            "username": "grace_h",
            "password_hash": 42,
        })
        .await
        .expect("raw insert works");
    let repo = MongoUserRepository::new(&db, USERS);

    for email in ["ada@example.com", "grace@example.com"] {
        let error = repo
            .find_by_email(&Email::parse(email).expect("valid"))
            .await
            .expect_err("a corrupt document is an error, not a user and not a panic");
        let shown = format!("{error:?} {error}");
        assert!(!shown.contains("secret-hash"), "{shown}");
    }

    test_database.drop_now().await;
}
