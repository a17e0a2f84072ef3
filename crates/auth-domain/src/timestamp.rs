//! The precision of every instant the service stores: whole microseconds, in UTC.
//!
//! Microseconds are the finest precision every backend keeps (PostgreSQL's `timestamptz`,
//! MySQL's `datetime(6)`), so an instant cut here reads back from any store exactly as it
//! was given. Users get their times here ([`crate::NewUser`]); stores cut the instants
//! they receive from elsewhere (a session's expiry) with [`truncate_to_micros`] too, and
//! never apply a rule of their own.

use time::{OffsetDateTime, UtcOffset};

/// Nanoseconds in one microsecond, the unit below which an instant is cut.
const NANOS_PER_MICRO: u32 = 1_000;

/// `at` in UTC, cut (towards the past) to a whole microsecond.
pub fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let utc = at.to_offset(UtcOffset::UTC);
    // `nanosecond()` counts from the start of the second, even before 1970: cutting it
    // always moves towards the past.
    let nanosecond = utc.nanosecond() / NANOS_PER_MICRO * NANOS_PER_MICRO;
    utc.replace_nanosecond(nanosecond).unwrap_or(utc)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn an_instant_is_cut_to_whole_microseconds_in_utc() {
        let at = datetime!(2026-11-28 13:00:05.123_456_789 +01:00);
        let cut = truncate_to_micros(at);
        assert_eq!(cut, datetime!(2026-11-28 12:00:05.123_456 UTC));
        assert_eq!(cut.offset(), UtcOffset::UTC);
    }

    #[test]
    fn an_instant_before_1970_is_cut_towards_the_past() {
        let at = datetime!(1969-12-31 23:59:59.999_999_999 UTC);
        assert_eq!(
            truncate_to_micros(at),
            datetime!(1969-12-31 23:59:59.999_999 UTC)
        );
    }

    #[test]
    fn cutting_twice_changes_nothing() {
        let once = truncate_to_micros(datetime!(2040-02-29 23:59:59.999_999_999 +02:00));
        assert_eq!(truncate_to_micros(once), once);
    }
}
