//! Malformed requests: bodies and queries that do not parse.

use runners_sdk::ClientInfo;
use runners_tests::*;

#[tokio::test]
async fn malformed_bodies_are_400_with_an_error_code() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let http = admin.client();
    let url = format!("{}/v0/runners", admin.baseurl());
    let cases = [
        ("{", "unable to parse JSON body"),
        ("{\"name\": 5}", "name"),
        ("{}", "name"),
        ("{\"name\": \"ok\", \"nmae\": \"typo\"}", "nmae"),
        ("[]", "unable to parse JSON body"),
    ];
    for (body, needle) in cases {
        let response = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error_code"], "InvalidRequest", "{body}: {error}");
        assert!(error["request_id"].is_string());
        assert!(
            error["message"].as_str().unwrap().contains(needle),
            "{body}: {error}"
        );
    }
    // Over the body limit: 413; not JSON: 415. Both keep the error shape.
    let too_big = format!("{{\"name\": \"{}\"}}", "x".repeat(2000));
    for (content_type, body, status) in [
        ("application/json", too_big.as_str(), 413),
        ("text/plain", "{\"name\": \"x\"}", 415),
        ("application/x-www-form-urlencoded", "name=x", 415),
    ] {
        let response = http
            .post(&url)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{content_type}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error_code"], "InvalidRequest", "{error}");
    }
    let (_, total) = list_all(&admin, true).await;
    assert_eq!(total, 0, "nothing was stored");
}

#[tokio::test]
async fn bad_list_queries_are_400_naming_the_parameter() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let http = admin.client();
    for (query, param) in [
        ("sort=size", "sort"),
        ("direction=up", "direction"),
        ("per_page=0", "per_page"),
        ("per_page=256", "per_page"),
        ("per_page=ten", "per_page"),
        ("page=0", "page"),
        ("page=99999999999", "page"),
        ("archived=maybe", "archived"),
        ("per-page=5", "per-page"),
    ] {
        let url = format!("{}/v0/runners?{query}", admin.baseurl());
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error_code"], "InvalidRequest", "{query}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains(param),
            "{query}: {error}"
        );
    }
    // The SDK's typed parameters reach the same checks (it refuses 0 itself).
    failure(admin.runners_get().per_page(256u32).send().await)
        .assert(400, "InvalidRequest")
        .mentions("per_page")
        .mentions("1 to 255");
}
