//! The user repository beyond the shared suite: exact timestamps, exact comparisons, and
//! which violation is reported.

use auth_domain::{Email, InsertUserError, UserRepository, Username};
use auth_store_sql::SqlUserRepository;
use auth_testkit::users::{new_user, new_user_with_default_username};
use sea_orm::DatabaseConnection;
use time::macros::datetime;

/// PostgreSQL and MySQL keep microseconds; the domain cuts to microseconds; so the stored
/// time is exactly the given one, and a finer one is cut the same way everywhere.
pub async fn created_at_reads_back_to_the_microsecond(db: DatabaseConnection) {
    let repo = SqlUserRepository::new(db);
    let mut user = new_user("ada@example.com", "ada_l");
    user.created_at = datetime!(2026-11-28 12:34:56.123_456 UTC);
    let stored = repo.insert(user.clone()).await.expect("insert works");
    assert_eq!(stored.created_at, user.created_at);
    let found = repo
        .find_by_id(user.id)
        .await
        .expect("lookup works")
        .expect("found");
    assert_eq!(found.created_at, user.created_at);
    assert_eq!(found, stored);

    let mut finer = new_user("grace@example.com", "grace_h");
    finer.created_at = datetime!(2040-02-29 23:59:59.999_999_999 +02:00);
    let stored = repo.insert(finer.clone()).await.expect("insert works");
    assert_eq!(
        stored.created_at,
        datetime!(2040-02-29 21:59:59.999_999 UTC)
    );
    let found = repo
        .find_by_id(finer.id)
        .await
        .expect("lookup works")
        .expect("found");
    assert_eq!(found, stored, "insert returns the user exactly as stored");
}

/// The app lower-cases emails, so this never happens through it; but if two spellings
/// did reach the database, they must be two values, as they are on SQLite and PostgreSQL.
pub async fn emails_are_compared_exactly_not_by_collation(db: DatabaseConnection) {
    let repo = SqlUserRepository::new(db);
    let mut upper = new_user("ada@example.com", "ada_upper");
    upper.email = Email::from_trusted("Ada@example.com".into());
    repo.insert(upper.clone()).await.expect("insert works");
    let lower = new_user("ada@example.com", "ada_lower");
    repo.insert(lower.clone())
        .await
        .expect("a different byte string is another email");
    let mut accented = new_user("ada@example.com", "ada_accent");
    accented.email = Email::from_trusted("adá@example.com".into());
    repo.insert(accented)
        .await
        .expect("an accent makes another email");
    let a = new_user("a@example.com", "a_plain");
    repo.insert(a).await.expect("insert works");
    let mut a_accent = new_user("b@example.com", "a_accent");
    a_accent.username = Username::from_trusted("á".into());
    repo.insert(a_accent).await.expect("`á` is not `a`");
    let mut ss = new_user("c@example.com", "ss_plain");
    ss.username = Username::from_trusted("ss".into());
    repo.insert(ss).await.expect("insert works");
    let mut sharp_s = new_user("d@example.com", "ss_sharp");
    sharp_s.username = Username::from_trusted("ß".into());
    repo.insert(sharp_s).await.expect("`ß` is not `ss`");

    let found = repo
        .find_by_email(&Email::parse("ada@example.com").expect("valid"))
        .await
        .expect("lookup works")
        .expect("found");
    assert_eq!(found.id, lower.id, "the lookup is exact too");
}

/// With the default username (the email), a second registration of one email collides on
/// both indexes; what the user must hear about is the email.
pub async fn a_taken_email_is_reported_even_when_the_default_username_collides_too(
    db: DatabaseConnection,
) {
    let repo = SqlUserRepository::new(db);
    let first = new_user_with_default_username("ada@example.com");
    assert_eq!(first.username.as_str(), "ada@example.com");
    repo.insert(first).await.expect("insert works");
    let again = new_user_with_default_username("ada@example.com");
    let result = repo.insert(again).await;
    assert!(
        matches!(result, Err(InsertUserError::EmailTaken)),
        "{result:?}"
    );
}

/// Only the two named indexes mean "taken"; any other violation is a failure.
pub async fn a_colliding_user_id_is_an_unexpected_error_not_a_taken_field(db: DatabaseConnection) {
    let repo = SqlUserRepository::new(db);
    let first = new_user("ada@example.com", "ada_l");
    repo.insert(first.clone()).await.expect("insert works");
    let mut same_id = new_user("grace@example.com", "grace_h");
    same_id.id = first.id;
    let result = repo.insert(same_id).await;
    assert!(
        matches!(result, Err(InsertUserError::Unexpected(_))),
        "{result:?}"
    );
}

/// Many connections writing at once wait for SQLite's lock rather than fail.
pub async fn concurrent_writers_on_sqlite_never_see_a_locked_database(db: DatabaseConnection) {
    let repo = SqlUserRepository::new(db.clone());
    let store = auth_store_sql::SqlSessionStore::new(db);
    let writers = (0..40).map(|i| {
        let (repo, store) = (repo.clone(), store.clone());
        tokio::spawn(async move {
            let user = repo
                .insert(new_user(
                    &format!("user{i}@example.com"),
                    &format!("user_{i}"),
                ))
                .await
                .map_err(|err| format!("insert: {err:?}"))?;
            repo.find_by_id(user.id)
                .await
                .map_err(|err| format!("find: {err:?}"))?;
            let mut record = auth_testkit::sessions::record();
            tower_sessions::SessionStore::create(&store, &mut record)
                .await
                .map_err(|err| format!("create: {err}"))?;
            tower_sessions::SessionStore::save(&store, &record)
                .await
                .map_err(|err| format!("save: {err}"))?;
            Ok::<_, String>(())
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer.expect("no panic").expect("no storage error");
    }
}
