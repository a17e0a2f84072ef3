//! Concurrency on SQLite, whose single writer is the engine's weak point.

use auth_domain::UserRepository;
use auth_store_sql::{SqlSessionStore, SqlUserRepository};
use auth_testkit::users::new_user;
use sea_orm::DatabaseConnection;

/// Many connections writing at once wait for SQLite's lock rather than fail.
pub(crate) async fn concurrent_writers_on_sqlite_never_see_a_locked_database(
    db: DatabaseConnection,
) {
    let repo = SqlUserRepository::new(db.clone());
    let store = SqlSessionStore::new(db);
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
