//! The second factor's scenarios (#21): logins that finish with a TOTP code, and
//! passwordless passkey sign-ins, each a [`Flow`] of two requests timed as one.
//!
//! A TOTP step is accepted once per user and only within a step of the server's clock, so
//! the TOTP clients share a pool of users prepared through the API beforehand, enough for
//! every login of the run: a user serves the steps after the last one it used, from the
//! one before now to the one after, and so about one login per 30-second step once its
//! first ones are spent. A wrong code would count towards the account's limit (5, then
//! 429), so the bench never sends one on purpose. Passkeys have no such limit: each
//! passkey client holds a software authenticator with one passkey of its own user.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{ensure, Context as _, Result};
use auth_domain::{
    clock::Clock,
    mfa::totp::{step_of, TotpSecret, STEP_SECONDS},
};
use auth_testkit::{authenticator::SoftAuthenticator, SetSessionCookie};
use bytes::Bytes;
use hyper::{
    header::{HeaderValue, CONTENT_TYPE, COOKIE},
    Method, Response, StatusCode,
};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::task::JoinSet;
use url::Url;

use crate::{
    load::{send_once, Client, Flow, FlowError, Template},
    server::PUBLIC_URL,
    PASSWORD,
};

/// Within this many seconds of the end of a step, the code of the step before now is not
/// sent: the step may end before the server checks it, and a refused code counts against
/// the account.
const OLDEST_STEP_MARGIN_SECS: i64 = 5;
/// How many more TOTP logins than the password logins of scenario (c) the pool is sized
/// for: the two shares of the cores move from one scenario to the next.
const TOTP_HEADROOM: f64 = 1.5;
/// How long a TOTP client waits when no user has a step left, before it tries again.
const POOL_EMPTY_WAIT: Duration = Duration::from_millis(100);

/// What preparing a scenario's users took.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prepared {
    /// Users registered, logged in and given their factor.
    pub(crate) users: usize,
    /// Wall time of the preparation.
    pub(crate) took: Duration,
}

/// A user with TOTP on, and the last step the server accepted from it.
struct TotpUser {
    login: Template,
    secret: TotpSecret,
    last_step: i64,
}

/// The step whose code a user whose last accepted step is `last` sends at `now`: the
/// oldest the server still takes that is newer than `last`, or `None` when the user has
/// used every step up to the one after now.
fn next_step(last: i64, now: OffsetDateTime) -> Option<i64> {
    let current = step_of(now);
    let into_step = now.unix_timestamp().rem_euclid(STEP_SECONDS as i64);
    let oldest = if into_step < STEP_SECONDS as i64 - OLDEST_STEP_MARGIN_SECS {
        current - 1
    } else {
        current
    };
    let step = (last + 1).max(oldest);
    (step <= current + 1).then_some(step)
}

/// The code of `step`.
fn code_of(secret: &TotpSecret, step: i64) -> Result<String> {
    let at = OffsetDateTime::from_unix_timestamp(step * STEP_SECONDS as i64)
        .context("a TOTP step out of time's range")?;
    Ok(secret.code_at(at))
}

/// The users the TOTP clients take turns with, least recently used first.
#[derive(Clone)]
pub(crate) struct TotpPool {
    users: Arc<Mutex<VecDeque<TotpUser>>>,
}

impl TotpPool {
    /// The least recently used user that has a step left at `now`, if any.
    fn take(&self, now: OffsetDateTime) -> Option<TotpUser> {
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for _ in 0..users.len() {
            let user = users.pop_front()?;
            if next_step(user.last_step, now).is_some() {
                return Some(user);
            }
            users.push_back(user);
        }
        None
    }

    fn put_back(&self, user: TotpUser) {
        self.users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push_back(user);
    }

    /// How many users the run needs: `rate` TOTP logins per second for `seconds`, each
    /// user good for two steps (now and the next) plus one per step the run crosses.
    pub(crate) fn users_needed(rate: f64, seconds: f64, clients: usize) -> usize {
        let logins = (rate * TOTP_HEADROOM * seconds).ceil() as usize + clients;
        let per_user = 2 + (seconds / STEP_SECONDS as f64).floor() as usize;
        logins.div_ceil(per_user).max(2 * clients)
    }

    /// Registers `count` users, `clients` at a time, and turns TOTP on for each: register,
    /// log in, `POST /v1/auth/mfa/totp`, and confirm with a first code.
    pub(crate) async fn prepare(
        addr: SocketAddr,
        count: usize,
        clients: usize,
    ) -> Result<(Self, Prepared)> {
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for client in 0..clients {
            tasks.spawn(async move {
                let mut users = Vec::new();
                for at in (client..count).step_by(clients) {
                    users.push(enrol_totp(addr, at).await?);
                }
                Ok::<_, anyhow::Error>(users)
            });
        }
        let mut users = VecDeque::with_capacity(count);
        while let Some(joined) = tasks.join_next().await {
            users.extend(joined.context("a preparing client panicked")??);
        }
        let pool = Self {
            users: Arc::new(Mutex::new(users)),
        };
        let prepared = Prepared {
            users: count,
            took: started.elapsed(),
        };
        Ok((pool, prepared))
    }
}

/// Registers user `at` of the pool, logs in and turns TOTP on.
async fn enrol_totp(addr: SocketAddr, at: usize) -> Result<TotpUser> {
    let email = format!("bench-totp-{at}@example.com");
    let cookie = register_and_log_in(addr, &email).await?;
    let enrol = json_request(addr, "/v1/auth/mfa/totp", &json!({})).header(COOKIE, cookie.clone());
    let enrolment = body_of(&send_once(addr, &enrol).await?, StatusCode::OK)?;
    let secret = enrolment["secret"]
        .as_str()
        .and_then(TotpSecret::from_base32)
        .context("POST /v1/auth/mfa/totp answered no base32 secret")?;
    // The step the confirmation spends is the user's first.
    let step = next_step(i64::MIN, Clock::system().now()).context("a step is always left")?;
    let confirm = json_request(
        addr,
        "/v1/auth/mfa/totp/confirm",
        &json!({ "code": code_of(&secret, step)? }),
    )
    .header(COOKIE, cookie);
    body_of(&send_once(addr, &confirm).await?, StatusCode::OK)
        .context("POST /v1/auth/mfa/totp/confirm")?;
    Ok(TotpUser {
        login: login_request(addr, &email),
        secret,
        last_step: step,
    })
}

/// One TOTP client: a login with the password, then the code of the user's next step on
/// the half-authenticated session.
pub(crate) struct TotpLogin {
    pool: TotpPool,
    verify: Template,
}

impl TotpLogin {
    /// A client taking its users from `pool`.
    pub(crate) fn new(addr: SocketAddr, pool: TotpPool) -> Self {
        Self {
            pool,
            verify: Template::new(Method::POST, addr, "/v1/auth/mfa/verify")
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json")),
        }
    }

    /// Logs `user` in with the password and the code of its next step.
    async fn log_in(&self, client: &mut Client, user: &mut TotpUser) -> Result<(), Step> {
        let first = client.send(&user.login).await.map_err(Step::NoneUsed)?;
        let cookie = half_session(&first).map_err(|error| Step::NoneUsed(refused(error)))?;
        // The step is chosen now, after the password's hash, as late as it can be.
        let step = next_step(user.last_step, Clock::system().now())
            .ok_or_else(|| Step::NoneUsed(refused("the user has no step left")))?;
        let code = code_of(&user.secret, step).map_err(|error| Step::NoneUsed(refused(error)))?;
        let verify = self.verify.clone().header(COOKIE, cookie).body(Bytes::from(
            json!({"method": "totp", "code": code}).to_string(),
        ));
        let second = client.send(&verify).await.map_err(Step::Unknown)?;
        if second.status() != StatusCode::OK {
            return Err(Step::Unknown(answered("POST /v1/auth/mfa/verify", &second)));
        }
        user.last_step = step;
        Ok(())
    }
}

/// Whether a failed TOTP login may have spent its user's step.
enum Step {
    /// It failed before the code was sent: the user goes back to the pool.
    NoneUsed(FlowError),
    /// The code was sent: the user is set aside, as a refused code counts against it.
    Unknown(FlowError),
}

impl Flow for TotpLogin {
    async fn run(&mut self, client: &mut Client) -> Result<(), FlowError> {
        let Some(mut user) = self.pool.take(Clock::system().now()) else {
            tokio::time::sleep(POOL_EMPTY_WAIT).await;
            return Err(refused(
                "every prepared TOTP user has used its steps: more users were needed",
            ));
        };
        match self.log_in(client, &mut user).await {
            Ok(()) => {
                self.pool.put_back(user);
                Ok(())
            }
            Err(Step::NoneUsed(error)) => {
                self.pool.put_back(user);
                Err(error)
            }
            Err(Step::Unknown(error)) => Err(error),
        }
    }
}

/// One passkey client: its own user's passkey on its own authenticator, and the two
/// requests of a sign-in with no username.
pub(crate) struct PasskeySignIn {
    authenticator: SoftAuthenticator,
    origin: Url,
    options: Template,
    sign_in: Template,
}

impl PasskeySignIn {
    /// Registers user `at` of the passkey clients, logs in and registers a passkey on a
    /// fresh authenticator.
    async fn prepare(addr: SocketAddr, at: usize, origin: Url) -> Result<Self> {
        let email = format!("bench-passkey-{at}@example.com");
        let cookie = register_and_log_in(addr, &email).await?;
        let options_request = json_request(addr, "/v1/auth/passkeys/register/options", &json!({}))
            .header(COOKIE, cookie.clone());
        let options = body_of(&send_once(addr, &options_request).await?, StatusCode::OK)
            .context("POST /v1/auth/passkeys/register/options")?;
        let mut authenticator = SoftAuthenticator::new();
        let credential = authenticator.register(&options, &origin);
        let register = json_request(
            addr,
            "/v1/auth/passkeys/register",
            &json!({"credential": credential, "name": "bench"}),
        )
        .header(COOKIE, cookie);
        body_of(&send_once(addr, &register).await?, StatusCode::CREATED)
            .context("POST /v1/auth/passkeys/register")?;
        Ok(Self {
            authenticator,
            origin,
            options: json_request(addr, "/v1/auth/passkeys/login/options", &json!({})),
            sign_in: Template::new(Method::POST, addr, "/v1/auth/passkeys/login")
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json")),
        })
    }

    /// `clients` passkey clients, each with a user and a passkey of its own.
    pub(crate) async fn prepare_all(
        addr: SocketAddr,
        clients: usize,
    ) -> Result<(Vec<Self>, Prepared)> {
        let started = Instant::now();
        // The relying party is `PUBLIC_URL`, not the address the bench connects to: the
        // authenticator signs for the page the server expects.
        let origin = Url::parse(PUBLIC_URL).context("PUBLIC_URL is no URL")?;
        let mut tasks = JoinSet::new();
        for at in 0..clients {
            tasks.spawn(Self::prepare(addr, at, origin.clone()));
        }
        let mut flows = Vec::with_capacity(clients);
        while let Some(joined) = tasks.join_next().await {
            flows.push(joined.context("a preparing client panicked")??);
        }
        let prepared = Prepared {
            users: clients,
            took: started.elapsed(),
        };
        Ok((flows, prepared))
    }
}

impl Flow for PasskeySignIn {
    async fn run(&mut self, client: &mut Client) -> Result<(), FlowError> {
        let answered_options = client.send(&self.options).await?;
        if answered_options.status() != StatusCode::OK {
            return Err(answered(
                "POST /v1/auth/passkeys/login/options",
                &answered_options,
            ));
        }
        let options: Value = serde_json::from_slice(answered_options.body())
            .map_err(|error| refused(format!("sign-in options: {error}")))?;
        let credential = self.authenticator.sign_in(&options, &self.origin);
        let sign_in = self
            .sign_in
            .clone()
            .body(Bytes::from(json!({ "credential": credential }).to_string()));
        let signed_in = client.send(&sign_in).await?;
        if signed_in.status() != StatusCode::OK {
            return Err(answered("POST /v1/auth/passkeys/login", &signed_in));
        }
        if SetSessionCookie::of(signed_in.headers()).is_none() {
            return Err(refused("a passkey sign-in set no session cookie"));
        }
        Ok(())
    }
}

/// Registers `email` with the bench's password, logs in and returns the session's
/// `Cookie` header.
async fn register_and_log_in(addr: SocketAddr, email: &str) -> Result<HeaderValue> {
    let register = json_request(
        addr,
        "/v1/auth/register",
        &json!({"email": email, "password": PASSWORD}),
    );
    body_of(&send_once(addr, &register).await?, StatusCode::CREATED)
        .with_context(|| format!("POST /v1/auth/register for {email}"))?;
    let logged_in = send_once(addr, &login_request(addr, email)).await?;
    body_of(&logged_in, StatusCode::OK)
        .with_context(|| format!("POST /v1/auth/login as {email}"))?;
    session_cookie(&logged_in)
}

/// The `Cookie` header that carries the session `response` set.
fn session_cookie(response: &Response<Bytes>) -> Result<HeaderValue> {
    let pair = SetSessionCookie::of(response.headers())
        .context("the answer set no `session` cookie")?
        .pair();
    HeaderValue::from_str(pair).context("the session cookie is no valid header value")
}

/// The cookie of the half-authenticated session a password login of a TOTP user answers.
fn half_session(response: &Response<Bytes>) -> Result<HeaderValue> {
    let body = body_of(response, StatusCode::OK).context("POST /v1/auth/login")?;
    ensure!(
        body["mfa_required"] == true,
        "POST /v1/auth/login asked for no second step: {body}"
    );
    session_cookie(response)
}

/// `email`'s login with the bench's password.
fn login_request(addr: SocketAddr, email: &str) -> Template {
    json_request(
        addr,
        "/v1/auth/login",
        &json!({"email_or_username": email, "password": PASSWORD}),
    )
}

/// A `POST` of `body` as JSON.
fn json_request(addr: SocketAddr, path: &'static str, body: &Value) -> Template {
    Template::new(Method::POST, addr, path)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(Bytes::from(body.to_string()))
}

/// The JSON body of `response`, which must have answered `status`.
fn body_of(response: &Response<Bytes>, status: StatusCode) -> Result<Value> {
    ensure!(
        response.status() == status,
        "answered {}: {}",
        response.status(),
        String::from_utf8_lossy(response.body())
    );
    serde_json::from_slice(response.body()).context("an answer that is no JSON")
}

fn refused(error: impl std::fmt::Display) -> FlowError {
    FlowError::Refused(format!("{error:#}"))
}

fn answered(what: &str, response: &Response<Bytes>) -> FlowError {
    FlowError::Refused(format!("{what} answered {}", response.status()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).expect("in range")
    }

    #[test]
    fn a_fresh_user_starts_with_the_step_before_now_early_in_a_step() {
        // 10 s into step 100.
        assert_eq!(next_step(i64::MIN, at(3_010)), Some(99));
    }

    #[test]
    fn the_step_before_now_is_not_sent_near_the_end_of_a_step() {
        assert_eq!(next_step(i64::MIN, at(3_027)), Some(100));
    }

    #[test]
    fn a_user_serves_the_steps_up_to_the_one_after_now_then_none() {
        let now = at(3_010);
        assert_eq!(next_step(99, now), Some(100));
        assert_eq!(next_step(100, now), Some(101));
        assert_eq!(next_step(101, now), None);
        // A step later, the next one is free.
        assert_eq!(next_step(101, at(3_040)), Some(102));
    }

    #[test]
    fn the_pool_is_sized_for_two_steps_per_user_within_one_step() {
        // 100 logins/s for 12 s with the headroom, 8 clients: 1,808 logins, 2 per user.
        assert_eq!(TotpPool::users_needed(100.0, 12.0, 8), 904);
        // Over 62 s each user serves 4.
        assert_eq!(TotpPool::users_needed(100.0, 62.0, 8), 2_327);
        assert_eq!(TotpPool::users_needed(0.0, 12.0, 8), 16);
    }
}
