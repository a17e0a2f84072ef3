//! What every [`FailureCounter`] must do, whatever it counts failures in.
//!
//! Instants are taken around the current time: a store may expire entries on its own
//! (MongoDB's TTL index) well after any window, never within the last hours.

use auth_domain::{
    clock::Clock,
    digest::{DigestKeys, KEY_BYTES},
    throttle::{AttemptId, FailureCount, FailureCounter, ThrottleKey},
};
use time::{Duration, OffsetDateTime};

/// A key of this suite, named `name`.
pub fn key(name: &str) -> ThrottleKey {
    let keys = DigestKeys::new(&[7; KEY_BYTES], &[[8; KEY_BYTES]]);
    ThrottleKey::new(&keys, "conformance", &[name])
}

/// The current instant at the stored precision, with microseconds to lose if a store kept
/// less.
fn now() -> OffsetDateTime {
    let now = Clock::system().now();
    now.replace_microsecond(123_457).unwrap_or(now)
}

async fn record(counter: &impl FailureCounter, keys: &[ThrottleKey], at: OffsetDateTime) {
    counter
        .record_failure(keys, at, AttemptId::random())
        .await
        .expect("recording works");
}

async fn counts(
    counter: &impl FailureCounter,
    keys: &[ThrottleKey],
    since: OffsetDateTime,
) -> Vec<FailureCount> {
    counter.failures(keys, since).await.expect("counting works")
}

fn count(count: u64, oldest: OffsetDateTime) -> FailureCount {
    FailureCount {
        count,
        oldest: Some(oldest),
    }
}

/// Counts come back one per key asked, in the order asked; a key without failures is
/// [`FailureCount::NONE`].
pub async fn counts_come_back_per_key_in_the_order_asked(counter: impl FailureCounter) {
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let t = now();
    for minutes in [3, 2, 1] {
        record(
            &counter,
            std::slice::from_ref(&a),
            t - Duration::minutes(minutes),
        )
        .await;
    }
    record(&counter, std::slice::from_ref(&b), t).await;
    let since = t - Duration::hours(1);
    assert_eq!(
        counts(&counter, &[b.clone(), c.clone(), a.clone()], since).await,
        [
            count(1, t),
            FailureCount::NONE,
            count(3, t - Duration::minutes(3))
        ]
    );
    assert_eq!(
        counts(&counter, &[a, b], since).await,
        [count(3, t - Duration::minutes(3)), count(1, t)]
    );
    assert_eq!(counts(&counter, &[], since).await, []);
}

/// Only failures at or after `since` count, and `oldest` is the oldest of those.
pub async fn only_failures_since_the_window_start_count(counter: impl FailureCounter) {
    let a = key("a");
    let t = now();
    for minutes in [20, 10, 5, 0] {
        record(
            &counter,
            std::slice::from_ref(&a),
            t - Duration::minutes(minutes),
        )
        .await;
    }
    let since = t - Duration::minutes(10);
    assert_eq!(
        counts(&counter, std::slice::from_ref(&a), since).await,
        [count(3, since)],
        "the window's start is inside it"
    );
    assert_eq!(
        counts(
            &counter,
            std::slice::from_ref(&a),
            since + Duration::microseconds(1)
        )
        .await,
        [count(2, t - Duration::minutes(5))]
    );
    assert_eq!(
        counts(&counter, &[a], t + Duration::microseconds(1)).await,
        [FailureCount::NONE],
        "nothing since the last failure"
    );
}

/// `oldest` is the earliest failure in the window, whatever order they were recorded in,
/// to the microsecond.
pub async fn the_oldest_failure_is_exact_whatever_the_order_recorded(counter: impl FailureCounter) {
    let a = key("a");
    let t = now();
    let earliest = t - Duration::minutes(3) - Duration::microseconds(1);
    for at in [t, earliest, t - Duration::minutes(1)] {
        record(&counter, std::slice::from_ref(&a), at).await;
    }
    assert_eq!(
        counts(&counter, &[a], t - Duration::hours(1)).await,
        [count(3, earliest)]
    );
}

/// One call records one failure under each key, counted at once.
pub async fn a_recorded_failure_counts_at_once_under_every_key(counter: impl FailureCounter) {
    let keys = [key("client"), key("account"), key("address")];
    let t = now();
    record(&counter, &keys, t).await;
    assert_eq!(
        counts(&counter, &keys, t - Duration::minutes(15)).await,
        [count(1, t); 3]
    );
    record(&counter, &keys[1..], t + Duration::seconds(1)).await;
    assert_eq!(
        counts(&counter, &keys, t - Duration::minutes(15)).await,
        [count(1, t), count(2, t), count(2, t)]
    );
}

/// Failures of one key at the same instant are distinct failures (a burst of attempts
/// lands within one microsecond).
pub async fn failures_at_the_same_instant_all_count(counter: impl FailureCounter) {
    let a = key("a");
    let t = now();
    for _ in 0..3 {
        record(&counter, std::slice::from_ref(&a), t).await;
    }
    assert_eq!(
        counts(&counter, &[a], t - Duration::minutes(1)).await,
        [count(3, t)]
    );
}

/// Recording under no key at all stores nothing and is no error.
pub async fn recording_under_no_key_is_harmless(counter: impl FailureCounter) {
    let t = now();
    record(&counter, &[], t).await;
    let purged = counter
        .purge_before(t + Duration::hours(1), 100)
        .await
        .expect("purging works");
    assert_eq!(purged, 0);
}

/// A reset forgets one key's failures and no other's.
pub async fn a_reset_clears_that_key_only(counter: impl FailureCounter) {
    let (a, b) = (key("a"), key("b"));
    let t = now();
    record(&counter, &[a.clone(), b.clone()], t - Duration::minutes(1)).await;
    record(&counter, &[a.clone(), b.clone()], t).await;
    counter.reset(&a).await.expect("resetting works");
    let since = t - Duration::hours(1);
    assert_eq!(
        counts(&counter, &[a.clone(), b.clone()], since).await,
        [FailureCount::NONE, count(2, t - Duration::minutes(1))]
    );
    counter
        .reset(&key("never-failed"))
        .await
        .expect("resetting an unknown key is no error");
    record(&counter, std::slice::from_ref(&a), t).await;
    assert_eq!(counts(&counter, &[a], since).await, [count(1, t)]);
}

/// Withdrawing an attempt deletes its entries under the keys named, and nothing another
/// attempt recorded, even under the same keys at the same instant.
pub async fn a_withdrawn_attempt_no_longer_counts_and_no_other_is_touched(
    counter: impl FailureCounter,
) {
    let (a, b) = (key("a"), key("b"));
    let t = now();
    let (mine, other) = (AttemptId::random(), AttemptId::random());
    let both = [a.clone(), b.clone()];
    for attempt in [mine, other, mine] {
        counter
            .record_failure(&both, t, attempt)
            .await
            .expect("recording works");
    }
    let since = t - Duration::minutes(1);
    assert_eq!(counts(&counter, &both, since).await, [count(3, t); 2]);
    counter
        .withdraw(std::slice::from_ref(&a), mine)
        .await
        .expect("withdrawing works");
    assert_eq!(
        counts(&counter, &both, since).await,
        [count(1, t), count(3, t)],
        "only the attempt's entries under the keys named"
    );
    counter
        .withdraw(&both, mine)
        .await
        .expect("withdrawing again is no error");
    assert_eq!(counts(&counter, &both, since).await, [count(1, t); 2]);
    counter
        .withdraw(&[], other)
        .await
        .expect("withdrawing under no key is no error");
    assert_eq!(counts(&counter, &both, since).await, [count(1, t); 2]);
}

/// A purge deletes every failure before its cut-off, batch after batch, and keeps the
/// others; it answers how many it deleted.
pub async fn a_purge_deletes_old_failures_in_batches_and_keeps_new_ones(
    counter: impl FailureCounter,
) {
    let t = now();
    let cutoff = t - Duration::hours(1);
    let old: Vec<ThrottleKey> = (0..7).map(|i| key(&format!("old-{i}"))).collect();
    record(&counter, &old, cutoff - Duration::minutes(30)).await;
    record(&counter, &old[..2], cutoff - Duration::microseconds(1)).await;
    let kept = key("kept");
    record(&counter, &[kept.clone(), old[0].clone()], cutoff).await;
    record(&counter, std::slice::from_ref(&kept), t).await;

    let purged = counter
        .purge_before(cutoff, 3)
        .await
        .expect("purging works");
    assert_eq!(
        purged, 9,
        "seven and two old failures, over several batches"
    );
    let since = cutoff - Duration::days(1);
    assert_eq!(
        counts(
            &counter,
            &[kept.clone(), old[0].clone(), old[1].clone()],
            since
        )
        .await,
        [count(2, cutoff), count(1, cutoff), FailureCount::NONE],
        "a failure at the cut-off itself is not older than it"
    );

    // A count that is a multiple of the batch ends too.
    let again: Vec<ThrottleKey> = (0..6).map(|i| key(&format!("again-{i}"))).collect();
    record(&counter, &again, cutoff - Duration::minutes(1)).await;
    let purged = counter
        .purge_before(cutoff, 3)
        .await
        .expect("purging works");
    assert_eq!(purged, 6);
    let purged = counter
        .purge_before(cutoff, 3)
        .await
        .expect("purging works");
    assert_eq!(purged, 0, "nothing left to purge");
    assert_eq!(counts(&counter, &[kept], since).await, [count(2, cutoff)]);
}
