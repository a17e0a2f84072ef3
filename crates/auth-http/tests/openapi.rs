//! The OpenAPI document at `GET /openapi.json`: version 3.1, the session cookie as the
//! security scheme, and exactly the operations the router serves, so that a route added
//! without its documentation fails here.

// Each test binary uses a part of the shared helpers.
#[allow(dead_code)]
mod support;

use std::{collections::BTreeSet, fs, path::Path};

use axum::body::Body;
use http::{header::CONTENT_TYPE, Method, Request, StatusCode};
use serde_json::{json, Value};
use support::TestApp;

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

async fn document(app: &TestApp) -> Value {
    let reply = app.get("/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[CONTENT_TYPE], "application/json");
    reply.body
}

/// Every `(method, path)` the document describes, methods in upper case.
fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .keys()
                .filter(|key| METHODS.iter().any(|m| m.as_str().eq_ignore_ascii_case(key)))
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

/// Every string literal in the crate's source that looks like a path: where routes are
/// named, whether in a `.route(..)` call or a constant.
fn paths_named_in_the_source() -> BTreeSet<String> {
    fn visit(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).expect("a readable source folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                visit(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = fs::read_to_string(&path).expect("a readable source file");
                for (index, literal) in text.split('"').enumerate() {
                    // Odd pieces are inside quotes (escaped quotes aside, which no path has).
                    let is_path = literal.starts_with('/')
                        && !literal.contains(char::is_whitespace)
                        && !literal.contains("//");
                    if index % 2 == 1 && is_path {
                        found.insert(literal.to_owned());
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    visit(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    found
}

/// Whether the router serves `method` on `path`: anything but its fallback's 404. A
/// request without a session or a body reaches every route: an authenticated one answers
/// 401, one with a body 415, and nothing else 404s before its handler runs.
async fn is_routed(app: &TestApp, method: &Method, path: &str) -> bool {
    let concrete = path.replace("{id}", "x");
    let request = Request::builder()
        .method(method.clone())
        .uri(&concrete)
        .body(Body::empty())
        .expect("a valid request");
    let reply = app.send(request).await;
    !(reply.status == StatusCode::NOT_FOUND && reply.body["code"] == "not_found")
}

#[tokio::test]
async fn the_document_is_openapi_3_1_served_as_json() {
    let app = TestApp::new();
    let document = document(&app).await;
    let version = document["openapi"].as_str().expect("a version");
    assert!(version.starts_with("3.1."), "{version}");
    assert!(document["info"]["title"].is_string());
    // Built once: the same bytes every time.
    let again = app.get("/openapi.json", None).await;
    assert_eq!(again.body, document);
}

#[tokio::test]
async fn the_session_cookie_is_the_security_scheme_of_every_authenticated_operation() {
    let document = document(&TestApp::new()).await;
    assert_eq!(
        document["components"]["securitySchemes"]["session_cookie"],
        json!({
            "type": "apiKey",
            "in": "cookie",
            "name": support::SESSION_COOKIE,
            "description": document["components"]["securitySchemes"]["session_cookie"]["description"],
        })
    );
    let mut secured = 0;
    for (method, path) in documented(&document) {
        let operation = &document["paths"][&path][method.to_lowercase()];
        let needs_login = operation["responses"]["401"]["description"]
            .as_str()
            .is_some_and(|text| text.contains("access_denied"));
        let security = &operation["security"];
        if needs_login {
            assert_eq!(
                security,
                &json!([{"session_cookie": []}]),
                "{method} {path}"
            );
            secured += 1;
        } else {
            assert!(security.is_null(), "{method} {path}");
        }
    }
    assert_eq!(secured, 24, "the operations for logged-in users");
}

#[tokio::test]
async fn the_document_describes_exactly_the_operations_the_router_serves() {
    let app = TestApp::new();
    let document = document(&app).await;
    let documented = documented(&document);

    let mut candidates = paths_named_in_the_source();
    candidates.extend(documented.iter().map(|(_, path)| path.clone()));
    let mut served = BTreeSet::new();
    for path in &candidates {
        for method in &METHODS {
            if is_routed(&app, method, path).await {
                served.insert((method.as_str().to_owned(), path.clone()));
            }
        }
    }
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served, not documented: {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(unserved.is_empty(), "documented, not served: {unserved:?}");
    assert!(documented.contains(&("DELETE".to_owned(), "/v1/auth/sessions/{id}".to_owned())));
    assert!(documented.contains(&("GET".to_owned(), "/openapi.json".to_owned())));
}

#[tokio::test]
async fn every_error_answer_has_the_error_body() {
    let document = document(&TestApp::new()).await;
    let error = json!({"$ref": "#/components/schemas/Error"});
    let mut errors = 0;
    for (method, path) in documented(&document) {
        let responses = document["paths"][&path][method.to_lowercase()]["responses"]
            .as_object()
            .expect("responses");
        for (status, response) in responses {
            // A probe's 503 is its own `{"status"}` body, which load balancers read.
            let probe = path == "/readyz";
            if !probe && (status.starts_with('4') || status.starts_with('5')) {
                assert_eq!(
                    response["content"]["application/json"]["schema"], error,
                    "{method} {path} {status}"
                );
                errors += 1;
            }
        }
    }
    assert!(errors > 40, "{errors}");
    let schema = &document["components"]["schemas"]["Error"];
    assert_eq!(schema["required"], json!(["message", "code"]));
}

#[tokio::test]
async fn every_served_link_names_an_operation_of_the_document() {
    let document = document(&TestApp::new()).await;
    let operations: Vec<&Value> = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .collect();
    let ids: Vec<&str> = operations
        .iter()
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    let mut links = 0;
    for operation in &operations {
        for response in operation["responses"].as_object().unwrap().values() {
            for link in response["links"]
                .as_object()
                .into_iter()
                .flat_map(|l| l.values())
            {
                let target = link["operationId"]
                    .as_str()
                    .expect("a camel-case operationId");
                assert!(ids.contains(&target), "{target}");
                links += 1;
            }
        }
    }
    assert_eq!(links, 2, "register -> login, list sessions -> revoke one");
}

/// The events' `kind` parameter documents every kind there is, so that a generated
/// request of a documented kind is never refused.
#[tokio::test]
async fn the_events_kind_parameter_names_every_kind() {
    let document = document(&TestApp::new()).await;
    let parameters = document["paths"]["/v1/auth/events"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    let kind = parameters
        .iter()
        .find(|parameter| parameter["name"] == "kind")
        .expect("a kind parameter");
    let pattern = kind["schema"]["pattern"].as_str().expect("a pattern");
    let first = pattern
        .strip_prefix("^(")
        .and_then(|rest| rest.split(')').next())
        .expect("^(a|b|...)");
    let mut named: Vec<&str> = first.split('|').collect();
    named.sort_unstable();
    let mut kinds: Vec<&str> = auth_domain::audit::EventKind::ALL
        .iter()
        .map(|kind| kind.as_str())
        .collect();
    kinds.sort_unstable();
    assert_eq!(named, kinds);
}
