//! What every session store must do with a session's owner, on the database it shares with
//! the user repository: load the user with the session, as stored now, in the same round
//! trip, typed beside the data and never inside it (see `auth_domain::session` and
//! `OwnedSessions`).

use auth_domain::{
    clock::Clock,
    session::{self, Credential, Login, Owner},
    OwnedSessions, PasswordHash, User, UserRepository, UserSessions,
};
use tower_sessions::{session::Record, SessionStore};

use crate::{sessions, users::new_user};

/// A new record with `user` logged in, carrying their owner view as a login attaches it.
pub fn logged_in(user: &User) -> Record {
    let mut record = sessions::anonymous();
    Login::new(user, Clock::system().now()).write(&mut record.data);
    session::put_owner(&mut record.data, &Owner::of(user));
    record
}

async fn owner_after_load(store: &impl OwnedSessions, record: &Record) -> Option<Owner> {
    store
        .load_owned(&record.id.to_string())
        .await
        .expect("load works")
        .expect("the session exists")
        .owner
}

/// A logged-in session loads with its user, and the login it holds is the one written;
/// the owner comes beside the data, which holds the login and nothing of the owner, and a
/// plain `load` reads the same data and expiry.
pub async fn a_session_loads_with_its_owner(
    (users, store): (impl UserRepository, impl SessionStore + OwnedSessions),
) {
    let user = users
        .insert(new_user("ada@example.com", "ada_l"))
        .await
        .expect("insert works");
    let mut record = logged_in(&user);
    store.create(&mut record).await.expect("create works");

    let loaded = store
        .load_owned(&record.id.to_string())
        .await
        .expect("load works")
        .expect("exists");
    let owner = loaded.owner.expect("the owner comes with the session");
    assert_eq!(owner, Owner::of(&user));
    let login = loaded.data.login().expect("still logged in");
    assert!(owner.owns(&login));
    let mut written = record.data.clone();
    session::take_owner(&mut written);
    let data = loaded.data.parse().expect("a JSON object");
    assert_eq!(
        data, written,
        "the data is what was written, no owner in it"
    );
    assert_eq!(Login::read(&data), Some(login));

    let plain = store
        .load(&record.id)
        .await
        .expect("load works")
        .expect("exists");
    assert_eq!(plain.data, data);
    assert_eq!(plain.expiry_date, loaded.expires_at);
    assert_eq!(
        store
            .load_owned("no-such-session")
            .await
            .expect("load works"),
        None
    );
}

/// A new password reaches the loaded owner at once, so every older login ends; the owner
/// is never served from what the session was written with.
pub async fn a_changed_password_reaches_the_loaded_owner_at_once(
    (users, store): (impl UserRepository, impl SessionStore + OwnedSessions),
) {
    let user = users
        .insert(new_user("ada@example.com", "ada_l"))
        .await
        .expect("insert works");
    let mut record = logged_in(&user);
    store.create(&mut record).await.expect("create works");
    store.save(&record).await.expect("a renewal's save works");

    let new = PasswordHash::from_trusted("$argon2id$v=19$m=19456,t=2,p=1$bmV3$changed".into());
    assert!(users
        .replace_password_hash(user.id, &user.password_hash, &new)
        .await
        .expect("update works"));

    let owner = owner_after_load(&store, &record)
        .await
        .expect("the user still exists");
    assert_eq!(owner.credential, Credential::of(&new));
    let login = Login::read(&record.data).expect("logged in");
    assert!(
        !owner.owns(&login),
        "the login made with the old password is over"
    );
}

/// A request that loaded the session before a password change and saves it after (a
/// renewal in flight) writes back what it loaded, and that must not bring the old login
/// back: the owner still loads as stored now, with the new credential.
pub async fn a_save_in_flight_across_a_password_change_does_not_revive_the_old_login(
    (users, store): (impl UserRepository, impl SessionStore + OwnedSessions),
) {
    let user = users
        .insert(new_user("ada@example.com", "ada_l"))
        .await
        .expect("insert works");
    let mut record = logged_in(&user);
    store.create(&mut record).await.expect("create works");
    let in_flight = store
        .load(&record.id)
        .await
        .expect("load works")
        .expect("the session exists");

    let new = PasswordHash::from_trusted("$argon2id$v=19$m=19456,t=2,p=1$bmV3$changed".into());
    assert!(users
        .replace_password_hash(user.id, &user.password_hash, &new)
        .await
        .expect("update works"));
    store.save(&in_flight).await.expect("the late save works");

    let loaded = store
        .load_owned(&record.id.to_string())
        .await
        .expect("load works")
        .expect("a save keeps the session, ended or not");
    let owner = loaded.owner.expect("the user still exists");
    assert_eq!(owner.credential, Credential::of(&new));
    let login = loaded.data.login().expect("the login is what was saved");
    assert!(
        !owner.owns(&login),
        "the login made with the old password stays over"
    );
}

/// A session whose user is unknown to the repository loads without an owner, which the
/// login manager treats as logged out.
pub async fn a_session_of_an_unknown_user_loads_without_an_owner(
    (_users, store): (impl UserRepository, impl SessionStore + OwnedSessions),
) {
    let stranger = new_user("grace@example.com", "grace_h").into_user();
    let mut record = sessions::anonymous();
    Login::new(&stranger, Clock::system().now()).write(&mut record.data);
    store.create(&mut record).await.expect("create works");
    assert_eq!(owner_after_load(&store, &record).await, None);
}

/// Deleting a user ends every session of theirs, whatever the store keeps of the user in
/// them, and leaves everyone else's; the email can be registered again afterwards.
pub async fn deleting_a_user_ends_all_their_sessions_and_only_theirs(
    (users, store): (
        impl UserRepository,
        impl SessionStore + OwnedSessions + UserSessions,
    ),
) {
    let ada = users
        .insert(new_user("ada@example.com", "ada_l"))
        .await
        .expect("insert works");
    let grace = users
        .insert(new_user("grace@example.com", "grace_h"))
        .await
        .expect("insert works");
    let mut records = [logged_in(&ada), logged_in(&ada), logged_in(&grace)];
    for record in &mut records {
        store.create(record).await.expect("create works");
    }
    let [first, second, graces] = &records;
    // A renewal writes the session again, with its owner.
    store.save(first).await.expect("save works");

    assert!(users.delete(ada.id).await.expect("delete works"));
    assert!(!users.delete(ada.id).await.expect("delete works"));
    assert_eq!(users.find_by_id(ada.id).await.expect("lookup works"), None);
    for gone in [first, second] {
        assert_eq!(store.load(&gone.id).await.expect("load works"), None);
    }
    let listed = store
        .list_user_sessions(ada.id)
        .await
        .expect("listing works");
    assert!(listed.is_empty(), "{listed:?}");
    assert_eq!(
        owner_after_load(&store, graces).await,
        Some(Owner::of(&grace)),
        "another user's session is untouched"
    );

    let again = users
        .insert(new_user("ada@example.com", "ada_l"))
        .await
        .expect("the email is free again");
    let mut fresh = logged_in(&again);
    store.create(&mut fresh).await.expect("create works");
    assert_eq!(
        owner_after_load(&store, &fresh).await,
        Some(Owner::of(&again))
    );
}
