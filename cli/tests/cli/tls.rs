//! `bencher` against an HTTPS server, trusting the CA file it is given.

use super::*;

#[tokio::test]
async fn https_with_the_ca_cert_flag_or_env() {
    let server = TestServer::start_tls().await;
    let (_, ca) = server.ca().unwrap();
    let ca = ca.to_str().unwrap();
    let run = bencher(
        &server,
        &["runner", "create", "--name", "tls", "--ca-cert", ca],
    )
    .await;
    assert_eq!(run.json()["uuid"].as_str().unwrap().len(), 36);
    let mut command = tokio::process::Command::new(BIN);
    let output = command
        .args(["runner", "list", "--host", &server.url, "--token"])
        .arg(&server.admin_token)
        .env("BENCHER_CA_CERT", ca)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");

    // Without it: one line, exit 1, naming the host.
    let run = bencher(&server, &["runner", "list"]).await;
    run.one_line_error(1, &server.url);
    // A file that is not a certificate: a usage error naming the flag.
    let not_pem = std::env::temp_dir().join(format!("not-a-ca-{}.pem", std::process::id()));
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let run = bencher(
        &server,
        &["runner", "list", "--ca-cert", not_pem.to_str().unwrap()],
    )
    .await;
    std::fs::remove_file(&not_pem).unwrap();
    run.one_line_error(2, "--ca-cert");
}
