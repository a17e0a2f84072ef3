//! Sessions of other users, written straight into the database before measuring: a
//! million logins through the API would take hours. They go in through the stores' own
//! bulk writes ([`SqlSessionStore::create_many`], [`MongoSessionStore::create_many`], the
//! stores' cargo feature `bulk`), in batches of [`SESSIONS_PER_BATCH`], so that the bench
//! knows nothing of how a store encodes a session. Each is a login as the test kit builds
//! it, with its owner attached as a login attaches it, spread over one fake user per ten
//! sessions (no foreign key asks for user rows).
//!
//! After every preload one live session is loaded back through the store and one expired
//! session must stay invisible to it: the bench measures sessions the app reads as the
//! kind they are meant to be.

use std::{
    fmt,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};
use auth_domain::{
    session::{self, Owner},
    OwnedSessions as _, UserId,
};
use auth_store_mongo::{MongoSessionStore, DEFAULT_SESSIONS_COLLECTION};
use auth_store_sql::SqlSessionStore;
use auth_testkit::{
    db::Backend,
    sessions::{logged_in_as, stand_in},
    TestDatabase,
};
use sea_orm::DatabaseConnection;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};

/// Sessions per bulk write: on SQL one transaction (one commit, one fsync) each.
const SESSIONS_PER_BATCH: usize = 50_000;
/// Sessions per fake user.
const SESSIONS_PER_USER: u64 = 10;
/// Progress is printed every this many rows.
const PROGRESS_EVERY: u64 = 200_000;

/// The store the sessions are written through.
enum Target {
    Sql(SqlSessionStore, DatabaseConnection),
    Mongo(MongoSessionStore),
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

/// A session kept to be loaded back through the store.
struct Sample {
    id: Id,
    user: UserId,
    expires_at: OffsetDateTime,
}

impl Preloader {
    /// Connects to `database`, whose schema (or indexes) the app has made.
    pub(crate) async fn connect(database: &TestDatabase) -> Result<Self> {
        let target = if database.backend() == Backend::Mongodb {
            let db = auth_store_mongo::connect(database.url(), database.mongo_db_name())
                .await
                .context("cannot connect to MongoDB to preload sessions")?;
            Target::Mongo(MongoSessionStore::new(&db, DEFAULT_SESSIONS_COLLECTION))
        } else {
            let db = auth_store_sql::connect(database.url())
                .await
                .context("cannot connect to the database to preload sessions")?;
            Target::Sql(SqlSessionStore::new(db.clone()), db)
        };
        Ok(Self { target })
    }

    /// Writes `count` sessions, `expiry` as asked, and checks that the store reads them
    /// as the kind of session they are meant to be.
    pub(crate) async fn insert(&self, count: u64, expiry: Expiry) -> Result<Preloaded> {
        let started = Instant::now();
        let users = count.div_ceil(SESSIONS_PER_USER).max(1);
        let mut rows = Rows::new(count, users, expiry);
        let mut latest_expiry = OffsetDateTime::UNIX_EPOCH;
        let mut sample = None;
        let mut written = 0_u64;
        loop {
            let batch: Vec<(Record, OffsetDateTime)> =
                rows.by_ref().take(SESSIONS_PER_BATCH).collect();
            let Some((first, _)) = batch.first() else {
                break;
            };
            if sample.is_none() {
                sample = Some(Sample {
                    id: first.id,
                    user: session::user_id(&first.data)
                        .context("a preloaded session names no user")?,
                    expires_at: first.expiry_date,
                });
            }
            for (record, _) in &batch {
                latest_expiry = latest_expiry.max(record.expiry_date);
            }
            match &self.target {
                Target::Sql(store, _) => store.create_many(&batch).await,
                Target::Mongo(store) => store.create_many(&batch).await,
            }
            .context("cannot preload sessions")?;
            written = progress(written, batch.len() as u64, count, started);
        }
        if let Some(sample) = sample {
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
    /// purge's progress).
    pub(crate) async fn expired_left(&self, up_to: OffsetDateTime) -> Result<bool> {
        let Target::Sql(store, _) = &self.target else {
            bail!("only the SQL stores are purged by the app");
        };
        store
            .holds_expired_at(up_to)
            .await
            .context("cannot probe for expired sessions")
    }

    /// Loads `sample` through the store the app uses: a live one must come back with its
    /// user and expiry, an expired one not at all.
    async fn check(&self, sample: &Sample, expiry: Expiry) -> Result<()> {
        let id = sample.id.to_string();
        let loaded = match &self.target {
            Target::Sql(store, _) => store.load_owned(&id).await,
            Target::Mongo(store) => store.load_owned(&id).await,
        }
        .context("the store cannot load a preloaded session")?;
        match (expiry, loaded) {
            (Expiry::Live, Some(record)) => {
                let login = record.data.login();
                ensure!(
                    login.as_ref().map(|login| login.user_id) == Some(sample.user),
                    "a preloaded session loads back with another user"
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
                        "a preloaded session loads back without the owner of its login"
                    );
                }
                let drift = (record.expires_at - sample.expires_at).abs();
                ensure!(
                    drift < time::Duration::milliseconds(1),
                    "a preloaded session loads back with its expiry {drift} off"
                );
                Ok(())
            }
            (Expiry::Live, None) => bail!("the store does not find a live preloaded session"),
            (Expiry::Expired, None) => Ok(()),
            (Expiry::Expired, Some(_)) => bail!("the store loads an expired preloaded session"),
        }
    }

    /// Closes the connection.
    pub(crate) async fn close(self) {
        if let Target::Sql(_, db) = self.target {
            if let Err(error) = db.close().await {
                eprintln!("warning: closing the preload connection: {error}");
            }
        }
    }
}

/// The sessions of one preload, made as they are written: each with the instant it was
/// last seen.
struct Rows {
    count: u64,
    next: u64,
    /// Each fake user's session data: a login, with its owner attached.
    users: Vec<session::Data>,
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
                    mut data,
                    expiry_date,
                    ..
                } = logged_in_as(id);
                lifetime = expiry_date - now;
                session::put_owner(&mut data, &Owner::of(&stand_in(id)));
                data
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
    type Item = (Record, OffsetDateTime);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next == self.count {
            return None;
        }
        let at = self.next;
        self.next += 1;
        let user = (at % self.users.len() as u64) as usize;
        // Spread evenly over half a lifetime, so that the expiry index is as varied as a
        // real one.
        let spread = self.lifetime / 2 * (at as f64 / self.count as f64);
        let last_seen_at = match self.expiry {
            Expiry::Live => self.now - spread,
            Expiry::Expired => self.now - self.lifetime - time::Duration::SECOND - spread,
        };
        let record = Record {
            id: Id::default(),
            data: self.users[user].clone(),
            expiry_date: last_seen_at + self.lifetime,
        };
        Some((record, last_seen_at))
    }
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
