//! The documents of the failures and events collections, as other tools see them.

use auth_domain::{
    audit::{AuditLog, AuthEvent, EventKind},
    digest::DigestKeys,
    throttle::{AttemptId, FailureCounter, ThrottleKey},
    UserId,
};
use auth_store_mongo::{MongoAuditLog, MongoFailureCounter};
use auth_testkit::audit;
use bson::{doc, Bson, DateTime, Document};
use mongodb::Database;
use time::OffsetDateTime;

use crate::common::{EVENTS, FAILURES};

/// The current instant with microseconds a BSON date cannot hold.
fn now() -> OffsetDateTime {
    let now = auth_domain::clock::Clock::system().now();
    now.replace_microsecond(123_456).unwrap_or(now)
}

fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).expect("in range")
}

/// A failure holds its key and the instant twice: a date, for the TTL index, and the
/// microseconds, which counting reads.
pub(crate) async fn a_failure_is_stored_with_a_date_for_its_ttl_and_exact_microseconds(
    db: Database,
) {
    let counter = MongoFailureCounter::new(&db, FAILURES);
    let keys = DigestKeys::new(&[7; 32], &[[8; 32]]);
    let key = ThrottleKey::new(&keys, "test", &["ada@example.com"]);
    let at = now();
    counter
        .record_failure(std::slice::from_ref(&key), at, AttemptId::random())
        .await
        .expect("recording works");

    let raw = db
        .collection::<Document>(FAILURES)
        .find_one(doc! {})
        .await
        .expect("raw read works")
        .expect("the document exists");
    assert_eq!(raw.get_str("key"), Ok(key.as_str()));
    assert_eq!(raw.get_i64("at_us"), Ok(micros(at)));
    assert_eq!(
        raw.get_datetime("at"),
        Ok(&DateTime::from_millis(micros(at).div_euclid(1_000)))
    );
    // The address, not "ada" alone: an ObjectId in hex may spell that.
    assert!(!raw.to_string().contains("ada@example.com"), "{raw}");
}

/// An event keeps its ids in the string form the users' `_id` has, its instant to the
/// microsecond, its kind by name and an absent user as null.
pub(crate) async fn an_event_is_stored_with_string_ids_and_exact_microseconds(db: Database) {
    let log = MongoAuditLog::new(&db, EVENTS);
    let user = UserId::generate();
    let at = now();
    let event = AuthEvent {
        ip: Some("2001:db8::1".parse().expect("an address")),
        user_agent: Some("curl/8.14".to_owned()),
        ..audit::event(EventKind::OtherSessionsRevoked, Some(user), at)
    };
    log.record(&event).await.expect("recording works");
    let anonymous = AuthEvent {
        ip: None,
        user_agent: None,
        ..audit::event(EventKind::LoginFailed, None, at)
    };
    log.record(&anonymous).await.expect("recording works");

    let events = db.collection::<Document>(EVENTS);
    let raw = events
        .find_one(doc! { "_id": event.id.to_string() })
        .await
        .expect("raw read works")
        .expect("the document exists");
    assert_eq!(raw.get_str("user_id"), Ok(user.to_string().as_str()));
    assert_eq!(raw.get_str("kind"), Ok("other_sessions_revoked"));
    assert_eq!(raw.get_str("actor"), Ok("user"));
    assert_eq!(raw.get_str("ip"), Ok("2001:db8::1"));
    assert_eq!(raw.get_str("user_agent"), Ok("curl/8.14"));
    assert_eq!(raw.get_i64("at_us"), Ok(micros(at)));
    assert_eq!(
        raw.get_datetime("at"),
        Ok(&DateTime::from_millis(micros(at).div_euclid(1_000)))
    );
    let raw = events
        .find_one(doc! { "_id": anonymous.id.to_string() })
        .await
        .expect("raw read works")
        .expect("the document exists");
    assert_eq!(raw.get("user_id"), Some(&Bson::Null));
}

/// A document this version cannot read fails the listing with the field's name only.
pub(crate) async fn an_unreadable_stored_event_is_an_error_that_quotes_no_value(db: Database) {
    let user = UserId::generate();
    let at = now();
    db.collection::<Document>(EVENTS)
        .insert_one(doc! {
            // Any UUIDv7 in string form.
            "_id": UserId::generate().to_string(),
            "at": DateTime::from_millis(micros(at).div_euclid(1_000)),
            "at_us": micros(at),
            "kind": "secret-kind-from-the-future",
            "user_id": user.to_string(),
            "ip": Bson::Null,
            "user_agent": Bson::Null,
        })
        .await
        .expect("raw write works");
    let error = MongoAuditLog::new(&db, EVENTS)
        .recent_for_user(user, &auth_domain::audit::EventPage::newest(10))
        .await
        .expect_err("an unknown kind is no event");
    let shown = format!("{error} {:?}", error.0);
    assert!(shown.contains("kind"), "{shown}");
    assert!(!shown.contains("secret"), "{shown}");
}
