//! The real router over the in-memory stores, driven in process with `oneshot`: no socket,
//! no database. The client's side of cookies is done by hand, one cookie at a time, so
//! that every test says exactly which cookie it presents.

use auth_domain::{
    account_mail::{EmailVerification, MailSettings},
    accounts::Accounts,
    clock::Clock,
    mail::MailKind,
    mfa::MfaSettings,
    passkeys::RelyingParty,
    seal::Seal,
    throttle::ThrottleLimits,
    HashingConfig, PasswordHasher, PasswordPolicy, Stores as _,
};
use auth_http::{HttpConfig, SessionKey};
use auth_testkit::{
    memory::{MemorySessionStore, MemoryUserRepository},
    memory_stores::MemoryStores,
};
use axum::{body::Body, Router};
use http::{
    header::{CONTENT_TYPE, COOKIE, SET_COOKIE},
    HeaderMap, Method, Request, StatusCode,
};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// The service's public URL: the passkeys' relying party and origin.
pub(crate) const PUBLIC_URL: &str = "http://localhost:5000";

/// A password the policy accepts.
pub(crate) const PASSWORD: &str = "velvet-otter-harbour";

/// The name of the session cookie.
pub(crate) const SESSION_COOKIE: &str = "session";

/// Cheap argon2id: the tests check behaviour, not cost.
pub(crate) fn cheap_hashing() -> HashingConfig {
    HashingConfig {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
        max_concurrent: 2,
    }
}

/// The token of the newest mail of `kind` to `to`, waiting for it to be written (a
/// forgotten password is handled after the answer).
pub(crate) async fn token(app: &TestApp, to: &str, kind: MailKind) -> String {
    for _ in 0..200 {
        let entries = app.stores.outbox().entries();
        if let Some(entry) = entries
            .iter()
            .rev()
            .find(|e| e.mail.to.as_str() == to && e.mail.kind == kind)
        {
            let body = app.seal.open(&entry.mail.body).expect("opens");
            let start = body.find("#token=").expect("a link") + "#token=".len();
            return body[start..start + 43].to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no {kind} mail to {to}");
}

/// What a test may change about the app.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub key: [u8; 64],
    /// A key that verifies cookies but never signs one (`SECRET_KEY_FALLBACKS`).
    pub fallback_key: Option<[u8; 64]>,
    pub session_lifetime: time::Duration,
    pub absolute_lifetime: time::Duration,
    pub secure_cookie: bool,
    pub hashing: HashingConfig,
    /// `EMAIL_VERIFICATION`.
    pub verification: EmailVerification,
    /// `PUBLIC_URL`.
    pub public_url: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            key: [0x5a; 64],
            fallback_key: None,
            session_lifetime: time::Duration::hours(1),
            absolute_lifetime: time::Duration::days(1),
            secure_cookie: false,
            hashing: cheap_hashing(),
            verification: EmailVerification::Optional,
            public_url: PUBLIC_URL,
        }
    }
}

/// The router, and handles on the stores it uses.
#[derive(Debug, Clone)]
pub(crate) struct TestApp {
    router: Router,
    /// Every store, to start another app on the same ones.
    pub stores: MemoryStores,
    pub users: MemoryUserRepository,
    pub sessions: MemorySessionStore,
    /// What the outbox's bodies are sealed with.
    #[allow(dead_code, reason = "only the binaries that read mail use it")]
    pub seal: Seal,
    /// The service's clock, which a test moves forward.
    #[allow(dead_code, reason = "only the binaries that move time use it")]
    pub clock: Clock,
}

impl TestApp {
    /// The app with default options over fresh, empty stores.
    pub(crate) fn new() -> Self {
        Self::with(Options::default())
    }

    /// The app with `options` over fresh, empty stores.
    pub(crate) fn with(options: Options) -> Self {
        Self::over(MemoryStores::default(), options)
    }

    /// The app with `options` over these stores (shared with whoever else holds a clone),
    /// built as the application builds it.
    pub(crate) fn over(stores: MemoryStores, options: Options) -> Self {
        Self::over_with_policy(stores, options, PasswordPolicy::default())
    }

    /// The app with `options` and the password `policy` over fresh, empty stores.
    pub(crate) fn with_policy(options: Options, policy: PasswordPolicy) -> Self {
        Self::over_with_policy(MemoryStores::default(), options, policy)
    }

    /// [`Self::over`], with the password `policy`.
    pub(crate) fn over_with_policy(
        stores: MemoryStores,
        options: Options,
        policy: PasswordPolicy,
    ) -> Self {
        let hasher = PasswordHasher::new(&options.hashing).expect("valid hashing parameters");
        let config = HttpConfig {
            session_key: SessionKey::from_bytes(&options.key).expect("a 64-byte key"),
            fallback_keys: options
                .fallback_key
                .iter()
                .map(|key| SessionKey::from_bytes(key).expect("a 64-byte key"))
                .collect(),
            session_lifetime: options.session_lifetime,
            absolute_lifetime: options.absolute_lifetime,
            secure_cookie: options.secure_cookie,
            trusted_proxies: Vec::new(),
            allowed_origins: Vec::new(),
            timeouts: auth_http::RequestTimeouts::default(),
        };
        let keys = auth_http::digest_keys(&config);
        let seal = auth_http::mail_seal(&config);
        let clock = Clock::adjustable();
        let accounts = Accounts::new(
            stores.clone(),
            hasher,
            policy,
            ThrottleLimits::default(),
            keys,
            clock.clone(),
            MailSettings {
                verification: options.verification,
                seal: seal.clone(),
                ..MailSettings::new(options.public_url, auth_http::token_key(&config))
            },
        )
        .with_mfa(MfaSettings {
            seal: auth_http::totp_seal(&config),
            relying_party: RelyingParty::from_public_url(
                &url::Url::parse(options.public_url).expect("an absolute URL"),
            )
            .ok(),
            ..MfaSettings::new("localhost")
        });
        Self {
            router: auth_http::router(accounts, config),
            users: stores.users().clone(),
            sessions: stores.sessions().clone(),
            stores,
            seal,
            clock,
        }
    }

    /// Sends one request through the whole stack.
    pub(crate) async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("the body reads")
            .to_bytes();
        let text = String::from_utf8(bytes.to_vec()).expect("a UTF-8 body");
        // A 204 has no body; every other answer is JSON.
        let body = if status == StatusCode::NO_CONTENT && text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{status}: the body is not JSON: {text:?}"))
        };
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// A request with no body, presenting `cookie` if any.
    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&Cookie>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie.header());
        }
        self.send(request.body(Body::empty()).expect("a valid request"))
            .await
    }

    /// `GET path`, presenting `cookie` if any.
    pub(crate) async fn get(&self, path: &str, cookie: Option<&Cookie>) -> Reply {
        self.request(Method::GET, path, cookie).await
    }

    /// `POST path` with a JSON body, presenting `cookie` if any.
    pub(crate) async fn post_json(
        &self,
        path: &str,
        body: &Value,
        cookie: Option<&Cookie>,
    ) -> Reply {
        let mut request = Request::post(path).header(CONTENT_TYPE, "application/json");
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie.header());
        }
        self.send(
            request
                .body(Body::from(body.to_string()))
                .expect("a valid request"),
        )
        .await
    }

    /// A request of `method` with a JSON body, presenting `cookie` if any.
    pub(crate) async fn json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        cookie: Option<&Cookie>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(CONTENT_TYPE, "application/json");
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie.header());
        }
        self.send(
            request
                .body(Body::from(body.to_string()))
                .expect("a valid request"),
        )
        .await
    }

    /// `POST /v1/auth/register`.
    pub(crate) async fn register(
        &self,
        email: &str,
        password: &str,
        username: Option<&str>,
    ) -> Reply {
        let mut body = json!({"email": email, "password": password});
        if let Some(username) = username {
            body["username"] = json!(username);
        }
        self.post_json("/v1/auth/register", &body, None).await
    }

    /// `POST /v1/auth/login`, presenting `cookie` if any.
    pub(crate) async fn login(
        &self,
        login: &str,
        password: &str,
        cookie: Option<&Cookie>,
    ) -> Reply {
        let body = json!({"email_or_username": login, "password": password});
        self.post_json("/v1/auth/login", &body, cookie).await
    }

    /// `POST /v1/auth/logout`, presenting `cookie` if any.
    pub(crate) async fn logout(&self, cookie: Option<&Cookie>) -> Reply {
        self.request(Method::POST, "/v1/auth/logout", cookie).await
    }

    /// Registers `email` with [`PASSWORD`], expecting a 201.
    pub(crate) async fn register_user(&self, email: &str) -> Value {
        let reply = self.register(email, PASSWORD, None).await;
        assert_eq!(reply.status, StatusCode::CREATED, "registering {email}");
        reply.body
    }

    /// Logs `email` in with [`PASSWORD`], expecting a 200 and a session cookie.
    pub(crate) async fn log_in(&self, email: &str) -> Cookie {
        let reply = self.login(email, PASSWORD, None).await;
        assert_eq!(reply.status, StatusCode::OK, "logging in {email}");
        reply
            .session_cookie()
            .expect("a login sets the session cookie")
    }
}

/// A response, its body read and parsed.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    /// The body as sent, to check what it must not contain.
    pub text: String,
}

impl Reply {
    /// The `Set-Cookie` header of the session cookie, if the response sets it.
    pub(crate) fn set_session_cookie(&self) -> Option<&str> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with(&format!("{SESSION_COOKIE}=")))
    }

    /// The session cookie the response sets, as a client would send it back.
    pub(crate) fn session_cookie(&self) -> Option<Cookie> {
        let header = self.set_session_cookie()?;
        let pair = header.split(';').next().expect("split yields once");
        let value = pair
            .strip_prefix(&format!("{SESSION_COOKIE}="))
            .expect("the session cookie");
        Some(Cookie::new(value))
    }

    /// Asserts that this is an error in the contract's shape, `{"message", "code"}`, with
    /// this status and code, and returns the body.
    pub(crate) fn assert_error(&self, status: StatusCode, code: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["code"], code, "{}", self.text);
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        assert!(
            self.headers[CONTENT_TYPE]
                .to_str()
                .is_ok_and(|value| value.starts_with("application/json")),
            "{:?}",
            self.headers
        );
        &self.body
    }
}

/// The value of a session cookie, as a client holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cookie(String);

impl Cookie {
    /// A cookie of this value, genuine or not.
    pub(crate) fn new(value: &str) -> Self {
        Self(value.to_owned())
    }

    /// The cookie's value.
    pub(crate) fn value(&self) -> &str {
        &self.0
    }

    /// The `Cookie` request header that presents it.
    pub(crate) fn header(&self) -> String {
        format!("{SESSION_COOKIE}={}", self.0)
    }
}
