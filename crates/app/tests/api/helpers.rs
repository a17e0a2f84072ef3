//! Spawning the real service on port 0, on a fresh database of any backend, and talking
//! to it over a real connection with a cookie-jar client.

use std::{net::SocketAddr, time::Duration};

use auth_testkit::{Backend, TestDatabase};
use figment::Figment;
use reqwest::{header, Response, StatusCode};
use serde_json::{json, Value};
use tokio::{sync::oneshot, task::JoinHandle};

/// A 64-byte key, as `SECRET_KEY` must be at least.
pub(crate) const SECRET_KEY: &str =
    "test-secret-key-test-secret-key-test-secret-key-test-secret-key!";
pub(crate) const PASSWORD: &str = "velvet-otter-harbour";

/// Settings a test may change; everything else is the service's default.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub session_lifetime_secs: u64,
    pub secure_cookie: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            session_lifetime_secs: 3600,
            secure_cookie: false,
        }
    }
}

/// The service, running in this process on its own database.
pub(crate) struct TestApp {
    pub address: SocketAddr,
    /// A client with a cookie jar, like a browser.
    pub client: reqwest::Client,
    database: TestDatabase,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    /// The service on a fresh database of `backend`.
    pub(crate) async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, Options::default()).await
    }

    pub(crate) async fn spawn_with(backend: Backend, options: Options) -> Self {
        let database = TestDatabase::create(backend).await;
        let config = app::Config::from_figment(figment(&database, &options))
            .expect("the test configuration is valid");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = listener.local_addr().expect("bound");
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(app::run(config, listener, async move {
            let _ = stop.await;
        }));
        let app = Self {
            address,
            client: client(),
            database,
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

    /// Stops the server (letting in-flight requests finish) and drops the database.
    pub(crate) async fn stop(self) {
        let _ = self.shutdown.send(());
        self.server
            .await
            .expect("the server task did not panic")
            .expect("the server shut down cleanly");
        self.database.drop_now().await;
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub(crate) async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
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
        self.client
            .post(self.url("/v1/auth/logout"))
            .send()
            .await
            .expect("request sent")
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
        .merge(("SECRET_KEY", SECRET_KEY))
        .merge(("DEBUG", false))
        .merge(("SESSION_COOKIE_SECURE", options.secure_cookie))
        .merge(("PERMANENT_SESSION_LIFETIME", options.session_lifetime_secs))
        // Cheap hashing: these tests check behaviour, the benchmark checks cost.
        .merge(("ARGON2_MEMORY_KIB", 1024))
        .merge(("ARGON2_ITERATIONS", 1))
        .merge(("SESSION_PURGE_INTERVAL", 1));
    if database.backend().is_sql() {
        figment.merge(("DATABASE_URL", database.url()))
    } else {
        figment
            .merge(("MONGODB_URL", database.url()))
            .merge(("MONGODB_DB", database.mongo_db_name()))
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("a client")
}

/// The `session=...` pair of the response's session Set-Cookie, if any.
pub(crate) fn session_cookie(response: &Response) -> Option<String> {
    set_cookie(response).map(|c| c.split(';').next().unwrap_or_default().trim().to_owned())
}

/// The whole session Set-Cookie header of the response, if any.
pub(crate) fn set_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("session="))
        .map(str::to_owned)
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
