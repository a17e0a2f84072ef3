//! The throttle's reservations over the in-memory counter: an attempt counts before its
//! password is checked, refused attempts are withdrawn, and the wait is exact.

use std::net::{IpAddr, Ipv4Addr};

use auth_domain::{
    digest::DigestKeys,
    throttle::{Throttle, ThrottleLimits},
};
use auth_testkit::memory_audit::MemoryFailureCounter;
use time::{Duration, OffsetDateTime};

const LIMITS: ThrottleLimits = ThrottleLimits {
    failures_per_client: 5,
    failures_per_account: 50,
    failures_per_address: 100,
    failure_window: Duration::minutes(15),
    registrations_per_address: 3,
    passkey_sign_ins_per_address: 3,
    ipv6_prefix: 64,
};

const ADDRESS: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)));

fn keys() -> DigestKeys {
    DigestKeys::new(&[1; 32], &[[2; 32]])
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)
}

/// Attempts reserved at once, none settled yet, hold the budget between them: the sixth
/// is refused while five are in flight, and a refused one leaves nothing counted.
#[tokio::test]
async fn attempts_in_flight_hold_the_budget_and_refused_ones_are_withdrawn() {
    let counter = MemoryFailureCounter::new();
    let throttle = Throttle::new(counter.clone(), LIMITS, keys());
    let attempt = throttle.attempt("ada@example.com", ADDRESS, false);
    let mut in_flight = Vec::new();
    for _ in 0..5 {
        let reserved = throttle
            .reserve_login(&attempt, t0())
            .await
            .expect("stored");
        in_flight.push(reserved.expect("within the limit"));
    }
    let stored = counter.len();
    for _ in 0..10 {
        let refused = throttle
            .reserve_login(&attempt, t0())
            .await
            .expect("stored");
        let throttled = refused.expect_err("past the limit");
        // The oldest of the five leaves the window a microsecond after 15 minutes.
        assert_eq!(
            throttled.retry_after,
            Duration::minutes(15) + Duration::MICROSECOND
        );
    }
    assert_eq!(counter.len(), stored, "refused attempts leave nothing");

    // Settled: two succeed (withdrawn, and the client's count reset), three fail.
    let mut settled = in_flight.into_iter();
    for reservation in settled.by_ref().take(3) {
        throttle.login_failed(reservation);
    }
    for reservation in settled {
        throttle
            .login_succeeded(&attempt, reservation)
            .await
            .expect("stored");
    }
    let next = throttle
        .reserve_login(&attempt, t0())
        .await
        .expect("stored");
    assert!(next.is_ok(), "a success resets the client's count");
}

/// After five failures, the wait announced is exactly when the next attempt goes through.
#[tokio::test]
async fn the_wait_announced_is_exact() {
    let throttle = Throttle::new(MemoryFailureCounter::new(), LIMITS, keys());
    let attempt = throttle.attempt("ada@example.com", ADDRESS, false);
    for minute in 0..5 {
        let at = t0() + Duration::minutes(minute);
        let reserved = throttle.reserve_login(&attempt, at).await.expect("stored");
        throttle.login_failed(reserved.expect("within the limit"));
    }
    let now = t0() + Duration::minutes(6);
    let throttled = throttle
        .reserve_login(&attempt, now)
        .await
        .expect("stored")
        .expect_err("past the limit");
    let reopens = now + throttled.retry_after;
    assert_eq!(
        reopens,
        t0() + Duration::minutes(15) + Duration::MICROSECOND
    );
    let just_before = reopens - Duration::MICROSECOND;
    let still = throttle
        .reserve_login(&attempt, just_before)
        .await
        .expect("stored");
    assert!(still.is_err(), "refused a microsecond before");
    let then = throttle
        .reserve_login(&attempt, reopens)
        .await
        .expect("stored");
    assert!(then.is_ok(), "allowed at the instant announced");
}

/// A client holding the device cookie is spared the per-account limit, yet its failures
/// count against the account for everyone else.
#[tokio::test]
async fn a_proven_device_is_spared_the_account_limit_but_counted_in_it() {
    let limits = ThrottleLimits {
        failures_per_client: 0,
        failures_per_address: 0,
        failures_per_account: 2,
        ..LIMITS
    };
    let throttle = Throttle::new(MemoryFailureCounter::new(), limits, keys());
    let proven = throttle.attempt("ada@example.com", ADDRESS, true);
    for _ in 0..3 {
        let reserved = throttle.reserve_login(&proven, t0()).await.expect("stored");
        throttle.login_failed(reserved.expect("spared"));
    }
    let stranger = throttle.attempt("ada@example.com", ADDRESS, false);
    let refused = throttle
        .reserve_login(&stranger, t0())
        .await
        .expect("stored");
    assert!(refused.is_err(), "the device's failures count for others");
}

/// Registrations are reserved the same way, and count whatever becomes of them.
#[tokio::test]
async fn registrations_are_reserved_and_counted() {
    let throttle = Throttle::new(MemoryFailureCounter::new(), LIMITS, keys());
    for _ in 0..3 {
        let admitted = throttle
            .admit_registration(ADDRESS, t0())
            .await
            .expect("stored");
        assert!(admitted.is_ok());
    }
    let refused = throttle
        .admit_registration(ADDRESS, t0())
        .await
        .expect("stored");
    assert_eq!(
        refused.expect_err("past the limit").retry_after,
        Duration::HOUR + Duration::MICROSECOND
    );
    let elsewhere = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 8)));
    let admitted = throttle
        .admit_registration(elsewhere, t0())
        .await
        .expect("stored");
    assert!(admitted.is_ok(), "another address has its own budget");
}
