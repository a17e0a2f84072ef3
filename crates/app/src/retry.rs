//! Start-up against a database that is not there yet: retried with backoff for up to
//! `STARTUP_TIMEOUT`, one log line per failed attempt, then one clear error.
//!
//! Orchestrators start the service and its database together, and a database restarting
//! for a few seconds should not cost a crash loop. A failure that waiting cannot fix (a
//! malformed URL, a refused migration) ends start-up at once.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use anyhow::anyhow;

/// The first pause between attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// The longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs `attempt` until it succeeds, fails with an error `retryable` refuses, or
/// `startup_timeout` has passed since the first attempt; `what` names the database in the
/// log lines and the final error.
///
/// # Errors
///
/// The last attempt's error, saying how many attempts were made over how long.
pub(crate) async fn until_reachable<T, E, Fut>(
    what: &str,
    startup_timeout: Duration,
    mut attempt: impl FnMut() -> Fut,
    retryable: impl Fn(&E) -> bool,
) -> anyhow::Result<T>
where
    Fut: Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    for number in 1u32.. {
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let retry = retryable(&error);
        let can_wait = retry && started.elapsed() + backoff <= startup_timeout;
        let error: anyhow::Error = error.into();
        if !retry {
            return Err(error);
        }
        if !can_wait {
            return Err(error.context(format!(
                "giving up on {what} after {number} attempt(s) in {}s (STARTUP_TIMEOUT={}s)",
                started.elapsed().as_secs(),
                startup_timeout.as_secs()
            )));
        }
        tracing::warn!(
            attempt = number,
            retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
            "{what} is unreachable, retrying: {}",
            crate::one_line(&error)
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    Err(anyhow!("no attempt was made to reach {what}"))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Failure(&'static str);

    #[tokio::test]
    async fn a_database_that_comes_up_is_used_after_a_few_attempts() {
        let attempts = AtomicU32::new(0);
        let value = until_reachable(
            "the test database",
            Duration::from_secs(30),
            || async {
                if attempts.fetch_add(1, Ordering::Relaxed) < 2 {
                    Err(Failure("connection refused"))
                } else {
                    Ok(42)
                }
            },
            |_| true,
        )
        .await
        .expect("the third attempt succeeds");
        assert_eq!(value, 42);
        assert_eq!(attempts.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_failure_waiting_cannot_fix_ends_start_up_at_once() {
        let attempts = AtomicU32::new(0);
        let error = until_reachable(
            "the test database",
            Duration::from_secs(30),
            || async {
                attempts.fetch_add(1, Ordering::Relaxed);
                Err::<(), _>(Failure("malformed URL"))
            },
            |_| false,
        )
        .await
        .expect_err("not retried");
        assert_eq!(attempts.load(Ordering::Relaxed), 1);
        assert_eq!(error.to_string(), "malformed URL");
    }

    #[tokio::test]
    async fn a_database_that_stays_away_is_given_up_with_a_clear_error() {
        let error = until_reachable(
            "the test database",
            Duration::from_secs(1),
            || async { Err::<(), _>(Failure("connection refused")) },
            |_| true,
        )
        .await
        .expect_err("given up");
        let line = crate::one_line(&error);
        assert!(
            line.starts_with("giving up on the test database after 2 attempt(s)"),
            "{line}"
        );
        assert!(line.ends_with("connection refused"), "{line}");
    }
}
