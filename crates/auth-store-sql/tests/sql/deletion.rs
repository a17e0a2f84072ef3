//! Deleting a user with their sessions, as one transaction.

use auth_domain::UserRepository;
use auth_store_sql::SqlUserRepository;
use auth_testkit::users::new_user;
use sea_orm::{ConnectionTrait, DatabaseConnection};

/// When the sessions cannot be deleted, the user is not deleted either: nothing is left
/// half-done for a retry to trip over.
pub(crate) async fn a_user_deletion_that_fails_halfway_deletes_nothing(db: DatabaseConnection) {
    let users = SqlUserRepository::new(db.clone());
    let ada = users
        .insert(new_user("ada@example.com", "ada_l"))
        .await
        .expect("insert works");
    // The user goes first, so that this fails after a write.
    db.execute_unprepared("DROP TABLE sessions")
        .await
        .expect("the table can be dropped");

    users
        .delete(ada.id)
        .await
        .expect_err("the sessions cannot be deleted");
    assert_eq!(
        users.find_by_id(ada.id).await.expect("lookup works"),
        Some(ada),
        "the user's deletion is rolled back"
    );
}
