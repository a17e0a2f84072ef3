//! Instants in documents, at the domain's precision ([`auth_domain::timestamp`]).
//!
//! A BSON date holds whole milliseconds, the domain's instants whole microseconds. So an
//! instant this store reads back is kept as an Int64 of microseconds since the Unix epoch,
//! in a field named `*_us`. A BSON date is written only where the server itself needs a
//! date: the sessions' `expires_at`, for the TTL index and the expiry filter of `load`.

use auth_domain::timestamp::truncate_to_micros;
use bson::DateTime;
use time::OffsetDateTime;

const NANOS_PER_MICRO: i128 = 1_000;
const MICROS_PER_MILLI: i64 = 1_000;

/// `at`, cut to the domain's precision, in microseconds since the Unix epoch; None past
/// the ±292,000 years an i64 of microseconds spans.
pub(crate) fn micros(at: OffsetDateTime) -> Option<i64> {
    let nanos = truncate_to_micros(at).unix_timestamp_nanos();
    i64::try_from(nanos / NANOS_PER_MICRO).ok()
}

/// The BSON date of an instant given in microseconds: rounded down to the millisecond, so
/// that a date compared with the clock never says a session lives longer than it does.
pub(crate) fn date(micros: i64) -> DateTime {
    DateTime::from_millis(micros.div_euclid(MICROS_PER_MILLI))
}

/// The instant of a `*_us` field; None if it makes no instant.
/// `clock`'s current instant, as a BSON date (to the millisecond): what expiry filters
/// compare with.
pub(crate) fn now(clock: &auth_domain::clock::Clock) -> DateTime {
    DateTime::from_millis(
        i64::try_from(clock.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX),
    )
}

pub(crate) fn read(micros: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * NANOS_PER_MICRO).ok()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn an_instant_reads_back_exactly() {
        for at in [
            datetime!(2026-11-28 11:46:53.123_456 UTC),
            datetime!(1969-12-31 23:59:59.999_999 UTC),
            datetime!(1900-01-01 00:00:00.5 UTC),
            OffsetDateTime::UNIX_EPOCH,
        ] {
            let stored = micros(at).expect("in range");
            assert_eq!(read(stored), Some(at), "{at}");
        }
    }

    #[test]
    fn a_finer_instant_is_cut_by_the_domains_rule() {
        let at = datetime!(2026-11-28 13:46:53.123_456_789 +02:00);
        let stored = micros(at).expect("in range");
        assert_eq!(read(stored), Some(truncate_to_micros(at)));
    }

    #[test]
    fn the_bson_date_is_never_after_the_instant() {
        for at in [
            datetime!(2026-11-28 11:46:53.999_999 UTC),
            datetime!(1969-12-31 23:59:59.999_999 UTC),
        ] {
            let stored = micros(at).expect("in range");
            let shown = date(stored).to_time_0_3();
            assert!(
                shown <= at && at - shown < time::Duration::milliseconds(1),
                "{at}"
            );
        }
    }
}
