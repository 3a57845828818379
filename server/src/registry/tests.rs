//! The registry client against a real registry (`runners_tests::registry`:
//! Debian's `docker-registry`, images pushed with `skopeo`; skipped, saying
//! so, when either is missing), and against a scripted one for the answers
//! a real one will not give on demand.

use std::sync::{Arc, Mutex};

use runners_tests::registry::{Registry, free_port};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_real_registry_resolves_tags_to_the_digests_pushed() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let project = "3f1c2d4e-1234-4abc-8def-000000000001";
    let oci = registry.push(project, "v1", None);
    let docker = registry.push("other/repo", "v2", Some("v2s2"));
    assert_ne!(oci, docker, "skopeo wrote a Docker v2 manifest of its own");
    let rt = runtime();
    let resolve = |base: &str, repository: &str, tag: &str, bearer| {
        rt.block_on(resolve_tag(base, repository, tag, bearer))
    };
    let url = registry.url.as_str();
    assert_eq!(resolve(url, project, "v1", None), Ok(oci.clone()));
    // A Docker v2 manifest keeps its own digest: the Accept header asks
    // for it, so the registry does not rewrite it into schema 1.
    assert_eq!(resolve(url, "other/repo", "v2", None), Ok(docker));
    // This registry has no auth: a token is sent and ignored. Only the
    // URL's scheme, host and port are used.
    let base = format!("{url}/some/path/?q#f");
    assert_eq!(resolve(&base, project, "v1", Some("token")), Ok(oci));
    for (repository, tag) in [(project, "v9"), ("nope", "v1")] {
        assert_eq!(
            resolve(url, repository, tag, None),
            Err(ResolveError::NotFound {
                registry: url.to_owned(),
                repository: repository.to_owned(),
                tag: tag.to_owned(),
            })
        );
    }
}

/// One scripted answer: status line, headers, body (left out for `HEAD`).
type Script = fn(&str) -> (&'static str, Vec<(&'static str, String)>, Vec<u8>);

/// A server answering each request by `script` (one request a connection),
/// keeping each request's head.
async fn scripted(script: Script) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let method = head.split(' ').next().unwrap_or_default().to_owned();
            kept.lock().unwrap().push(head);
            let (status, headers, body) = script(&method);
            let mut answer = format!(
                "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (name, value) in headers {
                answer.push_str(&format!("{name}: {value}\r\n"));
            }
            answer.push_str("\r\n");
            let mut bytes = answer.into_bytes();
            if method != "HEAD" {
                bytes.extend_from_slice(&body);
            }
            let _ = socket.write_all(&bytes).await;
        }
    });
    (url, seen)
}

const MANIFEST: &[u8] = br#"{"schemaVersion":2}"#;
const HEADER_DIGEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn body_digest() -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(MANIFEST)))
}

async fn resolve_at(script: Script) -> (Result<String, ResolveError>, Vec<String>) {
    let (url, seen) = scripted(script).await;
    let result = resolve_tag(&url, "p", "v1", Some("t0k3n")).await;
    let seen = seen.lock().unwrap().clone();
    (result.map_err(|e| strip_registry(e, &url)), seen)
}

/// The error with its registry blanked (the scripted server's port varies).
fn strip_registry(e: ResolveError, url: &str) -> ResolveError {
    let blank = |r: String| if r == url { String::new() } else { r };
    match e {
        ResolveError::NotFound {
            registry,
            repository,
            tag,
        } => ResolveError::NotFound {
            registry: blank(registry),
            repository,
            tag,
        },
        ResolveError::Refused {
            registry,
            repository,
            tag,
            status,
        } => ResolveError::Refused {
            registry: blank(registry),
            repository,
            tag,
            status,
        },
        e => e,
    }
}

#[tokio::test]
async fn head_gives_the_digest_with_the_accept_and_token() {
    let (result, seen) = resolve_at(|_| {
        (
            "200 OK",
            vec![("Docker-Content-Digest", HEADER_DIGEST.into())],
            MANIFEST.into(),
        )
    })
    .await;
    assert_eq!(result, Ok(HEADER_DIGEST.to_owned()));
    assert_eq!(seen.len(), 1, "no GET after a HEAD with a digest");
    let head = seen[0].to_lowercase();
    assert!(
        head.starts_with("head /v2/p/manifests/v1 http/1.1"),
        "{head}"
    );
    assert!(head.contains("authorization: bearer t0k3n"), "{head}");
    for kind in MANIFEST_TYPES.split(", ") {
        assert!(head.contains(kind), "{kind} in {head}");
    }
}

#[tokio::test]
async fn get_when_head_gives_no_digest() {
    // HEAD not allowed: GET's header.
    let (result, seen) = resolve_at(|method| match method {
        "HEAD" => ("405 Method Not Allowed", vec![], vec![]),
        _ => (
            "200 OK",
            vec![("Docker-Content-Digest", HEADER_DIGEST.into())],
            MANIFEST.into(),
        ),
    })
    .await;
    assert_eq!(result, Ok(HEADER_DIGEST.to_owned()));
    assert!(seen[1].starts_with("GET /v2/p/manifests/v1"), "{seen:?}");
    // No header at all (or not a SHA-256): the body's SHA-256.
    let (result, seen) = resolve_at(|_| {
        (
            "200 OK",
            vec![("Docker-Content-Digest", "sha512:abc".into())],
            MANIFEST.into(),
        )
    })
    .await;
    assert_eq!(result, Ok(body_digest()));
    assert_eq!(seen.len(), 2);
}

#[tokio::test]
async fn statuses() {
    let refused = |status| ResolveError::Refused {
        registry: String::new(),
        repository: "p".into(),
        tag: "v1".into(),
        status,
    };
    let (result, _) = resolve_at(|_| ("401 Unauthorized", vec![], vec![])).await;
    assert_eq!(result, Err(refused(401)));
    let (result, _) = resolve_at(|_| ("403 Forbidden", vec![], vec![])).await;
    assert_eq!(result, Err(refused(403)));
    // A 404 on the GET after a HEAD that said nothing useful.
    let (result, _) = resolve_at(|method| match method {
        "HEAD" => ("405 Method Not Allowed", vec![], vec![]),
        _ => ("404 Not Found", vec![], vec![]),
    })
    .await;
    assert!(
        matches!(result, Err(ResolveError::NotFound { .. })),
        "{result:?}"
    );
    let (result, _) = resolve_at(|_| ("500 Internal Server Error", vec![], vec![])).await;
    let Err(ResolveError::Other { reason, .. }) = result else {
        panic!("{result:?}");
    };
    assert_eq!(reason, "it answered HTTP 500 Internal Server Error");
}

#[tokio::test]
async fn a_manifest_too_large() {
    let (result, _) = resolve_at(|_| ("200 OK", vec![], vec![b' '; MANIFEST_MAX_BYTES + 1])).await;
    let Err(ResolveError::Other { reason, .. }) = result else {
        panic!("{result:?}");
    };
    assert_eq!(
        reason,
        format!("its manifest is larger than {MANIFEST_MAX_BYTES} bytes")
    );
}

#[tokio::test]
async fn unreachable_registries() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let e = resolve_tag(&closed, "p", "v1", None).await.unwrap_err();
    assert!(
        matches!(&e, ResolveError::Unreachable { registry, .. } if *registry == closed),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("the registry {closed} could not be reached: "))
    );
    // Connected, and no answer in time.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = format!("http://{}", listener.local_addr().unwrap());
    let client = client(CONNECT_TIMEOUT, Duration::from_millis(300)).unwrap();
    let e = resolve_with(&client, &silent, "p", "v1", None)
        .await
        .unwrap_err();
    assert!(matches!(e, ResolveError::Unreachable { .. }), "{e:?}");
    drop(listener);
}

#[test]
fn urls() {
    let url = |base: &str, repository: &str, tag: &str| {
        manifest_url(base, repository, tag).map(|u| u.to_string())
    };
    assert_eq!(
        url("https://r.example:8443/base/?x#y", "a/b", "v1.0").as_deref(),
        Ok("https://r.example:8443/v2/a/b/manifests/v1.0")
    );
    assert_eq!(
        url("http://[::1]:5000", "p", "sha256:00").as_deref(),
        Ok("http://[::1]:5000/v2/p/manifests/sha256:00")
    );
    assert_eq!(
        url("http://h", "a b", "t/?").as_deref(),
        Ok("http://h/v2/a%20b/manifests/t%2F%3F")
    );
    for (base, repository, tag) in [
        ("127.0.0.1:5000", "p", "v"),
        ("ftp://h", "p", "v"),
        ("http://h", "", "v"),
        ("http://h", "p", ""),
    ] {
        assert!(
            url(base, repository, tag).is_err(),
            "{base} {repository} {tag}"
        );
    }
}
