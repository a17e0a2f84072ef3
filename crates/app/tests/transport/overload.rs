//! Overload of the expensive path: logins beyond `HASH_QUEUE_LIMIT` are refused at once.

use reqwest::{header::RETRY_AFTER, StatusCode};
use serde_json::Value;

use crate::App;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_logins_over_the_hash_queue_limit_gets_503s_with_retry_after_and_no_500() {
    let app = App::start(
        "overload",
        &[
            ("HASH_QUEUE_LIMIT", "2"),
            ("MAX_CONCURRENT_HASHES", "1"),
            // A hash that takes a while, so that the burst overlaps.
            ("ARGON2_MEMORY_KIB", "19456"),
            ("ARGON2_ITERATIONS", "4"),
            // Room for one burst in flight (attempts are counted before their hash, #19),
            // not two: if the first burst's refused logins counted as failures, the
            // second would be throttled.
            ("LOGIN_FAILURES_PER_CLIENT", "20"),
            ("LOGIN_FAILURES_PER_ACCOUNT", "20"),
        ],
    )
    .await;
    app.register("ada@example.com").await;

    for round in ["first", "second"] {
        let burst = (0..20).map(|_| app.login("ada@example.com"));
        let answers = futures::future::join_all(burst).await;
        let index = app.client.get(app.url("/")).send().await.expect("GET /");
        assert_eq!(
            index.status(),
            StatusCode::OK,
            "other routes keep answering"
        );

        let (mut ok, mut overloaded) = (0, 0);
        for answer in answers {
            let answer = answer.expect("every login is answered");
            match answer.status() {
                StatusCode::OK => ok += 1,
                StatusCode::SERVICE_UNAVAILABLE => {
                    overloaded += 1;
                    let retry_after = answer.headers().get(RETRY_AFTER).cloned();
                    let body: Value = answer.json().await.expect("a JSON body");
                    assert_eq!(body["code"], "overloaded", "{body}");
                    assert!(body["message"].is_string(), "{body}");
                    assert!(retry_after.is_some(), "a 503 says when to retry");
                }
                other => panic!("a login answered {other}"),
            }
        }
        eprintln!(
            "transport figure: {round} burst of 20 logins, {ok} answered 200, {overloaded} answered 503"
        );
        assert!(ok >= 1, "the queue still serves logins");
        assert!(overloaded >= 1, "logins beyond the queue are refused");
    }

    let after = app.login("ada@example.com").await.expect("login answered");
    assert_eq!(
        after.status(),
        StatusCode::OK,
        "refused logins were not counted as failures"
    );
}
