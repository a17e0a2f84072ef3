#![allow(
    clippy::result_large_err,
    reason = "figment::Jail closures must return figment::Result, whose error is large"
)]

mod documentation;

use std::ffi::OsString;

use auth_domain::throttle::ThrottleLimits;
use auth_http::MIN_SECRET_BYTES;
use figment::{Figment, Jail};
use secrecy::ExposeSecret;

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const OLD_SECRET: &str = "old-key-old-key-old-key-old-key-old-key-old-key-old-key-old-key!";
const OLDER_SECRET: &str = "older-key-older-key-older-key-older-key-older-key-older-key-older";

/// The built-in defaults plus a valid secret key and whatever `pairs` set.
fn config_with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let figment = pairs
        .iter()
        .fold(Figment::new().merge(("SECRET_KEY", SECRET)), |f, pair| {
            f.merge(*pair)
        });
    Config::from_figment(figment)
}

/// The sources [`Config::load`] reads, in the jail's directory and with `env` as the
/// environment.
fn sources_in(jail: &Jail, env: &[(&str, &str)]) -> Figment {
    let env = env
        .iter()
        .map(|(key, value)| ((*key).to_owned(), OsString::from(value)));
    files(jail.directory()).merge(sources::Environment::from_vars(env))
}

/// What [`Config::load`] does, in the jail's directory and with `env` as the environment.
fn load_in(jail: &Jail, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_figment(sources_in(jail, env))
}

/// The fallback keys `figment` gives, as written: the config holds them only as signing
/// keys, which never show their bytes.
fn fallback_keys(figment: Figment) -> Vec<String> {
    let figment = Figment::from(Defaults).merge(figment);
    let settings = Settings::new(&figment).expect("readable sources");
    http::secret_key_fallbacks(&settings)
        .expect("valid fallback keys")
        .iter()
        .map(|key| key.expose_secret().to_owned())
        .collect()
}

/// The signing key `figment` gives in debug, as written.
fn debug_secret_key(figment: &Figment) -> (String, bool) {
    let figment = Figment::from(Defaults).merge(figment.clone());
    let settings = Settings::new(&figment).expect("readable sources");
    let (key, generated) = http::secret_key(&settings, true).expect("valid in debug");
    (key.expose_secret().to_owned(), generated)
}

#[test]
fn with_nothing_configured_the_defaults_apply() {
    Jail::expect_with(|jail| {
        let config = load_in(jail, &[]).expect("the defaults are valid in a debug build");
        assert_eq!(config.storage, Storage::Sql);
        assert_eq!(
            config.database_url.as_str(),
            "sqlite://database.db?mode=rwc"
        );
        assert_eq!(config.mongo.url, "mongodb://127.0.0.1:27017");
        assert_eq!(config.mongo.database, "auth");
        assert_eq!(
            config.mongo.users_collection,
            auth_store_mongo::DEFAULT_USERS_COLLECTION
        );
        assert_eq!(
            config.mongo.sessions_collection,
            auth_store_mongo::DEFAULT_SESSIONS_COLLECTION
        );
        assert_eq!(config.host, "127.0.0.1");
        assert_eq!(config.port, 5000);
        assert_eq!(config.debug, cfg!(debug_assertions));
        assert_eq!(config.http.secure_cookie, !config.debug);
        assert_eq!(config.http.session_lifetime, time::Duration::days(31));
        assert_eq!(config.http.absolute_lifetime, time::Duration::days(90));
        assert!(config.http.fallback_keys.is_empty());
        assert_eq!(config.session_purge_interval, Duration::from_secs(300));
        assert_eq!(config.password_policy, PasswordPolicy::default());
        assert_eq!(config.hashing, HashingConfig::default());
        assert_eq!(config.log, "info");
        assert!(config.http.trusted_proxies.is_empty());
        assert!(config.http.allowed_origins.is_empty());
        assert_eq!(config.throttle, ThrottleLimits::default());
        assert_eq!(config.throttle.failures_per_client, 5);
        assert_eq!(config.throttle.failures_per_account, 50);
        assert_eq!(config.throttle.failures_per_address, 100);
        assert_eq!(config.throttle.failure_window, time::Duration::seconds(900));
        assert_eq!(config.throttle.registrations_per_address, 20);
        assert_eq!(
            config.audit_retention,
            Duration::from_secs(90 * 24 * 60 * 60)
        );
        assert_eq!(
            config.mongo.failures_collection,
            auth_store_mongo::DEFAULT_FAILURES_COLLECTION
        );
        assert_eq!(
            config.mongo.events_collection,
            auth_store_mongo::DEFAULT_EVENTS_COLLECTION
        );
        assert!(config.secret_key_generated);
        let (key, generated) = debug_secret_key(&sources_in(jail, &[]));
        assert!(generated && key.len() >= MIN_SECRET_BYTES);
        Ok(())
    });
}

#[test]
fn the_environment_beats_dotenv_which_beats_app_toml() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "App.toml",
            "PORT = 1001\nHOST = \"0.0.0.0\"\nMONGODB_DB = \"from_toml\"\nLOG = \"warn\"",
        )?;
        jail.create_file(".env", "PORT=1002\nMONGODB_DB=from_dotenv\n")?;
        let config = load_in(jail, &[("PORT", "1003"), ("SECRET_KEY", SECRET)]).expect("valid");
        assert_eq!(config.port, 1003, "environment over .env");
        assert_eq!(config.mongo.database, "from_dotenv", ".env over App.toml");
        assert_eq!(config.host, "0.0.0.0", "App.toml over the defaults");
        assert_eq!(config.log, "warn");
        assert_eq!(
            config.database_url.as_str(),
            "sqlite://database.db?mode=rwc"
        );
        assert!(!config.secret_key_generated);
        Ok(())
    });
}

#[test]
fn the_dotenv_file_does_not_change_the_process_environment() {
    let (port_before, secret_before) = (std::env::var_os("PORT"), std::env::var_os("SECRET_KEY"));
    Jail::expect_with(|jail| {
        jail.create_file(
            ".env",
            "PORT=1002\nSECRET_KEY=\"quoted value # not a comment\"\n",
        )?;
        let error = load_in(jail, &[]).expect_err("the key is short");
        assert_eq!(error.key(), "SECRET_KEY");
        jail.create_file(".env", &format!("PORT=1002\nSECRET_KEY={SECRET}\n"))?;
        assert_eq!(load_in(jail, &[]).expect("valid").port, 1002);
        assert_eq!(std::env::var_os("PORT"), port_before);
        assert_eq!(std::env::var_os("SECRET_KEY"), secret_before);
        Ok(())
    });
}

#[test]
fn a_bad_port_in_the_environment_is_one_line_naming_the_key() {
    Jail::expect_with(|jail| {
        let error = load_in(jail, &[("PORT", "50x0")]).expect_err("PORT is not a number");
        assert_eq!(
            error.to_string(),
            "PORT: invalid digit found in string (set in the environment)"
        );
        Ok(())
    });
}

#[test]
fn load_reads_the_working_directory_and_the_process_environment() {
    Jail::expect_with(|jail| {
        // LOG is read by no other test, so changing it cannot disturb one running alongside.
        jail.set_env("LOG", "warn");
        jail.create_file(".env", "HOST=0.0.0.0\nLOG=debug\n")?;
        let config = Config::load().expect("valid");
        assert_eq!(config.log, "warn");
        assert_eq!(config.host, "0.0.0.0");
        Ok(())
    });
}

#[test]
fn each_bad_value_names_its_key() {
    let cases: &[(&str, &str)] = &[
        ("PERMANENT_SESSION_LIFETIME", "0"),
        ("PERMANENT_SESSION_LIFETIME", "-5"),
        ("PERMANENT_SESSION_LIFETIME", "99999999999"),
        ("SESSION_ABSOLUTE_LIFETIME", "0"),
        ("SESSION_ABSOLUTE_LIFETIME", "86400"),
        ("SESSION_ABSOLUTE_LIFETIME", "99999999999"),
        ("SESSION_ABSOLUTE_LIFETIME", "90d"),
        ("SECRET_KEY_FALLBACKS", "too-short"),
        ("STORAGE", "postgres"),
        ("DATABASE_URL", "database.db"),
        ("DATABASE_URL", "redis://localhost"),
        ("DATABASE_URL", "postgres://app:pass@db:port/auth"),
        ("MONGODB_URL", "127.0.0.1:27017"),
        ("MONGODB_DB", "my.db"),
        ("MONGODB_DB", ""),
        ("MONGODB_USERS_COLLECTION", "$users"),
        ("MONGODB_SESSIONS_COLLECTION", "users"),
        ("MONGODB_FAILURES_COLLECTION", "system.failures"),
        ("MONGODB_FAILURES_COLLECTION", "users"),
        ("MONGODB_EVENTS_COLLECTION", "sessions"),
        ("MONGODB_EVENTS_COLLECTION", "login_failures"),
        ("MONGODB_EVENTS_COLLECTION", ""),
        ("DATABASE_MAX_CONNECTIONS", "0"),
        ("DATABASE_MAX_CONNECTIONS", "-4"),
        ("DATABASE_MAX_CONNECTIONS", "1001"),
        ("DATABASE_MAX_CONNECTIONS", "lots"),
        ("HOST", ""),
        ("PORT", "65536"),
        ("PORT", "http"),
        ("DEBUG", "maybe"),
        ("SESSION_COOKIE_SECURE", "sometimes"),
        ("PASSWORD_MIN_LENGTH", "7"),
        ("PASSWORD_MIN_LENGTH", "129"),
        ("ARGON2_MEMORY_KIB", "4"),
        ("ARGON2_MEMORY_KIB", "lots"),
        ("ARGON2_ITERATIONS", "0"),
        ("ARGON2_PARALLELISM", "0"),
        ("MAX_CONCURRENT_HASHES", "0"),
        ("SESSION_PURGE_INTERVAL", "0"),
        ("SESSION_PURGE_INTERVAL", "1e3"),
        ("LOG", "info,[=bad"),
        ("TRUSTED_PROXIES", "10.0.0.300"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("TRUSTED_PROXIES", "localhost"),
        ("TRUSTED_PROXIES", "10.0.0.1;10.0.0.2"),
        ("TRUSTED_PROXIES", "10.0.0.1, *"),
        ("TRUSTED_PROXIES", "0.0.0.0/0"),
        ("TRUSTED_PROXIES", "10.0.0.1, ::/0"),
        ("ALLOWED_ORIGINS", "*"),
        ("ALLOWED_ORIGINS", "https://*.example.com"),
        ("ALLOWED_ORIGINS", "https://app.example.com/login"),
        ("ALLOWED_ORIGINS", "https://app.example.com/?next=1"),
        ("ALLOWED_ORIGINS", "https://app.example.com#top"),
        ("ALLOWED_ORIGINS", "https://ada@app.example.com"),
        ("ALLOWED_ORIGINS", "app.example.com"),
        ("ALLOWED_ORIGINS", "https:app.example.com"),
        ("ALLOWED_ORIGINS", "ftp://app.example.com"),
        ("ALLOWED_ORIGINS", "null"),
        ("ALLOWED_ORIGINS", "https://"),
        ("LOGIN_FAILURES_PER_CLIENT", "-1"),
        ("LOGIN_FAILURES_PER_CLIENT", "five"),
        ("LOGIN_FAILURES_PER_ACCOUNT", "1.5"),
        ("LOGIN_FAILURES_PER_ADDRESS", "lots"),
        ("LOGIN_FAILURE_WINDOW", "0"),
        ("LOGIN_FAILURE_WINDOW", "86401"),
        ("LOGIN_FAILURE_WINDOW", "15m"),
        ("REGISTRATIONS_PER_ADDRESS", "-20"),
        ("IPV6_THROTTLE_PREFIX", "0"),
        ("IPV6_THROTTLE_PREFIX", "129"),
        ("AUDIT_RETENTION_DAYS", "0"),
        ("AUDIT_RETENTION_DAYS", "3651"),
        ("SMTP_URL", "mail.example.com:25"),
        ("SMTP_URL", "http://mail.example.com"),
        ("SMTP_URL", "smtp://"),
        ("SMTP_URL", "smtps://mail.example.com?tls=required"),
        ("SMTP_URL", "smtp://mail.example.com?tls=always"),
        ("SMTP_URL", "smtp://ada:secret@mail.example.com"),
        ("MAIL_FROM", "not an address"),
        ("MAIL_FROM", "auth <no-reply>"),
        ("MAIL_DIR", ""),
        ("PUBLIC_URL", "auth.example.com"),
        ("PUBLIC_URL", "/auth"),
        ("PUBLIC_URL", "ftp://auth.example.com"),
        ("PUBLIC_URL", "https://auth.example.com/?next=1"),
        ("PUBLIC_URL", "https://auth.example.com/#top"),
        ("PUBLIC_URL", "https://ada:pw@auth.example.com"),
        ("PASSWORD_RESET_LIFETIME", "59"),
        ("PASSWORD_RESET_LIFETIME", "86401"),
        ("PASSWORD_RESET_LIFETIME", "1h"),
        ("EMAIL_VERIFICATION", "maybe"),
    ];
    for (key, value) in cases {
        let error = config_with(&[(key, value)]).expect_err(&format!("{key}={value} is invalid"));
        assert_eq!(error.key(), *key, "{key}={value} gave `{error}`");
        assert!(error.to_string().starts_with(&format!("{key}: ")));
        assert!(!error.to_string().contains('\n'), "one line: {error}");
    }
}

/// This machine's cores, as the pool defaults count them.
fn cores() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    u32::try_from(cores).expect("fewer than 4 billion cores")
}

#[test]
fn by_default_the_pool_size_follows_the_engine_and_the_cores() {
    Jail::expect_with(|jail| {
        let pool = |env: &[(&str, &str)]| {
            load_in(jail, env)
                .expect("valid")
                .database_max_connections
                .get()
        };
        assert_eq!(
            pool(&[]),
            cores().max(4),
            "a SQLite file: a reader per core"
        );
        let postgres = [("DATABASE_URL", "postgres://app@db/auth")];
        assert_eq!(pool(&postgres), (2 * cores()).max(10), "a database server");
        let mysql = [("DATABASE_URL", "mysql://app@db/auth")];
        assert_eq!(pool(&mysql), (2 * cores()).max(10), "a database server");
        let mongodb = [("STORAGE", "mongodb")];
        assert_eq!(pool(&mongodb), (2 * cores()).max(10), "a database server");
        let memory = [("DATABASE_URL", "sqlite::memory:")];
        assert_eq!(
            pool(&memory),
            1,
            "the in-memory database lives in one connection"
        );
        Ok(())
    });
}

#[test]
fn an_explicit_pool_size_is_used_whatever_the_engine() {
    Jail::expect_with(|jail| {
        jail.create_file(".env", "DATABASE_MAX_CONNECTIONS=7\n")?;
        for env in [
            &[][..],
            &[("DATABASE_URL", "postgres://app@db/auth")],
            &[("STORAGE", "mongodb")],
        ] {
            let config = load_in(jail, env).expect("valid");
            assert_eq!(config.database_max_connections.get(), 7, "{env:?}");
        }
        jail.create_file("App.toml", "DATABASE_MAX_CONNECTIONS = 1000")?;
        jail.create_file(".env", "")?;
        let config = load_in(jail, &[]).expect("the largest size accepted");
        assert_eq!(config.database_max_connections.get(), 1000);
        Ok(())
    });
}

#[test]
fn a_pool_of_zero_or_absurdly_many_connections_is_refused_naming_the_key() {
    Jail::expect_with(|jail| {
        let error = load_in(jail, &[("DATABASE_MAX_CONNECTIONS", "0")]).expect_err("zero");
        assert_eq!(
            error.to_string(),
            "DATABASE_MAX_CONNECTIONS: must be between 1 and 1000, not 0 (set in the environment)"
        );
        jail.create_file("App.toml", "DATABASE_MAX_CONNECTIONS = 100000")?;
        let error = load_in(jail, &[]).expect_err("absurd");
        assert_eq!(
            error.to_string(),
            "DATABASE_MAX_CONNECTIONS: must be between 1 and 1000, not 100000 (set in App.toml)"
        );
        Ok(())
    });
}

#[test]
fn typed_values_are_accepted_as_well_as_text() {
    let figment = Figment::new()
        .merge(("SECRET_KEY", SECRET))
        .merge(("PORT", 0))
        .merge(("DEBUG", false))
        .merge(("ARGON2_MEMORY_KIB", 1024u32));
    let config = Config::from_figment(figment).expect("valid");
    assert_eq!(config.port, 0);
    assert!(!config.debug);
    assert!(config.http.secure_cookie, "follows DEBUG");
    assert_eq!(config.hashing.memory_kib, 1024);

    let error = Config::from_figment(Figment::new().merge(("PORT", -1))).expect_err("negative");
    assert_eq!(error.to_string(), "PORT: must not be negative");
}

#[test]
fn a_short_secret_key_is_refused_without_showing_it() {
    let short = "not-long-enough-but-secret";
    for debug in ["true", "false"] {
        let figment = Figment::new()
            .merge(("SECRET_KEY", short))
            .merge(("DEBUG", debug));
        let error = Config::from_figment(figment).expect_err("too short even in debug");
        assert_eq!(error.key(), "SECRET_KEY");
        assert!(!error.to_string().contains(short), "{error}");
        assert!(!format!("{error:?}").contains(short), "{error:?}");
    }
}

#[test]
fn a_secret_key_of_the_wrong_type_is_refused_without_showing_it() {
    Jail::expect_with(|jail| {
        jail.create_file("App.toml", "SECRET_KEY = 123456789")?;
        let error = load_in(jail, &[]).expect_err("not a string");
        assert_eq!(
            error.to_string(),
            "SECRET_KEY: expected a string (set in App.toml)"
        );
        Ok(())
    });
}

#[test]
fn a_missing_secret_key_is_tolerated_only_in_debug() {
    let error = Config::from_figment(Figment::new().merge(("DEBUG", "false")))
        .expect_err("no key in production");
    assert_eq!(error.key(), "SECRET_KEY");
    assert!(error.to_string().contains("missing"));

    let debug = Figment::new().merge(("DEBUG", "true"));
    let config = Config::from_figment(debug.clone()).expect("debug");
    assert!(config.secret_key_generated);
    let (key, generated) = debug_secret_key(&debug);
    assert!(generated && key.len() >= MIN_SECRET_BYTES);
    let (again, _) = debug_secret_key(&debug);
    assert_ne!(key, again, "a fresh random key each time");
}

#[test]
fn debug_output_hides_the_secret_key_and_database_passwords() {
    let config = config_with(&[
        ("DATABASE_URL", "postgres://app:hunter2@db/auth"),
        ("MONGODB_URL", "mongodb://app:swordfish@db:27017"),
    ])
    .expect("valid");
    let debug = format!("{config:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("swordfish"), "{debug}");
    assert!(
        debug.contains("postgres://app:[redacted]@db/auth"),
        "{debug}"
    );
}

#[test]
fn the_absolute_lifetime_is_read_in_seconds_and_may_equal_the_idle_lifetime() {
    let config = config_with(&[("SESSION_ABSOLUTE_LIFETIME", "8640000")]).expect("100 days");
    assert_eq!(
        config.http.absolute_lifetime,
        time::Duration::seconds(8_640_000)
    );
    let config = config_with(&[
        ("PERMANENT_SESSION_LIFETIME", "4"),
        ("SESSION_ABSOLUTE_LIFETIME", "4"),
    ])
    .expect("equal lifetimes");
    assert_eq!(config.http.absolute_lifetime, time::Duration::seconds(4));
}

#[test]
fn by_default_the_absolute_lifetime_is_never_below_the_idle_lifetime() {
    let config = config_with(&[("PERMANENT_SESSION_LIFETIME", "10368000")]).expect("120 days");
    assert_eq!(
        config.http.absolute_lifetime,
        time::Duration::seconds(10_368_000),
        "a deployment that set a long idle lifetime keeps starting"
    );
    let config = config_with(&[("PERMANENT_SESSION_LIFETIME", "3600")]).expect("an hour");
    assert_eq!(config.http.absolute_lifetime, time::Duration::days(90));
}

#[test]
fn an_absolute_lifetime_below_the_idle_lifetime_is_refused_naming_both_keys() {
    Jail::expect_with(|jail| {
        jail.create_file("App.toml", "PERMANENT_SESSION_LIFETIME = 7200")?;
        let error = load_in(jail, &[("SESSION_ABSOLUTE_LIFETIME", "3600")]).expect_err("below");
        assert_eq!(
            error.to_string(),
            "SESSION_ABSOLUTE_LIFETIME: must be between PERMANENT_SESSION_LIFETIME (7200) and 34560000, not 3600 (set in the environment)"
        );
        jail.create_file(
            "App.toml",
            "PERMANENT_SESSION_LIFETIME = 7200\nSESSION_ABSOLUTE_LIFETIME = 0",
        )?;
        let error = load_in(jail, &[]).expect_err("zero");
        assert_eq!(
            error.to_string(),
            "SESSION_ABSOLUTE_LIFETIME: must be between PERMANENT_SESSION_LIFETIME (7200) and 34560000, not 0 (set in App.toml)"
        );
        Ok(())
    });
}

#[test]
fn fallback_keys_are_comma_separated_in_the_environment_and_dotenv() {
    Jail::expect_with(|jail| {
        let list = format!("{OLD_SECRET}, {OLDER_SECRET},");
        let env = [("SECRET_KEY_FALLBACKS", list.as_str())];
        assert_eq!(
            load_in(jail, &env).expect("valid").http.fallback_keys.len(),
            2
        );
        assert_eq!(
            fallback_keys(sources_in(jail, &env)),
            [OLD_SECRET, OLDER_SECRET],
            "in order, trimmed, the empty entry after the trailing comma ignored"
        );
        jail.create_file(".env", &format!("SECRET_KEY_FALLBACKS={OLD_SECRET}\n"))?;
        assert_eq!(
            load_in(jail, &[]).expect("valid").http.fallback_keys.len(),
            1
        );
        assert_eq!(fallback_keys(sources_in(jail, &[])), [OLD_SECRET]);
        let config = load_in(jail, &[("SECRET_KEY_FALLBACKS", "")]).expect("empty");
        assert!(config.http.fallback_keys.is_empty(), "the environment wins");
        Ok(())
    });
}

#[test]
fn fallback_keys_are_a_list_or_a_comma_separated_string_in_app_toml() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "App.toml",
            &format!("SECRET_KEY_FALLBACKS = [\"{OLD_SECRET}\", \"\", \"{OLDER_SECRET}\"]"),
        )?;
        assert_eq!(
            load_in(jail, &[]).expect("a list").http.fallback_keys.len(),
            2
        );
        assert_eq!(
            fallback_keys(sources_in(jail, &[])),
            [OLD_SECRET, OLDER_SECRET]
        );
        jail.create_file(
            "App.toml",
            &format!("SECRET_KEY_FALLBACKS = \"{OLDER_SECRET},{OLD_SECRET}\""),
        )?;
        assert_eq!(
            load_in(jail, &[])
                .expect("a string")
                .http
                .fallback_keys
                .len(),
            2
        );
        assert_eq!(
            fallback_keys(sources_in(jail, &[])),
            [OLDER_SECRET, OLD_SECRET]
        );
        jail.create_file("App.toml", "SECRET_KEY_FALLBACKS = []")?;
        assert!(load_in(jail, &[])
            .expect("empty")
            .http
            .fallback_keys
            .is_empty());
        Ok(())
    });
}

#[test]
fn a_short_fallback_key_is_refused_by_position_without_showing_it() {
    Jail::expect_with(|jail| {
        let short = "short-but-still-a-secret";
        jail.create_file(
            "App.toml",
            &format!("SECRET_KEY_FALLBACKS = [\"{OLD_SECRET}\", \"{short}\"]"),
        )?;
        let error = load_in(jail, &[]).expect_err("the second key is short");
        assert_eq!(
            error.to_string(),
            "SECRET_KEY_FALLBACKS: key 2 of 2 is too short (24 bytes): each needs at least 64 (set in App.toml)"
        );
        assert!(!format!("{error:?}").contains(short), "{error:?}");
        assert!(!format!("{error:?}").contains(OLD_SECRET), "{error:?}");
        Ok(())
    });
}

#[test]
fn fallback_keys_of_the_wrong_type_are_refused_without_showing_them() {
    Jail::expect_with(|jail| {
        for toml in [
            "SECRET_KEY_FALLBACKS = 123456789",
            "SECRET_KEY_FALLBACKS = [123456789]",
        ] {
            jail.create_file("App.toml", toml)?;
            let error = load_in(jail, &[]).expect_err("not strings");
            assert_eq!(error.key(), "SECRET_KEY_FALLBACKS", "{toml}");
            assert!(!error.to_string().contains("123456789"), "{error}");
        }
        Ok(())
    });
}

#[test]
fn debug_output_hides_the_fallback_keys_but_counts_them() {
    let list = format!("{OLD_SECRET},{OLDER_SECRET}");
    let config = config_with(&[("SECRET_KEY_FALLBACKS", &list)]).expect("valid");
    let debug = format!("{config:?}");
    assert!(!debug.contains(OLD_SECRET), "{debug}");
    assert!(!debug.contains(OLDER_SECRET), "{debug}");
    assert!(
        debug.contains("fallback_keys: [SessionKey([redacted]), SessionKey([redacted])]"),
        "{debug}"
    );
}

#[test]
fn an_unknown_key_in_app_toml_is_an_error() {
    Jail::expect_with(|jail| {
        jail.create_file("App.toml", "port = 8080")?;
        let error = load_in(jail, &[]).expect_err("lower-case key");
        assert_eq!(error.key(), "App.toml");
        assert!(error.to_string().contains("`port`"), "{error}");
        Ok(())
    });
}

#[test]
fn invalid_toml_is_one_line_without_the_offending_text() {
    Jail::expect_with(|jail| {
        jail.create_file("App.toml", "SECRET_KEY = hunter2-is-my-secret")?;
        let error = load_in(jail, &[]).expect_err("not TOML");
        let line = error.to_string();
        assert!(
            line.starts_with("App.toml: TOML parse error at line 1"),
            "{line}"
        );
        assert!(!line.contains("hunter2") && !line.contains('\n'), "{line}");
        Ok(())
    });
}

#[test]
fn an_unparsable_dotenv_line_is_named_by_number_not_shown() {
    Jail::expect_with(|jail| {
        jail.create_file(".env", "# comment\nPORT=5001\nSECRET_KEY hunter2\n")?;
        let error = load_in(jail, &[]).expect_err("line 3 is no assignment");
        assert_eq!(error.to_string(), ".env: line 3 is not `KEY=value`");
        Ok(())
    });
}

#[test]
fn unrelated_variables_are_ignored() {
    Jail::expect_with(|jail| {
        jail.create_file(".env", "RUST_LOG=trace\nDATABASE_URL_POSTGRES=whatever\n")?;
        let env = [("port", "not ours: keys are upper-case")];
        assert_eq!(load_in(jail, &env).expect("valid").port, 5000);
        Ok(())
    });
}

fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
    list.iter()
        .map(|net| net.parse().expect("a valid network"))
        .collect()
}

#[test]
fn trusted_proxies_are_comma_separated_addresses_and_networks() {
    Jail::expect_with(|jail| {
        let env = [(
            "TRUSTED_PROXIES",
            " 10.0.0.0/8, 127.0.0.1,::1 , 192.168.1.77/24,::ffff:172.16.0.1,",
        )];
        let config = load_in(jail, &env).expect("valid");
        assert_eq!(
            config.http.trusted_proxies,
            nets(&[
                "10.0.0.0/8",
                "127.0.0.1/32",
                "::1/128",
                "192.168.1.0/24",
                "172.16.0.1/32"
            ]),
            "a bare address is that one host, host bits of a network are dropped, an \
             IPv4-mapped address is its IPv4 address"
        );
        jail.create_file(".env", "TRUSTED_PROXIES=fd00::/8\n")?;
        let config = load_in(jail, &[]).expect("valid");
        assert_eq!(config.http.trusted_proxies, nets(&["fd00::/8"]));
        let config = load_in(jail, &[("TRUSTED_PROXIES", "")]).expect("empty");
        assert!(
            config.http.trusted_proxies.is_empty(),
            "the environment wins"
        );
        Ok(())
    });
}

#[test]
fn lists_of_proxies_and_origins_are_toml_arrays_or_strings_in_app_toml() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "App.toml",
            "TRUSTED_PROXIES = [\"10.0.0.0/8\", \"2001:db8::7\"]\n\
             ALLOWED_ORIGINS = [\"https://app.example.com\", \"http://localhost:3000\"]",
        )?;
        let config = load_in(jail, &[]).expect("arrays");
        assert_eq!(
            config.http.trusted_proxies,
            nets(&["10.0.0.0/8", "2001:db8::7/128"])
        );
        assert_eq!(
            config.http.allowed_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        jail.create_file(
            "App.toml",
            "TRUSTED_PROXIES = \"127.0.0.1\"\nALLOWED_ORIGINS = \"https://a.example, https://b.example\"",
        )?;
        let config = load_in(jail, &[]).expect("strings");
        assert_eq!(config.http.trusted_proxies, nets(&["127.0.0.1/32"]));
        assert_eq!(
            config.http.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        for toml in [
            "TRUSTED_PROXIES = 10",
            "TRUSTED_PROXIES = [\"10.0.0.1\", 10]",
            "ALLOWED_ORIGINS = true",
        ] {
            jail.create_file("App.toml", toml)?;
            let error = load_in(jail, &[]).expect_err("not strings");
            let key = toml.split(' ').next().expect("a key");
            assert_eq!(error.key(), key, "{toml}: {error}");
        }
        Ok(())
    });
}

#[test]
fn allowed_origins_are_spelled_as_browsers_send_them() {
    let config = config_with(&[(
        "ALLOWED_ORIGINS",
        "HTTPS://App.Example.COM/, https://app.example.com:443, http://localhost:3000/, \
         http://[::1]:8080, https://bücher.example",
    )])
    .expect("valid origins");
    assert_eq!(
        config.http.allowed_origins,
        [
            "https://app.example.com",
            "https://app.example.com",
            "http://localhost:3000",
            "http://[::1]:8080",
            "https://xn--bcher-kva.example",
        ],
        "lower case, no trailing slash, no default port, punycode"
    );
}

#[test]
fn a_bad_proxy_or_origin_is_named_in_one_line() {
    let error = config_with(&[("TRUSTED_PROXIES", "10.0.0.1, 10.0.0.300")]).expect_err("bad");
    assert_eq!(
        error.to_string(),
        "TRUSTED_PROXIES: `10.0.0.300` is not an IP address or a CIDR network (e.g. 10.0.0.1, 10.0.0.0/8, fd00::/8)"
    );
    let error = config_with(&[("ALLOWED_ORIGINS", "*")]).expect_err("wildcard");
    assert_eq!(
        error.to_string(),
        "ALLOWED_ORIGINS: `*` is refused: CORS with credentials cannot use a wildcard; list each origin"
    );
    let error =
        config_with(&[("ALLOWED_ORIGINS", "https://app.example.com/login")]).expect_err("a path");
    assert_eq!(
        error.to_string(),
        "ALLOWED_ORIGINS: `https://app.example.com/login` is not an origin: expected scheme://host[:port] alone, without a path, query or user"
    );
}

#[test]
fn throttling_limits_are_read_from_every_source() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "App.toml",
            "LOGIN_FAILURES_PER_CLIENT = 10\nLOGIN_FAILURE_WINDOW = 600\nAUDIT_RETENTION_DAYS = 30",
        )?;
        jail.create_file(
            ".env",
            "LOGIN_FAILURES_PER_ACCOUNT=200\nREGISTRATIONS_PER_ADDRESS=3\n",
        )?;
        let config = load_in(jail, &[("LOGIN_FAILURES_PER_ADDRESS", "1000")]).expect("valid");
        assert_eq!(
            config.throttle,
            ThrottleLimits {
                failures_per_client: 10,
                failures_per_account: 200,
                failures_per_address: 1000,
                failure_window: time::Duration::minutes(10),
                registrations_per_address: 3,
                passkey_sign_ins_per_address: 300,
                ipv6_prefix: 64,
            }
        );
        assert_eq!(
            config.audit_retention,
            Duration::from_secs(30 * 24 * 60 * 60)
        );
        Ok(())
    });
}

#[test]
fn a_limit_of_zero_disables_it_and_is_accepted() {
    let config = config_with(&[
        ("LOGIN_FAILURES_PER_CLIENT", "0"),
        ("LOGIN_FAILURES_PER_ACCOUNT", "0"),
        ("LOGIN_FAILURES_PER_ADDRESS", "0"),
        ("REGISTRATIONS_PER_ADDRESS", "0"),
    ])
    .expect("zero disables a limit");
    assert_eq!(config.throttle.failures_per_client, 0);
    assert_eq!(config.throttle.failures_per_account, 0);
    assert_eq!(config.throttle.failures_per_address, 0);
    assert_eq!(config.throttle.registrations_per_address, 0);
    assert_eq!(
        config.throttle.failure_window,
        ThrottleLimits::default().failure_window,
        "the window is not a limit: it keeps its default"
    );
}

#[test]
fn the_failure_window_and_audit_retention_accept_their_bounds() {
    for (window, retention) in [("1", "1"), ("86400", "3650")] {
        let config = config_with(&[
            ("LOGIN_FAILURE_WINDOW", window),
            ("AUDIT_RETENTION_DAYS", retention),
        ])
        .expect("within bounds");
        assert_eq!(
            config.throttle.failure_window.whole_seconds().to_string(),
            window
        );
        assert_eq!(
            (config.audit_retention.as_secs() / (24 * 60 * 60)).to_string(),
            retention
        );
    }
}

#[test]
fn a_failure_window_longer_than_mongodb_keeps_failures_is_refused_saying_why() {
    Jail::expect_with(|jail| {
        let error = load_in(jail, &[("LOGIN_FAILURE_WINDOW", "90000")]).expect_err("over a day");
        assert_eq!(
            error.to_string(),
            "LOGIN_FAILURE_WINDOW: must be between 1 and 86400 seconds, not 90000: MongoDB deletes a failed login 86400 seconds after it happened (a TTL index) (set in the environment)"
        );
        assert_eq!(
            auth_store_mongo::FAILURE_RETENTION.as_secs(),
            86_400,
            "the bound is the store's retention"
        );
        Ok(())
    });
}

#[test]
fn a_negative_limit_says_so() {
    let error = config_with(&[("LOGIN_FAILURES_PER_CLIENT", "-1")]).expect_err("negative");
    assert_eq!(
        error.to_string(),
        "LOGIN_FAILURES_PER_CLIENT: must not be negative"
    );
}

#[test]
fn the_four_mongodb_collections_are_configurable_and_must_differ() {
    let config = config_with(&[
        ("MONGODB_FAILURES_COLLECTION", "failures"),
        ("MONGODB_EVENTS_COLLECTION", "events"),
    ])
    .expect("valid");
    assert_eq!(config.mongo.failures_collection, "failures");
    assert_eq!(config.mongo.events_collection, "events");
    let error = config_with(&[("MONGODB_EVENTS_COLLECTION", "users")]).expect_err("shared");
    assert_eq!(
        error.to_string(),
        "MONGODB_EVENTS_COLLECTION: must differ from MONGODB_USERS_COLLECTION"
    );
    let error = config_with(&[("MONGODB_SESSIONS_COLLECTION", "login_failures")])
        .expect_err("shared with the default failures collection");
    assert_eq!(
        error.to_string(),
        "MONGODB_FAILURES_COLLECTION: must differ from MONGODB_SESSIONS_COLLECTION"
    );
}

#[test]
fn metrics_are_off_unless_an_address_and_port_is_given() {
    assert_eq!(config_with(&[]).unwrap().metrics_addr, None);
    assert_eq!(
        config_with(&[("METRICS_ADDR", "")]).unwrap().metrics_addr,
        None
    );
    let on = config_with(&[("METRICS_ADDR", "127.0.0.1:9100")]).unwrap();
    assert_eq!(on.metrics_addr, Some("127.0.0.1:9100".parse().unwrap()));
    let v6 = config_with(&[("METRICS_ADDR", "[::1]:9100")]).unwrap();
    assert_eq!(v6.metrics_addr, Some("[::1]:9100".parse().unwrap()));
    for bad in ["9100", "localhost:9100", "127.0.0.1", "127.0.0.1:99999"] {
        let error = config_with(&[("METRICS_ADDR", bad)]).unwrap_err();
        assert_eq!(error.key(), "METRICS_ADDR", "{bad}");
        assert!(error.to_string().contains("METRICS_ADDR"), "{error}");
    }
}

#[test]
fn the_log_format_is_text_by_default_or_json() {
    assert_eq!(config_with(&[]).unwrap().log_format, crate::LogFormat::Text);
    let json = config_with(&[("LOG_FORMAT", "json")]).unwrap();
    assert_eq!(json.log_format, crate::LogFormat::Json);
    let error = config_with(&[("LOG_FORMAT", "yaml")]).unwrap_err();
    assert_eq!(error.key(), "LOG_FORMAT");
}

#[test]
fn slow_client_and_shutdown_limits_have_their_defaults() {
    let config = config_with(&[]).expect("defaults");
    assert_eq!(config.header_read_timeout, Duration::from_secs(10));
    assert_eq!(config.http.timeouts.body, Duration::from_secs(10));
    assert_eq!(config.http.timeouts.request, Duration::from_secs(30));
    assert_eq!(config.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(config.max_connections, 10_000);
    assert_eq!(
        config.hash_queue_limit,
        config.hashing.max_concurrent * auth_domain::DEFAULT_QUEUE_PER_SLOT
    );
}

#[test]
fn the_hash_queue_follows_the_hashing_slots_unless_set() {
    let config = config_with(&[("MAX_CONCURRENT_HASHES", "3")]).expect("valid");
    assert_eq!(
        config.hash_queue_limit,
        3 * auth_domain::DEFAULT_QUEUE_PER_SLOT
    );
    let config =
        config_with(&[("MAX_CONCURRENT_HASHES", "3"), ("HASH_QUEUE_LIMIT", "0")]).expect("valid");
    assert_eq!(config.hash_queue_limit, 0, "0: no waiting at all");
}

#[test]
fn transport_limits_out_of_range_are_refused_naming_the_key() {
    for (key, value) in [
        ("HEADER_READ_TIMEOUT", "0"),
        ("BODY_READ_TIMEOUT", "0"),
        ("REQUEST_TIMEOUT", "601"),
        ("SHUTDOWN_TIMEOUT", "-1"),
        ("MAX_CONNECTIONS", "0"),
        ("HASH_QUEUE_LIMIT", "lots"),
    ] {
        let error = config_with(&[(key, value)]).expect_err(key);
        assert!(error.to_string().contains(key), "{key}: {error}");
    }
}

#[test]
fn database_and_start_up_timeouts_default_to_5_and_30_seconds() {
    let config = config_with(&[]).expect("valid");
    assert_eq!(config.database_timeout, Duration::from_secs(5));
    assert_eq!(config.startup_timeout, Duration::from_secs(30));
    let config =
        config_with(&[("DATABASE_TIMEOUT", "2"), ("STARTUP_TIMEOUT", "0")]).expect("valid");
    assert_eq!(config.database_timeout, Duration::from_secs(2));
    assert_eq!(config.startup_timeout, Duration::ZERO);
}

#[test]
fn a_database_timeout_of_zero_or_past_five_minutes_is_refused() {
    for (key, value) in [
        ("DATABASE_TIMEOUT", "0"),
        ("DATABASE_TIMEOUT", "301"),
        ("DATABASE_TIMEOUT", "5s"),
        ("STARTUP_TIMEOUT", "-1"),
        ("STARTUP_TIMEOUT", "3601"),
    ] {
        let error = config_with(&[(key, value)]).expect_err(value);
        assert!(error.to_string().contains(key), "{key}: {error}");
    }
}

#[test]
fn by_default_mail_goes_to_mail_dir_from_localhost_with_links_to_the_default_address() {
    let config = config_with(&[]).expect("defaults");
    assert!(config.mail.smtp_url.is_none());
    assert_eq!(config.mail.dir, std::path::Path::new("mail/"));
    assert_eq!(config.mail.from.to_string(), "no-reply@localhost");
    assert_eq!(config.public_url, "http://localhost:5000");
    assert_eq!(
        config.password_reset_lifetime,
        auth_domain::account_mail::DEFAULT_RESET_LIFETIME
    );
    assert_eq!(config.email_verification, EmailVerification::Optional);
}

#[test]
fn mail_settings_are_read_as_written() {
    let config = config_with(&[
        ("SMTP_URL", "smtps://ada:hunter2@mail.example.com"),
        ("MAIL_FROM", "Auth Service <auth@example.com>"),
        ("MAIL_DIR", "/var/spool/auth"),
        ("PUBLIC_URL", "https://example.com/auth/"),
        ("PASSWORD_RESET_LIFETIME", "900"),
        ("EMAIL_VERIFICATION", "Required"),
    ])
    .expect("valid");
    let smtp = config.mail.smtp_url.as_ref().expect("set");
    assert_eq!(smtp.expose(), "smtps://ada:hunter2@mail.example.com");
    assert_eq!(config.mail.from.email.to_string(), "auth@example.com");
    assert_eq!(config.mail.from.name.as_deref(), Some("Auth Service"));
    assert_eq!(config.mail.dir, std::path::Path::new("/var/spool/auth"));
    assert_eq!(config.public_url, "https://example.com/auth");
    assert_eq!(config.password_reset_lifetime, time::Duration::minutes(15));
    assert_eq!(config.email_verification, EmailVerification::Required);
    for url in [
        "smtp://mail.example.com",
        "smtp://mail.example.com:2525?tls=required",
        "smtp://ada:p%40ss@mail.example.com:587?tls=opportunistic",
    ] {
        let config = config_with(&[("SMTP_URL", url)]).expect(url);
        assert!(config.mail.smtp_url.is_some(), "{url}");
    }
    let empty = config_with(&[("SMTP_URL", "")]).expect("empty is unset");
    assert!(empty.mail.smtp_url.is_none());
}

#[test]
fn the_smtp_password_is_never_shown_in_debug_output_or_errors() {
    let config =
        config_with(&[("SMTP_URL", "smtps://ada:hunter2@mail.example.com")]).expect("valid");
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(
        debug.contains("smtps://ada:[redacted]@mail.example.com"),
        "{debug}"
    );
    for bad in [
        "smtq://ada:hunter2@mail.example.com",
        "smtps://ada:hunter2@mail.example.com?tls=required",
        "smtp://ada:hunter2@:25",
        "smtp://ada:hunter2@mail.example.com",
    ] {
        let error = config_with(&[("SMTP_URL", bad)]).expect_err(bad);
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
