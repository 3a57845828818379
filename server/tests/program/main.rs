//! The server crate's tests: the checked-in OpenAPI document, and the
//! `runners-server` program run as a separate process: its interface, and
//! the guarantees that need a real process (races, crashes, a busy
//! database).

mod busy;
mod compat;
mod config;
mod crash;
mod disk;
mod files;
mod flood;
mod jobs;
mod logs;
mod migrate;
mod net;
mod network;
mod races;
mod registry;
mod replicas;
mod resumed;
mod service;
mod serving;

use std::process::Command;
use std::time::{Duration, Instant};

use serving::*;

/// `openapi.json` must be what the declarations produce. Regenerate it with
/// `EXPECTORATE=overwrite cargo test --workspace`.
#[test]
fn openapi_json_is_current() {
    let spec = runners_server::api::openapi_document();
    expectorate::assert_contents(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json"),
        &spec,
    );
}

#[test]
fn first_start_prints_the_admin_token_once_and_sigterm_exits_cleanly() {
    let mut server = Serving::start();
    let token = server
        .bootstrap_token()
        .expect("the admin token is printed on first start");
    assert!(
        server.banner.iter().any(|l| l.contains("admin")),
        "{:?}",
        server.banner
    );
    assert_eq!(server.list_status(&token), 200);
    assert_eq!(server.list_status("not-a-token"), 401);
    assert!(server.terminate().success(), "SIGTERM exits with status 0");
    // Closed cleanly: the WAL was checkpointed and removed.
    assert!(!server.dir.path().join("runners.db-wal").exists());

    server.restart();
    assert_eq!(
        server.bootstrap_token(),
        None,
        "the token is shown only once"
    );
    assert_eq!(
        server.list_status(&token),
        200,
        "the token survives a restart"
    );
    assert!(server.terminate().success());
}

#[test]
fn token_create_prints_the_token_alone_and_works_on_a_fresh_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runners.db");
    let db_arg = db.to_str().unwrap();
    let output = run(&["token", "create", "--user", "ci", "--admin", "--db", db_arg]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    let token = printed.strip_suffix('\n').expect("one line");
    assert!(!token.contains('\n'), "the token alone: {printed:?}");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let output = run(&["token", "create", "--user", "reader", "--db", db_arg]);
    let reader = stdout(&output).trim().to_owned();

    let server = Serving::start_in(dir);
    assert_eq!(server.bootstrap_token(), None, "an admin exists already");
    assert_eq!(server.list_status(token), 200);
    assert_eq!(
        server.list_status(&reader),
        403,
        "a token without --admin is not an admin's"
    );
}

/// With stdout a pipe whose reader has gone, the commands that print their
/// result fail with one `error:` line and exit status 1, never a panic.
#[test]
fn a_closed_stdout_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runners.db");
    let db = db.to_str().unwrap();
    for args in [
        vec!["token", "create", "--user", "ci", "--db", db],
        vec!["token", "list", "--db", db],
        vec!["audit", "--db", db],
    ] {
        // A pipe whose reader is gone before the program starts: every
        // write to it fails (EPIPE).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = Command::new(BIN)
            .args(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: cannot write to stdout"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn token_list_and_revoke_work_while_the_server_runs() {
    let server = Serving::start();
    let db = server.db();
    let db_arg = db.to_str().unwrap();
    let token = run(&[
        "token", "create", "--user", "ops", "--admin", "--db", db_arg,
    ]);
    let token = stdout(&token).trim().to_owned();
    assert_eq!(server.list_status(&token), 200);

    let list = stdout(&run(&["token", "list", "--db", db_arg]));
    let row = list
        .lines()
        .find(|l| l.contains("\tops\t"))
        .expect("ops's token is listed");
    assert!(!list.contains(&token), "token list never shows a token");
    let uuid = row.split('\t').next().unwrap();
    assert!(row.ends_with("\t-"), "not revoked yet: {row}");

    let revoked = run(&["token", "revoke", uuid, "--db", db_arg]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    // The server trusts a token it verified for at most ADMIN_CACHE_TTL
    // (one second) before reading its row again.
    let revoked_at = Instant::now();
    while server.list_status(&token) == 200 {
        assert!(
            revoked_at.elapsed() < Duration::from_millis(1500),
            "a revoked token stops working within the documented second"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.list_status(&token), 401);
    let list = stdout(&run(&["token", "list", "--db", db_arg]));
    assert!(
        !list
            .lines()
            .find(|l| l.starts_with(uuid))
            .unwrap()
            .ends_with("\t-")
    );

    let unknown = run(&[
        "token",
        "revoke",
        "00000000-0000-4000-8000-000000000000",
        "--db",
        db_arg,
    ]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("no API token"),
        "{}",
        stderr(&unknown)
    );
}

/// Each bad environment is one `error:` line and a failure exit status.
pub(crate) fn assert_clear_failure(output: &std::process::Output, needle: &str) {
    assert!(!output.status.success());
    let err = stderr(output);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
}

#[test]
fn bad_environments_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing").join("runners.db");
    let output = run(&["--bind", "127.0.0.1:0", "--db", missing.to_str().unwrap()]);
    assert_clear_failure(&output, "does not exist");
    assert!(!missing.parent().unwrap().exists());

    let garbage = dir.path().join("garbage.db");
    let content = b"this is not a database, and it must stay as it is".repeat(100);
    std::fs::write(&garbage, &content).unwrap();
    let output = run(&[
        "token",
        "create",
        "--user",
        "x",
        "--db",
        garbage.to_str().unwrap(),
    ]);
    assert_clear_failure(&output, "not a SQLite database");
    assert_eq!(
        std::fs::read(&garbage).unwrap(),
        content,
        "the file is untouched"
    );

    // A directory where no file can be created: procfs refuses even root
    // (a mode 0555 directory would not stop root, who runs CI here).
    let output = run(&["--bind", "127.0.0.1:0", "--db", "/proc/runners.db"]);
    assert_clear_failure(&output, "cannot be created or opened");

    // A database written by a newer server: refused, and left as it was.
    let newer = dir.path().join("newer.db");
    let conn = rusqlite::Connection::open(&newer).unwrap();
    conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 999;")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&newer).unwrap();
    let output = run(&["--bind", "127.0.0.1:0", "--db", newer.to_str().unwrap()]);
    assert_clear_failure(&output, "newer");
    assert_eq!(
        std::fs::read(&newer).unwrap(),
        before,
        "the file is untouched"
    );
    assert!(!dir.path().join("newer.db-wal").exists());

    // TLS files that are missing or not PEM.
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "not PEM").unwrap();
    let missing = dir.path().join("missing.pem");
    let db = dir.path().join("tls.db");
    for (cert, key, needle) in [
        (&missing, &not_pem, "cannot read --tls-cert"),
        (&not_pem, &missing, "cannot read --tls-key"),
        (&not_pem, &not_pem, "TLS certificate and key"),
    ] {
        let unreadable = cert == &missing || key == &missing;
        let output = run(&[
            "--bind",
            "127.0.0.1:0",
            "--db",
            db.to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ]);
        assert_clear_failure(&output, needle);
        if unreadable {
            assert!(!db.exists(), "an unreadable TLS file is found first");
        }
    }

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let db = dir.path().join("runners.db");
    let output = run(&["serve", "--bind", &bind, "--db", db.to_str().unwrap()]);
    assert_clear_failure(&output, "cannot listen on");
    drop(taken);
    // No admin token was made for the start that failed: the next start
    // still prints one.
    let server = Serving::start_in(dir);
    assert!(server.bootstrap_token().is_some());
}

#[test]
fn no_token_appears_in_the_log_at_any_level() {
    // Trace is the most verbose level: it prints everything the others do.
    let mut server = Serving::start_logging("trace");
    let admin = server.bootstrap_token().unwrap();
    let mut secrets = vec![admin.clone()];
    for name in ["one", "two"] {
        let body = format!("{{\"name\": \"{name}\"}}");
        let (status, created) = server.call("POST", "/v0/runners", &admin, Some(&body));
        assert_eq!(status, 201, "{created}");
        let (status, rotated) =
            server.call("POST", &format!("/v0/runners/{name}/token"), &admin, None);
        assert_eq!(status, 201, "{rotated}");
        let (status, rekeyed) =
            server.call("POST", &format!("/v0/runners/{name}/key"), &admin, None);
        assert_eq!(status, 201, "{rekeyed}");
        for json in [created, rotated, rekeyed] {
            let answer: serde_json::Value = serde_json::from_str(&json).unwrap();
            secrets.push(answer["key"].as_str().unwrap().to_owned());
        }
        let last = secrets.last().unwrap().clone();
        let path = format!("/v0/runners/{name}/heartbeat");
        let (status, _) = server.call("POST", &path, &last, None);
        assert_eq!(status, 200);
        // Failed attempts are logged too: with a wrong token, and with the
        // admin token where a runner token belongs.
        server.call(
            "POST",
            &path,
            &format!("bencher_runner_{}", "0".repeat(64)),
            None,
        );
        server.call("POST", &path, &admin, None);
        // A client that puts a credential where it does not belong (the
        // URL, which the request log shows): refused, and not logged.
        for query in [format!("?key={last}"), format!("?token={admin}")] {
            let channel = format!("/v0/runners/{name}/channel{query}");
            server.call("GET", &channel, "", None);
            server.call("GET", &format!("/v0/runners{query}"), &admin, None);
        }
    }
    // A project key and a user key at the token endpoint, as Docker's
    // clients send them: the password, and the username as `?account=`
    // (where a confused user puts the key itself).
    let project = Some(r#"{"name": "p", "slug": "p"}"#);
    let (status, made) = server.call(
        "POST",
        "/v0/organizations/default/projects",
        &admin,
        project,
    );
    assert_eq!(status, 201, "{made}");
    for path in ["/v0/projects/p/keys", "/v0/users/admin/keys"] {
        let (status, made) = server.call("POST", path, &admin, Some(r#"{"name": "k"}"#));
        assert_eq!(status, 201, "{made}");
        let made: serde_json::Value = serde_json::from_str(&made).unwrap();
        let key = made["key"].as_str().unwrap().to_owned();
        let uri = format!("/v0/auth/oci/token?account={key}&scope=repository:x:pull");
        assert_eq!(server.call("GET", &uri, &key, None).0, 200);
        secrets.push(key);
    }
    // A client's newline (here in a bad scope, which the 400 and its log
    // line repeat) cannot forge a line of the log.
    let forged = "/v0/auth/oci/token?scope=x%0AFORGED%20WARN%20line";
    assert_eq!(server.call("GET", forged, &admin, None).0, 400);
    assert!(server.terminate().success());
    let log = server.log.lock().unwrap().join("\n");
    assert!(
        log.contains("[redacted]"),
        "the URLs with credentials are logged, redacted: {log}"
    );
    // dropshot sees the acceptor's loopback address: every request's is
    // tied to its client's by a line of the acceptor's.
    let field = |line: &str, name: &str| {
        line.split(", ")
            .find_map(|kv| kv.strip_prefix(name))
            .map(str::to_owned)
    };
    for line in log.lines().filter(|l| l.contains("request completed")) {
        let from = field(line, "remote_addr: ").expect("a remote address");
        assert!(
            log.lines().any(|l| l.contains("relaying a client")
                && field(l, "relayed_from: ").as_deref() == Some(from.as_str())
                && field(l, "client_addr: ").is_some()),
            "no client address for {from}: {log}"
        );
    }
    assert!(
        log.contains("response_code: 201"),
        "the request log is there: {log}"
    );
    for secret in &secrets {
        if let Some(line) = log.lines().find(|l| l.contains(secret.as_str())) {
            panic!("a token is in the log: {line}");
        }
    }
    assert!(log.contains("FORGED"), "the bad scope is logged: {log}");
    assert!(!log.lines().any(|l| l.starts_with("FORGED")), "{log}");
}

/// The permission bits of `path`.
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn database_files_are_owner_only_whatever_the_umask() {
    // A first start (under umask 000, as every `Serving`).
    let fresh = Serving::start();
    for suffix in ["", "-wal", "-shm"] {
        let mut file = fresh.db().into_os_string();
        file.push(suffix);
        assert_eq!(mode(std::path::Path::new(&file)), 0o600, "{suffix:?}");
    }
    assert!(
        !fresh.banner.join("\n").contains("owner-only"),
        "created so"
    );
    drop(fresh);

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runners.db");
    // `token create` on a fresh path, under the most permissive umask.
    let output = Command::new("sh")
        .args([
            "-c",
            r#"umask 000 && exec "$0" token create --user ci --admin --db "$1""#,
        ])
        .args([BIN, db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(mode(&db), 0o600);
    // Created so, not tightened after the fact (no moment of 0666).
    assert!(
        !stderr(&output).contains("owner-only"),
        "{}",
        stderr(&output)
    );

    // A database left readable by others is tightened at start, with one
    // log line; the -wal and -shm files SQLite makes follow the main file.
    std::fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let server = Serving::start_in(dir);
    let db = server.db();
    assert_eq!(mode(&db), 0o600);
    for suffix in ["-wal", "-shm"] {
        let mut file = db.clone().into_os_string();
        file.push(suffix);
        assert_eq!(mode(std::path::Path::new(&file)), 0o600, "{suffix}");
    }
    assert_eq!(server.list_status("x"), 401);
    let log = server.log.lock().unwrap().join("\n");
    let banner = server.banner.join("\n");
    assert!(
        format!("{banner}\n{log}").contains("owner-only"),
        "{banner}\n{log}"
    );
}

#[test]
fn key_rotate_refuses_old_tokens_and_audit_prints_the_trail_while_the_server_runs() {
    let server = Serving::start();
    let db = server.db();
    let db_arg = db.to_str().unwrap();
    let old = server.bootstrap_token().unwrap();
    let (status, _) = server.call("POST", "/v0/runners", &old, Some(r#"{"name": "kept"}"#));
    assert_eq!(status, 201);

    let output = run(&["key", "rotate", "--db", db_arg]);
    assert!(output.status.success(), "{}", stderr(&output));
    let new = stdout(&output).trim().to_owned();
    assert_eq!(new.split('.').count(), 3, "a JWT alone on stdout: {new}");
    // The new token works at once; the old one within the 1 s bound.
    assert_eq!(server.list_status(&new), 200);
    let deadline = Instant::now() + Duration::from_millis(1500);
    while server.list_status(&old) != 401 {
        assert!(Instant::now() < deadline, "the old token still works");
        std::thread::sleep(Duration::from_millis(50));
    }

    let output = run(&["audit", "--db", db_arg, "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let actions: Vec<String> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].to_string())
        .collect();
    assert_eq!(
        actions,
        [
            r#""user.create""#,
            r#""token.create""#,
            r#""runner.create""#,
            r#""key.rotate""#,
            r#""token.create""#
        ]
    );
    let output = run(&["audit", "--db", db_arg, "--runner", "kept"]);
    let table = stdout(&output);
    assert_eq!(table.lines().count(), 2, "a header and one row: {table}");
    assert!(
        table.contains("runner.create") && table.contains("admin"),
        "{table}"
    );
    for token in [&old, &new] {
        assert!(!table.contains(token.as_str()));
    }
    let output = run(&["audit", "--db", db_arg, "--since", "yesterday"]);
    assert_eq!(output.status.code(), Some(2), "a bad time is a usage error");
}

/// `audit --since` compares times, not their text (SQLite keeps RFC 3339
/// text with four-digit years, in which `+10000-…` sorts before `2026-…`):
/// a bound past the year 9999 matches nothing, one before the year 0
/// everything. On PostgreSQL too with `RUNNERS_TEST_PG`.
#[test]
fn audit_since_compares_times_not_text() {
    let server = Serving::start_any();
    let db = server.db();
    let db_arg = db.to_str().unwrap();
    let rows = |since: &str| {
        let since = format!("--since={since}");
        let output = run(&["audit", "--json", "--db", db_arg, &since]);
        assert!(output.status.success(), "{since}: {}", stderr(&output));
        stdout(&output).lines().count()
    };
    let all = rows("2000-01-01T00:00:00Z");
    assert!(all >= 2, "the admin's creation and token: {all}");
    for since in ["+10000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
        assert_eq!(rows(since), 0, "--since {since}");
    }
    for since in [
        "-4714-01-01T00:00:00Z",
        "-0001-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
    ] {
        assert_eq!(rows(since), all, "--since {since}");
    }
}

/// The only line that says where the server listens names the address
/// clients reach, not dropshot's loopback port behind the acceptor (which
/// is logged at debug, under another name).
#[test]
fn the_only_listening_line_names_the_public_address() {
    let server = Serving::start_logging("debug");
    let public = server.url.strip_prefix("http://").unwrap().to_owned();
    assert_eq!(server.list_status("x"), 401, "served at {public}");
    let log = server.log.lock().unwrap().clone();
    let lines = server.banner.iter().chain(&log);
    if let Some(line) = lines.clone().find(|l| l.contains("listening")) {
        panic!("a listening line before {LISTENING}{public}: {line}");
    }
    let internal = lines
        .clone()
        .find(|l| l.contains("serving HTTP to the acceptor only"))
        .expect("the loopback port at debug");
    assert!(!internal.contains(&public), "{internal}");
}

/// Processes that open one new database at once (a server starting while
/// `token create` runs, say) all succeed: the one that loses the race to
/// migrate it finds it migrated, instead of failing with "table users
/// already exists" and a page of SQL.
#[test]
fn processes_racing_to_create_one_database_all_succeed() {
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("runners.db");
        let db_arg = db.to_str().unwrap();
        let children: Vec<_> = (0..4)
            .map(|i| {
                let user = format!("racer-{i}");
                std::process::Command::new(serving::BIN)
                    .args([
                        "token", "create", "--user", &user, "--admin", "--db", db_arg,
                    ])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "round {round}: {}",
                stderr(&output)
            );
            assert_eq!(stdout(&output).trim().split('.').count(), 3);
        }
    }
}
