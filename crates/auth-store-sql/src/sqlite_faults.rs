//! SQLite files that could not be written: no pooled connection outlives the fault, and
//! readiness says so while it lasts.
//!
//! A SQLite connection opened while its file or directory is read-only opens read-only,
//! and stays so for life: after the spell the pool would keep handing out connections
//! that fail every write, for as long as the process runs. So every store error is
//! [`record`]ed, and so is the outcome of a write that writes nothing, which the pool runs
//! on every new connection (`connect`'s `after_connect`): a read-only, I/O or cannot-open
//! error marks the moment, and the pool closes, instead of handing out, every connection
//! opened before the last such moment ([`opened_since_the_last_fault`]), and opens fresh
//! ones, which see the file as it is now. A full disk poisons no connection, but like the others it makes readiness fail for
//! [`READINESS_WINDOW`] after the last write it refused ([`writes_failed_lately`]).
//!
//! The marks are per process, not per pool: a process serves one database, and a spurious
//! recycling of another pool's connections after a fault costs one reconnection each.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        OnceLock,
    },
    time::{Duration, Instant},
};

use sea_orm::{sqlx, DbErr};

use crate::error::database_error;

/// How long after the last write refused for want of a writable file readiness fails: a
/// probe's interval or two, so that a load balancer sees the spell, and sees its end soon.
pub(crate) const READINESS_WINDOW: Duration = Duration::from_secs(5);

/// The last read-only, I/O or cannot-open error, in microseconds since [`epoch`] plus one;
/// 0 when none happened.
static LAST_POISONING: AtomicU64 = AtomicU64::new(0);

/// The last write refused for want of a writable file (those, or a full disk), likewise.
static LAST_WRITE_FAILURE: AtomicU64 = AtomicU64::new(0);

/// SQLite's primary result codes (the low byte of the extended code) that matter here.
const SQLITE_IOERR: i32 = 10;
const SQLITE_READONLY: i32 = 8;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Now, as the marks count it (never 0).
fn now() -> u64 {
    u64::try_from(epoch().elapsed().as_micros())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

/// Notes `err` if SQLite refused a write for want of a writable file (see the module).
pub(crate) fn record(err: &DbErr) {
    if let Some(db) = database_error(err) {
        record_code(db);
    }
}

/// [`record`] for an error straight from sqlx (the pool's own statements).
pub(crate) fn record_sqlx(err: &sqlx::Error) {
    if let sqlx::Error::Database(db) = err {
        record_code(db.as_ref());
    }
}

fn record_code(db: &dyn sqlx::error::DatabaseError) {
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_none() {
        return;
    }
    let Some(code) = db.code().and_then(|code| code.parse::<i32>().ok()) else {
        return;
    };
    let now = now();
    match code & 0xff {
        SQLITE_READONLY | SQLITE_IOERR | SQLITE_CANTOPEN => {
            LAST_POISONING.fetch_max(now, Ordering::Relaxed);
            LAST_WRITE_FAILURE.fetch_max(now, Ordering::Relaxed);
        }
        SQLITE_FULL => {
            LAST_WRITE_FAILURE.fetch_max(now, Ordering::Relaxed);
        }
        _ => {}
    }
}

/// Whether a connection opened `age` ago was opened after the last read-only, I/O or
/// cannot-open error: only such a connection is handed out again.
pub(crate) fn opened_since_the_last_fault(age: Duration) -> bool {
    let last = LAST_POISONING.load(Ordering::Relaxed);
    if last == 0 {
        return true;
    }
    let age = u64::try_from(age.as_micros()).unwrap_or(u64::MAX);
    now().saturating_sub(age) > last
}

/// Whether a write was refused for want of a writable file within [`READINESS_WINDOW`].
pub(crate) fn writes_failed_lately() -> bool {
    let last = LAST_WRITE_FAILURE.load(Ordering::Relaxed);
    let window = u64::try_from(READINESS_WINDOW.as_micros()).unwrap_or(u64::MAX);
    last != 0 && now().saturating_sub(last) <= window
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_opened_before_a_fault_is_not_handed_out_again() {
        LAST_POISONING.fetch_max(now(), Ordering::Relaxed);
        assert!(!opened_since_the_last_fault(Duration::from_secs(3600)));
        std::thread::sleep(Duration::from_millis(2));
        assert!(opened_since_the_last_fault(Duration::ZERO));
        assert!(!opened_since_the_last_fault(Duration::from_millis(50)));
    }
}
