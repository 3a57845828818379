//! `bencher runner ...`.

use super::*;

#[tokio::test]
async fn create_view_and_token_print_the_api_json() {
    let server = TestServer::start().await;

    let created = create(&server, "Bare metal 1").await;
    let uuid = created["uuid"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("bencher_runner_"), "{created}");

    // Pretty JSON: one field per line.
    let run = bencher(&server, &["runner", "view", "bare-metal-1"]).await;
    assert!(
        run.stdout.contains("\n  \"slug\": \"bare-metal-1\""),
        "{run:?}"
    );
    let viewed = run.json();
    assert_eq!(viewed["uuid"], uuid);
    assert_eq!(viewed["name"], "Bare metal 1");
    assert!(viewed["archived"].is_null());
    let by_uuid = bencher(&server, &["runner", "view", &uuid]).await.json();
    assert_eq!(by_uuid, viewed);

    let explicit = bencher(
        &server,
        &["runner", "create", "--name", "Other", "--slug", "rack-7"],
    )
    .await
    .json();
    let rack = bencher(&server, &["runner", "get", "rack-7"]).await.json();
    assert_eq!(rack["uuid"], explicit["uuid"]);

    // `token` rotates: the new token works, the old one is refused.
    let rotated = bencher(&server, &["runner", "token", "bare-metal-1"])
        .await
        .json();
    assert_eq!(rotated["uuid"], uuid);
    let new_token = rotated["token"].as_str().unwrap();
    assert_ne!(new_token, token);
    let beat = |token: String| {
        let client = server.client(&token);
        async move {
            client
                .runner_heartbeat_post()
                .runner("bare-metal-1")
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.status().map(|s| s.as_u16()))
        }
    };
    assert_eq!(beat(new_token.to_owned()).await, Ok(200));
    assert_eq!(beat(token).await, Err(Some(401)));
}

#[tokio::test]
async fn list_filters_sorts_and_pages_with_the_total_on_stderr() {
    let server = TestServer::start().await;
    for name in ["delta", "alpha", "charlie", "bravo", "alpha two"] {
        create(&server, name).await;
    }
    bencher(&server, &["runner", "update", "charlie", "--archive"])
        .await
        .json();

    let run = bencher(&server, &["runner", "list"]).await;
    assert_eq!(run.slugs(), ["alpha", "alpha-two", "bravo", "delta"]);
    assert_eq!(run.total(), 4);
    assert!(!run.stdout.contains("X-Total-Count"), "stdout stays JSON");

    let run = bencher(&server, &["runner", "list", "--archived"]).await;
    assert_eq!(
        run.slugs(),
        ["alpha", "alpha-two", "bravo", "charlie", "delta"]
    );
    assert_eq!(run.total(), 5);

    let run = bencher(
        &server,
        &["runner", "ls", "--sort", "created", "--direction", "desc"],
    )
    .await;
    assert_eq!(run.slugs(), ["alpha-two", "bravo", "alpha", "delta"]);

    let run = bencher(&server, &["runner", "list", "--search", "ALPHA"]).await;
    assert_eq!(run.slugs(), ["alpha", "alpha-two"]);
    assert_eq!(run.total(), 2);

    let run = bencher(&server, &["runner", "list", "--name", "alpha two"]).await;
    assert_eq!(run.slugs(), ["alpha-two"]);

    let run = bencher(
        &server,
        &["runner", "list", "--per-page", "3", "--page", "2"],
    )
    .await;
    assert_eq!(run.slugs(), ["delta"]);
    assert_eq!(run.total(), 4, "the total counts every page");

    let run = bencher(&server, &["runner", "list", "--page", "9"]).await;
    assert_eq!(run.slugs(), Vec::<String>::new());
}

#[tokio::test]
async fn list_all_follows_every_page_into_one_array() {
    let server = TestServer::start().await;
    let mut expected = Vec::new();
    for i in 0..11 {
        let slug = format!("node-{i:02}");
        create(&server, &slug).await;
        expected.push(slug);
    }
    create(&server, "gone").await;
    bencher(&server, &["runner", "update", "gone", "--archive"])
        .await
        .json();

    // 11 runners at 3 a page (how many requests that takes is the stop
    // rule's unit test, `all_stops_on_the_count_without_an_empty_page`).
    let run = bencher(&server, &["runner", "list", "--all", "--per-page", "3"]).await;
    assert_eq!(run.slugs(), expected);
    assert_eq!(run.total(), 11);

    // An exact multiple of the page size, and the other filters apply to
    // every page.
    let run = bencher(
        &server,
        &[
            "runner",
            "list",
            "--all",
            "--per-page",
            "4",
            "--archived",
            "--direction",
            "desc",
        ],
    )
    .await;
    let mut with_archived = expected.clone();
    with_archived.push("gone".into());
    with_archived.sort();
    with_archived.reverse();
    assert_eq!(run.slugs(), with_archived);
    assert_eq!(run.total(), 12);

    let run = bencher(&server, &["runner", "list", "--all", "--search", "node-1"]).await;
    assert_eq!(run.slugs(), ["node-10"]);

    let run = bencher(&server, &["runner", "list", "--all", "--page", "2"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--page"), "{run:?}");
}

#[tokio::test]
async fn update_changes_only_what_is_given() {
    let server = TestServer::start().await;
    let created = create(&server, "Bare metal").await;

    let renamed = bencher(
        &server,
        &["runner", "update", "bare-metal", "--name", "Rack 9"],
    )
    .await
    .json();
    assert_eq!(renamed["name"], "Rack 9");
    assert_eq!(renamed["slug"], "bare-metal", "the slug stays");

    let moved = bencher(
        &server,
        &["runner", "edit", "bare-metal", "--slug", "rack-9"],
    )
    .await
    .json();
    assert_eq!(moved["slug"], "rack-9");
    assert_eq!(moved["name"], "Rack 9");

    let uuid = created["uuid"].as_str().unwrap();
    let archived = bencher(&server, &["runner", "update", uuid, "--archive"])
        .await
        .json();
    assert!(archived["archived"].is_string(), "{archived}");
    let listed = bencher(&server, &["runner", "list"]).await;
    assert_eq!(listed.total(), 0);

    let restored = bencher(&server, &["runner", "update", "rack-9", "--unarchive"])
        .await
        .json();
    assert!(restored["archived"].is_null(), "{restored}");

    let run = bencher(
        &server,
        &["runner", "update", "rack-9", "--archive", "--unarchive"],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("cannot be used with"), "{run:?}");
    let unchanged = bencher(&server, &["runner", "view", "rack-9"]).await.json();
    assert_eq!(unchanged, restored);
}

#[tokio::test]
async fn host_and_token_come_from_the_environment_or_flags_anywhere() {
    let server = TestServer::start().await;
    create(&server, "alpha").await;

    let run = bencher_env(
        Some(&server.url),
        Some(&server.admin_token),
        &["runner", "list"],
    )
    .await;
    assert_eq!(run.slugs(), ["alpha"]);

    // Global flags also go before the subcommand, and override the
    // environment; a trailing `/` on the host is fine.
    let host = format!("{}/", server.url);
    let run = bencher_env(
        Some("http://127.0.0.1:1"),
        Some("not-this-one"),
        &[
            "--host",
            &host,
            "--token",
            &server.admin_token,
            "--timeout",
            "5",
            "runner",
            "view",
            "alpha",
        ],
    )
    .await;
    assert_eq!(run.json()["slug"], "alpha");
}

#[tokio::test]
async fn no_token_is_a_usage_error_before_any_request() {
    // The host cannot be reached, so a request would fail differently.
    for token in [None, Some("")] {
        let run = bencher_env(Some("http://127.0.0.1:1"), token, &["runner", "list"]).await;
        run.one_line_error(2, "BENCHER_API_TOKEN")
            .mentions("--token");
    }
}

#[tokio::test]
async fn api_errors_print_status_code_message_and_request_id() {
    let server = TestServer::start().await;
    create(&server, "alpha").await;

    let run = bencher_as(&server, "eyJhbGciOiJIUzI1NiJ9.e30.bad", &["runner", "list"]).await;
    run.api_error("401 Unauthorized", "Unauthorized");

    let (_, user_token) = server.api_token("alice", false, chrono_days(1)).await;
    let run = bencher_as(&server, &user_token, &["runner", "view", "alpha"]).await;
    run.api_error("403 Forbidden", "Forbidden");

    let run = bencher(&server, &["runner", "view", "nope"]).await;
    run.api_error("404 Not Found", "NotFound").mentions("nope");

    let run = bencher(
        &server,
        &["runner", "create", "--name", "Again", "--slug", "alpha"],
    )
    .await;
    run.api_error("409 Conflict", "Conflict");

    bencher(&server, &["runner", "update", "alpha", "--archive"])
        .await
        .json();
    let run = bencher(&server, &["runner", "token", "alpha"]).await;
    run.api_error("409 Conflict", "Conflict");

    // Refused by the CLI before any request (the SDK's types carry the
    // rule)...
    let run = bencher(&server, &["runner", "create", "--name", " padded"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("--name") && run.stderr.contains("whitespace"),
        "{run:?}"
    );
    // ... or by the server, for what JSON Schema cannot say (64 bytes).
    let run = bencher(&server, &["runner", "create", "--name", &"é".repeat(33)]).await;
    run.api_error("400 Bad Request", "InvalidRequest")
        .mentions("name");
    let listed = bencher(&server, &["runner", "list", "--archived"]).await;
    assert_eq!(listed.total(), 1, "nothing was created");
}

fn chrono_days(days: i64) -> chrono::Duration {
    chrono::Duration::days(days)
}

#[tokio::test]
async fn an_unreachable_host_is_one_line() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let host = format!("http://127.0.0.1:{port}");
    let run = bencher_env(Some(&host), Some("token"), &["runner", "list"]).await;
    run.one_line_error(1, "cannot reach").mentions(&host);

    // A host that accepts but never answers: the timeout ends it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("http://{}", silent.local_addr().unwrap());
    let run = bencher_env(
        Some(&host),
        Some("token"),
        &["runner", "view", "x", "--timeout", "1"],
    )
    .await;
    run.one_line_error(1, "within 1 s");
}

#[tokio::test]
async fn bad_flag_values_are_usage_errors() {
    for args in [
        &["runner", "list", "--per-page", "0"][..],
        &["runner", "list", "--per-page", "256"],
        &["runner", "list", "--page", "0"],
        &["runner", "list", "--sort", "uuid"],
        &["runner", "list", "--direction", "up"],
        &["runner", "list", "--timeout", "0"],
        &["runner", "list", "--host", "not a url"],
        &["runner", "create"],
        &["runner", "view"],
        &["runner", "frobnicate"],
    ] {
        let run = bencher_env(None, Some("token"), args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
        assert!(run.stderr.starts_with("error: "), "{args:?}: {run:?}");
    }
}
