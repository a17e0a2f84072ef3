//! `kill -9` in the middle of a storm of registrations and logins, then a restart: every
//! registration that was answered 201 logs in, every session that was answered with a
//! cookie is valid or cleanly gone, and no row or document is half written.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use mongodb::bson::{doc, Document};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database as Orm, DbBackend, Statement};

use crate::{
    app::{self, App, Database, TempDir},
    mongo::PrivateMongo,
    private_postgres::PrivatePostgres,
};

/// Clients registering and logging in at once.
const CLIENTS: usize = 16;

/// How long the storm runs before the kill.
const STORM: Duration = Duration::from_millis(2500);

/// What the storm was answered.
#[derive(Default)]
struct Answered {
    /// Emails whose registration was answered 201.
    registered: Vec<String>,
    /// Session cookies a login was answered with.
    cookies: Vec<String>,
}

/// Runs the storm against `app` and kills it (`kill -9`) while requests are in flight.
async fn storm_then_kill(app: App, label: &str) -> Answered {
    let app = Arc::new(app);
    let answered = Arc::new(Mutex::new(Answered::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU32::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (app, answered, stop, next) =
            (app.clone(), answered.clone(), stop.clone(), next.clone());
        let label = label.to_owned();
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let email = format!(
                    "{label}-{}@example.com",
                    next.fetch_add(1, Ordering::Relaxed)
                );
                let Ok(registered) = app.register(&email).await else {
                    return;
                };
                if registered.status() != StatusCode::CREATED {
                    continue;
                }
                answered
                    .lock()
                    .expect("not poisoned")
                    .registered
                    .push(email.clone());
                let Ok(login) = app.login(&email).await else {
                    return;
                };
                if let Some(cookie) = app::session_cookie(&login) {
                    answered.lock().expect("not poisoned").cookies.push(cookie);
                }
            }
        }));
    }
    tokio::time::sleep(STORM).await;
    // Mid-flight: the clients are still sending.
    app::signal(app.pid(), "KILL");
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("a client ends");
    }
    let answered = std::mem::take(&mut *answered.lock().expect("not poisoned"));
    assert!(
        answered.registered.len() >= CLIENTS,
        "the storm got too few answers to mean anything: {}",
        answered.registered.len()
    );
    eprintln!(
        "crash: {} registrations and {} logins answered before kill -9",
        answered.registered.len(),
        answered.cookies.len()
    );
    answered
}

/// After the restart: every answered registration logs in, every answered session is
/// valid or cleanly gone (401, never a 500).
async fn assert_nothing_answered_was_lost(app: &App, answered: &Answered) {
    for email in &answered.registered {
        let login = app.login(email).await.expect("answered");
        assert_eq!(login.status(), StatusCode::OK, "{email} was answered 201");
    }
    for cookie in &answered.cookies {
        let status = app.profile(cookie).await.expect("answered").status();
        assert!(
            matches!(status, StatusCode::OK | StatusCode::UNAUTHORIZED),
            "a session answered with a cookie: {status}"
        );
    }
}

/// No half-written row: every user is whole, every session parses and belongs to a user.
async fn assert_sql_tables_whole(url: &str) {
    let db = Orm::connect(url).await.expect("the database opens");
    let backend = db.get_database_backend();
    let count = |sql: &str| {
        let db = &db;
        let statement = Statement::from_string(backend, sql.to_owned());
        async move {
            let row = db
                .query_one(statement)
                .await
                .expect("a count")
                .expect("a row");
            row.try_get_by_index::<i64>(0).expect("a number")
        }
    };
    let broken_users = count(
        "SELECT count(*) FROM users WHERE email IS NULL OR email = '' OR username IS NULL \
         OR username = '' OR password_hash NOT LIKE '$argon2id$%'",
    )
    .await;
    assert_eq!(broken_users, 0, "half-written users");
    let owner = match backend {
        DbBackend::Postgres => "CAST(s.user_id AS uuid)",
        _ => "unhex(replace(s.user_id, '-', ''))",
    };
    let orphans = count(&format!(
        "SELECT count(*) FROM sessions s LEFT JOIN users u ON u.id = {owner} \
         WHERE s.user_id IS NOT NULL AND u.id IS NULL"
    ))
    .await;
    assert_eq!(orphans, 0, "sessions of no user");
    let rows = db
        .query_all(Statement::from_string(backend, "SELECT data FROM sessions"))
        .await
        .expect("sessions");
    for row in rows {
        let data: String = row.try_get_by_index(0).expect("data");
        let parsed: serde_json::Value = serde_json::from_str(&data).expect("session JSON");
        assert!(parsed.is_object(), "session data: {data}");
    }
    db.close().await.expect("closed");
}

pub(crate) async fn sqlite() {
    let dir = TempDir::new("crash-sqlite");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("auth.db").display());
    let database = Database::Sql(url.clone());
    let answered = storm_then_kill(App::start(&database).await, "sqlite").await;
    let app = App::start(&database).await;
    assert_nothing_answered_was_lost(&app, &answered).await;
    app.kill();
    assert_sql_tables_whole(&url).await;
}

pub(crate) async fn postgres() {
    let postgres = PrivatePostgres::start();
    let database = Database::Sql(postgres.url());
    let answered = storm_then_kill(App::start(&database).await, "postgres").await;
    // The server crashes too, and recovers from its write-ahead log.
    postgres.kill_server();
    postgres.start_server();
    let app = App::start(&database).await;
    assert_nothing_answered_was_lost(&app, &answered).await;
    app.kill();
    assert_sql_tables_whole(&postgres.url()).await;
}

pub(crate) async fn mongodb() {
    let mut mongo = PrivateMongo::start();
    let database = Database::Mongo {
        url: mongo.url(),
        db: "crash".to_owned(),
    };
    let answered = storm_then_kill(App::start(&database).await, "mongodb").await;
    // The server crashes too: what it acknowledged was in its journal (`j: true`).
    mongo.kill_server();
    mongo.start_server();
    let app = App::start(&database).await;
    assert_nothing_answered_was_lost(&app, &answered).await;
    app.kill();

    let client = mongodb::Client::with_uri_str(mongo.url())
        .await
        .expect("a client");
    let db = client.database("crash");
    let whole_user = doc! {
        "email": {"$type": "string", "$ne": ""},
        "username": {"$type": "string", "$ne": ""},
        "password_hash": {"$regex": "^\\$argon2id\\$"},
        "created_at_us": {"$exists": true},
    };
    let users = db.collection::<Document>("users");
    let all = users.count_documents(doc! {}).await.expect("a count");
    let whole = users.count_documents(whole_user).await.expect("a count");
    assert_eq!(all, whole, "half-written users");
    assert!(all >= u64::try_from(answered.registered.len()).expect("fits"));
    let sessions = db.collection::<Document>("sessions");
    let all = sessions.count_documents(doc! {}).await.expect("a count");
    let whole = sessions
        .count_documents(doc! {
            "data": {"$type": "string"},
            "expires_at": {"$type": "date"},
        })
        .await
        .expect("a count");
    assert_eq!(all, whole, "half-written sessions");
}
