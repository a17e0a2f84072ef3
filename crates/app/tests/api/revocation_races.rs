//! Revocation that cannot be raced (#17): logins that loop on two instances while the
//! password changes, then while the account is deleted, leave no session that works.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use auth_testkit::Backend;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{session_cookie, Options, TestApp, PASSWORD};

/// Logins looping at once, half on each instance.
const LOOPS: usize = 8;
const NEW_PASSWORD: &str = "quartz-meadow-lantern-9";
const EMAIL: &str = "ada@example.com";
/// The loops log in many times from one address, and fail once the password changed:
/// no throttle in the way, so that every one of them hashes.
const NO_THROTTLE: &[(&str, &str)] = &[
    ("LOGIN_FAILURES_PER_CLIENT", "0"),
    ("LOGIN_FAILURES_PER_ACCOUNT", "0"),
    ("LOGIN_FAILURES_PER_ADDRESS", "0"),
];

/// Runs [`LOOPS`] logins of `EMAIL` with `password` in a loop until `stop`, each from a
/// fresh browser, and collects the session cookie of every one that succeeded.
fn loop_logins(
    apps: [&Arc<TestApp>; 2],
    password: &'static str,
    stop: &Arc<AtomicBool>,
    cookies: &Arc<Mutex<Vec<String>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..LOOPS)
        .map(|i| {
            let app = Arc::clone(apps[i % 2]);
            let (stop, cookies) = (Arc::clone(stop), Arc::clone(cookies));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let browser = app.browser(Some(&format!("racer-{i}")));
                    let login = browser.login(EMAIL, password).await;
                    if login.status() == StatusCode::OK {
                        let cookie = session_cookie(&login).expect("a login sets the cookie");
                        cookies.lock().expect("not poisoned").push(cookie);
                    }
                }
            })
        })
        .collect()
}

/// The collected cookies that still open `/profile` on either instance.
async fn survivors(apps: [&Arc<TestApp>; 2], cookies: &Mutex<Vec<String>>) -> Vec<String> {
    let cookies = cookies.lock().expect("not poisoned").clone();
    let mut alive = Vec::new();
    for cookie in cookies {
        for app in apps {
            if app.get_with_cookie("/profile", &cookie).await.status() == StatusCode::OK {
                alive.push(cookie.clone());
            }
        }
    }
    alive
}

async fn race(
    apps: [&Arc<TestApp>; 2],
    password: &'static str,
    change: impl std::future::Future<Output = StatusCode>,
    expected: StatusCode,
) -> Vec<String> {
    let stop = Arc::new(AtomicBool::new(false));
    let cookies = Arc::new(Mutex::new(Vec::new()));
    let loops = loop_logins(apps, password, &stop, &cookies);
    // Let the logins get going, so that some are hashing when the change begins.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(change.await, expected);
    stop.store(true, Ordering::Relaxed);
    for looping in loops {
        looping.await.expect("a login loop ends");
    }
    assert!(
        !cookies.lock().expect("not poisoned").is_empty(),
        "no login succeeded before the change: the race was not run"
    );
    survivors(apps, &cookies).await
}

pub(crate) async fn logins_racing_a_password_change_or_a_deletion_leave_no_session(
    backend: Backend,
) {
    let first = Arc::new(TestApp::spawn_with(backend, Options::with(NO_THROTTLE)).await);
    let second = Arc::new(first.spawn_beside(Options::with(NO_THROTTLE)).await);
    let apps = [&first, &second];
    first.register_user(EMAIL).await;
    let owner = first.browser(Some("owner"));
    assert_eq!(owner.login(EMAIL, PASSWORD).await.status(), StatusCode::OK);

    let change = async {
        let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
        owner.post_json("/v1/auth/password", &body).await.status()
    };
    let alive = race(apps, PASSWORD, change, StatusCode::OK).await;
    assert_eq!(
        alive,
        Vec::<String>::new(),
        "sessions of the old password survived"
    );

    let deletion = async {
        let body = json!({"password": NEW_PASSWORD});
        owner
            .send(Method::DELETE, "/v1/auth/account", Some(&body))
            .await
            .status()
    };
    let alive = race(apps, NEW_PASSWORD, deletion, StatusCode::NO_CONTENT).await;
    assert_eq!(
        alive,
        Vec::<String>::new(),
        "sessions of a deleted user survived"
    );

    Arc::into_inner(second).expect("one owner").stop().await;
    Arc::into_inner(first).expect("one owner").stop().await;
}
