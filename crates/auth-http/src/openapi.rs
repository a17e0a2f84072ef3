//! The OpenAPI 3.1 description of the API, served at `GET /openapi.json`.
//!
//! It is generated from the code: each handler carries its `#[utoipa::path]` (route,
//! request body, every answer with its body), each body type derives `ToSchema`, and the
//! router registers each handler with its documentation in one step
//! ([`crate::documented`]), so the operations are exactly the routes served. This module
//! adds what they share: the description, the answers many routes give (the body
//! rejections, 401, 403, 429, 503) and the session cookie as the security scheme. The
//! document is built once, with the router, and then served as bytes.

use std::collections::BTreeMap;

use axum::{
    body::Bytes,
    response::{IntoResponse, Response},
    Extension,
};
use http::header::CONTENT_TYPE;
use serde_json::Value;
use utoipa::{
    openapi::{
        self,
        header::HeaderBuilder,
        response::ResponseBuilder,
        security::{ApiKey, ApiKeyValue, SecurityScheme},
        ContentBuilder, ObjectBuilder, Ref, RefOr, Type,
    },
    IntoResponses, Modify, OpenApi,
};

use crate::{error::ErrorBody, session_layer::SESSION_COOKIE};

/// The name of the security scheme of the session cookie, as operations refer to it.
pub(crate) const SESSION_SCHEME: &str = "session_cookie";

/// The document's assembly: every operation, and what they share.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Authentication service",
        description = "Registers users, logs them in with an email address (or username) and \
                       a password, keeps them logged in with a server-side session named by a \
                       signed cookie, and logs them out. Every body is JSON; every error is \
                       `{\"message\", \"code\"}`, plus `\"errors\"` per refused field. An \
                       unknown path, or a known path with a method it does not serve, is a \
                       404 `not_found`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    components(schemas(ErrorBody)),
    modifiers(&SessionCookie),
    tags(
        (name = "service", description = "The service itself"),
        (name = "auth", description = "Registering, logging in and out"),
        (name = "sessions", description = "A user's own sessions"),
        (name = "account", description = "A user's own account"),
        (name = "audit", description = "A user's security activity"),
        (name = "account recovery", description = "A forgotten password, reset through a \
            mailed link"),
        (name = "email", description = "Verifying the account's address, and changing it"),
        (name = "second factor", description = "TOTP, recovery codes, the second step of a \
            login, and the step-up that sensitive actions ask for"),
        (name = "passkeys", description = "Passkeys (WebAuthn): as a second factor, or to \
            sign in with no password"),
    ),
)]
pub(crate) struct ApiDoc;

/// Adds the session cookie as the security scheme that authenticated operations name.
struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, openapi: &mut openapi::OpenApi) {
        let scheme = ApiKeyValue::with_description(
            SESSION_COOKIE,
            "The session cookie set by `POST /v1/auth/login`: a signed session id \
             (HttpOnly, SameSite=Lax). Sessions live on the server and end at logout.",
        );
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                SESSION_SCHEME,
                SecurityScheme::ApiKey(ApiKey::Cookie(scheme)),
            );
    }
}

/// The document as served, with the operations of `routes`: built once, with the router.
#[derive(Debug, Clone)]
pub(crate) struct Document(Bytes);

impl Document {
    pub(crate) fn new(routes: openapi::OpenApi) -> Self {
        let mut document = serde_json::to_value(ApiDoc::openapi().merge_from(routes))
            .expect("an OpenAPI document always serializes");
        camel_case_links(&mut document);
        Self(Bytes::from(document.to_string()))
    }
}

/// utoipa 5 writes the fields of a Link Object in snake case (`operation_id`), which no
/// tool reads; OpenAPI spells them in camel case (`operationId`).
fn camel_case_links(document: &mut Value) {
    let operations = document["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    let links = operations
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(Value::as_object_mut);
    for link in links {
        for (snake, camel) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_owned(), value);
            }
        }
    }
}

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "service",
    responses(
        (status = 200, description = "This OpenAPI 3.1 document", body = Object, content_type = "application/json"),
    ),
)]
pub(crate) async fn serve(Extension(Document(document)): Extension<Document>) -> Response {
    ([(CONTENT_TYPE, "application/json")], document).into_response()
}

fn error_response(description: &str) -> openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
}

fn retry_after(response: openapi::Response, why: &str) -> openapi::Response {
    let header = HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .description(Some(why))
        .build();
    let mut response = response;
    response.headers.insert("Retry-After".to_owned(), header);
    response
}

fn responses(
    list: impl IntoIterator<Item = (u16, openapi::Response)>,
) -> BTreeMap<String, RefOr<openapi::Response>> {
    list.into_iter()
        .map(|(status, response)| (status.to_string(), RefOr::T(response)))
        .collect()
}

/// How a JSON request body can be refused before the handler sees it, or arrive too
/// slowly (400 is listed by each operation, whose 400s differ).
pub(crate) struct BodyRejections;

impl IntoResponses for BodyRejections {
    fn responses() -> BTreeMap<String, RefOr<openapi::Response>> {
        responses([
            (
                408,
                error_response(
                    "The body did not arrive within `BODY_READ_TIMEOUT` (`body_timeout`); \
                     the connection is closed",
                ),
            ),
            (
                413,
                error_response("The body is over 16 KiB (`payload_too_large`)"),
            ),
            (
                415,
                error_response(
                    "The body is not declared JSON (`Content-Type: application/json`) \
                     (`unsupported_media_type`)",
                ),
            ),
            (
                422,
                error_response(
                    "The body is not a JSON object (`not_an_object`), names a key twice \
                     (`duplicate_key`), or has fields missing, null or of the wrong type \
                     (`unprocessable_fields`, with `errors`)",
                ),
            ),
        ])
    }
}

/// A route for logged-in users only.
pub(crate) struct Unauthenticated;

impl IntoResponses for Unauthenticated {
    fn responses() -> BTreeMap<String, RefOr<openapi::Response>> {
        responses([(
            401,
            error_response(
                "No valid session: not logged in, logged out, expired or revoked \
                 (`access_denied`, \"Access denied!\"); or a half-authenticated session \
                 whose second factor is owed (`mfa_required`)",
            ),
        )])
    }
}

/// A route for logged-in users whose address is verified where it must be: 401 without
/// a session, 403 for an unverified account under `EMAIL_VERIFICATION=required` (and, on
/// a state-changing route, for a request from another site: one 403 documents both).
pub(crate) struct Gated;

impl IntoResponses for Gated {
    fn responses() -> BTreeMap<String, RefOr<openapi::Response>> {
        let mut listed = Unauthenticated::responses();
        listed.extend(responses([(
            403,
            error_response(
                "The account's address is not verified and `EMAIL_VERIFICATION` is \
                 `required` (`email_unverified`); or, for a state-changing request, sent by \
                 a browser from another site that `ALLOWED_ORIGINS` does not name \
                 (`cross_origin`)",
            ),
        )]));
        listed
    }
}

/// A sensitive route of a logged-in user: [`Gated`], and 403 without a proof from the
/// last 5 minutes.
pub(crate) struct Sensitive;

impl IntoResponses for Sensitive {
    fn responses() -> BTreeMap<String, RefOr<openapi::Response>> {
        let mut listed = Unauthenticated::responses();
        listed.extend(responses([(
            403,
            error_response(
                "No proof from the last 5 minutes, by the login or \
                 `POST /v1/auth/reauthenticate` (`reauthentication_required`); the account's \
                 address is not verified and `EMAIL_VERIFICATION` is `required` \
                 (`email_unverified`); or sent by a browser from another site that \
                 `ALLOWED_ORIGINS` does not name (`cross_origin`)",
            ),
        )]));
        listed
    }
}

/// A state-changing route, refused when a browser says it was sent from another site.
pub(crate) struct CrossOrigin;

impl IntoResponses for CrossOrigin {
    fn responses() -> BTreeMap<String, RefOr<openapi::Response>> {
        responses([(
            403,
            error_response(
                "Sent by a browser from another site that `ALLOWED_ORIGINS` does not \
                 name (`cross_origin`)",
            ),
        )])
    }
}

/// A route that checks a password, refused past the failure limits.
pub(crate) struct Throttled;

impl IntoResponses for Throttled {
    fn responses() -> BTreeMap<String, RefOr<openapi::Response>> {
        responses([(
            429,
            retry_after(
                error_response("Too many attempts: refused unchecked (`too_many_attempts`)"),
                "Seconds until an attempt counts again",
            ),
        )])
    }
}

/// A route that needs the database (or the password hasher), and so may have to be
/// retried.
pub(crate) struct Unavailable;

impl IntoResponses for Unavailable {
    fn responses() -> BTreeMap<String, RefOr<openapi::Response>> {
        responses([(
            503,
            retry_after(
                error_response(
                    "The database does not answer (`unavailable`), too many logins wait for \
                     the password hasher (`overloaded`), or the answer was not ready within \
                     `REQUEST_TIMEOUT` (`request_timeout`)",
                ),
                "Seconds after which a retry may succeed",
            ),
        )])
    }
}

/// The schema of `EventKind`: its names, from the domain's own list.
pub(crate) fn actor_schema() -> openapi::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            auth_domain::audit::Actor::ALL.map(auth_domain::audit::Actor::as_str),
        ))
        .build()
}

pub(crate) fn event_kind_schema() -> openapi::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            auth_domain::audit::EventKind::ALL.map(auth_domain::audit::EventKind::as_str),
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn link_fields_are_written_in_camel_case() {
        let mut document = json!({"paths": {"/a": {"get": {"responses": {"200": {"links": {
            "next": {"operation_id": "b", "request_body": {"x": 1}, "parameters": {"id": "$response.body#/id"}},
        }}}}}}});
        camel_case_links(&mut document);
        assert_eq!(
            document["paths"]["/a"]["get"]["responses"]["200"]["links"]["next"],
            json!({"operationId": "b", "requestBody": {"x": 1}, "parameters": {"id": "$response.body#/id"}})
        );
    }
}
