//! MongoDB keeps a snapshot of the user in each session document, so a password change
//! is several writes: each failure between them must leave the old sessions refused.

use auth_domain::{
    session::{self, Credential, Login, Owner},
    OwnedSessions as _, UserRepository,
};
use auth_store_mongo::{MongoSessionStore, MongoUserRepository};
use auth_testkit::users::new_user;
use bson::{doc, Document};
use mongodb::{options::IndexOptions, Database, IndexModel};
use tower_sessions::{session::Record, SessionStore as _};

use crate::common::{SESSIONS, USERS};

/// The password change's own swap of the hash fails after the snapshots were rebound to
/// the new credential (here a unique index on `credential` refuses it, as a timeout or a
/// lost connection would cut it short): the hash stays as it was, the change is reported
/// as failed, and the sessions made with the old password are refused all the same, never
/// accepted. Logging in again makes a fresh session.
pub(crate) async fn a_password_change_cut_short_after_the_rebind_leaves_old_sessions_refused(
    db: Database,
) {
    let users = MongoUserRepository::new(&db, USERS, SESSIONS);
    let store = MongoSessionStore::new(&db, SESSIONS);
    let ada = users
        .insert(new_user("ada@example.com", "ada_l"))
        .await
        .expect("insert works");
    let grace = users
        .insert(new_user("grace@example.com", "grace_h"))
        .await
        .expect("insert works");
    db.collection::<Document>(USERS)
        .create_index(
            IndexModel::builder()
                .keys(doc! { "credential": 1 })
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await
        .expect("a unique index on credential");

    let mut record = Record {
        id: tower_sessions::session::Id::default(),
        data: session::logged_in(&ada, auth_domain::clock::Clock::system().now()),
        expiry_date: auth_domain::clock::Clock::system().now() + time::Duration::hours(1),
    };
    session::put_owner(&mut record.data, &Owner::of(&ada));
    store.create(&mut record).await.expect("create works");
    let login = Login::new(&ada, auth_domain::clock::Clock::system().now());
    assert!(
        owner(&store, &record).await.owns(&login),
        "logged in at first"
    );

    // Grace's hash: its credential is taken, so the swap is refused after the rebind.
    let failed = users
        .replace_password_hash(ada.id, &ada.password_hash, &grace.password_hash)
        .await;
    assert!(failed.is_err(), "the swap fails: {failed:?}");
    let stored = users
        .find_by_id(ada.id)
        .await
        .expect("lookup works")
        .expect("ada exists");
    assert_eq!(
        stored.password_hash, ada.password_hash,
        "the hash is unchanged"
    );

    let after = owner(&store, &record).await;
    assert_eq!(after.credential, Credential::of(&grace.password_hash));
    assert!(
        !after.owns(&login),
        "a change cut short half-way ends the old sessions rather than keeping them"
    );
}

async fn owner(store: &MongoSessionStore, record: &Record) -> Owner {
    store
        .load_owned(&record.id.to_string())
        .await
        .expect("load works")
        .expect("the session is stored")
        .owner
        .expect("its owner snapshot")
}
