//! Hostile input: property-based tests send generated names, slugs, query
//! strings, JSON and raw bodies, paths and Authorization headers over HTTP,
//! and check that the server never answers 5xx, that every 4xx carries the
//! error shape, and that a rejected request changes nothing.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use runners_server::auth::{Claims, Keys};
use runners_tests::TestServer;
use serde_json::{Value, json};

mod target;
use target::*;

/// Pieces of awkward text: whitespace, controls and NUL, combining marks,
/// bidirectional overrides, zero-width characters, emoji, the highest code
/// point, and long runs.
fn awkward_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "a",
        "Z",
        "0",
        "-",
        "_",
        " ",
        "\t",
        "\n",
        "\0",
        "\u{7f}",
        "\u{0301}",
        "e\u{0301}",
        "\u{202e}",
        "\u{200f}",
        "\u{200b}",
        "\u{feff}",
        "\u{a0}",
        "é",
        "ß",
        "İ",
        "ｆｕｌｌ",
        "👩\u{200d}💻",
        "\u{10ffff}",
        "%",
        "%00",
        "'; DROP TABLE runners; --",
        "\"",
        "\\",
        "/",
        "?",
        "#",
        "abcdefghijklmnopqrstuvwxyz0123456789",
    ]);
    prop_oneof![
        any::<String>(),
        prop::collection::vec(pieces, 0..8).prop_map(|p| p.concat()),
    ]
}

/// The contract's rule for names.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with(char::is_whitespace)
        && !name.ends_with(char::is_whitespace)
        && !name.chars().any(char::is_control)
}

/// The contract's rule for slugs.
fn valid_slug(slug: &str) -> bool {
    (1..=64).contains(&slug.len())
        && slug
            .split('-')
            .all(|w| !w.is_empty() && w.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9')))
        && uuid::Uuid::parse_str(slug).is_err()
}

fn error_code(answer: &Answer) -> String {
    let error: Value = serde_json::from_str(&answer.body).unwrap_or_default();
    error["error_code"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn generated_names_are_kept_exactly_or_rejected_naming_the_rule() {
    let target = Target::new();
    target.check(awkward_text(), |name, before| {
        let answer = target.post_json("/v0/runners", &json!({ "name": name }));
        target.assert_sound(&answer, before)?;
        if valid_name(&name) {
            prop_assert_eq!(answer.status, 201, "{:?}: {:?}", name, answer);
            let created: Value = serde_json::from_str(&answer.body).unwrap();
            let path = format!("/v0/runners/{}", created["uuid"].as_str().unwrap());
            let viewed = target.send(reqwest::Method::GET, &path, None, None);
            let viewed: Value = serde_json::from_str(&viewed.body).unwrap();
            prop_assert_eq!(
                &viewed["name"],
                &json!(name),
                "the name is kept byte for byte"
            );
            prop_assert!(valid_slug(viewed["slug"].as_str().unwrap()), "{}", viewed);
        } else {
            prop_assert_eq!(answer.status, 400, "{:?}: {:?}", name, answer);
            prop_assert_eq!(error_code(&answer), "InvalidRequest");
            prop_assert!(answer.body.contains("name"), "{:?}", answer);
        }
        Ok(())
    });
}

#[test]
fn generated_slugs_are_kept_taken_or_rejected_naming_the_rule() {
    let target = Target::new();
    let slugs = prop_oneof![
        awkward_text(),
        "[a-z0-9-]{0,70}",
        Just("00000000-0000-4000-8000-000000000000".to_owned()),
        Just("a".repeat(65)),
    ];
    target.check(slugs, |slug, before| {
        let taken = before.contains(&format!("\"slug\":{}", json!(slug)));
        let answer = target.post_json("/v0/runners", &json!({ "name": "n", "slug": slug }));
        target.assert_sound(&answer, before)?;
        let expected = match (valid_slug(&slug), taken) {
            (false, _) => 400,
            (true, true) => 409,
            (true, false) => 201,
        };
        prop_assert_eq!(answer.status, expected, "{:?}: {:?}", slug, answer);
        if expected == 400 {
            prop_assert!(answer.body.contains("slug"), "{:?}", answer);
        }
        Ok(())
    });
}

/// The list's query parameters.
const QUERY_KEYS: &[&str] = &[
    "per_page",
    "page",
    "sort",
    "direction",
    "archived",
    "name",
    "search",
];

/// Values for them: at and past each one's bounds, and its words.
const QUERY_VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "255",
    "256",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "99999999999999999999999999",
    "1e3",
    "name",
    "created",
    "asc",
    "DESC",
    "true",
    "false",
    "yes",
    "",
];

/// One of `words`.
fn one_of(words: &[&'static str]) -> impl Strategy<Value = String> + use<> {
    prop::sample::select(words.to_vec()).prop_map(str::to_owned)
}

#[test]
fn generated_query_strings_are_200_or_400() {
    let target = Target::new();
    target.post_json("/v0/runners", &json!({ "name": "one" }));
    let keys = prop_oneof![one_of(QUERY_KEYS), "[a-z_-]{1,10}", awkward_text()];
    let values = prop_oneof![one_of(QUERY_VALUES), awkward_text()];
    let encoded = prop::collection::vec((keys, values), 0..5).prop_map(|pairs| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            query.append_pair(k, v);
        }
        query.finish()
    });
    // Also raw text, not form-encoded: stray `%`, `&&`, `=` with no name.
    let raw = "[a-z_=&%0-9+;]{0,40}";
    target.check(prop_oneof![encoded, raw], |query, before| {
        let answer = target.send(
            reqwest::Method::GET,
            &format!("/v0/runners?{query}"),
            None,
            None,
        );
        target.assert_sound(&answer, before)?;
        prop_assert!(
            matches!(answer.status, 200 | 400),
            "{:?}: {:?}",
            query,
            answer
        );
        Ok(())
    });
}

/// Text with a control character (NUL, C0, DEL, C1) among ordinary
/// letters: long enough for the trigram index (3+ characters) or not.
fn text_with_a_control() -> impl Strategy<Value = String> {
    let control = prop_oneof![
        (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
        (0x7fu32..0xa0).prop_map(|c| char::from_u32(c).unwrap()),
    ];
    ("[a-z]{0,5}", control, "[a-z]{0,5}").prop_map(|(a, c, b)| format!("{a}{c}{b}"))
}

/// The contract's rule for a search text.
fn valid_search(search: &str) -> bool {
    search.len() <= 255 && !search.chars().any(char::is_control)
}

#[test]
fn generated_searches_and_name_filters_are_200_or_400_naming_the_parameter() {
    let target = Target::new();
    let runner = target.post_json("/v0/runners", &json!({ "name": "abc def" }));
    let spec = target.post_json(
        "/v0/specs",
        &json!({ "name": "abc def", "architecture": "x86_64", "os": "linux",
                 "cpu": 1, "memory": 1, "disk": 1 }),
    );
    // A search may match each list's one item by its name, its slug
    // (`abc-def`) or its UUID.
    let uuid_of = |answer: &Answer| {
        let item: Value = serde_json::from_str(&answer.body).unwrap();
        item["uuid"].as_str().unwrap().to_owned()
    };
    let (runner, spec) = (uuid_of(&runner), uuid_of(&spec));
    let texts = prop_oneof![text_with_a_control(), awkward_text(), Just("a".repeat(256))];
    let cases = (
        prop::sample::select(vec!["runners", "specs"]),
        prop::sample::select(vec!["search", "name"]),
        texts,
    );
    target.check(cases, |(list, param, text), before| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair(param, &text);
        let path = format!("/v0/{list}?{}", query.finish());
        let answer = target.send(reqwest::Method::GET, &path, None, None);
        target.assert_sound(&answer, before)?;
        let valid = match param {
            "search" => valid_search(&text),
            _ => valid_name(&text),
        };
        if valid {
            prop_assert_eq!(answer.status, 200, "{:?}: {:?}", path, answer);
            let found: Vec<Value> = serde_json::from_str(&answer.body).unwrap();
            let uuid = if list == "runners" { &runner } else { &spec };
            let folded = text.to_lowercase();
            let matches = match param {
                "search" => ["abc def", "abc-def", uuid]
                    .iter()
                    .any(|h| h.contains(&folded)),
                _ => text == "abc def",
            };
            prop_assert_eq!(found.len(), usize::from(matches), "{:?}: {:?}", path, found);
        } else {
            prop_assert_eq!(answer.status, 400, "{:?}: {:?}", path, answer);
            prop_assert_eq!(error_code(&answer), "InvalidRequest");
            prop_assert!(
                answer.body.contains(&format!("`{param}`")),
                "names the parameter: {:?}",
                answer
            );
        }
        Ok(())
    });
}

/// Arbitrary JSON, and objects shaped like the API's with odd values.
fn json_values() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        awkward_text().prop_map(Value::from),
    ];
    let any_json = leaf.clone().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(awkward_text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let field = prop::sample::select(vec!["name", "slug", "archived", "uuid", "token", "Name"]);
    let shaped = prop::collection::btree_map(field, leaf, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    prop_oneof![any_json, shaped]
}

#[test]
fn generated_json_bodies_never_5xx_and_rejections_change_nothing() {
    let target = Target::new();
    target.post_json("/v0/runners", &json!({ "name": "target" }));
    let method = prop::sample::select(vec!["POST", "PATCH"]);
    target.check((method, json_values()), |(method, body), before| {
        let (method, path) = match method {
            "POST" => (reqwest::Method::POST, "/v0/runners"),
            _ => (reqwest::Method::PATCH, "/v0/runners/target"),
        };
        let bytes = serde_json::to_vec(&body).unwrap();
        let answer = target.send(method, path, None, Some(("application/json", bytes)));
        target.assert_sound(&answer, before)?;
        Ok(())
    });
}

#[test]
fn raw_bodies_and_paths_never_5xx() {
    let target = Target::new();
    target.post_json("/v0/runners", &json!({ "name": "target" }));
    let content_type = prop::sample::select(vec![
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
    ]);
    // Invalid UTF-8, truncated JSON, and sizes around the 1024-byte limit.
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<u8>(), 1000..1100),
        Just(b"{\"name\": \"\xff\xfe\"}".to_vec()),
        Just(b"{\"name\": \"a\"".to_vec()),
        (1020usize..1100).prop_map(|n| format!("{{\"name\": \"{}\"}}", "a".repeat(n)).into_bytes()),
    ];
    let segment = awkward_text()
        .prop_map(|s| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>());
    let path = prop_oneof![
        Just("/v0/runners".to_owned()),
        segment.prop_map(|s| format!("/v0/runners/{s}")),
        Just("/v0/runners/%FF%FE".to_owned()),
        Just("/v0/runners/target".to_owned()),
    ];
    let method = prop::sample::select(vec!["GET", "POST", "PATCH"]);
    target.check(
        (method, path, content_type, bytes),
        |(method, path, ct, bytes), before| {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let answer = target.send(method, &path, None, Some((ct, bytes)));
            target.assert_sound(&answer, before)?;
            Ok(())
        },
    );
}

/// Tokens that are almost right, made from the admin's real one.
fn near_misses(admin: &str) -> Vec<String> {
    let parts: Vec<&str> = admin.split('.').collect();
    let (header, payload, signature) = (parts[0], parts[1], parts[2]);
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let hs512_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let mut forever = claims.clone();
    forever["exp"] = json!(i64::MAX / 1000);
    let forever = URL_SAFE_NO_PAD.encode(forever.to_string());
    vec![
        format!("{none_header}.{payload}."),
        format!("{none_header}.{payload}"),
        format!("{hs512_header}.{payload}.{signature}"),
        format!("{header}.{forever}.{signature}"),
        format!("{header}.{payload}"),
        format!("{header}.{payload}.{}", &signature[..signature.len() / 2]),
        admin[..admin.len() - 1].to_owned(),
        admin.to_uppercase(),
        format!("{admin}."),
        format!("{admin}x"),
        format!("{header}..{signature}"),
    ]
}

#[test]
fn generated_and_almost_right_authorization_headers_are_401() {
    let target = Target::new();
    let admin = target.server().admin_token.clone();
    // Right claims, right key, but a token id the server never issued.
    let secret = target
        .runtime
        .block_on(target.server().store().signing_secret())
        .unwrap();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(admin.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let forged = Keys::new(secret.expose()).sign(&Claims {
        sub: claims["sub"].as_str().unwrap().parse().unwrap(),
        jti: uuid::Uuid::new_v4(),
        iat: claims["iat"].as_i64().unwrap(),
        exp: claims["exp"].as_i64().unwrap(),
    });
    let mut tokens = near_misses(&admin);
    tokens.push(forged);
    let bearer = prop::sample::select(tokens).prop_map(|t| format!("Bearer {t}").into_bytes());
    let flipped = (0..admin.len() - 1, any::<u8>()).prop_map({
        let admin = admin.clone();
        move |(i, b)| {
            let mut bytes = format!("Bearer {admin}").into_bytes();
            let at = "Bearer ".len() + i;
            bytes[at] = if bytes[at] == b { b.wrapping_add(1) } else { b };
            bytes
        }
    });
    let header = prop_oneof![
        bearer,
        flipped,
        prop::collection::vec(any::<u8>(), 0..200),
        awkward_text().prop_map(|t| format!("Bearer {t}").into_bytes()),
        Just(format!("bearer  {admin} extra").into_bytes()),
        Just(format!("Basic {admin}").into_bytes()),
        Just(format!("Bearer bencher_runner_{}", "0".repeat(64)).into_bytes()),
    ];
    let request = prop::sample::select(vec![
        ("GET", "/v0/runners"),
        ("POST", "/v0/runners"),
        ("POST", "/v0/runners/x/token"),
        ("POST", "/v0/runners/x/heartbeat"),
    ]);
    target.check((request, header), |((method, path), header), before| {
        let Ok(value) = HeaderValue::from_bytes(&header) else {
            // Not sendable as an HTTP header at all.
            return Ok(());
        };
        if value.as_bytes() == target.admin().as_bytes() {
            return Ok(());
        }
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let body = Some(("application/json", br#"{"name": "intruder"}"#.to_vec()));
        let answer = target.send(method, path, Some(value.clone()), body);
        target.assert_sound(&answer, before)?;
        prop_assert_eq!(answer.status, 401, "{:?}: {:?}", value, answer);
        prop_assert!(answer.www_authenticate, "{:?}", answer);
        prop_assert_eq!(error_code(&answer), "Unauthorized");
        // Secrets are never echoed: not even a wrong token.
        let sent = String::from_utf8_lossy(value.as_bytes());
        let token = sent.split_once(' ').map_or(&*sent, |(_, t)| t).trim();
        if token.len() >= 16 {
            prop_assert!(
                !answer.body.contains(token),
                "the token is echoed: {:?}",
                answer
            );
        }
        Ok(())
    });
}

#[test]
fn oversized_bodies_are_413_and_change_nothing() {
    let target = Target::new();
    let before = target.state();
    for size in [1025, 64 * 1024, 8 * 1024 * 1024] {
        let name = "a".repeat(size);
        let answer = target.post_json("/v0/runners", &json!({ "name": name }));
        assert_eq!(answer.status, 413, "{size} bytes: {}", answer.body);
        assert_eq!(error_code(&answer), "InvalidRequest");
    }
    assert_eq!(target.state(), before);
}
