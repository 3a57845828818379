//! `--log-format json`: every line of stderr a bunyan record, the `log`
//! crate's records (here rustls's, over HTTPS) among them, and no
//! credential in any of them at the most verbose level.

use super::*;

#[test]
fn json_logs_are_bunyan_lines_with_the_log_crates_records_and_no_credential() {
    // A database made beforehand, so no first-start banner.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runners.db");
    let made = run(&[
        "token",
        "create",
        "--user",
        "admin",
        "--admin",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let admin = stdout(&made).trim().to_owned();
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let env = vec![
        ("RUNNERS_LOG_FORMAT", "json".to_owned()),
        ("RUNNERS_TLS_CERT", cert.display().to_string()),
        ("RUNNERS_TLS_KEY", key.display().to_string()),
    ];
    let mut server = Serving::launch_env(dir, "trace", env);
    assert!(server.url.starts_with("https://"), "{}", server.url);

    let ca = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let get = |path: String, token: &str| {
        let url = format!("{}{path}", server.url);
        block_on(async {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let (status, created) = block_on(async {
        let r = client
            .post(format!("{}/v0/runners", server.url))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"name": "box"}))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<serde_json::Value>().await.unwrap())
    });
    assert_eq!(status, 201);
    let runner_key = created["key"].as_str().unwrap().to_owned();
    assert_eq!(get("/v0/runners".into(), &admin), 200);
    // Credentials where they do not belong: refused or ignored, not logged.
    get(format!("/v0/runners/box/channel?key={runner_key}"), "");
    get(format!("/v0/auth/oci/token?account={admin}"), &runner_key);
    assert!(server.terminate().success());

    let lines: Vec<String> = server
        .banner
        .iter()
        .chain(server.log.lock().unwrap().iter())
        .cloned()
        .collect();
    assert!(lines.len() > 10, "{lines:?}");
    for line in &lines {
        let record: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(record["name"], "runners-server", "{line}");
        assert_eq!(record["v"], 0, "{line}");
        assert!(
            record["level"].is_i64() && record["time"].is_string(),
            "{line}"
        );
        assert!(record["msg"].is_string(), "{line}");
        for secret in [&admin, &runner_key] {
            assert!(
                !line.contains(secret.as_str()),
                "a credential in the log: {line}"
            );
        }
    }
    let has = |text: &str| lines.iter().any(|l| l.contains(text));
    assert!(has("request completed"), "dropshot's request log");
    assert!(has("\"msg\":\"shutting down\""), "the program's own lines");
    // rustls's record of the handshake, at debug: the `log` crate's.
    assert!(
        has("decided upon suite"),
        "rustls's records, through the `log` crate"
    );
}

/// At trace, neither the channel's frames (tungstenite prints payloads in
/// hex) nor a job's registry token nor a runner's key reach the log, in
/// any spelling.
#[test]
fn a_channels_frames_and_a_jobs_registry_token_stay_out_of_a_trace_log() {
    use runners_tests::agent::Agent;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runners.db");
    let made = run(&["token", "create", "--user", "admin", "--admin", "--db"]
        .into_iter()
        .chain([db.to_str().unwrap()])
        .collect::<Vec<_>>());
    assert!(made.status.success(), "{}", stderr(&made));
    let token = stdout(&made).trim().to_owned();
    let env = vec![("RUNNERS_LOG_FORMAT", "json".to_owned())];
    let mut server = Serving::launch_env(dir, "trace", env);
    let admin = runners_sdk::client_with_token(&server.url, &token).unwrap();
    let (oci_token, runner_key) = block_on(async {
        let (_, runner, key) = runners_tests::fallback_runner(&admin, "Traced").await;
        let mut agent = Agent::connect_to(&server.url, &runner.slug, &key)
            .await
            .unwrap();
        agent.ready(30).await.unwrap();
        runners_tests::create_job(&admin, runners_tests::new_job(None, 0)).await;
        let job = agent.expect_job().await.unwrap();
        agent.start(job.uuid).await.unwrap();
        (job.oci_token.clone(), key)
    });
    assert!(oci_token.starts_with("eyJ"), "{oci_token}");
    assert!(server.terminate().success());
    let log = server.log.lock().unwrap().join("\n");
    let hex = |text: &str| text.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for secret in [&oci_token, &runner_key, &token] {
        // Its text, and its first 24 bytes in hex (as tungstenite prints).
        assert!(!log.contains(secret.as_str()), "a secret in the log");
        assert!(
            !log.contains(&hex(&secret[..24])),
            "a secret in hex in the log"
        );
    }
    assert!(
        !log.contains(&hex("{\"event\"")),
        "a frame's payload in the log"
    );
}
