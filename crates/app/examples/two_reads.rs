//! The benchmark's baseline, not part of the service: an axum server whose one endpoint,
//! `GET /two-reads`, does two bare sea-orm primary-key reads of a user (what an
//! authenticated request must cost at the least: its session and its user), with no
//! session, cookie or login layer. `cargo xtask bench` runs it beside the app on the same
//! database, so that `GET /profile` can be compared with it in one run.
//!
//! Usage: `DATABASE_URL=... PORT=... two_reads` (SQL backends only; the schema must exist,
//! and the first user in the table is the one read).

use std::net::SocketAddr;

use anyhow::Context as _;
use auth_store_sql::entity::users;
use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::{json, Value};

#[derive(Clone)]
struct Baseline {
    db: DatabaseConnection,
    user: uuid::Uuid,
}

async fn two_reads(State(baseline): State<Baseline>) -> Result<Json<Value>, StatusCode> {
    let mut found = 0;
    for _ in 0..2 {
        let user = users::Entity::find_by_id(baseline.user)
            .one(&baseline.db)
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        found += usize::from(user.is_some());
    }
    Ok(Json(json!({ "found": found })))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL is required")?;
    let port: u16 = std::env::var("PORT").context("PORT is required")?.parse()?;
    let db = auth_store_sql::connect(&url).await?;
    let user = users::Entity::find()
        .one(&db)
        .await?
        .context("the users table is empty: register a user first")?
        .id;
    let app = Router::new()
        .route(
            "/",
            get(|| async { Json(json!({ "message": "baseline" })) }),
        )
        .route("/two-reads", get(two_reads))
        .with_state(Baseline { db, user });
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
