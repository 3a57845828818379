//! The fixture of the network tests: `runners-server serve` in a child
//! process under a low open-file limit, with its options, plain or TLS.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::network::FILES;
use super::{BIN, block_on};

/// `runners-server serve` in a child process with `ulimit -n` [`FILES`],
/// on a fresh database in a directory of its own.
pub(super) struct Net {
    pub(super) child: Child,
    pub(super) addr: SocketAddr,
    pub(super) url: String,
    pub(super) token: String,
    /// With TLS: the self-signed certificate, which clients trust.
    pub(super) ca: Option<Vec<u8>>,
    /// What it printed before it listened.
    pub(super) banner: Vec<String>,
    pub(super) dir: TempDir,
}

impl Net {
    /// Starts the server with `args`, over TLS if `key_mode` is given (the
    /// mode of the key file). Its stderr is read to the end, unless
    /// `close_stderr`: then the pipe is closed once it listens.
    pub(super) fn start(args: &[&str], key_mode: Option<u32>, close_stderr: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("runners.db");
        let mut command = vec![
            "serve".to_owned(),
            "--bind=127.0.0.1:0".to_owned(),
            format!("--db={}", db.display()),
        ];
        command.extend(args.iter().map(|a| (*a).to_owned()));
        let ca = key_mode.map(|mode| {
            use std::os::unix::fs::PermissionsExt as _;
            let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
            let certified = rcgen::generate_simple_self_signed(names).unwrap();
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert, certified.cert.pem()).unwrap();
            std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            command.push(format!("--tls-cert={}", cert.display()));
            command.push(format!("--tls-key={}", key.display()));
            certified.cert.pem().into_bytes()
        });
        let script = format!(r#"ulimit -n {FILES} && exec "$0" "$@""#);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(BIN)
            .args(&command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let after = (!close_stderr).then(super::serving::Log::default);
        let (url, banner) = super::serving::await_listening(&mut child, after);
        let addr = url.rsplit('/').next().unwrap().parse().unwrap();
        let token = banner
            .iter()
            .find(|l| l.starts_with("eyJ"))
            .unwrap()
            .clone();
        Self {
            child,
            addr,
            url,
            token,
            ca,
            banner,
            dir,
        }
    }

    /// The database file.
    pub(super) fn db(&self) -> std::path::PathBuf {
        self.dir.path().join("runners.db")
    }

    /// An authenticated `GET /v0/runners` through the SDK (over TLS with
    /// the certificate): how long it took to get its 200.
    pub(super) fn list(&self) -> Duration {
        let options = runners_sdk::ClientOptions {
            timeout: Duration::from_secs(10),
            ca_pem: self.ca.clone(),
        };
        let client = runners_sdk::client_with_options(&self.url, &self.token, &options).unwrap();
        let start = Instant::now();
        block_on(client.runners_get().send()).expect("an answer");
        start.elapsed()
    }

    /// A new connection (bounded: a full backlog would make a plain
    /// connect retry for minutes).
    pub(super) fn connect(&self) -> TcpStream {
        TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).unwrap()
    }

    /// Sends SIGTERM: the exit status, and how long it took.
    pub(super) fn terminate(&mut self, within: Duration) -> (ExitStatus, Duration) {
        super::serving::terminate(&mut self.child, within)
    }

    /// The database was closed cleanly (its WAL checkpointed and removed).
    pub(super) fn closed_cleanly(&self) -> bool {
        !self.dir.path().join("runners.db-wal").exists()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
