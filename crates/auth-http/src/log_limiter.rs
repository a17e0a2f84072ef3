//! A log line at most once a second: an outage or a flood of stalled clients makes many
//! requests fail the same way, and one line each would drown the log (and the disk).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        OnceLock,
    },
    time::Instant,
};

/// Lets one line a second through and counts the others, so the line that does go out can
/// say how many were left out (`suppressed=N`). Meant for a `static`.
#[derive(Debug)]
pub struct LogLimiter {
    /// The second (of the process's monotonic clock, from 1) of the last line let through.
    last: AtomicU64,
    /// Lines refused since then.
    suppressed: AtomicU64,
}

impl LogLimiter {
    /// A limiter that lets the first line through.
    pub const fn new() -> Self {
        Self {
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines refused since the last one)` when a line may be logged now.
    pub fn admit(&self) -> Option<u64> {
        static STARTED: OnceLock<Instant> = OnceLock::new();
        // Counted from 1: `last` starts at 0, so the first line always goes through.
        let second = STARTED.get_or_init(Instant::now).elapsed().as_secs() + 1;
        self.admit_at(second)
    }

    fn admit_at(&self, second: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        if last != second
            && self
                .last
                .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_goes_through_and_the_rest_are_counted() {
        let limiter = LogLimiter::new();
        assert_eq!(limiter.admit_at(10), Some(0));
        assert_eq!(limiter.admit_at(10), None);
        assert_eq!(limiter.admit_at(10), None);
        assert_eq!(limiter.admit_at(11), Some(2));
        assert_eq!(limiter.admit_at(11), None);
    }
}
