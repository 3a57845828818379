//! `--config FILE`: a file with every key starts the server with those
//! settings; `config` prints them back; the command line and the
//! environment override the file; an unknown key and a bad value are each
//! one `error:` line naming it.

use std::process::Stdio;

use super::*;

/// `runners-server ARGS` with no `RUNNERS_*` variable but `env`.
fn clean(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("RUNNERS_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command
}

#[test]
fn a_config_file_with_every_key_is_the_servers_settings() {
    let dir = tempfile::tempdir().unwrap();
    let names = vec!["127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = dir.path().join("configured.db");
    let settings = [
        ("bind", format!("\"127.0.0.1:{port}\"")),
        ("log_level", "\"debug\"".into()),
        ("log_format", "\"json\"".into()),
        ("tls_cert", format!("\"{}\"", cert.display())),
        ("tls_key", format!("\"{}\"", key.display())),
        ("max_connections", "50".into()),
        ("tls_handshake_timeout", "5".into()),
        ("request_timeout", "20".into()),
        ("idle_timeout", "30".into()),
        ("shutdown_timeout", "3".into()),
        ("write_queue", "64".into()),
        ("metrics_listen", format!("\"127.0.0.1:{metrics_port}\"")),
        ("registry_url", "\"http://127.0.0.1:5999\"".into()),
        ("console_url", "\"https://console.example.com\"".into()),
        ("heartbeat_timeout", "45".into()),
        ("job_timeout_grace", "30".into()),
        ("registry_token_ttl", "300".into()),
        ("db", format!("\"{}\"", db.display())),
    ];
    let file = dir.path().join("runners.toml");
    let text: String = settings
        .iter()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    std::fs::write(&file, &text).unwrap();
    let file_arg = file.to_str().unwrap();

    // `config` prints every key back, as the file has it.
    let printed = clean(&["config", "--config", file_arg], &[])
        .output()
        .unwrap();
    assert!(printed.status.success(), "{}", stderr(&printed));
    assert_eq!(
        stdout(&printed),
        text,
        "the keys `config` prints are every key"
    );

    // The server runs with them: its address, TLS, its JSON log at debug,
    // its database, its console URL and its registry tokens' lifetime.
    let mut child = clean(&["serve", "--config", file_arg], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log: Log = Default::default();
    let (url, _) = await_listening(&mut child, Some(log.clone()));
    assert_eq!(url, format!("https://127.0.0.1:{port}"));
    assert!(db.exists());
    let ca = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let get = |path: &str| {
        let url = format!("{url}{path}");
        block_on(async {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
        })
        .unwrap()
    };
    assert_eq!(
        get("/v0/server/config/console")["url"],
        "https://console.example.com"
    );
    assert_eq!(get("/v0/auth/oci/token")["expires_in"], 300);
    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let scraped = block_on(async { reqwest::get(metrics).await.unwrap().status() });
    assert_eq!(scraped, 200, "the metrics on the file's metrics_listen");
    let (status, _) = terminate(&mut child, std::time::Duration::from_secs(10));
    assert!(status.success());
    let lines = log.lock().unwrap().clone();
    assert!(lines.iter().all(|l| l.starts_with('{')), "JSON: {lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("\"level\":20")),
        "debug records"
    );

    // The environment over the file, the command line over both.
    let write_queue = |args: &[&str], env: &[(&str, &str)]| {
        let out = clean(&[&["config", "--config", file_arg], args].concat(), env)
            .output()
            .unwrap();
        let printed = stdout(&out);
        printed
            .lines()
            .find(|l| l.starts_with("write_queue"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(write_queue(&[], &[]), "write_queue = 64");
    assert_eq!(
        write_queue(&[], &[("RUNNERS_WRITE_QUEUE", "9")]),
        "write_queue = 9"
    );
    let both = write_queue(&["--write-queue", "7"], &[("RUNNERS_WRITE_QUEUE", "9")]);
    assert_eq!(both, "write_queue = 7");

    // An unknown key, a bad value, a value of the wrong TOML type: one line.
    for (bad, needle) in [
        ("bogus = 1", "unknown key `bogus`"),
        (
            "write_queue = \"lots\"",
            "key `write_queue`: invalid value 'lots'",
        ),
        (
            "request_timeout = [1]",
            "key `request_timeout`: must be a string or a number",
        ),
        ("bind = ", "not TOML"),
    ] {
        std::fs::write(&file, bad).unwrap();
        let out = clean(&["serve", "--config", file_arg], &[])
            .output()
            .unwrap();
        assert_clear_failure(&out, needle);
    }
}
