//! The `AuthService` against the in-memory repository: registration, login, the dummy
//! verification for unknown users and the upgrade of outdated hashes. No database.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use auth_domain::{
    AuthService, AuthenticateError, ChangePasswordError, DeleteAccountError, Email, HashingConfig,
    InsertUserError, NewUser, Password, PasswordHash, PasswordHasher, PasswordPolicy,
    RegisterError, Registration, RepositoryError, User, UserId, UserRepository, Username,
    ValidationErrors,
};
use auth_testkit::memory::MemoryUserRepository;

const PASSWORD: &str = "velvet-otter-harbour";

/// Cheap argon2id: the tests check behaviour, not cost.
fn cheap() -> HashingConfig {
    HashingConfig {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
        max_concurrent: 2,
    }
}

fn hasher(config: HashingConfig) -> PasswordHasher {
    PasswordHasher::new(&config).expect("valid hashing parameters")
}

fn service_over<R: UserRepository>(repo: R) -> AuthService<R> {
    AuthService::new(repo, hasher(cheap()), PasswordPolicy::default())
}

/// A service, and a handle on what it stores.
fn service() -> (AuthService<MemoryUserRepository>, MemoryUserRepository) {
    let repo = MemoryUserRepository::default();
    (service_over(repo.clone()), repo)
}

fn registration(email: &str, password: &str, username: Option<&str>) -> Registration {
    Registration {
        email: email.to_owned(),
        password: Password::new(password),
        username: username.map(str::to_owned),
    }
}

async fn register<R: UserRepository>(
    service: &AuthService<R>,
    email: &str,
    username: Option<&str>,
) -> User {
    service
        .register(registration(email, PASSWORD, username))
        .await
        .expect("the registration succeeds")
}

async fn stored(repo: &MemoryUserRepository, email: &str) -> Option<User> {
    repo.find_by_email(&Email::parse(email).expect("a valid test email"))
        .await
        .expect("the memory store never fails")
}

/// The refused fields of an invalid registration, by name, or a panic saying what came
/// back instead.
fn invalid_fields(result: Result<User, RegisterError>) -> Vec<String> {
    match result {
        Err(RegisterError::Invalid(errors)) => field_names(&errors),
        other => panic!("expected a validation failure, got {other:?}"),
    }
}

// Registration

#[tokio::test]
async fn a_registration_is_stored_normalised_with_the_email_as_default_username() {
    let (service, repo) = service();
    let user = service
        .register(registration("  Ada.Lovelace@Example.COM ", PASSWORD, None))
        .await
        .expect("registered");
    assert_eq!(user.email.as_str(), "ada.lovelace@example.com");
    assert_eq!(user.username.as_str(), "ada.lovelace@example.com");
    assert_eq!(
        stored(&repo, "ada.lovelace@example.com").await,
        Some(user.clone())
    );
    assert_eq!(service.get_user(user.id).await.expect("lookup"), Some(user));
}

#[tokio::test]
async fn a_chosen_username_is_stored_normalised() {
    let (service, _) = service();
    let user = register(&service, "ada@example.com", Some("  Ada_L ")).await;
    assert_eq!(user.username.as_str(), "ada_l");
}

#[tokio::test]
async fn the_password_is_stored_only_as_an_argon2id_hash_with_the_configured_parameters() {
    let (service, _) = service();
    let user = register(&service, "ada@example.com", None).await;
    let hash = user.password_hash.as_str();
    assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
}

#[tokio::test]
async fn an_invalid_email_and_an_invalid_username_are_reported_together() {
    let (service, repo) = service();
    let result = service
        .register(registration("not an address", PASSWORD, Some("a b")))
        .await;
    assert_eq!(invalid_fields(result), ["email", "username"]);
    assert!(repo.is_empty());
}

/// Every invalid field is reported at once: a bad email does not hide a bad password.
#[tokio::test]
async fn an_invalid_email_username_and_password_are_all_reported_together() {
    let (service, repo) = service();
    let result = service
        .register(registration("not an address", "short", Some("a b")))
        .await;
    assert_eq!(invalid_fields(result), ["email", "password", "username"]);
    assert!(repo.is_empty());
}

#[tokio::test]
async fn an_invalid_password_alone_is_reported_under_its_field() {
    let (service, repo) = service();
    for password in ["short", "password1", &"x".repeat(129)] {
        let result = service
            .register(registration("ada@example.com", password, None))
            .await;
        assert_eq!(invalid_fields(result), ["password"], "{}", password.len());
    }
    assert!(repo.is_empty());
}

#[tokio::test]
async fn a_password_equal_to_the_email_is_refused_whatever_its_case() {
    let (service, repo) = service();
    for (email, password) in [
        ("ada.lovelace@example.com", "ada.lovelace@example.com"),
        (" Ada.Lovelace@Example.com", "ADA.LOVELACE@example.COM"),
    ] {
        let result = service
            .register(registration(email, password, Some("ada_l")))
            .await;
        assert_eq!(invalid_fields(result), ["password"]);
    }
    assert!(repo.is_empty());
}

#[tokio::test]
async fn a_password_equal_to_the_chosen_username_is_refused_whatever_its_case() {
    let (service, repo) = service();
    let result = service
        .register(registration(
            "ada@example.com",
            "Countess-Of-Lovelace",
            Some("countess-of-lovelace"),
        ))
        .await;
    assert_eq!(invalid_fields(result), ["password"]);
    assert!(repo.is_empty());
}

#[tokio::test]
async fn a_second_registration_of_an_email_in_another_case_is_email_taken() {
    let (service, repo) = service();
    register(&service, "ada@example.com", Some("ada_l")).await;
    let result = service
        .register(registration(
            " ADA@Example.com",
            PASSWORD,
            Some("other_name"),
        ))
        .await;
    assert!(
        matches!(result, Err(RegisterError::EmailTaken)),
        "{result:?}"
    );
    assert_eq!(repo.len(), 1);
}

#[tokio::test]
async fn a_second_registration_of_a_username_in_another_case_is_username_taken() {
    let (service, repo) = service();
    register(&service, "ada@example.com", Some("ada_l")).await;
    let result = service
        .register(registration("grace@example.com", PASSWORD, Some("ADA_L")))
        .await;
    assert!(
        matches!(result, Err(RegisterError::UsernameTaken)),
        "{result:?}"
    );
    assert_eq!(repo.len(), 1);
}

#[tokio::test]
async fn a_second_registration_with_the_default_username_is_email_taken() {
    let (service, _) = service();
    register(&service, "ada@example.com", None).await;
    let result = service
        .register(registration("ada@example.com", PASSWORD, None))
        .await;
    assert!(
        matches!(result, Err(RegisterError::EmailTaken)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_storage_failure_at_registration_is_unexpected_not_a_taken_field() {
    let service = service_over(Faulty::over(
        &MemoryUserRepository::default(),
        Fault::Everything,
    ));
    let result = service
        .register(registration("ada@example.com", PASSWORD, None))
        .await;
    assert!(
        matches!(result, Err(RegisterError::Unexpected(_))),
        "{result:?}"
    );
}

// Login

#[tokio::test]
async fn a_user_logs_in_with_the_email_in_any_case_or_with_the_username() {
    let (service, _) = service();
    let user = register(&service, "ada@example.com", Some("ada_l")).await;
    for login in ["ada@example.com", " ADA@Example.com ", "ada_l", "Ada_L"] {
        let found = service
            .authenticate(login, &Password::new(PASSWORD))
            .await
            .unwrap_or_else(|e| panic!("{login:?} was refused: {e:?}"));
        assert_eq!(found, user, "{login:?}");
    }
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_error() {
    let (service, _) = service();
    register(&service, "ada@example.com", Some("ada_l")).await;
    let attempts = [
        ("ada@example.com", "velvet-otter-harbouR"),
        ("ada_l", "not-the-password"),
        ("grace@example.com", PASSWORD),
        ("grace_h", PASSWORD),
        ("neither an address nor a name!", PASSWORD),
        ("", PASSWORD),
    ];
    for (login, password) in attempts {
        let result = service.authenticate(login, &Password::new(password)).await;
        assert!(
            matches!(result, Err(AuthenticateError::InvalidCredentials { .. })),
            "{login:?}: {result:?}"
        );
    }
}

/// What is observable without a clock: with one hashing permit and one blocking thread,
/// and that thread held busy, an unknown user's login takes the permit and cannot answer
/// until the blocking pool is freed, exactly as a wrong password's does. So its answer
/// waits on a verification off the runtime. What this cannot show is that the dummy
/// verification costs as much as a real one (the dummy hash is private to the hasher; its
/// parameters are the current ones by construction); that is the benchmark's business.
#[test]
fn an_unknown_user_waits_for_a_verification_just_as_a_wrong_password_does() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let repo = MemoryUserRepository::default();
        let hasher = hasher(HashingConfig {
            max_concurrent: 1,
            ..cheap()
        });
        // Clones share the permits; `Debug` is the only public view of them.
        let permits = hasher.clone();
        let permits_free = move || format!("{permits:?}").contains("available_permits: 1");
        let service = AuthService::new(repo, hasher, PasswordPolicy::default());
        register(&service, "ada@example.com", Some("ada_l")).await;

        for (login, password) in [
            ("ada@example.com", "not-the-password"),
            ("grace@example.com", PASSWORD),
            ("no such login!", PASSWORD),
        ] {
            assert!(permits_free());
            let (release, gate) = std::sync::mpsc::channel::<()>();
            let busy = tokio::task::spawn_blocking(move || gate.recv());
            let attempt = tokio::spawn({
                let service = service.clone();
                async move { service.authenticate(login, &Password::new(password)).await }
            });
            for _ in 0..1_000 {
                if !permits_free() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            assert!(!permits_free(), "{login:?} took no hashing permit");
            assert!(
                !attempt.is_finished(),
                "{login:?} was answered without waiting for the hasher"
            );

            release.send(()).expect("the blocker waits");
            busy.await.expect("no panic").expect("released");
            let result = attempt.await.expect("no panic");
            assert!(
                matches!(result, Err(AuthenticateError::InvalidCredentials { .. })),
                "{login:?}: {result:?}"
            );
            assert!(permits_free(), "{login:?} kept its permit");
        }
    });
}

/// Ada registered under older, cheaper parameters, in `memory`.
async fn registered_under_older_parameters(memory: &MemoryUserRepository) -> User {
    let old = AuthService::new(
        memory.clone(),
        hasher(HashingConfig {
            memory_kib: 32,
            ..cheap()
        }),
        PasswordPolicy::default(),
    );
    register(&old, "ada@example.com", None).await
}

#[tokio::test]
async fn an_outdated_hash_is_upgraded_at_login_and_the_password_still_works() {
    let repo = MemoryUserRepository::default();
    let registered = registered_under_older_parameters(&repo).await;
    assert!(registered
        .password_hash
        .as_str()
        .starts_with("$argon2id$v=19$m=32,t=1,p=1$"));

    let current = AuthService::new(
        repo.clone(),
        hasher(HashingConfig {
            iterations: 2,
            ..cheap()
        }),
        PasswordPolicy::default(),
    );
    let logged_in = current
        .authenticate("ada@example.com", &Password::new(PASSWORD))
        .await
        .expect("the right password");
    let upgraded = stored(&repo, "ada@example.com").await.expect("stored");
    assert_ne!(upgraded.password_hash, registered.password_hash);
    assert!(
        upgraded
            .password_hash
            .as_str()
            .starts_with("$argon2id$v=19$m=64,t=2,p=1$"),
        "the stored hash has the current parameters"
    );
    assert_eq!(
        logged_in, upgraded,
        "the login returns the user as now stored, new hash included"
    );

    let again = current
        .authenticate("ada@example.com", &Password::new(PASSWORD))
        .await
        .expect("the password still works");
    assert_eq!(
        again.password_hash, upgraded.password_hash,
        "no second rehash"
    );
    let wrong = current
        .authenticate("ada@example.com", &Password::new("not-the-password"))
        .await;
    assert!(matches!(
        wrong,
        Err(AuthenticateError::InvalidCredentials { .. })
    ));
}

#[tokio::test]
async fn a_current_hash_is_left_alone_at_login() {
    let (service, repo) = service();
    let registered = register(&service, "ada@example.com", None).await;
    service
        .authenticate("ada@example.com", &Password::new(PASSWORD))
        .await
        .expect("logged in");
    let after = stored(&repo, "ada@example.com").await.expect("stored");
    assert_eq!(after.password_hash, registered.password_hash);
}

#[tokio::test]
async fn a_password_changed_during_a_login_is_not_overwritten_by_the_upgrade() {
    let memory = MemoryUserRepository::default();
    let registered = registered_under_older_parameters(&memory).await;
    let changed = PasswordHash::from_trusted("$argon2id$v=19$m=64,t=1,p=1$Y2hhbmdlZA$x".into());
    let faulty = Faulty::over(&memory, Fault::ChangeHashBeforeUpgrade(changed.clone()));
    let service = service_over(faulty.clone());

    let logged_in = service
        .authenticate("ada@example.com", &Password::new(PASSWORD))
        .await
        .expect("the login itself succeeds");
    assert!(faulty.struck(), "the upgrade was attempted");
    assert_eq!(
        logged_in.password_hash, registered.password_hash,
        "the user as verified"
    );
    let after = stored(&memory, "ada@example.com").await.expect("stored");
    assert_eq!(after.password_hash, changed, "the newer password stays");
}

#[tokio::test]
async fn a_failed_upgrade_still_logs_the_user_in() {
    let memory = MemoryUserRepository::default();
    let registered = registered_under_older_parameters(&memory).await;
    let faulty = Faulty::over(&memory, Fault::UpgradeFails);
    let service = service_over(faulty.clone());

    let logged_in = service
        .authenticate("ada@example.com", &Password::new(PASSWORD))
        .await
        .expect("the login succeeds even though the upgrade failed");
    assert!(faulty.struck(), "the upgrade was attempted");
    assert_eq!(logged_in, registered);
    let after = stored(&memory, "ada@example.com").await.expect("stored");
    assert_eq!(after.password_hash, registered.password_hash);
}

#[tokio::test]
async fn a_storage_failure_at_login_is_unexpected_not_invalid_credentials() {
    let service = service_over(Faulty::over(
        &MemoryUserRepository::default(),
        Fault::Everything,
    ));
    let result = service
        .authenticate("ada@example.com", &Password::new(PASSWORD))
        .await;
    assert!(
        matches!(result, Err(AuthenticateError::Unexpected(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_corrupt_stored_hash_is_unexpected_never_a_login() {
    let (service, repo) = service();
    let email = Email::parse("ada@example.com").expect("valid");
    repo.insert(NewUser::new(
        email.clone(),
        Username::from_email(&email),
        PasswordHash::from_trusted("not a phc string".into()),
        auth_domain::clock::Clock::system().now(),
    ))
    .await
    .expect("stored");
    for password in [PASSWORD, "not a phc string"] {
        let result = service
            .authenticate("ada@example.com", &Password::new(password))
            .await;
        assert!(
            matches!(result, Err(AuthenticateError::Unexpected(_))),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn an_unknown_id_is_no_user_not_an_error() {
    let (service, _) = service();
    assert_eq!(
        service.get_user(UserId::generate()).await.expect("lookup"),
        None
    );
}

// A repository that fails on purpose, around the memory one.

/// What goes wrong.
#[derive(Debug, Clone)]
enum Fault {
    /// Every call fails.
    Everything,
    /// Storing an upgraded hash fails.
    UpgradeFails,
    /// Someone changes the password to this hash just before the upgrade is stored.
    ChangeHashBeforeUpgrade(PasswordHash),
}

#[derive(Debug, Clone)]
struct Faulty {
    inner: MemoryUserRepository,
    fault: Fault,
    /// Set once the fault has struck, so that a test can tell it did.
    struck: Arc<AtomicBool>,
}

impl Faulty {
    /// Fails as `fault` says, and otherwise stores in `inner`.
    fn over(inner: &MemoryUserRepository, fault: Fault) -> Self {
        Self {
            inner: inner.clone(),
            fault,
            struck: Arc::default(),
        }
    }

    /// Whether the fault has struck.
    fn struck(&self) -> bool {
        self.struck.load(Ordering::SeqCst)
    }

    fn fail_everything(&self) -> Result<(), RepositoryError> {
        if matches!(self.fault, Fault::Everything) {
            self.struck.store(true, Ordering::SeqCst);
            return Err(RepositoryError::new("the database is gone"));
        }
        Ok(())
    }
}

impl UserRepository for Faulty {
    async fn insert(&self, user: NewUser) -> Result<User, InsertUserError> {
        self.fail_everything()?;
        self.inner.insert(user).await
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, RepositoryError> {
        self.fail_everything()?;
        self.inner.find_by_id(id).await
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        self.fail_everything()?;
        self.inner.find_by_email(email).await
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<User>, RepositoryError> {
        self.fail_everything()?;
        self.inner.find_by_username(username).await
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &PasswordHash,
        new: &PasswordHash,
    ) -> Result<bool, RepositoryError> {
        self.fail_everything()?;
        match &self.fault {
            Fault::UpgradeFails => {
                self.struck.store(true, Ordering::SeqCst);
                Err(RepositoryError::new("the write timed out"))
            }
            Fault::ChangeHashBeforeUpgrade(changed) => {
                self.struck.store(true, Ordering::SeqCst);
                assert!(
                    self.inner
                        .replace_password_hash(id, current, changed)
                        .await?
                );
                self.inner.replace_password_hash(id, current, new).await
            }
            Fault::Everything => unreachable!("failed above"),
        }
    }
    async fn delete(&self, id: UserId) -> Result<bool, RepositoryError> {
        self.fail_everything()?;
        self.inner.delete(id).await
    }
}

// Changing the password and deleting the account.

const NEW_PASSWORD: &str = "quiet-lantern-meadow";

/// The refused fields of a password change, or a panic saying what came back instead.
fn refused_change(result: Result<User, ChangePasswordError>) -> Vec<String> {
    match result {
        Err(ChangePasswordError::Invalid(errors)) => field_names(&errors),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn field_names(errors: &ValidationErrors) -> Vec<String> {
    let shown = serde_json::to_value(errors).expect("serialisable");
    shown
        .as_object()
        .expect("a map of fields")
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_password_change_stores_a_new_hash_and_only_the_new_password_logs_in() {
    let (service, repo) = service();
    let ada = register(&service, "ada@example.com", None).await;
    let changed = service
        .change_password(
            ada.id,
            &Password::new(PASSWORD),
            &Password::new(NEW_PASSWORD),
        )
        .await
        .expect("the change succeeds");
    assert_ne!(changed.password_hash, ada.password_hash);
    let stored = stored(&repo, "ada@example.com").await.expect("still there");
    assert_eq!(stored.password_hash, changed.password_hash);
    assert!(service
        .authenticate("ada@example.com", &Password::new(NEW_PASSWORD))
        .await
        .is_ok());
    assert!(matches!(
        service
            .authenticate("ada@example.com", &Password::new(PASSWORD))
            .await,
        Err(AuthenticateError::InvalidCredentials { .. })
    ));
}

#[tokio::test]
async fn a_wrong_current_password_and_a_weak_new_one_are_reported_together_and_change_nothing() {
    let (service, repo) = service();
    let ada = register(&service, "ada@example.com", None).await;
    let fields = refused_change(
        service
            .change_password(
                ada.id,
                &Password::new("not-the-password"),
                &Password::new("short"),
            )
            .await,
    );
    assert_eq!(fields, ["current_password", "new_password"]);
    let fields = refused_change(
        service
            .change_password(
                ada.id,
                &Password::new(PASSWORD),
                &Password::new("ada@example.com"),
            )
            .await,
    );
    assert_eq!(fields, ["new_password"], "the policy sees the email");
    let stored = stored(&repo, "ada@example.com").await.expect("still there");
    assert_eq!(stored.password_hash, ada.password_hash);
}

#[tokio::test]
async fn a_password_change_for_a_user_gone_since_is_unknown_user() {
    let (service, _) = service();
    let result = service
        .change_password(
            UserId::generate(),
            &Password::new(PASSWORD),
            &Password::new(NEW_PASSWORD),
        )
        .await;
    assert!(
        matches!(result, Err(ChangePasswordError::UnknownUser)),
        "{result:?}"
    );
}

#[tokio::test]
async fn deleting_an_account_needs_its_password_and_frees_the_email() {
    let (service, repo) = service();
    let ada = register(&service, "ada@example.com", None).await;
    match service
        .delete_account(ada.id, &Password::new("not-the-password"))
        .await
    {
        Err(DeleteAccountError::Invalid(errors)) => assert_eq!(field_names(&errors), ["password"]),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(stored(&repo, "ada@example.com").await.is_some());

    service
        .delete_account(ada.id, &Password::new(PASSWORD))
        .await
        .expect("deleted");
    assert!(stored(&repo, "ada@example.com").await.is_none());
    assert!(matches!(
        service
            .delete_account(ada.id, &Password::new(PASSWORD))
            .await,
        Err(DeleteAccountError::UnknownUser)
    ));
    register(&service, "ada@example.com", None).await;
}
