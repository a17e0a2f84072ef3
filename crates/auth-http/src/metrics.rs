//! What the HTTP layer counts, through the `metrics` facade: requests by route template
//! and status, their latency, logins and registrations by outcome, and database errors.
//! Nothing is recorded anywhere until the application installs a recorder (its
//! `METRICS_ADDR` listener); until then every call here is a no-op.
//!
//! Every label value comes from a closed set (a route template, a known method, a status
//! code, an outcome name), so no client can grow the label set.

use std::time::Duration;

use http::{Method, StatusCode};

/// `http_requests_total{method,route,status}`: requests answered.
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// `http_request_duration_seconds{method,route}`: time to the response head.
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";
/// `auth_logins_total{outcome}`: `succeeded`, `failed`, `throttled`, `rejected` (a body
/// that is not a login form), `error`.
pub const AUTH_LOGINS: &str = "auth_logins_total";
/// `auth_registrations_total{outcome}`: `succeeded`, `invalid`, `taken`, `throttled`,
/// `rejected`, `error`.
pub const AUTH_REGISTRATIONS: &str = "auth_registrations_total";
/// `database_errors_total{kind}`: requests that failed on the database, `unavailable`
/// (out of reach: a 503) or `unexpected` (any other failure answered 500, a handler's
/// panic included).
pub const DATABASE_ERRORS: &str = "database_errors_total";

/// `auth_secure_cookie_over_http_total`: logins that set a `Secure` session cookie on a
/// request that visibly came over plain http, which browsers drop (see the README's
/// "Deploying").
pub const SECURE_COOKIE_OVER_HTTP: &str = "auth_secure_cookie_over_http_total";

/// `auth_forwarded_for_ignored_total`: requests from a loopback peer that carried
/// `X-Forwarded-For` while `TRUSTED_PROXIES` is empty (a proxy on this host, not trusted:
/// every client behind it counts as one address). The first one logs a warning.
pub const FORWARDED_FOR_IGNORED: &str = "auth_forwarded_for_ignored_total";

/// The route label of a request that matched no route: one value for every unknown path.
pub(crate) const UNMATCHED: &str = "unmatched";

/// Counts a finished request under its route template (`None`: it matched no route).
pub(crate) fn request_finished(
    method: &Method,
    route: Option<&str>,
    status: StatusCode,
    latency: Duration,
) {
    let method = method_label(method);
    let route = route.unwrap_or(UNMATCHED);
    metrics::counter!(
        HTTP_REQUESTS,
        "method" => method,
        "route" => route.to_owned(),
        "status" => status.as_str().to_owned(),
    )
    .increment(1);
    metrics::histogram!(
        HTTP_REQUEST_DURATION,
        "method" => method,
        "route" => route.to_owned(),
    )
    .record(latency.as_secs_f64());
    if method == "POST" {
        match route {
            "/v1/auth/login" => {
                metrics::counter!(AUTH_LOGINS, "outcome" => login_outcome(status)).increment(1);
            }
            "/v1/auth/register" => {
                metrics::counter!(AUTH_REGISTRATIONS, "outcome" => registration_outcome(status))
                    .increment(1);
            }
            _ => {}
        }
    }
}

/// Counts a request that failed on the database: `kind` is `unavailable` or
/// `unexpected`.
pub(crate) fn database_error(kind: &'static str) {
    metrics::counter!(DATABASE_ERRORS, "kind" => kind).increment(1);
}

/// The method as a label: the standard ones by name, any other as `other` (a client may
/// invent methods without end).
fn method_label(method: &Method) -> &'static str {
    static KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

/// What a login's status says happened (the statuses of DESIGN.md's contract).
fn login_outcome(status: StatusCode) -> &'static str {
    match status {
        StatusCode::OK => "succeeded",
        StatusCode::UNAUTHORIZED => "failed",
        StatusCode::TOO_MANY_REQUESTS => "throttled",
        _ if status.is_server_error() => "error",
        _ => "rejected",
    }
}

/// What a registration's status says happened.
fn registration_outcome(status: StatusCode) -> &'static str {
    match status {
        StatusCode::CREATED => "succeeded",
        StatusCode::BAD_REQUEST => "invalid",
        StatusCode::CONFLICT => "taken",
        StatusCode::TOO_MANY_REQUESTS => "throttled",
        _ if status.is_server_error() => "error",
        _ => "rejected",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::from_bytes(b"X1").unwrap()), "other");
    }

    #[test]
    fn outcomes_follow_the_contracts_statuses() {
        assert_eq!(login_outcome(StatusCode::OK), "succeeded");
        assert_eq!(login_outcome(StatusCode::UNAUTHORIZED), "failed");
        assert_eq!(login_outcome(StatusCode::TOO_MANY_REQUESTS), "throttled");
        assert_eq!(login_outcome(StatusCode::UNPROCESSABLE_ENTITY), "rejected");
        assert_eq!(login_outcome(StatusCode::SERVICE_UNAVAILABLE), "error");
        assert_eq!(registration_outcome(StatusCode::CREATED), "succeeded");
        assert_eq!(registration_outcome(StatusCode::CONFLICT), "taken");
        assert_eq!(registration_outcome(StatusCode::BAD_REQUEST), "invalid");
    }
}
