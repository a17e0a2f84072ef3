//! How instants are written, so that they read back exactly and compare correctly on every
//! engine.
//!
//! PostgreSQL and MySQL (`datetime(6)`) keep microseconds, the precision of every stored
//! instant ([`auth_domain::timestamp`]). The users' times arrive at it already; a session's
//! expiry, made by tower-sessions, is finer, so every bound instant goes through the
//! domain's rule: what a caller gets back is what was stored, on every engine alike.
//!
//! MySQL gets a `DATETIME` parameter (the UTC wall clock): sqlx sends an `OffsetDateTime` as
//! a `TIMESTAMP`, which the server turns into NULL past 2038-01-19 03:14:07 whatever the
//! column type.
//!
//! SQLite has no time type; sqlx would write RFC 3339 text with a variable number of
//! fractional digits and a `Z`, which does not sort in time order within a second
//! (`…:05Z` sorts after `…:05.3Z`). Since `load` and the purge compare `expires_at` in SQL,
//! SQLite gets fixed-width text instead (`2026-11-28T12:00:05.000000Z`), which sorts
//! chronologically and still parses as RFC 3339 when read back through the entities.

use auth_domain::timestamp::truncate_to_micros;
use sea_orm::{DbBackend, Value};
use time::{
    format_description::BorrowedFormatItem, macros::format_description, OffsetDateTime,
    PrimitiveDateTime,
};

const SQLITE_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// The value to bind for `at` on `backend`: `at` in UTC, at the domain's precision.
pub(crate) fn value(backend: DbBackend, at: OffsetDateTime) -> Value {
    let at = truncate_to_micros(at);
    match backend {
        DbBackend::Sqlite => match at.format(SQLITE_FORMAT) {
            Ok(text) => Value::from(text),
            // Only years beyond 9999 fail to format; such an instant compares as the
            // native encoding would, which is the best left to do.
            Err(_) => Value::from(at),
        },
        DbBackend::MySql => Value::from(PrimitiveDateTime::new(at.date(), at.time())),
        DbBackend::Postgres => Value::from(at),
    }
}

#[cfg(test)]
mod tests {
    use time::{macros::datetime, Duration};

    use super::*;

    fn sqlite_text(at: OffsetDateTime) -> String {
        match value(DbBackend::Sqlite, at) {
            Value::String(Some(text)) => *text,
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn a_finer_instant_is_bound_cut_to_whole_microseconds_in_utc() {
        let at = datetime!(2026-11-28 13:00:05.123_456_789 +01:00);
        assert_eq!(
            value(DbBackend::Postgres, at),
            Value::from(datetime!(2026-11-28 12:00:05.123_456 UTC))
        );
        assert_eq!(sqlite_text(at), "2026-11-28T12:00:05.123456Z");
    }

    #[test]
    fn sqlite_text_has_a_fixed_width_and_reads_back_as_rfc3339() {
        let whole = datetime!(2026-11-28 12:00:05 UTC);
        let text = sqlite_text(whole);
        assert_eq!(text, "2026-11-28T12:00:05.000000Z");
        let parsed = OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .expect("valid RFC 3339");
        assert_eq!(parsed, whole);
    }

    #[test]
    fn mysql_gets_the_utc_wall_clock_as_a_datetime() {
        let at = datetime!(2040-02-29 23:59:59.999_999_999 +02:00);
        assert_eq!(
            value(DbBackend::MySql, at),
            Value::from(datetime!(2040-02-29 21:59:59.999_999))
        );
        assert_eq!(
            value(DbBackend::Postgres, at),
            Value::from(datetime!(2040-02-29 21:59:59.999_999 UTC))
        );
    }

    #[test]
    fn sqlite_text_sorts_in_time_order_within_a_second() {
        let base = datetime!(2026-11-28 12:00:05 UTC);
        let instants = [
            base,
            base + Duration::microseconds(1),
            base + Duration::milliseconds(300),
            base + Duration::milliseconds(500),
            base + Duration::microseconds(510_000),
            base + Duration::seconds(1),
        ];
        for pair in instants.windows(2) {
            assert!(sqlite_text(pair[0]) < sqlite_text(pair[1]), "{pair:?}");
        }
    }
}
