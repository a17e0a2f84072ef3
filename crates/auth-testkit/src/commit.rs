//! What every [`Stores::commit`] must do: apply a unit of work's changes, refuse it by its
//! guards, spend a token once however many submit it; and, where the store has
//! transactions (SQL, memory), leave nothing of a refused work.

use auth_domain::{
    audit::{AuditLog, EventKind, EventPage},
    mail::{MailStatus, Outbox},
    session::{Credential, Owner, SessionHandle},
    tokens::{Purpose, TokenStore},
    work::{Change, CommitError, Refusal, Work},
    Email, OwnedSessions, PasswordHash, Stores, User, UserId, UserRepository, UserSessions,
};
use time::Duration;
use tower_sessions::{session::Record, SessionStore};

use crate::{
    audit::event,
    outbox::mail,
    owners::logged_in,
    tokens::{commit, now, token, user},
    users::{new_user, new_user_with_default_username},
};

pub(crate) async fn refused(
    stores: &impl Stores,
    changes: impl IntoIterator<Item = Change>,
) -> Refusal {
    let work = changes.into_iter().fold(Work::new(), Work::then);
    match stores.commit(work).await {
        Err(CommitError::Refused(refusal)) => refusal,
        Err(CommitError::Storage(error)) => panic!("a storage failure: {error}"),
        Ok(()) => panic!("the work was applied"),
    }
}

async fn stored(stores: &impl Stores, id: UserId) -> User {
    stores
        .users()
        .find_by_id(id)
        .await
        .expect("lookup works")
        .expect("the user exists")
}

/// A session of `user` with their owner snapshot, stored.
async fn session_of<S: Stores>(stores: &S, user: &User) -> Record
where
    S::Sessions: SessionStore,
{
    let mut record = logged_in(user);
    stores
        .sessions()
        .create(&mut record)
        .await
        .expect("create works");
    record
}

async fn owner<S: Stores>(stores: &S, record: &Record) -> Option<Owner> {
    stores
        .sessions()
        .load_owned(&record.id.to_string())
        .await
        .expect("load works")
        .expect("the session exists")
        .owner
}

fn hash(name: &str) -> PasswordHash {
    PasswordHash::from_trusted(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${name}"))
}

/// Every change of a work is applied: a user, a token, a mail, an event.
pub async fn a_committed_work_applies_every_change(stores: impl Stores) {
    let new = new_user_with_default_username("ada@example.com");
    let t = now();
    let (_, verify) = token(
        new.id,
        &new.email,
        Purpose::EmailVerification,
        t,
        Duration::hours(24),
    );
    let welcome = mail("ada@example.com", t);
    let registered = event(EventKind::Registered, Some(new.id), t);
    commit(
        &stores,
        [
            Change::InsertUser(new.clone()),
            Change::InsertToken(verify.clone()),
            Change::Enqueue(welcome.clone()),
            Change::Record(registered.clone()),
        ],
    )
    .await;

    let user = stored(&stores, new.id).await;
    assert_eq!(user, new.into_user());
    assert!(!user.email_verified, "a new user is unverified");
    assert_eq!(
        stores
            .tokens()
            .find(&verify.digest)
            .await
            .expect("find works"),
        Some(verify)
    );
    let queued = stores
        .outbox()
        .list(Some(MailStatus::Pending), 10)
        .await
        .expect("listing works");
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].mail, welcome);
    assert_eq!(queued[0].next_attempt_at, welcome.created_at, "due at once");
    assert_eq!(
        stores
            .audit()
            .recent_for_user(user.id, &EventPage::newest(10))
            .await
            .expect("listing works"),
        [registered]
    );
}

/// Of 20 concurrent works spending one token, exactly one is applied; the others are
/// refused as spent.
pub async fn concurrent_commits_spend_a_token_exactly_once(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let t = now();
    let (_, reset) = token(
        ada.id,
        &ada.email,
        Purpose::PasswordReset,
        t,
        Duration::hours(1),
    );
    commit(&stores, [Change::InsertToken(reset.clone())]).await;

    let attempts = (0..20).map(|i| {
        let stores = stores.clone();
        let work = Work::new()
            .then(Change::ConsumeToken {
                digest: reset.digest.clone(),
                purpose: Purpose::PasswordReset,
                now: t,
            })
            .then(Change::SetPassword {
                user: ada.id,
                hash: hash(&format!("reset-{i}")),
            })
            .then(Change::EndSessions { user: ada.id })
            .then(Change::Enqueue(mail("ada@example.com", t)))
            .then(Change::Record(event(
                EventKind::PasswordReset,
                Some(ada.id),
                t,
            )));
        tokio::spawn(async move { stores.commit(work).await })
    });
    let mut applied = 0;
    for attempt in futures::future::join_all(attempts).await {
        match attempt.expect("no commit panicked") {
            Ok(()) => applied += 1,
            Err(CommitError::Refused(Refusal::TokenSpent)) => {}
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(
        stores
            .tokens()
            .find(&reset.digest)
            .await
            .expect("find works"),
        None
    );
    assert_eq!(stores.outbox().pending().await.expect("count works"), 1);
}

/// A token is spent only for its own purpose and while it lives.
pub async fn a_token_of_another_purpose_or_expired_is_spent(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let t = now();
    let (_, reset) = token(
        ada.id,
        &ada.email,
        Purpose::PasswordReset,
        t,
        Duration::hours(1),
    );
    commit(&stores, [Change::InsertToken(reset.clone())]).await;
    let consume = |purpose, now| Change::ConsumeToken {
        digest: reset.digest.clone(),
        purpose,
        now,
    };

    assert_eq!(
        refused(&stores, [consume(Purpose::EmailChange, t)]).await,
        Refusal::TokenSpent
    );
    assert_eq!(
        refused(&stores, [consume(Purpose::PasswordReset, reset.expires_at)]).await,
        Refusal::TokenSpent,
        "expired at its expiry"
    );
    assert!(stores
        .tokens()
        .find(&reset.digest)
        .await
        .expect("find works")
        .is_some());
    commit(
        &stores,
        [consume(
            Purpose::PasswordReset,
            reset.expires_at - Duration::microseconds(1),
        )],
    )
    .await;
    assert_eq!(
        refused(&stores, [consume(Purpose::PasswordReset, t)]).await,
        Refusal::TokenSpent,
        "once"
    );
}

/// A new address taken by another account is refused, and so is a change from an address
/// the user no longer has; a change that goes through is verified, and a default username
/// follows the address.
pub async fn setting_an_email_is_refused_when_taken_or_stale_and_verifies_it(stores: impl Stores) {
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    let chosen = stores
        .users()
        .insert(new_user("alan@example.com", "alan_t"))
        .await
        .expect("insert works");
    let email = |text: &str| Email::parse(text).expect("valid");

    assert_eq!(
        refused(
            &stores,
            [Change::SetEmail {
                user: ada.id,
                from: ada.email.clone(),
                to: grace.email.clone(),
            }],
        )
        .await,
        Refusal::EmailTaken
    );
    assert_eq!(
        refused(
            &stores,
            [Change::SetEmail {
                user: ada.id,
                from: email("ada@elsewhere.example"),
                to: email("ada@new.example"),
            }],
        )
        .await,
        Refusal::Stale
    );
    assert_eq!(stored(&stores, ada.id).await, ada, "unchanged");

    commit(
        &stores,
        [
            Change::SetEmail {
                user: ada.id,
                from: ada.email.clone(),
                to: email("ada@new.example"),
            },
            Change::SetEmail {
                user: chosen.id,
                from: chosen.email.clone(),
                to: email("alan@new.example"),
            },
        ],
    )
    .await;
    let moved = stored(&stores, ada.id).await;
    assert_eq!(moved.email.as_str(), "ada@new.example");
    assert_eq!(
        moved.username.as_str(),
        "ada@new.example",
        "the default follows"
    );
    assert!(moved.email_verified);
    let users = stores.users();
    assert_eq!(
        users.find_by_email(&ada.email).await.expect("lookup works"),
        None,
        "the old address is free"
    );
    let alan = stored(&stores, chosen.id).await;
    assert_eq!(alan.username.as_str(), "alan_t", "a chosen username stays");
    assert_eq!(alan.email.as_str(), "alan@new.example");
}

/// `email_verified` reads back through the users and through a loaded session's owner,
/// which follows the address too; a verification for an address the user no longer has
/// is stale.
pub async fn email_verified_reads_back_through_users_and_a_sessions_owner<S: Stores>(stores: S)
where
    S::Sessions: SessionStore,
{
    let ada = user(&stores, "ada@example.com").await;
    let session = session_of(&stores, &ada).await;
    assert_eq!(owner(&stores, &session).await, Some(Owner::of(&ada)));

    assert_eq!(
        refused(
            &stores,
            [Change::MarkEmailVerified {
                user: ada.id,
                email: Email::parse("ada@elsewhere.example").expect("valid"),
            }],
        )
        .await,
        Refusal::Stale
    );
    assert!(!stored(&stores, ada.id).await.email_verified);

    commit(
        &stores,
        [Change::MarkEmailVerified {
            user: ada.id,
            email: ada.email.clone(),
        }],
    )
    .await;
    let verified = stored(&stores, ada.id).await;
    assert!(verified.email_verified);
    let loaded = owner(&stores, &session).await.expect("still an owner");
    assert!(loaded.email_verified);
    assert_eq!(loaded, Owner::of(&verified));

    let new = Email::parse("ada@new.example").expect("valid");
    commit(
        &stores,
        [Change::SetEmail {
            user: ada.id,
            from: ada.email.clone(),
            to: new.clone(),
        }],
    )
    .await;
    let loaded = owner(&stores, &session).await.expect("still an owner");
    assert_eq!(loaded.email(), new);
    assert_eq!(loaded, Owner::of(&stored(&stores, ada.id).await));
}

/// A password set by a work ends every login made with the old one, at once.
pub async fn a_password_set_by_a_work_ends_the_older_logins<S: Stores>(stores: S)
where
    S::Sessions: SessionStore,
{
    let ada = user(&stores, "ada@example.com").await;
    let session = session_of(&stores, &ada).await;
    let login = auth_domain::session::Login::read(&session.data).expect("logged in");
    assert!(owner(&stores, &session)
        .await
        .expect("an owner")
        .owns(&login));

    let new = hash("new");
    commit(
        &stores,
        [Change::SetPassword {
            user: ada.id,
            hash: new.clone(),
        }],
    )
    .await;
    assert_eq!(stored(&stores, ada.id).await.password_hash, new);
    let loaded = owner(&stores, &session).await.expect("an owner");
    assert_eq!(loaded.credential, Credential::of(&new));
    assert!(!loaded.owns(&login), "the old login is over");
}

/// Every guard refuses what is not there (any more): an unknown user, a hash changed
/// meanwhile, a session that is not the user's, an email or username taken.
pub async fn guards_refuse_what_is_gone_or_taken<S: Stores>(stores: S)
where
    S::Sessions: SessionStore,
{
    let ada = user(&stores, "ada@example.com").await;
    let grace = user(&stores, "grace@example.com").await;
    stores
        .users()
        .insert(new_user("lovelace@example.com", "ada_l"))
        .await
        .expect("insert works");
    let nobody = UserId::generate();
    let session = session_of(&stores, &grace).await;
    let handle = stores
        .sessions()
        .list_user_sessions(grace.id)
        .await
        .expect("listing works")
        .remove(0)
        .handle;

    for (change, expected) in [
        (
            Change::SetPassword {
                user: nobody,
                hash: hash("x"),
            },
            Refusal::Stale,
        ),
        (
            Change::ReplacePassword {
                user: ada.id,
                current: hash("not-the-current-one"),
                new: hash("x"),
            },
            Refusal::Stale,
        ),
        (Change::DeleteUser { user: nobody }, Refusal::Stale),
        (
            Change::EndSession {
                user: ada.id,
                handle: handle.clone(),
            },
            Refusal::Stale,
        ),
        (
            Change::EndSession {
                user: grace.id,
                handle: SessionHandle::from_trusted("0".repeat(64)),
            },
            Refusal::Stale,
        ),
        (
            Change::InsertUser(new_user_with_default_username("ada@example.com")),
            Refusal::EmailTaken,
        ),
        (
            Change::InsertUser(new_user("alan@example.com", "ada_l")),
            Refusal::UsernameTaken,
        ),
        (
            Change::MarkEmailVerified {
                user: nobody,
                email: ada.email.clone(),
            },
            Refusal::Stale,
        ),
    ] {
        let name = change.name();
        assert_eq!(refused(&stores, [change]).await, expected, "{name}");
    }
    assert_eq!(stored(&stores, ada.id).await, ada);
    assert!(
        owner(&stores, &session).await.is_some(),
        "grace's session lives"
    );

    commit(
        &stores,
        [
            Change::ReplacePassword {
                user: ada.id,
                current: ada.password_hash.clone(),
                new: hash("replaced"),
            },
            Change::EndSession {
                user: grace.id,
                handle,
            },
            Change::DeleteUser { user: ada.id },
        ],
    )
    .await;
    assert_eq!(
        stores
            .users()
            .find_by_id(ada.id)
            .await
            .expect("lookup works"),
        None
    );
    assert_eq!(
        stores
            .sessions()
            .load_owned(&session.id.to_string())
            .await
            .expect("load works"),
        None
    );
}

/// With transactions (SQL, memory): a work whose last change is refused leaves nothing
/// of the changes before it.
pub async fn a_refused_work_leaves_nothing_of_its_earlier_changes<S: Stores>(stores: S)
where
    S::Sessions: SessionStore,
{
    let ada = user(&stores, "ada@example.com").await;
    let session = session_of(&stores, &ada).await;
    let t = now();
    let (_, kept) = token(
        ada.id,
        &ada.email,
        Purpose::PasswordReset,
        t,
        Duration::hours(1),
    );
    commit(&stores, [Change::InsertToken(kept.clone())]).await;
    let (_, fresh) = token(
        ada.id,
        &ada.email,
        Purpose::EmailVerification,
        t,
        Duration::hours(1),
    );
    let (_, unknown) = token(
        ada.id,
        &ada.email,
        Purpose::PasswordReset,
        t,
        Duration::hours(1),
    );

    let refusal = refused(
        &stores,
        [
            Change::InsertUser(new_user_with_default_username("grace@example.com")),
            Change::SetPassword {
                user: ada.id,
                hash: hash("new"),
            },
            Change::MarkEmailVerified {
                user: ada.id,
                email: ada.email.clone(),
            },
            Change::EndSessions { user: ada.id },
            Change::VoidTokens {
                user: ada.id,
                purpose: None,
            },
            Change::InsertToken(fresh.clone()),
            Change::Enqueue(mail("ada@example.com", t)),
            Change::Record(event(EventKind::PasswordReset, Some(ada.id), t)),
            Change::ConsumeToken {
                digest: unknown.digest,
                purpose: Purpose::PasswordReset,
                now: t,
            },
        ],
    )
    .await;
    assert_eq!(refusal, Refusal::TokenSpent);

    assert_eq!(
        stored(&stores, ada.id).await,
        ada,
        "password and verification as they were"
    );
    assert_eq!(
        stores
            .users()
            .find_by_email(&Email::parse("grace@example.com").expect("valid"))
            .await
            .expect("lookup works"),
        None
    );
    assert_eq!(
        owner(&stores, &session).await,
        Some(Owner::of(&ada)),
        "the session lives"
    );
    assert!(stores
        .tokens()
        .find(&kept.digest)
        .await
        .expect("find works")
        .is_some());
    assert_eq!(
        stores
            .tokens()
            .find(&fresh.digest)
            .await
            .expect("find works"),
        None
    );
    assert!(stores
        .outbox()
        .list(None, 10)
        .await
        .expect("listing works")
        .is_empty());
    assert!(stores
        .audit()
        .recent_for_user(ada.id, &EventPage::newest(10))
        .await
        .expect("listing works")
        .is_empty());
}
