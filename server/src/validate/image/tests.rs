//! Unit tests of the image reference's rules.
use super::*;

const D: &str = "sha256:3f1c2d4e12344abc8def0000000000013f1c2d4e12344abc8def000000000001";

fn parts(value: &str) -> (Option<&str>, &str, Option<&str>, Option<&str>) {
    let image = Box::leak(Box::new(
        ImageReference::parse("image", value).expect(value),
    ));
    (
        image.host(),
        image.repository(),
        image.tag(),
        image.digest(),
    )
}

/// Each part as Docker reads it, and the reference written back as given.
#[test]
fn parts_as_docker_reads_them() {
    let with_digest = format!("a.b/c:t@{D}");
    let ipv6 = format!("[::1]:5000/img@{D}");
    let cases = [
        ("alpine", (None, "alpine", None, None)),
        ("alpine:3.18", (None, "alpine", Some("3.18"), None)),
        (
            "myuser/myimage:v1",
            (None, "myuser/myimage", Some("v1"), None),
        ),
        (
            "ghcr.io/owner/repo:latest",
            (Some("ghcr.io"), "owner/repo", Some("latest"), None),
        ),
        (
            "localhost:5000/myimage:v1",
            (Some("localhost:5000"), "myimage", Some("v1"), None),
        ),
        (
            "localhost/my-project",
            (Some("localhost"), "my-project", None, None),
        ),
        (
            "127.0.0.1:5000/p:latest",
            (Some("127.0.0.1:5000"), "p", Some("latest"), None),
        ),
        // No `/` after it: the first component is no host, `:5000` a tag.
        ("myregistry:5000", (None, "myregistry", Some("5000"), None)),
        (
            "registry.io:5000",
            (None, "registry.io", Some("5000"), None),
        ),
        ("localhost", (None, "localhost", None, None)),
        (
            "myregistry:5000/myimage",
            (Some("myregistry:5000"), "myimage", None, None),
        ),
        (
            "Registry.Example.COM/x",
            (Some("Registry.Example.COM"), "x", None, None),
        ),
        (&with_digest, (Some("a.b"), "c", Some("t"), Some(D))),
        (&ipv6, (Some("[::1]:5000"), "img", None, Some(D))),
        (
            "a__b/c-d---e/f.g_h:_T-1.",
            (None, "a__b/c-d---e/f.g_h", Some("_T-1."), None),
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(parts(value), expected, "{value}");
        assert_eq!(
            ImageReference::parse("image", value).unwrap().to_string(),
            value
        );
    }
}

/// Each refusal says which rule broke.
#[test]
fn refusals_name_the_rule() {
    let long_tag = format!("a:{}", "t".repeat(129));
    let cases = [
        ("", "it is empty"),
        ("Alpine", "the repository `Alpine` must be lowercase"),
        ("LOCALHOST/foo", "must be lowercase"),
        ("a:b:c", "the tag `b:c` must be"),
        ("x:", "the tag `` must be"),
        ("x:.a", "the tag `.a` must be"),
        (&long_tag, "the tag"),
        ("a@sha256:abc", "the digest after `@` must be"),
        (
            "a@sha512:00000000000000000000000000000000",
            "the digest after `@` must be",
        ),
        ("a@b@sha256:x", "the digest"),
        ("a..b", "component `a..b` must be"),
        ("a___b", "component `a___b`"),
        ("a-_b", "component `a-_b`"),
        ("-a", "component `-a`"),
        ("a-", "component `a-`"),
        ("a/", "component `` must be"),
        ("/a", "component `` must be"),
        ("a//b", "component `` must be"),
        ("a b", "component `a b`"),
        (
            "foo:bar/baz",
            "the host `foo:bar` must have a port from 0 to 65535",
        ),
        ("host.com:65536/x", "must have a port"),
        ("host.com:/x", "must have a port"),
        ("a_b.c/x", "the host `a_b.c` must be a domain name"),
        ("-a.b/x", "must be a domain name"),
        ("a..b/x", "must be a domain name"),
        ("[::1/x", "opens `[` without closing it"),
        ("[::g]/x", "must hold an IPv6 address"),
        ("[::1]x/y", "may only have a `:port` after `]`"),
        ("example.com/", "it names no repository"),
        (&"a".repeat(64), "64 hex digits are an image ID"),
        (&"a".repeat(457), "longer than 456 characters"),
    ];
    for (value, says) in cases {
        let e = ImageReference::parse("job.image", value).unwrap_err();
        assert_eq!(e.field, "job.image");
        assert!(
            e.rule.contains(
                "is not an image reference `[host[:port]/]repository[:tag][@sha256:digest]`: "
            ) && e.rule.contains(says),
            "{value}: {e}"
        );
    }
    // At the bounds: taken.
    for value in [
        format!("a:{}", "t".repeat(128)),
        format!("a.b/{}", "c".repeat(251)),
        "a.b:65535/c".into(),
    ] {
        ImageReference::parse("image", &value).expect(&value);
    }
}

#[test]
fn the_project_in_a_repository() {
    let project = |value: &str| {
        let image = ImageReference::parse("image", value).unwrap();
        (
            image.names_default_registry(),
            image.project_repository().map(str::to_owned),
        )
    };
    assert_eq!(project("my-project:v1"), (true, Some("my-project".into())));
    assert_eq!(
        project("library/my-project"),
        (true, Some("my-project".into()))
    );
    assert_eq!(project("docker.io/library/p"), (true, Some("p".into())));
    assert_eq!(project("index.docker.io/p"), (true, Some("p".into())));
    assert_eq!(
        project("localhost:5000/my-project:v1"),
        (false, Some("my-project".into()))
    );
    assert_eq!(project("myuser/myimage"), (true, None));
    assert_eq!(project("ghcr.io/library/x"), (false, None));
}

#[test]
fn serde_parses_through_the_rule() {
    let image: ImageReference = serde_json::from_str("\"localhost:5000/p:v1\"").unwrap();
    assert_eq!(image.host(), Some("localhost:5000"));
    assert_eq!(
        serde_json::to_string(&image).unwrap(),
        "\"localhost:5000/p:v1\""
    );
    let e = serde_json::from_str::<ImageReference>("\"P\"").unwrap_err();
    assert!(
        e.to_string().contains("must be an image reference") && e.to_string().contains("lowercase"),
        "{e}"
    );
}

/// The schema's pattern (as a client reads it) and the server agree, but
/// for the two rules a pattern cannot state (a port over 65535, a name
/// over 255 characters), which the description states.
#[test]
fn the_schema_states_the_rule() {
    let Schema::Object(schema) = ImageReference::json_schema(&mut SchemaGenerator::default())
    else {
        panic!("an object schema");
    };
    let pattern = schema.string.and_then(|s| s.pattern).expect("a pattern");
    let stated = regress::Regex::new(&pattern).expect("an ECMA-262 pattern");
    let values = [
        "alpine",
        "alpine:3.18",
        "a/b/c",
        "ghcr.io/o/r:v",
        "localhost:5000/i",
        "localhost/i",
        "127.0.0.1:5000/p",
        "myregistry:5000",
        "registry.io:5000",
        "localhost",
        "x:5000/y",
        "[::1]:5000/i",
        "[::1]/i",
        "a__b/c-d---e/f.g_h:_T-1.",
        "A.B/c",
        "Alpine",
        "LOCALHOST/foo",
        "a:b:c",
        "x:",
        "x:.a",
        "a@sha256:abc",
        "a..b",
        "a___b",
        "-a",
        "a/",
        "/a",
        "a//b",
        "a b",
        "foo:bar/baz",
        "a_b.c/x",
        "-a.b/x",
        "a..b/x",
        "[::1/x",
        "[::g]/x",
        "example.com/",
        "a.b/c:t@sha256:3f1c2d4e12344abc8def0000000000013f1c2d4e12344abc8def000000000001",
        "a@sha256:3f1c2d4e12344abc8def0000000000013f1c2d4e12344abc8def000000000001",
        "3f1c2d4e12344abc8def0000000000013f1c2d4e12344abc8def000000000001",
        "alpine:3.18/x",
        "a:1.5/b",
        "",
    ];
    for value in values {
        let said = stated.find(value).is_some();
        let did = ImageReference::parse("image", value).is_ok();
        assert_eq!(said, did, "{value}");
    }
    // The port's range and a long name are the pattern's as the parser's:
    // 65536 is refused by both, a name of 256 characters taken by both.
    for (value, taken) in [
        ("a.b:65535/c".to_owned(), true),
        ("a.b:65536/c".to_owned(), false),
        ("a.b:99999/c".to_owned(), false),
        (format!("a.b/{}", "c".repeat(252)), true),
    ] {
        assert_eq!(stated.find(&value).is_some(), taken, "{value}");
        assert_eq!(
            ImageReference::parse("image", &value).is_ok(),
            taken,
            "{value}"
        );
    }
}
