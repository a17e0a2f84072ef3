//! Our JSON body extractor. Unlike axum's `Json`, its rejections are [`ApiError`]s in the
//! contract's shape, and no message ever repeats a submitted value (serde's would echo a
//! numeric password): the body is parsed into a `serde_json::Value`, checked to be an
//! object, and each expected field is taken out by name.

use auth_domain::{FieldError, ValidationErrors};
use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, FromRequest, Request},
};
use http::{header::CONTENT_TYPE, HeaderMap, StatusCode};
use serde_json::{Map, Value};

use crate::{
    error::ApiError,
    strict_json::{self, StrictJsonError},
};

const REQUIRED: FieldError = FieldError::new("required", "This field is required.");
const NOT_A_STRING: FieldError = FieldError::new("not_a_string", "This field must be a string.");
const NOT_AN_OBJECT: FieldError = FieldError::new("not_an_object", "This field must be an object.");
const NOT_A_BOOLEAN: FieldError =
    FieldError::new("not_a_boolean", "This field must be true or false.");

/// A request body that must be a JSON object holding the fields of `T`.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

/// A type built field by field from a JSON object. Extra fields are ignored.
pub(crate) trait FromJsonObject: Sized {
    /// Takes the fields out of `object`; returns `None` once a problem was recorded.
    fn from_object(object: &mut JsonObject) -> Option<Self>;
}

/// The fields of a request body, and what was wrong with them so far.
#[derive(Debug)]
pub(crate) struct JsonObject {
    fields: Map<String, Value>,
    problems: ValidationErrors,
}

impl JsonObject {
    /// A string field that must be present.
    pub(crate) fn required_string(&mut self, name: &'static str) -> Option<String> {
        match self.fields.remove(name) {
            Some(Value::String(value)) => Some(value),
            Some(_) => self.refuse(name, NOT_A_STRING),
            None => self.refuse(name, REQUIRED),
        }
    }

    /// A string field that may be absent; `null` counts as absent.
    pub(crate) fn optional_string(&mut self, name: &'static str) -> Option<Option<String>> {
        match self.fields.remove(name) {
            Some(Value::String(value)) => Some(Some(value)),
            Some(Value::Null) | None => Some(None),
            Some(_) => self.refuse(name, NOT_A_STRING),
        }
    }

    /// An object field that must be present (a WebAuthn credential), kept as JSON for
    /// the library that reads it.
    pub(crate) fn required_object(&mut self, name: &'static str) -> Option<Value> {
        match self.fields.remove(name) {
            Some(value @ Value::Object(_)) => Some(value),
            Some(_) => self.refuse(name, NOT_AN_OBJECT),
            None => self.refuse(name, REQUIRED),
        }
    }

    /// A boolean field that may be absent; `null` counts as absent. Nothing else is
    /// taken for a boolean: `"yes"`, `1` or `"false"` are refused, not guessed at.
    pub(crate) fn optional_bool(&mut self, name: &'static str) -> Option<Option<bool>> {
        match self.fields.remove(name) {
            Some(Value::Bool(value)) => Some(Some(value)),
            Some(Value::Null) | None => Some(None),
            Some(_) => self.refuse(name, NOT_A_BOOLEAN),
        }
    }

    fn refuse<T>(&mut self, name: &'static str, why: FieldError) -> Option<T> {
        self.problems.add(name, why);
        None
    }
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: FromJsonObject,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| body_rejection(&rejection))?;
        parse(&bytes).map(Self)
    }
}

fn parse<T: FromJsonObject>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = strict_json::from_slice(bytes).map_err(|error| match error {
        StrictJsonError::Malformed => ApiError::MalformedJson,
        StrictJsonError::DuplicateKey => ApiError::DuplicateKey,
    })?;
    let Value::Object(fields) = value else {
        return Err(ApiError::NotAnObject);
    };
    let mut object = JsonObject {
        fields,
        problems: ValidationErrors::default(),
    };
    // Every field is visited even after a problem, so that all of them are reported.
    let parsed = T::from_object(&mut object);
    match parsed {
        Some(parsed) if object.problems.is_empty() => Ok(parsed),
        _ => Err(ApiError::Unprocessable(object.problems)),
    }
}

fn body_rejection(rejection: &BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::UnreadableBody
    }
}

/// `application/json` or any `application/*+json`, in any case, with no charset or UTF-8
/// (the only encoding JSON allows, RFC 8259).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let Some(subtype) = essence.strip_prefix("application/") else {
        return false;
    };
    if subtype != "json" && !subtype.ends_with("+json") {
        return false;
    }
    parts.all(|parameter| match parameter.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            let value = value.trim().trim_matches('"');
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, routing::post, Router};
    use http_body_util::BodyExt;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;

    #[derive(Debug)]
    struct Signup {
        email: String,
        password: String,
        username: Option<String>,
    }

    impl FromJsonObject for Signup {
        fn from_object(object: &mut JsonObject) -> Option<Self> {
            let email = object.required_string("email");
            let password = object.required_string("password");
            let username = object.optional_string("username");
            Some(Self {
                email: email?,
                password: password?,
                username: username?,
            })
        }
    }

    fn app() -> Router {
        Router::new().route(
            "/",
            post(|JsonBody(signup): JsonBody<Signup>| async move {
                format!(
                    "{}|{}|{}",
                    signup.email,
                    signup.password,
                    signup.username.unwrap_or_default()
                )
            }),
        )
    }

    async fn send(content_type: Option<&str>, body: impl Into<Body>) -> (StatusCode, String) {
        let mut request = Request::post("/");
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let response = app()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    const JSON: Option<&str> = Some("application/json");

    #[tokio::test]
    async fn a_complete_object_is_accepted_and_extra_fields_are_ignored() {
        let body = json!({"email": "a@b.c", "password": "pw", "admin": true}).to_string();
        assert_eq!(send(JSON, body).await, (StatusCode::OK, "a@b.c|pw|".into()));
    }

    #[tokio::test]
    async fn a_null_optional_field_counts_as_absent() {
        let body = json!({"email": "a@b.c", "password": "pw", "username": null}).to_string();
        assert_eq!(send(JSON, body).await, (StatusCode::OK, "a@b.c|pw|".into()));
    }

    #[tokio::test]
    async fn control_characters_pass_through_for_the_domain_to_judge() {
        let body = json!({"email": "a\u{0}@b.c", "password": "p\tw"}).to_string();
        let (status, text) = send(JSON, body).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(text, "a\u{0}@b.c|p\tw|");
    }

    #[tokio::test]
    async fn json_content_types_are_recognised_in_any_case_and_with_a_utf8_charset() {
        let body = json!({"email": "a@b.c", "password": "pw"}).to_string();
        for content_type in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/vnd.api+json",
        ] {
            let (status, _) = send(Some(content_type), body.clone()).await;
            assert_eq!(status, StatusCode::OK, "{content_type}");
        }
    }

    #[tokio::test]
    async fn a_body_not_declared_as_json_is_a_415() {
        let body = json!({"email": "a@b.c", "password": "pw"}).to_string();
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("application/jsonp"),
            Some("application/json; charset=latin1"),
            Some("text/json"),
        ] {
            let (status, text) = send(content_type, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{content_type:?}"
            );
            assert!(text.contains("unsupported_media_type"));
        }
    }

    #[tokio::test]
    async fn malformed_json_is_a_400_that_does_not_echo_the_body() {
        for body in [
            "",
            "{",
            "{\"email\": \"secret-address\", \"password\": \"hunter2-secret\"",
            "{\"email\": \"a@b.c\", \"password\": \"hunter2-secret\"} trailing-secret",
            "{\"password\": hunter2secret}",
            "\u{feff}{}",
        ] {
            let (status, text) = send(JSON, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
            assert!(text.contains("malformed_json"), "{text}");
            assert!(!text.contains("secret"), "{text}");
        }
    }

    #[tokio::test]
    async fn a_deeply_nested_body_is_a_400_not_a_crash() {
        let body = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let (status, _) = send(JSON, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn json_that_is_not_an_object_is_a_422() {
        for body in ["[1, 2]", "\"a string\"", "12345678", "null", "true"] {
            let (status, text) = send(JSON, body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert!(text.contains("not_an_object"), "{text}");
            assert!(!text.contains("12345678"), "{text}");
        }
    }

    #[tokio::test]
    async fn missing_fields_are_each_named_in_a_422() {
        let (status, text) = send(JSON, "{}").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["code"], "unprocessable_fields");
        assert_eq!(
            body["errors"],
            json!({"email": [REQUIRED.message], "password": [REQUIRED.message]})
        );
    }

    #[tokio::test]
    async fn fields_of_the_wrong_type_are_a_422_that_never_echoes_the_value() {
        let bodies = [
            json!({"email": {"$ne": null}, "password": 987654321}),
            json!({"email": ["x-secret"], "password": 987654321.5}),
            json!({"email": null, "password": false, "username": 13579}),
        ];
        for body in bodies {
            let (status, text) = send(JSON, body.to_string()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            for echoed in ["987654321", "$ne", "x-secret", "13579"] {
                assert!(!text.contains(echoed), "{text}");
            }
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["errors"]["password"], json!([NOT_A_STRING.message]));
        }
    }
}
