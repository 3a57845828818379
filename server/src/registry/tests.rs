//! The registry client against a real registry (Debian's `docker-registry`,
//! images pushed with `skopeo`; skipped, saying so, when either is
//! missing), and against a scripted one for the answers a real one will
//! not give on demand.

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

/// A `docker-registry` on 127.0.0.1, stopped when dropped.
struct Registry {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Registry {
    /// A fresh registry, or `None` (and a line saying why) without the tools.
    fn start() -> Option<Self> {
        if !installed("docker-registry") || !installed("skopeo") {
            eprintln!(
                "SKIPPED: the registry tests need Debian's docker-registry and skopeo \
                 (apt-get install docker-registry skopeo)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage: {{ filesystem: {{ rootdirectory: {} }} }}\n\
                 http: {{ addr: \"127.0.0.1:{port}\" }}\n",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let registry = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        for _ in 0..200 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.0 200") {
                    return Some(registry);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(registry.dir.path().join("registry.log"));
        panic!("docker-registry did not start: {log:?}");
    }

    /// Pushes a one-layer image written by hand as `repository:tag` (in
    /// skopeo's `format`, or as the OCI manifest written), and answers the
    /// digest skopeo pushed.
    fn push(&self, repository: &str, tag: &str, format: Option<&str>) -> String {
        let layout = self.dir.path().join(format!("layout-{}", free_port()));
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let blob = |bytes: &[u8]| {
            let hex = hex::encode(Sha256::digest(bytes));
            std::fs::write(blobs.join(&hex), bytes).unwrap();
            (format!("sha256:{hex}"), bytes.len())
        };
        // An empty tar archive: two blocks of zeros.
        let (layer, layer_size) = blob(&[0; 1024]);
        let (config, config_size) = blob(
            format!(
                r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
            )
            .as_bytes(),
        );
        let (manifest, manifest_size) = blob(
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{layer_size}}}]}}"#
            )
            .as_bytes(),
        );
        std::fs::write(
            layout.join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest}","size":{manifest_size},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}]}}"#
            ),
        )
        .unwrap();
        std::fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let digest_file = layout.join("pushed");
        let mut skopeo = Command::new("skopeo");
        skopeo.args(["copy", "--quiet", "--dest-tls-verify=false", "--digestfile"]);
        skopeo.arg(&digest_file);
        if let Some(format) = format {
            skopeo.args(["--format", format]);
        } else {
            skopeo.arg("--preserve-digests");
        }
        let host = self.url.trim_start_matches("http://");
        let out = skopeo
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{host}/{repository}:{tag}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pushed = std::fs::read_to_string(&digest_file).unwrap();
        if format.is_none() {
            assert_eq!(
                pushed.trim(),
                manifest,
                "--preserve-digests keeps the manifest"
            );
        }
        pushed.trim().to_owned()
    }
}

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
