//! The registry's side of the token service from the command line:
//! `registry-config` (the `auth` block and the bundle it names), `key
//! rotate --registry` and `key retire --registry`, while the server runs.

use std::time::{Duration, Instant};

use super::*;

/// The key ID of an anonymous token from the server's token endpoint now.
fn token_kid(server: &Serving) -> String {
    let (status, body) = block_on(async {
        let r = reqwest::get(format!("{}/v0/auth/oci/token", server.url))
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let header = body["token"].as_str().unwrap().split('.').next().unwrap();
    let header = data_encoding::BASE64URL_NOPAD
        .decode(header.as_bytes())
        .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// The certificates in a bundle.
fn certificates(bundle: &std::path::Path) -> usize {
    std::fs::read_to_string(bundle)
        .unwrap()
        .matches("-----BEGIN CERTIFICATE-----")
        .count()
}

#[test]
fn registry_config_rotate_and_retire_while_the_server_runs() {
    let server = Serving::start();
    let db = server.db();
    let db_arg = db.to_str().unwrap();
    let bundle = server.dir.path().join("bundle.pem");
    let config = |url: &str| {
        run(&[
            "registry-config",
            "--db",
            db_arg,
            "--server-url",
            url,
            "--bundle",
            bundle.to_str().unwrap(),
        ])
    };

    let output = config("https://runners.example.com:8443/");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "auth:\n  token:\n    realm: \"https://runners.example.com:8443/v0/auth/oci/token\"\n    \
             service: \"runners-registry\"\n    issuer: \"runners-server\"\n    \
             rootcertbundle: \"{}\"\n",
            bundle.display()
        )
    );
    assert_eq!(certificates(&bundle), 1);
    let first = token_kid(&server);

    // Rotated: the new key's ID alone on stdout; it signs within 1 s; the
    // bundle holds both.
    let output = run(&["key", "rotate", "--registry", "--db", db_arg]);
    assert!(output.status.success(), "{}", stderr(&output));
    let kid = stdout(&output).trim().to_owned();
    assert_eq!(kid.len(), 59, "a libtrust key ID: {kid}");
    assert_ne!(kid, first);
    let deadline = Instant::now() + Duration::from_millis(1500);
    while token_kid(&server) != kid {
        assert!(Instant::now() < deadline, "the old key still signs");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(config("http://127.0.0.1:8080").status.success());
    assert_eq!(certificates(&bundle), 2);

    // Retired: the previous key's ID printed, and gone from the bundle;
    // right after the rotation, with a warning that its tokens may be in
    // use. A second retire has nothing to retire.
    let output = run(&["key", "retire", "--registry", "--db", db_arg]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), first);
    assert!(
        stderr(&output).starts_with("warning: the newest key is"),
        "{}",
        stderr(&output)
    );
    let output = run(&["key", "retire", "--registry", "--db", db_arg]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    assert!(
        stderr(&output).contains("no registry key to retire"),
        "{}",
        stderr(&output)
    );
    assert!(config("http://127.0.0.1:8080").status.success());
    assert_eq!(certificates(&bundle), 1);
    assert_eq!(token_kid(&server), kid);

    // Bad input: one clear line each.
    let output = config("ftp://x");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--server-url"),
        "{}",
        stderr(&output)
    );
    let output = run(&["key", "retire", "--db", db_arg]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--registry"),
        "{}",
        stderr(&output)
    );
    // A mistyped --db is refused, never made into a database of its own.
    let typo = server.dir.path().join("typo.db");
    for args in [
        vec![
            "registry-config",
            "--server-url",
            "http://h",
            "--bundle",
            "/tmp/b.pem",
        ],
        vec!["key", "rotate", "--registry"],
        vec!["key", "retire", "--registry"],
    ] {
        let output = run(&[&args[..], &["--db", typo.to_str().unwrap()]].concat());
        assert_clear_failure(&output, "no database at");
        assert!(!typo.exists());
    }
    // The token lifetime: whole seconds, `s` allowed, 1 to 86400.
    for bad in ["0", "86401", "-1", "1.5", "abc"] {
        let flag = format!("--registry-token-ttl={bad}");
        let output = run(&["serve", &flag, "--db", db_arg]);
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains("--registry-token-ttl"),
            "{bad}: {}",
            stderr(&output)
        );
    }
    let output = run(&[
        "registry-config",
        "--db",
        db_arg,
        "--server-url",
        "http://h",
        "--bundle",
        "/nonexistent/dir/b.pem",
    ]);
    assert_clear_failure(&output, "cannot write the bundle");
}
