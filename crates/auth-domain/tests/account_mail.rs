//! The mail use cases over the in-memory stores, on an adjustable clock: what each writes
//! to the outbox, what a token allows and how often, and the limits, sequentially and in
//! bursts. The stores' own conformance (SQL transactions, MongoDB) is tested with them.

use std::{net::IpAddr, sync::Arc, time::Duration};

use auth_domain::{
    account_mail::{
        ChangeEmailError, EmailVerification, MailSettings, ResendError, ResetPasswordError,
        VerifyEmailError, EMAIL_CHANGES_PER_WINDOW,
    },
    accounts::{Accounts, Context},
    audit::{AuditLog, EventKind, EventPage},
    clock::Clock,
    digest::DigestKeys,
    mail::{MailKind, OutboxEntry},
    session::Device,
    throttle::{ThrottleLimits, RESET_REQUESTS_PER_ACCOUNT, RESET_REQUESTS_PER_ADDRESS},
    tokens::TokenKey,
    Email, HashingConfig, Password, PasswordHasher, PasswordPolicy, Registration, Stores, User,
    UserRepository,
};
use auth_testkit::memory_stores::MemoryStores;

const PASSWORD: &str = "velvet-otter-harbour";
const NEW_PASSWORD: &str = "quiet-lantern-meadow";

struct World {
    accounts: Accounts<MemoryStores>,
    stores: MemoryStores,
    clock: Clock,
}

fn world(verification: EmailVerification) -> World {
    let clock = Clock::adjustable();
    let stores = MemoryStores::new(clock.clone());
    let accounts = accounts_over(&stores, &clock, verification, TokenKey::new(&[7; 32]));
    World {
        accounts,
        stores,
        clock,
    }
}

/// The use cases over `stores`, digesting tokens under `token_key`.
fn accounts_over(
    stores: &MemoryStores,
    clock: &Clock,
    verification: EmailVerification,
    token_key: TokenKey,
) -> Accounts<MemoryStores> {
    let hasher = PasswordHasher::new(&HashingConfig {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
        max_concurrent: 4,
    })
    .expect("valid parameters");
    let mut mail = MailSettings::new("https://auth.example.test", token_key);
    mail.verification = verification;
    Accounts::new(
        stores.clone(),
        hasher,
        PasswordPolicy::default(),
        ThrottleLimits::default(),
        DigestKeys::new(&[1; 32], &[[2; 32]]),
        clock.clone(),
        mail,
    )
}

fn client() -> Context {
    let ip: IpAddr = "192.0.2.7".parse().expect("an address");
    Context::user(Device::new(Some("test"), Some(ip)), Some("req-1".into()))
}

fn email(raw: &str) -> Email {
    Email::parse(raw).expect("an address")
}

impl World {
    async fn register(&self, address: &str) -> User {
        self.accounts
            .register(
                Registration {
                    email: address.to_owned(),
                    password: Password::new(PASSWORD),
                    username: None,
                },
                &client(),
            )
            .await
            .expect("registered")
    }

    /// The mails of `kind` to `address` in the outbox, their bodies opened.
    fn mails_to(&self, address: &str, kind: MailKind) -> Vec<OutboxEntry> {
        let seal = &self.accounts.mail_settings().seal;
        self.stores
            .outbox()
            .entries()
            .into_iter()
            .filter(|entry| entry.mail.to.as_str() == address && entry.mail.kind == kind)
            .map(|mut entry| {
                assert!(
                    !entry.mail.body.contains("token="),
                    "a body is stored sealed"
                );
                entry.mail.body = seal.open(&entry.mail.body).expect("opens");
                entry
            })
            .collect()
    }

    /// The token of the last mail of `kind` to `address`.
    fn token(&self, address: &str, kind: MailKind) -> String {
        let mails = self.mails_to(address, kind);
        let body = &mails.last().expect("a mail").mail.body;
        let start = body.find("#token=").expect("a link") + "#token=".len();
        body[start..start + 43].to_owned()
    }

    /// Waits for the queued forgotten-password requests to be handled: `count` reset mails
    /// to `address`, or the last count after a while.
    async fn reset_mails(&self, address: &str, count: usize) -> usize {
        for _ in 0..200 {
            if self.mails_to(address, MailKind::PasswordReset).len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.mails_to(address, MailKind::PasswordReset).len()
    }

    async fn user(&self, address: &str) -> User {
        self.stores
            .users()
            .find_by_email(&email(address))
            .await
            .expect("read")
            .expect("a user")
    }

    async fn events(&self, user: &User) -> Vec<EventKind> {
        self.stores
            .audit()
            .recent_for_user(user.id, &EventPage::newest(100))
            .await
            .expect("read")
            .into_iter()
            .map(|event| event.kind)
            .collect()
    }
}

#[tokio::test]
async fn registration_mails_a_link_that_verifies_the_address_once() {
    let w = world(EmailVerification::Optional);
    let ada = w.register("ada@example.com").await;
    assert!(!ada.email_verified);
    let token = w.token("ada@example.com", MailKind::EmailVerification);
    let verified = w
        .accounts
        .verify_email(&token, &client())
        .await
        .expect("verified");
    assert_eq!(verified.email, ada.email);
    assert!(!verified.changed);
    assert!(w.user("ada@example.com").await.email_verified);
    assert!(matches!(
        w.accounts.verify_email(&token, &client()).await,
        Err(VerifyEmailError::InvalidToken)
    ));
    let events = w.events(&ada).await;
    assert!(events.contains(&EventKind::EmailVerificationSent));
    assert!(events.contains(&EventKind::EmailVerified));
}

#[tokio::test]
async fn with_verification_off_registration_mails_nothing() {
    let w = world(EmailVerification::Off);
    let ada = w.register("ada@example.com").await;
    assert!(w.stores.outbox().is_empty());
    assert!(matches!(
        w.accounts.resend_verification(ada.id, &client()).await,
        Err(ResendError::Off)
    ));
}

#[tokio::test]
async fn forgot_answers_alike_and_mails_only_a_known_address() {
    let w = world(EmailVerification::Off);
    w.register("ada@example.com").await;
    w.accounts
        .forgot_password("ada@example.com", &client())
        .expect("accepted");
    w.accounts
        .forgot_password("nobody@example.com", &client())
        .expect("accepted alike");
    assert_eq!(w.reset_mails("ada@example.com", 1).await, 1);
    // The unknown address was queued first... or after: give it as long.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(w
        .mails_to("nobody@example.com", MailKind::PasswordReset)
        .is_empty());
    assert_eq!(w.stores.outbox().len(), 1);
    assert!(w
        .accounts
        .forgot_password("not an address", &client())
        .is_err());
}

#[tokio::test]
async fn a_reset_token_works_once_ends_sessions_and_mails_a_notice() {
    let w = world(EmailVerification::Off);
    let ada = w.register("ada@example.com").await;
    w.accounts
        .forgot_password("ada@example.com", &client())
        .expect("accepted");
    assert_eq!(w.reset_mails("ada@example.com", 1).await, 1);
    let token = w.token("ada@example.com", MailKind::PasswordReset);
    let weak = w
        .accounts
        .reset_password(&token, &Password::new("short"), &client())
        .await;
    assert!(
        matches!(weak, Err(ResetPasswordError::Invalid(_))),
        "the policy applies"
    );
    w.accounts
        .reset_password(&token, &Password::new(NEW_PASSWORD), &client())
        .await
        .expect("reset");
    assert!(matches!(
        w.accounts
            .reset_password(&token, &Password::new(NEW_PASSWORD), &client())
            .await,
        Err(ResetPasswordError::InvalidToken)
    ));
    let after = w.user("ada@example.com").await;
    assert_ne!(after.password_hash, ada.password_hash);
    assert!(after.email_verified, "the link proved the address");
    w.accounts
        .service()
        .authenticate("ada@example.com", &Password::new(NEW_PASSWORD))
        .await
        .expect("the new password works");
    assert_eq!(
        w.mails_to("ada@example.com", MailKind::PasswordChanged)
            .len(),
        1
    );
    assert!(w.events(&ada).await.contains(&EventKind::PasswordReset));
}

#[tokio::test]
async fn a_reset_token_expires_and_a_newer_one_voids_it() {
    let w = world(EmailVerification::Off);
    w.register("ada@example.com").await;
    w.accounts
        .forgot_password("ada@example.com", &client())
        .expect("accepted");
    assert_eq!(w.reset_mails("ada@example.com", 1).await, 1);
    let first = w.token("ada@example.com", MailKind::PasswordReset);
    w.accounts
        .forgot_password("ada@example.com", &client())
        .expect("accepted");
    assert_eq!(w.reset_mails("ada@example.com", 2).await, 2);
    let second = w.token("ada@example.com", MailKind::PasswordReset);
    assert_ne!(first, second);
    assert!(matches!(
        w.accounts
            .reset_password(&first, &Password::new(NEW_PASSWORD), &client())
            .await,
        Err(ResetPasswordError::InvalidToken)
    ));
    w.clock.advance(Duration::from_secs(3_601));
    assert!(matches!(
        w.accounts
            .reset_password(&second, &Password::new(NEW_PASSWORD), &client())
            .await,
        Err(ResetPasswordError::InvalidToken)
    ));
}

#[tokio::test]
async fn forgot_requests_past_the_limit_answer_alike_and_mail_nothing() {
    let w = world(EmailVerification::Off);
    w.register("ada@example.com").await;
    for _ in 0..RESET_REQUESTS_PER_ACCOUNT + 3 {
        w.accounts
            .forgot_password("ada@example.com", &client())
            .expect("accepted");
    }
    let limit = usize::try_from(RESET_REQUESTS_PER_ACCOUNT).expect("small");
    assert_eq!(w.reset_mails("ada@example.com", limit + 1).await, limit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_resets_with_one_token_succeed_once() {
    let w = world(EmailVerification::Off);
    w.register("ada@example.com").await;
    w.accounts
        .forgot_password("ada@example.com", &client())
        .expect("accepted");
    assert_eq!(w.reset_mails("ada@example.com", 1).await, 1);
    let token = Arc::new(w.token("ada@example.com", MailKind::PasswordReset));
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let (accounts, token) = (w.accounts.clone(), Arc::clone(&token));
            tokio::spawn(async move {
                accounts
                    .reset_password(&token, &Password::new(NEW_PASSWORD), &client())
                    .await
            })
        })
        .collect();
    let mut succeeded = 0;
    for attempt in attempts {
        match attempt.await.expect("ran") {
            Ok(_) => succeeded += 1,
            Err(ResetPasswordError::InvalidToken) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(succeeded, 1);
    assert_eq!(
        w.mails_to("ada@example.com", MailKind::PasswordChanged)
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resend_waits_for_its_cooldown_even_in_a_burst() {
    let w = world(EmailVerification::Required);
    let ada = w.register("ada@example.com").await;
    let burst: Vec<_> = (0..10)
        .map(|_| {
            let accounts = w.accounts.clone();
            tokio::spawn(async move { accounts.resend_verification(ada.id, &client()).await })
        })
        .collect();
    let mut sent = 0;
    for resend in burst {
        match resend.await.expect("ran") {
            Ok(()) => sent += 1,
            Err(ResendError::Throttled(throttled)) => {
                // Counted from the oldest attempt in the window, which in a burst may be
                // this refused one itself: a cooldown and at most a moment more.
                assert!(throttled.retry_after <= time::Duration::seconds(61));
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    // At most one: each attempt is counted before it is judged, so a burst may also see
    // every attempt refuse every other, and none passes; refused ones leave no trace,
    // so the next one alone goes through.
    assert!(sent <= 1, "{sent} resends in one cooldown");
    if sent == 0 {
        w.accounts
            .resend_verification(ada.id, &client())
            .await
            .expect("a resend alone, after a burst that all refused");
    }
    assert_eq!(
        w.mails_to("ada@example.com", MailKind::EmailVerification)
            .len(),
        2,
        "the registration's and one resend"
    );
    w.clock.advance(Duration::from_secs(61));
    w.accounts
        .resend_verification(ada.id, &client())
        .await
        .expect("after the cooldown");
    // Only the newest link works.
    let newest = w.token("ada@example.com", MailKind::EmailVerification);
    let first = &w.mails_to("ada@example.com", MailKind::EmailVerification)[0];
    let start = first.mail.body.find("#token=").expect("a link") + 7;
    let oldest = first.mail.body[start..start + 43].to_owned();
    assert!(w.accounts.verify_email(&oldest, &client()).await.is_err());
    w.accounts
        .verify_email(&newest, &client())
        .await
        .expect("verified");
    assert!(matches!(
        w.accounts.resend_verification(ada.id, &client()).await,
        Err(ResendError::AlreadyVerified)
    ));
}

#[tokio::test]
async fn an_email_change_needs_the_password_and_the_new_address_link() {
    let w = world(EmailVerification::Off);
    let ada = w.register("ada@example.com").await;
    let wrong = w
        .accounts
        .request_email_change(
            ada.id,
            "ada@new.example",
            &Password::new("not-it-at-all"),
            &client(),
        )
        .await;
    assert!(matches!(wrong, Err(ChangeEmailError::Invalid(_))));
    assert!(w.stores.outbox().is_empty());
    // A reset link sent to the old address dies with it.
    w.accounts
        .forgot_password("ada@example.com", &client())
        .expect("accepted");
    assert_eq!(w.reset_mails("ada@example.com", 1).await, 1);
    let reset = w.token("ada@example.com", MailKind::PasswordReset);
    w.accounts
        .request_email_change(
            ada.id,
            "Ada@New.example",
            &Password::new(PASSWORD),
            &client(),
        )
        .await
        .expect("started");
    assert_eq!(
        w.mails_to("ada@example.com", MailKind::EmailChangeNotice)
            .len(),
        1,
        "the old address hears at once"
    );
    assert_eq!(
        w.user("ada@example.com").await.id,
        ada.id,
        "pending until confirmed"
    );
    let token = w.token("ada@new.example", MailKind::EmailChange);
    let verified = w
        .accounts
        .verify_email(&token, &client())
        .await
        .expect("confirmed");
    assert!(verified.changed);
    let moved = w.user("ada@new.example").await;
    assert_eq!(moved.id, ada.id);
    assert!(moved.email_verified);
    assert!(w
        .stores
        .users()
        .find_by_email(&email("ada@example.com"))
        .await
        .expect("read")
        .is_none());
    assert!(matches!(
        w.accounts
            .reset_password(&reset, &Password::new(NEW_PASSWORD), &client())
            .await,
        Err(ResetPasswordError::InvalidToken)
    ));
    assert!(w.events(&ada).await.contains(&EventKind::EmailChanged));
}

#[tokio::test]
async fn a_taken_address_answers_alike_and_warns_its_owner() {
    let w = world(EmailVerification::Off);
    let ada = w.register("ada@example.com").await;
    w.register("bob@example.com").await;
    w.accounts
        .request_email_change(
            ada.id,
            "bob@example.com",
            &Password::new(PASSWORD),
            &client(),
        )
        .await
        .expect("answered as a free one");
    assert!(w
        .mails_to("bob@example.com", MailKind::EmailChange)
        .is_empty());
    assert_eq!(w.mails_to("bob@example.com", MailKind::EmailInUse).len(), 1);
    assert_eq!(
        w.mails_to("ada@example.com", MailKind::EmailChangeNotice)
            .len(),
        1
    );
}

#[tokio::test]
async fn a_link_mailed_before_a_key_rotation_works_while_the_old_key_is_a_fallback() {
    let w = world(EmailVerification::Off);
    w.register("ada@example.com").await;
    w.accounts
        .forgot_password("ada@example.com", &client())
        .expect("accepted");
    assert_eq!(w.reset_mails("ada@example.com", 1).await, 1);
    let token = w.token("ada@example.com", MailKind::PasswordReset);
    let off = EmailVerification::Off;
    let rotated_away = accounts_over(&w.stores, &w.clock, off, TokenKey::new(&[8; 32]));
    assert!(matches!(
        rotated_away
            .reset_password(&token, &Password::new(NEW_PASSWORD), &client())
            .await,
        Err(ResetPasswordError::InvalidToken)
    ));
    let rotated = TokenKey::with_fallbacks(&[8; 32], &[[7; 32]]);
    accounts_over(&w.stores, &w.clock, off, rotated)
        .reset_password(&token, &Password::new(NEW_PASSWORD), &client())
        .await
        .expect("found under the fallback key");
}

#[tokio::test]
async fn one_client_gets_at_most_its_limit_of_reset_mails_across_addresses() {
    let w = world(EmailVerification::Off);
    let limit = usize::try_from(RESET_REQUESTS_PER_ADDRESS).expect("small");
    let addresses: Vec<String> = (0..limit + 5)
        .map(|i| format!("user{i}@example.com"))
        .collect();
    // By an operator: a client's registrations are limited too.
    for address in &addresses {
        w.accounts
            .register(
                Registration {
                    email: address.clone(),
                    password: Password::new(PASSWORD),
                    username: None,
                },
                &Context::admin(),
            )
            .await
            .expect("registered");
    }
    for address in &addresses {
        w.accounts
            .forgot_password(address, &client())
            .expect("accepted");
    }
    // Handled one after the other: the last one's turn has come once its answer is known.
    let last = addresses.last().expect("some");
    w.reset_mails(last, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        w.stores.outbox().len(),
        limit,
        "one client, {limit} mails an hour"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn email_changes_are_limited_per_user_even_in_a_burst() {
    let w = world(EmailVerification::Off);
    let ada = w.register("ada@example.com").await;
    let burst: Vec<_> = (0..15)
        .map(|i| {
            let accounts = w.accounts.clone();
            tokio::spawn(async move {
                accounts
                    .request_email_change(
                        ada.id,
                        &format!("ada{i}@new.example"),
                        &Password::new(PASSWORD),
                        &client(),
                    )
                    .await
            })
        })
        .collect();
    let mut started = 0;
    for request in burst {
        match request.await.expect("ran") {
            Ok(()) => started += 1,
            Err(ChangeEmailError::Throttled(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        started <= EMAIL_CHANGES_PER_WINDOW,
        "{started} in one window"
    );
    // One at a time, the rest of the window's budget, and not one more.
    let mut next = 100;
    loop {
        next += 1;
        match w
            .accounts
            .request_email_change(
                ada.id,
                &format!("ada{next}@new.example"),
                &Password::new(PASSWORD),
                &client(),
            )
            .await
        {
            Ok(()) => started += 1,
            Err(ChangeEmailError::Throttled(_)) => break,
            Err(other) => panic!("unexpected {other:?}"),
        }
        assert!(next < 200, "never throttled");
    }
    assert_eq!(started, EMAIL_CHANGES_PER_WINDOW);
}
