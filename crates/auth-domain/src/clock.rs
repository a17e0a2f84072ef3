//! The one place the service reads the time of day.
//!
//! Every decision that depends on the time (a session's expiry and renewal, a throttle
//! window, an event's instant, a purge's cut-off) takes `now` from a [`Clock`] that the
//! application passes in, never from the system directly: a `clippy.toml` rule
//! (`disallowed-methods`) refuses `OffsetDateTime::now_utc` and its kin anywhere else. So
//! a test moves the clock of a running service forward ([`Clock::advance`]) instead of
//! sleeping until a session or a window expires.
//!
//! Durations measured on the monotonic clock (`Instant`, tokio's timers: deadlines,
//! timeouts, backoff) are not the time of day and are not read here.

use std::{
    fmt,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
};

use time::{Duration, OffsetDateTime};

use crate::timestamp::truncate_to_micros;

/// Where the time of day comes from: the system's, or the system's moved forward by a
/// test. Cloning shares it: a clock advanced through one clone is advanced everywhere.
#[derive(Clone, Default)]
pub struct Clock {
    /// Nanoseconds added to the system's time; `None` for the system clock itself, which
    /// cannot be moved.
    shift: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that runs with the system's and can be moved forward with
    /// [`Clock::advance`]: it keeps running, so instants taken one after the other still
    /// differ, as they do in production.
    pub fn adjustable() -> Self {
        Self {
            shift: Some(Arc::default()),
        }
    }

    /// The current instant, in UTC, at the stored precision (whole microseconds, see
    /// [`crate::timestamp`]).
    pub fn now(&self) -> OffsetDateTime {
        let shift = self
            .shift
            .as_ref()
            .map_or(0, |shift| shift.load(Ordering::Relaxed));
        truncate_to_micros(system_now() + Duration::nanoseconds(shift))
    }

    /// Moves the clock forward by `by`, for every clone of it.
    ///
    /// # Panics
    ///
    /// On the system clock, which only a test's clock ([`Clock::adjustable`]) can be
    /// moved instead of; and on a negative `by` (time does not go back).
    pub fn advance(&self, by: std::time::Duration) {
        let shift = self
            .shift
            .as_ref()
            .expect("only an adjustable clock can be moved");
        let nanos = i64::try_from(by.as_nanos()).expect("a shift of less than 292 years");
        shift.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shift {
            None => f.write_str("Clock::system"),
            Some(shift) => f
                .debug_struct("Clock::adjustable")
                .field("shift_ns", &shift.load(Ordering::Relaxed))
                .finish(),
        }
    }
}

#[allow(clippy::disallowed_methods)] // The one read of the system's time of day.
fn system_now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_is_ahead_by_that_much_in_every_clone() {
        let clock = Clock::adjustable();
        let clone = clock.clone();
        let before = Clock::system().now();
        clock.advance(std::time::Duration::from_secs(3600));
        let moved = clone.now();
        assert!(moved >= before + Duration::hours(1), "{moved} vs {before}");
        assert!(moved < before + Duration::hours(1) + Duration::minutes(1));
    }

    #[test]
    fn instants_are_whole_microseconds_and_keep_running() {
        let clock = Clock::adjustable();
        let first = clock.now();
        let second = clock.now();
        assert_eq!(first.nanosecond() % 1_000, 0);
        assert!(second >= first);
    }

    #[test]
    #[should_panic(expected = "only an adjustable clock")]
    fn the_system_clock_cannot_be_moved() {
        Clock::system().advance(std::time::Duration::from_secs(1));
    }
}
