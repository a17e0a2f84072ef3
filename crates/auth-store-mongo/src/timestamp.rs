//! Exact timestamps in BSON, whose dates hold whole milliseconds only.

use bson::DateTime;
use time::{Duration, OffsetDateTime};

/// `at` as a BSON date (for queries and the TTL index) plus the nanoseconds it lost.
pub(crate) fn split(at: OffsetDateTime) -> (DateTime, i64) {
    let date = DateTime::from_time_0_3(at);
    let lost = (at - date.to_time_0_3()).whole_nanoseconds();
    // The driver truncates toward zero, so what is lost is under a millisecond either way;
    // a date beyond BSON's range (not reachable with `time`'s) would keep the date alone.
    (date, i64::try_from(lost).unwrap_or(0))
}

/// The exact time [`split`] was given, or None if the stored parts cannot be one.
pub(crate) fn join(date: DateTime, sub_ms_ns: i64) -> Option<OffsetDateTime> {
    date.to_time_0_3()
        .checked_add(Duration::nanoseconds(sub_ms_ns))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_split_time_joins_back_exactly() {
        for at in [
            datetime!(2026-11-28 11:46:53.123_456_789 UTC),
            datetime!(2026-11-28 11:46:53.000_000_001 UTC),
            datetime!(1969-12-31 23:59:59.999_999_999 UTC),
            datetime!(1900-01-01 00:00:00.5 UTC),
            OffsetDateTime::UNIX_EPOCH,
        ] {
            let (date, ns) = split(at);
            assert!(ns.abs() < 1_000_000, "{at}: {ns}");
            assert_eq!(join(date, ns), Some(at));
        }
    }

    #[test]
    fn the_bson_date_never_lies_after_the_time() {
        let at = datetime!(2026-11-28 11:46:53.999_999 UTC);
        let (date, _) = split(at);
        assert!(date.to_time_0_3() <= at);
    }
}
