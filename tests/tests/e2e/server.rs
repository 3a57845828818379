//! The public server endpoints, and requests as Bencher's CLI sends them.

use runners_tests::*;

#[tokio::test]
async fn version_is_public_and_bencher_0_6_2() {
    let server = TestServer::start().await;
    let version = server
        .anonymous()
        .server_version_get()
        .send()
        .await
        .unwrap()
        .into_inner();
    // The contract: with no `api-version`, Bencher 0.6.2.
    assert_eq!(version.version, "0.6.2");
}

#[tokio::test]
async fn version_follows_the_api_version_a_client_sends_when_spoken() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    for (sent, answered) in [
        ("0.6.2", "0.6.2"),
        ("0.6.3", "0.6.3"),
        ("0.6.12", "0.6.12"),
        ("0.6.13", "0.6.2"),
        ("0.6.1", "0.6.2"),
        ("0.7.0", "0.6.2"),
        ("0.6.12-rc1", "0.6.2"),
        ("garbage", "0.6.2"),
    ] {
        let answer: serde_json::Value = http
            .get(format!("{}/v0/server/version", server.url))
            .header("api-version", sent)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["version"], answered, "api-version: {sent}");
    }
}

#[tokio::test]
async fn spec_endpoint_serves_the_checked_in_openapi_json() {
    let server = TestServer::start().await;
    let served = server
        .anonymous()
        .server_spec_get()
        .send()
        .await
        .unwrap()
        .into_inner();
    // Read when the test runs, not when it is built: `EXPECTORATE=overwrite`
    // rewrites the file in the same `cargo test` run.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(served, file);
}

// ---- Bencher CLI compatibility ----

#[tokio::test]
async fn bencher_cli_style_requests_work() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (runner, _) = create(&admin, "Cli", None).await;
    // Bencher's CLI checks the version first, then sends the rotation POST
    // with no body and no Content-Length: written here byte for byte.
    let http = reqwest::Client::new();
    let version = http
        .get(format!("{}/v0/server/version", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(version.status(), 200);
    let host = server.url.trim_start_matches("http://").to_owned();
    let request = format!(
        "POST /v0/runners/{}/token HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n",
        runner.slug, server.admin_token
    );
    let response = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 201 "), "{response}");
    let body: serde_json::Value =
        serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["uuid"], runner.uuid.to_string());
    assert_runner_key(body["token"].as_str().unwrap());
    // The API token is JWT-shaped: three base64url parts.
    let parts: Vec<&str> = server.admin_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }));
}

/// The probes: public, live and ready on a healthy server (SQLite or
/// PostgreSQL), through the SDK.
#[tokio::test]
async fn live_and_ready_are_public_and_ok_on_a_healthy_server() {
    let server = TestServer::start().await;
    let anonymous = server.anonymous();
    let live = anonymous.server_live_get().send().await.unwrap();
    assert_eq!(live.status().as_u16(), 200);
    assert_eq!(live.into_inner().status, "live");
    let ready = anonymous.server_ready_get().send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    assert_eq!(ready.into_inner().status, "ready");
}
