//! What every [`UserRepository`] must do, whatever it stores users in.

use auth_domain::{
    clock::Clock, Email, InsertUserError, NewUser, PasswordHash, User, UserId, UserRepository,
    Username,
};

/// A valid new user with this email and username; the hash is a stand-in (the repository
/// never interprets it).
pub fn new_user(email: &str, username: &str) -> NewUser {
    NewUser::new(
        Email::parse(email).expect("a valid test email"),
        Username::parse(username).expect("a valid test username"),
        PasswordHash::from_trusted(format!(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$stand-in-for-{username}"
        )),
        Clock::system().now(),
    )
}

/// A valid new user whose username is the default one: their email address.
pub fn new_user_with_default_username(email: &str) -> NewUser {
    let email = Email::parse(email).expect("a valid test email");
    let username = Username::from_email(&email);
    NewUser::new(
        email,
        username,
        PasswordHash::from_trusted("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$stand-in".into()),
        Clock::system().now(),
    )
}

async fn insert(repo: &impl UserRepository, user: NewUser) -> User {
    repo.insert(user).await.expect("the insert succeeds")
}

/// Insert returns the user as stored, and every lookup finds exactly that user.
pub async fn a_user_reads_back_exactly_as_inserted(repo: impl UserRepository) {
    let new = new_user("ada@example.com", "ada_l");
    let stored = insert(&repo, new.clone()).await;
    assert_eq!(stored, new.into_user());

    let by_id = repo.find_by_id(stored.id).await.expect("lookup works");
    let by_email = repo
        .find_by_email(&stored.email)
        .await
        .expect("lookup works");
    let by_username = repo
        .find_by_username(&stored.username)
        .await
        .expect("lookup works");
    assert_eq!(by_id.as_ref(), Some(&stored), "by id");
    assert_eq!(by_email.as_ref(), Some(&stored), "by email");
    assert_eq!(by_username.as_ref(), Some(&stored), "by username");
}

/// Looking up someone who does not exist is `Ok(None)`, not an error.
pub async fn lookups_of_unknown_users_find_nothing(repo: impl UserRepository) {
    insert(&repo, new_user("ada@example.com", "ada_l")).await;
    let email = Email::parse("grace@example.com").expect("valid");
    let username = Username::parse("grace_h").expect("valid");
    assert_eq!(
        repo.find_by_id(UserId::generate())
            .await
            .expect("lookup works"),
        None
    );
    assert_eq!(
        repo.find_by_email(&email).await.expect("lookup works"),
        None
    );
    assert_eq!(
        repo.find_by_username(&username)
            .await
            .expect("lookup works"),
        None
    );
}

/// The unique index on the email is the judge, and its violation has a name.
pub async fn a_second_user_with_the_same_email_is_refused(repo: impl UserRepository) {
    insert(&repo, new_user("ada@example.com", "ada_l")).await;
    let result = repo
        .insert(new_user("ada@example.com", "someone_else"))
        .await;
    assert!(
        matches!(result, Err(InsertUserError::EmailTaken)),
        "{result:?}"
    );
}

/// The unique index on the username is the judge, and its violation has a name.
pub async fn a_second_user_with_the_same_username_is_refused(repo: impl UserRepository) {
    insert(&repo, new_user("ada@example.com", "ada_l")).await;
    let result = repo.insert(new_user("grace@example.com", "ada_l")).await;
    assert!(
        matches!(result, Err(InsertUserError::UsernameTaken)),
        "{result:?}"
    );
}

/// A refused insert leaves no trace: nothing half-written.
pub async fn a_refused_insert_stores_nothing(repo: impl UserRepository) {
    insert(&repo, new_user("ada@example.com", "ada_l")).await;
    let refused = new_user("ada@example.com", "grace_h");
    assert!(repo.insert(refused.clone()).await.is_err());
    assert_eq!(
        repo.find_by_id(refused.id).await.expect("lookup works"),
        None
    );
    assert_eq!(
        repo.find_by_username(&refused.username)
            .await
            .expect("lookup works"),
        None
    );
}

/// Uniqueness is exact on every engine: MySQL's default collation would call `jose` and
/// `josé`, or `strasse` and `straße`, the same.
pub async fn usernames_differing_only_in_accents_or_case_folding_are_distinct(
    repo: impl UserRepository,
) {
    insert(&repo, new_user("a@example.com", "jose")).await;
    insert(&repo, new_user("b@example.com", "josé")).await;
    insert(&repo, new_user("c@example.com", "strasse")).await;
    insert(&repo, new_user("d@example.com", "straße")).await;
    let found = repo
        .find_by_username(&Username::parse("josé").expect("valid"))
        .await
        .expect("lookup works");
    assert_eq!(found.expect("found").email.as_str(), "b@example.com");
    let found = repo
        .find_by_username(&Username::parse("strasse").expect("valid"))
        .await
        .expect("lookup works");
    assert_eq!(found.expect("found").email.as_str(), "c@example.com");
}

/// A rehash replaces the hash only if it is still the one it was computed from.
pub async fn replacing_a_password_hash_is_compare_and_set(repo: impl UserRepository) {
    let user = insert(&repo, new_user("ada@example.com", "ada_l")).await;
    let newer = PasswordHash::from_trusted("$argon2id$v=19$m=19456,t=2,p=1$bmV3$newer".into());
    let stale = PasswordHash::from_trusted("$argon2id$v=19$m=19456,t=2,p=1$b2xk$stale".into());

    assert!(!repo
        .replace_password_hash(user.id, &stale, &newer)
        .await
        .expect("update works"));
    let unchanged = repo
        .find_by_id(user.id)
        .await
        .expect("lookup works")
        .expect("found");
    assert_eq!(unchanged.password_hash, user.password_hash);

    assert!(repo
        .replace_password_hash(user.id, &user.password_hash, &newer)
        .await
        .expect("update works"));
    let changed = repo
        .find_by_id(user.id)
        .await
        .expect("lookup works")
        .expect("found");
    assert_eq!(changed.password_hash, newer);
    assert!(!repo
        .replace_password_hash(UserId::generate(), &newer, &stale)
        .await
        .expect("update works"));
}

/// Compare-and-set answers whether the hash matched, not whether a byte changed (MySQL's
/// "rows affected" counts changed rows only, which would say no here).
pub async fn replacing_a_hash_with_itself_still_counts_as_replaced(repo: impl UserRepository) {
    let user = insert(&repo, new_user("ada@example.com", "ada_l")).await;
    let replaced = repo
        .replace_password_hash(user.id, &user.password_hash, &user.password_hash)
        .await
        .expect("update works");
    assert!(replaced);
}

/// The app lower-cases emails, so this never happens through it; but if two spellings did
/// reach the store, they must be two values, whatever the engine's default collation.
pub async fn emails_are_compared_exactly_not_by_collation(repo: impl UserRepository) {
    let mut upper = new_user("ada@example.com", "ada_upper");
    upper.email = Email::from_trusted("Ada@example.com".into());
    insert(&repo, upper).await;
    let lower = insert(&repo, new_user("ada@example.com", "ada_lower")).await;
    let mut accented = new_user("ada@example.com", "ada_accent");
    accented.email = Email::from_trusted("adá@example.com".into());
    insert(&repo, accented).await;

    let found = repo
        .find_by_email(&Email::parse("ada@example.com").expect("valid"))
        .await
        .expect("lookup works")
        .expect("found");
    assert_eq!(found.id, lower.id, "the lookup is exact too");
}

/// With the default username (the email), a second registration of one email collides on
/// both unique indexes; what the user must hear about is the email.
pub async fn a_taken_email_is_reported_even_when_the_default_username_collides_too(
    repo: impl UserRepository,
) {
    insert(&repo, new_user_with_default_username("ada@example.com")).await;
    let result = repo
        .insert(new_user_with_default_username("ada@example.com"))
        .await;
    assert!(
        matches!(result, Err(InsertUserError::EmailTaken)),
        "{result:?}"
    );
}

/// Only the email and username indexes mean "taken"; any other violation (an id generated
/// twice) is a failure, not something to tell a user.
pub async fn a_colliding_user_id_is_an_unexpected_error_not_a_taken_field(
    repo: impl UserRepository,
) {
    let first = insert(&repo, new_user("ada@example.com", "ada_l")).await;
    let mut same_id = new_user("grace@example.com", "grace_h");
    same_id.id = first.id;
    let result = repo.insert(same_id).await;
    assert!(
        matches!(result, Err(InsertUserError::Unexpected(_))),
        "{result:?}"
    );
    let found = repo.find_by_id(first.id).await.expect("lookup works");
    assert_eq!(
        found.as_ref().map(|user| user.email.as_str()),
        Some("ada@example.com")
    );
}

/// Twenty registrations racing for one email: exactly one wins, the others are told why,
/// and nobody sees a storage error (SQLite's "database is locked" included).
pub async fn concurrent_registrations_of_one_email_store_exactly_one(repo: impl UserRepository) {
    let attempts = (0..20).map(|i| {
        let repo = repo.clone();
        tokio::spawn(async move {
            repo.insert(new_user("race@example.com", &format!("racer_{i}")))
                .await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let mut stored = 0;
    for result in results {
        match result.expect("the task did not panic") {
            Ok(_) => stored += 1,
            Err(InsertUserError::EmailTaken) => {}
            Err(other) => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert_eq!(stored, 1);
}

/// Every store keeps the domain's precision, microseconds: what was inserted reads back
/// exactly, and a finer time is cut the same way everywhere.
pub async fn created_at_reads_back_to_the_microsecond(repo: impl UserRepository) {
    let mut user = new_user("ada@example.com", "ada_l");
    user.created_at = time::macros::datetime!(2040-02-29 23:59:59.999_999_999 +02:00);
    let stored = insert(&repo, user.clone()).await;
    assert_eq!(
        stored.created_at,
        time::macros::datetime!(2040-02-29 21:59:59.999_999 UTC)
    );
    let found = repo
        .find_by_id(user.id)
        .await
        .expect("lookup works")
        .expect("found");
    assert_eq!(found, stored, "insert returns the user exactly as stored");
}

/// Deleting a user answers whether they existed; afterwards no lookup finds them, and
/// their email and username are free for a new registration. Other users stay.
pub async fn deleting_a_user_removes_them_and_frees_their_email_and_username(
    repo: impl UserRepository,
) {
    let ada = insert(&repo, new_user("ada@example.com", "ada_l")).await;
    let grace = insert(&repo, new_user("grace@example.com", "grace_h")).await;

    assert!(repo.delete(ada.id).await.expect("delete works"));
    assert!(
        !repo.delete(ada.id).await.expect("delete works"),
        "a second delete finds nobody"
    );
    assert!(!repo.delete(UserId::generate()).await.expect("delete works"));
    assert_eq!(repo.find_by_id(ada.id).await.expect("lookup works"), None);
    assert_eq!(
        repo.find_by_email(&ada.email).await.expect("lookup works"),
        None
    );
    assert_eq!(
        repo.find_by_username(&ada.username)
            .await
            .expect("lookup works"),
        None
    );
    assert_eq!(
        repo.find_by_id(grace.id).await.expect("lookup works"),
        Some(grace)
    );

    let again = insert(&repo, new_user("ada@example.com", "ada_l")).await;
    assert_ne!(again.id, ada.id, "a new user, not the old one back");
}
