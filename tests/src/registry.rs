//! A real OCI registry for tests: Debian's `docker-registry` (CNCF
//! distribution 2.8) on 127.0.0.1, with no auth or trusting a token
//! service, and images pushed to it with Debian's `skopeo`. A test without
//! the two tools says so and is skipped (`.ci/run` installs them).

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use runners_server::auth::{REGISTRY_ISSUER, REGISTRY_SERVICE};

/// A `docker-registry` on 127.0.0.1, stopped when dropped.
pub struct Registry {
    child: Child,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    port: u16,
    dir: tempfile::TempDir,
    /// Whether it was configured with `auth: token`.
    token_auth: bool,
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

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Whether the registry tools are here; if not, says so (the caller skips).
pub fn tools_installed() -> bool {
    let ok = installed("docker-registry") && installed("skopeo");
    if !ok {
        eprintln!(
            "SKIPPED: the registry tests need Debian's docker-registry and skopeo \
             (apt-get install docker-registry skopeo)"
        );
    }
    ok
}

/// Tells pushes apart: each image pushed is a new one.
static PUSHES: AtomicU64 = AtomicU64::new(0);

impl Registry {
    /// A fresh registry with no auth, or `None` without the tools.
    pub fn start() -> Option<Self> {
        tools_installed().then(|| Self::spawn(free_port(), None))
    }

    /// A fresh registry on `port` that trusts the token service at `realm`
    /// (this server's token endpoint) and the certificates of `bundle`
    /// (PEM), as `runners-server registry-config` configures one; `None`
    /// without the tools.
    pub fn trusting(port: u16, realm: &str, bundle: &str) -> Option<Self> {
        tools_installed().then(|| Self::spawn(port, Some((realm, bundle))))
    }

    fn spawn(port: u16, auth: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = Self {
            child: Command::new("true").spawn().unwrap(),
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir,
            token_auth: auth.is_some(),
        };
        let mut config = format!(
            "version: 0.1\nstorage: {{ filesystem: {{ rootdirectory: {} }} }}\n\
             http: {{ addr: \"127.0.0.1:{port}\" }}\n",
            registry.dir.path().join("storage").display()
        );
        if let Some((realm, bundle)) = auth {
            std::fs::write(registry.bundle_path(), bundle).unwrap();
            config.push_str(&format!(
                "auth:\n  token:\n    realm: \"{realm}/v0/auth/oci/token\"\n    \
                 service: \"{REGISTRY_SERVICE}\"\n    issuer: \"{REGISTRY_ISSUER}\"\n    \
                 rootcertbundle: \"{}\"\n",
                registry.bundle_path().display()
            ));
        }
        std::fs::write(registry.dir.path().join("registry.yml"), config).unwrap();
        registry.run();
        registry
    }

    fn bundle_path(&self) -> PathBuf {
        self.dir.path().join("bundle.pem")
    }

    /// Starts the process, and waits until it answers `/v2/`.
    fn run(&mut self) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("registry.log"))
            .unwrap();
        let _ = self.child.wait();
        self.child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("registry.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let ready = if self.token_auth {
            "HTTP/1.0 401"
        } else {
            "HTTP/1.0 200"
        };
        for _ in 0..200 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with(ready) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not start: {}", self.log());
    }

    /// Restarts the registry with the certificate bundle `bundle` (it reads
    /// its bundle only at start).
    pub fn restart_with(&mut self, bundle: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::write(self.bundle_path(), bundle).unwrap();
        self.run();
    }

    /// What the registry has logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Pushes a one-layer image written by hand as `repository:tag` (in
    /// skopeo's `format`, or as the OCI manifest written), and answers the
    /// digest skopeo pushed. Panics if the push fails. Blocking: for a
    /// registry with no auth (one that asks a server in this thread's
    /// runtime for a token needs [`Registry::push_as`]).
    pub fn push(&self, repository: &str, tag: &str, format: Option<&str>) -> String {
        let (mut command, push) = self.skopeo(repository, tag, format, None);
        let out = command.output().unwrap();
        push.finish(&out).unwrap_or_else(|e| panic!("skopeo: {e}"))
    }

    /// Pushes a new image as `repository:tag` with `creds` (`USER:PASSWORD`,
    /// skopeo's `--dest-creds`, which does the token dance); the digest
    /// pushed, or skopeo's error output.
    pub async fn push_as(
        &self,
        repository: &str,
        tag: &str,
        creds: &str,
    ) -> Result<String, String> {
        let (command, push) = self.skopeo(repository, tag, None, Some(creds));
        let out = tokio::process::Command::from(command)
            .output()
            .await
            .unwrap();
        push.finish(&out)
    }

    /// The `skopeo copy` of a new image to `repository:tag`, and what to
    /// expect of it.
    fn skopeo(
        &self,
        repository: &str,
        tag: &str,
        format: Option<&str>,
        creds: Option<&str>,
    ) -> (Command, Push) {
        let n = PUSHES.fetch_add(1, Relaxed);
        let layout = self.dir.path().join(format!("layout-{n}"));
        let manifest = write_layout(&layout, tag, n);
        let digest_file = layout.join("pushed");
        let mut skopeo = Command::new("skopeo");
        skopeo.args(["copy", "--quiet", "--dest-tls-verify=false", "--digestfile"]);
        skopeo.arg(&digest_file);
        if let Some(format) = format {
            skopeo.args(["--format", format]);
        } else {
            skopeo.arg("--preserve-digests");
        }
        if let Some(creds) = creds {
            skopeo.args(["--dest-creds", creds]);
        }
        let host = self.url.trim_start_matches("http://");
        skopeo
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{host}/{repository}:{tag}"))
            .stdin(Stdio::null());
        let push = Push {
            digest_file,
            manifest: format.is_none().then_some(manifest),
        };
        (skopeo, push)
    }

    /// The status of `GET /v2/{repository}/manifests/{reference}`, with
    /// `bearer` as `Authorization: Bearer`.
    pub async fn manifest_status(
        &self,
        repository: &str,
        reference: &str,
        bearer: Option<&str>,
    ) -> u16 {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.url);
        let mut request = reqwest::Client::new().get(url).header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json",
        );
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().status().as_u16()
    }
}

/// A push under way: where its command writes the digest pushed, and the
/// manifest's digest it must keep (none when skopeo converts it).
struct Push {
    digest_file: PathBuf,
    manifest: Option<String>,
}

impl Push {
    /// The digest pushed, or skopeo's error output.
    fn finish(self, out: &std::process::Output) -> Result<String, String> {
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let pushed = std::fs::read_to_string(&self.digest_file).unwrap();
        if let Some(manifest) = self.manifest {
            assert_eq!(
                pushed.trim(),
                manifest,
                "--preserve-digests keeps the manifest"
            );
        }
        Ok(pushed.trim().to_owned())
    }
}

/// Writes an OCI layout of a one-layer image (an empty tar archive) whose
/// config names `n`, tagged `tag`; answers its manifest's digest.
fn write_layout(layout: &std::path::Path, tag: &str, n: u64) -> String {
    use sha2::Digest as _;
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let blob = |bytes: &[u8]| {
        let hex = hex::encode(sha2::Sha256::digest(bytes));
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let (layer, layer_size) = blob(&[0; 1024]);
    let (config, config_size) = blob(
        format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"push":"{n}"}}}},"rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
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
    manifest
}
