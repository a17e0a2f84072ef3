//! The admin commands against the in-memory stores: what each prints, and how each fails.

use auth_domain::{
    account_mail::MailSettings,
    accounts::Accounts,
    admin::Administration as _,
    audit::{Actor, AuditLog as _, EventKind, EventPage},
    clock::Clock,
    digest::DigestKeys,
    mail::{MailStatus, Outbox as _},
    session::{Login, SessionHandle},
    throttle::ThrottleLimits,
    tokens::TokenKey,
    HashingConfig, Password, PasswordHasher, PasswordPolicy, Stores as _, UserId, UserSessions,
};
use auth_testkit::memory_stores::MemoryStores;
use serde_json::Value;
use tower_sessions::{session::Record, SessionStore};

use super::{commands::Admin, render::render, *};

type Memory = Admin<MemoryStores>;

fn stores() -> Memory {
    let hasher = PasswordHasher::new(&HashingConfig {
        memory_kib: 1024,
        iterations: 1,
        ..HashingConfig::default()
    })
    .expect("valid parameters");
    Admin::new(Accounts::new(
        MemoryStores::default(),
        hasher,
        PasswordPolicy::default(),
        ThrottleLimits::default(),
        DigestKeys::new(&[1; 32], &[[2; 32]]),
        Clock::system(),
        MailSettings::new("http://127.0.0.1:5000", TokenKey::new(&[3; 32])),
    ))
}

async fn users(stores: &Memory, command: UsersCommand, password: &str) -> anyhow::Result<Value> {
    let mut source = |_: &str| Ok(Password::new(password));
    let output = stores.users(command, &mut source).await?;
    Ok(serde_json::from_str(&render(&output, true)).expect("one JSON document"))
}

async fn create(stores: &Memory, email: &str) -> Value {
    users(
        stores,
        UsersCommand::Create {
            email: email.to_owned(),
            username: None,
        },
        "velvet-otter-harbour",
    )
    .await
    .expect("created")
}

/// A session of `user`, stored as a login stores it.
async fn log_in(stores: &Memory, user: &str) -> Record {
    let user = stores
        .accounts()
        .service()
        .get_user(user.parse::<UserId>().expect("an id"))
        .await
        .expect("lookup works")
        .expect("exists");
    let mut record = Record {
        id: Default::default(),
        data: Default::default(),
        expiry_date: Clock::system().now() + time::Duration::hours(1),
    };
    Login::new(&user, Clock::system().now()).write(&mut record.data);
    stores
        .accounts()
        .stores()
        .sessions()
        .create(&mut record)
        .await
        .expect("stored");
    record
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

#[tokio::test]
async fn a_created_user_is_shown_by_id_email_or_username_without_a_hash() {
    let stores = stores();
    let created = create(&stores, "Ada@Example.com").await;
    assert_eq!(created["email"], "ada@example.com");
    assert!(created.get("password_hash").is_none(), "{created}");
    for reference in [
        id(&created),
        "ADA@example.com ".into(),
        // The username, which defaults to the email address.
        created["username"].as_str().expect("a username").to_owned(),
    ] {
        let shown = users(&stores, UsersCommand::Show { user: reference }, "")
            .await
            .expect("found");
        assert_eq!(shown, created);
    }
    let listed = users(&stores, UsersCommand::List { limit: 10 }, "")
        .await
        .expect("listed");
    assert_eq!(listed, Value::Array(vec![created]));
}

#[tokio::test]
async fn a_password_the_policy_refuses_is_one_line_naming_the_rule() {
    let stores = stores();
    let error = users(
        &stores,
        UsersCommand::Create {
            email: "ada@example.com".into(),
            username: None,
        },
        "password",
    )
    .await
    .expect_err("too common");
    let line = crate::one_line(&error);
    assert!(line.starts_with("refused: password: "), "{line}");
    assert!(!line.contains('\n'));
    assert!(stores
        .accounts()
        .stores()
        .admin()
        .list_users(10)
        .await
        .expect("listed")
        .is_empty());
}

#[tokio::test]
async fn an_unknown_user_is_named_in_one_line() {
    let stores = stores();
    for command in [
        UsersCommand::Show {
            user: "nobody@example.com".into(),
        },
        UsersCommand::Delete {
            user: UserId::generate().to_string(),
        },
        UsersCommand::SetPassword {
            user: "nobody".into(),
        },
    ] {
        let error = users(&stores, command, "velvet-otter-harbour")
            .await
            .expect_err("unknown");
        assert!(
            crate::one_line(&error).starts_with("no such user: "),
            "{error:#}"
        );
    }
}

#[tokio::test]
async fn setting_a_password_ends_every_session_and_the_new_one_logs_in() {
    let stores = stores();
    let user = id(&create(&stores, "ada@example.com").await);
    let session = log_in(&stores, &user).await;
    let done = users(
        &stores,
        UsersCommand::SetPassword { user: user.clone() },
        "a-brand-new-passphrase",
    )
    .await
    .expect("set");
    assert_eq!(done["sessions_ended"], 1);
    assert_eq!(
        stores
            .accounts()
            .stores()
            .sessions()
            .load(&session.id)
            .await
            .expect("load"),
        None
    );
    stores
        .accounts()
        .service()
        .authenticate("ada@example.com", &Password::new("a-brand-new-passphrase"))
        .await
        .expect("the new password is the one on file");
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_by_handle_or_by_user() {
    let stores = stores();
    let ada = id(&create(&stores, "ada@example.com").await);
    let grace = id(&create(&stores, "grace@example.com").await);
    let first = log_in(&stores, &ada).await;
    log_in(&stores, &ada).await;
    let graces = log_in(&stores, &grace).await;

    let listed = render(
        &stores
            .sessions(SessionsCommand::List {
                user: None,
                limit: 10,
            })
            .await
            .expect("listed"),
        true,
    );
    let listed: Value = serde_json::from_str(&listed).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(3));
    let handle = SessionHandle::of_session_id(&first.id.to_string());
    assert!(listed
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["handle"] == handle.as_str() && s["user_id"] == ada.as_str()));

    stores
        .sessions(SessionsCommand::Revoke(RevokeArgs {
            handle: Some(handle.clone()),
            user: None,
        }))
        .await
        .expect("revoked");
    assert_eq!(
        stores
            .accounts()
            .stores()
            .sessions()
            .load(&first.id)
            .await
            .expect("load"),
        None
    );
    let again = stores
        .sessions(SessionsCommand::Revoke(RevokeArgs {
            handle: Some(handle),
            user: None,
        }))
        .await
        .expect_err("gone");
    assert!(crate::one_line(&again).starts_with("no live session with handle "));

    stores
        .sessions(SessionsCommand::Revoke(RevokeArgs {
            handle: None,
            user: Some("ada@example.com".into()),
        }))
        .await
        .expect("revoked");
    let ada_id: UserId = ada.parse().expect("an id");
    assert!(stores
        .accounts()
        .stores()
        .sessions()
        .list_user_sessions(ada_id)
        .await
        .expect("listed")
        .is_empty());
    assert!(stores
        .accounts()
        .stores()
        .sessions()
        .load(&graces.id)
        .await
        .expect("load")
        .is_some());
}

#[tokio::test]
async fn deleting_a_user_takes_their_sessions_with_them() {
    let stores = stores();
    let ada = id(&create(&stores, "ada@example.com").await);
    let session = log_in(&stores, &ada).await;
    let done = users(&stores, UsersCommand::Delete { user: ada.clone() }, "")
        .await
        .expect("deleted");
    assert_eq!(done["deleted"], ada.as_str());
    assert_eq!(done["sessions_ended"], 1);
    assert_eq!(
        stores
            .accounts()
            .stores()
            .sessions()
            .load(&session.id)
            .await
            .expect("load"),
        None
    );
    assert!(users(&stores, UsersCommand::Show { user: ada }, "")
        .await
        .is_err());
}

#[tokio::test]
async fn a_reset_to_a_password_the_policy_refuses_changes_nothing() {
    let stores = stores();
    let ada = id(&create(&stores, "ada@example.com").await);
    let session = log_in(&stores, &ada).await;
    let error = users(
        &stores,
        UsersCommand::SetPassword { user: ada },
        "ada@example.com",
    )
    .await
    .expect_err("the email itself is refused");
    assert!(
        crate::one_line(&error).starts_with("refused: password: "),
        "{error:#}"
    );
    assert!(stores
        .accounts()
        .stores()
        .sessions()
        .load(&session.id)
        .await
        .expect("load")
        .is_some());
    stores
        .accounts()
        .service()
        .authenticate("ada@example.com", &Password::new("velvet-otter-harbour"))
        .await
        .expect("the old password still holds");
}

#[tokio::test]
async fn every_admin_change_is_recorded_for_its_user_with_the_admin_as_actor() {
    let stores = stores();
    let ada = id(&create(&stores, "ada@example.com").await);
    let ada_id: UserId = ada.parse().expect("an id");
    let first = log_in(&stores, &ada).await;
    log_in(&stores, &ada).await;
    users(
        &stores,
        UsersCommand::SetPassword { user: ada.clone() },
        "a-brand-new-passphrase",
    )
    .await
    .expect("set");
    let handle = SessionHandle::of_session_id(&log_in(&stores, &ada).await.id.to_string());
    stores
        .sessions(SessionsCommand::Revoke(RevokeArgs {
            handle: Some(handle),
            user: None,
        }))
        .await
        .expect("revoked by handle");
    log_in(&stores, &ada).await;
    stores
        .sessions(SessionsCommand::Revoke(RevokeArgs {
            handle: None,
            user: Some(ada.clone()),
        }))
        .await
        .expect("revoked by user");
    users(&stores, UsersCommand::Delete { user: ada }, "")
        .await
        .expect("deleted");
    drop(first);

    let events = stores
        .accounts()
        .stores()
        .audit()
        .recent_for_user(ada_id, &EventPage::newest(10))
        .await
        .expect("listed");
    let seen: Vec<(EventKind, Actor)> = events
        .iter()
        .rev()
        .map(|event| (event.kind, event.actor))
        .collect();
    assert_eq!(
        seen,
        [
            (EventKind::Registered, Actor::Admin),
            // EMAIL_VERIFICATION=optional: an operator's new user is mailed a link too.
            (EventKind::EmailVerificationSent, Actor::Admin),
            (EventKind::PasswordChanged, Actor::Admin),
            (EventKind::SessionRevoked, Actor::Admin),
            (EventKind::SessionsRevoked, Actor::Admin),
            (EventKind::AccountDeleted, Actor::Admin),
        ]
    );
    assert!(events.iter().all(|event| event.request_id.is_none()
        && event.ip.is_none()
        && event.user_id == Some(ada_id)));
}

async fn mail(stores: &Memory, command: MailCommand) -> anyhow::Result<Value> {
    let output = stores.mail(command).await?;
    Ok(serde_json::from_str(&render(&output, true)).expect("one JSON document"))
}

async fn mail_of(stores: &Memory, status: Option<MailStatus>) -> Vec<Value> {
    let listed = mail(stores, MailCommand::List { status, limit: 10 })
        .await
        .expect("listed");
    listed.as_array().expect("a list").clone()
}

#[tokio::test]
async fn mail_is_listed_without_its_content_and_failed_mail_is_retried() {
    let stores = stores();
    create(&stores, "ada@example.com").await;
    let listed = mail_of(&stores, None).await;
    assert_eq!(listed.len(), 1, "the verification mail: {listed:?}");
    assert_eq!(listed[0]["kind"], "email_verification");
    assert_eq!(listed[0]["to"], "ada@example.com");
    assert_eq!(listed[0]["status"], "pending");
    let shown = format!("{listed:?}");
    assert!(
        !shown.contains("token") && !shown.contains("http"),
        "{shown}"
    );
    let id: uuid::Uuid = listed[0]["id"]
        .as_str()
        .expect("an id")
        .parse()
        .expect("a UUID");

    // Its last attempt fails.
    let outbox = stores.accounts().stores().outbox();
    let leased = outbox
        .lease_due(Clock::system().now(), time::Duration::minutes(5), 10)
        .await
        .expect("leased");
    assert_eq!(leased.len(), 1);
    assert!(outbox
        .mark_attempt_failed(&leased[0], "550 no such mailbox", None)
        .await
        .expect("settled"));
    let failed = mail_of(&stores, Some(MailStatus::Failed)).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["last_error"], "550 no such mailbox");
    assert!(mail_of(&stores, Some(MailStatus::Pending)).await.is_empty());

    let unknown = uuid::Uuid::now_v7();
    let error = mail(&stores, MailCommand::Retry { id: Some(unknown) })
        .await
        .expect_err("no such mail");
    assert_eq!(
        error.to_string(),
        format!("no failed mail with id {unknown}")
    );
    let retried = mail(&stores, MailCommand::Retry { id: Some(id) })
        .await
        .expect("retried");
    assert_eq!(retried["retried"], 1);
    let pending = mail_of(&stores, Some(MailStatus::Pending)).await;
    assert_eq!(
        (pending.len(), &pending[0]["attempts"]),
        (1, &Value::from(0))
    );
    let none = mail(&stores, MailCommand::Retry { id: None })
        .await
        .expect("nothing to retry");
    assert_eq!(none["retried"], 0);
}

#[tokio::test]
async fn reset_mfa_removes_every_factor_and_is_audited_as_the_admins() {
    let stores = stores();
    let ada = id(&create(&stores, "ada@example.com").await);
    let user: UserId = ada.parse().expect("an id");
    let accounts = stores.accounts();
    let email = auth_domain::Email::parse("ada@example.com").expect("an address");
    let context = auth_domain::accounts::Context::user(Default::default(), None);
    let enrolment = accounts.begin_totp(user, &email).await.expect("enrolled");
    let secret =
        auth_domain::mfa::totp::TotpSecret::from_base32(&enrolment.secret).expect("a secret");
    let codes = accounts
        .confirm_totp(
            user,
            &email,
            &secret.code_at(Clock::system().now()),
            &context,
        )
        .await
        .expect("confirmed")
        .expect("the first factor's codes");
    assert_eq!(codes.len(), 10);

    let done = users(&stores, UsersCommand::ResetMfa { user: ada.clone() }, "")
        .await
        .expect("reset");
    assert_eq!(done["user"], ada.as_str());
    assert_eq!(
        done["removed"],
        serde_json::json!({"totp": true, "passkeys": 0, "recovery_codes": 10})
    );
    let left = accounts.factors(user).await.expect("read");
    assert!(!left.has_second_factor());
    assert_eq!(left.recovery_codes, 0);
    let events = accounts
        .stores()
        .audit()
        .recent_for_user(user, &EventPage::newest(10))
        .await
        .expect("events");
    let reset = events
        .iter()
        .find(|event| event.kind == EventKind::FactorsReset)
        .expect("the reset is recorded");
    assert_eq!(reset.actor, Actor::Admin);
    // Nothing left to remove: done again, removing nothing.
    let again = users(&stores, UsersCommand::ResetMfa { user: ada }, "")
        .await
        .expect("reset again");
    assert_eq!(
        again["removed"],
        serde_json::json!({"totp": false, "passkeys": 0, "recovery_codes": 0})
    );
}
