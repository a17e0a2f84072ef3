//! The benchmark's baseline, not part of the service: an axum server doing bare
//! primary-key reads of a user, with no session, cookie or login layer.
//!
//! - `GET /one-read`: one read, the least any request that touches the database costs.
//! - `GET /two-reads`: two reads, what an authenticated request must cost at the least
//!   (its session and its user).
//!
//! The `bench` binary runs it after the app, on the same database, so that `GET /profile`
//! can be compared with both in one run.
//!
//! Usage: `DATABASE_URL=... PORT=... baseline` on SQL (sea-orm), or
//! `MONGODB_URL=... MONGODB_DB=... PORT=... baseline` on MongoDB (the official driver, on
//! the app's default users collection). The users table or collection must hold a user:
//! the first one found is the one read.
//!
//! The reads are plain SQL and plain documents, not the stores' entities: those are the
//! stores' own business.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{bail, Context as _};
use auth_store_mongo::DEFAULT_USERS_COLLECTION;
use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use bson::{doc, Document};
use mongodb::Collection;
use sea_orm::{
    prelude::{TimeDateTimeWithTimeZone, Uuid},
    ConnectionTrait as _, DatabaseConnection, DbBackend, Statement,
};
use serde_json::{json, Value};

/// The columns of a user row, decoded as the store decodes them.
type UserRow = (Uuid, String, String, String, TimeDateTimeWithTimeZone);

/// Where the one user is read from.
#[derive(Clone)]
enum Baseline {
    Sql {
        db: DatabaseConnection,
        /// The read of the one user, prepared once: every request reads the same row.
        read_user: Statement,
    },
    Mongo {
        users: Collection<Document>,
        /// The user's `_id`.
        id: String,
    },
}

impl Baseline {
    /// Reads the user by its primary key, decoding every column or field; true if found.
    async fn read_user(&self) -> anyhow::Result<bool> {
        match self {
            Self::Sql { db, read_user } => match db.query_one(read_user.clone()).await? {
                Some(row) => {
                    let _: UserRow = row.try_get_many_by_index()?;
                    Ok(true)
                }
                None => Ok(false),
            },
            // The driver decodes the whole document into a `Document`.
            Self::Mongo { users, id } => Ok(users.find_one(doc! { "_id": id }).await?.is_some()),
        }
    }

    /// `reads` reads of the user, one after the other.
    async fn answer(&self, reads: usize) -> Result<Json<Value>, StatusCode> {
        let mut found = 0;
        for _ in 0..reads {
            let user = self
                .read_user()
                .await
                .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
            found += usize::from(user);
        }
        if found == 0 {
            return Err(StatusCode::NOT_FOUND);
        }
        Ok(Json(json!({ "found": found })))
    }
}

async fn one_read(State(baseline): State<Baseline>) -> Result<Json<Value>, StatusCode> {
    baseline.answer(1).await
}

async fn two_reads(State(baseline): State<Baseline>) -> Result<Json<Value>, StatusCode> {
    baseline.answer(2).await
}

/// `SELECT` of the user `id`. The id is bound as a `Uuid`, which sqlx sends in the form the
/// migration gave the column on each engine: `uuid` on PostgreSQL, 16 bytes for MySQL's
/// `binary(16)` and for SQLite's `uuid_text` (which holds the same 16-byte blob).
fn read_user(backend: DbBackend, id: Uuid) -> Statement {
    let placeholder = match backend {
        DbBackend::Postgres => "$1",
        DbBackend::MySql | DbBackend::Sqlite => "?",
    };
    Statement::from_sql_and_values(
        backend,
        format!(
            "SELECT id, email, username, password_hash, created_at FROM users WHERE id = {placeholder}"
        ),
        [id.into()],
    )
}

/// The baseline on the SQL database at `url`, reading its first user.
async fn sql(url: &str) -> anyhow::Result<Baseline> {
    let db = auth_store_sql::connect(url).await?;
    let backend = db.get_database_backend();
    let user: Uuid = db
        .query_one(Statement::from_string(
            backend,
            "SELECT id FROM users LIMIT 1",
        ))
        .await?
        .context("the users table is empty: register a user first")?
        .try_get_by_index(0)?;
    Ok(Baseline::Sql {
        read_user: read_user(backend, user),
        db,
    })
}

/// The baseline on the MongoDB database `db` at `url`, reading its first user.
async fn mongo(url: &str, db: &str) -> anyhow::Result<Baseline> {
    let db = auth_store_mongo::connect(url, db)
        .await
        .context("cannot connect to MongoDB")?;
    let users = db.collection::<Document>(DEFAULT_USERS_COLLECTION);
    let first = users
        .find_one(doc! {})
        .projection(doc! { "_id": 1 })
        .await?
        .context("the users collection is empty: register a user first")?;
    let id = first
        .get_str("_id")
        .context("a user's _id is not a string")?
        .to_owned();
    Ok(Baseline::Mongo { users, id })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::var("PORT")
        .context("PORT is required")?
        .parse()
        .context("PORT must be a port number")?;
    let baseline = match (
        std::env::var("DATABASE_URL").ok(),
        std::env::var("MONGODB_URL").ok(),
    ) {
        (Some(url), None) => sql(&url).await?,
        (None, Some(url)) => {
            let db =
                std::env::var("MONGODB_DB").context("MONGODB_DB is required with MONGODB_URL")?;
            mongo(&url, &db).await?
        }
        _ => bail!("set either DATABASE_URL (SQL) or MONGODB_URL and MONGODB_DB (MongoDB)"),
    };
    let app = Router::new()
        .route("/one-read", get(one_read))
        .route("/two-reads", get(two_reads))
        .with_state(baseline);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    // Exits on SIGTERM or Ctrl-C like the app, so that a profiler around it (the bench's
    // callgrind) sees it end and writes what it counted.
    axum::serve(listener, app)
        .with_graceful_shutdown(terminated())
        .await?;
    Ok(())
}

/// Completes at the first SIGTERM or Ctrl-C.
async fn terminated() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        // Without the handler, SIGTERM still ends the process, only less politely.
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
