//! Instants in documents, at the domain's precision ([`auth_domain::timestamp`]).
//!
//! A BSON date holds whole milliseconds, the domain's instants whole microseconds. So an
//! instant this store reads back is kept as an Int64 of microseconds since the Unix epoch,
//! in a field named `*_us`. A BSON date is written only where the server itself needs a
//! date: the sessions' `expires_at`, for the TTL index and the expiry filter of `load`.
//!
//! Documents written by earlier versions hold a BSON date and the nanoseconds it lost
//! (`*_sub_ms_ns`) instead; [`read`] still turns them into the instant they always read
//! back as, and nothing writes that form any more.

use auth_domain::timestamp::truncate_to_micros;
use bson::DateTime;
use time::{Duration, OffsetDateTime};

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

/// The instant a document holds: its `*_us` field when it has one, else the BSON date
/// and `*_sub_ms_ns` of the earlier form. None if neither is there or makes an instant.
pub(crate) fn read(
    micros: Option<i64>,
    legacy_date: Option<DateTime>,
    legacy_sub_ms_ns: i64,
) -> Option<OffsetDateTime> {
    match (micros, legacy_date) {
        (Some(micros), _) => {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * NANOS_PER_MICRO).ok()
        }
        (None, Some(date)) => date
            .to_time_0_3()
            .checked_add(Duration::nanoseconds(legacy_sub_ms_ns)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    /// How the previous version wrote an instant: the driver's date and what it lost.
    fn legacy_split(at: OffsetDateTime) -> (DateTime, i64) {
        let date = DateTime::from_time_0_3(at);
        let lost = (at - date.to_time_0_3()).whole_nanoseconds();
        (date, i64::try_from(lost).expect("under a millisecond"))
    }

    #[test]
    fn an_instant_reads_back_exactly_in_either_form() {
        for at in [
            datetime!(2026-11-28 11:46:53.123_456 UTC),
            datetime!(1969-12-31 23:59:59.999_999 UTC),
            datetime!(1900-01-01 00:00:00.5 UTC),
            OffsetDateTime::UNIX_EPOCH,
        ] {
            let stored = micros(at).expect("in range");
            assert_eq!(read(Some(stored), None, 0), Some(at), "{at}");
            // The previous version kept nanoseconds: finer instants read back too.
            let finer = at + Duration::nanoseconds(789);
            let (date, sub_ms_ns) = legacy_split(finer);
            assert_eq!(read(None, Some(date), sub_ms_ns), Some(finer), "{finer}");
        }
    }

    #[test]
    fn a_finer_instant_is_cut_by_the_domains_rule() {
        let at = datetime!(2026-11-28 13:46:53.123_456_789 +02:00);
        let stored = micros(at).expect("in range");
        assert_eq!(read(Some(stored), None, 0), Some(truncate_to_micros(at)));
    }

    #[test]
    fn a_date_without_the_nanoseconds_field_reads_back_as_it_is() {
        let whole = datetime!(2026-11-28 11:46:53.123 UTC);
        assert_eq!(
            read(None, Some(DateTime::from_time_0_3(whole)), 0),
            Some(whole)
        );
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
                shown <= at && at - shown < Duration::milliseconds(1),
                "{at}"
            );
        }
    }

    #[test]
    fn a_document_with_no_time_at_all_is_refused() {
        assert_eq!(read(None, None, 0), None);
    }
}
