//! Spawning the real service on port 0, on a fresh database of any backend, and talking
//! to it over a real connection with cookie-jar clients, one per simulated browser.

use std::{net::SocketAddr, ops::Deref, sync::Arc, time::Duration};

use auth_domain::clock::Clock;
use auth_testkit::{Backend, SetSessionCookie, TempDir, TestDatabase};
use figment::Figment;
use reqwest::{
    cookie::{CookieStore, Jar},
    header, Method, Response, StatusCode,
};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use tokio::{sync::oneshot, task::JoinHandle};

/// A 64-byte key, as `SECRET_KEY` must be at least.
pub(crate) const SECRET_KEY: &str =
    "test-secret-key-test-secret-key-test-secret-key-test-secret-key!";
pub(crate) const PASSWORD: &str = "velvet-otter-harbour";

/// Settings a test may change; everything else is the service's default.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub session_lifetime_secs: u64,
    /// `SESSION_ABSOLUTE_LIFETIME`; the service's default when `None`.
    pub absolute_lifetime_secs: Option<u64>,
    pub secure_cookie: bool,
    pub secret_key: &'static str,
    /// `SECRET_KEY_FALLBACKS`, sent comma-separated as in the environment.
    pub secret_key_fallbacks: Vec<&'static str>,
    /// Any other settings, as text (as in the environment), merged last so that they
    /// override the ones above.
    pub extra: Vec<(&'static str, String)>,
}

impl Options {
    /// The defaults, with these settings added.
    pub(crate) fn with(settings: &[(&'static str, &str)]) -> Self {
        Self {
            extra: settings
                .iter()
                .map(|(key, value)| (*key, (*value).to_owned()))
                .collect(),
            ..Self::default()
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            session_lifetime_secs: 3600,
            absolute_lifetime_secs: None,
            secure_cookie: false,
            secret_key: SECRET_KEY,
            secret_key_fallbacks: Vec::new(),
            extra: Vec::new(),
        }
    }
}

/// The service, running in this process on its own database (or, for an instance
/// started with [`TestApp::spawn_beside`], on another instance's database).
///
/// It derefs to its default [`Browser`], so `app.get(..)` is a request from that browser.
pub(crate) struct TestApp {
    pub address: SocketAddr,
    browser: Browser,
    /// Shared by the instances on one database; the last one stopped drops it.
    database: Arc<TestDatabase>,
    /// `MAIL_DIR`, where mail goes without `SMTP_URL`: never the working directory.
    mail_dir: Arc<TempDir>,
    /// The service's clock, shared by the instances on one database: a test moves it
    /// forward to make sessions and windows expire, instead of sleeping.
    clock: Clock,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Deref for TestApp {
    type Target = Browser;

    fn deref(&self) -> &Browser {
        &self.browser
    }
}

impl TestApp {
    /// The service on a fresh database of `backend`.
    pub(crate) async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, Options::default()).await
    }

    pub(crate) async fn spawn_with(backend: Backend, options: Options) -> Self {
        let database = Arc::new(TestDatabase::create(backend).await);
        let mail_dir = Arc::new(TempDir::new("mail"));
        Self::start(database, mail_dir, Clock::adjustable(), &options).await
    }

    /// Another instance of the service on this one's database, with other settings: a
    /// restart with a new configuration, or a second instance behind a load balancer.
    pub(crate) async fn spawn_beside(&self, options: Options) -> Self {
        Self::start(
            Arc::clone(&self.database),
            Arc::clone(&self.mail_dir),
            self.clock.clone(),
            &options,
        )
        .await
    }

    async fn start(
        database: Arc<TestDatabase>,
        mail_dir: Arc<TempDir>,
        clock: Clock,
        options: &Options,
    ) -> Self {
        let figment = figment(&database, options).merge(("MAIL_DIR", mail_dir.path()));
        // The test's own settings win, `MAIL_DIR` too.
        let figment = options.extra.iter().fold(figment, |figment, (key, value)| {
            figment.merge((*key, value.as_str()))
        });
        let config = app::Config::from_figment(figment).expect("the test configuration is valid");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = listener.local_addr().expect("bound");
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(app::run_with_clock(
            config,
            clock.clone(),
            listener,
            async move {
                let _ = stop.await;
            },
        ));
        let app = Self {
            address,
            browser: Browser::new(address, None, None),
            database,
            mail_dir,
            clock,
            shutdown,
            server,
        };
        app.wait_until_ready().await;
        app
    }

    async fn wait_until_ready(&self) {
        for _ in 0..200 {
            if self.client.get(self.url("/")).send().await.is_ok() {
                return;
            }
            assert!(
                !self.server.is_finished(),
                "the server stopped during start-up"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the server did not start");
    }

    /// Moves the service's clock (and that of every instance beside it) forward by `by`:
    /// what a session's or a window's expiry is decided by. The client's cookie jar keeps
    /// real time, so a cookie stays in it: whether it still works is the service's answer.
    pub(crate) fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// The service's now: what an authenticator app's code is computed for.
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// The URL the service connects to: `DATABASE_URL`, or `MONGODB_URL` for MongoDB.
    pub(crate) fn database_url(&self) -> &str {
        self.database.url()
    }

    /// Stops the server (letting in-flight requests finish) and, if no other instance
    /// uses it, drops the database.
    pub(crate) async fn stop(self) {
        let _ = self.shutdown.send(());
        self.server
            .await
            .expect("the server task did not panic")
            .expect("the server shut down cleanly");
        if let Ok(database) = Arc::try_unwrap(self.database) {
            database.drop_now().await;
        }
    }

    /// A new browser (its own cookie jar), sending `user_agent` if given.
    pub(crate) fn browser(&self, user_agent: Option<&str>) -> Browser {
        Browser::new(self.address, user_agent, None)
    }

    /// A new browser behind a proxy: every request it sends says
    /// `X-Forwarded-For: forwarded_for`. The service believes it only when
    /// `TRUSTED_PROXIES` names 127.0.0.1 (the socket peer of every test request).
    pub(crate) fn browser_behind_proxy(&self, forwarded_for: &str) -> Browser {
        Browser::new(self.address, None, Some(forwarded_for))
    }

    /// Registers `email` with [`PASSWORD`] and logs it in from `N` new browsers, the
    /// i-th (from 0) sending the User-Agent `browser-i`, in that order.
    pub(crate) async fn user_with_browsers<const N: usize>(&self, email: &str) -> [Browser; N] {
        self.register_user(email).await;
        let mut browsers = Vec::with_capacity(N);
        for i in 0..N {
            let browser = self.browser(Some(&format!("browser-{i}")));
            let login = browser.login(email, PASSWORD).await;
            assert_eq!(login.status(), StatusCode::OK, "login from browser-{i}");
            browsers.push(browser);
        }
        browsers.try_into().expect("N browsers")
    }
}

/// A client with its own cookie jar, like one browser, talking to one instance.
#[derive(Debug)]
pub(crate) struct Browser {
    pub client: reqwest::Client,
    jar: Arc<Jar>,
    address: SocketAddr,
}

impl Browser {
    fn new(address: SocketAddr, user_agent: Option<&str>, forwarded_for: Option<&str>) -> Self {
        let jar = Arc::new(Jar::default());
        let mut builder = reqwest::Client::builder().cookie_provider(Arc::clone(&jar));
        if let Some(user_agent) = user_agent {
            builder = builder.user_agent(user_agent);
        }
        if let Some(forwarded_for) = forwarded_for {
            let value = header::HeaderValue::from_str(forwarded_for).expect("a header value");
            builder = builder.default_headers(header::HeaderMap::from_iter([(
                header::HeaderName::from_static("x-forwarded-for"),
                value,
            )]));
        }
        Self {
            client: builder.build().expect("a client"),
            jar,
            address,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// The `session=...` pair this browser's jar would send now, if any.
    pub(crate) fn session_cookie(&self) -> Option<String> {
        self.cookie_sent_to("/", "session")
    }

    /// The `name=...` pair this browser's jar would send to `path` now, if any.
    pub(crate) fn cookie_sent_to(&self, path: &str, name: &str) -> Option<String> {
        let url = self.url(path).parse().expect("a URL");
        let cookies = self.jar.cookies(&url)?;
        let prefix = format!("{name}=");
        cookies
            .to_str()
            .ok()?
            .split(';')
            .map(str::trim)
            .find(|c| c.starts_with(&prefix))
            .map(str::to_owned)
    }

    /// Sends `method path`, with `body` as JSON if given.
    pub(crate) async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        self.send_with_headers(method, path, &[], body).await
    }

    /// Sends `method path` with these headers besides the usual ones, and `body` as JSON
    /// if given.
    pub(crate) async fn send_with_headers(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    pub(crate) async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None).await
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.send(Method::POST, path, Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Response {
        self.send(Method::DELETE, path, None).await
    }

    pub(crate) async fn register(
        &self,
        email: &str,
        password: &str,
        username: Option<&str>,
    ) -> Response {
        let mut body = json!({"email": email, "password": password});
        if let Some(username) = username {
            body["username"] = json!(username);
        }
        self.post_json("/v1/auth/register", &body).await
    }

    pub(crate) async fn login(&self, email_or_username: &str, password: &str) -> Response {
        self.post_json(
            "/v1/auth/login",
            &json!({"email_or_username": email_or_username, "password": password}),
        )
        .await
    }

    pub(crate) async fn logout(&self) -> Response {
        self.send(Method::POST, "/v1/auth/logout", None).await
    }

    /// Registers `email` with [`PASSWORD`] and the default username, expecting a 201.
    pub(crate) async fn register_user(&self, email: &str) {
        let response = self.register(email, PASSWORD, None).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "registering {email}"
        );
    }

    /// Registers `email` with [`PASSWORD`] and logs in; returns the session cookie pair
    /// (`session=...`) as sent by the server.
    pub(crate) async fn register_and_login(&self, email: &str) -> String {
        self.register_user(email).await;
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        session_cookie(&response).expect("login sets the session cookie")
    }

    /// `GET path`, expecting a 200 with `{field: [..]}` whose every entry is an object
    /// with exactly `keys` (sorted), a non-empty string `id` among them; returns the
    /// entries.
    pub(crate) async fn list(&self, path: &str, field: &str, keys: &[&str]) -> Vec<Value> {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        let body = json_body(response).await;
        let entries = body[field]
            .as_array()
            .unwrap_or_else(|| panic!("{{\"{field}\": [..]}} expected, got {body}"))
            .clone();
        for entry in &entries {
            let mut actual: Vec<&str> = entry
                .as_object()
                .unwrap_or_else(|| panic!("an object expected: {entry}"))
                .keys()
                .map(String::as_str)
                .collect();
            actual.sort_unstable();
            assert_eq!(actual, keys, "{entry}");
            assert!(
                entry["id"].as_str().is_some_and(|id| !id.is_empty()),
                "{entry}"
            );
        }
        entries
    }

    /// `GET /v1/auth/sessions`, expecting a 200 whose every entry has exactly the
    /// documented fields, with consistent times; returns the entries.
    pub(crate) async fn sessions(&self) -> Vec<Value> {
        let keys = [
            "created_at",
            "current",
            "expires_at",
            "id",
            "ip",
            "last_seen_at",
            "user_agent",
        ];
        let sessions = self.list("/v1/auth/sessions", "sessions", &keys).await;
        for session in &sessions {
            assert!(session["current"].is_boolean(), "{session}");
            let created = timestamp(session, "created_at");
            let last_seen = timestamp(session, "last_seen_at");
            assert!(created <= last_seen, "{session}");
            assert!(last_seen < timestamp(session, "expires_at"), "{session}");
        }
        sessions
    }

    /// GET `path` with exactly these `Cookie` headers, as raw bytes (any byte a client may
    /// send), and no jar.
    pub(crate) async fn get_with_cookie_bytes(&self, path: &str, cookies: &[&[u8]]) -> Response {
        let mut request = reqwest::Client::new().get(self.url(path));
        for cookie in cookies {
            let value = header::HeaderValue::from_bytes(cookie).expect("a valid header value");
            request = request.header(header::COOKIE, value);
        }
        request.send().await.expect("request sent")
    }

    /// GET `path` with exactly this Cookie header and no jar.
    pub(crate) async fn get_with_cookie(&self, path: &str, cookie: &str) -> Response {
        reqwest::Client::new()
            .get(self.url(path))
            .header(header::COOKIE, cookie)
            .send()
            .await
            .expect("request sent")
    }
}

fn figment(database: &TestDatabase, options: &Options) -> Figment {
    let storage = if database.backend().is_sql() {
        "sql"
    } else {
        "mongodb"
    };
    let figment = Figment::new()
        .merge(("STORAGE", storage))
        .merge(("SECRET_KEY", options.secret_key))
        .merge(("DEBUG", false))
        .merge(("SESSION_COOKIE_SECURE", options.secure_cookie))
        .merge(("PERMANENT_SESSION_LIFETIME", options.session_lifetime_secs))
        // Cheap hashing: these tests check behaviour, the benchmark checks cost.
        .merge(("ARGON2_MEMORY_KIB", 1024))
        .merge(("ARGON2_ITERATIONS", 1))
        .merge(("SESSION_PURGE_INTERVAL", 1));
    let figment = match options.absolute_lifetime_secs {
        Some(secs) => figment.merge(("SESSION_ABSOLUTE_LIFETIME", secs)),
        None => figment,
    };
    let figment = if options.secret_key_fallbacks.is_empty() {
        figment
    } else {
        figment.merge((
            "SECRET_KEY_FALLBACKS",
            options.secret_key_fallbacks.join(","),
        ))
    };
    let figment = if database.backend().is_sql() {
        figment.merge(("DATABASE_URL", database.url()))
    } else {
        figment
            .merge(("MONGODB_URL", database.url()))
            .merge(("MONGODB_DB", database.mongo_db_name()))
    };
    options.extra.iter().fold(figment, |figment, (key, value)| {
        figment.merge((*key, value.as_str()))
    })
}

/// The `session=...` pair of the response's session Set-Cookie, if any.
pub(crate) fn session_cookie(response: &Response) -> Option<String> {
    SetSessionCookie::of(response.headers()).map(|cookie| cookie.pair().to_owned())
}

/// The whole session Set-Cookie header of the response, if any.
pub(crate) fn set_cookie(response: &Response) -> Option<String> {
    SetSessionCookie::of(response.headers()).map(|cookie| cookie.header().to_owned())
}

/// The value of attribute `name` (any case) of a Set-Cookie header: `Some("")` for a
/// flag such as `HttpOnly`, `None` when absent.
pub(crate) fn cookie_attribute(set_cookie: &str, name: &str) -> Option<String> {
    set_cookie.split(';').skip(1).find_map(|attribute| {
        let (key, value) = attribute.split_once('=').unwrap_or((attribute, ""));
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// Asserts the 401 of a request without a valid session.
pub(crate) async fn assert_access_denied(response: Response) {
    assert_error(response, StatusCode::UNAUTHORIZED, Some("Access denied!")).await;
}

/// Asserts that the response expires the session cookie.
pub(crate) fn assert_cookie_expired(response: &Response) {
    let cookie = set_cookie(response).expect("the response expires the session cookie");
    let max_age_zero = cookie_attribute(&cookie, "max-age").is_some_and(|v| v == "0");
    let expires_in_1970 =
        cookie_attribute(&cookie, "expires").is_some_and(|v| v.to_lowercase().contains("1970"));
    assert!(max_age_zero || expires_in_1970, "{cookie}");
}

/// The RFC 3339 time in `field` of `object`.
pub(crate) fn timestamp(object: &Value, field: &str) -> time::OffsetDateTime {
    object[field]
        .as_str()
        .and_then(|t| time::OffsetDateTime::parse(t, &Rfc3339).ok())
        .unwrap_or_else(|| panic!("{field} is an RFC 3339 time in {object}"))
}

/// Asserts a 400 that names `field` among the refused ones.
pub(crate) async fn assert_field_error(response: Response, field: &str) {
    let body = assert_error(response, StatusCode::BAD_REQUEST, None).await;
    assert!(
        body["errors"][field]
            .as_array()
            .is_some_and(|messages| !messages.is_empty()),
        "errors.{field} expected in {body}"
    );
}

/// The JSON body, checking the content type on the way.
pub(crate) async fn json_body(response: Response) -> Value {
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert!(
        content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json")),
        "content type {content_type:?}"
    );
    response.json().await.expect("a JSON body")
}

/// Asserts the status and the `message` of an error response, returning the body.
pub(crate) async fn assert_error(
    response: Response,
    status: StatusCode,
    message: Option<&str>,
) -> Value {
    assert_eq!(response.status(), status);
    let body = json_body(response).await;
    let actual = body["message"].as_str().expect("an error has a message");
    if let Some(message) = message {
        assert_eq!(actual, message);
    }
    body
}

/// The value of header `name` of `response`, if present and text.
pub(crate) fn header_text(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Asserts the 429 of a throttled request, with its body and a `Retry-After` of whole
/// seconds, at least one; returns those seconds.
pub(crate) async fn assert_throttled(response: Response) -> u64 {
    let retry_after = header_text(&response, "retry-after");
    let body = assert_error(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        Some("Too many attempts. Try again later."),
    )
    .await;
    let seconds = retry_after
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("Retry-After in seconds expected, got {retry_after:?} ({body})"));
    assert!(seconds > 0, "Retry-After: {seconds}");
    seconds
}
