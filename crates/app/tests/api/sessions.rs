//! The session cookie and the server-side session behind it.

use std::time::Duration;

use auth_testkit::Backend;
use reqwest::StatusCode;

use crate::helpers::{assert_error, session_cookie, set_cookie, Options, TestApp, PASSWORD};

pub(crate) async fn the_cookie_is_signed_http_only_lax_and_lives_as_configured(backend: Backend) {
    let options = Options {
        session_lifetime_secs: 7200,
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    app.register_user("ada@example.com").await;
    let login = app.login("ada@example.com", PASSWORD).await;
    let cookie = set_cookie(&login).expect("login sets the session cookie");
    let attributes: Vec<String> = cookie.split(';').map(|a| a.trim().to_lowercase()).collect();
    for expected in ["httponly", "samesite=lax", "path=/", "max-age=7200"] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "{expected} missing from {cookie}"
        );
    }
    assert!(
        !attributes.iter().any(|a| a == "secure"),
        "Secure is off in this configuration"
    );
    assert!(
        !attributes.iter().any(|a| a.starts_with("domain")),
        "{cookie}"
    );
    app.stop().await;
}

pub(crate) async fn the_cookie_is_secure_when_configured(backend: Backend) {
    let options = Options {
        secure_cookie: true,
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    app.register_user("ada@example.com").await;
    let cookie = set_cookie(&app.login("ada@example.com", PASSWORD).await).expect("a cookie");
    assert!(
        cookie
            .split(';')
            .any(|a| a.trim().eq_ignore_ascii_case("secure")),
        "{cookie}"
    );
    app.stop().await;
}

pub(crate) async fn every_login_issues_a_fresh_session_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.register_and_login("ada@example.com").await;
    app.register_user("grace@example.com").await;

    // Same browser: Grace logs in over Ada's session.
    let second =
        session_cookie(&app.login("grace@example.com", PASSWORD).await).expect("a new cookie");
    assert_ne!(first, second);
    // And Ada again over Grace's.
    let third =
        session_cookie(&app.login("ada@example.com", PASSWORD).await).expect("a new cookie");
    assert_ne!(second, third);
    assert_ne!(first, third);

    assert_eq!(
        app.get_with_cookie("/profile", &first).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get_with_cookie("/profile", &second).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let profile = app.get_with_cookie("/profile", &third).await;
    assert_eq!(profile.status(), StatusCode::OK);
    assert_eq!(
        profile.json::<serde_json::Value>().await.expect("json")["email"],
        "ada@example.com"
    );
    app.stop().await;
}

pub(crate) async fn a_cookie_replayed_after_logout_is_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.register_and_login("ada@example.com").await;
    assert_eq!(
        app.get_with_cookie("/profile", &cookie).await.status(),
        StatusCode::OK
    );

    let logout = app.logout().await;
    assert_eq!(logout.status(), StatusCode::OK);
    let expired = set_cookie(&logout)
        .expect("logout expires the cookie")
        .to_lowercase();
    assert!(
        expired.contains("max-age=0") || expired.contains("expires=thu, 01 jan 1970"),
        "{expired}"
    );

    assert_error(
        app.get_with_cookie("/profile", &cookie).await,
        StatusCode::UNAUTHORIZED,
        Some("Access denied!"),
    )
    .await;
    assert_eq!(app.get("/profile").await.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

pub(crate) async fn a_tampered_or_forged_cookie_is_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.register_and_login("ada@example.com").await;
    let value = cookie.strip_prefix("session=").expect("the session cookie");

    // Flip one character of the signature, then one of the id.
    let flip = |s: &str, at: usize| {
        let mut chars: Vec<char> = s.chars().collect();
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect::<String>()
    };
    let forged = [
        format!("session={}", flip(value, 0)),
        format!("session={}", flip(value, value.len() - 1)),
        // An id with no signature at all, and a made-up one.
        format!("session={}", &value[value.len().saturating_sub(22)..]),
        "session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "session=".to_owned(),
    ];
    for cookie in forged {
        assert_error(
            app.get_with_cookie("/profile", &cookie).await,
            StatusCode::UNAUTHORIZED,
            Some("Access denied!"),
        )
        .await;
    }
    assert_eq!(
        app.get_with_cookie("/profile", &cookie).await.status(),
        StatusCode::OK,
        "the real one still works"
    );
    app.stop().await;
}

/// The session cookie is found on bytes and must verify, whatever else the request
/// carries: a header with bytes above 0x7f, several `Cookie` headers, a repeated cookie,
/// an empty, cut, doubled, percent-encoded or quoted value. What does not verify grants
/// nothing, and sets or clears no cookie.
pub(crate) async fn a_session_cookie_counts_only_when_a_key_verifies_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.register_and_login("ada@example.com").await;
    let value = cookie.strip_prefix("session=").expect("the session cookie");
    let (id, tag) = value.rsplit_once('.').expect("<id>.<tag>");
    let bare = format!("session={id}");

    let refused: Vec<Vec<Vec<u8>>> = vec![
        // The bypass of #17: a bare id beside a cookie that is not ASCII.
        vec![format!("{bare}; x=\u{e9}").into_bytes()],
        vec![[bare.as_bytes(), b"; x=\xff"].concat()],
        vec![b"x=\xe9t\xe9".to_vec(), bare.clone().into_bytes()],
        vec![format!("{bare}; {bare}").into_bytes()],
        vec![bare.clone().into_bytes(), bare.clone().into_bytes()],
        vec![b"session=".to_vec()],
        vec![b"session".to_vec()],
        vec![format!("session={}", &value[..value.len() - 1]).into_bytes()],
        vec![format!("session={value}.{tag}").into_bytes()],
        vec![format!("session={value}{tag}").into_bytes()],
        vec![format!("session={}", value.replace('.', "%2E")).into_bytes()],
        vec![format!("session=\"{value}\"").into_bytes()],
        vec![format!("session={value}\u{e9}").into_bytes()],
        vec![format!("session={tag}").into_bytes()],
    ];
    for headers in refused {
        let headers: Vec<&[u8]> = headers.iter().map(Vec::as_slice).collect();
        let response = app.get_with_cookie_bytes("/profile", &headers).await;
        let shown: Vec<_> = headers.iter().map(|h| String::from_utf8_lossy(h)).collect();
        assert_eq!(set_cookie(&response), None, "{shown:?}");
        assert_error(response, StatusCode::UNAUTHORIZED, Some("Access denied!")).await;
    }

    let accepted: Vec<Vec<Vec<u8>>> = vec![
        vec![cookie.clone().into_bytes()],
        // A sibling site's cookie that is not ASCII does not log anyone out.
        vec![format!("{cookie}; x=\u{e9}").into_bytes()],
        vec![[cookie.as_bytes(), b"; y=\xff\xfe"].concat()],
        vec![b"x=\xe9".to_vec(), cookie.clone().into_bytes()],
        // The first session cookie that verifies is the session.
        vec![format!("{bare}; {cookie}").into_bytes()],
        vec![
            bare.clone().into_bytes(),
            format!("a=1;{cookie} ").into_bytes(),
        ],
    ];
    for headers in accepted {
        let headers: Vec<&[u8]> = headers.iter().map(Vec::as_slice).collect();
        let response = app.get_with_cookie_bytes("/profile", &headers).await;
        let shown: Vec<_> = headers.iter().map(|h| String::from_utf8_lossy(h)).collect();
        assert_eq!(response.status(), StatusCode::OK, "{shown:?}");
        assert_eq!(set_cookie(&response), None, "{shown:?}");
    }
    app.stop().await;
}

/// A proxy for "no write per request": the store is written only when the cookie is
/// re-sent, and a session well within its lifetime is not.
pub(crate) async fn a_steady_authenticated_request_sends_no_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_and_login("ada@example.com").await;
    for _ in 0..5 {
        let profile = app.get("/profile").await;
        assert_eq!(profile.status(), StatusCode::OK);
        assert_eq!(
            set_cookie(&profile),
            None,
            "a steady request must not rewrite the session"
        );
    }
    app.stop().await;
}

/// With a 3-second lifetime, a session used every second (of the service's clock) stays
/// alive for 10 seconds, renewed past half its lifetime, and dies 4 seconds after its last
/// use.
pub(crate) async fn a_used_session_rolls_and_an_idle_one_dies(backend: Backend) {
    let options = Options {
        session_lifetime_secs: 3,
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    let mut cookie = app.register_and_login("ada@example.com").await;
    let mut renewals = 0;
    for second in 1..=10 {
        app.advance(Duration::from_secs(1));
        let profile = app.get("/profile").await;
        assert_eq!(profile.status(), StatusCode::OK, "after {second} s of use");
        if let Some(renewed) = session_cookie(&profile) {
            renewals += 1;
            cookie = renewed;
        }
    }
    // Renewed each time more than 1.5 s passed since the last write, counted from the
    // whole second it was made in: every second or every other one, depending on where in
    // its second the login fell.
    assert!(
        (5..=10).contains(&renewals),
        "the session was renewed {renewals} times in 10 s"
    );
    app.advance(Duration::from_secs(4));
    // The server must refuse it, whatever a client keeps.
    let late = app.get_with_cookie("/profile", &cookie).await;
    assert_eq!(
        late.status(),
        StatusCode::UNAUTHORIZED,
        "4 s after the last use"
    );
    app.stop().await;
}
