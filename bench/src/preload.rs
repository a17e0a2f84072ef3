//! Sessions of other users, written straight into the database before measuring: a
//! million logins through the API would take hours. Rows go in as multi-row `INSERT`s of
//! [`ROWS_PER_STATEMENT`] inside transactions (`insert_many` on MongoDB), and look like
//! the ones the stores write: the key is the hex SHA-256 of a fresh session id, the data
//! is a login as the test kit builds it, spread over one fake user per ten sessions (no
//! foreign key asks for user rows), with instants in each engine's own representation.
//! On MongoDB each document carries the snapshot of its user that the store writes at
//! login ([`owner_document`]), so that it loads as a logged-in session, as a real one does.
//!
//! That representation is the stores' private business, restated here because no public
//! function writes a session in bulk: so after every preload one live session is loaded
//! back through the store itself ([`SqlSessionStore`], [`MongoSessionStore`]) and one
//! expired session must stay invisible to it. If a store changes its format, the bench
//! fails here rather than measure rows the app would not read.

use std::{
    fmt,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};
use auth_domain::{
    session::{self, storage_key, Owner},
    timestamp::truncate_to_micros,
    OwnedSessions as _, UserId,
};
use auth_store_mongo::{owner_document, MongoSessionStore, DEFAULT_SESSIONS_COLLECTION};
use auth_store_sql::SqlSessionStore;
use auth_testkit::{
    db::Backend,
    sessions::{logged_in_as, stand_in},
    TestDatabase,
};
use bson::{doc, Bson, Document};
use sea_orm::{
    sea_query::{Alias, Expr, Query},
    ConnectionTrait as _, DatabaseConnection, DbBackend, TransactionTrait as _, Value,
};
use time::{
    format_description::BorrowedFormatItem, macros::format_description, OffsetDateTime,
    PrimitiveDateTime, UtcOffset,
};
use tower_sessions::session::{Id, Record};

/// Rows per `INSERT`: six parameters a row keeps a statement under SQLite's 32 766.
const ROWS_PER_STATEMENT: usize = 5_000;
/// Statements per transaction: one commit (one fsync) per 50 000 rows.
const STATEMENTS_PER_TRANSACTION: usize = 10;
/// Documents per `insert_many`.
const DOCUMENTS_PER_INSERT: usize = 10_000;
/// Sessions per fake user.
const SESSIONS_PER_USER: u64 = 10;
/// Progress is printed every this many rows.
const PROGRESS_EVERY: u64 = 200_000;

/// Where sessions are written.
enum Target {
    Sql(DatabaseConnection),
    Mongo(mongodb::Database),
}

/// Whether preloaded sessions are alive or past their expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Expiring between half a lifetime and a lifetime from now, as if last seen within
    /// the last half lifetime.
    Live,
    /// Expired between a second and half a lifetime ago: what the purge deletes.
    Expired,
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Live => "live",
            Self::Expired => "expired",
        })
    }
}

/// What one preload wrote.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Preloaded {
    /// Sessions written.
    pub(crate) sessions: u64,
    /// Fake users they belong to.
    pub(crate) users: u64,
    /// Wall time of the whole preload, checks included.
    pub(crate) took: Duration,
    /// The latest expiry written.
    pub(crate) latest_expiry: OffsetDateTime,
}

/// A connection to the database under test that writes sessions into it.
pub(crate) struct Preloader {
    target: Target,
}

/// One session row, in every store's terms.
struct Row {
    id: Id,
    key: String,
    /// Which of the preload's fake users it belongs to.
    user: usize,
    /// The user as the store finds it in the data.
    user_id: Option<String>,
    data: String,
    last_seen_at: OffsetDateTime,
    expires_at: OffsetDateTime,
}

/// A row kept to be loaded back through the store.
struct Sample {
    id: Id,
    user: UserId,
    expires_at: OffsetDateTime,
}

impl Row {
    /// What [`Preloader::check`] needs of this row (`None` if it has no user).
    fn sample(&self) -> Option<Sample> {
        Some(Sample {
            id: self.id,
            user: self.user_id.as_deref()?.parse().ok()?,
            expires_at: self.expires_at,
        })
    }
}

impl Preloader {
    /// Connects to `database`, whose schema (or indexes) the app has made.
    pub(crate) async fn connect(database: &TestDatabase) -> Result<Self> {
        let target = if database.backend() == Backend::Mongodb {
            Target::Mongo(
                auth_store_mongo::connect(database.url(), database.mongo_db_name())
                    .await
                    .context("cannot connect to MongoDB to preload sessions")?,
            )
        } else {
            Target::Sql(
                auth_store_sql::connect(database.url())
                    .await
                    .context("cannot connect to the database to preload sessions")?,
            )
        };
        Ok(Self { target })
    }

    /// Writes `count` sessions, `expiry` as asked, and checks that the store reads them
    /// as the kind of session they are meant to be.
    pub(crate) async fn insert(&self, count: u64, expiry: Expiry) -> Result<Preloaded> {
        let started = Instant::now();
        let users = count.div_ceil(SESSIONS_PER_USER).max(1);
        let rows = Rows::new(count, users, expiry);
        let (latest_expiry, sample) = match &self.target {
            Target::Sql(db) => insert_sql(db, rows, started).await?,
            Target::Mongo(db) => insert_mongo(db, rows, started).await?,
        };
        if count > 0 {
            let sample = sample.context("a preloaded session names no user")?;
            self.check(&sample, expiry).await?;
        }
        Ok(Preloaded {
            sessions: count,
            users,
            took: started.elapsed(),
            latest_expiry,
        })
    }

    /// Whether a session that expired at or before `up_to` is still stored (SQL only: the
    /// purge's progress). A probe of the expiry index, cheap whatever the table holds.
    pub(crate) async fn expired_left(&self, up_to: OffsetDateTime) -> Result<bool> {
        let Target::Sql(db) = &self.target else {
            bail!("only the SQL stores are purged by the app");
        };
        let backend = db.get_database_backend();
        let probe = Query::select()
            .expr(Expr::val(1))
            .from(Alias::new("sessions"))
            .and_where(Expr::col(Alias::new("expires_at")).lte(sql_instant(backend, up_to)))
            .limit(1)
            .to_owned();
        Ok(db.query_one(backend.build(&probe)).await?.is_some())
    }

    /// Loads `sample` through the store the app uses: a live one must come back with its
    /// user and expiry, an expired one not at all.
    async fn check(&self, sample: &Sample, expiry: Expiry) -> Result<()> {
        let loaded = match &self.target {
            Target::Sql(db) => {
                SqlSessionStore::new(db.clone())
                    .load_owned(&sample.id.to_string())
                    .await
            }
            Target::Mongo(db) => {
                MongoSessionStore::new(db, DEFAULT_SESSIONS_COLLECTION)
                    .load_owned(&sample.id.to_string())
                    .await
            }
        }
        .context("the store cannot load a preloaded session")?;
        match (expiry, loaded) {
            (Expiry::Live, Some(record)) => {
                let login = record.data.login();
                ensure!(
                    login.as_ref().map(|login| login.user_id) == Some(sample.user),
                    "a preloaded session loads back with another user: the bench no longer \
                     writes sessions as the store does"
                );
                // Only MongoDB keeps the owner in the session; SQL joins a user row, which
                // the fake users do not have.
                if let Target::Mongo(_) = &self.target {
                    let owned = record
                        .owner
                        .as_ref()
                        .is_some_and(|owner| login.as_ref().is_some_and(|login| owner.owns(login)));
                    ensure!(
                        owned,
                        "a preloaded session loads back without the owner of its login: the \
                         bench no longer writes sessions as the store does"
                    );
                }
                let drift = (record.expires_at - sample.expires_at).abs();
                ensure!(
                    drift < time::Duration::milliseconds(1),
                    "a preloaded session loads back with its expiry {drift} off: the bench \
                     no longer writes instants as the store does"
                );
                Ok(())
            }
            (Expiry::Live, None) => bail!(
                "the store does not find a live preloaded session: the bench no longer writes \
                 sessions as the store does"
            ),
            (Expiry::Expired, None) => Ok(()),
            (Expiry::Expired, Some(_)) => bail!(
                "the store loads an expired preloaded session: the bench no longer writes \
                 instants as the store does"
            ),
        }
    }

    /// Closes the connection.
    pub(crate) async fn close(self) {
        if let Target::Sql(db) = self.target {
            if let Err(error) = db.close().await {
                eprintln!("warning: closing the preload connection: {error}");
            }
        }
    }
}

/// One of the users the preloaded sessions belong to, never stored as a user.
struct FakeUser {
    /// The `user_id` the store derives from the login.
    user_id: Option<String>,
    /// The login, as the store encodes session data.
    data: String,
    /// The user as a login snapshots them in a MongoDB session.
    owner: Owner,
}

/// The rows of one preload, made as they are written.
struct Rows {
    count: u64,
    next: u64,
    users: Vec<FakeUser>,
    now: OffsetDateTime,
    /// A session's lifetime, as the kit's records have it.
    lifetime: time::Duration,
    expiry: Expiry,
}

impl Rows {
    /// `count` sessions of `users` fake users, taking turns.
    fn new(count: u64, users: u64, expiry: Expiry) -> Self {
        let now = auth_domain::clock::Clock::system().now();
        let mut lifetime = time::Duration::hours(1);
        let users = (0..users)
            .map(|_| {
                let id = UserId::generate();
                let Record {
                    data, expiry_date, ..
                } = logged_in_as(id);
                lifetime = expiry_date - now;
                FakeUser {
                    user_id: session::user_id(&data).map(|user| user.to_string()),
                    data: serde_json::to_string(&data).expect("session data is plain JSON"),
                    owner: Owner::of(&stand_in(id)),
                }
            })
            .collect();
        Self {
            count,
            next: 0,
            users,
            now,
            lifetime,
            expiry,
        }
    }
}

impl Iterator for Rows {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        if self.next == self.count {
            return None;
        }
        let at = self.next;
        self.next += 1;
        let user = (at % self.users.len() as u64) as usize;
        let FakeUser { user_id, data, .. } = &self.users[user];
        // Spread evenly over half a lifetime, so that the expiry index is as varied as a
        // real one.
        let spread = self.lifetime / 2 * (at as f64 / self.count as f64);
        let last_seen_at = match self.expiry {
            Expiry::Live => self.now - spread,
            Expiry::Expired => self.now - self.lifetime - time::Duration::SECOND - spread,
        };
        let id = Id::default();
        Some(Row {
            key: storage_key(&id.to_string()),
            id,
            user,
            user_id: user_id.clone(),
            data: data.clone(),
            last_seen_at: truncate_to_micros(last_seen_at),
            expires_at: truncate_to_micros(last_seen_at + self.lifetime),
        })
    }
}

/// Writes `rows` in transactions of multi-row inserts; returns the latest expiry and the
/// first row, to check.
async fn insert_sql(
    db: &DatabaseConnection,
    mut rows: Rows,
    started: Instant,
) -> Result<(OffsetDateTime, Option<Sample>)> {
    let backend = db.get_database_backend();
    let total = rows.count;
    let mut latest = OffsetDateTime::UNIX_EPOCH;
    let mut sample = None;
    let mut written = 0_u64;
    loop {
        let transaction = db.begin().await.context("cannot begin a transaction")?;
        let mut statements = 0;
        while statements < STATEMENTS_PER_TRANSACTION {
            let mut insert = Query::insert();
            insert.into_table(Alias::new("sessions")).columns(
                [
                    "id",
                    "user_id",
                    "data",
                    "created_at",
                    "last_seen_at",
                    "expires_at",
                ]
                .map(Alias::new),
            );
            let mut in_statement = 0;
            for row in rows.by_ref().take(ROWS_PER_STATEMENT) {
                latest = latest.max(row.expires_at);
                if sample.is_none() {
                    sample = row.sample();
                }
                let seen = sql_instant(backend, row.last_seen_at);
                let values: [Value; 6] = [
                    row.key.into(),
                    row.user_id.into(),
                    row.data.into(),
                    seen.clone(),
                    seen,
                    sql_instant(backend, row.expires_at),
                ];
                insert
                    .values(values.map(Into::into))
                    .context("cannot build the insert")?;
                in_statement += 1;
            }
            if in_statement == 0 {
                break;
            }
            transaction
                .execute(backend.build(&insert))
                .await
                .context("cannot insert sessions")?;
            statements += 1;
            written = progress(written, in_statement as u64, total, started);
        }
        if statements == 0 {
            transaction
                .rollback()
                .await
                .context("cannot end a transaction")?;
            break;
        }
        transaction
            .commit()
            .await
            .context("cannot commit preloaded sessions")?;
    }
    Ok((latest, sample))
}

/// Writes `rows` with `insert_many`; returns the latest expiry and the first row, to check.
async fn insert_mongo(
    db: &mongodb::Database,
    mut rows: Rows,
    started: Instant,
) -> Result<(OffsetDateTime, Option<Sample>)> {
    let sessions = db.collection::<Document>(DEFAULT_SESSIONS_COLLECTION);
    // Encoded once per user, not once per document.
    let owners = rows
        .users
        .iter()
        .map(|user| owner_document(&user.owner))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot encode a session owner")?;
    let total = rows.count;
    let mut latest = OffsetDateTime::UNIX_EPOCH;
    let mut sample = None;
    let mut written = 0_u64;
    loop {
        let mut documents = Vec::with_capacity(DOCUMENTS_PER_INSERT);
        for row in rows.by_ref().take(DOCUMENTS_PER_INSERT) {
            latest = latest.max(row.expires_at);
            if sample.is_none() {
                sample = row.sample();
            }
            documents.push(mongo_document(&row, &owners[row.user])?);
        }
        if documents.is_empty() {
            break;
        }
        let inserted = documents.len() as u64;
        sessions
            .insert_many(documents)
            .await
            .context("cannot insert sessions")?;
        written = progress(written, inserted, total, started);
    }
    Ok((latest, sample))
}

/// Counts `more` rows written and prints progress whenever a multiple of
/// [`PROGRESS_EVERY`] is passed.
fn progress(written: u64, more: u64, total: u64, started: Instant) -> u64 {
    let now = written + more;
    if now / PROGRESS_EVERY > written / PROGRESS_EVERY && now < total {
        println!(
            "bench:   {now}/{total} sessions ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
    }
    now
}

/// How `auth-store-sql` binds an instant: UTC at microseconds; on SQLite fixed-width
/// RFC 3339 text (which sorts in time order), on MySQL a `DATETIME` of the UTC wall
/// clock, on PostgreSQL a `timestamptz`.
fn sql_instant(backend: DbBackend, at: OffsetDateTime) -> Value {
    const SQLITE_FORMAT: &[BorrowedFormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    let at = truncate_to_micros(at).to_offset(UtcOffset::UTC);
    match backend {
        DbBackend::Sqlite => Value::from(
            at.format(SQLITE_FORMAT)
                .expect("an instant of this century formats"),
        ),
        DbBackend::MySql => Value::from(PrimitiveDateTime::new(at.date(), at.time())),
        DbBackend::Postgres => Value::from(at),
    }
}

/// A session document as `auth-store-mongo` writes one: dates for the server (the TTL
/// index, `load`'s filter) rounded down to the millisecond, the exact expiry in
/// microseconds, and the snapshot of the user, `owner`.
fn mongo_document(row: &Row, owner: &Document) -> Result<Document> {
    let micros = |at: OffsetDateTime| {
        i64::try_from(at.unix_timestamp_nanos() / 1_000).context("an instant out of range")
    };
    let date = |micros: i64| bson::DateTime::from_millis(micros.div_euclid(1_000));
    let seen = date(micros(row.last_seen_at)?);
    let expires_at_us = micros(row.expires_at)?;
    Ok(doc! {
        "_id": &row.key,
        "data": &row.data,
        "user_id": row.user_id.as_deref().map_or(Bson::Null, Bson::from),
        "created_at": seen,
        "last_seen_at": seen,
        "expires_at": date(expires_at_us),
        "expires_at_us": expires_at_us,
        "owner": owner.clone(),
    })
}
