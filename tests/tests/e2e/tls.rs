//! HTTPS: the server with `--tls-cert`/`--tls-key`, reached through the SDK
//! with the CA a user names.

use runners_sdk::ClientOptions;
use runners_tests::*;

#[tokio::test]
async fn an_https_round_trip_through_the_sdk() {
    let server = TestServer::start_tls().await;
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let admin = server.admin();
    let (runner, key) = create(&admin, "Over TLS", None).await;
    beat(&server, &key, &runner.slug).await.unwrap();
    let (all, total) = list_all(&admin, false).await;
    assert_eq!((all.len(), total), (1, 1));

    // Without the CA, the self-signed certificate is refused...
    let plain = runners_sdk::client_with_token(&server.url, &server.admin_token).unwrap();
    let refused = plain.runners_get().send().await.unwrap_err();
    assert!(
        matches!(refused, runners_sdk::Error::CommunicationError(_)),
        "{refused:?}"
    );
    // ... and plain HTTP gets no answer from the HTTPS port.
    let http_url = server.url.replacen("https://", "http://", 1);
    let http = runners_sdk::client_with_token(&http_url, &server.admin_token).unwrap();
    assert!(http.runners_get().send().await.is_err());

    // A CA file that is not PEM is a clear error, not an empty trust store.
    let bad = ClientOptions {
        ca_pem: Some(b"not a certificate".to_vec()),
        ..ClientOptions::default()
    };
    let err = runners_sdk::client_with_options(&server.url, "t", &bad).unwrap_err();
    assert!(err.to_string().contains("PEM"), "{err}");
}
