use auth_store_mongo::connect;

#[tokio::test]
async fn connecting_to_a_server_that_is_not_there_fails_instead_of_hanging() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("bound").port()
    };
    let url = format!("mongodb://127.0.0.1:{port}");
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        connect(&url, "auth_test_unreachable"),
    )
    .await
    .expect("the server-selection timeout ends the attempt, not this guard");
    let error = result.expect_err("nobody listens there");
    assert!(
        matches!(
            *error.kind,
            mongodb::error::ErrorKind::ServerSelection { .. }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_malformed_url_is_refused() {
    assert!(connect("http://127.0.0.1:27017", "auth").await.is_err());
}
