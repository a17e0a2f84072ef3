use auth_domain::{Email, InsertUserError, NewUser, UserId, UserRepository, Username};
use auth_store_mongo::MongoUserRepository;
use auth_testkit::users::new_user;
use bson::{doc, Bson, Document};
use mongodb::{options::IndexOptions, Database, IndexModel};
use time::macros::datetime;

use crate::common::{SESSIONS, USERS};

/// A BSON date holds milliseconds; the domain's rule is microseconds, so the creation time
/// is stored as whole microseconds since the epoch, and in no other field.
pub(crate) async fn a_users_created_at_is_stored_as_microseconds_since_the_epoch(db: Database) {
    let repo = MongoUserRepository::new(&db, USERS, SESSIONS);
    let new = NewUser {
        created_at: datetime!(2026-11-28 11:46:53.123_456_789 UTC),
        ..new_user("ada@example.com", "ada_l")
    };
    repo.insert(new.clone()).await.expect("insert works");

    let raw = db
        .collection::<Document>(USERS)
        .find_one(doc! {})
        .await
        .expect("raw read works")
        .expect("the document exists");
    assert_eq!(raw.get("_id"), Some(&Bson::String(new.id.to_string())));
    assert_eq!(raw.get_i64("created_at_us"), Ok(1_795_866_413_123_456));
    assert!(!raw.contains_key("created_at_sub_ms_ns"), "{raw}");
}

pub(crate) async fn duplicates_under_indexes_made_by_hand_are_still_told_apart(db: Database) {
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
    let repo = MongoUserRepository::new(&db, USERS, SESSIONS);
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
}

pub(crate) async fn an_operator_object_given_as_an_email_or_username_matches_nothing(db: Database) {
    let repo = MongoUserRepository::new(&db, USERS, SESSIONS);
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
}

pub(crate) async fn a_corrupt_user_document_is_a_storage_error_that_quotes_no_hash(db: Database) {
    db.collection::<Document>(USERS)
        .insert_one(doc! {
            "_id": "not-a-uuid",
            "email": "ada@example.com",
            "username": "ada_l",
            "password_hash": "$argon2id$secret-hash",
            "created_at": bson::DateTime::from_time_0_3(auth_domain::clock::Clock::system().now()),
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
    let repo = MongoUserRepository::new(&db, USERS, SESSIONS);

    for email in ["ada@example.com", "grace@example.com"] {
        let error = repo
            .find_by_email(&Email::parse(email).expect("valid"))
            .await
            .expect_err("a corrupt document is an error, not a user and not a panic");
        let shown = format!("{error:?} {error}");
        assert!(!shown.contains("secret-hash"), "{shown}");
    }
}
