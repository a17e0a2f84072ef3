//! How the routes, the login manager and the middleware fit together.

use std::convert::Infallible;

use auth_domain::{accounts::Accounts, session::Lifetimes};
use axum::{extract::Request, response::Response, Extension, Router};
use tower::{util::MapResponseLayer, Layer, Service, ServiceBuilder};
use tower_http::{catch_panic::CatchPanicLayer, limit::RequestBodyLimitLayer};
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    client::TrustedProxies,
    cross_origin::{self, AllowedOrigins},
    documented::documented,
    handlers::{self, account, auth, events, mail, mfa, my_sessions, passkeys, probes, profile},
    headers, openapi, safety_net,
    session_layer::SessionLayer,
    signing::{Purpose, Signer},
    state::{AppState, Shared, Stores},
    timeouts, trace, HttpConfig,
};

/// The largest request body accepted; credentials fit many times over.
pub const BODY_LIMIT_BYTES: usize = 16 * 1024;

/// The whole API over the account use cases: routes, sessions, the login manager, JSON
/// errors, cross-origin refusal, security headers, tracing. The session store must load
/// each session with its owner (see `auth_domain::session`): that is how a request learns
/// who is logged in.
pub fn router<B: Stores>(accounts: Accounts<B>, config: HttpConfig) -> Router {
    let sessions = auth_domain::Stores::sessions(accounts.stores()).clone();
    // Outside the session layer: a probe never loads or creates a session.
    let (probes, probes_documentation) =
        probes::routes(sessions.clone(), accounts.service().policy().breached()).split_for_parts();
    let signer = |purpose| Signer::new(purpose, &config.session_key, &config.fallback_keys);
    let lifetimes = Lifetimes {
        idle: config.session_lifetime,
        absolute: config.absolute_lifetime.max(config.session_lifetime),
    };
    let session_layer = SessionLayer::new(
        sessions,
        signer(Purpose::SessionCookie),
        config.secure_cookie,
        lifetimes,
        accounts.clock().clone(),
    );
    let state: AppState<B> = AppState::new(Shared {
        accounts,
        secure_cookie: config.secure_cookie,
    });

    // Only these routes touch the session store: a public page or a 404 costs no query.
    let (authenticated, documentation) = OpenApiRouter::new()
        .routes(documented!(profile::profile))
        .routes(documented!(auth::register::<B>))
        .routes(documented!(auth::login::<B>))
        .routes(documented!(auth::logout::<B>))
        .routes(documented!(my_sessions::list::<B>))
        .routes(documented!(my_sessions::revoke_others::<B>))
        .routes(documented!(my_sessions::revoke::<B>))
        .routes(documented!(account::change_password::<B>))
        .routes(documented!(account::delete_account::<B>))
        .routes(documented!(events::recent::<B>))
        .routes(documented!(mail::forgot_password::<B>))
        .routes(documented!(mail::reset_password::<B>))
        .routes(documented!(mail::verify_email::<B>))
        .routes(documented!(mail::resend_verification::<B>))
        .routes(documented!(mail::change_email::<B>))
        .routes(documented!(mfa::verify::<B>))
        .routes(documented!(mfa::factors::<B>))
        .routes(documented!(mfa::begin_totp::<B>))
        .routes(documented!(mfa::confirm_totp::<B>))
        .routes(documented!(mfa::remove_totp::<B>))
        .routes(documented!(mfa::regenerate_recovery_codes::<B>))
        .routes(documented!(mfa::reauthenticate::<B>))
        .routes(documented!(passkeys::proof_options::<B>))
        .routes(documented!(passkeys::registration_options::<B>))
        .routes(documented!(passkeys::register::<B>))
        .routes(documented!(passkeys::list::<B>))
        .routes(documented!(passkeys::rename::<B>))
        .routes(documented!(passkeys::delete::<B>))
        .routes(documented!(passkeys::sign_in_options::<B>))
        .routes(documented!(passkeys::sign_in::<B>))
        .routes(documented!(passkeys::remove_password::<B>))
        .split_for_parts();
    let documentation = documentation.merge_from(probes_documentation);
    let authenticated = authenticated
        .with_state(state)
        // Each `layer` call boxes every route once more, and a boxed level costs an
        // allocation and a clone on every request: so one call per stack, outermost first.
        .layer(session_layer);
    let origins = AllowedOrigins::new(&config.allowed_origins);
    let cors = origins.cors();
    let proxies = TrustedProxies::new(config.trusted_proxies);
    let app = ServiceBuilder::new()
        // Deadlines on the body and the answer, around everything that reads or makes
        // them.
        .layer_fn(|inner| timeouts::Deadlines::new(config.timeouts, inner))
        .map_response(cross_origin::credentials_only_for_an_allowed_origin)
        .option_layer(cors)
        .layer_fn(|inner| cross_origin::RefuseCrossOrigin::new(origins.clone(), inner))
        .layer(Extension(proxies.clone()))
        .service(app(
            headers::private(authenticated).merge(probes),
            documentation,
        ));
    // Outermost, so that answers given before routing (a cross-origin refusal, a CORS
    // preflight) carry them too; and around them the request id, span and access line.
    whole(trace::observed(headers::security(app), proxies))
}

/// A stage of the middleware around the routes: a service of axum requests that answers
/// every one. The stages are composed as services, not with `Router::layer`, which would
/// box each of them once more: one box in all ([`whole`]).
pub(crate) trait Stage:
    Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> Stage for T where
    T: Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The composed stages as the one router the server runs.
pub(crate) fn whole(stages: impl Stage) -> Router {
    Router::new().fallback_service(stages)
}

/// The public routes, the 404s and the outer middleware around `authenticated`, whose
/// operations `documentation` describes. Split out so that tests can drive the stack
/// without a repository.
pub(crate) fn app(authenticated: Router, documentation: OpenApi) -> impl Stage {
    let (public, public_documentation) = OpenApiRouter::new()
        .routes(documented!(handlers::index))
        .routes(documented!(openapi::serve))
        .split_for_parts();
    let document = openapi::Document::new(public_documentation.merge_from(documentation));
    let routed = public
        .layer(Extension(document))
        .merge(authenticated)
        .fallback(handlers::not_found)
        // After every route is in place: it is set on each route present.
        .method_not_allowed_fallback(handlers::not_found)
        .layer(
            ServiceBuilder::new()
                .map_request(trace::note_route)
                .map_response(safety_net::json_error_bodies)
                .layer(CatchPanicLayer::custom(safety_net::panic_response))
                .layer(RequestBodyLimitLayer::new(BODY_LIMIT_BYTES)),
        );
    // axum adds `Allow` to a wrong-method answer after every per-route layer has run, so
    // the only place to remove it is around the whole router.
    MapResponseLayer::new(headers::no_allow_on_not_found).layer(routed)
}

#[cfg(test)]
mod tests {
    use axum::{
        body::Body,
        extract::Request,
        response::IntoResponse,
        routing::{get, post},
        Json,
    };
    use http::{
        header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, VARY, X_CONTENT_TYPE_OPTIONS},
        Method, StatusCode,
    };
    use http_body_util::BodyExt;
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use super::*;
    use crate::extract::{FromJsonObject, JsonBody, JsonObject};

    struct Echo(String);

    impl FromJsonObject for Echo {
        fn from_object(object: &mut JsonObject) -> Option<Self> {
            object.required_string("text").map(Self)
        }
    }

    /// Stand-ins for the authenticated routes: the same paths and wrappers, handlers that
    /// need no repository.
    fn test_app() -> Router {
        let routes =
            Router::new()
                .route("/profile", get(|| async { Json(json!({"id": "x"})) }))
                .route(
                    "/v1/auth/echo",
                    post(|JsonBody(Echo(text)): JsonBody<Echo>| async move {
                        Json(json!({"text": text}))
                    }),
                )
                .route(
                    "/v1/auth/panic",
                    get(|| async {
                        if true {
                            panic!("boom at the handler");
                        }
                        "unreachable"
                    }),
                )
                .route(
                    "/v1/auth/bare",
                    get(|| async { (StatusCode::BAD_GATEWAY, "upstream said no").into_response() }),
                );
        whole(trace::observed(
            headers::security(app(headers::private(routes), OpenApi::default())),
            crate::client::TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()]),
        ))
    }

    async fn call(app: &Router, request: Request) -> (StatusCode, http::HeaderMap, Value) {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&bytes)));
        (status, headers, body)
    }

    fn get_request(path: &str) -> Request {
        Request::get(path).body(Body::empty()).unwrap()
    }

    fn is_json(headers: &http::HeaderMap) -> bool {
        headers[CONTENT_TYPE] == "application/json"
    }

    #[tokio::test]
    async fn the_index_is_public_json_with_security_headers_and_a_request_id() {
        let (status, headers, body) = call(&test_app(), get_request("/")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["message"].is_string());
        assert!(is_json(&headers));
        assert_eq!(headers[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(!headers["x-request-id"].is_empty());
        assert!(headers.get(CACHE_CONTROL).is_none());
    }

    fn with_request_id_from(peer: [u8; 4]) -> Request {
        let mut request = Request::get("/")
            .header("x-request-id", "trace-me-42")
            .body(Body::empty())
            .unwrap();
        let peer = std::net::SocketAddr::from((peer, 40_000));
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        request
    }

    #[tokio::test]
    async fn a_request_id_comes_back_only_from_a_trusted_proxy() {
        let (_, headers, _) = call(&test_app(), with_request_id_from([127, 0, 0, 1])).await;
        assert_eq!(headers["x-request-id"], "trace-me-42");
        let (_, headers, _) = call(&test_app(), with_request_id_from([203, 0, 113, 9])).await;
        assert_ne!(headers["x-request-id"], "trace-me-42");
        assert!(!headers["x-request-id"].is_empty());
    }

    #[tokio::test]
    async fn authenticated_routes_are_not_cached_and_vary_by_cookie() {
        let (status, headers, _) = call(&test_app(), get_request("/profile")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[CACHE_CONTROL], "no-store");
        assert_eq!(headers[VARY], "cookie");
        assert_eq!(headers[X_CONTENT_TYPE_OPTIONS], "nosniff");
    }

    #[tokio::test]
    async fn an_unknown_path_is_a_json_404() {
        for path in [
            "/nope",
            "/v1/auth",
            "/v1/auth/login/extra",
            "/profile/",
            "/%00",
        ] {
            let (status, headers, body) = call(&test_app(), get_request(path)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(body["message"], "Not found");
            assert_eq!(body["code"], "not_found");
            assert!(is_json(&headers));
            assert_eq!(headers[X_CONTENT_TYPE_OPTIONS], "nosniff");
        }
    }

    #[tokio::test]
    async fn a_known_path_with_the_wrong_method_is_a_json_404() {
        let cases = [
            (Method::POST, "/"),
            (Method::DELETE, "/"),
            (Method::POST, "/profile"),
            (Method::PUT, "/profile"),
            (Method::GET, "/v1/auth/echo"),
            (Method::PATCH, "/v1/auth/echo"),
        ];
        for (method, path) in cases {
            let request = Request::builder()
                .method(method.clone())
                .uri(path)
                .body(Body::empty())
                .unwrap();
            let (status, headers, body) = call(&test_app(), request).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(body, json!({"message": "Not found", "code": "not_found"}));
            assert!(headers.get("allow").is_none());
        }
    }

    #[tokio::test]
    async fn a_panicking_handler_is_an_opaque_json_500_and_the_app_keeps_serving() {
        let app = test_app();
        let (status, headers, body) = call(&app, get_request("/v1/auth/panic")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            json!({"message": "Internal server error", "code": "internal_error"})
        );
        assert!(is_json(&headers));
        assert_eq!(headers[X_CONTENT_TYPE_OPTIONS], "nosniff");
        let (status, _, _) = call(&app, get_request("/")).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn an_error_without_a_json_body_gets_one() {
        let (status, headers, body) = call(&test_app(), get_request("/v1/auth/bare")).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(body["message"], "Internal server error");
        assert!(is_json(&headers));
        assert_eq!(headers[CACHE_CONTROL], "no-store");
    }

    fn echo(body: Body, content_length: Option<usize>) -> Request {
        let mut request = Request::post("/v1/auth/echo").header(CONTENT_TYPE, "application/json");
        if let Some(length) = content_length {
            request = request.header(CONTENT_LENGTH, length);
        }
        request.body(body).unwrap()
    }

    fn padded_body(len: usize) -> String {
        let text = "x".repeat(len - r#"{"text":""}"#.len());
        let body = json!({ "text": text }).to_string();
        assert_eq!(body.len(), len);
        body
    }

    #[tokio::test]
    async fn a_body_at_the_limit_is_accepted() {
        let body = padded_body(BODY_LIMIT_BYTES);
        let (status, _, _) = call(&test_app(), echo(body.clone().into(), Some(body.len()))).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = call(&test_app(), echo(body.into(), None)).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_a_json_413_whether_announced_or_streamed() {
        let body = padded_body(BODY_LIMIT_BYTES + 1);
        let announced = echo(body.clone().into(), Some(body.len()));
        let (status, headers, json) = call(&test_app(), announced).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(json["code"], "payload_too_large");
        assert!(is_json(&headers));

        let streamed = echo(body.into(), None);
        let (status, _, json) = call(&test_app(), streamed).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(json["code"], "payload_too_large");
    }
}
