//! The benchmark's baseline, not part of the service: an axum server whose one endpoint,
//! `GET /two-reads`, does two bare primary-key reads of a user with sea-orm (what an
//! authenticated request must cost at the least: its session and its user), with no
//! session, cookie or login layer. The `bench` binary runs it after the app, on the same
//! database, so that `GET /profile` can be compared with it in one run.
//!
//! Usage: `DATABASE_URL=... PORT=... two_reads` (SQL backends only; the schema must exist,
//! and the first user in the table is the one read).
//!
//! The reads are plain SQL, not the store's entities: those are the store's own business.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context as _;
use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use sea_orm::{
    prelude::{TimeDateTimeWithTimeZone, Uuid},
    ConnectionTrait as _, DatabaseConnection, DbBackend, DbErr, Statement,
};
use serde_json::{json, Value};

/// The columns of a user row, decoded as the store decodes them.
type UserRow = (Uuid, String, String, String, TimeDateTimeWithTimeZone);

#[derive(Clone)]
struct Baseline {
    db: DatabaseConnection,
    /// The read of the one user, prepared once: every request reads the same row.
    read_user: Statement,
}

impl Baseline {
    /// Reads the user by its primary key, decoding every column.
    async fn read_user(&self) -> Result<Option<UserRow>, DbErr> {
        match self.db.query_one(self.read_user.clone()).await? {
            Some(row) => row.try_get_many_by_index().map(Some),
            None => Ok(None),
        }
    }
}

async fn two_reads(State(baseline): State<Baseline>) -> Result<Json<Value>, StatusCode> {
    let mut found = 0;
    for _ in 0..2 {
        let user = baseline
            .read_user()
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        found += usize::from(user.is_some());
    }
    Ok(Json(json!({ "found": found })))
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL is required")?;
    let port: u16 = std::env::var("PORT")
        .context("PORT is required")?
        .parse()
        .context("PORT must be a port number")?;
    let db = auth_store_sql::connect(&url).await?;
    let backend = db.get_database_backend();
    let user: Uuid = db
        .query_one(Statement::from_string(
            backend,
            "SELECT id FROM users LIMIT 1",
        ))
        .await?
        .context("the users table is empty: register a user first")?
        .try_get_by_index(0)?;
    let app = Router::new()
        .route("/two-reads", get(two_reads))
        .with_state(Baseline {
            read_user: read_user(backend, user),
            db,
        });
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    axum::serve(listener, app).await?;
    Ok(())
}
