//! `bencher spec ...`, `bencher runner spec ...` and `bencher runner key`.

use super::*;

/// `bencher spec create` with the given extra flags, for a 2-CPU machine.
async fn create_spec(server: &TestServer, name: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "spec",
        "create",
        "--name",
        name,
        "--os",
        "linux",
        "--architecture",
        "aarch64",
        "--cpu",
        "2",
        "--memory",
        "4294967296",
        "--disk",
        "68719476736",
    ];
    args.extend(extra);
    bencher(server, &args).await
}

#[tokio::test]
async fn spec_create_list_view_update_delete() {
    let server = TestServer::start().await;
    let created = create_spec(
        &server,
        "Graviton",
        &[
            "--slug",
            "grav",
            "--sandbox",
            "firecracker",
            "--network",
            "--fallback",
        ],
    )
    .await
    .json();
    assert_eq!(created["slug"], "grav");
    assert_eq!(created["architecture"], "aarch64");
    assert_eq!(created["os"], "linux");
    assert_eq!(created["cpu"], 2);
    assert_eq!(created["memory"], 4294967296u64);
    assert_eq!(created["sandbox"], "firecracker");
    assert_eq!(created["network"], true);
    assert!(created["fallback"].is_string(), "{created}");
    let plain = create_spec(&server, "Plain", &[]).await.json();
    assert!(plain["sandbox"].is_null() && plain["fallback"].is_null());
    assert_eq!(plain["network"], false);

    let run = bencher(
        &server,
        &["spec", "list", "--sort", "name", "--per-page", "1"],
    )
    .await;
    assert_eq!(run.slugs(), ["grav"]);
    assert_eq!(run.total(), 2);
    let run = bencher(&server, &["spec", "ls", "--all", "--per-page", "1"]).await;
    assert_eq!(run.slugs(), ["grav", "plain"]);
    let run = bencher(&server, &["spec", "list", "--search", "PLA"]).await;
    assert_eq!(run.slugs(), ["plain"]);

    let viewed = bencher(&server, &["spec", "view", "grav"]).await.json();
    assert_eq!(viewed, created);
    let by_uuid = bencher(&server, &["spec", "get", created["uuid"].as_str().unwrap()]).await;
    assert_eq!(by_uuid.json(), created);

    // The fallback moves; archiving and renaming.
    let moved = bencher(&server, &["spec", "update", "plain", "--fallback", "true"]).await;
    assert!(moved.json()["fallback"].is_string());
    let grav = bencher(&server, &["spec", "view", "grav"]).await.json();
    assert!(grav["fallback"].is_null());
    let updated = bencher(
        &server,
        &[
            "spec",
            "edit",
            "plain",
            "--name",
            "Plainer",
            "--slug",
            "plainer",
            "--archive",
        ],
    )
    .await
    .json();
    assert_eq!(updated["name"], "Plainer");
    assert!(updated["archived"].is_string() && updated["fallback"].is_null());
    let run = bencher(&server, &["spec", "list"]).await;
    assert_eq!(run.slugs(), ["grav"]);
    let run = bencher(&server, &["spec", "list", "--archived"]).await;
    assert_eq!(run.slugs(), ["grav", "plainer"]);
    let unarchived = bencher(&server, &["spec", "update", "plainer", "--unarchive"]).await;
    assert!(unarchived.json()["archived"].is_null());

    // Delete: nothing on stdout, exit 0; then it is gone.
    let run = bencher(&server, &["spec", "delete", "plainer"]).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    bencher(&server, &["spec", "view", "plainer"])
        .await
        .api_error("404 Not Found", "NotFound");
}

#[tokio::test]
async fn runner_spec_add_list_remove_and_runner_key() {
    let server = TestServer::start().await;
    create(&server, "Rack").await;
    let small = create_spec(&server, "Small", &[]).await.json();
    create_spec(&server, "Large", &[]).await.json();

    let added = bencher(
        &server,
        &["runner", "spec", "add", "rack", "--spec", "large"],
    )
    .await;
    assert_eq!(added.json()["slug"], "large");
    let uuid = small["uuid"].as_str().unwrap();
    let added = bencher(
        &server,
        &["runner", "spec", "create", "rack", "--spec", uuid],
    )
    .await;
    assert_eq!(added.json()["slug"], "small");
    let listed = bencher(&server, &["runner", "spec", "list", "rack"]).await;
    assert_eq!(listed.slugs(), ["large", "small"], "in the order added");
    let runner = bencher(&server, &["runner", "view", "rack"]).await.json();
    assert_eq!(runner["specs"].as_array().unwrap().len(), 2);

    bencher(
        &server,
        &["runner", "spec", "add", "rack", "--spec", "large"],
    )
    .await
    .api_error("409 Conflict", "Conflict")
    .mentions("large");
    bencher(&server, &["spec", "delete", "large"])
        .await
        .api_error("409 Conflict", "Conflict")
        .mentions("rack");
    let removed = bencher(&server, &["runner", "spec", "rm", "rack", "large"]).await;
    assert_eq!(
        (removed.code, removed.stdout.as_str()),
        (0, ""),
        "{removed:?}"
    );
    bencher(&server, &["runner", "spec", "remove", "rack", "large"])
        .await
        .api_error("404 Not Found", "NotFound");
    bencher(
        &server,
        &["runner", "spec", "add", "rack", "--spec", "nope"],
    )
    .await
    .api_error("404 Not Found", "NotFound")
    .mentions("nope");

    // `runner key`: both fields, the new form.
    let rotated = bencher(&server, &["runner", "key", "rack"]).await.json();
    let key = rotated["key"].as_str().unwrap();
    assert_eq!(rotated["token"], key);
    assert_eq!(key.len(), "bencher_runner_".len() + 30, "{key}");
}

/// `spec create` flags, with `flag` set to `value`.
fn spec_args<'a>(flag: &str, value: &'a str) -> Vec<&'a str> {
    let mut args = vec!["spec", "create", "--name", "x"];
    for (f, default) in [
        ("--os", "linux"),
        ("--architecture", "x86_64"),
        ("--cpu", "1"),
        ("--memory", "1"),
        ("--disk", "1"),
    ] {
        args.extend([f, if f == flag { value } else { default }]);
    }
    args
}

#[tokio::test]
async fn bad_spec_flags_are_usage_errors() {
    let server = TestServer::start().await;
    for (flag, value) in [
        ("--os", "plan9"),
        ("--architecture", "riscv"),
        ("--cpu", "-1"),
        ("--memory", "lots"),
    ] {
        let run = bencher(&server, &spec_args(flag, value)).await;
        assert_eq!(run.code, 2, "{flag} {value}: {run:?}");
        assert!(run.stderr.contains(value), "{run:?}");
    }
    let mut args = spec_args("", "");
    args.extend(["--sandbox", "docker"]);
    assert_eq!(bencher(&server, &args).await.code, 2);
    assert_eq!(bencher(&server, &spec_args("--cpu", "0")).await.code, 2);
    // The server's own bounds, past the parser: more CPUs than i32::MAX.
    bencher(&server, &spec_args("--cpu", "2147483648"))
        .await
        .api_error("400 Bad Request", "InvalidRequest")
        .mentions("cpu");
    let run = bencher(&server, &["spec", "update", "x", "--fallback", "maybe"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("maybe"), "{run:?}");
}
