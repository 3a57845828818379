//! Unit tests of the rules.
use super::*;

#[test]
fn names() {
    assert!(name("name", "Runner 1 ✓").is_ok());
    assert!(name("name", &"é".repeat(32)).is_ok());
    for bad in [
        "",
        " x",
        "x ",
        "a\u{0}b",
        "a\nb",
        &"x".repeat(65),
        &"é".repeat(33),
    ] {
        let err = name("name", bad).unwrap_err().to_string();
        assert!(err.starts_with("name: must"), "{bad:?}: {err}");
    }
}

#[test]
fn slugs() {
    for good in ["a", "my-runner-1", &"a".repeat(64)] {
        assert!(slug("slug", good).is_ok(), "{good}");
    }
    let uuid = Uuid::new_v4();
    for bad in [
        "",
        "A",
        "a--b",
        "-a",
        "a-",
        "a_b",
        &"a".repeat(65),
        &uuid.to_string(),
        &uuid.simple().to_string(),
    ] {
        assert!(slug("slug", bad).is_err(), "{bad}");
    }
}

#[test]
fn generated_slugs() {
    assert_eq!(
        slug_from_name("My Runner #1").as_deref(),
        Some("my-runner-1")
    );
    assert_eq!(slug_from_name("Æúű"), Some("aeuu".into()));
    assert_eq!(slug_from_name("!!!"), None);
    let long = slug_from_name(&"ab ".repeat(40)).unwrap();
    assert!(long.len() <= 64 && !long.ends_with('-'));
    let suffixed = slug_with_suffix(&"a".repeat(64), "12345678");
    assert_eq!(suffixed.len(), 64);
    assert!(slug("slug", &suffixed).is_ok());
}
